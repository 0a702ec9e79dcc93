package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/transport"
)

// Secrets that must never reach an Observer or the packet trace.
const (
	secretPass     = "pw-SECRET-4711"
	secretWill     = "will-SECRET-0815"
	secretPayload  = "payload-SECRET-42"
	secretAuthOut  = "auth-SECRET-client"
	secretAuthIn   = "auth-SECRET-server"
	secretAuthDone = "auth-SECRET-final"
)

var secrets = []string{secretPass, secretWill, secretPayload, secretAuthOut, secretAuthIn, secretAuthDone}

// countingConn counts the bytes the broker's end reads (what the client
// sent) and writes (what the client received).
type countingConn struct {
	net.Conn
	read, written *atomic.Uint64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(uint64(n))
	return n, err
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(uint64(n))
	return n, err
}

// countingNetwork is network with byte counters on the broker's ends.
type countingNetwork struct {
	*network
	read, written atomic.Uint64
}

func newCountingNetwork(t *testing.T, v codec.Version) *countingNetwork {
	return &countingNetwork{network: newNetwork(t, v)}
}

func (n *countingNetwork) dial(ctx context.Context) (net.Conn, error) {
	c, s := transport.Pipe()
	cs := countingConn{Conn: s, read: &n.read, written: &n.written}
	n.conns <- newPeer(n.t, n.v, cs)
	return c, nil
}

// testAuth is an Authenticator whose data are secrets.
type testAuth struct{}

func (testAuth) Method() string                    { return "TEST-METHOD" }
func (testAuth) Initial() ([]byte, error)          { return []byte(secretAuthOut), nil }
func (testAuth) Continue(d []byte) ([]byte, error) { return []byte(secretAuthOut), nil }
func (testAuth) Finish(d []byte) error             { return nil }

// authHandshake plays the broker's side of an enhanced authentication with
// one round of AUTH, then CONNACK.
func authHandshake(t *testing.T, p *peer, sessionPresent bool) {
	t.Helper()
	c, ok := p.recv().(*codec.Connect)
	if !ok || string(c.Props.AuthData) != secretAuthOut || string(c.Password) != secretPass {
		t.Fatalf("CONNECT %v", c)
	}
	p.send(&codec.Auth{ReasonCode: codec.ReasonContinueAuthentication,
		Props: codec.Properties{AuthMethod: "TEST-METHOD", AuthData: []byte(secretAuthIn)}})
	p.expect(&codec.Auth{ReasonCode: codec.ReasonContinueAuthentication,
		Props: codec.Properties{AuthMethod: "TEST-METHOD", AuthData: []byte(secretAuthOut)}})
	p.send(&codec.Connack{SessionPresent: sessionPresent,
		Props: codec.Properties{AuthMethod: "TEST-METHOD", AuthData: []byte(secretAuthDone)}})
}

// pkt is one packet as the tests expect OnPacket to see it.
type pkt struct {
	Dir    Direction
	Type   codec.Type
	ID     uint16
	QoS    QoS
	Topic  string
	Alias  uint16
	Reason codec.ReasonCode
	Dup    bool
}

// recorder is an Observer that keeps everything it sees.
type recorder struct {
	mu       sync.Mutex
	packets  []pkt
	sizes    [3]int // by direction
	starts   []string
	dones    []PublishDone
	messages []MessageInfo
	states   []State
	seen     strings.Builder // every value observed, formatted with %#v
	// traceparent, when set, is written into every publish on 5.0.
	traceparent string
}

func (r *recorder) note(v any) { fmt.Fprintf(&r.seen, "%#v\n", v) }

