package main

// These tests build the real zmqtt binary once (TestMain) and run it as a
// subprocess against private Mosquitto brokers from internal/brokertest,
// never the system broker. Every subprocess is bounded by a context
// deadline and killed at the end of its test.
//
// Synchronisation without sleeping: a `zmqtt sub` prints nothing when its
// subscription is in place, so a test leaves a retained marker on the
// broker before starting the sub; the marker is the sub's first line, and
// proves it is subscribed. A `zmqtt serve` is told ready the same way: the
// test repeats a request with a short -W until one is answered.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// zmqttBin is the path of the binary TestMain built.
var zmqttBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "zmqtt-cli-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "zmqtt tests: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(os.Stderr, "zmqtt tests: the go command is needed on PATH to build zmqtt: %v\n", err)
		return 1
	}
	bin := filepath.Join(dir, "zmqtt")
	args := []string{"build", "-o", bin}
	if os.Getenv("ZMQTT_CLI_RACE") == "1" && raceEnabled() {
		// Opt-in: a data race in the command then ends it with status 66
		// and a report on stderr, which the tests notice. Not the default:
		// a race-enabled binary can take seconds to start on a busy
		// machine, and the tests start it a few hundred times.
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	out, err := exec.CommandContext(ctx, goTool, append(args, ".")...).CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "zmqtt tests: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	zmqttBin = bin

	// The tests mostly wait on subprocesses and brokers, not on the CPU:
	// run more of them at once than the default -parallel (GOMAXPROCS),
	// unless -test.parallel was given.
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		flag.Set("test.parallel", strconv.Itoa(max(4, runtime.GOMAXPROCS(0))))
	}

	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	return code
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// Deadlines. They guard against hangs: on an idle machine a test takes a
// second or two (the demo three), but a loaded two-core machine can stall
// a process for several seconds.
const (
	testTimeout = 45 * time.Second
	// The demo bounds itself to a minute; let it report that first.
	demoTimeout = 75 * time.Second
)

// testCtx returns a context that ends after d or with the test.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// result is what a finished run of zmqtt (or of a mosquitto client) left
// behind.
type result struct {
	prog   string
	args   []string
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("%s %s: status %d\nstdout: %q\nstderr: %q", r.prog, strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runZ runs zmqtt with args (and stdin, when not nil) to completion.
func runZ(ctx context.Context, t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	return runBin(ctx, t, zmqttBin, stdin, args...)
}

// runBin runs the program bin with args (and stdin, when not nil) to
// completion.
func runBin(ctx context.Context, t *testing.T, bin string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{prog: filepath.Base(bin), args: args, stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("deadline reached while running %v", r)
	}
	if cmd.ProcessState == nil {
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	r.code = cmd.ProcessState.ExitCode()
	return r
}

// mustRun is runZ that fails the test unless zmqtt exits 0 with nothing on
// standard error.
func mustRun(ctx context.Context, t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	r := runZ(ctx, t, stdin, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("want status 0 and an empty stderr; got %v", r)
	}
	return r
}

// wantError checks the error contract: the given status and exactly one
// line on standard error, starting "zmqtt: " and holding every one of
// parts (case-insensitive).
func wantError(t *testing.T, r result, code int, parts ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("want status %d; got %v", code, r)
	}
	if !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("want exactly one line on stderr; got %v", r)
	}
	if !strings.HasPrefix(r.stderr, "zmqtt: ") {
		t.Errorf("want stderr to start with %q; got %v", "zmqtt: ", r)
	}
	for _, p := range parts {
		if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(p)) {
			t.Errorf("want stderr to mention %q; got %v", p, r)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lineWriter keeps everything written to it and passes each complete line
// (without its newline) to lines.
type lineWriter struct {
	ctx     context.Context
	all     lockedBuffer
	partial []byte
	lines   chan string
	changed chan struct{} // a value after each write (capacity 1)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.all.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		select {
		case w.lines <- line:
		case <-w.ctx.Done():
		}
	}
}

// proc is a zmqtt (or a mosquitto client) running in the background, for
// sub and serve.
type proc struct {
	ctx    context.Context
	prog   string
	args   []string
	cmd    *exec.Cmd
	stdout *lineWriter
	stderr lockedBuffer
	done   chan struct{} // closed once the process has exited and its output is read
}

// start starts zmqtt with args; the test's cleanup kills it if it is
// still running.
func start(ctx context.Context, t *testing.T, args ...string) *proc {
	t.Helper()
	return startBin(ctx, t, zmqttBin, args...)
}

// startBin starts the program bin with args; the test's cleanup kills it
// if it is still running.
func startBin(ctx context.Context, t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{ctx: ctx, prog: filepath.Base(bin), args: args, done: make(chan struct{}),
		stdout: &lineWriter{ctx: ctx, lines: make(chan string, 1024), changed: make(chan struct{}, 1)}}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s %s: %v", bin, strings.Join(args, " "), err)
	}
	go func() {
		p.cmd.Wait()
		close(p.stdout.lines)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) String() string {
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("status %d", p.cmd.ProcessState.ExitCode())
	}
	return fmt.Sprintf("%s %s (%s)\nstdout: %q\nstderr: %q", p.prog, strings.Join(p.args, " "), state, p.stdout.all.String(), p.stderr.String())
}

