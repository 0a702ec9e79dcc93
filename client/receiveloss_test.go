package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

// Nothing received is lost: a QoS 1/2 message of a resumed session that
// cannot go to a subscription is acknowledged only once Config.OnUnrouted
// has been given it. These tests check that on the wire, packet by packet,
// against a scripted broker.

// unroutedLog records the messages Config.OnUnrouted is called with. With
// a gate, each call then waits for the test to let it return.
type unroutedLog struct {
	mu    sync.Mutex
	msgs  []Message
	first time.Time // of the first call
	gate  chan struct{}
}

func (l *unroutedLog) add(m Message) {
	l.mu.Lock()
	if len(l.msgs) == 0 {
		l.first = time.Now()
	}
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
	if l.gate != nil {
		<-l.gate
	}
}

func (l *unroutedLog) snapshot() []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// lossClient is what these tests need of a Client or a Client5.
type lossClient struct {
	connect    func(context.Context) error
	subscribe  func(context.Context, string, QoS) (*Subscription, error)
	unrouted   func() uint64
	disconnect func(context.Context) error
	done       func() <-chan struct{}
}

// newLossClient builds a persistent client of version v on a scripted
// network, with OnUnrouted recording into log.
func newLossClient(t *testing.T, v codec.Version, hold time.Duration, log *unroutedLog) (lossClient, *network) {
	t.Helper()
	cfg := Config{Persistent: true, HoldTimeout: hold, OnUnrouted: log.add,
		Reconnect: ReconnectPolicy{NoJitter: true}}
	if v == codec.V5 {
		c, n := newTest5(t, Config5{Config: cfg, SessionExpiry: time.Hour})
		return lossClient{
			connect: c.Connect,
			subscribe: func(ctx context.Context, f string, q QoS) (*Subscription, error) {
				return c.Subscribe(ctx, []string{f}, q)
			},
			unrouted:   c.Unrouted,
			disconnect: func(ctx context.Context) error { return c.Disconnect(ctx, 0, nil) },
			done:       c.Done,
		}, n
	}
	c, n := newTest311(t, cfg)
	return lossClient{
		connect: c.Connect,
		subscribe: func(ctx context.Context, f string, q QoS) (*Subscription, error) {
			return c.Subscribe(ctx, []string{f}, q)
		},
		unrouted:   c.Unrouted,
		disconnect: c.Disconnect,
		done:       c.Done,
	}, n
}

// closeOnFailure closes the client when the test ends without having
// disconnected it (it failed part way), so that the bubble's goroutines
// exit and the failure is reported as it is.
func (lc lossClient) closeOnFailure(t *testing.T, log *unroutedLog) {
	t.Cleanup(func() {
		if log.gate != nil {
			close(log.gate) // let a waiting OnUnrouted return
		}
		select {
		case <-lc.done():
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		lc.disconnect(ctx)
		<-lc.done()
	})
}

func (lc lossClient) connectTo(t *testing.T, n *network, ack *codec.Connack) (*peer, *codec.Connect) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- lc.connect(context.Background()) }()
	p := n.accept()
	cp := p.handshake(ack)
	if err := <-errc; err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return p, cp
}

func (lc lossClient) disconnectFrom(t *testing.T, p *peer) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- lc.disconnect(context.Background()) }()
	p.expect(&codec.Disconnect{})
	if err := <-errc; err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
}

// sentMsg is one PUBLISH the broker sends and the acknowledgement it is
// owed.
type sentMsg struct {
	pub *codec.Publish
	ack codec.Packet // *codec.Puback or *codec.Pubrec
}

func lossMessages(topic string, qos1 int, qos2 bool) []sentMsg {
	var ms []sentMsg
	for i := 1; i <= qos1; i++ {
		id := uint16(i)
		ms = append(ms, sentMsg{&codec.Publish{Topic: topic, QoS: 1, PacketID: id, Payload: fmt.Appendf(nil, "m%d", i)},
			&codec.Puback{PacketID: id}})
	}
	if qos2 {
		id := uint16(qos1 + 1)
		ms = append(ms, sentMsg{&codec.Publish{Topic: topic, QoS: 2, PacketID: id, Payload: fmt.Appendf(nil, "m%d", id)},
			&codec.Pubrec{PacketID: id}})
	}
	return ms
}

