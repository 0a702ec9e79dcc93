//go:build !unix

package childproc

import "syscall"

// Attr returns nil: only Linux can tie a child's life to its parent's.
func Attr() *syscall.SysProcAttr { return nil }

// GroupAttr returns nil: process groups are a Unix notion. A broker that
// starts children of its own (RabbitMQ's epmd) may leave them running.
func GroupAttr() *syscall.SysProcAttr { return nil }
