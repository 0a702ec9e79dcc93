package session

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

func connected(t *testing.T, cfg Config, ack *codec.Connack) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	_, evs := h.connect(ack)
	wantKinds(t, evs, EventConnected)
	return h
}

func mustPublish(t *testing.T, h *harness, p *codec.Publish) Token {
	t.Helper()
	tok, err := h.s.Publish(h.now, p)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return tok
}

// TestPublishQoS0: a QoS 0 message goes out once, with QoS 0 and DUP 0
// [MQTT-4.3.1-1] [MQTT-3.3.1-2] and no packet identifier [MQTT-2.2.1-2],
// and is done when written.
func TestPublishQoS0(t *testing.T) {
	h := connected(t, Config{}, nil)
	tok := mustPublish(t, h, pub("a/b", 0, "x"))
	if tok != 0 {
		t.Fatalf("QoS 0 token %d, want 0 (done)", tok)
	}
	h.expect(pub("a/b", 0, "x"))
	if evs := h.events(); len(evs) != 0 {
		t.Fatalf("events %v", evs)
	}
}

// TestPublishQoS1: the first send of a QoS 1 message has DUP 0
// [MQTT-4.3.2-2] (5.0), and it stays unacknowledged, neither completed nor
// forgotten, until its PUBACK [MQTT-4.3.2-3].
func TestPublishQoS1(t *testing.T) {
	h := connected(t, Config{}, nil)
	tok := mustPublish(t, h, pub("a/b", 1, "x"))
	want := pub("a/b", 1, "x")
	want.PacketID = 1
	h.expect(want)
	if evs := h.events(); len(evs) != 0 {
		t.Fatalf("completed before PUBACK: %v", evs)
	}
	evs := h.feed(&codec.Puback{PacketID: 1})
	wantKinds(t, evs, EventPublished)
	if evs[0].Token != tok || evs[0].Err != nil {
		t.Fatalf("event %+v", evs[0])
	}
	if u, q := h.s.Inflight(); u != 0 || q != 0 {
		t.Fatalf("inflight %d queued %d after PUBACK", u, q)
	}
}

func TestPublishQoS1Refused(t *testing.T) {
	h := connected(t, Config{}, nil)
	tok := mustPublish(t, h, pub("a/b", 1, "x"))
	h.sent()
	evs := h.feed(&codec.Puback{PacketID: 1, ReasonCode: codec.ReasonQuotaExceeded, Props: codec.Properties{ReasonString: "full"}})
	var re *ReasonError
	if len(evs) != 1 || evs[0].Token != tok || !errors.As(evs[0].Err, &re) || re.Code != codec.ReasonQuotaExceeded || re.Reason != "full" {
		t.Fatalf("events %+v", evs)
	}
	// 0x10 No matching subscribers is a success [seed rule 30].
	tok = mustPublish(t, h, pub("a/b", 1, "x"))
	h.sent()
	evs = h.feed(&codec.Puback{PacketID: 2, ReasonCode: codec.ReasonNoMatchingSubscribers})
	if evs[0].Err != nil || evs[0].Code != codec.ReasonNoMatchingSubscribers || evs[0].Token != tok {
		t.Fatalf("event %+v", evs[0])
	}
}

