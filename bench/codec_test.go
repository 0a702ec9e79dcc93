package bench

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"

	paho "github.com/eclipse/paho.golang/packets"
	mochi "github.com/mochi-mqtt/server/v2/packets"

	"github.com/zmqtt/zmqtt-go/codec"
)

// packetCase is one packet, described once as a zmqtt value. Its wire form
// is zmqtt's encoding; every implementation decodes those same bytes, and
// every implementation's encoding must decode to the same packet.
type packetCase struct {
	op      string // the op= key of the benchmark name
	size    int    // the PUBLISH payload size, the size= key; 0 for other packets
	v       codec.Version
	from    codec.Role // who sends this packet, for the zmqtt Decoder's direction rules
	pkt     codec.Packet
	copyRow bool // add the impl=copy reference row to the encode benchmark
}

func (c packetCase) name() string {
	if c.size == 0 {
		return "op=" + c.op
	}
	return "op=" + c.op + "/size=" + strconv.Itoa(c.size)
}

// withPaho reports whether paho.golang takes part: it speaks MQTT 5.0 only.
func (c packetCase) withPaho() bool { return c.v == codec.V5 }

const benchTopic = "sensors/building-7/floor-3/room-12/temperature"

// publishProps are the two properties of every 5.0 PUBLISH: a Message Expiry
// Interval and one User Property. Both are written by all three encoders
// without further options (mochi-mqtt writes Correlation Data and Response
// Topic only when its connection allows response information).
func publishProps() codec.Properties {
	return codec.Properties{
		MessageExpiry: 3600,
		User:          []codec.UserProperty{{Key: "trace-id", Value: "4bf92f3577b34da6"}},
	}
}

func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

func cases() []packetCase {
	var cs []packetCase
	for _, v := range []codec.Version{codec.V5, codec.V311} {
		for _, qos := range []codec.QoS{codec.AtMostOnce, codec.AtLeastOnce} {
			for _, size := range []int{16, 256, 4 << 10, 64 << 10} {
				p := &codec.Publish{QoS: qos, Topic: benchTopic, Payload: payload(size)}
				op := fmt.Sprintf("publish-qos%d-v311", qos)
				if v == codec.V5 {
					p.Props = publishProps()
					op = fmt.Sprintf("publish-qos%d-v5-props2", qos)
				}
				if qos > 0 {
					p.PacketID = 0x1234
				}
				cs = append(cs, packetCase{op: op, size: size, v: v, from: codec.RoleServer, pkt: p, copyRow: size == 64<<10})
			}
		}
	}
	for _, v := range []codec.Version{codec.V5, codec.V311} {
		vs := versionKey(v)
		conn := &codec.Connect{
			CleanStart: true,
			KeepAlive:  60,
			ClientID:   "zmqtt-bench-client-0001",
			Will: &codec.Will{QoS: codec.AtLeastOnce, Topic: "clients/zmqtt-bench-client-0001/status",
				Payload: []byte("offline")},
			Username: "bench-user",
			Password: []byte("s3cret-passw0rd"),
		}
		sub := &codec.Subscribe{PacketID: 0x0102, Subscriptions: []codec.Subscription{
			{Filter: "sensors/+/temperature", QoS: codec.AtLeastOnce},
			{Filter: "alerts/#", QoS: codec.ExactlyOnce},
			{Filter: "devices/device-42/commands", QoS: codec.AtMostOnce},
		}}
		if v == codec.V5 {
			conn.Props = codec.Properties{SessionExpiry: 3600, ReceiveMaximum: 100, TopicAliasMaximum: 16,
				User: []codec.UserProperty{{Key: "client-version", Value: "1.0.0"}}}
			conn.Will.Props = codec.Properties{WillDelay: 30,
				User: []codec.UserProperty{{Key: "reason", Value: "connection lost"}}}
			sub.Props = codec.Properties{SubscriptionIDs: []uint32{42}}
			sub.Subscriptions[1].NoLocal = true
			sub.Subscriptions[2].RetainAsPublished = true
			sub.Subscriptions[2].RetainHandling = codec.DoNotSendRetained
		}
		cs = append(cs,
			packetCase{op: "connect-" + vs + "-will-auth", v: v, from: codec.RoleClient, pkt: conn},
			packetCase{op: "subscribe-3-" + vs, v: v, from: codec.RoleClient, pkt: sub},
			packetCase{op: "puback-" + vs, v: v, from: codec.RoleServer, pkt: &codec.Puback{PacketID: 0x1234}},
		)
		if v == codec.V5 {
			cs = append(cs, packetCase{op: "puback-v5-reason-string", v: v, from: codec.RoleServer,
				pkt: &codec.Puback{PacketID: 0x1234, ReasonCode: codec.ReasonNoMatchingSubscribers,
					Props: codec.Properties{ReasonString: "no matching subscribers"}}})
		}
	}
	return cs
}