// line returns the next line of standard output.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.stdout.lines:
		if !ok {
			t.Fatalf("no more output: %v", p)
		}
		return l
	case <-p.ctx.Done():
		t.Fatalf("deadline reached waiting for a line: %v", p)
	}
	return ""
}

// waitFor waits until the process has written want to standard output.
func (p *proc) waitFor(t *testing.T, want string) {
	t.Helper()
	for !strings.Contains(p.stdout.all.String(), want) {
		select {
		case <-p.stdout.changed:
		case <-p.done:
			if !strings.Contains(p.stdout.all.String(), want) {
				t.Fatalf("exited before printing %q: %v", want, p)
			}
		case <-p.ctx.Done():
			t.Fatalf("deadline reached waiting for %q: %v", want, p)
		}
	}
}

// wait waits for the process to exit and returns its result.
func (p *proc) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-p.done:
	case <-p.ctx.Done():
		t.Fatalf("deadline reached waiting for the exit of %v", p)
	}
	return result{prog: p.prog, args: p.args, code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.all.String(), stderr: p.stderr.String()}
}

// args joins flag lists.
func args(parts ...[]string) []string {
	var a []string
	for _, p := range parts {
		a = append(a, p...)
	}
	return a
}

// hostPort are the flags that reach the plain MQTT listener by -h and -p.
func hostPort(b *brokertest.Broker) []string {
	return []string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.Port(brokertest.MQTT))}
}

// subscribed leaves a retained marker "ready" on base/ready, starts
// `zmqtt sub -t base/# sub...`, and returns once the sub printed its first
// line (the marker, in the format sub chose): it is subscribed from then
// on. The marker counts towards the sub's -C.
func subscribed(ctx context.Context, t *testing.T, conn []string, base string, sub ...string) (*proc, string) {
	t.Helper()
	mustRun(ctx, t, nil, args([]string{"pub", "-t", base + "/ready", "-m", "ready", "-r", "-q", "1"}, conn)...)
	p := start(ctx, t, args([]string{"sub", "-t", base + "/#"}, sub, conn)...)
	return p, p.line(t)
}

// 1. pub then sub at every QoS, on both protocol versions, by -h/-p and by
// --url.
func TestPubSubRoundTrip(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	for _, v := range []string{"311", "5"} {
		for q := range 3 {
			for _, via := range []string{"host-port", "url"} {
				name := fmt.Sprintf("V%s/q%d/%s", v, q, via)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					ctx := testCtx(t, testTimeout)
					conn := hostPort(b)
					if via == "url" {
						conn = []string{"--url", b.URL(brokertest.MQTT)}
					}
					conn = append(conn, "-V", v, "-q", strconv.Itoa(q))
					base := "roundtrip/" + name
					topic := base + "/msg"
					payload := "hello at QoS " + strconv.Itoa(q)
					sub, first := subscribed(ctx, t, conn, base, "-v", "-C", "2")
					if want := base + "/ready ready"; first != want {
						t.Fatalf("first line %q, want the retained marker %q", first, want)
					}
					mustRun(ctx, t, nil, args([]string{"pub", "-t", topic, "-m", payload}, conn)...)
					r := sub.wait(t)
					if r.code != 0 || r.stderr != "" {
						t.Fatalf("want status 0 and an empty stderr; got %v", r)
					}
					if want := first + "\n" + topic + " " + payload + "\n"; r.stdout != want {
						t.Errorf("sub -v printed %q, want %q", r.stdout, want)
					}
				})
			}
		}
	}
	t.Run("without -v the payload only", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		sub, first := subscribed(ctx, t, hostPort(b), "roundtrip/plain", "-C", "2")
		if first != "ready" {
			t.Fatalf("first line %q, want the marker's payload alone", first)
		}
		mustRun(ctx, t, nil, args([]string{"pub", "-t", "roundtrip/plain/msg", "-m", "just this"}, hostPort(b))...)
		r := sub.wait(t)
		if r.code != 0 || r.stdout != "ready\njust this\n" || r.stderr != "" {
			t.Errorf("want status 0 and %q on stdout; got %v", "ready\njust this\n", r)
		}
	})
	t.Run("several filters", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		conn := hostPort(b)
		sub, first := subscribed(ctx, t, conn, "multi/a", "-t", "multi/b/+", "-v", "-C", "3", "-q", "1")
		if first != "multi/a/ready ready" {
			t.Fatalf("first line %q, want the retained marker", first)
		}
		mustRun(ctx, t, nil, args([]string{"pub", "-t", "multi/b/x", "-m", "bee", "-q", "1"}, conn)...)
		mustRun(ctx, t, nil, args([]string{"pub", "-t", "multi/a/y", "-m", "ay", "-q", "1"}, conn)...)
		r := sub.wait(t)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("want status 0; got %v", r)
		}
		if want := "multi/a/ready ready\nmulti/b/x bee\nmulti/a/y ay\n"; r.stdout != want {
			t.Errorf("sub printed %q, want %q", r.stdout, want)
		}
	})
}