// ackReader reads the client's acknowledgements on p. With allowUnsub, the
// UNSUBSCRIBE with which a refused Subscribe undoes itself may come
// before, between or after them: it is set aside in unsub.
type ackReader struct {
	p          *peer
	allowUnsub bool
	unsub      *codec.Unsubscribe
}

// setAside takes pk when it is that UNSUBSCRIBE.
func (a *ackReader) setAside(pk codec.Packet) bool {
	u, ok := pk.(*codec.Unsubscribe)
	if !ok || !a.allowUnsub || a.unsub != nil {
		return false
	}
	a.unsub = u
	return true
}

// expect checks the client's next packet but that UNSUBSCRIBE.
func (a *ackReader) expect(want codec.Packet) {
	a.p.t.Helper()
	got := a.p.recv()
	if a.setAside(got) {
		got = a.p.recv()
	}
	if diff := conformance.Diff(want, got); diff != nil {
		a.p.t.Fatalf("client sent %v: %s", got, strings.Join(diff, "; "))
	}
}

// quietFor checks that the client sends nothing but that UNSUBSCRIBE for
// d.
func (a *ackReader) quietFor(d time.Duration) {
	a.p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		pk, err := a.p.cp.Next(ctx)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				a.p.t.Fatalf("broker read: %v", err)
			}
			return
		}
		if !a.setAside(pk) {
			a.p.t.Fatalf("client sent %v while it should be quiet", pk)
		}
	}
}

// expectAcks reads the acknowledgement of each message, in the order the
// messages arrived [MQTT-4.6.0-2] [MQTT-4.6.0-3]. With counted, each must
// find the message (and every one before it) already taken as unrouted by
// the client: Unrouted() counts it and it is queued for OnUnrouted. When
// OnUnrouted is gated, each acknowledgement must wait until OnUnrouted has
// returned for its message. It returns when the first acknowledgement
// arrived.
func expectAcks(t *testing.T, a *ackReader, lc lossClient, log *unroutedLog, ms []sentMsg, counted bool) time.Time {
	t.Helper()
	var first time.Time
	for i, m := range ms {
		if log.gate != nil {
			a.quietFor(time.Second) // OnUnrouted has message i and has not returned
			if n := len(log.snapshot()); n != i+1 {
				t.Fatalf("OnUnrouted was called %d times before returning once more; want %d", n, i+1)
			}
			log.gate <- struct{}{}
		}
		a.expect(m.ack)
		if i == 0 {
			first = time.Now()
		}
		if got := lc.unrouted(); counted && got < uint64(i+1) {
			t.Fatalf("%v reached the broker with Unrouted() = %d: acknowledged before the client took the message as unrouted", m.ack, got)
		}
	}
	return first
}

// checkUnrouted checks, once the client is idle, that OnUnrouted got every
// message once, in order, with its topic, QoS and payload, and that
// Unrouted() counted each.
func checkUnrouted(t *testing.T, lc lossClient, log *unroutedLog, ms []sentMsg) {
	t.Helper()
	synctest.Wait() // the callbacks run on a goroutine of the client's
	if got := lc.unrouted(); got != uint64(len(ms)) {
		t.Errorf("Unrouted() = %d, want %d", got, len(ms))
	}
	seen := log.snapshot()
	if len(seen) != len(ms) {
		t.Fatalf("OnUnrouted called %d times, want %d", len(seen), len(ms))
	}
	for i, m := range ms {
		got := seen[i]
		if got.Topic != m.pub.Topic || got.QoS != QoS(m.pub.QoS) || string(got.Payload) != string(m.pub.Payload) {
			t.Errorf("OnUnrouted call %d: topic %q QoS %d payload %q; want %q QoS %d %q",
				i+1, got.Topic, got.QoS, got.Payload, m.pub.Topic, m.pub.QoS, m.pub.Payload)
		}
	}
}