func versionKey(v codec.Version) string {
	if v == codec.V5 {
		return "v5"
	}
	return "v311"
}

// wire returns zmqtt's encoding of the case's packet.
func (c packetCase) wire(b *testing.B) []byte {
	w, err := codec.Append(nil, c.pkt, c.v)
	if err != nil {
		b.Fatalf("encode %s: %v", c.op, err)
	}
	return w
}

// mustBeWire fails b unless got, encoded again by zmqtt, gives back want:
// the proof that an implementation decoded (or encoded) every field,
// property and payload byte of the packet.
func mustBeWire(b *testing.B, impl string, got codec.Packet, v codec.Version, want []byte) {
	b.Helper()
	again, err := codec.Append(nil, got, v)
	if err != nil {
		b.Fatalf("%s: its packet %v does not encode: %v", impl, got, err)
	}
	if !bytes.Equal(again, want) {
		b.Fatalf("%s: got packet %v\nwhich encodes as %x\nwant %x", impl, got, again, want)
	}
}

// mustDecodeToWire fails b unless out, bytes that an implementation encoded,
// decode with zmqtt to the packet whose encoding is want.
func mustDecodeToWire(b *testing.B, impl string, out []byte, v codec.Version, want []byte) {
	b.Helper()
	p, n, err := codec.Decode(out, v)
	if err != nil {
		b.Fatalf("%s: its encoding %x does not decode: %v", impl, out, err)
	}
	if n != len(out) {
		b.Fatalf("%s: its encoding has %d bytes after the packet", impl, len(out)-n)
	}
	mustBeWire(b, impl, p, v, want)
}

var sink any

