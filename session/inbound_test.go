package session

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

func subscribed(t *testing.T, h *harness, handle Handle, filter string, qos codec.QoS) {
	t.Helper()
	tok, err := h.s.Subscribe(h.now, handle, []codec.Subscription{{Filter: filter, QoS: qos}}, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := h.sent()
	if len(p) != 1 {
		t.Fatalf("Subscribe sent %v", p)
	}
	id := p[0].(*codec.Subscribe).PacketID
	evs := h.feed(&codec.Suback{PacketID: id, ReasonCodes: []codec.ReasonCode{codec.ReasonCode(qos)}})
	if len(evs) != 1 || evs[0].Token != tok || evs[0].Err != nil {
		t.Fatalf("SUBACK events %+v", evs)
	}
}

func inPub(topic string, qos codec.QoS, id uint16, payload string) *codec.Publish {
	return &codec.Publish{Topic: topic, QoS: qos, PacketID: id, Payload: []byte(payload)}
}

// TestInboundQoS0: a QoS 0 message is answered with nothing [MQTT-3.3.4-1].
func TestInboundQoS0(t *testing.T) {
	h := connected(t, Config{}, nil)
	subscribed(t, h, 7, "a/+", 0)
	evs := h.feed(inPub("a/b", 0, 0, "hi"))
	wantKinds(t, evs, EventMessage)
	m := evs[0].Message
	if m.Topic != "a/b" || string(m.Payload) != "hi" || len(m.Targets) != 1 || m.Targets[0] != 7 || m.Ack != 0 {
		t.Fatalf("message %+v", m)
	}
	h.expectNothing()
	evs = h.feed(inPub("other", 0, 0, "x"))
	wantKinds(t, evs, EventUnrouted)
}

// TestInboundQoS1: a QoS 1 message is answered with PUBACK [MQTT-3.3.4-1]
// carrying its packet identifier [MQTT-2.3.1-6] (3.1.1) [MQTT-2.2.1-5] (5.0)
// once the application took ownership (its Ack) [MQTT-4.3.2-4] (5.0)
// [MQTT-4.3.2-2] (3.1.1); the PUBACK carries no Reason String or User
// Property, so it never grows for them [MQTT-3.4.2-2] [MQTT-3.4.2-3]. After
// the PUBACK the same identifier starts a new message, DUP or not
// [MQTT-4.3.2-5] (5.0). A repeat before the Ack is not delivered twice (the
// session's choice: the first copy is still with the application).
func TestInboundQoS1(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := connected(t, Config{Version: v, ClientID: "c"}, nil)
			subscribed(t, h, 1, "#", 1)
			evs := h.feed(inPub("t", 1, 5, "x"))
			wantKinds(t, evs, EventMessage)
			ack := evs[0].Message.Ack
			h.expectNothing() // the PUBACK waits for Ack: the message is not queued yet
			dup := inPub("t", 1, 5, "x")
			dup.Dup = true
			if evs := h.feed(dup); len(evs) != 0 {
				t.Fatalf("duplicate before the Ack delivered: %v", evs)
			}
			if err := h.s.Ack(h.now, ack); err != nil {
				t.Fatal(err)
			}
			h.expect(&codec.Puback{PacketID: 5})
			h.s.Ack(h.now, ack) // idempotent
			h.expectNothing()
			// After the PUBACK: a new message, even with DUP set.
			evs = h.feed(dup)
			wantKinds(t, evs, EventMessage)
		})
	}
}