func TestPublishQoS2(t *testing.T) {
	h := connected(t, Config{}, nil)
	tok := mustPublish(t, h, pub("a/b", 2, "x"))
	h.sent()
	t.Run("MQTT-4.3.3-4/pubrec-then-pubrel", func(t *testing.T) {
		if evs := h.feed(&codec.Pubrec{PacketID: 1}); len(evs) != 0 {
			t.Fatalf("events after PUBREC %v", evs)
		}
		h.expect(&codec.Pubrel{PacketID: 1})
	})
	t.Run("duplicate-pubrec-resends-pubrel", func(t *testing.T) {
		h.feed(&codec.Pubrec{PacketID: 1})
		h.expect(&codec.Pubrel{PacketID: 1})
	})
	t.Run("pubcomp-completes", func(t *testing.T) {
		evs := h.feed(&codec.Pubcomp{PacketID: 1})
		if len(evs) != 1 || evs[0].Token != tok || evs[0].Err != nil {
			t.Fatalf("events %+v", evs)
		}
	})
	t.Run("§4.3.3/refused-pubrec-ends-flow", func(t *testing.T) {
		tok := mustPublish(t, h, pub("a/b", 2, "y"))
		h.sent()
		evs := h.feed(&codec.Pubrec{PacketID: 2, ReasonCode: codec.ReasonNotAuthorized})
		if len(evs) != 1 || evs[0].Token != tok || !errors.Is(evs[0].Err, ErrRefused) {
			t.Fatalf("events %+v", evs)
		}
		h.expectNothing() // no PUBREL after a refusal
	})
	t.Run("unknown-pubrec-gets-pubrel-0x92", func(t *testing.T) {
		h.feed(&codec.Pubrec{PacketID: 99})
		h.expect(&codec.Pubrel{PacketID: 99, ReasonCode: codec.ReasonPacketIdentifierNotFound})
	})
	t.Run("unknown-acks-are-ignored", func(t *testing.T) {
		if evs := h.feed(&codec.Puback{PacketID: 77}); len(evs) != 0 {
			t.Fatal(evs)
		}
		if evs := h.feed(&codec.Pubcomp{PacketID: 78}); len(evs) != 0 {
			t.Fatal(evs)
		}
		h.expectNothing()
	})
}

func TestPublishWrongAckIsProtocolError(t *testing.T) {
	t.Run("puback-for-qos2", func(t *testing.T) {
		h := connected(t, Config{}, nil)
		mustPublish(t, h, pub("a", 2, "x"))
		h.sent()
		closedWith(t, h.feed(&codec.Puback{PacketID: 1}), ErrProtocol)
	})
	t.Run("pubrec-for-qos1", func(t *testing.T) {
		h := connected(t, Config{}, nil)
		mustPublish(t, h, pub("a", 1, "x"))
		h.sent()
		closedWith(t, h.feed(&codec.Pubrec{PacketID: 1}), ErrProtocol)
	})
	t.Run("pubcomp-before-pubrec", func(t *testing.T) {
		h := connected(t, Config{}, nil)
		mustPublish(t, h, pub("a", 2, "x"))
		h.sent()
		closedWith(t, h.feed(&codec.Pubcomp{PacketID: 1}), ErrProtocol)
	})
}

// TestPacketIdentifiers: each new PUBLISH at QoS > 0 and each SUBSCRIBE
// gets a non-zero identifier that is not in use [MQTT-2.2.1-3]
// [MQTT-4.3.2-1] (5.0) [MQTT-2.3.1-1] (3.1.1) [MQTT-2.3.1-2] (3.1.1); with
// every identifier in use the next message waits for one to be freed.
func TestPacketIdentifiers(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run("never-zero-never-reused/"+v.String(), func(t *testing.T) { testIdentifiersNotReused(t, v) })
	}
	t.Run("failed-encode-leaks-nothing", func(t *testing.T) {
		h := connected(t, Config{MaxPacketID: 2}, nil)
		for i := 0; i < 10; i++ {
			if _, err := h.s.Publish(h.now, pub("bad/#", 1, "x")); err == nil {
				t.Fatal("invalid topic accepted")
			}
		}
		mustPublish(t, h, pub("a", 1, "x"))
		mustPublish(t, h, pub("a", 1, "y"))
		if got := len(h.sent()); got != 2 {
			t.Fatalf("sent %d packets; refused encodes must not use identifiers", got)
		}
	})
}

