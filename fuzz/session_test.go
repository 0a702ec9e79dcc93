package fuzz

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// FuzzSessionInput feeds arbitrary server bytes to a connected session, in
// chunks of a size the fuzzer picks, on MQTT 3.1.1 or 5.0 (bit 0 of mode).
// The session must never panic; every error HandleBytes returns must be one
// of the session's or the codec's typed errors; every byte the session writes
// must decode as client packets; and once the session reported an error (a
// broken rule of the server's ends the connection) it writes nothing more
// than the DISCONNECT of that error [MQTT-4.13.1-1].
//
// Before the connection the session holds a subscription (SUBSCRIBE id 1), a
// QoS 1 publish (id 2) and a QoS 2 publish (id 3), so that acknowledgements
// from the fuzzer meet open flows; incoming QoS 1 and 2 messages are
// acknowledged as they are delivered.
func FuzzSessionInput(f *testing.F) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		mode := byte(0)
		if v == codec.V5 {
			mode = 1
		}
		for _, seed := range sessionSeeds(f, v) {
			f.Add(mode, byte(0), seed)
			f.Add(mode, byte(3), seed)
		}
	}
	f.Fuzz(func(t *testing.T, mode, chunk byte, data []byte) {
		v := codec.V311
		if mode&1 != 0 {
			v = codec.V5
		}
		runSession(t, v, mode, chunk, data)
	})
}

// runSession is the property of FuzzSessionInput: the server bytes data,
// fed in chunks, to a connected session of newSessionRun.
func runSession(t *testing.T, v codec.Version, mode, chunk byte, data []byte) {
	r := newSessionRun(t, v, mode)
	size := int(chunk%16) + 1 // 1..16 bytes at a time; chunk 0..: whole-ish
	if chunk >= 128 {
		size = len(data) + 1
	}
	var pending []byte
	for len(data) > 0 {
		k := min(size, len(data))
		pending = append(pending, data[:k]...)
		data = data[k:]
		pending = r.consume(pending)
		r.now = r.now.Add(100 * time.Millisecond)
		r.s.HandleTimeout(r.now)
		r.drain("HandleTimeout")
	}
	if r.failed {
		// Commands after the end of the connection write nothing.
		if _, err := r.s.Publish(r.now, &codec.Publish{Topic: "a/b", QoS: 1, Payload: []byte("late")}); err != nil {
			t.Fatalf("Publish after the connection ended: %v", err)
		}
		if n, err := r.s.HandleBytes(r.now, []byte{0xd0, 0x00}); n != 0 || !errors.Is(err, session.ErrNotConnected) {
			t.Fatalf("HandleBytes after the connection ended: %d, %v", n, err)
		}
		r.drain("commands after the end")
	}
}

type sessionRun struct {
	t      *testing.T
	s      *session.Session
	v      codec.Version
	now    time.Time
	failed bool // HandleBytes returned an error: only a DISCONNECT may follow
	closed bool // EventClosed was reported
	dec    codec.Decoder
}