func (r *recorder) observer() *Observer {
	return &Observer{
		OnStateChange: func(sc StateChange) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.note(sc)
			r.states = append(r.states, sc.State)
		},
		OnPacket: func(d Direction, p PacketInfo) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.note(p)
			r.packets = append(r.packets, pkt{Dir: d, Type: p.Type, ID: p.PacketID, QoS: p.QoS, Topic: p.Topic,
				Alias: p.TopicAlias, Reason: p.Reason, Dup: p.Dup})
			r.sizes[d] += p.Size
		},
		OnPublish: func(ctx context.Context, p *PublishStart) any {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.note(*p)
			r.starts = append(r.starts, p.Topic)
			if r.traceparent != "" && p.Version == codec.V5 {
				if err := p.SetUserProperty("traceparent", r.traceparent); err != nil {
					panic(err)
				}
			}
			r.note(p.Properties())
			return "span:" + p.Topic
		},
		OnPublishDone: func(d PublishDone) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.note(d)
			r.dones = append(r.dones, d)
		},
		OnMessage: func(m MessageInfo) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.note(m)
			r.messages = append(r.messages, m)
		},
	}
}

func (r *recorder) takePackets() []pkt {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.packets
	r.packets = nil
	return p
}

func (r *recorder) checkNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s shows the secret %q:\n%s", what, s, text)
		}
	}
}