func testIdentifiersNotReused(t *testing.T, v codec.Version) {
	h := connected(t, Config{Version: v, ClientID: "c", MaxPacketID: 5}, nil)
	seen := map[uint16]bool{}
	for i := 0; i < 5; i++ {
		mustPublish(t, h, pub("a", codec.QoS(1+i%2), "x"))
	}
	for _, p := range h.sent() {
		id := p.(*codec.Publish).PacketID
		if id == 0 || seen[id] {
			t.Fatalf("identifier %d reused or zero", id)
		}
		seen[id] = true
	}
	// All 5 in use: a SUBSCRIBE cannot get one.
	if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "x"}}, SubscribeOptions{}); !errors.Is(err, ErrPacketIDsExhausted) {
		t.Fatalf("Subscribe with every identifier in use: %v", err)
	}
	// A sixth publish waits for an identifier rather than reusing one.
	mustPublish(t, h, pub("a", 1, "sixth"))
	h.expectNothing()
	h.feed(&codec.Puback{PacketID: 3})
	p := h.sent()
	if len(p) != 1 || p[0].(*codec.Publish).PacketID != 3 || string(p[0].(*codec.Publish).Payload) != "sixth" {
		t.Fatalf("after PUBACK 3 the session sent %v", p)
	}
}

// TestSendQuota: no more than the server's Receive Maximum QoS 1/2 PUBLISH
// packets unacknowledged at once [MQTT-3.3.4-7] [MQTT-4.9.0-1]
// [MQTT-4.9.0-2]; QoS 0 is not gated, and with the quota at zero every
// other packet still goes out at once, SUBSCRIBE, PINGREQ and the PUBACK
// of an incoming message included [MQTT-3.3.4-8] [MQTT-4.9.0-3]; queued
// sends go out in order.
func TestSendQuota(t *testing.T) {
	h := connected(t, Config{}, &codec.Connack{Props: codec.Properties{ReceiveMaximum: 2}})
	t1 := mustPublish(t, h, pub("a", 1, "1"))
	mustPublish(t, h, pub("a", 2, "2"))
	mustPublish(t, h, pub("a", 1, "3"))
	mustPublish(t, h, pub("a", 1, "4"))
	if got := h.sent(); len(got) != 2 {
		t.Fatalf("sent %d before any ack, want 2", len(got))
	}
	if u, q := h.s.Inflight(); u != 2 || q != 2 {
		t.Fatalf("inflight %d queued %d", u, q)
	}
	mustPublish(t, h, pub("a", 0, "qos0"))
	if p := h.sent(); len(p) != 1 || string(p[0].(*codec.Publish).Payload) != "qos0" {
		t.Fatalf("QoS 0 was gated: %v", p)
	}
	if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "in", QoS: 1}}, SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Ping(h.now); err != nil {
		t.Fatal(err)
	}
	h.expect(&codec.Subscribe{PacketID: 3, Subscriptions: []codec.Subscription{{Filter: "in", QoS: 1}}}, &codec.Pingreq{})
	h.feed(&codec.Suback{PacketID: 3, ReasonCodes: []codec.ReasonCode{1}})
	h.feed(&codec.Pingresp{})
	in := h.feed(&codec.Publish{Topic: "in", QoS: 1, PacketID: 40, Payload: []byte("m")})
	wantKinds(t, in, EventMessage)
	if err := h.s.Ack(h.now, in[0].Message.Ack); err != nil {
		t.Fatal(err)
	}
	h.expect(&codec.Puback{PacketID: 40})
	evs := h.feed(&codec.Puback{PacketID: 1})
	if evs[0].Token != t1 {
		t.Fatal(evs)
	}
	p := h.sent()
	if len(p) != 1 || string(p[0].(*codec.Publish).Payload) != "3" {
		t.Fatalf("after one ack the session sent %v, want message 3", p)
	}
	// The QoS 2 message holds its unit until PUBCOMP, not PUBREC.
	h.feed(&codec.Pubrec{PacketID: 2})
	h.expect(&codec.Pubrel{PacketID: 2})
	h.feed(&codec.Pubcomp{PacketID: 2})
	if p := h.sent(); len(p) != 1 || string(p[0].(*codec.Publish).Payload) != "4" {
		t.Fatalf("after PUBCOMP the session sent %v, want message 4", p)
	}
}

