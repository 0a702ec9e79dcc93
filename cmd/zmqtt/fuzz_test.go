package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/fuzz/gen"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// fragileBroker is a small MQTT broker built on the codec that answers
// valid packets as a broker does (CONNACK, SUBACK, UNSUBACK, PUBACK,
// PUBREC, PUBCOMP, PINGRESP; no routing) and closes the connection on a
// packet its strict decoder refuses, except for two it was built to fail
// on: a PUBLISH with QoS 3 in its fixed header makes it crash (it stops
// listening and drops every connection, as a process that exits), and a
// whole SUBSCRIBE with packet identifier 0 makes it hang (it stops reading
// that connection and never answers or closes it).
type fragileBroker struct {
	ln      net.Listener
	mu      sync.Mutex
	conns   map[net.Conn]bool
	crashed bool
	done    chan struct{} // closed by close: releases the hung connections
	wg      sync.WaitGroup
}

func startFragile(t *testing.T) *fragileBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fragileBroker{ln: ln, conns: map[net.Conn]bool{}, done: make(chan struct{})}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *fragileBroker) url() string { return "mqtt://" + b.ln.Addr().String() }

// accept serves connections until the listener closes.
func (b *fragileBroker) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.crashed {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go b.serve(c)
	}
}

// crash drops everything, as a broker process that exits.
func (b *fragileBroker) crash() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.crashed = true
	b.ln.Close()
	for c := range b.conns {
		c.Close()
	}
}

