package mqtttest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/mqtttest"
)

// TestMain checks that no goroutine outlives the tests: the one that
// waits for each broker process must end when the broker stops. Run as
// the orphan helper (see TestBrokerDiesWithTestProcess), the test binary
// starts a broker and waits to be killed instead.
func TestMain(m *testing.M) {
	if os.Getenv(orphanHelperEnv) == "1" {
		orphanHelper()
		return
	}
	goleak.VerifyTestMain(m)
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// connect5 connects an MQTT 5.0 client and disconnects it at cleanup.
func connect5(t *testing.T, ctx context.Context, cfg client.Config) *client.Client5 {
	t.Helper()
	c, err := client.New5(client.Config5{Config: cfg, SessionExpiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		c.Disconnect(ctx, 0, nil)
		t.Fatalf("connect to %s: %v", cfg.URL, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Disconnect(ctx, 0, nil)
	})
	return c
}

// TestListeners connects the SDK's client over every listener the package
// documents, with the TLS configurations it hands out, and sends a QoS 1
// message round trip on each: MQTT 5.0 everywhere, MQTT 3.1.1 as well over
// plain TCP.
func TestListeners(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	cases := []struct {
		l   mqtttest.Listener
		tls *tls.Config
	}{
		{mqtttest.TCP, nil},
		{mqtttest.TLS, b.TLSConfig()},
		{mqtttest.MutualTLS, b.ClientTLSConfig()},
		{mqtttest.WebSocket, nil},
		{mqtttest.WebSocketTLS, b.TLSConfig()},
		{mqtttest.Unix, nil},
	}
	for _, c := range cases {
		t.Run(string(c.l), func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			url := b.URL(c.l)
			cl := connect5(t, ctx, client.Config{URL: url, ClientID: "kit-" + string(c.l), TLS: c.tls})
			topic := "kit/" + string(c.l)
			sub, err := cl.Subscribe(ctx, []string{topic}, client.AtLeastOnce)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Publish(ctx, topic, []byte("over "+url), client.AtLeastOnce); err != nil {
				t.Fatal(err)
			}
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Topic != topic || string(m.Payload) != "over "+url || m.QoS != client.AtLeastOnce {
				t.Errorf("got %s %q QoS %d, want %s %q QoS 1", m.Topic, m.Payload, m.QoS, topic, "over "+url)
			}
		})
	}
	t.Run("mqtt-3.1.1", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		c, err := client.New(client.Config{URL: b.URL(mqtttest.TCP), ClientID: "kit-311"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(ctx)
		sub, err := c.Subscribe(ctx, []string{"kit/311"}, client.ExactlyOnce)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, "kit/311", []byte("v3"), client.ExactlyOnce); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.Next(ctx); err != nil || string(m.Payload) != "v3" || m.QoS != client.ExactlyOnce {
			t.Fatalf("got %q QoS %d (%v), want \"v3\" QoS 2", m.Payload, m.QoS, err)
		}
	})
}

// TestURLs checks the addresses the broker hands out: loopback only, a
// port of its own per listener (never the standard 1883 and 8883), the
// scheme each client library expects, and "" for a name that is not a
// listener.
func TestURLs(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	want := map[mqtttest.Listener]string{
		mqtttest.TCP:          `^mqtt://127\.0\.0\.1:\d+$`,
		mqtttest.TLS:          `^mqtts://127\.0\.0\.1:\d+$`,
		mqtttest.MutualTLS:    `^mqtts://127\.0\.0\.1:\d+$`,
		mqtttest.ExpiredTLS:   `^mqtts://127\.0\.0\.1:\d+$`,
		mqtttest.WrongHostTLS: `^mqtts://127\.0\.0\.1:\d+$`,
		mqtttest.WebSocket:    `^ws://127\.0\.0\.1:\d+/mqtt$`,
		mqtttest.WebSocketTLS: `^wss://127\.0\.0\.1:\d+/mqtt$`,
		mqtttest.Unix:         `^unix:///.*/mqtt\.sock$`,
	}
	ports := map[int]mqtttest.Listener{}
	for l, re := range want {
		if u := b.URL(l); !regexp.MustCompile(re).MatchString(u) {
			t.Errorf("URL(%s) = %q, want %s", l, u, re)
		}
		if l == mqtttest.Unix {
			if p := b.Port(l); p != 0 {
				t.Errorf("Port(Unix) = %d, want 0", p)
			}
			if a := b.Addr(l); "unix://"+a != b.URL(l) {
				t.Errorf("Addr(Unix) = %q, URL(Unix) = %q", a, b.URL(l))
			}
			continue
		}
		p := b.Port(l)
		if p == 0 || p == 1883 || p == 8883 {
			t.Errorf("Port(%s) = %d", l, p)
		}
		if other, dup := ports[p]; dup {
			t.Errorf("%s and %s share port %d", l, other, p)
		}
		ports[p] = l
		if a := b.Addr(l); a != fmt.Sprintf("127.0.0.1:%d", p) {
			t.Errorf("Addr(%s) = %q", l, a)
		}
	}
	if u, a, p := b.URL("nope"), b.Addr("nope"), b.Port("nope"); u != "" || a != "" || p != 0 {
		t.Errorf("unknown listener: URL %q, Addr %q, Port %d; want empty", u, a, p)
	}
}

// TestTLSListenersRefuse checks the refusals the TLS listeners promise:
// MutualTLS without a client certificate or with one from another CA, and
// a client that verifies ExpiredTLS and WrongHostTLS.
func TestTLSListenersRefuse(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	dial := func(t *testing.T, l mqtttest.Listener, conf *tls.Config) (*tls.Conn, error) {
		ctx := testCtx(t, 10*time.Second)
		d := tls.Dialer{Config: conf}
		c, err := d.DialContext(ctx, "tcp", b.Addr(l))
		if err != nil {
			return nil, err
		}
		dl, _ := ctx.Deadline()
		c.SetDeadline(dl)
		t.Cleanup(func() { c.Close() })
		return c.(*tls.Conn), nil
	}
	t.Run("expired", func(t *testing.T) {
		_, err := dial(t, mqtttest.ExpiredTLS, b.TLSConfig())
		var ce x509.CertificateInvalidError
		if !errors.As(err, &ce) || ce.Reason != x509.Expired {
			t.Fatalf("err = %v, want an expired certificate", err)
		}
	})
	t.Run("wrong-host", func(t *testing.T) {
		_, err := dial(t, mqtttest.WrongHostTLS, b.TLSConfig())
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("err = %v, want a host name mismatch", err)
		}
	})
	t.Run("valid-certificate", func(t *testing.T) {
		c, err := dial(t, mqtttest.TLS, b.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ConnectionState().PeerCertificates[0].IPAddresses; len(got) == 0 || !got[0].Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("server certificate names %v, want 127.0.0.1 first", got)
		}
	})
	// Under TLS 1.3 the client's handshake ends before the broker has
	// checked the client certificate: the refusal arrives as an alert on
	// the first read.
	for name, conf := range map[string]*tls.Config{
		"mutual-without-certificate": b.TLSConfig(),
		"mutual-untrusted":           b.UntrustedClientTLSConfig(),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := dial(t, mqtttest.MutualTLS, conf)
			if err == nil {
				_, err = c.Read(make([]byte, 1))
			}
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("err = %v, want the broker's refusal", err)
			}
		})
	}
}

