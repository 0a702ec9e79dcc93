package session

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Config.PoisonCloses: a message the server keeps closing the connection
// over fails with a *PoisonError, so that the messages behind it go out.

// serverClose ends the connection the server's way: ConnectionLost, or a
// server DISCONNECT when disconnect is set. It returns the events.
func (h *harness) serverClose(disconnect bool) []Event {
	h.t.Helper()
	if disconnect {
		return h.feed(&codec.Disconnect{ReasonCode: codec.ReasonServerShuttingDown})
	}
	h.s.ConnectionLost(h.now, errors.New("connection reset by peer"))
	return h.events()
}

// resume connects again, the server keeping the session, with the given
// Receive Maximum; it returns the packets sent after the CONNACK.
func (h *harness) resume(rm uint16) []codec.Packet {
	h.t.Helper()
	ack := &codec.Connack{SessionPresent: true}
	ack.Props.ReceiveMaximum = rm
	_, evs := h.connect(ack)
	wantKinds(h.t, evs, EventConnected)
	return h.sent()
}

func TestPoisonMessage(t *testing.T) {
	ack := &codec.Connack{Props: codec.Properties{ReceiveMaximum: 1}}
	h := connected(t, Config{}, ack)
	big := pub("a", 1, strings.Repeat("x", 5000))
	tokBig := mustPublish(t, h, big)
	tokB := mustPublish(t, h, pub("a", 1, "b"))
	mustPublish(t, h, pub("a", 2, "c"))
	if p := sentPublishes(h.sent()); len(p) != 1 || p[0].PacketID != 1 {
		t.Fatalf("sent %v, want the big message alone", p)
	}
	size := len(mustAppend(t, &codec.Publish{Topic: "a", QoS: 1, PacketID: 1, Payload: big.Payload}))

	// The server closes the connection after the big message, three times
	// in a row, two ways.
	for i, disconnect := range []bool{false, true, false} {
		evs := h.serverClose(disconnect)
		if i < 2 {
			wantKinds(t, evs, EventClosed)
			p := sentPublishes(h.resume(1))
			if len(p) != 1 || p[0].PacketID != 1 || !p[0].Dup {
				t.Fatalf("after close %d: sent %v, want the big message again", i+1, p)
			}
			continue
		}
		wantKinds(t, evs, EventPublished, EventClosed)
		var pe *PoisonError
		if evs[0].Token != tokBig || !errors.As(evs[0].Err, &pe) || !errors.Is(evs[0].Err, ErrPoisonMessage) ||
			pe.Closes != 3 || pe.Size != size {
			t.Fatalf("event %+v, want a *PoisonError{3, %d}", evs[0], size)
		}
		if msg := evs[0].Err.Error(); !strings.Contains(msg, "3 times in a row") || !strings.Contains(msg, "maximum packet size") {
			t.Fatalf("message %q", msg)
		}
	}
	// The queue moves on; identifier 1 (QoS 1) is free again.
	p := sentPublishes(h.resume(1))
	if len(p) != 1 || string(p[0].Payload) != "b" || p[0].Dup || p[0].PacketID != 2 {
		t.Fatalf("sent %v, want the next message, new", p)
	}
	evs := h.feed(&codec.Puback{PacketID: 2})
	if e := publishedEvent(t, evs, tokB); e.Err != nil {
		t.Fatal(e.Err)
	}
	if p := sentPublishes(h.sent()); len(p) != 1 || string(p[0].Payload) != "c" {
		t.Fatalf("sent %v", p)
	}
	if h.s.ids.inUse(1) {
		t.Fatal("identifier 1 of the failed QoS 1 message is still in use")
	}
}

