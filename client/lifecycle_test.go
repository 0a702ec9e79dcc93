package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
	"github.com/zmqtt/zmqtt-go/transport"
)

// hosts is a network of named brokers for Config.NetDial: a dial to an
// address that is down is refused, any other yields a scripted peer.
type hosts struct {
	t     *testing.T
	v     codec.Version
	mu    sync.Mutex
	down  map[string]bool
	dials []string
	conns chan hostConn
}

type hostConn struct {
	addr string
	at   time.Time
	p    *peer
}

func newHosts(t *testing.T, v codec.Version) *hosts {
	return &hosts{t: t, v: v, down: map[string]bool{}, conns: make(chan hostConn, 16)}
}

func (h *hosts) setDown(addr string, down bool) {
	h.mu.Lock()
	h.down[addr] = down
	h.mu.Unlock()
}

func (h *hosts) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h.mu.Lock()
	h.dials = append(h.dials, addr)
	down := h.down[addr]
	h.mu.Unlock()
	if down {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	c, s := transport.Pipe()
	h.conns <- hostConn{addr: addr, at: time.Now(), p: newPeer(h.t, h.v, s)}
	return c, nil
}

// accept waits (in virtual time) for the client's next connection.
func (h *hosts) accept() hostConn {
	h.t.Helper()
	select {
	case c := <-h.conns:
		return c
	case <-time.After(time.Hour):
		h.t.Fatal("the client did not connect within an hour")
		return hostConn{}
	}
}

func (h *hosts) dialCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.dials)
}

// states records the state changes of a client.
type states struct {
	mu  sync.Mutex
	all []StateChange
}

func (s *states) add(sc StateChange) {
	s.mu.Lock()
	s.all = append(s.all, sc)
	s.mu.Unlock()
}

func (s *states) last() StateChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) == 0 {
		return StateChange{}
	}
	return s.all[len(s.all)-1]
}

// TestServerListFailover: publisher on a, a dies with a QoS 1 message in
// flight; the client moves to b and the message completes there. A
// connection that was not yet stable moves on at once; one that was stable
// tries its server again after the first delay, then the next server at
// once.
func TestServerListFailover(t *testing.T) {
	for _, stable := range []bool{false, true} {
		name := "unstable"
		if stable {
			name = "stable"
		}
		t.Run(name, func(t *testing.T) {
			run(t, func(t *testing.T) {
				h := newHosts(t, codec.V5)
				var st states
				c, err := New5(Config5{Config: Config{
					URL: "mqtt://a:1883", Servers: []string{"mqtt://b:1883", "mqtts://c:8883"},
					ClientID: "f", Persistent: true, KeepAlive: NoKeepAlive,
					NetDial: h.dial, OnStateChange: st.add,
					Reconnect: ReconnectPolicy{NoJitter: true},
				}, SessionExpiry: 3600})
				if err != nil {
					t.Fatal(err)
				}
				errc := make(chan error, 1)
				go func() { errc <- c.Connect(context.Background()) }()
				a := h.accept()
				if a.addr != "a:1883" {
					t.Fatalf("first dial to %s, want a:1883", a.addr)
				}
				a.p.handshake(nil)
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if got := st.last(); got.State != StateConnected || got.Server != "mqtt://a:1883" {
					t.Fatalf("state %+v, want connected to mqtt://a:1883", got)
				}
				if stable {
					time.Sleep(DefaultStableAfter)
				}
				done := make(chan error, 1)
				go func() { _, err := c.Publish(context.Background(), "t", []byte("m"), AtLeastOnce); done <- err }()
				a.p.expect(&codec.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("m")})
				h.setDown("a:1883", true)
				lost := time.Now()
				a.p.conn.Close()
				b := h.accept()
				if b.addr != "b:1883" {
					t.Fatalf("failover dialled %s, want b:1883", b.addr)
				}
				took := b.at.Sub(lost)
				want := time.Duration(0)
				if stable {
					want = DefaultInitialDelay // a first, refused, then b at once
				}
				if took != want {
					t.Fatalf("failover took %v, want %v", took, want)
				}
				b.p.handshake(&codec.Connack{SessionPresent: true})
				b.p.expect(&codec.Publish{Topic: "t", QoS: 1, PacketID: 1, Dup: true, Payload: []byte("m")})
				b.p.send(&codec.Puback{PacketID: 1})
				if err := <-done; err != nil {
					t.Fatalf("publish across the failover: %v", err)
				}
				synctest.Wait()
				if got := st.last(); got.State != StateConnected || got.Server != "mqtt://b:1883" {
					t.Fatalf("state %+v, want connected to mqtt://b:1883", got)
				}
				disconnect5(t, c, b.p)
			})
		})
	}
}