// TestRestartKeepsPersistentSession: with WithPersistence, a session with
// a subscription and a QoS 1 message queued for it while its client was
// away survive Restart; without it the restarted broker has forgotten the
// session: the CONNACK says whether the broker kept it [MQTT-3.2.2-3],
// and a resumed session gets what was queued for it [MQTT-3.1.2-5].
func TestRestartKeepsPersistentSession(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persistence=%t", persist), func(t *testing.T) {
			var opts []mqtttest.Option
			if persist {
				opts = append(opts, mqtttest.WithPersistence())
			}
			b := mqtttest.StartMosquitto(t, opts...)
			ctx := testCtx(t, 30*time.Second)
			keeper := client.Config{URL: b.URL(mqtttest.TCP), ClientID: "keeper", Persistent: true}

			// The session subscribes, then its client leaves.
			k := connect5(t, ctx, keeper)
			if _, err := k.Subscribe(ctx, []string{"kit/keep"}, client.AtLeastOnce); err != nil {
				t.Fatal(err)
			}
			if err := k.Disconnect(ctx, 0, nil); err != nil {
				t.Fatal(err)
			}
			pub := connect5(t, ctx, client.Config{URL: b.URL(mqtttest.TCP), ClientID: "publisher"})
			if _, err := pub.Publish(ctx, "kit/keep", []byte("while away"), client.AtLeastOnce); err != nil {
				t.Fatal(err)
			}
			if err := pub.Disconnect(ctx, 0, nil); err != nil {
				t.Fatal(err)
			}

			port := b.Port(mqtttest.TCP)
			if err := b.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if !b.Running() || b.Port(mqtttest.TCP) != port {
				t.Fatalf("after Restart: running %t, port %d (was %d)", b.Running(), b.Port(mqtttest.TCP), port)
			}

			k = connect5(t, ctx, keeper)
			info, err := k.Info()
			if err != nil {
				t.Fatal(err)
			}
			if info.SessionPresent != persist {
				t.Fatalf("session present %t after restart, want %t", info.SessionPresent, persist)
			}
			if !persist {
				return
			}
			sub, err := k.Subscribe(ctx, []string{"kit/keep"}, client.AtLeastOnce)
			if err != nil {
				t.Fatal(err)
			}
			if m, err := sub.Next(ctx); err != nil || string(m.Payload) != "while away" {
				t.Fatalf("queued message after restart: %q, %v", m.Payload, err)
			}
		})
	}
}

