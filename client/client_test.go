package client

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run is one client test in a synctest bubble: virtual time, and every
// goroutine of the client must have exited when fn returns.
func run(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, fn)
}

func newTest5(t *testing.T, cfg Config5) (*Client5, *network) {
	t.Helper()
	n := newNetwork(t, codec.V5)
	cfg.Dial = n.dial
	if cfg.ClientID == "" {
		cfg.ClientID = "t"
	}
	c, err := New5(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

func newTest311(t *testing.T, cfg Config) (*Client, *network) {
	t.Helper()
	n := newNetwork(t, codec.V311)
	cfg.Dial = n.dial
	if cfg.ClientID == "" {
		cfg.ClientID = "t"
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

// connect5 connects a 5.0 client through its peer.
func connect5(t *testing.T, c *Client5, n *network, ack *codec.Connack) (*peer, *codec.Connect) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.Connect(context.Background()) }()
	p := n.accept()
	cp := p.handshake(ack)
	if err := <-errc; err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return p, cp
}

func disconnect5(t *testing.T, c *Client5, p *peer) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.Disconnect(context.Background(), 0, nil) }()
	p.expect(&codec.Disconnect{})
	if err := <-errc; err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
}

// TestConnectAndDisconnect: a 5.0 connection from CONNECT to DISCONNECT;
// after its DISCONNECT the client sends nothing more and closes the network
// connection [MQTT-3.14.4-1] (5.0) [MQTT-3.14.4-2] (5.0).
func TestConnectAndDisconnect(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{ClientID: "dev-1", KeepAlive: 30 * time.Second, Username: "u", Password: []byte("pw")},
			SessionExpiry: time.Hour, ReceiveMaximum: 20})
		p, cp := connect5(t, c, n, &codec.Connack{Props: codec.Properties{AssignedClientID: "", ServerKeepAlive: 10}})
		if cp.ClientID != "dev-1" || cp.KeepAlive != 30 || cp.Username != "u" || string(cp.Password) != "pw" ||
			!cp.CleanStart || cp.Props.SessionExpiry != 3600 || cp.Props.ReceiveMaximum != 20 {
			t.Fatalf("CONNECT %v", cp)
		}
		info, err := c.Info()
		if err != nil || info.KeepAlive != 10 || info.ConnectionNumber != 1 {
			t.Fatalf("Info %+v %v", info, err)
		}
		if c.State() != StateConnected {
			t.Fatalf("state %v", c.State())
		}
		disconnect5(t, c, p)
		p.closed()
		if c.State() != StateClosed || !errors.Is(c.Err(), ErrClosed) {
			t.Fatalf("after Disconnect: state %v err %v", c.State(), c.Err())
		}
		if _, err := c.Publish(context.Background(), "a", nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Publish after Disconnect: %v", err)
		}
	})
}

func TestPublishQoS(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		if _, err := c.Publish(ctx, "a/b", []byte("zero")); err != nil {
			t.Fatal(err)
		}
		p.expect(&codec.Publish{Topic: "a/b", Payload: []byte("zero")})

		done := make(chan error, 1)
		go func() {
			ack, err := c.Publish(ctx, "a/b", []byte("one"), AtLeastOnce, ContentType("text/plain"), UserProperty("k", "v"))
			if err == nil && ack.Code != codec.ReasonNoMatchingSubscribers {
				err = errors.New("PUBACK code lost")
			}
			done <- err
		}()
		p.expect(&codec.Publish{Topic: "a/b", QoS: 1, PacketID: 1, Payload: []byte("one"),
			Props: codec.Properties{ContentType: "text/plain", User: []codec.UserProperty{{Key: "k", Value: "v"}}}})
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("QoS 1 publish returned before PUBACK: %v", err)
		default:
		}
		p.send(&codec.Puback{PacketID: 1, ReasonCode: codec.ReasonNoMatchingSubscribers})
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		go func() { _, err := c.Publish(ctx, "a/b", []byte("two"), ExactlyOnce, Retain); done <- err }()
		p.expect(&codec.Publish{Topic: "a/b", QoS: 2, PacketID: 2, Retain: true, Payload: []byte("two")})
		p.send(&codec.Pubrec{PacketID: 2})
		p.expect(&codec.Pubrel{PacketID: 2})
		p.send(&codec.Pubcomp{PacketID: 2})
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		go func() { _, err := c.Publish(ctx, "a/b", nil, AtLeastOnce); done <- err }()
		p.expect(&codec.Publish{Topic: "a/b", QoS: 1, PacketID: 3})
		p.send(&codec.Puback{PacketID: 3, ReasonCode: codec.ReasonNotAuthorized, Props: codec.Properties{ReasonString: "acl"}})
		var re *ReasonError
		if err := <-done; !errors.As(err, &re) || re.Code != codec.ReasonNotAuthorized || re.Reason != "acl" {
			t.Fatalf("negative PUBACK: %v", err)
		}
		if _, err := c.Publish(ctx, "a/+", nil); !errors.Is(err, ErrInvalidTopic) {
			t.Fatalf("invalid topic: %v", err)
		}
		disconnect5(t, c, p)
	})
}

