package session

import (
	"errors"
	"strings"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Regression tests for the bugs the model test (model_test.go) found, one
// deterministic scenario each.

func maxQoSAck(present bool, q codec.QoS) *codec.Connack {
	ack := &codec.Connack{SessionPresent: present}
	ack.Props.MaximumQoS = byte(q)
	ack.Props.Mark(codec.PropMaximumQoS)
	return ack
}

func publishedEvent(t *testing.T, evs []Event, tok Token) Event {
	t.Helper()
	for _, e := range evs {
		if e.Kind == EventPublished && e.Token == tok {
			return e
		}
	}
	t.Fatalf("no EventPublished for token %d in %+v", tok, evs)
	return Event{}
}

func sentPublishes(pk []codec.Packet) []*codec.Publish {
	var out []*codec.Publish
	for _, p := range pk {
		if q, ok := p.(*codec.Publish); ok {
			out = append(out, q)
		}
	}
	return out
}

// A Ping still open at a normal Disconnect fails with ErrClosed: a nil error
// would say a PINGRESP came.
func TestPingOpenAtDisconnectFails(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		h := connected(t, Config{Version: v}, nil)
		tok, err := h.s.Ping(h.now)
		if err != nil {
			t.Fatal(err)
		}
		h.sent()
		if err := h.s.Disconnect(h.now, 0, nil); err != nil {
			t.Fatal(err)
		}
		evs := h.events()
		wantKinds(t, evs, EventPong, EventClosed)
		if evs[0].Token != tok || !errors.Is(evs[0].Err, ErrClosed) {
			t.Fatalf("%v: pong %+v, want ErrClosed", v, evs[0])
		}
		closedWith(t, evs, nil)
	}
}

// A message queued while disconnected whose QoS is above the Maximum QoS of
// the next CONNACK fails with *UnsupportedError; it is never sent
// [MQTT-3.2.2-11].
func TestQueuedPublishAboveMaximumQoSFails(t *testing.T) {
	h := newHarness(t, Config{})
	tok := mustPublish(t, h, pub("a/b", 2, "x"))
	tok1 := mustPublish(t, h, pub("a/b", 1, "y"))
	_, evs := h.connect(maxQoSAck(false, 1))
	var ue *UnsupportedError
	if e := publishedEvent(t, evs, tok); !errors.As(e.Err, &ue) || !errors.Is(e.Err, ErrUnsupported) {
		t.Fatalf("QoS 2 publish completed with %v, want *UnsupportedError", e.Err)
	}
	want := pub("a/b", 1, "y")
	want.PacketID = 1
	h.expect(want)
	evs = h.feed(&codec.Puback{PacketID: 1})
	if e := publishedEvent(t, evs, tok1); e.Err != nil {
		t.Fatalf("QoS 1 publish: %v", e.Err)
	}
}

// A message sent and unacknowledged is resent at its QoS after a CONNACK
// with session present, even when that CONNACK lowered the Maximum QoS: the
// server holds its identifier [MQTT-4.4.0-1].
func TestResendAboveNewMaximumQoS(t *testing.T) {
	h := connected(t, Config{}, nil)
	tok := mustPublish(t, h, pub("a/b", 1, "x"))
	h.sent()
	h.s.ConnectionLost(h.now, nil)
	h.events()
	_, evs := h.connect(maxQoSAck(true, 0))
	wantKinds(t, evs, EventConnected)
	want := pub("a/b", 1, "x")
	want.PacketID, want.Dup = 1, true
	h.expect(want)
	evs = h.feed(&codec.Puback{PacketID: 1})
	if e := publishedEvent(t, evs, tok); e.Err != nil {
		t.Fatalf("resent publish: %v", e.Err)
	}
}

