//go:build !linux

package childproc

import "syscall"

// Attr returns nil: only Linux can tie a child's life to its parent's
// (Pdeathsig). Elsewhere a broker whose test process was killed keeps
// running until it is stopped by hand.
func Attr() *syscall.SysProcAttr { return nil }