func TestSubscribeReceiveAck(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		type res struct {
			s   *Subscription
			err error
		}
		sc := make(chan res, 1)
		go func() {
			s, err := c.Subscribe(ctx, []string{"s/#", "t"}, AtLeastOnce, NoLocal(), SubscriptionID(7))
			sc <- res{s, err}
		}()
		p.expect(&codec.Subscribe{PacketID: 1, Props: codec.Properties{SubscriptionIDs: []uint32{7}},
			Subscriptions: []codec.Subscription{{Filter: "s/#", QoS: 1, NoLocal: true}, {Filter: "t", QoS: 1, NoLocal: true}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1, 1}})
		r := <-sc
		if r.err != nil {
			t.Fatal(r.err)
		}
		sub := r.s
		p.send(&codec.Publish{Topic: "s/x", QoS: 1, PacketID: 40, Payload: []byte("hello"),
			Props: codec.Properties{SubscriptionIDs: []uint32{7}}})
		// Automatic acknowledgement: PUBACK once the message is queued.
		p.expect(&codec.Puback{PacketID: 40})
		m, err := sub.Next(ctx)
		if err != nil || m.Topic != "s/x" || string(m.Payload) != "hello" || m.QoS != AtLeastOnce {
			t.Fatalf("Next: %+v %v", m, err)
		}
		// The iterator form.
		p.send(&codec.Publish{Topic: "t", Payload: []byte("it")})
		for m, err := range sub.All(ctx) {
			if err != nil || string(m.Payload) != "it" {
				t.Fatalf("All: %+v %v", m, err)
			}
			break
		}
		uc := make(chan error, 1)
		go func() { _, err := sub.Close(ctx); uc <- err }()
		p.expect(&codec.Unsubscribe{PacketID: 2, Filters: []string{"s/#", "t"}})
		p.send(&codec.Unsuback{PacketID: 2, ReasonCodes: []codec.ReasonCode{0, 0}})
		if err := <-uc; err != nil {
			t.Fatal(err)
		}
		if _, err := sub.Next(ctx); !errors.Is(err, ErrSubscriptionClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
		disconnect5(t, c, p)
	})
}

func TestManualAck(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest311(t, Config{})
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(context.Background()) }()
		p := n.accept()
		p.handshake(nil)
		<-errc
		ctx := context.Background()
		sc := make(chan *Subscription, 1)
		go func() {
			s, err := c.Subscribe(ctx, []string{"m"}, ExactlyOnce, ManualAck())
			if err != nil {
				t.Error(err)
			}
			sc <- s
		}()
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "m", QoS: 2}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{2}})
		sub := <-sc
		p.send(&codec.Publish{Topic: "m", QoS: 2, PacketID: 5, Payload: []byte("x")})
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.quietFor(30 * time.Second) // no PUBREC before the application acknowledges
		m.Ack(ctx)
		p.expect(&codec.Pubrec{PacketID: 5})
		m.Ack(ctx) // idempotent
		p.send(&codec.Pubrel{PacketID: 5})
		p.expect(&codec.Pubcomp{PacketID: 5})
		dc := make(chan error, 1)
		go func() { dc <- c.Disconnect(ctx) }()
		p.expect(&codec.Disconnect{})
		if err := <-dc; err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeepAliveAndPing(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{KeepAlive: 10 * time.Second, PingTimeout: 5 * time.Second,
			Reconnect: ReconnectPolicy{Disabled: true}}})
		p, _ := connect5(t, c, n, nil)
		start := time.Now()
		p.expect(&codec.Pingreq{})
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("PINGREQ after %v, want 10s of silence", d)
		}
		p.send(&codec.Pingresp{})
		rc := make(chan time.Duration, 1)
		go func() {
			d, err := c.Ping(context.Background())
			if err != nil {
				t.Error(err)
			}
			rc <- d
		}()
		p.expect(&codec.Pingreq{})
		time.Sleep(250 * time.Millisecond) // virtual time: the broker answers late
		p.send(&codec.Pingresp{})
		if rtt := <-rc; rtt != 250*time.Millisecond {
			t.Fatalf("RTT %v", rtt)
		}
		// No answer to the next keep alive ping: the connection is lost, and
		// with reconnect disabled the client closes.
		p.expect(&codec.Pingreq{})
		<-c.Done()
		if !errors.Is(c.Err(), ErrTimeout) || !errors.Is(c.Err(), ErrClosed) {
			t.Fatalf("client error %v", c.Err())
		}
		p.closed()
	})
}