// fatalRecorder is a testing.TB whose Fatalf records its message and ends
// the goroutine, as the real one does, without failing the test.
type fatalRecorder struct {
	testing.TB
	mu     sync.Mutex
	fatals []string
	errors []string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func (r *fatalRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestMissingBinary: when mosquitto cannot be found, StartMosquitto fails
// the test (it does not skip it) with a message that says how to install
// it, and Launch returns an error matching ErrNotInstalled.
func TestMissingBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir", "mosquitto")
	rec := &fatalRecorder{TB: t}
	started := make(chan *mqtttest.Broker, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		started <- mqtttest.StartMosquitto(rec, mqtttest.WithBinary(missing))
	}()
	select {
	case <-done:
	case <-t.Context().Done():
		t.Fatal("StartMosquitto did not return")
	}
	if len(started) != 0 {
		t.Fatalf("StartMosquitto returned %v after a missing binary, want Fatalf", <-started)
	}
	if len(rec.fatals) != 1 || len(rec.errors) != 0 {
		t.Fatalf("Fatalf calls %q, Errorf calls %q; want one Fatalf", rec.fatals, rec.errors)
	}
	msg := rec.fatals[0]
	t.Logf("Fatalf: %s", msg)
	for _, want := range []string{"mosquitto is not installed", "apt-get install mosquitto", "brew install mosquitto", "PATH", missing} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}

	ctx := testCtx(t, 10*time.Second)
	b, err := mqtttest.Launch(ctx, mqtttest.WithBinary(missing))
	if !errors.Is(err, mqtttest.ErrNotInstalled) || b != nil {
		t.Fatalf("Launch = %v, %v; want ErrNotInstalled", b, err)
	}
	// A file that is there but cannot run is "not installed" as well.
	notExec := filepath.Join(t.TempDir(), "mosquitto")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mqtttest.Launch(ctx, mqtttest.WithBinary(notExec)); !errors.Is(err, mqtttest.ErrNotInstalled) {
		t.Fatalf("Launch with a non-executable binary: %v, want ErrNotInstalled", err)
	}
}

// TestBadConfigLine: a line Mosquitto refuses makes the start fail with an
// error that quotes the broker's complaint.
func TestBadConfigLine(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	b, err := mqtttest.Launch(ctx, mqtttest.WithConfigLines("no_such_option 1"))
	if err == nil {
		b.Close()
		t.Fatal("Launch accepted an unknown configuration option")
	}
	if errors.Is(err, mqtttest.ErrNotInstalled) || !strings.Contains(err.Error(), "no_such_option") {
		t.Fatalf("err = %v; want the broker's complaint about no_such_option", err)
	}
}

