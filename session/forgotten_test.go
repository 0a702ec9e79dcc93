package session

import (
	"errors"
	"strings"
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

// TestStaleQoS2IdentifierSurvivesRestart: a QoS 2 PUBLISH that cannot be
// resent (the resumed server's Maximum Packet Size is now smaller) fails,
// but the server may hold its identifier at "PUBREC sent", so the
// identifier stays reserved [MQTT-4.3.3-9]. Its Store record is kept for
// that reason: a process restarted on the same Store neither reuses the
// identifier for a new message (which the server would drop as a
// duplicate) nor forgets the message; it resends it, DUP set, once it fits.
func TestStaleQoS2IdentifierSurvivesRestart(t *testing.T) {
	st := NewMemoryStore()
	h := connected(t, Config{Version: codec.V5, Store: st}, nil)
	big := pub("a", 2, strings.Repeat("x", 100))
	tok := mustPublish(t, h, big)
	sent := h.sent()
	if len(sent) != 1 || sent[0].(*codec.Publish).PacketID != 1 {
		t.Fatalf("sent %v, want the PUBLISH with identifier 1", sent)
	}
	h.s.ConnectionLost(h.now, errors.New("reset"))
	h.events()
	_, evs := h.connect(&codec.Connack{SessionPresent: true,
		Props: codec.Properties{MaximumPacketSize: 64, Present: 1 << codec.PropMaximumPacketSize}})
	var tl *TooLargeError
	failed := false
	for _, ev := range evs {
		if ev.Kind == EventPublished && ev.Token == tok && errors.As(ev.Err, &tl) {
			failed = true
		}
	}
	if !failed {
		t.Fatalf("events %v, want the publish failed with a *TooLargeError", evs)
	}
	state, err := st.Load()
	if err != nil || len(state.Outbound) != 1 || state.Outbound[0].ID != 1 {
		t.Fatalf("Store holds %+v (%v), want the record of identifier 1 kept", state.Outbound, err)
	}

	// Restart on the same Store; the server is back to no limit.
	h2 := connected(t, Config{Version: codec.V5, Store: st}, &codec.Connack{SessionPresent: true})
	resent := h2.sent()
	if len(resent) != 1 {
		t.Fatalf("after the restart the session sent %v, want the QoS 2 PUBLISH again", resent)
	}
	if p, ok := resent[0].(*codec.Publish); !ok || p.PacketID != 1 || !p.Dup || p.QoS != 2 {
		t.Fatalf("resent %v, want PUBLISH id 1, QoS 2, DUP set", resent[0])
	}
	mustPublish(t, h2, pub("a", 2, "new"))
	if p := h2.sent(); len(p) != 1 || p[0].(*codec.Publish).PacketID == 1 {
		t.Fatalf("a new message was sent as %v; identifier 1 is still in use", p)
	}
}