func TestReconnectResendsQoS1(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{Persistent: true, Reconnect: ReconnectPolicy{NoJitter: true}}, SessionExpiry: time.Hour})
		p, _ := connect5(t, c, n, nil)
		done := make(chan error, 1)
		go func() { _, err := c.Publish(context.Background(), "q", []byte("m"), AtLeastOnce); done <- err }()
		p.expect(&codec.Publish{Topic: "q", QoS: 1, PacketID: 1, Payload: []byte("m")})
		p.conn.Close() // the network fails before the PUBACK
		lost := time.Now()
		p2 := n.accept()
		if d := time.Since(lost); d != DefaultInitialDelay {
			t.Fatalf("reconnected after %v, want the default initial delay of 250ms", d)
		}
		cp := p2.handshake(&codec.Connack{SessionPresent: true})
		if cp.CleanStart {
			t.Fatal("a reconnect must resume the session")
		}
		p2.expect(&codec.Publish{Topic: "q", QoS: 1, PacketID: 1, Dup: true, Payload: []byte("m")})
		p2.send(&codec.Puback{PacketID: 1})
		if err := <-done; err != nil {
			t.Fatalf("publish across the reconnect: %v", err)
		}
		disconnect5(t, c, p2)
	})
}

// TestReconnectWithoutSessionRepublishes: by default a QoS 1 message in
// flight when the session was lost is published again as a new message
// (DUP clear), and its Publish succeeds [MQTT-4.4.0-1].
func TestReconnectWithoutSessionRepublishes(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{Persistent: true}, SessionExpiry: time.Hour})
		p, _ := connect5(t, c, n, nil)
		done := make(chan error, 1)
		go func() { _, err := c.Publish(context.Background(), "q", []byte("m"), AtLeastOnce); done <- err }()
		p.expect(&codec.Publish{Topic: "q", QoS: 1, PacketID: 1, Payload: []byte("m")})
		p.conn.Close()
		p2 := n.accept()
		p2.handshake(&codec.Connack{SessionPresent: false})
		pub := p2.recv().(*codec.Publish)
		if pub.Dup || pub.Topic != "q" || string(pub.Payload) != "m" {
			t.Fatalf("republished as %+v, want a new message (DUP clear)", pub)
		}
		p2.send(&codec.Puback{PacketID: pub.PacketID})
		if err := <-done; err != nil {
			t.Fatalf("publish whose session was lost: %v", err)
		}
		disconnect5(t, c, p2)
	})
}

func TestReconnectWithoutSessionFailsInflight(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{Persistent: true, SessionLost: FailOnSessionLost}, SessionExpiry: time.Hour})
		p, _ := connect5(t, c, n, nil)
		done := make(chan error, 1)
		go func() { _, err := c.Publish(context.Background(), "q", nil, AtLeastOnce); done <- err }()
		p.recv()
		p.conn.Close()
		p2 := n.accept()
		p2.handshake(&codec.Connack{SessionPresent: false})
		if err := <-done; !errors.Is(err, ErrSessionLost) {
			t.Fatalf("publish whose session was lost: %v", err)
		}
		disconnect5(t, c, p2)
	})
}

