package brokertest

import "syscall"

// childAttr makes the kernel kill a child process when the test binary
// dies without its cleanup (a timeout panic, SIGKILL, a closed pipe), so
// that no broker outlives the test.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// groupAttr is childAttr with a process group of its own, for a child
// that starts children of its own (RabbitMQ's start script runs the
// Erlang VM): the whole group is signalled by the negative process id.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
