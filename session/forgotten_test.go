package session

import (
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// TestInboundQoS2ServerForgotExchange: after PUBREC, a re-delivery is not
// delivered again [MQTT-4.3.3-10], with DUP [MQTT-3.3.1-1] or without it (a
// broker restarted from a stale save resends with DUP clear); a PUBLISH with
// the same identifier, DUP clear and other content can only be a new message
// from a server that lost its state (identifiers are not reused before
// PUBCOMP, [MQTT-2.2.1-3]), and is delivered rather than lost.
func TestInboundQoS2ServerForgotExchange(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := connected(t, Config{Version: v}, nil)
			subscribed(t, h, 1, "#", 2)
			evs := h.feed(inPub("t", 2, 9, "first"))
			wantKinds(t, evs, EventMessage)
			h.s.Ack(h.now, evs[0].Message.Ack)
			h.expect(&codec.Pubrec{PacketID: 9})

			dup := inPub("t", 2, 9, "first")
			dup.Dup = true
			if evs := h.feed(dup); len(evs) != 0 {
				t.Fatalf("a DUP re-delivery was delivered again: %v", evs)
			}
			h.expect(&codec.Pubrec{PacketID: 9})

			if evs := h.feed(inPub("t", 2, 9, "first")); len(evs) != 0 {
				t.Fatalf("a re-delivery with DUP clear was delivered again: %v", evs)
			}
			h.expect(&codec.Pubrec{PacketID: 9})

			evs = h.feed(inPub("t", 2, 9, "second"))
			wantKinds(t, evs, EventMessage)
			if got := string(evs[0].Message.Payload); got != "second" {
				t.Fatalf("delivered %q, want the new message", got)
			}
			h.s.Ack(h.now, evs[0].Message.Ack)
			h.expect(&codec.Pubrec{PacketID: 9})
			h.feed(&codec.Pubrel{PacketID: 9})
			h.expect(&codec.Pubcomp{PacketID: 9})
			if !h.s.Connected() {
				t.Fatal("the session closed")
			}
		})
	}
}

// TestInboundQoS2RestoredKeepsRule: an identifier restored from a Store has
// no fingerprint of its message, so a PUBLISH with that identifier before
// the PUBREL is answered and not delivered, DUP or not [MQTT-4.3.3-10].
func TestInboundQoS2RestoredKeepsRule(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			st := NewMemoryStore()
			if err := st.PutInbound(9); err != nil {
				t.Fatal(err)
			}
			h := connected(t, Config{Version: v, Store: st}, &codec.Connack{SessionPresent: true})
			subscribed(t, h, 1, "#", 2)
			if evs := h.feed(inPub("t", 2, 9, "maybe-seen")); len(evs) != 0 {
				t.Fatalf("a PUBLISH on a restored identifier was delivered: %v", evs)
			}
			h.expect(&codec.Pubrec{PacketID: 9})
			h.feed(&codec.Pubrel{PacketID: 9})
			h.expect(&codec.Pubcomp{PacketID: 9})
		})
	}
}