// TestRefusedResubscribeUnroutes: a Subscribe whose SUBACK was lost with
// the connection is sent again after a reconnect that resumes the session.
// The broker sends the session's queued messages for it first; the client
// holds them unacknowledged until the SUBACK. The broker then refuses the
// subscription: each held message goes to OnUnrouted, and only then is it
// acknowledged, PUBACK [MQTT-4.3.2-2] (3.1.1) / [MQTT-4.3.2-4] (5.0) and
// PUBREC [MQTT-4.3.3-2] (3.1.1) / [MQTT-4.3.3-8] (5.0) being sent once the
// receiver has accepted ownership of the message; every message is still
// acknowledged [MQTT-4.5.0-2], in order of arrival [MQTT-4.6.0-2]
// [MQTT-4.6.0-3]. Subscribe returns the refusal as a *ReasonError.
func TestRefusedResubscribeUnroutes(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			run(t, func(t *testing.T) { testRefusedResubscribe(t, v, false) })
		})
	}
}

// testRefusedResubscribe runs the scenario; gated makes OnUnrouted wait
// for the test before it returns from each message.
func testRefusedResubscribe(t *testing.T, v codec.Version, gated bool) {
	var log unroutedLog
	if gated {
		log.gate = make(chan struct{})
	}
	lc, n := newLossClient(t, v, 0, &log)
	lc.closeOnFailure(t, &log)
	p, _ := lc.connectTo(t, n, nil)

	type subResult struct {
		sub *Subscription
		err error
	}
	subc := make(chan subResult, 1)
	go func() {
		s, err := lc.subscribe(context.Background(), "a/#", ExactlyOnce)
		subc <- subResult{s, err}
	}()
	want := &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a/#", QoS: 2}}}
	p.expect(want)
	p.conn.Close() // the SUBACK is lost with the connection

	p2 := n.accept()
	if cp := p2.handshake(&codec.Connack{SessionPresent: true}); cp.CleanStart {
		t.Fatal("the reconnect must ask to resume the session")
	}
	resub, ok := p2.recv().(*codec.Subscribe)
	if !ok || len(resub.Subscriptions) != 1 || resub.Subscriptions[0] != want.Subscriptions[0] {
		t.Fatalf("after the CONNACK the client sent %v; want the SUBSCRIBE again", resub)
	}
	// The resumed session's messages for the subscription arrive before its
	// SUBACK: five QoS 1 and one QoS 2.
	ms := lossMessages("a/x", 5, true)
	for _, m := range ms {
		p2.send(m.pub)
	}
	p2.quietFor(30 * time.Second) // held: nothing is acknowledged before the SUBACK
	if got := log.snapshot(); len(got) != 0 || lc.unrouted() != 0 {
		t.Fatalf("before the SUBACK: OnUnrouted got %d messages, Unrouted() = %d; want none", len(got), lc.unrouted())
	}
	select {
	case r := <-subc:
		t.Fatalf("Subscribe returned before its SUBACK: %v, %v", r.sub, r.err)
	default:
	}

	refusal := codec.ReasonCode(0x80) // 3.1.1: Failure
	if v == codec.V5 {
		refusal = codec.ReasonNotAuthorized
	}
	p2.send(&codec.Suback{PacketID: resub.PacketID, ReasonCodes: []codec.ReasonCode{refusal}})
	acks := &ackReader{p: p2, allowUnsub: true}
	expectAcks(t, acks, lc, &log, ms, true)

	// Subscribe undoes the refused subscription: an UNSUBSCRIBE.
	unsub := acks.unsub
	if unsub == nil {
		unsub, _ = p2.recv().(*codec.Unsubscribe)
	}
	if unsub == nil || !slices.Equal(unsub.Filters, []string{"a/#"}) {
		t.Fatalf("after the refusal the client sent %v; want UNSUBSCRIBE a/#", unsub)
	}
	unsuback := &codec.Unsuback{PacketID: unsub.PacketID}
	if v == codec.V5 {
		unsuback.ReasonCodes = []codec.ReasonCode{codec.ReasonNoSubscriptionExisted}
	}
	qos2 := ms[len(ms)-1].pub.PacketID
	p2.send(unsuback, &codec.Pubrel{PacketID: qos2})
	p2.expect(&codec.Pubcomp{PacketID: qos2})

	r := <-subc
	var re *ReasonError
	if r.sub != nil || !errors.As(r.err, &re) || re.Code != refusal || re.Filter != "a/#" || !errors.Is(r.err, ErrRefused) {
		t.Fatalf("Subscribe = %v, %v; want a *ReasonError for a/# with code %v", r.sub, r.err, refusal)
	}
	checkUnrouted(t, lc, &log, ms)
	p2.quietFor(time.Second) // each message was acknowledged once
	lc.disconnectFrom(t, p2)
}

