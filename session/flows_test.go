package session

import (
	"errors"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Tests of the delivery flows and of the session's life, run on both
// versions where the statements of both versions apply.

// TestPublishFlows follows one message of each QoS through its flow, as the
// sender: QoS 0 goes once with QoS 0 and DUP 0 and no packet identifier
// [MQTT-4.3.1-1] [MQTT-2.3.1-5] (3.1.1); QoS 1 and 2 each get an unused,
// non-zero identifier [MQTT-4.3.2-1] [MQTT-4.3.3-1] [MQTT-2.3.1-1] (3.1.1)
// [MQTT-2.3.1-2] (3.1.1) and go with DUP 0 [MQTT-4.3.2-2] (5.0)
// [MQTT-4.3.3-2] (5.0); QoS 1 is done only at its PUBACK; QoS 2 is answered
// at its PUBREC with a PUBREL of the same identifier [MQTT-4.3.3-4]
// [MQTT-2.3.1-6] (3.1.1) [MQTT-2.2.1-5] (5.0), whose PUBLISH is not sent
// again [MQTT-4.3.3-6] (5.0), and is done only at its PUBCOMP. In 3.1.1
// [MQTT-4.3.2-1] and [MQTT-4.3.3-1] are the sender's whole flows. The
// PUBREL carries no Reason String or User Property, so it never grows for
// them [MQTT-3.6.2-2] [MQTT-3.6.2-3].
func TestPublishFlows(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := connected(t, Config{Version: v, ClientID: "c"}, nil)
			if tok := mustPublish(t, h, pub("q0", 0, "zero")); tok != 0 {
				t.Fatalf("QoS 0 token %d, want 0 (done when written)", tok)
			}
			h.expect(pub("q0", 0, "zero"))

			tok1 := mustPublish(t, h, pub("q1", 1, "one"))
			tok2 := mustPublish(t, h, pub("q2", 2, "two"))
			p1, p2 := pub("q1", 1, "one"), pub("q2", 2, "two")
			p1.PacketID, p2.PacketID = 1, 2
			h.expect(p1, p2)

			if evs := h.feed(&codec.Pubrec{PacketID: 2}); len(evs) != 0 {
				t.Fatalf("QoS 2 completed at its PUBREC: %+v", evs)
			}
			h.expect(&codec.Pubrel{PacketID: 2})
			// A repeated PUBREC gets the PUBREL again, never the PUBLISH.
			h.feed(&codec.Pubrec{PacketID: 2})
			h.expect(&codec.Pubrel{PacketID: 2})

			if evs := h.feed(&codec.Puback{PacketID: 1}); len(evs) != 1 || evs[0].Token != tok1 || evs[0].Err != nil {
				t.Fatalf("PUBACK 1: events %+v", evs)
			}
			if evs := h.feed(&codec.Pubcomp{PacketID: 2}); len(evs) != 1 || evs[0].Token != tok2 || evs[0].Err != nil {
				t.Fatalf("PUBCOMP 2: events %+v", evs)
			}
			if u, q := h.s.Inflight(); u != 0 || q != 0 {
				t.Fatalf("inflight %d queued %d after both flows ended", u, q)
			}
		})
	}
}

// TestPubrelOrder: PUBREL packets go in the order their PUBREC packets came
// [MQTT-4.6.0-4], whatever the order the messages were published in.
func TestPubrelOrder(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := connected(t, Config{Version: v, ClientID: "c"}, nil)
			for _, m := range []string{"a", "b", "c"} {
				mustPublish(t, h, pub("t", 2, m))
			}
			h.sent()
			h.feedBytes(appendAll(t, v, &codec.Pubrec{PacketID: 3}, &codec.Pubrec{PacketID: 1}, &codec.Pubrec{PacketID: 2}))
			h.expect(&codec.Pubrel{PacketID: 3}, &codec.Pubrel{PacketID: 1}, &codec.Pubrel{PacketID: 2})
		})
	}
}

