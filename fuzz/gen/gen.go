// Package gen generates valid MQTT 3.1.1 and 5.0 packets and mutates them
// field by field, for fuzzing any MQTT decoder or broker.
//
// A Gen draws its choices from a seed (New) or from the bytes a fuzzing
// engine hands a target (FromBytes), so the same seed or the same bytes give
// the same packets and mutations on every run. Packets are built as
// codec values and encoded by the codec, so a generated packet is valid by
// construction: codec.Decode gives back an equal value and encoding that
// value gives the same bytes.
//
// Mutate changes one field of a valid encoding (found by Walk) in one of the
// ways a Class names: a remaining length, string length or property length
// off by one or huge, reserved flags and bits, QoS 3, packet identifier 0,
// property identifiers that are unknown, repeated or not allowed in the
// packet, property values out of their range, ill-formed UTF-8 (surrogates, U+0000, overlong forms), wildcards in
// topic names and misplaced ones in filters, truncation and concatenation.
// Class.Expect names the kind of error a strict decoder gives for most
// mutants of the class; a mutant can still be valid (a remaining length one
// byte shorter may only shorten a PUBLISH payload), so a decoder under test
// is checked against a reference decoder, not against Expect alone.
//
// Use in a fuzz target of your own decoder:
//
//	func FuzzMyDecoder(f *testing.F) {
//		f.Add([]byte{0})
//		f.Fuzz(func(t *testing.T, seed []byte) {
//			g := gen.FromBytes(seed)
//			v := codec.V5
//			b, err := g.Bytes(v, g.Type(v))
//			if err != nil {
//				t.Fatal(err) // a bug of the generator
//			}
//			m := g.MutateAny(b, v)
//			_, _ = mydecoder.Decode(m.Bytes) // must not panic
//		})
//	}
//
// The package imports codec and the standard library only. A Gen is not safe
// for concurrent use.
package gen

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Gen makes packets and mutations from a stream of choices.
type Gen struct {
	rnd *rand.Rand // nil: choices come from data
	buf []byte     // FromBytes: the bytes not used yet
}

// New returns a Gen whose choices come from a PCG generator seeded with
// seed. Two Gens with the same seed make the same packets.
func New(seed uint64) *Gen {
	return &Gen{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// FromBytes returns a Gen whose choices come from data, as a fuzzing engine
// provides it: each choice takes the next bytes, and once data is used up
// every choice is its smallest value (the first packet type, no optional
// fields, the first mutation), so short inputs give small packets. data is
// not modified and not kept beyond the calls that read it.
func FromBytes(data []byte) *Gen { return &Gen{buf: data} }

// u64 returns the next raw choice.
func (g *Gen) u64() uint64 {
	if g.rnd != nil {
		return g.rnd.Uint64()
	}
	if len(g.buf) >= 8 {
		x := binary.LittleEndian.Uint64(g.buf)
		g.buf = g.buf[8:]
		return x
	}
	var x uint64
	for i, c := range g.buf {
		x |= uint64(c) << (8 * i)
	}
	g.buf = nil
	return x
}

// small returns the next choice from FromBytes data one byte at a time (so
// that a fuzzer's byte flips change one decision), or a random value.
func (g *Gen) small() uint64 {
	if g.rnd != nil {
		return g.rnd.Uint64()
	}
	if len(g.buf) == 0 {
		return 0
	}
	c := g.buf[0]
	g.buf = g.buf[1:]
	return uint64(c)
}

// Intn returns a choice in [0, n); n must be positive.
func (g *Gen) Intn(n int) int {
	if n <= 1 {
		return 0
	}
	if n <= 256 {
		return int(g.small() % uint64(n))
	}
	return int(g.u64() % uint64(n))
}

// Bool returns a choice of true or false.
func (g *Gen) Bool() bool { return g.small()&1 == 1 }

// chance is true about once in n choices (never from exhausted data).
func (g *Gen) chance(n int) bool { return g.Intn(n) == n-1 }

func pick[T any](g *Gen, xs ...T) T { return xs[g.Intn(len(xs))] }

// Types returns the packet types of version v: all 15 on 5.0, all but AUTH
// on 3.1.1.
func Types(v codec.Version) []codec.Type {
	n := codec.TypeAuth
	if v == codec.V311 {
		n = codec.TypeDisconnect
	}
	ts := make([]codec.Type, 0, n)
	for t := codec.TypeConnect; t <= n; t++ {
		ts = append(ts, t)
	}
	return ts
}

// Type returns one of Types(v).
func (g *Gen) Type(v codec.Version) codec.Type { return pick(g, Types(v)...) }

// Version returns codec.V311 or codec.V5.
func (g *Gen) Version() codec.Version { return pick(g, codec.V311, codec.V5) }

// Bytes generates a valid packet of type t for version v and returns its
// encoding. The error is not nil only when the codec refuses the packet,
// which is a bug of this package, or when t is not a type of v (AUTH on
// 3.1.1, type 0), which gives an *codec.Error of the codec.
func (g *Gen) Bytes(v codec.Version, t codec.Type) ([]byte, error) {
	p := g.Packet(v, t)
	if p == nil {
		return nil, &codec.Error{Reason: codec.ReasonMalformedPacket, Type: t, Offset: -1,
			Msg: "no packet of type " + t.String() + " in MQTT " + v.String()}
	}
	return codec.Append(nil, p, v)
}
