//go:build !linux

package brokertest

import "syscall"

// childAttr returns nil: Pdeathsig exists only on Linux.
func childAttr() *syscall.SysProcAttr { return nil }

// groupAttr gives the child a process group of its own.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
