//go:build !linux

package brokertest

import "syscall"

// childAttr returns nil: Pdeathsig exists only on Linux.
func childAttr() *syscall.SysProcAttr { return nil }