// TestStatsAndObserver runs a known sequence through a scripted MQTT 5.0
// broker (enhanced authentication, publishes of each QoS, messages of each
// QoS, a drop, an unrouted message, a lost connection and a reconnect) and
// checks Stats to the packet and byte, what the Observer saw, and that no
// password, payload or authentication data reached the Observer or the
// Debug trace.
func TestStatsAndObserver(t *testing.T) {
	run(t, func(t *testing.T) {
		rec := &recorder{traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
		var logs lockedLog
		n := newCountingNetwork(t, codec.V5)
		c, err := New5(Config5{Config: Config{ClientID: "obs", Username: "u", Password: []byte(secretPass),
			Will:     &Will{Topic: "wills/obs", Payload: []byte(secretWill)},
			Dial:     n.dial,
			Observer: rec.observer(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			KeepAlive: NoKeepAlive, Persistent: true, Reconnect: ReconnectPolicy{NoJitter: true}},
			SessionExpiry: time.Hour, Authenticator: testAuth{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(ctx) }()
		p := n.accept()
		authHandshake(t, p, false)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)

		// Publishes: QoS 0, QoS 1 acknowledged after 3 ms with 0x10, QoS 2
		// completed after 7 ms.
		if _, err := c.Publish(ctx, "out/0", []byte(secretPayload)); err != nil {
			t.Fatal(err)
		}
		p.expect(&codec.Publish{Topic: "out/0", Payload: []byte(secretPayload),
			Props: codec.Properties{User: []codec.UserProperty{{Key: "traceparent", Value: rec.traceparent}}}})
		// The caller's user properties are kept and its slice is not
		// written to: it has room for the traceparent.
		callers := make([]codec.UserProperty, 1, 4)
		callers[0] = codec.UserProperty{Key: "app", Value: "x"}
		done := make(chan error, 1)
		go func() {
			ack, err := c.Publish(ctx, "out/1", []byte(secretPayload), AtLeastOnce, WithProperties(codec.Properties{User: callers}))
			if err == nil && ack.Code != codec.ReasonNoMatchingSubscribers {
				err = fmt.Errorf("ack %v", ack.Code)
			}
			done <- err
		}()
		p.expect(&codec.Publish{Topic: "out/1", QoS: 1, PacketID: 1, Payload: []byte(secretPayload),
			Props: codec.Properties{User: []codec.UserProperty{{Key: "app", Value: "x"}, {Key: "traceparent", Value: rec.traceparent}}}})
		synctest.Wait()
		if s := c.Stats(); s.InflightOut != 1 || s.Queued != 0 {
			t.Fatalf("QoS 1 in flight: InflightOut %d Queued %d, want 1 0", s.InflightOut, s.Queued)
		}
		time.Sleep(3 * time.Millisecond)
		p.send(&codec.Puback{PacketID: 1, ReasonCode: codec.ReasonNoMatchingSubscribers})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if callers[:2][1] != (codec.UserProperty{}) {
			t.Fatalf("the caller's user property slice was written to: %v", callers[:2])
		}
		go func() { _, err := c.Publish(ctx, "out/2", []byte(secretPayload), ExactlyOnce); done <- err }()
		p.recv()
		time.Sleep(7 * time.Millisecond)
		p.send(&codec.Pubrec{PacketID: 2})
		p.expect(&codec.Pubrel{PacketID: 2})
		p.send(&codec.Pubcomp{PacketID: 2})
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		// Subscriptions: one for every QoS, one that drops.
		subc := make(chan *Subscription, 1)
		go func() {
			s, err := c.Subscribe(ctx, []string{"in/#"}, ExactlyOnce)
			if err != nil {
				t.Error(err)
			}
			subc <- s
		}()
		p.expect(&codec.Subscribe{PacketID: 3, Subscriptions: []codec.Subscription{{Filter: "in/#", QoS: 2}}})
		p.send(&codec.Suback{PacketID: 3, ReasonCodes: []codec.ReasonCode{2}})
		sub := <-subc
		go func() {
			s, err := c.Subscribe(ctx, []string{"drop"}, AtMostOnce, QueueSize(1), DropWhenFull())
			if err != nil {
				t.Error(err)
			}
			subc <- s
		}()
		p.expect(&codec.Subscribe{PacketID: 4, Subscriptions: []codec.Subscription{{Filter: "drop"}}})
		p.send(&codec.Suback{PacketID: 4, ReasonCodes: []codec.ReasonCode{0}})
		drop := <-subc

		// Incoming: QoS 0, 1 (with a traceparent), 2; two for the
		// dropping queue of one; one for nobody.
		p.send(&codec.Publish{Topic: "in/0", Payload: []byte(secretPayload)},
			&codec.Publish{Topic: "in/1", QoS: 1, PacketID: 1, Payload: []byte(secretPayload),
				Props: codec.Properties{User: []codec.UserProperty{{Key: "traceparent", Value: "00-in-01"}}}})
		p.expect(&codec.Puback{PacketID: 1})
		p.send(&codec.Publish{Topic: "in/2", QoS: 2, PacketID: 2, Payload: []byte(secretPayload)})
		p.expect(&codec.Pubrec{PacketID: 2})
		synctest.Wait()
		if s := c.Stats(); s.InflightIn != 1 {
			t.Fatalf("QoS 2 waiting for PUBREL: InflightIn %d, want 1", s.InflightIn)
		}
		p.send(&codec.Pubrel{PacketID: 2})
		p.expect(&codec.Pubcomp{PacketID: 2})
		p.send(&codec.Publish{Topic: "drop", Payload: []byte("1")}, &codec.Publish{Topic: "drop", Payload: []byte("2")},
			&codec.Publish{Topic: "nobody", Payload: []byte(secretPayload)})
		synctest.Wait()
		if s := c.Stats(); s.QueuedSubscriptions != 4 || s.InflightIn != 0 {
			t.Fatalf("QueuedSubscriptions %d InflightIn %d, want 4 0", s.QueuedSubscriptions, s.InflightIn)
		}
		if m, err := sub.Next(ctx); err != nil || m.Topic != "in/0" {
			t.Fatalf("Next: %v %v", m.Topic, err)
		}
		if drop.Dropped() != 1 {
			t.Fatalf("Dropped %d, want 1", drop.Dropped())
		}

		// The broker drops the connection; the client reconnects after
		// the first delay (250 ms: the connection had been stable).
		time.Sleep(time.Millisecond)
		p.conn.Close()
		p = n.accept()
		authHandshake(t, p, true)
		synctest.Wait()
		time.Sleep(5 * time.Second)

		s := c.Stats()
		want := Stats{Delivered: 5, Dropped: 1, Unrouted: 1, ConnectAttempts: 2, Connects: 2, Reconnects: 1,
			ConnectionsLost: 1, Uptime: 5 * time.Second, ConnectedTotal: 10*time.Second + 11*time.Millisecond + 5*time.Second,
			QueuedSubscriptions: 3}
		want.Sent.Packets[codec.TypeConnect] = 2
		want.Sent.Packets[codec.TypeAuth] = 2
		want.Sent.Packets[codec.TypePublish] = 3
		want.Sent.Packets[codec.TypePubrel] = 1
		want.Sent.Packets[codec.TypeSubscribe] = 2
		want.Sent.Packets[codec.TypePuback] = 1
		want.Sent.Packets[codec.TypePubrec] = 1
		want.Sent.Packets[codec.TypePubcomp] = 1
		want.Sent.Messages = [3]uint64{1, 1, 1}
		want.Received.Packets[codec.TypeAuth] = 2
		want.Received.Packets[codec.TypeConnack] = 2
		want.Received.Packets[codec.TypePuback] = 1
		want.Received.Packets[codec.TypePubrec] = 1
		want.Received.Packets[codec.TypePubcomp] = 1
		want.Received.Packets[codec.TypeSuback] = 2
		want.Received.Packets[codec.TypePublish] = 6
		want.Received.Packets[codec.TypePubrel] = 1
		want.Received.Messages = [3]uint64{4, 1, 1}
		want.PublishLatency = Latency{Count: 2, Total: 10 * time.Millisecond, Min: 3 * time.Millisecond,
			Max: 7 * time.Millisecond, Last: 7 * time.Millisecond}
		want.PublishLatency.Buckets[4] = 1 // <= 5 ms
		want.PublishLatency.Buckets[5] = 1 // <= 10 ms
		// Bytes are checked against the wire below.
		want.Sent.Bytes, want.Received.Bytes = s.Sent.Bytes, s.Received.Bytes
		want.Sent.MessageBytes, want.Received.MessageBytes = s.Sent.MessageBytes, s.Received.MessageBytes
		if diff := cmp.Diff(want, s); diff != "" {
			t.Errorf("Stats (-want +got):\n%s", diff)
		}
		if s.Sent.Bytes != n.read.Load() || s.Received.Bytes != n.written.Load() {
			t.Errorf("bytes sent %d received %d; the broker read %d and wrote %d", s.Sent.Bytes, s.Received.Bytes, n.read.Load(), n.written.Load())
		}
		pubSize := func(pk *codec.Publish) uint64 { return uint64(pk.Size(codec.V5)) }
		tp := codec.Properties{User: []codec.UserProperty{{Key: "traceparent", Value: rec.traceparent}}}
		tp2 := codec.Properties{User: []codec.UserProperty{{Key: "app", Value: "x"}, {Key: "traceparent", Value: rec.traceparent}}}
		wantSentMB := [3]uint64{
			pubSize(&codec.Publish{Topic: "out/0", Payload: []byte(secretPayload), Props: tp}),
			pubSize(&codec.Publish{Topic: "out/1", QoS: 1, PacketID: 1, Payload: []byte(secretPayload), Props: tp2}),
			pubSize(&codec.Publish{Topic: "out/2", QoS: 2, PacketID: 2, Payload: []byte(secretPayload), Props: tp}),
		}
		if s.Sent.MessageBytes != wantSentMB {
			t.Errorf("Sent.MessageBytes %v, want %v", s.Sent.MessageBytes, wantSentMB)
		}
		if m := s.PublishLatency.Mean(); m != 5*time.Millisecond {
			t.Errorf("mean latency %v, want 5ms", m)
		}
		if q := s.PublishLatency.Quantile(0.5); q != 5*time.Millisecond {
			t.Errorf("median latency %v, want the 5 ms bound", q)
		}

		// What the Observer saw, packet by packet.
		got := rec.takePackets()
		S, R := PacketSent, PacketReceived
		connect := []pkt{
			{Dir: S, Type: codec.TypeConnect},
			{Dir: R, Type: codec.TypeAuth, Reason: codec.ReasonContinueAuthentication},
			{Dir: S, Type: codec.TypeAuth, Reason: codec.ReasonContinueAuthentication},
			{Dir: R, Type: codec.TypeConnack},
		}
		wantPkts := append([]pkt(nil), connect...)
		wantPkts = append(wantPkts,
			pkt{Dir: S, Type: codec.TypePublish, Topic: "out/0"},
			pkt{Dir: S, Type: codec.TypePublish, ID: 1, QoS: 1, Topic: "out/1"},
			pkt{Dir: R, Type: codec.TypePuback, ID: 1, Reason: codec.ReasonNoMatchingSubscribers},
			pkt{Dir: S, Type: codec.TypePublish, ID: 2, QoS: 2, Topic: "out/2"},
			pkt{Dir: R, Type: codec.TypePubrec, ID: 2},
			pkt{Dir: S, Type: codec.TypePubrel, ID: 2},
			pkt{Dir: R, Type: codec.TypePubcomp, ID: 2},
			pkt{Dir: S, Type: codec.TypeSubscribe, ID: 3},
			pkt{Dir: R, Type: codec.TypeSuback, ID: 3, Reason: 2},
			pkt{Dir: S, Type: codec.TypeSubscribe, ID: 4},
			pkt{Dir: R, Type: codec.TypeSuback, ID: 4},
			pkt{Dir: R, Type: codec.TypePublish, Topic: "in/0"},
			pkt{Dir: R, Type: codec.TypePublish, ID: 1, QoS: 1, Topic: "in/1"},
			pkt{Dir: S, Type: codec.TypePuback, ID: 1},
			pkt{Dir: R, Type: codec.TypePublish, ID: 2, QoS: 2, Topic: "in/2"},
			pkt{Dir: S, Type: codec.TypePubrec, ID: 2},
			pkt{Dir: R, Type: codec.TypePubrel, ID: 2},
			pkt{Dir: S, Type: codec.TypePubcomp, ID: 2},
			pkt{Dir: R, Type: codec.TypePublish, Topic: "drop"},
			pkt{Dir: R, Type: codec.TypePublish, Topic: "drop"},
			pkt{Dir: R, Type: codec.TypePublish, Topic: "nobody"},
		)
		wantPkts = append(wantPkts, connect...)
		if diff := cmp.Diff(wantPkts, got); diff != "" {
			t.Errorf("OnPacket (-want +got):\n%s", diff)
		}
		rec.mu.Lock()
		if uint64(rec.sizes[S]) != s.Sent.Bytes || uint64(rec.sizes[R]) != s.Received.Bytes {
			t.Errorf("OnPacket sizes %d sent %d received; Stats %d %d", rec.sizes[S], rec.sizes[R], s.Sent.Bytes, s.Received.Bytes)
		}
		wantDones := []PublishDone{
			{Topic: "out/0", QoS: 0, Value: "span:out/0"},
			{Topic: "out/1", QoS: 1, Duration: 3 * time.Millisecond, Code: codec.ReasonNoMatchingSubscribers, Value: "span:out/1"},
			{Topic: "out/2", QoS: 2, Duration: 7 * time.Millisecond, Value: "span:out/2"},
		}
		if diff := cmp.Diff(wantDones, rec.dones); diff != "" {
			t.Errorf("OnPublishDone (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"out/0", "out/1", "out/2"}, rec.starts); diff != "" {
			t.Errorf("OnPublish (-want +got):\n%s", diff)
		}
		var msgs []string
		for _, m := range rec.messages {
			msgs = append(msgs, fmt.Sprintf("%s q%d %dB %v", m.Topic, m.QoS, m.PayloadSize, m.Properties.User))
		}
		wantMsgs := []string{"in/0 q0 17B []", "in/1 q1 17B [{traceparent 00-in-01}]", "in/2 q2 17B []", "drop q0 1B []", "drop q0 1B []"}
		if diff := cmp.Diff(wantMsgs, msgs); diff != "" {
			t.Errorf("OnMessage (-want +got):\n%s", diff)
		}
		rec.mu.Unlock()

		dc := make(chan error, 1)
		go func() { dc <- c.Disconnect(ctx, 0, nil) }()
		p.expect(&codec.Disconnect{})
		if err := <-dc; err != nil {
			t.Fatal(err)
		}
		if got := rec.takePackets(); !cmp.Equal(got, []pkt{{Dir: S, Type: codec.TypeDisconnect}}) {
			t.Errorf("after Disconnect: %v", got)
		}
		if s := c.Stats(); s.Uptime != 0 || s.ConnectedTotal != 10*time.Second+11*time.Millisecond+5*time.Second ||
			s.Sent.Packets[codec.TypeDisconnect] != 1 || s.ConnectionsLost != 1 {
			t.Errorf("after Disconnect: Uptime %v ConnectedTotal %v DISCONNECTs %d lost %d", s.Uptime, s.ConnectedTotal,
				s.Sent.Packets[codec.TypeDisconnect], s.ConnectionsLost)
		}
		rec.mu.Lock()
		wantStates := []State{StateConnecting, StateConnected, StateReconnecting, StateConnecting, StateConnected, StateClosed}
		if diff := cmp.Diff(wantStates, rec.states); diff != "" {
			t.Errorf("OnStateChange (-want +got):\n%s", diff)
		}
		seen := rec.seen.String()
		rec.checkNoSecrets(t, "the Observer", seen)
		for _, s := range []string{"out/1", "00-in-01", rec.traceparent, "span:out/2"} {
			if !strings.Contains(seen, s) {
				t.Errorf("what the Observer saw lacks %q: the secrets check would see nothing", s)
			}
		}
		rec.mu.Unlock()

		out := logs.String()
		rec.checkNoSecrets(t, "the Debug trace", out)
		for _, line := range []string{
			`msg="packet sent" client=obs type=CONNECT size=`,
			`msg="packet received" client=obs type=AUTH size=`,
			fmt.Sprintf(`msg="packet sent" client=obs type=PUBLISH size=%d id=1 qos=1 topic=out/1`, wantSentMB[1]),
			`msg="packet received" client=obs type=PUBACK size=5 id=1 reason="no matching subscribers"`,
			`msg="packet received" client=obs type=PUBLISH size=`,
			`msg="packet sent" client=obs type=DISCONNECT size=2 reason="normal disconnection"`,
		} {
			if !strings.Contains(out, line) {
				t.Errorf("the Debug trace lacks %q:\n%s", line, out)
			}
		}
		if lines := strings.Count(out, `msg="packet `); uint64(lines) != packetsOf(s.Sent)+packetsOf(s.Received)+1 {
			t.Errorf("%d packet lines for %d packets", lines, packetsOf(s.Sent)+packetsOf(s.Received)+1)
		}
	})
}

func packetsOf(tr Traffic) uint64 {
	var n uint64
	for _, v := range tr.Packets {
		n += v
	}
	return n
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPacketTraceOnlyAtDebug: with the Logger at Info the client writes no
// packet lines; once the same Logger's level is Debug, it writes one per
// packet, in order.
func TestPacketTraceOnlyAtDebug(t *testing.T) {
	run(t, func(t *testing.T) {
		var logs lockedLog
		var level slog.LevelVar
		level.Set(slog.LevelInfo)
		c, n := newTest311(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: &level}))})
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(context.Background()) }()
		p := n.accept()
		p.handshake(nil)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := c.Publish(ctx, "info/level", []byte("x")); err != nil {
			t.Fatal(err)
		}
		p.recv()
		synctest.Wait()
		if out := logs.String(); strings.Contains(out, "packet") {
			t.Fatalf("packet lines at Info:\n%s", out)
		}
		level.Set(slog.LevelDebug)
		done := make(chan error, 1)
		go func() { done <- c.Publish(ctx, "debug/level", []byte("x"), AtLeastOnce) }()
		p.expect(&codec.Publish{Topic: "debug/level", QoS: 1, PacketID: 1, Payload: []byte("x")})
		p.send(&codec.Puback{PacketID: 1})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		var got []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if i := strings.Index(l, "msg="); i >= 0 && strings.Contains(l, "packet") {
				got = append(got, l[i:])
			}
		}
		want := []string{
			`msg="packet sent" client=t type=PUBLISH size=18 id=1 qos=1 topic=debug/level`,
			`msg="packet received" client=t type=PUBACK size=4 id=1`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Debug trace (-want +got):\n%s", diff)
		}
		dc := make(chan error, 1)
		go func() { dc <- c.Disconnect(ctx) }()
		p.expect(&codec.Disconnect{})
		if err := <-dc; err != nil {
			t.Fatal(err)
		}
	})
}