// TestRetriesForeverByDefault: with the default policy a client survives a
// 60 s outage of its only broker, then resumes within the maximum delay;
// it never closes on its own.
func TestRetriesForeverByDefault(t *testing.T) {
	run(t, func(t *testing.T) {
		h := newHosts(t, codec.V311)
		c, err := New(Config{URL: "mqtt://a:1883", ClientID: "r", Persistent: true, KeepAlive: NoKeepAlive, NetDial: h.dial})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(context.Background()) }()
		p := h.accept().p
		p.handshake(nil)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		sc := make(chan *Subscription, 1)
		go func() { s, _ := c.Subscribe(context.Background(), []string{"x"}, AtLeastOnce); sc <- s }()
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "x", QoS: 1}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
		sub := <-sc

		h.setDown("a:1883", true)
		p.conn.Close()
		time.Sleep(60 * time.Second)
		synctest.Wait()
		if st := c.State(); st != StateReconnecting && st != StateConnecting {
			t.Fatalf("after a 60 s outage the client is %v, want still reconnecting", st)
		}
		if c.Err() != nil {
			t.Fatalf("the client gave up: %v", c.Err())
		}
		tries := h.dialCount() - 1
		if tries < 5 || tries > 20 {
			t.Fatalf("%d attempts in 60 s: the backoff is off", tries)
		}
		up := time.Now()
		h.setDown("a:1883", false)
		back := h.accept()
		if d := back.at.Sub(up); d > DefaultMaxDelay {
			t.Fatalf("resumed %v after the broker came back, more than the maximum delay", d)
		}
		back.p.handshake(&codec.Connack{SessionPresent: true})
		back.p.send(&codec.Publish{Topic: "x", QoS: 1, PacketID: 7, Payload: []byte("after")})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m, err := sub.Next(ctx)
		if err != nil || string(m.Payload) != "after" {
			t.Fatalf("subscription after the outage: %q %v", m.Payload, err)
		}
		back.p.expect(&codec.Puback{PacketID: 7})
		go c.Disconnect(context.Background())
		back.p.expect(&codec.Disconnect{})
		<-c.Done()
	})
}

// TestBackoffStartsOverOnlyWhenStable: a broker that accepts and at once
// drops the connection gets growing delays, not a tight loop; a connection
// that stays up for StableAfter resets them.
func TestBackoffStartsOverOnlyWhenStable(t *testing.T) {
	run(t, func(t *testing.T) {
		h := newHosts(t, codec.V311)
		c, err := New(Config{URL: "mqtt://a:1883", ClientID: "b", KeepAlive: NoKeepAlive, NetDial: h.dial,
			Reconnect: ReconnectPolicy{NoJitter: true}})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(context.Background()) }()
		prev := h.accept()
		prev.p.handshake(nil)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		var gaps []time.Duration
		for range 5 {
			prev.p.conn.Close()
			lost := time.Now()
			next := h.accept()
			gaps = append(gaps, next.at.Sub(lost))
			next.p.handshake(nil)
			prev = next
		}
		want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
		for i := range want {
			if gaps[i] != want[i] {
				t.Fatalf("delays after connections that dropped at once: %v, want %v", gaps, want)
			}
		}
		// Up for 4 s (less than StableAfter): the delays keep growing.
		time.Sleep(4 * time.Second)
		prev.p.conn.Close()
		lost := time.Now()
		next := h.accept()
		if d := next.at.Sub(lost); d != 8*time.Second {
			t.Fatalf("delay after a connection up for 4 s: %v, want 8s", d)
		}
		next.p.handshake(nil)
		// Up for the current delay (8 s) is not enough either: StableAfter is 10 s.
		time.Sleep(DefaultStableAfter)
		next.p.conn.Close()
		lost = time.Now()
		last := h.accept()
		if d := last.at.Sub(lost); d != DefaultInitialDelay {
			t.Fatalf("delay after a stable connection: %v, want the initial %v", d, DefaultInitialDelay)
		}
		last.p.handshake(nil)
		synctest.Wait()
		go c.Disconnect(context.Background())
		last.p.expect(&codec.Disconnect{})
		<-c.Done()
	})
}