// 2. Transports: WebSocket, TLS with a CA file, mutual TLS, Unix socket,
// and the errors of a TLS connection that cannot be trusted.
func TestTransports(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	ca := []string{"--cafile", b.CAFile()}

	// roundTrip subscribes to base/# by subConn and publishes to base/msg
	// by pubConn; the retained marker goes by pubConn too.
	roundTrip := func(t *testing.T, base string, subConn, pubConn []string) {
		t.Helper()
		ctx := testCtx(t, testTimeout)
		mustRun(ctx, t, nil, args([]string{"pub", "-t", base + "/ready", "-m", "ready", "-r", "-q", "1"}, pubConn)...)
		sub := start(ctx, t, args([]string{"sub", "-t", base + "/#", "-v", "-C", "2", "-q", "1"}, subConn)...)
		if first, want := sub.line(t), base+"/ready ready"; first != want {
			t.Fatalf("first line %q, want the retained marker %q", first, want)
		}
		mustRun(ctx, t, nil, args([]string{"pub", "-t", base + "/msg", "-m", "across", "-q", "1"}, pubConn)...)
		r := sub.wait(t)
		if want := base + "/ready ready\n" + base + "/msg across\n"; r.code != 0 || r.stderr != "" || r.stdout != want {
			t.Errorf("want status 0 and %q; got %v", want, r)
		}
	}
	t.Run("sub over ws, pub over mqtts with --cafile", func(t *testing.T) {
		t.Parallel()
		roundTrip(t, "tr/ws-mqtts",
			[]string{"--url", b.URL(brokertest.WS)},
			args([]string{"--url", b.URL(brokertest.MQTTS)}, ca))
	})
	t.Run("sub over wss, pub by -h/-p with --cafile, V5", func(t *testing.T) {
		t.Parallel()
		// --cafile without --url turns TLS on for -h/-p.
		roundTrip(t, "tr/wss-tls",
			args([]string{"--url", b.URL(brokertest.WSS), "-V", "5"}, ca),
			args([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.Port(brokertest.MQTTS)), "-V", "5"}, ca))
	})
	t.Run("mutual TLS with --cert and --key", func(t *testing.T) {
		t.Parallel()
		mtls := args([]string{"--url", b.URL(brokertest.MutualTLS), "--cert", b.ClientCertFile(), "--key", b.ClientKeyFile()}, ca)
		roundTrip(t, "tr/mtls", mtls, mtls)
	})
	t.Run("unix socket", func(t *testing.T) {
		t.Parallel()
		roundTrip(t, "tr/unix", []string{"--url", b.UnixURL()}, []string{"--url", b.UnixURL()})
	})
	t.Run("--insecure skips verification", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		mustRun(ctx, t, nil, "pub", "-t", "tr/insecure", "-m", "x", "--url", b.URL(brokertest.MQTTS), "--insecure")
	})
	t.Run("without --cafile TLS fails", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		r := runZ(ctx, t, nil, "pub", "-t", "tr/untrusted", "-m", "x", "--url", b.URL(brokertest.MQTTS))
		wantError(t, r, 1, "certificate")
	})
	t.Run("expired server certificate fails", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		r := runZ(ctx, t, nil, args([]string{"pub", "-t", "tr/expired", "-m", "x", "--url", b.URL(brokertest.Expired)}, ca)...)
		wantError(t, r, 1, "expired")
	})
	t.Run("mutual TLS without a client certificate fails", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		r := runZ(ctx, t, nil, args([]string{"pub", "-t", "tr/nocert", "-m", "x", "-q", "1", "--url", b.URL(brokertest.MutualTLS)}, ca)...)
		wantError(t, r, 1)
	})
}