func TestQueueWhileDisconnected(t *testing.T) {
	h := newHarness(t, Config{MaxQueued: 2})
	t1, err := h.s.Publish(h.now, pub("a", 0, "zero"))
	if err != nil || t1 == 0 {
		t.Fatalf("offline QoS 0: %d %v", t1, err)
	}
	mustPublish(t, h, pub("a", 1, "one"))
	if _, err := h.s.Publish(h.now, pub("a", 1, "two")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third offline publish: %v", err)
	}
	_, evs := h.connect(nil)
	wantKinds(t, evs, EventConnected, EventPublished)
	p := h.sent()
	if len(p) != 2 || string(p[0].(*codec.Publish).Payload) != "zero" || p[1].(*codec.Publish).PacketID != 1 {
		t.Fatalf("sent %v", p)
	}
}

func TestCancelQueued(t *testing.T) {
	h := newHarness(t, Config{})
	tok := mustPublish(t, h, pub("a", 1, "x"))
	if !h.s.Cancel(tok) {
		t.Fatal("Cancel of a queued publish failed")
	}
	h.connect(nil)
	h.expectNothing()
	tok = mustPublish(t, h, pub("a", 1, "y"))
	h.sent()
	if h.s.Cancel(tok) {
		t.Fatal("Cancel of a sent publish succeeded; it keeps its identifier until acknowledged")
	}
}

// TestCancelFreesQueueSlot: a withdrawn publish gives its place in the
// queue back at once, not when the queue is next flushed, so a caller that
// gave up while the connection was down does not make the next publish
// fail with ErrQueueFull.
func TestCancelFreesQueueSlot(t *testing.T) {
	h := newHarness(t, Config{MaxQueued: 2})
	first := mustPublish(t, h, pub("a", 1, "first"))
	mustPublish(t, h, pub("a", 1, "second"))
	if _, err := h.s.Publish(h.now, pub("a", 1, "refused")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third publish with MaxQueued 2: %v, want ErrQueueFull", err)
	}
	if !h.s.Cancel(first) {
		t.Fatal("Cancel of the queued publish failed")
	}
	if h.s.Cancel(first) {
		t.Fatal("a second Cancel of the same publish succeeded")
	}
	if _, q := h.s.Inflight(); q != 1 {
		t.Fatalf("Inflight reports %d queued after Cancel, want 1", q)
	}
	mustPublish(t, h, pub("a", 1, "third"))
	h.connect(nil)
	p := h.sent()
	if len(p) != 2 || string(p[0].(*codec.Publish).Payload) != "second" || string(p[1].(*codec.Publish).Payload) != "third" {
		t.Fatalf("sent %v, want second and third, in order", p)
	}
}

func TestServerLimits(t *testing.T) {
	ack := &codec.Connack{Props: codec.Properties{MaximumQoS: 1, RetainAvailable: 0, MaximumPacketSize: 64,
		Present: 1<<codec.PropMaximumQoS | 1<<codec.PropRetainAvailable}}
	h := connected(t, Config{}, ack)
	var ue *UnsupportedError
	if _, err := h.s.Publish(h.now, pub("a", 2, "x")); !errors.As(err, &ue) {
		t.Fatalf("QoS 2 above maximum QoS 1 [MQTT-3.2.2-11]: %v", err)
	}
	retained := pub("a", 0, "x")
	retained.Retain = true
	if _, err := h.s.Publish(h.now, retained); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("retain without Retain Available [MQTT-3.2.2-14]: %v", err)
	}
	big := pub("a", 1, string(make([]byte, 100)))
	var tl *TooLargeError
	if _, err := h.s.Publish(h.now, big); !errors.As(err, &tl) || tl.Max != 64 || !errors.Is(err, codec.ErrPacketTooLarge) {
		t.Fatalf("packet above the server's maximum [MQTT-3.2.2-15]: %v", err)
	}
	h.expectNothing()
	if h.s.ids.n != 0 {
		t.Fatalf("refused publishes hold %d identifiers", h.s.ids.n)
	}
}