// A message that must be resent but is above the new Maximum Packet Size
// fails with *TooLargeError instead of being sent [MQTT-3.2.2-15]. The QoS 1
// identifier is free again [MQTT-4.3.2-3]; the QoS 2 one stays reserved until
// the server says it lost the session, because it may hold it at "PUBREC
// sent" [MQTT-4.3.3-9].
func TestResendAboveNewMaximumPacketSize(t *testing.T) {
	h := connected(t, Config{MaxPacketID: 3, SessionLost: FailOnSessionLost}, nil)
	big := strings.Repeat("x", 100)
	tok1 := mustPublish(t, h, pub("a/b", 1, big))
	tok2 := mustPublish(t, h, pub("a/b", 2, big))
	h.sent()
	h.s.ConnectionLost(h.now, nil)
	h.events()
	ack := &codec.Connack{SessionPresent: true}
	ack.Props.MaximumPacketSize = 64
	_, evs := h.connect(ack)
	for _, tok := range []Token{tok1, tok2} {
		var tl *TooLargeError
		if e := publishedEvent(t, evs, tok); !errors.As(e.Err, &tl) || tl.Max != 64 {
			t.Fatalf("token %d completed with %v, want *TooLargeError", tok, e.Err)
		}
	}
	h.expectNothing()
	// Identifiers 1 (QoS 1, free) and 3 are usable, 2 (QoS 2) is not.
	var ids []uint16
	for range 2 {
		mustPublish(t, h, pub("a/b", 1, "s"))
		for _, p := range sentPublishes(h.sent()) {
			ids = append(ids, p.PacketID)
		}
	}
	for _, id := range ids {
		if id == 2 {
			t.Fatalf("identifier 2 of the failed QoS 2 message reused: %v [MQTT-2.2.1-3]", ids)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("sent identifiers %v, want two", ids)
	}
	// A CONNACK without session present frees it.
	h.s.ConnectionLost(h.now, nil)
	h.events()
	h.connect(nil)
	h.sent()
	h.events()
	if h.s.ids.n != 0 {
		t.Fatalf("%d identifiers in use after the session was lost", h.s.ids.n)
	}
}

// The AckID of a message names that message only: after the session
// acknowledged an unrouted QoS 1 message, an Ack of its AckID must not
// acknowledge a new message on the same packet identifier before the
// application has it.
func TestAckIDNotReusedWithPacketID(t *testing.T) {
	h := connected(t, Config{}, nil)
	p := pub("x", 1, "first")
	p.PacketID = 5
	evs := h.feed(p)
	wantKinds(t, evs, EventUnrouted)
	old := evs[0].Message.Ack
	h.expect(&codec.Puback{PacketID: 5})
	if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "x"}}, SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sent()
	p = pub("x", 1, "second")
	p.PacketID = 5
	evs = h.feed(p)
	wantKinds(t, evs, EventMessage)
	if evs[0].Message.Ack == old {
		t.Fatalf("the new message has the AckID %d of the old one", old)
	}
	if err := h.s.Ack(h.now, old); err != nil {
		t.Fatal(err)
	}
	h.expectNothing()
	if err := h.s.Ack(h.now, evs[0].Message.Ack); err != nil {
		t.Fatal(err)
	}
	h.expect(&codec.Puback{PacketID: 5})
}

// A QoS 1 message of the last connection, acknowledged while disconnected,
// is acknowledged at the CONNACK of a resumed session. The server's resend of
// it (DUP), which crossed that PUBACK, is not delivered again, so that no
// second PUBACK follows that the server could take for a new message's; a
// new message on the identifier (no DUP) is delivered.
func TestResendCrossingResumePuback(t *testing.T) {
	h := connected(t, Config{}, nil)
	if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "a/b", QoS: 1}}, SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sent()
	h.feed(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
	p := pub("a/b", 1, "m")
	p.PacketID = 7
	evs := h.feed(p)
	wantKinds(t, evs, EventMessage)
	ack := evs[0].Message.Ack
	h.s.ConnectionLost(h.now, nil)
	h.events()
	if err := h.s.Ack(h.now, ack); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Connect(h.now); err != nil {
		t.Fatal(err)
	}
	h.sent()
	h.feed(&codec.Connack{SessionPresent: true})
	h.expect(&codec.Puback{PacketID: 7})
	p.Dup = true
	if evs := h.feed(p); len(evs) != 0 {
		t.Fatalf("the resend crossing our PUBACK was delivered again: %+v", evs)
	}
	h.expectNothing()
	p = pub("a/b", 1, "new")
	p.PacketID = 7
	evs = h.feed(p)
	wantKinds(t, evs, EventMessage)
	if string(evs[0].Message.Payload) != "new" {
		t.Fatalf("delivered %q", evs[0].Message.Payload)
	}
}