// 3. pub -l publishes each line of standard input, in order.
func TestPubLines(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	ctx := testCtx(t, testTimeout)
	conn := hostPort(b)
	sub, first := subscribed(ctx, t, conn, "lines", "-v", "-C", "5", "-q", "1")
	if first != "lines/ready ready" {
		t.Fatalf("first line %q, want the retained marker", first)
	}
	// The last line has no newline: it is published all the same.
	stdin := []byte("first\nsecond line\n  third, with spaces  \nfourth")
	mustRun(ctx, t, stdin, args([]string{"pub", "-t", "lines/in", "-l", "-q", "1"}, conn)...)
	r := sub.wait(t)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("want status 0; got %v", r)
	}
	want := "lines/ready ready\nlines/in first\nlines/in second line\nlines/in   third, with spaces  \nlines/in fourth\n"
	if r.stdout != want {
		t.Errorf("sub printed\n%q\nwant\n%q", r.stdout, want)
	}
}

// 3. pub -f publishes the bytes of a file, whatever they are.
func TestPubFile(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	conn := hostPort(b)
	dir := t.TempDir()

	t.Run("binary, seen by --json", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		payload := []byte("bin\x00\xff\xfe\x01 and\nanother line\n")
		file := filepath.Join(dir, "binary")
		if err := os.WriteFile(file, payload, 0o600); err != nil {
			t.Fatal(err)
		}
		sub, _ := subscribed(ctx, t, conn, "file/bin", "--json", "-C", "2", "-q", "1")
		mustRun(ctx, t, nil, args([]string{"pub", "-t", "file/bin/data", "-f", file, "-q", "1"}, conn)...)
		m := decodeJSON(t, sub.line(t))
		if m["payload"] != nil {
			t.Errorf("a payload that is not UTF-8 came as text %q", m["payload"])
		}
		s, _ := m["payload_base64"].(string)
		got, err := base64.StdEncoding.DecodeString(s)
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("payload_base64 %q decodes to %q (%v), want %q", s, got, err, payload)
		}
		if r := sub.wait(t); r.code != 0 || r.stderr != "" {
			t.Errorf("want status 0; got %v", r)
		}
	})
	t.Run("text with newlines, printed raw", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		payload := []byte("line one\nline two\n\ttabbed\n")
		file := filepath.Join(dir, "text")
		if err := os.WriteFile(file, payload, 0o600); err != nil {
			t.Fatal(err)
		}
		// Retained, so that the later sub receives it without waiting.
		mustRun(ctx, t, nil, args([]string{"pub", "-t", "file/text", "-f", file, "-r", "-q", "1"}, conn)...)
		r := mustRun(ctx, t, nil, args([]string{"sub", "-t", "file/text", "-C", "1"}, conn)...)
		if want := string(payload) + "\n"; r.stdout != want {
			t.Errorf("sub printed %q, want %q", r.stdout, want)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		r := runZ(ctx, t, nil, args([]string{"pub", "-t", "file/none", "-f", filepath.Join(dir, "does-not-exist")}, conn)...)
		wantError(t, r, 1, "does-not-exist")
	})
}

// decodeJSON decodes one line of sub --json and checks that it holds only
// the fields sub documents.
func decodeJSON(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("sub --json printed %q: %v", line, err)
	}
	known := []string{"topic", "payload", "payload_base64", "qos", "retain", "content_type", "user_properties"}
	for k := range m {
		if !slices.Contains(known, k) {
			t.Errorf("unexpected field %q in %s", k, line)
		}
	}
	return m
}

// checkJSON checks the topic, text payload, QoS and retain flag of one
// line of sub --json.
func checkJSON(t *testing.T, line, topic, payload string, qos int, retain bool) {
	t.Helper()
	m := decodeJSON(t, line)
	if m["topic"] != topic || m["payload"] != payload || m["qos"] != float64(qos) || m["retain"] != retain {
		t.Errorf("got %s\nwant topic %q, payload %q, qos %d, retain %v", line, topic, payload, qos, retain)
	}
	// qos and retain are always there, even when zero and false.
	for _, k := range []string{"qos", "retain"} {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing in %s", k, line)
		}
	}
}

