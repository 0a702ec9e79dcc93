package session

import (
	"errors"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Tests of the liveness rule (keepalive.go): a PINGREQ when either direction
// was quiet for the keep alive, and a dead connection only when a PINGREQ is
// outstanding and nothing at all arrived for the ping timeout.

// step moves the clock by at most d, stopping at the session's deadline so
// that what happens there happens at its exact time, and runs the timers.
// It returns the packets the session sent and the events.
func (h *harness) step(d time.Duration) ([]codec.Packet, []Event) {
	h.t.Helper()
	next := h.now.Add(d)
	if dl := h.s.Deadline(); !dl.IsZero() && dl.Before(next) {
		next = dl
	}
	h.now = next
	h.s.HandleTimeout(h.now)
	return h.sent(), h.events()
}

func hasPingreq(pk []codec.Packet) bool {
	for _, p := range pk {
		if p.Type() == codec.TypePingreq {
			return true
		}
	}
	return false
}

func closedEvent(evs []Event) (Event, bool) {
	for _, e := range evs {
		if e.Kind == EventClosed {
			return e, true
		}
	}
	return Event{}, false
}

func wantPingTimeout(t *testing.T, e Event, after time.Duration) {
	t.Helper()
	var te *TimeoutError
	if !errors.As(e.Err, &te) || te.Waiting != "PINGRESP" || te.After != after || !errors.Is(e.Err, ErrConnectionLost) {
		t.Fatalf("closed with %v, want a *TimeoutError waiting for PINGRESP after %v", e.Err, after)
	}
}

// A client busy sending does not hide a black hole: the receive timer
// sends a PINGREQ one keep alive after the last packet received, and the
// connection is dead half a keep alive later, 1.5x the keep alive in all.
func TestLivenessBusySenderBlackHole(t *testing.T) {
	const ka = 10 * time.Second
	h := connected(t, Config{KeepAlive: ka}, nil)
	h.advance(3 * time.Second)
	h.feed(inPub("x", 0, 0, "last sign of life"))
	lastRecv := h.now
	var pingAt, closedAt time.Time
	for closedAt.IsZero() && h.now.Before(epoch.Add(time.Minute)) {
		mustPublish(t, h, pub("a", 0, "busy"))
		h.sent()
		// Sending never moves the receive side's deadlines.
		want := lastRecv.Add(ka)
		if !pingAt.IsZero() {
			want = pingAt.Add(ka / 2)
		}
		if d := h.s.Deadline(); !d.Equal(want) {
			t.Fatalf("at %v: deadline %v, want %v", h.now.Sub(epoch), d.Sub(epoch), want.Sub(epoch))
		}
		pk, evs := h.step(250 * time.Millisecond)
		if hasPingreq(pk) {
			if !pingAt.IsZero() {
				t.Fatalf("a second PINGREQ at %v", h.now.Sub(epoch))
			}
			pingAt = h.now
		}
		if e, ok := closedEvent(evs); ok {
			wantPingTimeout(t, e, ka/2)
			closedAt = h.now
		}
	}
	if !pingAt.Equal(lastRecv.Add(ka)) {
		t.Fatalf("PINGREQ at %v, want one keep alive after the last packet received (%v)", pingAt.Sub(epoch), lastRecv.Add(ka).Sub(epoch))
	}
	if !closedAt.Equal(lastRecv.Add(ka + ka/2)) {
		t.Fatalf("closed at %v, want 1.5x the keep alive after the last packet received (%v)", closedAt.Sub(epoch), lastRecv.Add(ka+ka/2).Sub(epoch))
	}
}

// An idle client on a black hole: PINGREQ at the keep alive, dead half a
// keep alive later.
func TestLivenessIdleBlackHole(t *testing.T) {
	const ka = 10 * time.Second
	h := connected(t, Config{KeepAlive: ka}, nil)
	if d := h.s.Deadline(); !d.Equal(epoch.Add(ka)) {
		t.Fatalf("deadline %v", d.Sub(epoch))
	}
	pk, evs := h.step(time.Hour)
	if !hasPingreq(pk) || !h.now.Equal(epoch.Add(ka)) || len(evs) != 0 {
		t.Fatalf("at %v sent %v, events %v; want a PINGREQ at %v", h.now.Sub(epoch), pk, evs, ka)
	}
	if d := h.s.Deadline(); !d.Equal(epoch.Add(ka + ka/2)) {
		t.Fatalf("deadline %v with a PINGREQ outstanding, want %v", d.Sub(epoch), ka+ka/2)
	}
	h.advance(ka/2 - time.Millisecond)
	if !h.s.Connected() {
		t.Fatal("closed before the ping timeout")
	}
	pk, evs = h.step(time.Hour)
	e, ok := closedEvent(evs)
	if !ok || !h.now.Equal(epoch.Add(ka+ka/2)) || len(pk) != 0 {
		t.Fatalf("at %v: sent %v, events %v; want the end of the connection at %v", h.now.Sub(epoch), pk, evs, ka+ka/2)
	}
	wantPingTimeout(t, e, ka/2)
}

// A live link whose PINGRESP waits behind a stream of PUBLISH packets is not
// dropped: every packet received is a sign of life, and the PINGREQ stays
// outstanding until its PINGRESP. The client still sends something within
// each keep alive [MQTT-3.1.2-23] (3.1.1) [MQTT-3.1.2-20] (5.0) even though
// a PINGREQ is outstanding, so that the server does not drop it either
// [MQTT-3.1.2-24] (3.1.1) [MQTT-3.1.2-22] (5.0).
func TestLivenessLatePingrespBehindTraffic(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			const ka = 10 * time.Second
			h := connected(t, Config{Version: v, KeepAlive: ka}, nil)
			lastSent := h.now
			pings := 0
			var userPing Token
			for h.now.Before(epoch.Add(2 * time.Minute)) {
				if !h.now.Before(epoch.Add(12*time.Second)) && userPing == 0 {
					tok, err := h.s.Ping(h.now)
					if err != nil {
						t.Fatal(err)
					}
					userPing = tok
					pings++
					lastSent = h.now
					h.sent()
				}
				if evs := h.feed(inPub("stream", 0, 0, "m")); len(evs) != 1 || evs[0].Kind != EventUnrouted {
					t.Fatalf("events %+v", evs)
				}
				for end := h.now.Add(2 * time.Second); h.now.Before(end); {
					pk, evs := h.step(end.Sub(h.now))
					if len(evs) != 0 {
						t.Fatalf("at %v with traffic flowing: events %+v", h.now.Sub(epoch), evs)
					}
					if len(pk) > 0 {
						if h.now.Sub(lastSent) > ka {
							t.Fatalf("nothing sent from %v to %v, keep alive %v [MQTT-3.1.2-23] (3.1.1) [MQTT-3.1.2-20] (5.0)", lastSent.Sub(epoch), h.now.Sub(epoch), ka)
						}
						lastSent = h.now
						for _, p := range pk {
							if p.Type() == codec.TypePingreq {
								pings++
							}
						}
					}
				}
			}
			if pings < 12 {
				t.Fatalf("%d PINGREQs in two minutes with keep alive %v", pings, ka)
			}
			// The PINGRESPs come at last: the user's Ping gets its answer,
			// in order, however late.
			var pong Event
			for range pings {
				for _, e := range h.feed(&codec.Pingresp{}) {
					if e.Kind == EventPong {
						pong = e
					}
				}
			}
			if pong.Token != userPing || pong.Err != nil || pong.RTT != h.now.Sub(epoch.Add(12*time.Second)) {
				t.Fatalf("pong %+v, want token %d with the round trip since 12 s", pong, userPing)
			}
			if len(h.s.pings) != 0 || !h.s.Connected() {
				t.Fatalf("%d pings outstanding, connected %v", len(h.s.pings), h.s.Connected())
			}
		})
	}
}

