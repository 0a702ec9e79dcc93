package session

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zmqtt/zmqtt-go/codec"
)

// harness drives a Session the way a broker would, with packets and a fake
// clock, and records what the session sends and reports. Everything it
// returns is cloned, so tests may keep it.
type harness struct {
	t   *testing.T
	s   *Session
	v   codec.Version
	now time.Time
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Version == 0 {
		cfg.Version = codec.V5
	}
	if cfg.ClientID == "" && !cfg.CleanStart {
		cfg.ClientID = "test-client"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{t: t, s: s, v: cfg.Version, now: epoch}
}

// sent decodes everything the session queued for sending, as the server
// would (direction rules on), and checks each packet is valid.
func (h *harness) sent() []codec.Packet {
	h.t.Helper()
	b := h.s.AppendTransmit(nil)
	d := codec.Decoder{Version: h.v, From: codec.RoleClient}
	var out []codec.Packet
	for len(b) > 0 {
		p, n, err := d.Decode(b)
		if err != nil {
			h.t.Fatalf("session sent an invalid packet % x: %v", b, err)
		}
		out = append(out, codec.Clone(p))
		b = b[n:]
	}
	return out
}

var packetOpts = cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(codec.Properties{}, "Present")}

// expect checks that the session sent exactly want, in order.
func (h *harness) expect(want ...codec.Packet) {
	h.t.Helper()
	got := h.sent()
	if diff := cmp.Diff(want, got, packetOpts); diff != "" {
		h.t.Fatalf("sent packets (-want +got):\n%s", diff)
	}
}

// expectNothing checks that the session sent nothing.
func (h *harness) expectNothing() {
	h.t.Helper()
	if got := h.sent(); len(got) != 0 {
		h.t.Fatalf("session sent %v, want nothing", got)
	}
}

// feed hands the session one packet from the server and returns the events
// it produced.
func (h *harness) feed(p codec.Packet) []Event {
	h.t.Helper()
	b, err := codec.Append(nil, p, h.v)
	if err != nil {
		h.t.Fatalf("encode %v: %v", p, err)
	}
	return h.feedBytes(b)
}

func (h *harness) feedBytes(b []byte) []Event {
	h.t.Helper()
	for len(b) > 0 {
		n, err := h.s.HandleBytes(h.now, b)
		if err != nil {
			break
		}
		if n == 0 {
			h.t.Fatalf("HandleBytes took nothing from % x", b)
		}
		b = b[n:]
	}
	return h.events()
}

// events drains the session's events, cloning the messages they carry.
func (h *harness) events() []Event {
	var out []Event
	for {
		ev, ok := h.s.NextEvent()
		if !ok {
			return out
		}
		if ev.Message != nil {
			m := *ev.Message
			m.Publish = *ev.Message.Publish.Clone()
			m.Targets = append([]Handle(nil), ev.Message.Targets...)
			ev.Message = &m
		}
		if ev.Props != nil {
			p := ev.Props.Clone()
			ev.Props = &p
		}
		ev.Codes = append([]codec.ReasonCode(nil), ev.Codes...)
		out = append(out, ev)
	}
}

// advance moves the clock and runs the session's timers.
func (h *harness) advance(d time.Duration) []Event {
	h.now = h.now.Add(d)
	h.s.HandleTimeout(h.now)
	return h.events()
}

// connect runs a CONNECT / CONNACK exchange and returns the CONNECT sent and
// the events of the CONNACK.
func (h *harness) connect(ack *codec.Connack) (*codec.Connect, []Event) {
	h.t.Helper()
	if err := h.s.Connect(h.now); err != nil {
		h.t.Fatalf("Connect: %v", err)
	}
	pk := h.sent()
	if len(pk) != 1 {
		h.t.Fatalf("Connect sent %v", pk)
	}
	c, ok := pk[0].(*codec.Connect)
	if !ok {
		h.t.Fatalf("Connect sent %v", pk[0])
	}
	if ack == nil {
		ack = &codec.Connack{}
	}
	evs := h.feed(ack)
	return c, evs
}

// kinds lists the kinds of events.
func kinds(evs []Event) []EventKind {
	var k []EventKind
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return k
}

func wantKinds(t *testing.T, evs []Event, want ...EventKind) {
	t.Helper()
	if diff := cmp.Diff(want, kinds(evs), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("event kinds (-want +got):\n%s\nevents: %+v", diff, evs)
	}
}

// closedWith checks that evs ends the connection with an error matching
// target (nil: a normal close).
func closedWith(t *testing.T, evs []Event, target error) Event {
	t.Helper()
	for _, e := range evs {
		if e.Kind == EventClosed {
			if target == nil && e.Err != nil || target != nil && !errors.Is(e.Err, target) {
				t.Fatalf("closed with %v, want %v", e.Err, target)
			}
			return e
		}
	}
	t.Fatalf("no EventClosed in %+v", evs)
	return Event{}
}

func protoReason(t *testing.T, err error) codec.ReasonCode {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ProtocolError", err)
	}
	return pe.Reason
}

func pub(topic string, qos codec.QoS, payload string) *codec.Publish {
	return &codec.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)}
}
