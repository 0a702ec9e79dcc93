package childproc

import "syscall"

// Attr makes the kernel kill the child process when the process that
// started it dies without its cleanup (a test binary killed on timeout,
// SIGKILL), so that no broker outlives its test. Strictly, the signal is
// sent when the OS thread that started the child exits; the Go runtime
// ends a thread only when a goroutine locked to it (runtime.LockOSThread)
// exits without unlocking, which the callers of this package never do.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