func newSessionRun(t *testing.T, v codec.Version, mode byte) *sessionRun {
	cfg := session.Config{Version: v, ClientID: "fuzz", KeepAlive: time.Second}
	if v == codec.V5 {
		cfg.ReceiveMaximum = 4
		cfg.TopicAliasMaximum = 3
		cfg.MaximumPacketSize = 512
		cfg.OutboundAliases = mode&2 != 0
	}
	s, err := session.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := &sessionRun{t: t, s: s, v: v, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		dec: codec.Decoder{Version: v, From: codec.RoleClient}}
	if _, err := s.Subscribe(r.now, 1, []codec.Subscription{{Filter: "a/#", QoS: 2}}, session.SubscribeOptions{}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for _, q := range []codec.QoS{1, 2} {
		if _, err := s.Publish(r.now, &codec.Publish{Topic: "a/b", QoS: q, Payload: []byte("x")}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	if err := s.Connect(r.now); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	r.drain("Connect")
	ack, err := codec.Append(nil, &codec.Connack{}, v)
	if err != nil {
		t.Fatalf("CONNACK: %v", err)
	}
	if n, err := s.HandleBytes(r.now, ack); n != len(ack) || err != nil {
		t.Fatalf("CONNACK: %d, %v", n, err)
	}
	sent := r.drain("CONNACK")
	if !s.Connected() {
		t.Fatal("not connected after CONNACK")
	}
	// The seeds acknowledge these identifiers.
	if len(sent) != 3 || sent[0] != "SUBSCRIBE 1" || sent[1] != "PUBLISH 2" || sent[2] != "PUBLISH 3" {
		t.Fatalf("after CONNACK the session wrote %v, want SUBSCRIBE 1, PUBLISH 2, PUBLISH 3", sent)
	}
	return r
}

// consume hands the session every whole packet at the start of b and
// returns what is left.
func (r *sessionRun) consume(b []byte) []byte {
	for len(b) > 0 {
		n, err := r.s.HandleBytes(r.now, b)
		if err != nil {
			r.checkErr(err)
			r.failed = true
			r.drain("HandleBytes error")
			return nil
		}
		if n < 0 || n > len(b) {
			r.t.Fatalf("HandleBytes used %d of %d bytes", n, len(b))
		}
		r.drain("HandleBytes")
		if n == 0 {
			return b
		}
		b = b[n:]
	}
	return b
}

// checkErr requires a typed error.
func (r *sessionRun) checkErr(err error) {
	var (
		pe *session.ProtocolError
		ce *codec.Error
		re *session.ReasonError
		tl *session.TooLargeError
		ue *session.UnsupportedError
	)
	switch {
	case errors.As(err, &pe):
		if !pe.Remote && pe.Err == nil {
			r.t.Fatalf("HandleBytes: a local protocol error %v for server input", err)
		}
	case errors.As(err, &ce), errors.As(err, &re), errors.As(err, &tl), errors.As(err, &ue),
		errors.Is(err, session.ErrNotConnected), errors.Is(err, session.ErrAuth):
	default:
		r.t.Fatalf("HandleBytes returned an untyped error %T: %v", err, err)
	}
}

// drain checks what the session wrote and reports, acknowledging incoming
// messages as a client does.
func (r *sessionRun) drain(step string) []string {
	var sent []string
	out := r.s.AppendTransmit(nil)
	for len(out) > 0 {
		p, n, err := r.dec.Decode(out)
		if err != nil {
			r.t.Fatalf("%s: the session wrote bytes that do not decode (% x): %v", step, out, err)
		}
		if (r.failed || r.closed) && p.Type() != codec.TypeDisconnect {
			r.t.Fatalf("%s: the session wrote %v after its connection ended", step, p)
		}
		sent = append(sent, p.Type().String()+" "+strconv.Itoa(int(packetID(p))))
		out = out[n:]
	}
	var acks []session.AckID
	for ev, ok := r.s.NextEvent(); ok; ev, ok = r.s.NextEvent() {
		switch ev.Kind {
		case session.EventClosed:
			if r.closed {
				r.t.Fatalf("%s: a second EventClosed", step)
			}
			r.closed = true
		case session.EventMessage, session.EventUnrouted:
			if ev.Message == nil {
				r.t.Fatalf("%s: %v without a message", step, ev.Kind)
			}
			if ev.Message.Ack != 0 {
				acks = append(acks, ev.Message.Ack)
			}
		}
	}
	for _, a := range acks {
		if err := r.s.Ack(r.now, a); err != nil {
			r.t.Fatalf("Ack: %v", err)
		}
		out := r.s.AppendTransmit(nil)
		for len(out) > 0 {
			p, n, err := r.dec.Decode(out)
			if err != nil {
				r.t.Fatalf("Ack: the session wrote bytes that do not decode (% x): %v", out, err)
			}
			if r.failed || r.closed {
				r.t.Fatalf("Ack wrote %v after the connection ended", p)
			}
			out = out[n:]
		}
	}
	return sent
}

func packetID(p codec.Packet) uint16 {
	switch p := p.(type) {
	case *codec.Publish:
		return p.PacketID
	case *codec.Subscribe:
		return p.PacketID
	}
	return 0
}

// sessionSeeds are valid server byte sequences for the session of
// newSessionRun: acknowledgements of its flows, incoming messages at every
// QoS with their release, PINGRESP, and a server DISCONNECT (5.0).
func sessionSeeds(f *testing.F, v codec.Version) [][]byte {
	enc := func(ps ...codec.Packet) []byte {
		var b []byte
		for _, p := range ps {
			var err error
			if b, err = codec.Append(b, p, v); err != nil {
				f.Fatalf("seed %v: %v", p, err)
			}
		}
		return b
	}
	pub := func(qos codec.QoS, id uint16, dup bool) *codec.Publish {
		return &codec.Publish{Topic: "a/b", QoS: qos, PacketID: id, Dup: dup, Payload: []byte("hello")}
	}
	suback := &codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{2}}
	seeds := [][]byte{
		enc(suback),
		enc(&codec.Puback{PacketID: 2}),
		enc(&codec.Pubrec{PacketID: 3}, &codec.Pubcomp{PacketID: 3}),
		enc(pub(0, 0, false)),
		enc(pub(1, 7, false)),
		enc(pub(2, 8, false), &codec.Pubrel{PacketID: 8}),
		enc(pub(2, 8, false), pub(2, 8, true), &codec.Pubrel{PacketID: 8}),
		enc(&codec.Pubrel{PacketID: 9}),
		enc(&codec.Pingresp{}),
		enc(suback, &codec.Puback{PacketID: 2}, &codec.Pubrec{PacketID: 3}, pub(1, 1, false),
			&codec.Pubcomp{PacketID: 3}, pub(2, 2, false), &codec.Pubrel{PacketID: 2}, &codec.Pingresp{}),
	}
	if v == codec.V5 {
		aliased := pub(1, 4, false)
		aliased.Props.TopicAlias = 1
		aliasOnly := pub(0, 0, false)
		aliasOnly.Topic = ""
		aliasOnly.Props.TopicAlias = 1
		seeds = append(seeds,
			enc(aliased, aliasOnly),
			enc(&codec.Puback{PacketID: 2, ReasonCode: codec.ReasonQuotaExceeded}),
			enc(&codec.Pubrec{PacketID: 3, ReasonCode: codec.ReasonNotAuthorized}),
			enc(&codec.Disconnect{ReasonCode: codec.ReasonServerShuttingDown}),
		)
	}
	return seeds
}
