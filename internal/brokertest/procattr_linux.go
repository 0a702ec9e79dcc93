package brokertest

import "syscall"

// childAttr makes the kernel kill a child process when the test binary
// dies without its cleanup (a timeout panic, SIGKILL, a closed pipe), so
// that no broker outlives the test.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