// TestObserverTopicAliases: OnPacket gives the topic of a PUBLISH that
// carried only a topic alias [MQTT-3.3.2-12], in both directions, from the
// alias set up earlier on the connection.
func TestObserverTopicAliases(t *testing.T) {
	run(t, func(t *testing.T) {
		rec := &recorder{}
		c, n := newTest5(t, Config5{Config: Config{Observer: rec.observer()}, TopicAliasMaximum: 4, OutboundTopicAliases: true})
		p, _ := connect5(t, c, n, &codec.Connack{Props: codec.Properties{TopicAliasMaximum: 4}})
		ctx := context.Background()
		for range 2 {
			if _, err := c.Publish(ctx, "long/topic/name", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		p.expect(&codec.Publish{Topic: "long/topic/name", Payload: []byte("x"), Props: codec.Properties{TopicAlias: 1}})
		p.expect(&codec.Publish{Payload: []byte("x"), Props: codec.Properties{TopicAlias: 1}})
		subc := make(chan *Subscription, 1)
		go func() { s, _ := c.Subscribe(ctx, []string{"in/#"}); subc <- s }()
		p.recv()
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}})
		sub := <-subc
		p.send(&codec.Publish{Topic: "in/aliased", Payload: []byte("1"), Props: codec.Properties{TopicAlias: 3}},
			&codec.Publish{Payload: []byte("2"), Props: codec.Properties{TopicAlias: 3}})
		for range 2 {
			if m, err := sub.Next(ctx); err != nil || m.Topic != "in/aliased" {
				t.Fatalf("Next: %q %v", m.Topic, err)
			}
		}
		var pubs []pkt
		for _, pk := range rec.takePackets() {
			if pk.Type == codec.TypePublish {
				pubs = append(pubs, pk)
			}
		}
		want := []pkt{
			{Dir: PacketSent, Type: codec.TypePublish, Topic: "long/topic/name", Alias: 1},
			{Dir: PacketSent, Type: codec.TypePublish, Topic: "long/topic/name", Alias: 1},
			{Dir: PacketReceived, Type: codec.TypePublish, Topic: "in/aliased", Alias: 3},
			{Dir: PacketReceived, Type: codec.TypePublish, Topic: "in/aliased", Alias: 3},
		}
		if diff := cmp.Diff(want, pubs); diff != "" {
			t.Errorf("OnPacket PUBLISH (-want +got):\n%s", diff)
		}
		disconnect5(t, c, p)
	})
}