// TestReconnectResend: a session that is to outlive its connection (Clean
// Session 0 on 3.1.1, a Session Expiry Interval above 0 on 5.0) keeps its
// state after the connection closes [MQTT-3.1.2-4] (3.1.1)
// [MQTT-3.1.2-23] (5.0) [MQTT-4.1.0-1], reconnects under the same client
// identifier without clean start [MQTT-3.1.3-2], and on Session Present 1
// sends again what was unacknowledged: a PUBLISH not yet answered by PUBACK
// or PUBREC, with DUP 1 [MQTT-3.3.1-1] [MQTT-4.3.3-3] (5.0), and a PUBREL
// not yet answered by PUBCOMP [MQTT-4.3.3-5] (5.0), with their original
// identifiers [MQTT-2.3.1-3] (3.1.1) [MQTT-4.4.0-1], in their original order
// [MQTT-4.6.0-1], and never the PUBLISH of a message whose PUBREL was sent
// [MQTT-4.3.3-6] (5.0).
func TestReconnectResend(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := connected(t, Config{Version: v, ClientID: "c", SessionExpiry: map[codec.Version]uint32{codec.V5: 60}[v]}, nil)
			mustPublish(t, h, pub("a", 1, "first"))
			mustPublish(t, h, pub("a", 2, "second"))
			mustPublish(t, h, pub("a", 2, "third"))
			h.sent()
			h.feed(&codec.Pubrec{PacketID: 2})
			h.sent()
			h.s.ConnectionLost(h.now, errors.New("reset"))
			closedWith(t, h.events(), ErrConnectionLost)

			c, evs := h.connect(&codec.Connack{SessionPresent: true})
			if c.ClientID != "c" || c.CleanStart {
				t.Fatalf("reconnect CONNECT: client id %q clean %v; want c, resuming", c.ClientID, c.CleanStart)
			}
			wantKinds(t, evs, EventConnected)
			first := pub("a", 1, "first")
			first.PacketID, first.Dup = 1, true
			third := pub("a", 2, "third")
			third.PacketID, third.Dup = 3, true
			h.expect(first, &codec.Pubrel{PacketID: 2}, third)
		})
	}
}

// TestReconnectWithoutSession: on Session Present 0 the client discards its
// session state [MQTT-3.2.2-5] (5.0): with FailOnSessionLost the messages in
// flight fail, and an incoming QoS 2 exchange is forgotten.
func TestReconnectWithoutSession(t *testing.T) {
	h := connected(t, Config{SessionLost: FailOnSessionLost}, nil)
	tok := mustPublish(t, h, pub("a", 1, "x"))
	h.sent()
	h.feed(&codec.Publish{Topic: "in", QoS: 2, PacketID: 9})
	h.s.ConnectionLost(h.now, nil)
	h.events()
	_, evs := h.connect(&codec.Connack{SessionPresent: false})
	wantKinds(t, evs, EventConnected, EventPublished)
	if evs[1].Token != tok || !errors.Is(evs[1].Err, ErrSessionLost) {
		t.Fatalf("event %+v", evs[1])
	}
	h.expectNothing()
	// The incoming QoS 2 state was dropped: the same identifier is a new message.
	h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "#", QoS: 2}}, SubscribeOptions{})
	h.sent()
	evs = h.feed(&codec.Publish{Topic: "in", QoS: 2, PacketID: 9})
	wantKinds(t, evs, EventMessage)
}

func TestQuotaCountsResends(t *testing.T) {
	h := connected(t, Config{}, nil)
	for i := 0; i < 3; i++ {
		mustPublish(t, h, pub("a", 1, "x"))
	}
	h.sent()
	h.s.ConnectionLost(h.now, nil)
	h.events()
	h.connect(&codec.Connack{SessionPresent: true, Props: codec.Properties{ReceiveMaximum: 2}})
	if got := len(h.sent()); got != 2 {
		t.Fatalf("resent %d messages with a quota of 2", got)
	}
	h.feed(&codec.Puback{PacketID: 1})
	p := h.sent()
	if len(p) != 1 || p[0].(*codec.Publish).PacketID != 3 || !p[0].(*codec.Publish).Dup {
		t.Fatalf("after an ack the session sent %v, want the resend of 3", p)
	}
}

