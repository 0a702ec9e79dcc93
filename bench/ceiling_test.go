package bench

// Ceiling benchmarks: each client against the least an MQTT server can
// do, to see how fast the client itself can go when the broker is not what
// limits it. The server (internal/fakeserver) runs as a separate OS
// process, built once per run: getrusage and /proc/self of this process
// then count the client alone, which they could not if the server's
// goroutines shared the process. Its own CPU time is reported beside, to
// show that it was not the bottleneck.
//
//	BenchmarkCeilingReceive  the server sends b.N pre-encoded PUBLISH
//	                         packets of 64 B, many per write, to the
//	                         client's one subscription; at QoS 1 it keeps up
//	                         to the client's Receive Maximum (3.1.1: 1024)
//	                         unacknowledged. msg/s is messages delivered to
//	                         the application per second, up to the last
//	                         one; delivered/sent is 1 at QoS 1, and at QoS 0
//	                         says whether the client dropped some.
//	BenchmarkCeilingPublish  8 goroutines publish b.N messages of 64 B; at
//	                         QoS 1 each publish waits for its PUBACK, which
//	                         the server sends at once (impl=zmqtt-async: one
//	                         goroutine calls PublishAsync and checks each
//	                         handle asyncRing publishes later). msg/s counts
//	                         until the server has read every message and
//	                         every publish has returned.
//
// Both report allocs/op, and per message the client's CPU time, context
// switches and read and write system calls (client-*), and the server's
// CPU time (server-cpu-µs/msg).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// ceilingImpls are the plain clients, and for publishing zmqtt-async too:
// the same names as in BenchmarkE2EThroughput, so that benchstat -col
// /impl compares them.
func ceilingImpls(publish bool) []impl {
	var out []impl
	for _, im := range impls {
		switch im.name {
		case "zmqtt", "paho.golang", "paho.mqtt.golang", "zmqtt-async":
			if !im.async || publish {
				out = append(out, im)
			}
		}
	}
	return out
}

const (
	ceilingSize    = 64
	ceilingWorkers = 8
	// ceilingTimeout bounds each sub-benchmark, the server's process with
	// it.
	ceilingTimeout = 2 * time.Minute
	// ceilingQuiet: once the server has sent every message, no delivery for
	// this long and the missing ones count as dropped.
	ceilingQuiet = time.Second
	// serverExit is how long the server has to exit once the client closed
	// before it is killed.
	serverExit = 10 * time.Second
)

func BenchmarkCeilingReceive(b *testing.B) {
	for _, im := range ceilingImpls(false) {
		for _, qos := range []byte{0, 1} {
			b.Run(fmt.Sprintf("v=%v/qos=%d/size=%d/impl=%s", im.v, qos, ceilingSize, im.name), func(b *testing.B) {
				ceilingReceive(b, im, qos)
			})
		}
	}
}

func BenchmarkCeilingPublish(b *testing.B) {
	for _, im := range ceilingImpls(true) {
		for _, qos := range []byte{0, 1} {
			b.Run(fmt.Sprintf("v=%v/qos=%d/size=%d/impl=%s", im.v, qos, ceilingSize, im.name), func(b *testing.B) {
				ceilingPublish(b, im, qos)
			})
		}
	}
}

func ceilingReceive(b *testing.B, im impl, qos byte) {
	ctx, cancel := context.WithTimeout(context.Background(), ceilingTimeout)
	defer cancel()
	id := strconv.FormatInt(runID.Add(1), 10)
	n := int64(b.N)
	srv := startFakeServer(b, "source", im.v, "-qos", strconv.Itoa(int(qos)),
		"-size", strconv.Itoa(ceilingSize), "-n", strconv.FormatInt(n, 10))
	cl, err := im.dial(ctx, "mqtt://"+srv.addr, "ceil-recv-"+id)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.close()
	var got atomic.Int64
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	meter := startCeilingMeter(srv.pid)
	// The server starts sending once it has answered the SUBSCRIBE.
	if err := cl.subscribe(ctx, "ceiling/"+id, qos, func() {
		if got.Add(1) == n {
			close(done)
		}
	}); err != nil {
		b.Fatal(err)
	}
	delivered, last := awaitCeiling(ctx, b, done, srv, &got)
	b.StopTimer()
	if delivered != n {
		if qos > 0 {
			b.Fatalf("delivered %d of %d at QoS 1", delivered, n)
		}
		b.Logf("delivered %d of %d", delivered, n)
	}
	b.ReportMetric(float64(delivered)/float64(n), "delivered/sent")
	b.ReportMetric(float64(delivered)/last.Sub(start).Seconds(), "msg/s")
	meter.report(b, n)
}