// BenchmarkDecode decodes the same bytes with each implementation, all the
// way to a packet value with its properties: zmqtt with a reused Decoder (the
// hot path) and with codec.Decode (a new packet each time), paho.golang with
// ReadPacket, mochi-mqtt with its fixed-header and packet decode functions
// followed by the packet's Validate, as its server does.
func BenchmarkDecode(b *testing.B) {
	for _, c := range cases() {
		wire := c.wire(b)
		b.Run(c.name(), func(b *testing.B) {
			b.Run("impl=zmqtt", func(b *testing.B) {
				d := codec.Decoder{Version: c.v, From: c.from}
				p, _, err := d.Decode(wire)
				if err != nil {
					b.Fatal(err)
				}
				mustBeWire(b, "zmqtt", p, c.v, wire)
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := d.Decode(wire); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("impl=zmqtt-alloc", func(b *testing.B) {
				p, _, err := codec.Decode(wire, c.v)
				if err != nil {
					b.Fatal(err)
				}
				mustBeWire(b, "zmqtt-alloc", p, c.v, wire)
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					p, _, err := codec.Decode(wire, c.v)
					if err != nil {
						b.Fatal(err)
					}
					sink = p
				}
			})
			if c.withPaho() {
				b.Run("impl=paho", func(b *testing.B) {
					var r bytes.Reader
					r.Reset(wire)
					cp, err := paho.ReadPacket(&r)
					if err != nil {
						b.Fatal(err)
					}
					p, err := fromPaho(cp)
					if err != nil {
						b.Fatal(err)
					}
					mustBeWire(b, "paho", p, c.v, wire)
					b.SetBytes(int64(len(wire)))
					b.ReportAllocs()
					for b.Loop() {
						r.Reset(wire)
						cp, err := paho.ReadPacket(&r)
						if err != nil {
							b.Fatal(err)
						}
						sink = cp
					}
				})
			}
			b.Run("impl=mochi", func(b *testing.B) {
				m := mochiDecoder{v: byte(c.v)}
				if err := m.decode(wire); err != nil {
					b.Fatal(err)
				}
				p, err := fromMochi(&m.pk)
				if err != nil {
					b.Fatal(err)
				}
				mustBeWire(b, "mochi", p, c.v, wire)
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					if err := m.decode(wire); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkEncode encodes the same packet with each implementation into a
// buffer it reuses: zmqtt with Append, paho.golang with ControlPacket.WriteTo
// into a bytes.Buffer, mochi-mqtt with its packet's Encode function into a
// bytes.Buffer. impl=copy is a plain copy of the encoded bytes, the floor for
// a large payload.
func BenchmarkEncode(b *testing.B) {
	for _, c := range cases() {
		wire := c.wire(b)
		b.Run(c.name(), func(b *testing.B) {
			b.Run("impl=zmqtt", func(b *testing.B) {
				buf := make([]byte, 0, len(wire))
				out, err := c.pkt.Append(buf, c.v)
				if err != nil {
					b.Fatal(err)
				}
				mustDecodeToWire(b, "zmqtt", out, c.v, wire)
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					if buf, err = c.pkt.Append(buf[:0], c.v); err != nil {
						b.Fatal(err)
					}
				}
			})
			if c.withPaho() {
				b.Run("impl=paho", func(b *testing.B) {
					cp, err := toPaho(c.pkt)
					if err != nil {
						b.Fatal(err)
					}
					var buf bytes.Buffer
					buf.Grow(len(wire) + 16)
					if _, err := cp.WriteTo(&buf); err != nil {
						b.Fatal(err)
					}
					mustDecodeToWire(b, "paho", buf.Bytes(), c.v, wire)
					b.SetBytes(int64(len(wire)))
					b.ReportAllocs()
					for b.Loop() {
						buf.Reset()
						if _, err := cp.WriteTo(&buf); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("impl=mochi", func(b *testing.B) {
				pk, err := toMochi(c.pkt, c.v)
				if err != nil {
					b.Fatal(err)
				}
				encode, err := mochiEncoder(pk)
				if err != nil {
					b.Fatal(err)
				}
				var buf bytes.Buffer
				buf.Grow(len(wire) + 16)
				if err := encode(&buf); err != nil {
					b.Fatal(err)
				}
				mustDecodeToWire(b, "mochi", buf.Bytes(), c.v, wire)
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := encode(&buf); err != nil {
						b.Fatal(err)
					}
				}
			})
			if c.copyRow {
				b.Run("impl=copy", func(b *testing.B) {
					dst := make([]byte, len(wire))
					copy(dst, wire)
					if !bytes.Equal(dst, wire) {
						b.Fatal("copy did not copy")
					}
					b.SetBytes(int64(len(wire)))
					b.ReportAllocs()
					for b.Loop() {
						copy(dst, wire)
					}
				})
			}
		})
	}
}

// mochiDecoder decodes a packet the way mochi-mqtt's server does
// (Client.ReadFixedHeader, then Client.ReadPacket, then the packet's
// Validate in the server's handler), with two favours: it reuses its reader
// and the capacity of its User Property slice, and it decodes the body in
// place instead of copying it first as the server does.
type mochiDecoder struct {
	v  byte
	r  bytes.Reader
	pk mochi.Packet
}

func (m *mochiDecoder) decode(wire []byte) error {
	m.r.Reset(wire)
	hb, err := m.r.ReadByte()
	if err != nil {
		return err
	}
	var fh mochi.FixedHeader
	if err := fh.Decode(hb); err != nil {
		return err
	}
	if fh.Remaining, _, err = mochi.DecodeLength(&m.r); err != nil {
		return err
	}
	start := len(wire) - m.r.Len()
	if len(wire)-start < fh.Remaining {
		return io.ErrUnexpectedEOF
	}
	body := wire[start : start+fh.Remaining]
	user := m.pk.Properties.User[:0]
	m.pk = mochi.Packet{ProtocolVersion: m.v, FixedHeader: fh}
	m.pk.Properties.User = user
	pk := &m.pk
	switch fh.Type {
	case mochi.Publish:
		if err := pk.PublishDecode(body); err != nil {
			return err
		}
		if code := pk.PublishValidate(65535); code != mochi.CodeSuccess {
			return code
		}
	case mochi.Connect:
		if err := pk.ConnectDecode(body); err != nil {
			return err
		}
		if code := pk.ConnectValidate(); code != mochi.CodeSuccess {
			return code
		}
	case mochi.Subscribe:
		if err := pk.SubscribeDecode(body); err != nil {
			return err
		}
		if code := pk.SubscribeValidate(); code != mochi.CodeSuccess {
			return code
		}
	case mochi.Puback:
		if err := pk.PubackDecode(body); err != nil {
			return err
		}
		if !pk.ReasonCodeValid() {
			return fmt.Errorf("mochi-mqtt: reason code %#x not valid", pk.ReasonCode)
		}
	default:
		return fmt.Errorf("mochiDecoder: packet type %d not in the benchmark", fh.Type)
	}
	return nil
}

// mochiEncoder returns the mochi-mqtt encode function for pk's packet type.
func mochiEncoder(pk *mochi.Packet) (func(*bytes.Buffer) error, error) {
	switch pk.FixedHeader.Type {
	case mochi.Publish:
		return pk.PublishEncode, nil
	case mochi.Connect:
		return pk.ConnectEncode, nil
	case mochi.Subscribe:
		return pk.SubscribeEncode, nil
	case mochi.Puback:
		return pk.PubackEncode, nil
	}
	return nil, fmt.Errorf("mochiEncoder: packet type %d not in the benchmark", pk.FixedHeader.Type)
}
