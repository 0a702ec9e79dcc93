//go:build unix && !linux

package childproc

import "syscall"

// Attr returns nil: only Linux can tie a child's life to its parent's
// (Pdeathsig). Elsewhere a broker whose test process was killed keeps
// running until it is stopped by hand.
func Attr() *syscall.SysProcAttr { return nil }

// GroupAttr gives the child a process group of its own.
func GroupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