// TestServerReference: a CONNACK 0x9C and a DISCONNECT 0x9D with a Server
// Reference send the next attempt there, at once.
func TestServerReference(t *testing.T) {
	run(t, func(t *testing.T) {
		h := newHosts(t, codec.V5)
		c, err := New5(Config5{Config: Config{URL: "mqtt://a:1883", ClientID: "s", KeepAlive: NoKeepAlive, NetDial: h.dial}})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(context.Background()) }()
		a := h.accept()
		ack := &codec.Connack{ReasonCode: codec.ReasonUseAnotherServer}
		ack.Props.ServerReference = "b:1884 c:1885"
		a.p.handshake(ack)
		b := h.accept()
		if b.addr != "b:1884" || b.at != a.at {
			t.Fatalf("after CONNACK 0x9C the client dialled %s after %v, want b:1884 at once", b.addr, b.at.Sub(a.at))
		}
		b.p.handshake(nil)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		d := &codec.Disconnect{ReasonCode: codec.ReasonServerMoved}
		d.Props.ServerReference = "mqtt://c:1"
		b.p.send(d)
		cc := h.accept()
		if cc.addr != "c:1" {
			t.Fatalf("after DISCONNECT 0x9D the client dialled %s, want c:1", cc.addr)
		}
		cc.p.handshake(nil)
		synctest.Wait()
		if c.State() != StateConnected {
			t.Fatalf("state %v after the CONNACK of c", c.State())
		}
		disconnect5(t, c, cc.p)
	})
}

func TestResolveReference(t *testing.T) {
	for _, tc := range []struct{ cur, ref, want string }{
		{"mqtt://a:1883", "b", "mqtt://b:1883"},
		{"mqtt://a:1883", "b:99", "mqtt://b:99"},
		{"mqtt://u:p@a:1883", "b:99 c:1", "mqtt://u:p@b:99"},
		{"wss://a/mqtt", "b:8443", "wss://b:8443/mqtt"},
		{"mqtt://a:1883", "::1", "mqtt://[::1]:1883"},
		{"mqtt://a", "mqtts://b:8883", "mqtts://b:8883"},
		{"mqtts://a", "mqtt://b", ""}, // would drop TLS
		{"mqtt://a", "foo://b", ""},
		{"unix:///tmp/s", "b", ""},
	} {
		got, err := resolveReference(tc.cur, tc.ref)
		if tc.want == "" {
			if err == nil {
				t.Errorf("resolveReference(%q, %q) = %q, want an error", tc.cur, tc.ref, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolveReference(%q, %q) = %q, %v; want %q", tc.cur, tc.ref, got, err, tc.want)
		}
	}
}

// TestDisconnectNeverHangs: Disconnect returns promptly with a context
// that is already done, and with a broker that stopped reading; the client
// is closed and its goroutines are gone either way (run checks that).
func TestDisconnectNeverHangs(t *testing.T) {
	t.Run("done-context", func(t *testing.T) {
		run(t, func(t *testing.T) {
			c, n := newTest5(t, Config5{})
			connect5(t, c, n, nil)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := c.Disconnect(ctx, 0, nil)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Disconnect: %v", err)
			}
			select {
			case <-c.Done():
			default:
				t.Fatal("the client is not closed after Disconnect returned")
			}
		})
	})
	t.Run("peer-not-reading", func(t *testing.T) {
		run(t, func(t *testing.T) {
			c, n := newTest311(t, Config{KeepAlive: NoKeepAlive})
			errc := make(chan error, 1)
			go func() { errc <- c.Connect(context.Background()) }()
			p := n.accept()
			p.handshake(nil)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			// The broker stops reading; fill the pipe until the writer blocks.
			payload := make([]byte, 64<<10)
			for i := 0; i < 64; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := c.Publish(ctx, "fill", payload)
				cancel()
				if err != nil {
					break
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := c.Disconnect(ctx)
			if took := time.Since(start); took > 100*time.Millisecond {
				t.Fatalf("Disconnect took %v with a 100ms context", took)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Disconnect to a broker that does not read: %v, want the context's error", err)
			}
			<-c.Done()
		})
	})
	t.Run("while-reconnecting", func(t *testing.T) {
		run(t, func(t *testing.T) {
			c, n := newTest5(t, Config5{})
			p, _ := connect5(t, c, n, nil)
			n.fail <- errors.New("refused")
			p.conn.Close()
			synctest.Wait()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			c.Disconnect(ctx, 0, nil)
			<-c.Done()
		})
	})
}

// TestNilOptionsIgnored: a nil option is skipped, never a panic.
func TestNilOptionsIgnored(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest311(t, Config{KeepAlive: NoKeepAlive})
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(context.Background()) }()
		p := n.accept()
		p.handshake(nil)
		<-errc
		if err := c.Publish(context.Background(), "t", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		p.expect(&codec.Publish{Topic: "t", Payload: []byte("x")})
		sc := make(chan error, 1)
		go func() { _, err := c.Subscribe(context.Background(), []string{"f"}, nil); sc <- err }()
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "f"}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}})
		if err := <-sc; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		go c.Disconnect(context.Background())
		p.expect(&codec.Disconnect{})
		<-c.Done()
	})
}