// The traffic stops while a PINGREQ is outstanding: the ping timeout runs
// from the last packet received.
func TestLivenessDeadlineFollowsLastPacket(t *testing.T) {
	const ka = 10 * time.Second
	h := connected(t, Config{KeepAlive: ka, PingTimeout: 3 * time.Second}, nil)
	h.advance(ka)
	h.expect(&codec.Pingreq{})
	if d := h.s.Deadline(); !d.Equal(epoch.Add(13 * time.Second)) {
		t.Fatalf("deadline %v, want 13 s", d.Sub(epoch))
	}
	h.advance(2 * time.Second)
	h.feed(inPub("x", 0, 0, "late"))
	if d := h.s.Deadline(); !d.Equal(epoch.Add(15 * time.Second)) {
		t.Fatalf("deadline %v after a packet at 12 s, want 15 s", d.Sub(epoch))
	}
	if evs := h.advance(2900 * time.Millisecond); len(evs) != 0 {
		t.Fatalf("events %+v before the ping timeout from the last packet", evs)
	}
	e, ok := closedEvent(h.advance(100 * time.Millisecond))
	if !ok {
		t.Fatal("not closed 3 s after the last packet with a PINGREQ outstanding")
	}
	wantPingTimeout(t, e, 3*time.Second)
}