// TestInboundQoS2: a QoS 2 message is answered with PUBREC [MQTT-3.3.4-1]
// carrying its identifier [MQTT-2.3.1-6] (3.1.1) [MQTT-2.2.1-5] (5.0) once
// the application took ownership [MQTT-4.3.3-8] (5.0)
// [MQTT-4.3.3-2] (3.1.1); repeats before the PUBREL get the PUBREC again and are not
// delivered [MQTT-4.3.3-10] (5.0); the PUBREL gets a PUBCOMP with the same
// identifier [MQTT-4.3.3-11] (5.0), after which the identifier starts a new
// message [MQTT-4.3.3-12] (5.0). The acknowledgements carry no Reason String
// or User Property [MQTT-3.5.2-2] [MQTT-3.5.2-3] [MQTT-3.7.2-2]
// [MQTT-3.7.2-3].
func TestInboundQoS2(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := connected(t, Config{Version: v}, nil)
			subscribed(t, h, 1, "#", 2)
			evs := h.feed(inPub("t", 2, 9, "x"))
			wantKinds(t, evs, EventMessage)
			ack := evs[0].Message.Ack
			if evs := h.feed(inPub("t", 2, 9, "x")); len(evs) != 0 {
				t.Fatalf("unacked duplicate delivered or answered: %v", evs)
			}
			h.expectNothing()
			h.s.Ack(h.now, ack)
			h.expect(&codec.Pubrec{PacketID: 9})
			dup := inPub("t", 2, 9, "x")
			dup.Dup = true
			if evs := h.feed(dup); len(evs) != 0 {
				t.Fatalf("MQTT-4.3.3-10: duplicate after PUBREC delivered: %v", evs)
			}
			h.expect(&codec.Pubrec{PacketID: 9})
			h.feed(&codec.Pubrel{PacketID: 9})
			h.expect(&codec.Pubcomp{PacketID: 9})
			if evs := h.feed(inPub("t", 2, 9, "next")); len(evs) != 1 || string(evs[0].Message.Payload) != "next" {
				t.Fatalf("identifier 9 after PUBCOMP: events %+v, want a new message", evs)
			}
			t.Run("MQTT-4.3.3-11/unknown-pubrel", func(t *testing.T) {
				h.feed(&codec.Pubrel{PacketID: 10})
				want := &codec.Pubcomp{PacketID: 10}
				if v == codec.V5 {
					want.ReasonCode = codec.ReasonPacketIdentifierNotFound
				}
				h.expect(want)
				if !h.s.Connected() {
					t.Fatal("an unknown PUBREL must not be fatal")
				}
			})
		})
	}
}

func TestInboundReceiveMaximum(t *testing.T) {
	h := connected(t, Config{ReceiveMaximum: 2}, nil)
	subscribed(t, h, 1, "#", 1)
	h.feed(inPub("t", 1, 1, ""))
	h.feed(inPub("t", 2, 2, ""))
	evs := h.feed(inPub("t", 1, 3, ""))
	e := closedWith(t, evs, ErrProtocol)
	if protoReason(t, e.Err) != codec.ReasonReceiveMaximumExceeded {
		t.Fatalf("reason %v", e.Err)
	}
	h.expect(&codec.Disconnect{ReasonCode: codec.ReasonReceiveMaximumExceeded})
}

func TestInboundMaximumPacketSize(t *testing.T) {
	h := connected(t, Config{MaximumPacketSize: 64}, nil)
	evs := h.feed(inPub("t", 0, 0, string(make([]byte, 100))))
	e := closedWith(t, evs, ErrProtocol)
	if protoReason(t, e.Err) != codec.ReasonPacketTooLarge {
		t.Fatal(e.Err)
	}
	h.expect(&codec.Disconnect{ReasonCode: codec.ReasonPacketTooLarge})
}

func TestAckWhileDisconnected(t *testing.T) {
	h := connected(t, Config{}, nil)
	subscribed(t, h, 1, "#", 2)
	evs := h.feed(inPub("t", 2, 4, "x"))
	ack := evs[0].Message.Ack
	h.s.ConnectionLost(h.now, nil)
	h.events()
	if err := h.s.Ack(h.now, ack); err != nil {
		t.Fatal(err)
	}
	h.connect(&codec.Connack{SessionPresent: true})
	h.expect(&codec.Pubrec{PacketID: 4})
}