// TestNewRefusesBadURLs: a URL that can never be dialled is a *ConfigError
// from New, not an endless retry.
func TestNewRefusesBadURLs(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{URL: "foo://x"}, "URL"},
		{Config{URL: "localhost:1883"}, "URL"},
		{Config{URL: "mqtt+ssl://h:8883"}, "URL"},
		{Config{URL: "mqtt://"}, "URL"},
		{Config{URL: "mqtt://h:0"}, "URL"},
		{Config{URL: "mqtt://a", Servers: []string{"mqtt://b", "tcp//c"}}, "Servers[1]"},
		{Config{Servers: []string{"ws://"}}, "Servers[0]"},
		{Config{}, "URL"},
	} {
		_, err := New(tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, session.ErrInvalidConfig) || ce.Field != tc.field {
			t.Errorf("New(%+v) = %v, want a *ConfigError for %s", tc.cfg, err, tc.field)
		}
		_, err = New5(Config5{Config: tc.cfg})
		if !errors.As(err, &ce) {
			t.Errorf("New5(%+v) = %v, want a *ConfigError", tc.cfg, err)
		}
	}
	// With Dial set, the URL only names the server in logs.
	c, err := New(Config{URL: "anything", Dial: func(context.Context) (net.Conn, error) { return nil, errors.New("x") }})
	if err != nil {
		t.Fatalf("New with Dial: %v", err)
	}
	c.Disconnect(context.Background())
}

// TestConnectReportsCause: when Connect's context ends, the error matches
// the context's error and the last attempt's cause.
func TestConnectReportsCause(t *testing.T) {
	run(t, func(t *testing.T) {
		h := newHosts(t, codec.V311)
		h.setDown("a:1883", true)
		c, err := New(Config{URL: "mqtt://a:1883", ClientID: "c", NetDial: h.dial})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = c.Connect(ctx)
		var ce *ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("Connect: %v, want a *ConnectError matching the deadline and ECONNREFUSED", err)
		}
		if ce.Attempts < 3 || ce.Server != "mqtt://a:1883" || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Connect error %q (attempts %d, server %q)", err, ce.Attempts, ce.Server)
		}
		<-c.Done()
	})
}

// TestUnsupportedVersion: a broker that only speaks 3.1.1 answers a 5.0
// CONNECT with a 3.1.1 CONNACK (return code 1): Connect fails at once with
// an error matching ErrUnsupportedVersion, and does not retry. One that
// closes without a CONNACK gets a retry, with a hint in the error.
func TestUnsupportedVersion(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(context.Background()) }()
		p := n.accept()
		p.recv()
		p.conn.Write([]byte{0x20, 0x02, 0x00, 0x01})
		err := <-errc
		if !errors.Is(err, ErrUnsupportedVersion) || !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "5.0") {
			t.Fatalf("Connect to a 3.1.1-only broker: %v", err)
		}
		select {
		case <-n.conns:
			t.Fatal("the client retried a version the broker does not speak")
		default:
		}
		<-c.Done()
	})
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(ctx) }()
		p := n.accept()
		p.recv()
		p.conn.Close()
		err := <-errc
		if !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), "5.0") || errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("Connect to a broker that closes without CONNACK: %v", err)
		}
		<-c.Done()
	})
}