// 4. sub --json prints one JSON object per message.
func TestSubJSON(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	for _, v := range []string{"311", "5"} {
		t.Run("V"+v, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, testTimeout)
			conn := append(hostPort(b), "-V", v)
			base := "json/" + v
			sub, first := subscribed(ctx, t, conn, base, "--json", "-C", "4", "-q", "2")
			// The marker was retained and published at QoS 1.
			checkJSON(t, first, base+"/ready", "ready", 1, true)
			text := "héllo \"json\"\n\ttab"
			mustRun(ctx, t, nil, args([]string{"pub", "-t", base + "/two", "-m", text, "-q", "2"}, conn)...)
			checkJSON(t, sub.line(t), base+"/two", text, 2, false)
			mustRun(ctx, t, nil, args([]string{"pub", "-t", base + "/zero", "-m", "", "-q", "0"}, conn)...)
			checkJSON(t, sub.line(t), base+"/zero", "", 0, false)
			mustRun(ctx, t, nil, args([]string{"pub", "-t", base + "/one", "-m", "1", "-q", "1"}, conn)...)
			checkJSON(t, sub.line(t), base+"/one", "1", 1, false)
			r := sub.wait(t)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("want status 0; got %v", r)
			}
			if n := strings.Count(r.stdout, "\n"); n != 4 {
				t.Errorf("want 4 lines of JSON, got %d: %q", n, r.stdout)
			}
		})
	}
}

// 4. A message published with -r reaches a later subscriber, flagged as
// retained; an empty retained message removes it.
func TestRetained(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	ctx := testCtx(t, testTimeout)
	conn := hostPort(b)
	mustRun(ctx, t, nil, args([]string{"pub", "-t", "keep/this", "-m", "kept", "-r", "-q", "1"}, conn)...)
	mustRun(ctx, t, nil, args([]string{"pub", "-t", "keep/not", "-m", "not kept", "-q", "1"}, conn)...)

	r := mustRun(ctx, t, nil, args([]string{"sub", "-t", "keep/#", "--json", "-C", "1", "-q", "1", "-V", "5"}, conn)...)
	checkJSON(t, strings.TrimSuffix(r.stdout, "\n"), "keep/this", "kept", 1, true)
	r = mustRun(ctx, t, nil, args([]string{"sub", "-t", "keep/#", "-v", "-C", "1"}, conn)...)
	if r.stdout != "keep/this kept\n" {
		t.Errorf("sub -v printed %q, want %q", r.stdout, "keep/this kept\n")
	}

	// Clear it: a later sub with -W 1 hears nothing, and says so with
	// status 27, as mosquitto_sub.
	mustRun(ctx, t, nil, args([]string{"pub", "-t", "keep/this", "-m", "", "-r", "-q", "1"}, conn)...)
	r = runZ(ctx, t, nil, args([]string{"sub", "-t", "keep/#", "-W", "1"}, conn)...)
	wantError(t, r, 27, "timed out")
	if r.stdout != "" {
		t.Errorf("after clearing the retained message sub printed %q", r.stdout)
	}
}

// request runs req until srv answered it: the first requests may come
// before srv has subscribed, and time out after -W 2. It returns the first
// result that is not such a timeout, and fails the test if srv exits while
// no reply came.
func request(ctx context.Context, t *testing.T, srv *proc, req ...string) result {
	t.Helper()
	for {
		r := runZ(ctx, t, nil, args([]string{"req", "-W", "2"}, req)...)
		if r.code != 27 {
			return r
		}
		if srv.exited() {
			t.Fatalf("the responder exited without answering: %v\nlast request: %v", srv, r)
		}
	}
}