// Unsubscribe of a filter another handle still uses sends nothing: the
// server has one subscription per filter [MQTT-3.8.4-3].
func TestUnsubscribeKeepsOtherHandlesFilter(t *testing.T) {
	h := connected(t, Config{}, nil)
	if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "a/+"}}, SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sent()
	tok, err := h.s.Unsubscribe(h.now, 2, []string{"a/+"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.expectNothing()
	evs := h.events()
	if len(evs) != 1 || evs[0].Kind != EventUnsubscribed || evs[0].Token != tok || evs[0].Err != nil {
		t.Fatalf("events %+v", evs)
	}
}

// Subscribe and Unsubscribe calls made while disconnected reach the server
// in the order of the calls; an unsubscription superseded by a later
// Subscribe of the same filter is not sent after it.
func TestRestoreKeepsCallOrder(t *testing.T) {
	h := connected(t, Config{}, nil)
	h.s.ConnectionLost(h.now, nil)
	h.events()
	if _, err := h.s.Unsubscribe(h.now, 1, []string{"+"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "+"}}, SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Unsubscribe(h.now, 1, []string{"b"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Connect(h.now); err != nil {
		t.Fatal(err)
	}
	h.sent()
	h.feed(&codec.Connack{SessionPresent: true})
	h.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "+"}}},
		&codec.Unsubscribe{PacketID: 2, Filters: []string{"b"}})
}

// A publish waiting for a packet identifier is sent when a SUBACK frees one.
func TestSubackFreesIdentifierForQueuedPublish(t *testing.T) {
	h := connected(t, Config{MaxPacketID: 1}, nil)
	if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "a"}}, SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sent()
	mustPublish(t, h, pub("a/b", 1, "x"))
	h.expectNothing()
	h.feed(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}})
	want := pub("a/b", 1, "x")
	want.PacketID = 1
	h.expect(want)
}

// A PUBLISH refused as too large does not leave behind a topic alias the
// server never learned: the next PUBLISH on the topic carries the topic
// [MQTT-3.3.2-12].
func TestFailedPublishForgetsAlias(t *testing.T) {
	ack := &codec.Connack{}
	ack.Props.TopicAliasMaximum = 1
	ack.Props.MaximumPacketSize = 40
	h := connected(t, Config{OutboundAliases: true}, ack)
	var tl *TooLargeError
	if _, err := h.s.Publish(h.now, pub("a/b", 0, strings.Repeat("x", 60))); !errors.As(err, &tl) {
		t.Fatalf("Publish: %v, want *TooLargeError", err)
	}
	h.expectNothing()
	mustPublish(t, h, pub("a/b", 0, "y"))
	ps := sentPublishes(h.sent())
	if len(ps) != 1 || ps[0].Topic != "a/b" {
		t.Fatalf("sent %v, want the topic with its alias", ps)
	}
}

// TestReplyMatchSurvivesBufferReuse: the topic of an incoming reply is a
// view of the read buffer. Matching one of several requests waiting on a
// reply topic must not leave that view in the session's tables: after the
// buffer is overwritten, the other requests still get their replies. (A
// map assignment keyed by the view did this: 229 of 250 concurrent
// requests of one requester timed out, their replies counted unmatched.)
func TestReplyMatchSurvivesBufferReuse(t *testing.T) {
	h := connected(t, Config{}, nil)
	const topic = "_zmqtt/reply/0123456789abcdef0123456789abcdef"
	var toks []Token
	for i := range 3 {
		toks = append(toks, h.s.ExpectReply(topic, []byte{byte(i)}))
	}
	for _, i := range []int{1, 0, 2} {
		reply := &codec.Publish{Topic: topic, Payload: []byte("r"), Props: codec.Properties{CorrelationData: []byte{byte(i)}}}
		buf, err := codec.Append(nil, reply, codec.V5)
		if err != nil {
			t.Fatal(err)
		}
		evs := h.feedBytes(buf)
		if len(evs) != 1 || evs[0].Message.Reply != toks[i] {
			t.Fatalf("reply %d: events %+v, want the reply of request %d (token %d)", i, evs, i, toks[i])
		}
		for j := range buf {
			buf[j] = 'x' // the transport reuses its buffer
		}
	}
	if len(h.s.replies) != 0 {
		t.Fatalf("%d reply topics still registered", len(h.s.replies))
	}
}
