package childproc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is one run of a broker process: started with its output going to a
// log file, and stopped by SIGTERM or SIGKILL. Its methods are safe for
// concurrent use; a restart is a new Proc.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its log is closed
}

// Start runs bin with args, its standard output and error appended to
// logPath, with Attr (the child dies with the test process). A goroutine
// waits for the process; it exits when the process does.
func Start(bin, logPath string, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = Attr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// State is the exit state; nil while the process runs.
func (p *Proc) State() *os.ProcessState {
	select {
	case <-p.done:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the exit.
func (p *Proc) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for the exit; after grace it kills the
// process and returns false.
func (p *Proc) Stop(grace time.Duration) bool {
	if !p.Running() {
		return true
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		p.Kill()
		return false
	}
}
