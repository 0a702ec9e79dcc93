//go:build !linux

package mqtttest_test

import (
	"os"
	"syscall"
)

// processAlive reports whether pid is a live process (signal 0 reaches it).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}