func (b *fragileBroker) close() {
	b.crash()
	b.mu.Lock()
	select {
	case <-b.done:
	default:
		close(b.done)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// serve runs one connection; it returns when the connection ends (or,
// hung, when the broker is closed).
func (b *fragileBroker) serve(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		c.Close()
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
	}()
	var buf []byte
	tmp := make([]byte, 4096)
	v := codec.Version(0)
	for {
		for len(buf) > 0 {
			if buf[0]>>4 == byte(codec.TypePublish) && buf[0]&0x06 == 0x06 {
				b.crash()
				return
			}
			h, n, err := codec.Frame(buf, 0)
			if errors.Is(err, codec.ErrIncomplete) {
				break
			}
			if err != nil {
				return
			}
			pkt := buf[:n]
			if h.Type == codec.TypeSubscribe && len(pkt) >= h.Len+2 && pkt[h.Len] == 0 && pkt[h.Len+1] == 0 {
				<-b.done // hang
				return
			}
			if v == 0 {
				if v, err = codec.ConnectVersion(pkt); err != nil {
					return
				}
			}
			d := codec.Decoder{Version: v, From: codec.RoleClient}
			p, _, err := d.Decode(pkt)
			if err != nil {
				if v == codec.V5 {
					var ce *codec.Error
					if errors.As(err, &ce) {
						out, _ := codec.Append(nil, &codec.Disconnect{ReasonCode: ce.Reason}, v)
						c.Write(out)
					}
				}
				return
			}
			var reply codec.Packet
			switch p := p.(type) {
			case *codec.Connect:
				reply = &codec.Connack{}
			case *codec.Subscribe:
				codes := make([]codec.ReasonCode, len(p.Subscriptions))
				for i, s := range p.Subscriptions {
					codes[i] = codec.ReasonCode(s.QoS)
				}
				reply = &codec.Suback{PacketID: p.PacketID, ReasonCodes: codes}
			case *codec.Unsubscribe:
				u := &codec.Unsuback{PacketID: p.PacketID}
				if v == codec.V5 {
					u.ReasonCodes = make([]codec.ReasonCode, len(p.Filters))
				}
				reply = u
			case *codec.Publish:
				switch p.QoS {
				case 1:
					reply = &codec.Puback{PacketID: p.PacketID}
				case 2:
					reply = &codec.Pubrec{PacketID: p.PacketID}
				}
			case *codec.Pubrel:
				reply = &codec.Pubcomp{PacketID: p.PacketID}
			case *codec.Pingreq:
				reply = &codec.Pingresp{}
			case *codec.Disconnect:
				return
			}
			if reply != nil {
				out, err := codec.Append(nil, reply, v)
				if err != nil {
					return
				}
				if _, err := c.Write(out); err != nil {
					return
				}
			}
			buf = buf[n:]
		}
		n, err := c.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
	}
}

// readFinding parses a reproducer and checks its form.
func readFinding(t *testing.T, path string) finding {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f finding
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.Kind == "" || f.Detail == "" || f.URL == "" || len(f.Connections) == 0 || f.Timeout == "" {
		t.Fatalf("%s: incomplete reproducer %+v", path, f)
	}
	for _, c := range f.Connections {
		if len(c.Steps) == 0 {
			t.Fatalf("%s: a connection without steps", path)
		}
		for _, s := range c.Steps {
			if _, err := hex.DecodeString(s.Send); err != nil || s.Send == "" || s.Note == "" {
				t.Fatalf("%s: bad step %+v", path, s)
			}
		}
	}
	return f
}

// hasStep reports whether the last connection of f sent bytes for which
// match holds.
func hasStep(f finding, match func([]byte) bool) bool {
	for _, s := range f.Connections[len(f.Connections)-1].Steps {
		b, _ := hex.DecodeString(s.Send)
		if match(b) {
			return true
		}
	}
	return false
}

// TestFuzzFindsCrashAndHang runs the broker fuzzer against the fragile
// broker until it has found both of its faults (a new broker after each
// crash, as a supervisor restarts one), bounded by a deadline, on both
// versions. Each reproducer must hold the packet that caused the fault and
// replay it against a fresh broker.
func TestFuzzFindsCrashAndHang(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testCtx(t, testTimeout)
			out := t.TempDir()
			found := map[string]string{} // kind -> reproducer
			start := time.Now()
			for round := 0; (found[kindCrash] == "" || found[kindHang] == "") && ctx.Err() == nil; round++ {
				b := startFragile(t)
				cfg := fuzzConfig{url: b.url(), version: v, duration: 5 * time.Second, seed: uint64(100*int(v) + round),
					out: out, timeout: 300 * time.Millisecond, steps: defaultFuzzSteps}
				rctx, cancel := context.WithCancel(ctx)
				sum, err := runFuzz(rctx, cfg)
				cancel()
				b.close()
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if sum.Executions == 0 || sum.Mutated == 0 {
					t.Fatalf("round %d: nothing done: %+v", round, sum)
				}
				for _, f := range sum.Findings {
					if found[f.Kind] == "" {
						found[f.Kind] = f.File
					}
					if f.Kind == kindViolation {
						t.Errorf("the fragile broker breaks no rule of the session, yet: %s (%s)", f.Detail, f.File)
					}
				}
				if sum.Stopped != "the broker went away" && !hasKind(sum, kindCrash) && round > 0 && time.Since(start) > 30*time.Second {
					break
				}
			}
			if found[kindCrash] == "" || found[kindHang] == "" {
				t.Fatalf("within %v the fuzzer found %v; want a crash and a hang", time.Since(start).Round(time.Millisecond), found)
			}
			t.Logf("found a crash and a hang in %v", time.Since(start).Round(time.Millisecond))

			crash := readFinding(t, found[kindCrash])
			if !hasStep(crash, func(b []byte) bool { return len(b) > 0 && b[0]>>4 == 3 && b[0]&6 == 6 }) {
				t.Fatalf("the crash reproducer does not hold a PUBLISH with QoS 3: %+v", crash)
			}
			hang := readFinding(t, found[kindHang])
			if !hasStep(hang, func(b []byte) bool { return len(b) >= 4 && b[0] == 0x82 && bytes.Contains(b[1:5], []byte{0, 0}) }) {
				t.Fatalf("the hang reproducer does not hold a SUBSCRIBE with packet identifier 0: %+v", hang)
			}
			if crash.Version != verFlag(v) || hang.Version != verFlag(v) {
				t.Fatalf("versions %q, %q; want %q", crash.Version, hang.Version, verFlag(v))
			}

			for _, file := range []string{found[kindCrash], found[kindHang]} {
				want := readFinding(t, file).Kind
				b := startFragile(t)
				var stdout bytes.Buffer
				err := replayFinding(ctx, fuzzConfig{replay: file, url: b.url(), timeout: defaultFuzzTimeout}, &stdout)
				b.close()
				var fe *findingsError
				if !errors.As(err, &fe) || !strings.Contains(stdout.String(), "reproduced: "+want) {
					t.Fatalf("replaying %s (%s): %v\n%s", file, want, err, stdout.String())
				}
			}
		})
	}
}

func hasKind(s *summary, kind string) bool {
	for _, f := range s.Findings {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

// TestFuzzReplayOfHealthyBroker: a reproducer played against a broker
// without the fault does not reproduce, and the command says so with
// status 0.
func TestFuzzReplayOfHealthyBroker(t *testing.T) {
	ctx := testCtx(t, testTimeout)
	b := startFragile(t)
	connect, _ := codec.Append(nil, &codec.Connect{ClientID: "x", CleanStart: true}, codec.V311)
	f := finding{Kind: kindHang, Detail: "test", URL: b.url(), Version: "311", Timeout: "1s",
		Connections: []connRecord{{Steps: []step{
			{Send: hex.EncodeToString(connect), Note: "CONNECT", Await: "CONNACK"},
			{Send: "c000", Note: "PINGREQ", Await: "PINGRESP or close"},
		}}}}
	data, _ := json.Marshal(f)
	file := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := replayFinding(ctx, fuzzConfig{replay: file, timeout: time.Second}, &stdout); err != nil ||
		!strings.Contains(stdout.String(), "not reproduced") {
		t.Fatalf("replay: %v\n%s", err, stdout.String())
	}
}

// TestFuzzFramed checks the framing rule that separates a hang from a
// broker waiting for the rest of a packet.
func TestFuzzFramed(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{nil, true},
		{[]byte{0xc0, 0x00}, true},
		{[]byte{0xc0}, false},
		{[]byte{0x30, 0x03, 0x00, 0x01}, false},
		{[]byte{0x30, 0x03, 0x00, 0x01, 'a', 0xc0, 0x00}, true},
		{[]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}, true}, // five bytes of length: refusable at once
		{[]byte{0x30, 0xff, 0xff}, false},
	} {
		if got := framed(c.b); got != c.want {
			t.Errorf("framed(% x) = %v, want %v", c.b, got, c.want)
		}
	}
	for _, s := range []string{"CONNACK", "SUBACK 3", "PINGRESP or close", "PUBCOMP 65535 or close"} {
		w, ok := parseWant(s)
		if !ok || w.String() != s {
			t.Errorf("parseWant(%q) = %v, %v", s, w, ok)
		}
	}
	if _, ok := parseWant("NOPE 1"); ok {
		t.Error("parseWant accepted NOPE")
	}
}