// TestCleanupStopsBroker: the broker of a test is stopped when that test
// ends, its process is gone and its ports refuse connections; a closed
// broker cannot be restarted.
func TestCleanupStopsBroker(t *testing.T) {
	var b *mqtttest.Broker
	var pid int
	t.Run("inner", func(t *testing.T) {
		b = mqtttest.StartMosquitto(t)
		if pid = b.PID(); pid == 0 || !b.Running() {
			t.Fatalf("PID %d, running %t after start", pid, b.Running())
		}
	})
	if b == nil {
		t.Fatal("inner test did not start a broker")
	}
	if b.Running() || b.PID() != 0 {
		t.Fatalf("broker still running (PID %d) after its test ended", b.PID())
	}
	if processAlive(pid) {
		t.Fatalf("process %d still alive after its test ended", pid)
	}
	ctx := testCtx(t, 10*time.Second)
	var d net.Dialer
	if c, err := d.DialContext(ctx, "tcp", b.Addr(mqtttest.TCP)); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections", b.Addr(mqtttest.TCP))
	}
	if _, err := os.Stat(filepath.Dir(b.Addr(mqtttest.Unix))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket directory left behind: %v", err)
	}
	if err := b.Restart(ctx); err == nil {
		t.Fatal("Restart of a closed broker succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestKillAndStop: Kill ends the process at once, Restart brings it back
// on the same port, Stop ends it again and is idempotent.
func TestKillAndStop(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	ctx := testCtx(t, 30*time.Second)
	first := b.PID()
	b.Kill()
	if b.Running() || processAlive(first) {
		t.Fatal("running after Kill")
	}
	if err := b.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.Running() || b.PID() == first {
		t.Fatalf("after Restart: running %t, PID %d (was %d)", b.Running(), b.PID(), first)
	}
	connect5(t, ctx, client.Config{URL: b.URL(mqtttest.TCP), ClientID: "after-kill"})
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil || b.Running() {
		t.Fatalf("second Stop: %v, running %t", err, b.Running())
	}
}

// TestExampleUserTest runs the user's test of the package example.
func TestExampleUserTest(t *testing.T) { testReportTemperature(t) }

type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *codec.Reader
}

func dialRaw(t *testing.T, ctx context.Context, addr string) *rawClient {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, r: codec.NewReader(conn, 1<<20)}
}

func (c *rawClient) send(p codec.Packet) {
	c.t.Helper()
	b, err := codec.Append(nil, p, codec.V5)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) recv() codec.Packet {
	c.t.Helper()
	_, raw, err := c.r.Next()
	if err != nil {
		c.t.Fatal(err)
	}
	p, _, err := codec.Decode(raw, codec.V5)
	if err != nil {
		c.t.Fatal(err)
	}
	return codec.Clone(p)
}

// TestUsersACLAndPersistence checks the optional parts: the password file
// (Mosquitto's PBKDF2 format, written by us), the ACL, and persistence
// that keeps a retained message across kill -9 and a restart on the same
// ports.
func TestUsersACLAndPersistence(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	b := mqtttest.StartMosquitto(t,
		mqtttest.WithUsers(map[string]string{"alice": "wonderland", "bob": "builder"}),
		mqtttest.WithACL("user alice\ntopic readwrite #\n\nuser bob\ntopic read public/#\n"),
		mqtttest.WithPersistence())
	connect := func(user, pass string) (*rawClient, codec.ReasonCode) {
		c := dialRaw(t, ctx, b.Addr(mqtttest.TCP))
		c.send(&codec.Connect{CleanStart: true, ClientID: "c-" + user, Username: user, Password: []byte(pass)})
		ca := c.recv().(*codec.Connack)
		return c, ca.ReasonCode
	}
	// Mosquitto 2.0 answers a wrong password with "not authorized".
	if _, rc := connect("alice", "wrong"); rc != codec.ReasonBadUserNameOrPassword && rc != codec.ReasonNotAuthorized {
		t.Fatalf("wrong password: CONNACK %v, want a refusal", rc)
	}
	if _, rc := connect("mallory", "x"); rc != codec.ReasonBadUserNameOrPassword && rc != codec.ReasonNotAuthorized {
		t.Fatalf("unknown user: CONNACK %v", rc)
	}
	if _, rc := connect("", ""); rc == codec.ReasonSuccess {
		t.Fatal("anonymous client accepted with WithUsers")
	}
	alice, rc := connect("alice", "wonderland")
	if rc != codec.ReasonSuccess {
		t.Fatalf("alice: CONNACK %v", rc)
	}
	alice.send(&codec.Publish{Topic: "public/news", QoS: codec.AtLeastOnce, PacketID: 1, Retain: true, Payload: []byte("kept")})
	if ack := alice.recv().(*codec.Puback); ack.PacketID != 1 {
		t.Fatalf("PUBACK %v", ack)
	}
	bob, rc := connect("bob", "builder")
	if rc != codec.ReasonSuccess {
		t.Fatalf("bob: CONNACK %v", rc)
	}
	// Bob may read public/# but not write it: the broker answers "not
	// authorized" for his QoS 1 publish.
	bob.send(&codec.Publish{Topic: "public/news", QoS: codec.AtLeastOnce, PacketID: 1, Payload: []byte("spoof")})
	if ack := bob.recv().(*codec.Puback); ack.ReasonCode != codec.ReasonNotAuthorized && ack.ReasonCode != codec.ReasonNoMatchingSubscribers {
		t.Fatalf("bob's publish: PUBACK %v", ack.ReasonCode)
	}

	b.Kill()
	if err := b.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	bob, rc = connect("bob", "builder")
	if rc != codec.ReasonSuccess {
		t.Fatalf("bob after restart: CONNACK %v", rc)
	}
	bob.send(&codec.Subscribe{PacketID: 2, Subscriptions: []codec.Subscription{{Filter: "public/#", QoS: codec.AtLeastOnce}}})
	var gotSuback, gotRetained bool
	for !gotSuback || !gotRetained {
		switch p := bob.recv().(type) {
		case *codec.Suback:
			gotSuback = true
		case *codec.Publish:
			if !p.Retain || !bytes.Equal(p.Payload, []byte("kept")) {
				t.Fatalf("after kill -9 and restart: %v", p)
			}
			if p.QoS > 0 {
				bob.send(&codec.Puback{PacketID: p.PacketID})
			}
			gotRetained = true
		}
	}
}