// The default ping timeout is half the keep alive in force (the server's
// when it sent one [MQTT-3.2.2-21]), at least 500 ms; a set PingTimeout is
// used as is; without keep alive it bounds Ping at 30 s.
func TestPingTimeoutDefaults(t *testing.T) {
	cases := []struct {
		name     string
		cfg      Config
		serverKA int // -1: none
		ka, pt   time.Duration
	}{
		{"half the keep alive", Config{KeepAlive: 10 * time.Second}, -1, 10 * time.Second, 5 * time.Second},
		{"half the server keep alive", Config{KeepAlive: time.Minute}, 4, 4 * time.Second, 2 * time.Second},
		{"one second", Config{KeepAlive: time.Second}, -1, time.Second, 500 * time.Millisecond},
		{"set", Config{KeepAlive: 10 * time.Second, PingTimeout: 7 * time.Second}, -1, 10 * time.Second, 7 * time.Second},
		{"server turns keep alive off", Config{KeepAlive: 10 * time.Second}, 0, 0, 30 * time.Second},
		{"no keep alive", Config{}, -1, 0, 30 * time.Second},
		{"no keep alive, set", Config{PingTimeout: 2 * time.Second}, -1, 0, 2 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ack := &codec.Connack{}
			if c.serverKA >= 0 {
				ack.Props.ServerKeepAlive = uint16(c.serverKA)
				ack.Props.Mark(codec.PropServerKeepAlive)
			}
			h := connected(t, c.cfg, ack)
			if c.ka > 0 {
				if d := h.s.Deadline(); !d.Equal(epoch.Add(c.ka)) {
					t.Fatalf("deadline %v, want the keep alive %v", d.Sub(epoch), c.ka)
				}
				h.advance(c.ka)
				h.expect(&codec.Pingreq{})
			} else {
				if d := h.s.Deadline(); !d.IsZero() {
					t.Fatalf("deadline %v without keep alive", d.Sub(epoch))
				}
				if _, err := h.s.Ping(h.now); err != nil {
					t.Fatal(err)
				}
				h.sent()
			}
			if d, want := h.s.Deadline(), h.now.Add(c.pt); !d.Equal(want) {
				t.Fatalf("deadline %v with a PINGREQ outstanding, want %v", d.Sub(epoch), want.Sub(epoch))
			}
			h.advance(c.pt - time.Millisecond)
			if !h.s.Connected() {
				t.Fatal("closed before the ping timeout")
			}
			e, ok := closedEvent(h.advance(time.Millisecond))
			if !ok {
				t.Fatalf("not closed after the ping timeout %v", c.pt)
			}
			wantPingTimeout(t, e, c.pt)
		})
	}
}

// Without keep alive, a packet received also extends an explicit Ping's
// timeout.
func TestPingWithoutKeepAliveCountsTraffic(t *testing.T) {
	h := connected(t, Config{}, nil)
	tok, _ := h.s.Ping(h.now)
	h.sent()
	h.advance(20 * time.Second)
	h.feed(inPub("x", 0, 0, "alive"))
	if d := h.s.Deadline(); !d.Equal(epoch.Add(50 * time.Second)) {
		t.Fatalf("deadline %v, want 30 s after the last packet", d.Sub(epoch))
	}
	evs := h.advance(30 * time.Second)
	wantKinds(t, evs, EventPong, EventClosed)
	if evs[0].Token != tok || !errors.Is(evs[0].Err, ErrTimeout) {
		t.Fatalf("pong %+v", evs[0])
	}
}

// NoteAlive (alive.go) counts as a packet received: bytes held back by a
// caller that paused reading do not make the server look dead.
func TestNoteAliveExtendsLiveness(t *testing.T) {
	const ka = 10 * time.Second
	h := connected(t, Config{KeepAlive: ka}, nil)
	h.advance(ka)
	h.expect(&codec.Pingreq{})
	h.now = h.now.Add(4 * time.Second)
	h.s.NoteAlive(h.now)
	if d := h.s.Deadline(); !d.Equal(epoch.Add(ka + 4*time.Second + ka/2)) {
		t.Fatalf("deadline %v after NoteAlive at 14 s, want 19 s", d.Sub(epoch))
	}
	h.s.NoteAlive(epoch) // earlier: no effect
	if d := h.s.Deadline(); !d.Equal(epoch.Add(19 * time.Second)) {
		t.Fatalf("deadline %v", d.Sub(epoch))
	}
}