// TestFuzzMosquitto runs `zmqtt fuzz` against a private Mosquitto for a
// bounded time on both versions. What it finds is a finding about
// Mosquitto, reported in the log; the test asserts that the fuzzer ran,
// connected, sent mutated packets of every type of the version, and wrote a
// well-formed summary (and a well-formed reproducer per finding), with the
// exit status that matches.
func TestFuzzMosquitto(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testCtx(t, testTimeout)
			out := t.TempDir()
			r := runZ(ctx, t, nil, "fuzz", "--url", b.URL(brokertest.MQTT), "-V", verFlag(v), "--duration", "3s",
				"--seed", "7", "--out", out, "--timeout", "1s")
			data, err := os.ReadFile(filepath.Join(out, "summary.json"))
			if err != nil {
				t.Fatalf("no summary.json: %v\n%v", err, r)
			}
			var sum summary
			if err := json.Unmarshal(data, &sum); err != nil {
				t.Fatalf("summary.json: %v", err)
			}
			if sum.Executions == 0 || sum.Connections <= sum.Executions || sum.Mutated == 0 || sum.Packets <= sum.Mutated ||
				sum.Seed != 7 || sum.Version != verFlag(v) || sum.Stopped == "" {
				t.Fatalf("summary %+v", sum)
			}
			for _, typ := range gen.Types(v) {
				if sum.MutatedByType[typ.String()] == 0 {
					t.Errorf("no mutated %v sent: %v", typ, sum.MutatedByType)
				}
			}
			for _, c := range gen.Classes(v) {
				if sum.MutatedByClass[c.String()] == 0 {
					t.Errorf("no mutant of class %v sent: %v", c, sum.MutatedByClass)
				}
			}
			if !strings.Contains(r.stdout, "executions") || !strings.Contains(r.stdout, "findings") {
				t.Errorf("no summary on stdout: %v", r)
			}
			wantCode := 0
			if len(sum.Findings) > 0 {
				wantCode = 1
			}
			if r.code != wantCode {
				t.Fatalf("status %d with %d findings: %v", r.code, len(sum.Findings), r)
			}
			for _, f := range sum.Findings {
				readFinding(t, f.File)
				t.Logf("finding about Mosquitto: %s: %s (%s)", f.Kind, f.Detail, f.File)
			}
			t.Logf("%d executions, %d connections, %d packets (%d mutated, %d connections closed by Mosquitto), %d findings",
				sum.Executions, sum.Connections, sum.Packets, sum.Mutated, sum.Closed, len(sum.Findings))
		})
	}
}

// TestFuzzUsage: command-line mistakes give status 1 (as every usage
// error of zmqtt, like mosquitto_pub) and one line saying
// what is wrong; a broker that is not there is an error (status 1) before
// any fuzzing, not a crash finding.
func TestFuzzUsage(t *testing.T) {
	ctx := testCtx(t, testTimeout)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fuzz"}, 1, "--url is required"},
		{[]string{"fuzz", "--url", "mqtt://127.0.0.1:1", "-V", "6"}, 1, "-V must be 311 or 5"},
		{[]string{"fuzz", "--url", "gopher://x"}, 1, "fuzz:"},
		{[]string{"fuzz", "--url", "mqtt://127.0.0.1:1", "--timeout", "0s"}, 1, "must be positive"},
		{[]string{"fuzz", "--url", "mqtt://127.0.0.1:1", "--out", t.TempDir(), "--timeout", "500ms"}, 1, "does not answer a CONNECT"},
		{[]string{"fuzz", "--replay", filepath.Join(t.TempDir(), "missing.json")}, 1, "missing.json"},
	} {
		r := runZ(ctx, t, nil, c.args...)
		if r.code != c.code || !strings.HasPrefix(r.stderr, "zmqtt: ") || !strings.Contains(r.stderr, c.want) ||
			strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("want status %d and %q on one line of stderr; got %v", c.code, c.want, r)
		}
	}
}