var _ = time.Second

// A PUBREL follows only a successful PUBREC [MQTT-4.3.3-4]; after a failed
// one the exchange is over [MQTT-4.3.3-9] [MQTT-4.4.0-2]. So a refused
// PUBREC for an identifier not in flight is ignored, while a successful one
// is still answered with PUBREL (0x92 on 5.0).
func TestUnknownPubrec(t *testing.T) {
	h := connected(t, Config{}, nil)
	for _, code := range []codec.ReasonCode{codec.ReasonUnspecifiedError, codec.ReasonNotAuthorized, codec.ReasonQuotaExceeded} {
		if evs := h.feed(&codec.Pubrec{PacketID: 7, ReasonCode: code}); len(evs) != 0 {
			t.Fatalf("events %+v", evs)
		}
		h.expectNothing()
	}
	h.feed(&codec.Pubrec{PacketID: 7, ReasonCode: codec.ReasonNoMatchingSubscribers})
	h.expect(&codec.Pubrel{PacketID: 7, ReasonCode: codec.ReasonPacketIdentifierNotFound})
	if !h.s.Connected() {
		t.Fatal("closed")
	}

	h = connected(t, Config{Version: codec.V311}, nil)
	h.feed(&codec.Pubrec{PacketID: 7})
	h.expect(&codec.Pubrel{PacketID: 7})
}

// MQTT 3.1.1 has no Receive Maximum: the session keeps at most 20 QoS 1/2
// messages in flight by default (Mosquitto's max_inflight_messages answers
// the 21st QoS 2 PUBLISH with PUBREC 0x97 and closes). The rest wait in
// order and go as places free up.
func TestMaxInflight311(t *testing.T) {
	h := connected(t, Config{Version: codec.V311}, nil)
	var toks []Token
	for i := range 25 {
		toks = append(toks, mustPublish(t, h, pub("a", 2, strconv.Itoa(i))))
	}
	pubs := sentPublishes(h.sent())
	if len(pubs) != 20 || pubs[19].PacketID != 20 {
		t.Fatalf("sent %d PUBLISH packets, want 20", len(pubs))
	}
	if u, q := h.s.Inflight(); u != 20 || q != 5 {
		t.Fatalf("inflight %d, queued %d", u, q)
	}
	h.feed(&codec.Pubrec{PacketID: 1})
	h.expect(&codec.Pubrel{PacketID: 1}) // still in flight until PUBCOMP
	evs := h.feed(&codec.Pubcomp{PacketID: 1})
	if e := publishedEvent(t, evs, toks[0]); e.Err != nil {
		t.Fatal(e.Err)
	}
	want := pub("a", 2, "20")
	want.PacketID = 21
	h.expect(want)
}

// Config.MaxInflight replaces the 3.1.1 default and caps the server's
// Receive Maximum on 5.0 [MQTT-4.9.0-2].
func TestMaxInflightConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		rm   uint16 // the server's Receive Maximum (5.0), 0: none
		want int
	}{
		{"3.1.1 raised", Config{Version: codec.V311, MaxInflight: 30}, 0, 25},
		{"3.1.1 lowered", Config{Version: codec.V311, MaxInflight: 3}, 0, 3},
		{"5.0 server's", Config{}, 4, 4},
		{"5.0 capped", Config{MaxInflight: 3}, 10, 3},
		{"5.0 cap above the server's", Config{MaxInflight: 8}, 5, 5},
		{"5.0 no Receive Maximum", Config{}, 0, 25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ack := &codec.Connack{}
			ack.Props.ReceiveMaximum = c.rm
			h := connected(t, c.cfg, ack)
			for range 25 {
				mustPublish(t, h, pub("a", 1, "x"))
			}
			if n := len(sentPublishes(h.sent())); n != c.want {
				t.Fatalf("%d PUBLISH packets in flight, want %d", n, c.want)
			}
		})
	}
	if _, err := New(Config{Version: codec.V5, ClientID: "c", MaxInflight: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("MaxInflight -1: %v", err)
	}
}