func mustAppend(t *testing.T, p codec.Packet) []byte {
	t.Helper()
	b, err := codec.Append(nil, p, codec.V5)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Only the oldest unacknowledged PUBLISH sent on the connection gets a
// strike: a message behind an innocent connection loss gets none, and the
// oldest gets one per loss.
func TestPoisonStrikesOnlyTheOldest(t *testing.T) {
	h := connected(t, Config{}, nil)
	var toks []Token
	for _, s := range []string{"a", "b", "c"} {
		toks = append(toks, mustPublish(t, h, pub("t", 1, s)))
	}
	h.sent()
	h.serverClose(false)
	strikes := func() []int {
		var n []int
		for f := h.s.head; f != nil; f = f.next {
			n = append(n, f.strikes)
		}
		return n
	}
	if got := strikes(); len(got) != 3 || got[0] != 1 || got[1] != 0 || got[2] != 0 {
		t.Fatalf("strikes %v after one loss, want [1 0 0]", got)
	}
	if p := h.resume(0); len(p) != 3 {
		t.Fatalf("resent %v", p)
	}
	var evs []Event
	for id := uint16(1); id <= 3; id++ {
		evs = append(evs, h.feed(&codec.Puback{PacketID: id})...)
	}
	for _, tok := range toks {
		if e := publishedEvent(t, evs, tok); e.Err != nil {
			t.Fatalf("token %d: %v", tok, e.Err)
		}
	}
}

// What does not count: a message in its PUBREL phase (the next one is the
// oldest), a message not sent on the ending connection, a connection that
// never reached CONNACK; and our own timeout or a normal Disconnect breaks
// the row.
func TestPoisonWhatCounts(t *testing.T) {
	h := connected(t, Config{KeepAlive: 10 * time.Second}, &codec.Connack{Props: codec.Properties{ReceiveMaximum: 2}})
	mustPublish(t, h, pub("t", 2, "released"))
	mustPublish(t, h, pub("t", 1, "oldest published"))
	mustPublish(t, h, pub("t", 1, "queued"))
	h.sent()
	h.feed(&codec.Pubrec{PacketID: 1})
	h.sent()
	h.serverClose(false)
	f1, f2 := h.s.flights[1], h.s.flights[2]
	if f1.strikes != 0 || f2.strikes != 1 {
		t.Fatalf("strikes %d, %d; want the PUBREL-phase message skipped", f1.strikes, f2.strikes)
	}
	// Lost before CONNACK: no strike.
	h.s.Connect(h.now)
	h.sent()
	h.s.ConnectionLost(h.now, errors.New("reset"))
	h.events()
	if f2.strikes != 1 {
		t.Fatalf("strikes %d after a loss before CONNACK", f2.strikes)
	}
	h.resume(2)
	h.serverClose(true)
	if f2.strikes != 2 {
		t.Fatalf("strikes %d, want 2", f2.strikes)
	}
	// Our own PINGRESP timeout breaks the row.
	h.resume(2)
	h.advance(10 * time.Second)
	h.sent()
	closedWith(t, h.advance(5*time.Second), ErrTimeout)
	if f2.strikes != 0 {
		t.Fatalf("strikes %d after our own timeout, want 0", f2.strikes)
	}
	// So does a normal Disconnect.
	h.resume(2)
	h.serverClose(false)
	h.resume(2)
	h.s.Disconnect(h.now, 0, nil)
	h.sent()
	h.events()
	if f2.strikes != 0 {
		t.Fatalf("strikes %d after Disconnect, want 0", f2.strikes)
	}
}

// A QoS 2 message that fails as poison keeps its identifier reserved, with
// its Store record, as after a failed resend: the server may hold it at
// "PUBREC sent" [MQTT-4.3.3-9]. PoisonCloses 1 fails at the first close;
// a negative value turns the rule off.
func TestPoisonLimits(t *testing.T) {
	st := NewMemoryStore()
	h := connected(t, Config{PoisonCloses: 1, Store: st}, nil)
	tok := mustPublish(t, h, pub("t", 2, "q2"))
	h.sent()
	evs := h.serverClose(false)
	var pe *PoisonError
	if e := publishedEvent(t, evs, tok); !errors.As(e.Err, &pe) || pe.Closes != 1 {
		t.Fatalf("event %+v", e)
	}
	if !h.s.ids.inUse(1) || len(h.s.stale) != 1 {
		t.Fatal("the QoS 2 identifier was freed")
	}
	if state, _ := st.Load(); len(state.Outbound) != 1 || state.Outbound[0].ID != 1 {
		t.Fatalf("store %+v, want the record kept", state.Outbound)
	}

	h = connected(t, Config{PoisonCloses: -1}, nil)
	mustPublish(t, h, pub("t", 1, "x"))
	h.sent()
	for range 10 {
		wantKinds(t, h.serverClose(false), EventClosed)
		h.resume(0)
	}
}
