package fuzz

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/fuzz/gen"
)

// FuzzGenerated drives the structure-aware generator of fuzz/gen with the
// fuzzer's bytes: up to four packets of a version and types the bytes
// choose, each valid (it must decode to an equal packet and encode to the
// same bytes) and then mutated in every class that applies, with the
// details the bytes choose (each mutant must pass checkPacket: no panic,
// typed errors, a round trip when it still decodes).
// The mutations reach the codec's error paths that random bytes rarely
// reach: a bad field deep inside an otherwise valid packet.
func FuzzGenerated(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		g := gen.FromBytes(data)
		v := g.Version()
		for i := 0; i < 4 && (i == 0 || g.Intn(2) == 1); i++ {
			p := g.AnyPacket(v)
			b, err := codec.Append(nil, p, v)
			if err != nil {
				t.Fatalf("the generator made %v, which the codec refuses: %v", p, err)
			}
			q, n, err := codec.Decode(b, v)
			if err != nil || n != len(b) {
				t.Fatalf("generated % x does not decode: n=%d, %v", b, n, err)
			}
			if diff := cmp.Diff(p, q, eq); diff != "" {
				t.Fatalf("generated % x decodes to another packet:\n%s", b, diff)
			}
			checkPacket(t, b, v)
			for _, c := range gen.Classes(v) {
				if m, ok := g.Mutate(b, v, c); ok {
					checkPacket(t, m.Bytes, v)
					if m.Type == codec.TypeConnect {
						// What a server reads first: it must agree with Decode.
						got, err := codec.ConnectVersion(m.Bytes)
						checkErr(t, err)
						if err == nil && got != v {
							if _, _, derr := codec.Decode(m.Bytes, v); derr == nil {
								t.Fatalf("ConnectVersion says %v of a %v CONNECT that decodes", got, v)
							}
						}
					}
				}
			}
		}
	})
}

// FuzzGeneratedSession feeds the session of newSessionRun a stream of
// server packets made by fuzz/gen from the fuzzer's bytes: valid packets of
// any type, some mutated, with packet identifiers often those of the
// session's open flows (1 to 3), in chunks the bytes choose. The property is
// FuzzSessionInput's.
func FuzzGeneratedSession(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 9, 4, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		g := gen.FromBytes(data)
		v := g.Version()
		mode := byte(0)
		if v == codec.V5 {
			mode = 1 | byte(g.Intn(2))<<1
		}
		chunk := byte(g.Intn(256))
		var stream []byte
		for n := 1 + g.Intn(8); n > 0; n-- {
			p := g.AnyPacket(v)
			if g.Intn(2) == 1 {
				setID(p, uint16(1+g.Intn(3)))
			}
			b, err := codec.Append(nil, p, v)
			if err != nil {
				t.Fatalf("the generator made %v, which the codec refuses: %v", p, err)
			}
			if g.Intn(4) == 3 {
				b = g.MutateAny(b, v).Bytes
			}
			stream = append(stream, b...)
		}
		runSession(t, v, mode, chunk, stream)
	})
}

// setID gives p the packet identifier id when it has one (a QoS 0 PUBLISH
// has none).
func setID(p codec.Packet, id uint16) {
	switch p := p.(type) {
	case *codec.Publish:
		if p.QoS > 0 {
			p.PacketID = id
		}
	case *codec.Puback:
		p.PacketID = id
	case *codec.Pubrec:
		p.PacketID = id
	case *codec.Pubrel:
		p.PacketID = id
	case *codec.Pubcomp:
		p.PacketID = id
	case *codec.Subscribe:
		p.PacketID = id
	case *codec.Suback:
		p.PacketID = id
	case *codec.Unsubscribe:
		p.PacketID = id
	case *codec.Unsuback:
		p.PacketID = id
	}
}