// TestConfigFileAndCertificates checks the written configuration (every
// listener on 127.0.0.1, never a standard port, the extra lines present)
// and the certificate files handed out.
func TestConfigFileAndCertificates(t *testing.T) {
	b := mqtttest.StartMosquitto(t, mqtttest.WithConfigLines("max_inflight_messages 7", "retain_available true"))
	conf, err := os.ReadFile(filepath.Join(b.Dir(), "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"allow_anonymous true", "persistence false", "protocol websockets",
		"require_certificate true", "max_inflight_messages 7\nretain_available true\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %q", want)
		}
	}
	listeners := 0
	for _, line := range strings.Split(string(conf), "\n") {
		if !strings.HasPrefix(line, "listener ") {
			continue
		}
		listeners++
		f := strings.Fields(line)
		if len(f) != 3 || (f[2] != "127.0.0.1" && f[2] != b.Addr(mqtttest.Unix)) {
			t.Errorf("listener not on loopback or the private socket: %q", line)
		}
		if f[1] == "1883" || f[1] == "8883" {
			t.Errorf("listener on a standard port: %q", line)
		}
	}
	if listeners != 8 {
		t.Errorf("%d listeners in the config, want 8", listeners)
	}
	for _, f := range []string{b.CAFile(), b.ClientCertFile(), b.ClientKeyFile()} {
		if data, err := os.ReadFile(f); err != nil || !bytes.HasPrefix(data, []byte("-----BEGIN")) {
			t.Errorf("%s: not a PEM file (%v)", f, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(b.ClientCertFile(), b.ClientKeyFile()); err != nil {
		t.Errorf("client certificate files: %v", err)
	}
}

// TestExtraMaxPacketSize checks that WithConfigLines carries a global
// option: with max_packet_size 2048, Mosquitto 2.0 announces the limit in
// CONNACK (MQTT 5.0) and disconnects a client that sends a larger packet
// with reason 0x95 (packet too large).
func TestExtraMaxPacketSize(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	b := mqtttest.StartMosquitto(t, mqtttest.WithConfigLines("max_packet_size 2048"))
	c := dialRaw(t, ctx, b.Addr(mqtttest.TCP))
	c.send(&codec.Connect{CleanStart: true, ClientID: "max-packet"})
	if ca := c.recv().(*codec.Connack); ca.ReasonCode != codec.ReasonSuccess || ca.Props.MaximumPacketSize != 2048 {
		t.Fatalf("CONNACK %v, maximum packet size %d; want 2048", ca.ReasonCode, ca.Props.MaximumPacketSize)
	}
	c.send(&codec.Publish{Topic: "size", QoS: codec.AtLeastOnce, PacketID: 1, Payload: make([]byte, 1000)})
	if ack, ok := c.recv().(*codec.Puback); !ok || ack.PacketID != 1 {
		t.Fatalf("small publish: %v", ack)
	}
	c.send(&codec.Publish{Topic: "size", QoS: codec.AtLeastOnce, PacketID: 2, Payload: make([]byte, 3000)})
	if d, ok := c.recv().(*codec.Disconnect); !ok || d.ReasonCode != codec.ReasonPacketTooLarge {
		t.Fatalf("oversized publish: got %v, want DISCONNECT 0x95", d)
	}
}
