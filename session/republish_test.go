package session

import (
	"errors"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// RepublishOnSessionLost (the default): when a CONNACK says Session Present
// 0, the client drops its session state [MQTT-3.2.2-5] (5.0) but not the user's
// messages. The accepted, unfinished QoS 1/2 messages, PUBREL phase
// included, go again as new messages (new identifier, DUP clear), in their
// original order, ahead of the messages queued after them, and their tokens
// complete on the new exchange.
func TestRepublishOnSessionLost(t *testing.T) {
	st := NewMemoryStore()
	h := connected(t, Config{Store: st}, nil)
	tokA := mustPublish(t, h, pub("t", 1, "A"))
	tokB := mustPublish(t, h, pub("t", 2, "B"))
	tokC := mustPublish(t, h, pub("t", 2, "C"))
	h.sent()
	h.feed(&codec.Pubrec{PacketID: 2})
	h.expect(&codec.Pubrel{PacketID: 2})
	h.s.ConnectionLost(h.now, errors.New("reset"))
	h.events()
	tokD := mustPublish(t, h, pub("t", 1, "D")) // queued after them
	if h.s.Cancel(tokB) {
		t.Fatal("Cancel withdrew a message already sent")
	}

	// A Receive Maximum of 1 leaves B and C waiting, so that their Store
	// records can be checked.
	_, evs := h.connect(&codec.Connack{Props: codec.Properties{ReceiveMaximum: 1}})
	wantKinds(t, evs, EventConnected)
	wantA := pub("t", 1, "A")
	wantA.PacketID = 4 // 1..3 stay reserved with their records until sent again
	h.expect(wantA)
	state, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	for _, r := range state.Outbound {
		var p codec.Publish
		p.Decode(r.Packet, codec.V5)
		recs = append(recs, string(p.Payload)+":"+itoa(int(r.ID))+map[bool]string{true: ":released", false: ""}[r.Released])
	}
	// In acceptance order (Seq), whatever the identifiers; B not
	// released: a PUBREL means nothing to a new session.
	if len(recs) != 3 || recs[0] != "A:4" || recs[1] != "B:2" || recs[2] != "C:3" {
		t.Fatalf("store holds %v, want A:4 B:2 C:3", recs)
	}

	// A restart now still has every message.
	s2, err := New(Config{Version: codec.V5, ClientID: "test-client", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := s2.Inflight(); u != 3 {
		t.Fatalf("restored %d messages, want 3", u)
	}

	evs = h.feed(&codec.Puback{PacketID: 4})
	if e := publishedEvent(t, evs, tokA); e.Err != nil {
		t.Fatal(e.Err)
	}
	wantB := pub("t", 2, "B")
	wantB.PacketID = 5
	h.expect(wantB)
	h.feed(&codec.Pubrec{PacketID: 5})
	h.expect(&codec.Pubrel{PacketID: 5})
	evs = h.feed(&codec.Pubcomp{PacketID: 5})
	if e := publishedEvent(t, evs, tokB); e.Err != nil {
		t.Fatal(e.Err)
	}
	wantC := pub("t", 2, "C")
	wantC.PacketID = 6
	h.expect(wantC)
	h.feed(&codec.Pubrec{PacketID: 6})
	h.sent()
	evs = h.feed(&codec.Pubcomp{PacketID: 6})
	publishedEvent(t, evs, tokC)
	wantD := pub("t", 1, "D")
	wantD.PacketID = 7
	h.expect(wantD)
	evs = h.feed(&codec.Puback{PacketID: 7})
	publishedEvent(t, evs, tokD)
	if h.s.ids.n != 0 {
		t.Fatalf("%d identifiers in use", h.s.ids.n)
	}
	if state, _ := st.Load(); len(state.Outbound) != 0 {
		t.Fatalf("store still holds %+v", state.Outbound)
	}
}

// With every identifier reserved by messages waiting to go again, each uses
// its own: the server forgot it with the session.
func TestRepublishReusesOwnIdentifier(t *testing.T) {
	h := connected(t, Config{MaxPacketID: 2}, nil)
	mustPublish(t, h, pub("t", 1, "A"))
	mustPublish(t, h, pub("t", 2, "B"))
	h.sent()
	h.s.ConnectionLost(h.now, nil)
	h.events()
	h.connect(nil)
	p := sentPublishes(h.sent())
	if len(p) != 2 || p[0].PacketID != 1 || p[1].PacketID != 2 || p[0].Dup || p[1].Dup ||
		string(p[0].Payload) != "A" || string(p[1].Payload) != "B" {
		t.Fatalf("sent %v, want A and B again, new, on their own identifiers", p)
	}
}

// A message waiting to go again that the new CONNACK's limits rule out fails
// like any queued message, and gives up its old identifier and record.
func TestRepublishAboveNewLimits(t *testing.T) {
	st := NewMemoryStore()
	h := connected(t, Config{Store: st}, nil)
	tok := mustPublish(t, h, pub("t", 2, "A"))
	h.sent()
	h.s.ConnectionLost(h.now, nil)
	h.events()
	_, evs := h.connect(maxQoSAck(false, 1))
	if e := publishedEvent(t, evs, tok); !errors.Is(e.Err, ErrUnsupported) {
		t.Fatalf("event %+v", e)
	}
	h.expectNothing()
	if state, _ := st.Load(); h.s.ids.n != 0 || len(state.Outbound) != 0 {
		t.Fatalf("%d identifiers in use, store %+v", h.s.ids.n, state.Outbound)
	}
}