// 5. req and serve (MQTT 5.0).
func TestReqServe(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	conn := hostPort(b)
	lookPath := func(t *testing.T, name string) {
		if _, err := exec.LookPath(name); err != nil {
			t.Fatalf("this test runs `zmqtt serve -- %s ...` and needs %s on PATH: %v", name, name, err)
		}
	}

	t.Run("echo by default, then SIGINT", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		srv := start(ctx, t, args([]string{"serve", "-t", "svc/echo/+"}, conn)...)
		r := request(ctx, t, srv, args([]string{"-t", "svc/echo/1", "-m", "hello there"}, conn)...)
		if r.code != 0 || r.stdout != "hello there\n" || r.stderr != "" {
			t.Errorf("want status 0 and %q; got %v", "hello there\n", r)
		}
		// A second request gets its own reply.
		r = mustRun(ctx, t, nil, args([]string{"req", "-t", "svc/echo/2", "-m", "again", "-q", "1"}, conn)...)
		if r.stdout != "again\n" {
			t.Errorf("second reply %q, want %q", r.stdout, "again\n")
		}
		if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if r := srv.wait(t); r.code != 0 || r.stderr != "" {
			t.Errorf("an interrupted serve should exit 0 quietly; got %v", r)
		}
	})
	t.Run("a command after --", func(t *testing.T) {
		t.Parallel()
		lookPath(t, "tr")
		ctx := testCtx(t, testTimeout)
		srv := start(ctx, t, args([]string{"serve", "-t", "svc/upper"}, conn, []string{"--", "tr", "a-z", "A-Z"})...)
		r := request(ctx, t, srv, args([]string{"-t", "svc/upper", "-m", "make me loud"}, conn)...)
		if r.code != 0 || r.stdout != "MAKE ME LOUD\n" || r.stderr != "" {
			t.Errorf("want status 0 and %q; got %v", "MAKE ME LOUD\n", r)
		}
	})
	t.Run("a failing command", func(t *testing.T) {
		t.Parallel()
		lookPath(t, "false")
		ctx := testCtx(t, testTimeout)
		srv := start(ctx, t, args([]string{"serve", "-t", "svc/fail"}, conn, []string{"--", "false"})...)
		r := request(ctx, t, srv, args([]string{"-t", "svc/fail", "-m", "x"}, conn)...)
		wantError(t, r, 1, "responder failed", "exit status 1")
	})
	t.Run("serve -C 2 answers twice and exits", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		srv := start(ctx, t, args([]string{"serve", "-t", "svc/twice", "-C", "2"}, conn)...)
		r := request(ctx, t, srv, args([]string{"-t", "svc/twice", "-m", "one"}, conn)...)
		if r.code != 0 || r.stdout != "one\n" {
			t.Fatalf("want the reply %q; got %v", "one\n", r)
		}
		// serve is subscribed now, so one request with time to spare. Its
		// reply is the last one serve sends: it must not be lost as serve
		// stops.
		r = runZ(ctx, t, nil, args([]string{"req", "-t", "svc/twice", "-m", "two", "-W", "20"}, conn)...)
		if r.code != 0 || r.stdout != "two\n" {
			t.Errorf("want the reply %q; got %v\nserve: %v", "two\n", r, srv)
		}
		if r := srv.wait(t); r.code != 0 || r.stderr != "" {
			t.Errorf("serve -C 2 should exit 0 after two answers; got %v", r)
		}
	})
	// -D publish puts properties on the request (req) and on the replies
	// (serve); a third client sees both.
	t.Run("properties with -D", func(t *testing.T) {
		t.Parallel()
		// A broker of its own: the observer sees every reply on it.
		conn := hostPort(brokertest.Start(t))
		ctx := testCtx(t, testTimeout)
		obs, _ := subscribed(ctx, t, conn, "svc/props", "-t", "_zmqtt/reply/#", "-V", "5", "-F", "%t|%P|%C")
		srv := start(ctx, t, args([]string{"serve", "-t", "svc/props/+", "-D", "publish", "user-property", "served", "yes",
			"-D", "publish", "content-type", "text/x"}, conn)...)
		r := request(ctx, t, srv, args([]string{"-t", "svc/props/1", "-m", "hi", "-D", "publish", "user-property", "asked", "yes",
			"-D", "publish", "user-property", "asked", "again"}, conn)...)
		if r.code != 0 || r.stdout != "hi\n" {
			t.Fatalf("want the reply %q; got %v", "hi\n", r)
		}
		for {
			l := obs.line(t)
			if strings.HasPrefix(l, "_zmqtt/reply/") {
				if _, rest, _ := strings.Cut(l, "|"); rest != "served:yes|text/x" {
					t.Errorf("reply seen as %q, want the user property and content type of serve's -D", l)
				}
				break
			}
			if l != "svc/props/1|asked:yes asked:again|" {
				t.Errorf("request seen as %q, want the user properties of req's -D", l)
			}
		}
	})
	t.Run("req -W times out without a responder", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		r := runZ(ctx, t, nil, args([]string{"req", "-t", "svc/nobody", "-m", "anyone?", "-W", "1"}, conn)...)
		wantError(t, r, 27, "timed out", "svc/nobody")
		if r.stdout != "" {
			t.Errorf("req printed %q without a reply", r.stdout)
		}
	})
	t.Run("req and serve need MQTT 5.0", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		for _, cmd := range []string{"req", "serve"} {
			r := runZ(ctx, t, nil, args([]string{cmd, "-t", "svc/old", "-V", "311"}, conn)...)
			wantError(t, r, 1, "MQTT 5.0")
		}
	})
}

