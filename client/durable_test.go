package client_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/session/filestore"
)

// The child process of TestDurableOfflinePublish is this test binary run
// again with these variables set.
const (
	envDurablePhase = "ZMQTT_DURABLE_PHASE" // "accept" or "deliver"
	envDurableURL   = "ZMQTT_DURABLE_URL"
	envDurableStore = "ZMQTT_DURABLE_STORE"
	durableN        = 1000 // half QoS 1 (even payloads), half QoS 2 (odd)
)

// TestDurableOfflinePublish: a publisher process with a file Store accepts
// 500 QoS 1 and 500 QoS 2 messages with PublishAsync while the broker is
// down, waits for each handle's Accepted, and is killed with SIGKILL. A new
// process on the same Store, the broker back, sends all 1,000: a subscriber
// gets every one, the QoS 2 ones exactly once [MQTT-4.3.3-10] (5.0), and the new
// process's Drain returns when they are complete, leaving the Store empty.
func TestDurableOfflinePublish(t *testing.T) {
	if phase := os.Getenv(envDurablePhase); phase != "" {
		durableChild(phase)
		return
	}
	b := brokertest.Start(t, brokertest.Config{Persistence: true})
	ctx := deadline(t, 120*time.Second)
	url := b.URL(brokertest.MQTT)
	sub := connect(t, ctx, 5, client.Config{URL: url, ClientID: "durable-sub", Persistent: true, Reconnect: fastReconnect})
	s, err := sub.Subscribe(ctx, []string{"durable/t"}, client.ExactlyOnce)
	if err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver()
	rctx, stopRcv := context.WithCancel(ctx)
	defer stopRcv()
	go rcv.run(rctx, s)

	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(t.TempDir(), "publisher.log")
	out := durableRun(t, ctx, "accept", url, store, true)
	t.Logf("accept phase: %s", out)
	if err := b.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	out = durableRun(t, ctx, "deliver", url, store, false)
	t.Logf("deliver phase: %s", out)

	want := make([]int, durableN)
	for i := range want {
		want[i] = i
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	missing, _ := rcv.waitAll(wctx, want)
	rcv.mu.Lock()
	dup1, dup2 := 0, 0
	for i, n := range rcv.count {
		switch {
		case n > 1 && i%2 == 1:
			dup2 += n - 1
		case n > 1:
			dup1 += n - 1
		}
	}
	rcv.mu.Unlock()
	t.Logf("after SIGKILL while offline: %d accepted, %d missing, QoS 1 duplicates %d, QoS 2 duplicates %d",
		durableN, len(missing), dup1, dup2)
	if len(missing) > 0 {
		t.Fatalf("%d accepted messages lost, e.g. %v", len(missing), missing[:min(20, len(missing))])
	}
	if dup2 > 0 {
		t.Fatalf("%d QoS 2 messages delivered more than once", dup2)
	}
	st, err := filestore.Open(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(state.Outbound) + len(state.Queued); n != 0 {
		t.Fatalf("%d records left in the Store after Drain", n)
	}
}

// durableRun runs one phase in a child process and returns the line it
// reports. With kill, the child is sent SIGKILL as soon as it reports,
// else it must exit 0.
func durableRun(t *testing.T, ctx context.Context, phase, url, store string, kill bool) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDurableOfflinePublish$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDurablePhase+"="+phase, envDurableURL+"="+url, envDurableStore+"="+store)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s phase: no report from the child: %v", phase, err)
	}
	if kill {
		cmd.Process.Signal(syscall.SIGKILL)
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	} else {
		io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s phase: child failed: %v (%s)", phase, err, line)
		}
	}
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "ok ") {
		t.Fatalf("%s phase: %s", phase, line)
	}
	return line
}

// durableChild is the publisher process. It reports one line on stdout,
// "ok ..." or "fail ...", and exits (the accept phase waits to be killed).
func durableChild(phase string) {
	report := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	st, err := filestore.Open(os.Getenv(envDurableStore), nil)
	if err != nil {
		report("fail open store: %v", err)
		os.Exit(1)
	}
	c, err := client.New(client.Config{URL: os.Getenv(envDurableURL), ClientID: "durable-pub", Store: st,
		Reconnect: fastReconnect})
	if err != nil {
		report("fail new: %v", err)
		os.Exit(1)
	}
	switch phase {
	case "accept":
		go c.Connect(ctx) // the broker is down: it keeps trying
		hs := make([]*client.Publishing, durableN)
		for i := range hs {
			hs[i] = c.PublishAsync("durable/t", []byte(strconv.Itoa(i)), client.QoS(1+i%2))
		}
		for i, h := range hs {
			select {
			case <-h.Accepted():
			case <-ctx.Done():
				report("fail message %d not accepted: %v", i, ctx.Err())
				os.Exit(1)
			}
			if err := h.Err(); err != nil {
				report("fail message %d: %v", i, err)
				os.Exit(1)
			}
		}
		state, _ := st.Load()
		report("ok %d accepted, %d queued records in the store", durableN, len(state.Queued))
		<-ctx.Done() // SIGKILL comes first
		os.Exit(1)
	case "deliver":
		state, _ := st.Load()
		restored := len(state.Queued) + len(state.Outbound)
		if err := c.Connect(ctx); err != nil {
			report("fail connect: %v", err)
			os.Exit(1)
		}
		start := time.Now()
		if err := c.Drain(ctx); err != nil {
			report("fail drain: %v", err)
			os.Exit(1)
		}
		took := time.Since(start)
		if err := c.Disconnect(ctx); err != nil {
			report("fail disconnect: %v", err)
			os.Exit(1)
		}
		st.Close()
		report("ok %d restored records, Drain returned after %v", restored, took.Round(time.Millisecond))
		os.Exit(0)
	}
	report("fail unknown phase %q", phase)
	os.Exit(1)
}