func TestPublishWaitsWhileReconnecting(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{Reconnect: ReconnectPolicy{NoJitter: true}}})
		p, _ := connect5(t, c, n, nil)
		p.conn.Close()
		synctest.Wait() // the client noticed and waits to reconnect
		if c.State() != StateReconnecting {
			t.Fatalf("state %v", c.State())
		}
		done := make(chan error, 1)
		go func() { _, err := c.Publish(context.Background(), "w", []byte("later"), AtLeastOnce); done <- err }()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		if _, err := c.Publish(ctx, "w", []byte("gives up"), AtLeastOnce); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a publish whose context ends while reconnecting: %v", err)
		}
		cancel()
		p2 := n.accept()
		p2.handshake(nil)
		p2.expect(&codec.Publish{Topic: "w", QoS: 1, PacketID: 1, Payload: []byte("later")})
		p2.send(&codec.Puback{PacketID: 1})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		p2.quietFor(time.Second) // the withdrawn message was never sent
		disconnect5(t, c, p2)
	})
}

// A QoS 1 publish whose context ends while the message waits for its
// PUBACK returns the context's error; the late PUBACK is then accepted, and
// the next publish completes normally.
func TestPublishContextEndsInFlight(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { _, err := c.Publish(ctx, "f", []byte("one"), AtLeastOnce); done <- err }()
		p.expect(&codec.Publish{Topic: "f", QoS: 1, PacketID: 1, Payload: []byte("one")})
		if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a publish whose context ended while it waited for its PUBACK: %v", err)
		}
		p.send(&codec.Puback{PacketID: 1})
		go func() { _, err := c.Publish(context.Background(), "f", []byte("two"), AtLeastOnce); done <- err }()
		p.expect(&codec.Publish{Topic: "f", QoS: 1, PacketID: 2, Payload: []byte("two")})
		p.send(&codec.Puback{PacketID: 2})
		if err := <-done; err != nil {
			t.Fatalf("the next publish: %v", err)
		}
		// A context that has ended before the call refuses it at once.
		if _, err := c.Publish(ctx, "f", nil, AtMostOnce); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a publish with an ended context: %v", err)
		}
		disconnect5(t, c, p)
	})
}

func TestGiveUpReconnecting(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{Reconnect: ReconnectPolicy{MaxAttempts: 3, NoJitter: true}}})
		p, _ := connect5(t, c, n, nil)
		sc := make(chan *Subscription, 1)
		go func() {
			s, _ := c.Subscribe(context.Background(), []string{"x"})
			sc <- s
		}()
		p.recv()
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}})
		sub := <-sc
		boom := errors.New("network unreachable")
		for i := 0; i < 3; i++ {
			n.fail <- boom
		}
		p.conn.Close()
		<-c.Done()
		if !errors.Is(c.Err(), boom) || !errors.Is(c.Err(), ErrClosed) {
			t.Fatalf("terminal error %v", c.Err())
		}
		if _, err := sub.Next(context.Background()); !errors.Is(err, boom) {
			t.Fatalf("a subscription must see the terminal error: %v", err)
		}
	})
}

func TestBadCredentialsNotRetried(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest311(t, Config{})
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(context.Background()) }()
		p := n.accept()
		p.handshake(&codec.Connack{ReasonCode: codec.ReturnBadUserNameOrPassword})
		err := <-errc
		var re *ReasonError
		if !errors.As(err, &re) || re.Code != codec.ReasonBadUserNameOrPassword {
			t.Fatalf("Connect: %v", err)
		}
		select {
		case <-n.conns:
			t.Fatal("the client retried after bad credentials")
		default:
		}
		<-c.Done()
	})
}