// freePort returns a TCP port on 127.0.0.1 that nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// 6. Exit status and the one-line error.
func TestErrors(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	conn := hostPort(b)

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		port := strconv.Itoa(freePort(t))
		for _, cmd := range [][]string{
			{"pub", "-t", "x", "-m", "y", "-h", "127.0.0.1", "-p", port},
			{"sub", "-t", "x", "-h", "127.0.0.1", "-p", port, "-V", "5"},
			{"req", "-t", "x", "--url", "mqtt://127.0.0.1:" + port},
		} {
			wantError(t, runZ(ctx, t, nil, cmd...), 1, "connection refused")
		}
	})
	t.Run("credentials", func(t *testing.T) {
		t.Parallel()
		auth := brokertest.Start(t, brokertest.Config{Users: map[string]string{"alice": "secret"}})
		ctx := testCtx(t, testTimeout)
		ac := hostPort(auth)
		mustRun(ctx, t, nil, args([]string{"pub", "-t", "x", "-m", "y", "-u", "alice", "-P", "secret"}, ac)...)
		// Mosquitto refuses a wrong password and a missing user name
		// alike, with "not authorized" (return code 5 on 3.1.1, reason
		// 0x87 on 5.0); zmqtt names the CONNACK refusal and exits with
		// its code, as mosquitto_pub and mosquitto_sub do.
		for _, v := range []struct {
			flag   string
			status int
		}{{"311", 5}, {"5", 0x87}} {
			r := runZ(ctx, t, nil, args([]string{"pub", "-t", "x", "-m", "y", "-u", "alice", "-P", "wrong", "-V", v.flag}, ac)...)
			wantError(t, r, v.status, "CONNACK", "not authorized")
			r = runZ(ctx, t, nil, args([]string{"sub", "-t", "x", "-V", v.flag}, ac)...)
			wantError(t, r, v.status, "CONNACK", "not authorized")
		}
	})
	t.Run("invalid topic", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		for _, v := range []string{"311", "5"} {
			r := runZ(ctx, t, nil, args([]string{"pub", "-t", "a/#", "-m", "x", "-V", v}, conn)...)
			wantError(t, r, 1, "topic")
			r = runZ(ctx, t, nil, args([]string{"sub", "-t", "a/#/b", "-V", v}, conn)...)
			wantError(t, r, 1, "filter")
		}
	})
	t.Run("usage errors", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		for _, c := range []struct {
			args []string
			msg  string
		}{
			{[]string{"frobnicate"}, `unknown command "frobnicate"`},
			{[]string{"pub", "-m", "no topic"}, "pub needs -t"},
			{[]string{"sub", "-v"}, "sub needs -t"},
			{[]string{"req", "-m", "x"}, "req needs -t"},
			{[]string{"serve"}, "serve needs -t"},
			{[]string{"pub", "-t", "x", "-l", "-f", "file"}, "only one kind of message"},
			{[]string{"pub", "-t", "x"}, "pub needs a message"},
			{[]string{"sub", "-t", "x", "stray"}, `unexpected argument "stray"`},
			{[]string{"sub", "-t", "x", "--bogus"}, "unknown option --bogus"},
			{[]string{"sub", "-t", "x", "-F", "%Z"}, "invalid format specifier 'Z'"},
			{[]string{"sub", "-t", "x", "-D", "publish", "user-property", "k"}, "needs a name and a value"},
			{[]string{"pub", "-t", "x", "-m", "y", "-V", "311", "-D", "publish", "content-type", "t"}, "MQTT 3.1.1"},
			{[]string{"pub", "-t", "x", "-m", "y", "-x", "60"}, "-V 5"},
			{[]string{"sub", "-t", "x", "-c"}, "-c needs a client identifier"},
			{[]string{"sub", "-t", "x", "--psk", "00"}, "--psk is not supported"},
			{[]string{"bench", "-size", "8"}, "-size >= 16"},
		} {
			// Status 1, as mosquitto_pub and mosquitto_sub.
			wantError(t, runZ(ctx, t, nil, c.args...), 1, c.msg)
		}
	})
	t.Run("bad values", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		wantError(t, runZ(ctx, t, nil, args([]string{"pub", "-t", "x", "-m", "y", "-q", "3"}, conn)...), 1, `-q: "3" is not a whole number from 0 to 2`)
		wantError(t, runZ(ctx, t, nil, args([]string{"pub", "-t", "x", "-m", "y", "-V", "4"}, conn)...), 1, "-V 4: unknown protocol version")
		wantError(t, runZ(ctx, t, nil, args([]string{"pub", "-t", "x", "-m", "y", "-V", "mqttv31"}, conn)...), 1, "MQTT 3.1 is not supported")
		wantError(t, runZ(ctx, t, nil, args([]string{"pub", "-t", "x", "-m", "y", "-D", "connect", "receive-maximum", "0"}, conn)...), 1, "receive-maximum", "from 1 to 65535")
	})
	t.Run("--quiet", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		port := strconv.Itoa(freePort(t))
		r := runZ(ctx, t, nil, "sub", "-t", "x", "-h", "127.0.0.1", "-p", port, "--quiet")
		if r.code != 1 || r.stderr != "" || r.stdout != "" {
			t.Errorf("--quiet: want status 1 and nothing printed; got %v", r)
		}
		// Usage errors are printed all the same, as mosquitto does.
		wantError(t, runZ(ctx, t, nil, "sub", "-t", "a/#/b", "--quiet"), 1, "invalid topic filter")
	})
	t.Run("sub -C not reached within -W", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		r := runZ(ctx, t, nil, args([]string{"sub", "-t", "quiet/topic", "-C", "1", "-W", "1"}, conn)...)
		wantError(t, r, 27, "timed out")
	})
	t.Run("no command, help", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, testTimeout)
		r := runZ(ctx, t, nil)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "usage: zmqtt <command>") {
			t.Errorf("without a command: want status 1 and the usage on stderr; got %v", r)
		}
		r = mustRun(ctx, t, nil, "help")
		if !strings.HasPrefix(r.stdout, "usage: zmqtt <command>") {
			t.Errorf("help: want the usage on stdout; got %v", r)
		}
		// A command's --help (or -help) prints its usage on stdout and
		// exits 1, as mosquitto_sub --help does.
		for _, cmd := range []string{"pub", "sub", "req", "serve", "bench", "demo"} {
			for _, h := range []string{"--help", "-help"} {
				r := runZ(ctx, t, nil, cmd, h)
				if r.code != 1 || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: zmqtt "+cmd) {
					t.Errorf("%s %s: want status 1 and the usage on stdout; got %v", cmd, h, r)
				}
			}
		}
	})
}