func TestStaleAckAfterSessionLoss(t *testing.T) {
	h := connected(t, Config{}, nil)
	subscribed(t, h, 1, "#", 1)
	evs := h.feed(inPub("t", 1, 4, "old"))
	old := evs[0].Message.Ack
	h.s.ConnectionLost(h.now, nil)
	h.events()
	h.connect(&codec.Connack{SessionPresent: false})
	h.sent() // the restored SUBSCRIBE
	h.feed(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
	evs = h.feed(inPub("t", 1, 4, "new"))
	wantKinds(t, evs, EventMessage)
	h.s.Ack(h.now, old)
	h.expectNothing() // the old ack must not acknowledge the new message 4
	h.s.Ack(h.now, evs[0].Message.Ack)
	h.expect(&codec.Puback{PacketID: 4})
}

func TestTopicAliasInbound(t *testing.T) {
	h := connected(t, Config{TopicAliasMaximum: 2}, nil)
	subscribed(t, h, 1, "#", 0)
	p := inPub("long/topic", 0, 0, "1")
	p.Props.TopicAlias = 1
	evs := h.feed(p)
	if evs[0].Message.Topic != "long/topic" || evs[0].Message.Props.TopicAlias != 0 {
		t.Fatalf("message %+v", evs[0].Message)
	}
	p = inPub("", 0, 0, "2")
	p.Props.TopicAlias = 1
	evs = h.feed(p)
	if evs[0].Message.Topic != "long/topic" {
		t.Fatalf("alias not resolved: %+v", evs[0].Message)
	}
	// Every alias from 1 to our maximum is accepted [MQTT-3.3.2-10].
	p = inPub("other/topic", 0, 0, "3")
	p.Props.TopicAlias = 2
	if evs = h.feed(p); len(evs) != 1 || evs[0].Message.Topic != "other/topic" {
		t.Fatalf("alias 2 (the maximum): %+v", evs)
	}
	p = inPub("", 0, 0, "4")
	p.Props.TopicAlias = 2
	if evs = h.feed(p); len(evs) != 1 || evs[0].Message.Topic != "other/topic" {
		t.Fatalf("alias 2 not resolved: %+v", evs)
	}
	t.Run("MQTT-3.3.2-11/alias-above-maximum", func(t *testing.T) {
		p := inPub("x", 0, 0, "")
		p.Props.TopicAlias = 3
		e := closedWith(t, h.feed(p), ErrProtocol)
		if protoReason(t, e.Err) != codec.ReasonTopicAliasInvalid {
			t.Fatal(e.Err)
		}
		h.expect(&codec.Disconnect{ReasonCode: codec.ReasonTopicAliasInvalid})
	})
	t.Run("MQTT-3.3.2-7/aliases-do-not-carry-over", func(t *testing.T) {
		h.connect(&codec.Connack{SessionPresent: true})
		p := inPub("", 0, 0, "")
		p.Props.TopicAlias = 1
		closedWith(t, h.feed(p), ErrProtocol)
	})
}

// TestTopicAliasOutbound: with OutboundAliases the session gives topics
// aliases from 1 to the server's Topic Alias Maximum and never above it
// [MQTT-3.2.2-17] [MQTT-3.3.2-9], and none when the server gave no maximum
// [MQTT-3.2.2-18]; aliases start over on each connection [MQTT-3.3.2-7].
func TestTopicAliasOutbound(t *testing.T) {
	h := connected(t, Config{OutboundAliases: true}, &codec.Connack{Props: codec.Properties{TopicAliasMaximum: 2}})
	for _, topic := range []string{"a", "a", "b", "c", "a"} {
		mustPublish(t, h, pub(topic, 0, topic))
	}
	withAlias := func(topic string, alias uint16) *codec.Publish {
		p := pub(topic, 0, "")
		p.Props.TopicAlias = alias
		return p
	}
	got := h.sent()
	want := []struct {
		topic string
		alias uint16
	}{{"a", 1}, {"", 1}, {"b", 2}, {"c", 1}, {"a", 2}} // LRU: c takes a's alias 1, a then takes b's 2
	if len(got) != len(want) {
		t.Fatalf("sent %v", got)
	}
	for i, w := range want {
		p := got[i].(*codec.Publish)
		if p.Topic != w.topic || p.Props.TopicAlias != w.alias {
			t.Fatalf("packet %d: topic %q alias %d, want %q %d", i, p.Topic, p.Props.TopicAlias, w.topic, w.alias)
		}
	}
	_ = withAlias
	// Reset on every connection.
	h.s.ConnectionLost(h.now, nil)
	h.events()
	h.connect(&codec.Connack{SessionPresent: true, Props: codec.Properties{TopicAliasMaximum: 2}})
	mustPublish(t, h, pub("c", 0, ""))
	if p := h.sent()[0].(*codec.Publish); p.Topic != "c" || p.Props.TopicAlias != 1 {
		t.Fatalf("after reconnect: %v", p)
	}
	// A server that gives no Topic Alias Maximum gets no alias.
	h.s.ConnectionLost(h.now, nil)
	h.events()
	h.connect(&codec.Connack{SessionPresent: true})
	mustPublish(t, h, pub("c", 0, ""))
	mustPublish(t, h, pub("c", 0, ""))
	for _, p := range h.sent() {
		if p := p.(*codec.Publish); p.Topic != "c" || p.Props.Has(codec.PropTopicAlias) {
			t.Fatalf("without a Topic Alias Maximum the session sent %v", p)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	h := connected(t, Config{KeepAlive: 10 * time.Second, PingTimeout: 3 * time.Second}, nil)
	if d := h.s.Deadline(); !d.Equal(h.now.Add(10 * time.Second)) {
		t.Fatalf("deadline %v", d)
	}
	h.advance(6 * time.Second)
	h.expectNothing()
	mustPublish(t, h, pub("a", 0, "")) // sending resets the send timer [MQTT-3.1.2-23] (3.1.1) [MQTT-3.1.2-20] (5.0)
	h.sent()
	// ... but not the receive timer: the server has been quiet for 10 s.
	if d := h.s.Deadline(); !d.Equal(epoch.Add(10 * time.Second)) {
		t.Fatalf("deadline %v, want the receive timer at 10 s", d.Sub(epoch))
	}
	h.advance(4 * time.Second)
	h.expect(&codec.Pingreq{})
	if d := h.s.Deadline(); !d.Equal(epoch.Add(13 * time.Second)) {
		t.Fatalf("deadline %v, want the ping timeout at 13 s", d.Sub(epoch))
	}
	h.advance(time.Second)
	h.feed(&codec.Pingresp{})
	h.advance(2 * time.Second)
	if !h.s.Connected() {
		t.Fatal("answered ping timed out")
	}
	h.advance(7 * time.Second) // 20 s: nothing sent since the PINGREQ at 10 s
	h.expect(&codec.Pingreq{})
	evs := h.advance(3 * time.Second)
	e := closedWith(t, evs, ErrTimeout)
	var te *TimeoutError
	if !errors.As(e.Err, &te) || te.Waiting != "PINGRESP" || te.After != 3*time.Second {
		t.Fatal(e.Err)
	}
}

func TestKeepAliveZeroDisables(t *testing.T) {
	h := connected(t, Config{}, nil)
	if d := h.s.Deadline(); !d.IsZero() {
		t.Fatalf("deadline %v with keep alive 0", d)
	}
	h.advance(time.Hour)
	h.expectNothing()
}

func TestServerKeepAliveOverrides(t *testing.T) {
	ack := &codec.Connack{Props: codec.Properties{ServerKeepAlive: 5}}
	h := connected(t, Config{KeepAlive: time.Minute}, ack)
	h.advance(5 * time.Second)
	h.expect(&codec.Pingreq{}) // [MQTT-3.2.2-21] [MQTT-3.1.2-21] (5.0): the server's value, not ours
}

func TestPingRTT(t *testing.T) {
	h := connected(t, Config{}, nil)
	tok, err := h.s.Ping(h.now)
	if err != nil {
		t.Fatal(err)
	}
	h.expect(&codec.Pingreq{})
	h.now = h.now.Add(42 * time.Millisecond)
	evs := h.feed(&codec.Pingresp{})
	if len(evs) != 1 || evs[0].Kind != EventPong || evs[0].Token != tok || evs[0].RTT != 42*time.Millisecond {
		t.Fatalf("events %+v", evs)
	}
	tok, _ = h.s.Ping(h.now)
	h.s.ConnectionLost(h.now, nil)
	evs = h.events()
	if evs[0].Kind != EventPong || evs[0].Token != tok || !errors.Is(evs[0].Err, ErrConnectionLost) {
		t.Fatalf("a ping waiting when the connection drops must fail: %+v", evs)
	}
}

// TestServerDisconnect: a DISCONNECT from the server ends the connection,
// the session sending nothing more [MQTT-4.13.2-1].
func TestServerDisconnect(t *testing.T) {
	h := connected(t, Config{}, nil)
	evs := h.feed(&codec.Disconnect{ReasonCode: codec.ReasonServerShuttingDown, Props: codec.Properties{ReasonString: "bye"}})
	e := closedWith(t, evs, ErrConnectionLost)
	var re *ReasonError
	if !errors.As(e.Err, &re) || re.Code != codec.ReasonServerShuttingDown || re.Reason != "bye" {
		t.Fatal(e.Err)
	}
	h.expectNothing()
}

// TestClientDisconnect: after its DISCONNECT the session sends nothing more
// on that connection, whatever is published or however long it waits
// [MQTT-3.14.4-2] (3.1.1) [MQTT-3.14.4-1] (5.0), and ends it with
// EventClosed, on which the I/O loop closes the network connection
// [MQTT-3.14.4-1] (3.1.1) [MQTT-3.14.4-2] (5.0).
func TestClientDisconnect(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := connected(t, Config{Version: v, ClientID: "c", KeepAlive: 10 * time.Second}, nil)
			want := &codec.Disconnect{}
			if v == codec.V5 {
				want.ReasonCode = codec.ReasonDisconnectWithWill
			}
			if err := h.s.Disconnect(h.now, want.ReasonCode, nil); err != nil {
				t.Fatal(err)
			}
			h.expect(want)
			closedWith(t, h.events(), nil)
			if h.s.Connected() {
				t.Fatal("connected after Disconnect")
			}
			mustPublish(t, h, pub("a", 1, "after"))
			h.advance(time.Minute)
			h.expectNothing()
			if err := h.s.Disconnect(h.now, 0, nil); !errors.Is(err, ErrNotConnected) {
				t.Fatal(err)
			}
		})
	}
	t.Run("MQTT-3.14.2-3/properties-above-maximum-packet-size", func(t *testing.T) {
		// [MQTT-3.14.2-4]: the Reason String and User Properties are left
		// out rather than exceed the server's Maximum Packet Size; the
		// reason code and the other properties stay.
		h := connected(t, Config{SessionExpiry: 10}, &codec.Connack{Props: codec.Properties{MaximumPacketSize: 32}})
		p := &codec.Properties{SessionExpiry: 5, ReasonString: strings.Repeat("r", 40),
			User: []codec.UserProperty{{Key: "k", Value: "v"}}}
		if err := h.s.Disconnect(h.now, codec.ReasonDisconnectWithWill, p); err != nil {
			t.Fatal(err)
		}
		got := h.sent()
		d, ok := got[0].(*codec.Disconnect)
		if len(got) != 1 || !ok || d.ReasonCode != codec.ReasonDisconnectWithWill || d.Props.SessionExpiry != 5 ||
			d.Props.ReasonString != "" || len(d.Props.User) != 0 {
			t.Fatalf("sent %+v, want DISCONNECT 0x04 with session expiry 5 and nothing else", got)
		}
		if n := d.Size(codec.V5); n > 32 {
			t.Fatalf("DISCONNECT of %d bytes above the server's maximum of 32", n)
		}
		if p.ReasonString == "" || len(p.User) != 1 {
			t.Fatal("Disconnect changed the caller's properties")
		}
		// Within the maximum, they are sent.
		h = connected(t, Config{}, &codec.Connack{Props: codec.Properties{MaximumPacketSize: 64}})
		h.s.Disconnect(h.now, 0, &codec.Properties{ReasonString: "bye", User: []codec.UserProperty{{Key: "k", Value: "v"}}})
		h.expect(&codec.Disconnect{Props: codec.Properties{ReasonString: "bye", User: []codec.UserProperty{{Key: "k", Value: "v"}}}})
	})
	t.Run("MQTT-3.14.2-2/session-expiry-from-zero", func(t *testing.T) {
		h := connected(t, Config{}, nil)
		p := &codec.Properties{SessionExpiry: 60}
		var pe *ProtocolError
		if err := h.s.Disconnect(h.now, 0, p); !errors.As(err, &pe) || pe.Remote {
			t.Fatalf("raising the session expiry from 0 at DISCONNECT: %v", err)
		}
	})
}