func TestQueueOverflow(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		sc := make(chan *Subscription, 1)
		go func() {
			s, _ := c.Subscribe(ctx, []string{"o"}, AtLeastOnce, QueueSize(2), DropWhenFull())
			sc <- s
		}()
		p.recv()
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
		sub := <-sc
		{ // QoS 0: the oldest is dropped and counted
			p.send(&codec.Publish{Topic: "o", Payload: []byte("1")}, &codec.Publish{Topic: "o", Payload: []byte("2")},
				&codec.Publish{Topic: "o", Payload: []byte("3")})
			synctest.Wait()
			if sub.Dropped() != 1 {
				t.Fatalf("dropped %d", sub.Dropped())
			}
			for _, want := range []string{"2", "3"} {
				if m, _ := sub.Next(ctx); string(m.Payload) != want {
					t.Fatalf("got %q want %q", m.Payload, want)
				}
			}
		}
		{ // QoS 1: never dropped, the acknowledgement waits for room
			for id := uint16(1); id <= 4; id++ {
				p.send(&codec.Publish{Topic: "o", QoS: 1, PacketID: id, Payload: []byte{byte('0' + id)}})
			}
			p.expect(&codec.Puback{PacketID: 1})
			p.expect(&codec.Puback{PacketID: 2})
			p.quietFor(30 * time.Second) // 3 and 4 wait: the queue holds 2
			for id := 1; id <= 4; id++ {
				m, err := sub.Next(ctx)
				if err != nil || m.Payload[0] != byte('0'+id) {
					t.Fatalf("message %d: %q %v", id, m.Payload, err)
				}
			}
			p.expect(&codec.Puback{PacketID: 3})
			p.expect(&codec.Puback{PacketID: 4})
			if sub.Dropped() != 1 {
				t.Fatal("a QoS 1 message was dropped")
			}
		}
		disconnect5(t, c, p)
	})
}

// TestFullQueueHoldsConnection: by default a full queue makes the client
// stop reading instead of dropping; the pause is not blamed on the broker
// (no ping timeout while the consumer is slow, PINGREQs still go out), and
// everything arrives, in order, once the consumer reads.
func TestFullQueueHoldsConnection(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{KeepAlive: 2 * time.Second}})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		sc := make(chan *Subscription, 1)
		go func() {
			s, _ := c.Subscribe(ctx, []string{"o"}, AtLeastOnce, QueueSize(2))
			sc <- s
		}()
		p.recv()
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
		sub := <-sc
		for i := 0; i < 5; i++ {
			p.send(&codec.Publish{Topic: "o", Payload: []byte{byte('a' + i)}})
		}
		p.send(&codec.Publish{Topic: "o", QoS: 1, PacketID: 9, Payload: []byte("f")})
		// 10 s of a stalled consumer: the client keeps pinging, never gives
		// up on the link, and does not acknowledge what it has not read.
		for range 5 {
			p.expect(&codec.Pingreq{})
			p.send(&codec.Pingresp{})
		}
		select {
		case <-n.conns:
			t.Fatal("the client reconnected while its consumer was slow")
		default:
		}
		for _, want := range []string{"a", "b", "c", "d", "e", "f"} {
			m, err := sub.Next(ctx)
			if err != nil || string(m.Payload) != want {
				t.Fatalf("got %q %v, want %q", m.Payload, err, want)
			}
		}
		p.expect(&codec.Puback{PacketID: 9})
		if sub.Dropped() != 0 {
			t.Fatalf("dropped %d", sub.Dropped())
		}
		disconnect5(t, c, p)
	})
}

func TestSlowConsumerDoesNotStall(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{Config: Config{KeepAlive: 10 * time.Second}})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		subs := make(chan *Subscription, 2)
		for i, f := range []string{"slow", "fast"} {
			go func() {
				s, _ := c.Subscribe(ctx, []string{f}, AtLeastOnce, QueueSize(1), DropWhenFull())
				subs <- s
			}()
			p.recv()
			p.send(&codec.Suback{PacketID: uint16(i + 1), ReasonCodes: []codec.ReasonCode{1}})
			<-subs
		}
		// Fill "slow" and never read it.
		for id := uint16(1); id <= 3; id++ {
			p.send(&codec.Publish{Topic: "slow", QoS: 1, PacketID: id})
		}
		p.expect(&codec.Puback{PacketID: 1})
		// "fast" still flows, and so do pings.
		p.send(&codec.Publish{Topic: "fast", QoS: 1, PacketID: 10})
		p.expect(&codec.Puback{PacketID: 10})
		pc := make(chan error, 1)
		go func() { _, err := c.Ping(ctx); pc <- err }()
		p.expect(&codec.Pingreq{})
		p.send(&codec.Pingresp{})
		if err := <-pc; err != nil {
			t.Fatal(err)
		}
		disconnect5(t, c, p)
	})
}

func TestConnectContextCancel(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- c.Connect(ctx) }()
		p := n.accept()
		p.recv() // CONNECT; the broker never answers
		if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Connect: %v", err)
		}
		<-c.Done()
	})
}