// 7. The demo starts its own broker and walks through the SDK.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, demoTimeout)
	r := mustRun(ctx, t, nil, "demo")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^started a private Mosquitto at mqtt://127\.0\.0\.1:\d+$`),
		regexp.MustCompile(`^QoS 0:  published and received on demo/qos/0: "hello at QoS 0"$`),
		regexp.MustCompile(`^QoS 1:  published and received on demo/qos/1: "hello at QoS 1"$`),
		regexp.MustCompile(`^QoS 2:  published and received on demo/qos/2: "hello at QoS 2"$`),
		regexp.MustCompile(`^retained: a new subscription received "kept by the broker" \(retain flag true\)$`),
		regexp.MustCompile(`^will: after an abrupt disconnect the broker published "demo-doomed is gone"$`),
		regexp.MustCompile(`^request/response: asked "make me loud", the responder answered "MAKE ME LOUD" on _zmqtt/reply/[0-9a-f]{32}$`),
		regexp.MustCompile(`^stopping the broker; done$`),
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("demo printed %d lines, want %d:\n%s", len(lines), len(want), r.stdout)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %s", i+1, lines[i], re)
		}
	}
}

// 8. bench with small numbers reports throughput and latency.
func TestBench(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	for _, c := range []struct {
		name             string
		flags            []string
		pubs, subs, each int
		qos              int
	}{
		{"one to one", []string{"-count", "200", "-q", "1"}, 1, 1, 200, 1},
		{"two to two", []string{"-pubs", "2", "-subs", "2", "-count", "100", "-size", "32", "-q", "2", "-V", "5"}, 2, 2, 100, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, testTimeout)
			r := mustRun(ctx, t, nil, args([]string{"bench"}, c.flags, hostPort(b))...)
			total := c.pubs * c.each
			size := "64"
			if i := slices.Index(c.flags, "-size"); i >= 0 {
				size = c.flags[i+1]
			}
			num := `[0-9]+(\.[0-9]+)?`
			dur := `[0-9.]+(ns|µs|ms|s)|[0-9hms.]+`
			want := []*regexp.Regexp{
				regexp.MustCompile(fmt.Sprintf(`^published %d messages of %s B at QoS %d in (%s): %s msg/s$`, total, size, c.qos, dur, num)),
				regexp.MustCompile(fmt.Sprintf(`^received %d of %d \(%d subscribers\) in (%s): %s msg/s$`, total*c.subs, total*c.subs, c.subs, dur, num)),
				regexp.MustCompile(fmt.Sprintf(`^latency p50 (%s)  p90 (%s)  p99 (%s)  max (%s)$`, dur, dur, dur, dur)),
			}
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if len(lines) != len(want) {
				t.Fatalf("bench printed %d lines, want %d:\n%s", len(lines), len(want), r.stdout)
			}
			for i, re := range want {
				if !re.MatchString(lines[i]) {
					t.Errorf("line %d: %q does not match %s", i+1, lines[i], re)
				}
			}
		})
	}
}