// TestObserverPublishEnds: every publish OnPublish saw ends exactly once in
// OnPublishDone, whatever becomes of it: withdrawn by its context while
// offline, queued while offline and failed by Disconnect, refused at once
// by a full PublishAsync intake or a closed client. On MQTT 3.1.1 there are
// no user properties to set.
func TestObserverPublishEnds(t *testing.T) {
	run(t, func(t *testing.T) {
		rec := &recorder{}
		var setErr error
		obs := rec.observer()
		start := obs.OnPublish
		obs.OnPublish = func(ctx context.Context, p *PublishStart) any {
			setErr = p.SetUserProperty("traceparent", "x")
			return start(ctx, p)
		}
		c, _ := newTest311(t, Config{Observer: obs, MaxQueued: 2})
		// Not connected: a Publish waits in the session's queue until its
		// context ends; then it is withdrawn.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.Publish(ctx, "offline/ctx", nil, AtLeastOnce); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("offline publish: %v", err)
		}
		synctest.Wait() // the loop withdrew it
		var ue *UnsupportedError
		if !errors.As(setErr, &ue) || !errors.Is(setErr, ErrUnsupported) {
			t.Fatalf("SetUserProperty on 3.1.1: %v", setErr)
		}
		a1 := c.PublishAsync("offline/async", []byte("1"), AtLeastOnce)
		a2 := c.PublishAsync("offline/async", []byte("2"), ExactlyOnce)
		a3 := c.PublishAsync("offline/async", []byte("3"), AtMostOnce)
		synctest.Wait()
		if s := c.Stats(); s.Queued != 2 || s.QueuedAsync != 0 || s.InflightOut != 0 {
			t.Fatalf("offline: Queued %d QueuedAsync %d InflightOut %d, want 2 0 0", s.Queued, s.QueuedAsync, s.InflightOut)
		}
		if !errors.Is(a3.Err(), ErrQueueFull) {
			t.Fatalf("third async publish: %v", a3.Err())
		}
		if err := c.Disconnect(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, a := range []*Publishing{a1, a2} {
			if !errors.Is(a.Err(), ErrClosed) {
				t.Fatalf("queued async publish after Disconnect: %v", a.Err())
			}
		}
		if err := c.Publish(context.Background(), "closed", nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("publish after close: %v", err)
		}
		if h := c.PublishAsync("closed/async", nil); !errors.Is(h.Err(), ErrClosed) {
			t.Fatalf("async publish after close: %v", h.Err())
		}
		if err := c.Publish(context.Background(), "bad/+", nil); !errors.Is(err, ErrInvalidTopic) {
			t.Fatalf("invalid topic: %v", err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var got []string
		for _, d := range rec.dones {
			got = append(got, fmt.Sprintf("%s q%d %v %v", d.Topic, d.QoS, d.Value, d.Err))
		}
		wantErr := func(err error) string { return err.Error() }
		want := []string{
			"offline/ctx q1 span:offline/ctx " + wantErr(context.DeadlineExceeded),
			"offline/async q0 span:offline/async " + wantErr(ErrQueueFull),
			"offline/async q1 span:offline/async " + wantErr(ErrClosed),
			"offline/async q2 span:offline/async " + wantErr(ErrClosed),
			"closed q0 span:closed " + wantErr(ErrClosed),
			"closed/async q0 span:closed/async " + wantErr(ErrClosed),
		}
		// The two queued async publishes end in the map order of the
		// client's shutdown.
		if len(got) == len(want) && got[3] < got[2] {
			got[2], got[3] = got[3], got[2]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("OnPublishDone (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"offline/ctx", "offline/async", "offline/async", "offline/async", "closed", "closed/async"}, rec.starts); diff != "" {
			t.Errorf("OnPublish (-want +got):\n%s", diff)
		}
		// The two queued messages failed with ErrClosed and are left
		// unfinished in the session (and its Store, when one is set).
		if s := c.Stats(); s.PublishLatency.Count != 0 || s.Queued != 2 {
			t.Errorf("after close: latency count %d (nothing was acknowledged), Queued %d, want 0 2", s.PublishLatency.Count, s.Queued)
		}
	})
}

// TestLatencyHistogram: the bucket bounds and the quantile estimate.
func TestLatencyHistogram(t *testing.T) {
	c := &core{}
	for _, d := range []time.Duration{100 * time.Microsecond, 250 * time.Microsecond, 251 * time.Microsecond,
		3 * time.Millisecond, 20 * time.Second} {
		c.stats.latency(d)
	}
	c.stats.publish()
	l := c.snapshot().PublishLatency
	if l.Count != 5 || l.Min != 100*time.Microsecond || l.Max != 20*time.Second || l.Last != 20*time.Second {
		t.Fatalf("count %d min %v max %v last %v", l.Count, l.Min, l.Max, l.Last)
	}
	want := [LatencyBuckets]uint64{0: 2, 1: 1, 4: 1, LatencyBuckets - 1: 1}
	if l.Buckets != want {
		t.Fatalf("buckets %v, want %v", l.Buckets, want)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 250 * time.Microsecond}, {0.4, 250 * time.Microsecond}, {0.6, 500 * time.Microsecond},
		{0.8, 5 * time.Millisecond}, {1, 20 * time.Second}} {
		if got := l.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if (Latency{}).Quantile(0.5) != 0 || (Latency{}).Mean() != 0 {
		t.Error("an empty histogram has no quantile or mean")
	}
}
