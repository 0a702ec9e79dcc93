package mqtttest_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processAlive reports whether pid is a live process: not gone and not a
// zombie waiting for a parent (an orphan's new parent may never reap it).
func processAlive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestBrokerDiesWithTestProcess: a test process killed without running
// its cleanup (SIGKILL, as go test does on a timeout after its panic)
// takes its broker with it, so no broker outlives its test.
func TestBrokerDiesWithTestProcess(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	helper := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), orphanHelperEnv+"=1")
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper said %q: %v", line, err)
	}
	f := strings.Fields(line)
	pid := 0
	if len(f) == 3 {
		pid, _ = strconv.Atoi(f[0])
	}
	if pid == 0 {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() {
		if processAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL) // do not leak it when the test fails
		}
		// The helper died before its Close could remove them.
		os.RemoveAll(f[1])
		os.RemoveAll(f[2])
	})
	if !processAlive(pid) {
		t.Fatalf("broker %d not running while its helper is", pid)
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := helper.Wait(); !errors.As(err, &exit) {
		t.Fatalf("helper exited with %v, want killed", err)
	}
	// The kernel signals the broker when its parent dies; it is gone once
	// its exit is processed, which the loop waits for under the deadline.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for processAlive(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("broker %d still alive after its test process was killed", pid)
		case <-tick.C:
		}
	}
}