// awaitCeiling waits until done is closed (every message arrived) or,
// once the server says it sent everything, until no message arrived for
// ceilingQuiet. It returns the count and when the last counted message was
// seen (within floodPoll). The wait fails the benchmark when ctx ends.
func awaitCeiling(ctx context.Context, b *testing.B, done <-chan struct{}, srv *fakeServer, got *atomic.Int64) (int64, time.Time) {
	select {
	case <-done:
		return got.Load(), time.Now()
	case <-srv.lines: // "sent N", or closed: the server exited
	case <-ctx.Done():
		b.Fatalf("received %d, the server still sending: %v", got.Load(), ctx.Err())
	}
	t := time.NewTicker(floodPoll)
	defer t.Stop()
	seen, seenAt := got.Load(), time.Now()
	for {
		select {
		case <-done:
			return got.Load(), time.Now()
		case <-ctx.Done():
			b.Fatalf("received %d, still arriving: %v", got.Load(), ctx.Err())
		case now := <-t.C:
			if g := got.Load(); g != seen {
				seen, seenAt = g, now
			} else if now.Sub(seenAt) >= ceilingQuiet {
				return seen, seenAt
			}
		}
	}
}

func ceilingPublish(b *testing.B, im impl, qos byte) {
	ctx, cancel := context.WithTimeout(context.Background(), ceilingTimeout)
	defer cancel()
	id := strconv.FormatInt(runID.Add(1), 10)
	n := int64(b.N)
	srv := startFakeServer(b, "sink", im.v, "-n", strconv.FormatInt(n, 10))
	cl, err := im.dial(ctx, "mqtt://"+srv.addr, "ceil-pub-"+id)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.close()
	topic := "ceiling/" + id
	payload := make([]byte, ceilingSize)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	meter := startCeilingMeter(srv.pid)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, ceilingWorkers)
	workers := ceilingWorkers
	if im.async {
		ap, ok := cl.(asyncPublisher)
		if !ok {
			b.Fatalf("%s has no asynchronous publish", im.name)
		}
		workers = 0 // one goroutine calling PublishAsync, with no window
		wg.Go(func() {
			if err := publishAsyncAll(ctx, ap, make(chan struct{}, n), topic, payload, qos, n); err != nil {
				errs <- err
			}
		})
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				if err := cl.publish(ctx, topic, payload, qos); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	published := make(chan struct{})
	go func() {
		wg.Wait()
		close(published)
	}()
	// Done when every publish returned and the server read every message,
	// in either order.
	for pending := 2; pending > 0; pending-- {
		select {
		case <-published:
			published = nil
		case line, ok := <-srv.lines:
			if !ok {
				<-srv.exited
				b.Fatalf("the server exited before receiving %d messages: %s", n, srv.stderr.String())
			}
			if line != fmt.Sprintf("received %d", n) {
				pending++ // not the line awaited
			}
		case err := <-errs:
			b.Fatal(err)
		case <-ctx.Done():
			b.Fatalf("publishing %d messages: %v", n, ctx.Err())
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msg/s")
	meter.report(b, n)
}

// ceilingMeter is cpuMeter for the ceiling benchmarks: this process, which
// is the client alone, and the fake server's process.
type ceilingMeter struct {
	pid          int
	self, server procCost
}

func startCeilingMeter(pid int) ceilingMeter {
	return ceilingMeter{pid: pid, self: selfCost(), server: costOfPID(pid)}
}

// report adds, per message of n: client-cpu-µs, client-csw, client-syscr,
// client-syscw and server-cpu-µs.
func (m ceilingMeter) report(b *testing.B, n int64) {
	per := func(unit string, before, after int64) {
		if before >= 0 && after >= 0 {
			b.ReportMetric(float64(after-before)/float64(n), unit)
		}
	}
	self, srv := selfCost(), costOfPID(m.pid)
	b.ReportMetric(float64((self.cpu-m.self.cpu).Microseconds())/float64(n), "client-cpu-µs/msg")
	per("client-csw/msg", m.self.csw, self.csw)
	per("client-syscr/msg", m.self.syscr, self.syscr)
	per("client-syscw/msg", m.self.syscw, self.syscw)
	if m.server.cpu >= 0 && srv.cpu >= 0 {
		b.ReportMetric(float64((srv.cpu-m.server.cpu).Microseconds())/float64(n), "server-cpu-µs/msg")
	}
}

// --- the fake server's process ---

var (
	fakeOnce sync.Once
	fakeDir  string
	fakeBin  string
	fakeErr  error
)

// fakeServerBin builds internal/fakeserver once per run, into a directory
// that TestMain removes.
func fakeServerBin(b *testing.B) string {
	fakeOnce.Do(func() {
		fakeDir, fakeErr = os.MkdirTemp("", "zmqtt-bench-")
		if fakeErr != nil {
			return
		}
		bin := filepath.Join(fakeDir, "fakeserver")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/fakeserver").CombinedOutput()
		if err != nil {
			fakeErr = fmt.Errorf("cannot build the fake server (go build ./internal/fakeserver in bench/): %v\n%s", err, out)
			return
		}
		fakeBin = bin
	})
	if fakeErr != nil {
		b.Fatal(fakeErr)
	}
	return fakeBin
}

func removeFakeServer() {
	if fakeDir != "" {
		os.RemoveAll(fakeDir)
	}
}

// fakeServer is one running fake server.
type fakeServer struct {
	addr   string
	pid    int
	lines  chan string // standard output after the address; closed at exit
	stderr bytes.Buffer
	exited chan struct{}
	err    error // of the process, once exited is closed
}

// startFakeServer starts the fake server in mode for version v with the
// further flags, and returns once it listens. b.Cleanup waits for it to
// exit, which it does when the client has closed the connection, and kills
// it when it does not within serverExit or when the benchmark failed; a
// server that exits with an error fails the benchmark.
func startFakeServer(b *testing.B, mode string, v codec.Version, flags ...string) *fakeServer {
	bin := fakeServerBin(b)
	ver := "5"
	if v == codec.V311 {
		ver = "311"
	}
	ctx, cancel := context.WithTimeout(context.Background(), ceilingTimeout)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-mode", mode, "-v", ver}, flags...)...)
	cmd.WaitDelay = time.Second
	s := &fakeServer{lines: make(chan string, 4), exited: make(chan struct{})}
	cmd.Stderr = &s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		b.Fatalf("starting the fake server: %v", err)
	}
	s.pid = cmd.Process.Pid
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			default: // nobody waits for more than the server says
			}
		}
		close(s.lines)
		s.err = cmd.Wait()
		close(s.exited)
	}()
	b.Cleanup(func() {
		if b.Failed() {
			cancel()
		}
		select {
		case <-s.exited:
		case <-time.After(serverExit):
			cancel()
			<-s.exited
			if !b.Failed() {
				b.Errorf("the fake server did not exit within %v of the client closing", serverExit)
			}
		}
		cancel()
		if s.err != nil && !b.Failed() {
			b.Errorf("fake server: %v\n%s", s.err, s.stderr.String())
		}
	})
	select {
	case addr, ok := <-s.lines:
		if !ok {
			<-s.exited
			b.Fatalf("the fake server did not start: %v\n%s", s.err, s.stderr.String())
		}
		s.addr = strings.TrimSpace(addr)
	case <-ctx.Done():
		b.Fatalf("the fake server did not start: %v", ctx.Err())
	}
	if s.addr == "" {
		b.Fatal("the fake server printed no address")
	}
	return s
}