// appendAll encodes packets back to back, as they would arrive in one read.
func appendAll(t *testing.T, v codec.Version, pkts ...codec.Packet) []byte {
	t.Helper()
	var b []byte
	for _, p := range pkts {
		var err error
		if b, err = codec.Append(b, p, v); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestCleanStartDiscardsSession: with Clean Session 1 (3.1.1) the session
// lasts as long as the network connection [MQTT-4.1.0-2] (3.1.1): its state
// holds while connected and nothing of it is used on the next connection
// [MQTT-3.1.2-6] (3.1.1). With Clean Start 1 (5.0) a session restored from
// its Store is discarded too [MQTT-3.1.2-4] (5.0). Either way an unfinished
// QoS 1 message goes again as a new message (DUP 0, a new identifier), and
// an incoming QoS 2 identifier that waited for its PUBREL starts a new
// message.
func TestCleanStartDiscardsSession(t *testing.T) {
	unfinished := func(t *testing.T, h *harness) {
		t.Helper()
		subscribed(t, h, 1, "in", 2)
		evs := h.feed(inPub("in", 2, 9, "old"))
		h.s.Ack(h.now, evs[0].Message.Ack)
		h.expect(&codec.Pubrec{PacketID: 9})
		// State held while connected: an acknowledgement finds its message.
		tok := mustPublish(t, h, pub("t", 1, "done"))
		h.sent()
		if evs := h.feed(&codec.Puback{PacketID: 2}); len(evs) != 1 || evs[0].Token != tok {
			t.Fatalf("PUBACK while connected: events %+v", evs)
		}
		mustPublish(t, h, pub("t", 1, "unfinished"))
		h.sent()
	}
	after := func(t *testing.T, h *harness, c *codec.Connect) {
		t.Helper()
		if !c.CleanStart {
			t.Fatal("CONNECT without clean start")
		}
		var again *codec.Publish
		for _, p := range h.sent() {
			if p, ok := p.(*codec.Publish); ok && string(p.Payload) == "unfinished" {
				again = p
			}
		}
		if again == nil || again.Dup || again.PacketID == 3 {
			t.Fatalf("the unfinished message went as %v, want a new message (DUP 0, new identifier)", again)
		}
		// A new message, delivered (3.1.1, the subscription restored) or
		// reported unrouted (5.0, a new process with no subscription yet);
		// a duplicate would produce no event at all.
		evs := h.feed(inPub("in", 2, 9, "new"))
		if len(evs) != 1 || evs[0].Kind != EventMessage && evs[0].Kind != EventUnrouted || string(evs[0].Message.Payload) != "new" {
			t.Fatalf("incoming identifier 9 on the new session: events %+v, want a new message", evs)
		}
	}
	t.Run("3.1.1", func(t *testing.T) {
		h := connected(t, Config{Version: codec.V311, ClientID: "c", CleanStart: true}, nil)
		unfinished(t, h)
		h.s.ConnectionLost(h.now, errors.New("reset"))
		h.events()
		c, _ := h.connect(nil)
		after(t, h, c)
	})
	t.Run("5.0", func(t *testing.T) {
		st := NewMemoryStore()
		h := connected(t, Config{ClientID: "c", SessionExpiry: 60, Store: st}, nil)
		unfinished(t, h)
		// The process ends; a new one starts from the Store with Clean Start.
		h2 := newHarness(t, Config{ClientID: "c", CleanStart: true, SessionExpiry: 60, Store: st})
		if u, _ := h2.s.Inflight(); u != 1 {
			t.Fatalf("restored %d messages in flight, want the unfinished one", u)
		}
		c, _ := h2.connect(nil)
		after(t, h2, c)
	})
}

// TestQoS2IgnoresMessageExpiry: once a QoS 2 PUBLISH is sent, its Message
// Expiry Interval no longer applies to it: it is sent again on a resumed
// session however late [MQTT-4.3.3-7]. As receiver the session finishes the
// QoS 2 exchange of a message whose expiry passed [MQTT-4.3.3-13]. (The
// session applies message expiry nowhere; these check that it stays so for
// QoS 2.)
func TestQoS2IgnoresMessageExpiry(t *testing.T) {
	h := connected(t, Config{SessionExpiry: 600}, nil)
	out := pub("t", 2, "out")
	out.Props.MessageExpiry = 1
	mustPublish(t, h, out)
	h.sent()
	subscribed(t, h, 1, "in", 2)
	in := inPub("in", 2, 7, "in")
	in.Props.MessageExpiry = 1
	evs := h.feed(in)
	wantKinds(t, evs, EventMessage)

	h.advance(time.Minute) // both have expired
	h.s.Ack(h.now, evs[0].Message.Ack)
	h.expect(&codec.Pubrec{PacketID: 7})
	h.feed(&codec.Pubrel{PacketID: 7})
	h.expect(&codec.Pubcomp{PacketID: 7})

	h.s.ConnectionLost(h.now, errors.New("reset"))
	h.events()
	h.advance(time.Minute)
	h.connect(&codec.Connack{SessionPresent: true})
	again := pub("t", 2, "out")
	again.Props.MessageExpiry = 1
	again.PacketID, again.Dup = 1, true
	h.expect(again)
}

// TestStoreFailureClosesConnection: a Store that fails while an incoming
// packet is processed is an error the session cannot get past, and it
// closes the connection [MQTT-4.8.0-2] (3.1.1); the PUBREL is not answered,
// so the server sends it again on the next connection.
func TestStoreFailureClosesConnection(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			st := NewMemoryStore()
			h := connected(t, Config{Version: v, ClientID: "c", Store: st}, nil)
			subscribed(t, h, 1, "#", 2)
			evs := h.feed(inPub("t", 2, 4, "x"))
			h.s.Ack(h.now, evs[0].Message.Ack)
			h.expect(&codec.Pubrec{PacketID: 4})
			boom := errors.New("disk gone")
			st.FailWith(boom)
			e := closedWith(t, h.feed(&codec.Pubrel{PacketID: 4}), ErrProtocol)
			if !errors.Is(e.Err, boom) {
				t.Fatalf("closed with %v, want the store's error", e.Err)
			}
			var want []codec.Packet
			if v == codec.V5 {
				want = append(want, &codec.Disconnect{ReasonCode: codec.ReasonImplementationSpecificError})
			}
			h.expect(want...)
		})
	}
}

// TestMalformedFromServer: a packet with reserved bits set is malformed; on
// 5.0 the client answers with DISCONNECT 0x81 [MQTT-3.14.1-1] (5.0) and on
// 3.1.1 closes without a word [MQTT-2.2.2-2] (3.1.1); either way the
// connection ends.
func TestMalformedFromServer(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := connected(t, Config{Version: v, ClientID: "c"}, nil)
			bad := []byte{0xe1, 0x00} // DISCONNECT with flags 0001
			if v == codec.V311 {
				bad = []byte{0xd1, 0x00} // PINGRESP with flags 0001
			}
			if _, err := h.s.HandleBytes(h.now, bad); err == nil {
				t.Fatalf("% x accepted", bad)
			}
			e := closedWith(t, h.events(), ErrProtocol)
			if r := protoReason(t, e.Err); r != codec.ReasonMalformedPacket {
				t.Fatalf("reason %v, want malformed packet", r)
			}
			var want []codec.Packet
			if v == codec.V5 {
				want = append(want, &codec.Disconnect{ReasonCode: codec.ReasonMalformedPacket})
			}
			h.expect(want...)
		})
	}
}