// TestHoldExpiryUnroutes: after a reconnect that resumes the session, QoS
// 1 and 2 messages no subscription takes are held, unacknowledged, for
// Config.HoldTimeout (their subscription may yet be made again); when it
// expires each goes to OnUnrouted (counted by Unrouted) and only then is
// it acknowledged: PUBACK [MQTT-4.3.2-2] (3.1.1) / [MQTT-4.3.2-4] (5.0) and
// PUBREC [MQTT-4.3.3-2] (3.1.1) / [MQTT-4.3.3-8] (5.0) follow the receiver
// accepting ownership; every message is acknowledged [MQTT-4.5.0-2], in
// order of arrival [MQTT-4.6.0-2] [MQTT-4.6.0-3].
func TestHoldExpiryUnroutes(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			run(t, func(t *testing.T) { testHoldExpiry(t, v, false) })
		})
	}
}

// testHoldExpiry runs the scenario; gated as for testRefusedResubscribe.
func testHoldExpiry(t *testing.T, v codec.Version, gated bool) {
	const hold = 5 * time.Second
	var log unroutedLog
	if gated {
		log.gate = make(chan struct{})
	}
	lc, n := newLossClient(t, v, hold, &log)
	lc.closeOnFailure(t, &log)
	p, _ := lc.connectTo(t, n, nil)
	p.conn.Close()

	p2 := n.accept()
	if cp := p2.handshake(&codec.Connack{SessionPresent: true}); cp.CleanStart {
		t.Fatal("the reconnect must ask to resume the session")
	}
	ms := lossMessages("orphan/t", 3, true)
	for _, m := range ms {
		p2.send(m.pub)
	}
	sent := time.Now()
	p2.quietFor(hold - time.Millisecond) // held for the whole window
	if got := log.snapshot(); len(got) != 0 || lc.unrouted() != 0 {
		t.Fatalf("within the hold: OnUnrouted got %d messages, Unrouted() = %d; want none", len(got), lc.unrouted())
	}
	// Not counted: on hold expiry the client writes the acknowledgements
	// before it counts the messages and queues them for OnUnrouted (see
	// TestUnroutedAckAfterCallback).
	acked := expectAcks(t, &ackReader{p: p2}, lc, &log, ms, false)
	if d := acked.Sub(sent); d != hold && !gated {
		t.Fatalf("acknowledged %v after arrival, want the HoldTimeout of %v", d, hold)
	}
	qos2 := ms[len(ms)-1].pub.PacketID
	p2.send(&codec.Pubrel{PacketID: qos2})
	p2.expect(&codec.Pubcomp{PacketID: qos2})
	checkUnrouted(t, lc, &log, ms)
	if d := log.first.Sub(sent); d != hold {
		t.Errorf("OnUnrouted first called %v after arrival, want the HoldTimeout of %v", d, hold)
	}
	p2.quietFor(time.Second) // each message was acknowledged once
	lc.disconnectFrom(t, p2)
}

// TestUnroutedAckAfterCallback is the strict form of the two tests above:
// the acknowledgement of a message handed to OnUnrouted goes out only once
// OnUnrouted has returned for it, the receiver having then accepted
// ownership [MQTT-4.3.2-2] (3.1.1) [MQTT-4.3.3-2] (3.1.1)
// [MQTT-4.3.2-4] (5.0) [MQTT-4.3.3-8] (5.0). OnUnrouted waits in each call for the test to let
// it return, which makes the order deterministic.
func TestUnroutedAckAfterCallback(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		run(t, func(t *testing.T) { testRefusedResubscribe(t, codec.V5, true) })
	})
	t.Run("hold", func(t *testing.T) {
		run(t, func(t *testing.T) { testHoldExpiry(t, codec.V5, true) })
	})
}
