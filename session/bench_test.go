package session

import (
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// benchSession is a connected session with one subscription, and the
// encoded packets of the hot paths.
func benchSession(tb testing.TB) (*Session, []byte, []byte) {
	s, err := New(Config{Version: codec.V5, ClientID: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	now := epoch
	s.Connect(now)
	ack, _ := (&codec.Connack{}).Append(nil, codec.V5)
	s.HandleBytes(now, ack)
	s.Subscribe(now, 1, []codec.Subscription{{Filter: "sensors/+/temp"}}, SubscribeOptions{})
	suback, _ := (&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}}).Append(nil, codec.V5)
	s.HandleBytes(now, suback)
	s.AppendTransmit(nil)
	for _, ok := s.NextEvent(); ok; _, ok = s.NextEvent() {
	}
	in, _ := (&codec.Publish{Topic: "sensors/kitchen/temp", Payload: []byte("21.5"),
		Props: codec.Properties{User: []codec.UserProperty{{Key: "unit", Value: "C"}}}}).Append(nil, codec.V5)
	puback, _ := (&codec.Puback{PacketID: 2}).Append(nil, codec.V5)
	return s, in, puback
}

// incomingQoS0 handles one PUBLISH through the router and drains its event.
func incomingQoS0(tb testing.TB, s *Session, in []byte, now time.Time) {
	if _, err := s.HandleBytes(now, in); err != nil {
		tb.Fatal(err)
	}
	ev, ok := s.NextEvent()
	if !ok || ev.Kind != EventMessage || ev.Message.Targets[0] != 1 {
		tb.Fatalf("event %+v", ev)
	}
}

// outgoingQoS1 publishes at QoS 1, takes the bytes, and answers with the
// PUBACK (the identifier comes back round robin, so the PUBACK is built to
// match).
func outgoingQoS1(tb testing.TB, s *Session, p *codec.Publish, puback []byte, buf []byte, now time.Time) []byte {
	if _, err := s.Publish(now, p); err != nil {
		tb.Fatal(err)
	}
	buf = s.AppendTransmit(buf[:0])
	id := s.tail.id
	puback[2], puback[3] = byte(id>>8), byte(id)
	if _, err := s.HandleBytes(now, puback); err != nil {
		tb.Fatal(err)
	}
	if ev, ok := s.NextEvent(); !ok || ev.Kind != EventPublished || ev.Err != nil {
		tb.Fatalf("event %+v", ev)
	}
	return buf
}

func BenchmarkIncomingQoS0(b *testing.B) {
	s, in, _ := benchSession(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		incomingQoS0(b, s, in, epoch)
	}
}

func BenchmarkOutgoingQoS1(b *testing.B) {
	s, _, puback := benchSession(b)
	p := &codec.Publish{Topic: "sensors/kitchen/temp", QoS: 1, Payload: []byte("21.5")}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = outgoingQoS1(b, s, p, puback, buf, epoch)
	}
}
