package session

import (
	"errors"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// queuedPayloads lists the payloads of the Store's queued records, in order.
func queuedPayloads(t *testing.T, st Store) []string {
	t.Helper()
	state, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range state.Queued {
		var p codec.Publish
		if _, err := p.Decode(r.Packet, codec.V5); err != nil {
			t.Fatalf("queued record %d: %v", r.Seq, err)
		}
		out = append(out, string(p.Payload))
	}
	return out
}

// A QoS 1/2 message accepted while offline is in the Store before Publish
// returns (QoS 0 is not: at most once promises nothing across a crash). A
// process restarted on that Store sends the messages, in order, when it
// connects, as new messages [MQTT-4.6.0-6]; their records become outbound
// ones and the queued ones go.
func TestQueuedOfflineIsDurable(t *testing.T) {
	st := NewMemoryStore()
	h := newHarness(t, Config{Store: st})
	for _, p := range []*codec.Publish{pub("t", 1, "a"), pub("t", 0, "zero"), pub("t", 2, "b"), pub("t", 1, "c")} {
		mustPublish(t, h, p)
	}
	if got := queuedPayloads(t, st); len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("queued records %v, want [a b c]", got)
	}

	// The process dies; a new one restores the queue from the Store.
	h2 := newHarness(t, Config{Store: st})
	if u, q := h2.s.Inflight(); u != 0 || q != 3 {
		t.Fatalf("restored %d unacknowledged, %d queued; want 0, 3", u, q)
	}
	h2.connect(nil)
	a, b, c := pub("t", 1, "a"), pub("t", 2, "b"), pub("t", 1, "c")
	a.PacketID, b.PacketID, c.PacketID = 1, 2, 3
	h2.expect(a, b, c)
	if got := queuedPayloads(t, st); len(got) != 0 {
		t.Fatalf("queued records %v left after sending", got)
	}
	state, _ := st.Load()
	if len(state.Outbound) != 3 {
		t.Fatalf("%d outbound records, want 3", len(state.Outbound))
	}
	h2.feed(&codec.Puback{PacketID: 1})
	h2.feed(&codec.Pubrec{PacketID: 2})
	h2.feed(&codec.Pubcomp{PacketID: 2})
	h2.feed(&codec.Puback{PacketID: 3})
	if u, q := h2.s.Inflight(); u != 0 || q != 0 {
		t.Fatalf("after the acknowledgements: %d unacknowledged, %d queued", u, q)
	}
	if state, _ := st.Load(); len(state.Outbound)+len(state.Queued) != 0 {
		t.Fatalf("store not empty: %+v", state)
	}
}

// A message beyond the send window (Receive Maximum 1) waits in the queue
// [MQTT-4.9.0-1]: it is saved as queued, and moves to outbound when the
// window opens.
func TestQueuedBeyondWindowIsDurable(t *testing.T) {
	st := NewMemoryStore()
	h := newHarness(t, Config{Store: st})
	h.connect(&codec.Connack{Props: codec.Properties{ReceiveMaximum: 1}})
	mustPublish(t, h, pub("t", 1, "first"))
	mustPublish(t, h, pub("t", 1, "second"))
	first := pub("t", 1, "first")
	first.PacketID = 1
	h.expect(first)
	if got := queuedPayloads(t, st); len(got) != 1 || got[0] != "second" {
		t.Fatalf("queued records %v, want [second]", got)
	}
	h.feed(&codec.Puback{PacketID: 1})
	second := pub("t", 1, "second")
	second.PacketID = 2
	h.expect(second)
	if got := queuedPayloads(t, st); len(got) != 0 {
		t.Fatalf("queued records %v after the window opened", got)
	}
}

// A crash after a queued message's outbound record was written and before
// its queued record was deleted leaves both: the restored session sends the
// message once, resent with DUP under its identifier [MQTT-4.4.0-1], and
// drops the stale queued record.
func TestQueuedAndOutboundSameSeqRestoredOnce(t *testing.T) {
	st := NewMemoryStore()
	p := pub("t", 1, "m")
	p.PacketID = 1
	b, err := p.Append(nil, codec.V5)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutQueued(QueuedRecord{Seq: 7, Packet: b}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutOutbound(OutboundRecord{ID: 1, Seq: 7, Packet: b}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Config{Store: st})
	if u, q := h.s.Inflight(); u != 1 || q != 0 {
		t.Fatalf("restored %d unacknowledged, %d queued; want 1, 0", u, q)
	}
	if got := queuedPayloads(t, st); len(got) != 0 {
		t.Fatalf("stale queued record kept: %v", got)
	}
	h.connect(&codec.Connack{SessionPresent: true})
	p.Dup = true
	h.expect(p)
	// A message accepted now comes after it: the sequence went on from 7.
	mustPublish(t, h, pub("t", 1, "next"))
	next := pub("t", 1, "next")
	next.PacketID = 2
	h.expect(next)
	state, _ := st.Load()
	if len(state.Outbound) != 2 || state.Outbound[1].Seq <= 7 {
		t.Fatalf("outbound records %+v: the new message must have a Seq above 7", state.Outbound)
	}
}

// Cancel withdraws a queued message and its record; a lost session (with
// FailOnSessionLost, which resets the Store) leaves queued records alone:
// they never reached any server.
func TestQueuedCancelAndReset(t *testing.T) {
	st := NewMemoryStore()
	h := newHarness(t, Config{Store: st, SessionLost: FailOnSessionLost})
	h.connect(nil)
	mustPublish(t, h, pub("t", 1, "sent"))
	h.sent()
	h.s.ConnectionLost(h.now, errors.New("reset"))
	h.events()
	tokA := mustPublish(t, h, pub("t", 1, "a"))
	mustPublish(t, h, pub("t", 2, "b"))
	if !h.s.Cancel(tokA) {
		t.Fatal("Cancel did not withdraw a queued message")
	}
	if got := queuedPayloads(t, st); len(got) != 1 || got[0] != "b" {
		t.Fatalf("queued records %v after Cancel, want [b]", got)
	}
	_, evs := h.connect(&codec.Connack{}) // no session present: Reset
	if e := publishedEvent(t, evs, 1); !errors.Is(e.Err, ErrSessionLost) {
		t.Fatalf("sent message: %v, want ErrSessionLost", e.Err)
	}
	b := pub("t", 2, "b")
	b.PacketID = 2 // identifiers go on from where they were
	h.expect(b)
	state, _ := st.Load()
	if len(state.Outbound) != 1 || len(state.Queued) != 0 {
		t.Fatalf("store %+v: want b as the one outbound record", state)
	}
}

// A Store that fails when a message must wait fails the Publish: nothing
// is accepted that is not saved.
func TestQueuedStoreFailureRefuses(t *testing.T) {
	st := NewMemoryStore()
	h := newHarness(t, Config{Store: st})
	boom := errors.New("disk full")
	st.FailWith(boom)
	if _, err := h.s.Publish(h.now, pub("t", 1, "m")); !errors.Is(err, boom) {
		t.Fatalf("Publish: %v, want the store's error", err)
	}
	if _, q := h.s.Inflight(); q != 0 {
		t.Fatalf("%d queued after a refused Publish", q)
	}
	st.FailWith(nil)
	if _, err := h.s.Publish(h.now, pub("t", 0, "qos0")); err != nil {
		t.Fatalf("QoS 0 needs no store: %v", err)
	}
}
