package gen_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/fuzz/gen"
)

var versions = []codec.Version{codec.V311, codec.V5}

// checkValid asserts that b, generated for type t, decodes to a packet equal
// to p, that the packet encodes to the same bytes, and that Walk lays it out.
func checkValid(t interface {
	Fatalf(string, ...any)
}, p codec.Packet, v codec.Version) {
	b, err := codec.Append(nil, p, v)
	if err != nil {
		t.Fatalf("%v %v: the codec refuses a generated packet: %v", v, p, err)
	}
	q, n, err := codec.Decode(b, v)
	if err != nil || n != len(b) {
		t.Fatalf("%v % x: decode n=%d of %d: %v", v, b, n, len(b), err)
	}
	if diff := cmp.Diff(p, q, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("%v % x: decoded packet differs (-generated +decoded):\n%s", v, b, diff)
	}
	b2, err := codec.Append(nil, q, v)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("%v: re-encoding % x differs from % x (%v)", v, b2, b, err)
	}
	if _, err := gen.Walk(b, v); err != nil {
		t.Fatalf("%v % x: Walk: %v", v, b, err)
	}
}

// TestGeneratedPacketsRoundTrip: every packet generated from a seed, of
// every type of both versions, is valid by construction.
func TestGeneratedPacketsRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		g := gen.New(rapid.Uint64().Draw(rt, "seed"))
		for _, v := range versions {
			for _, typ := range gen.Types(v) {
				p := g.Packet(v, typ)
				if p == nil || p.Type() != typ {
					rt.Fatalf("Packet(%v, %v) = %v", v, typ, p)
				}
				checkValid(rt, p, v)
			}
		}
	})
}

// TestGeneratedFromBytesRoundTrip: the same from fuzzer bytes, short ones
// included (the choices then fall back to their smallest values).
func TestGeneratedFromBytesRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		data := rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(rt, "data")
		g := gen.FromBytes(data)
		v := g.Version()
		p := g.AnyPacket(v)
		checkValid(rt, p, v)
	})
}

func TestSameSeedSamePackets(t *testing.T) {
	for _, v := range versions {
		a, b := gen.New(42), gen.New(42)
		for range 50 {
			pa, err1 := a.Bytes(v, a.Type(v))
			pb, err2 := b.Bytes(v, b.Type(v))
			if err1 != nil || err2 != nil || !bytes.Equal(pa, pb) {
				t.Fatalf("%v: seed 42 gave % x and % x (%v, %v)", v, pa, pb, err1, err2)
			}
			ma, mb := a.MutateAny(pa, v), b.MutateAny(pb, v)
			if !bytes.Equal(ma.Bytes, mb.Bytes) || ma.Class != mb.Class {
				t.Fatalf("%v: seed 42 mutated to %v % x and %v % x", v, ma.Class, ma.Bytes, mb.Class, mb.Bytes)
			}
		}
	}
	if gen.Types(codec.V311)[len(gen.Types(codec.V311))-1] != codec.TypeDisconnect || len(gen.Types(codec.V5)) != 15 {
		t.Fatalf("Types: %v / %v", gen.Types(codec.V311), gen.Types(codec.V5))
	}
	if gen.New(1).Packet(codec.V311, codec.TypeAuth) != nil {
		t.Fatal("AUTH generated for 3.1.1")
	}
}

// decodeStream decodes b packet after packet and returns how many packets
// it held and the error that ended it.
func decodeStream(b []byte, v codec.Version) (int, error) {
	n := 0
	for len(b) > 0 {
		_, k, err := codec.Decode(b, v)
		if err != nil {
			return n, err
		}
		n++
		b = b[k:]
	}
	return n, nil
}

// TestEveryClassRejected runs every mutation class of each version against
// the codec's strict decoder, on packets of every type, for a bounded number
// of seeds: the decoder never panics, every error is typed, and each class
// gives at least once the error kind Expect names. The kinds follow the
// rules the codec cites: QoS 3 [MQTT-3.3.1-4], reserved flags
// [MQTT-2.1.3-1], a non-minimal length [MQTT-1.5.5-1], U+0000
// [MQTT-1.5.4-2], ill-formed UTF-8 [MQTT-1.5.4-1], packet identifier 0
// [MQTT-2.2.1-3].
func TestEveryClassRejected(t *testing.T) {
	for _, v := range versions {
		for _, c := range gen.Classes(v) {
			t.Run(v.String()+"/"+c.String(), func(t *testing.T) {
				g := gen.New(uint64(c) + 1000*uint64(v))
				applied, expected := 0, 0
				types := map[codec.Type]bool{}
				for i := 0; i < 3000 && (expected < 20 || i < 200); i++ {
					typ := g.Type(v)
					b, err := g.Bytes(v, typ)
					if err != nil {
						t.Fatal(err)
					}
					m, ok := g.Mutate(b, v, c)
					if !ok {
						continue
					}
					applied++
					if m.Class != c || m.Type != typ || m.Note == "" {
						t.Fatalf("mutant %+v of a %v", m, typ)
					}
					if bytes.Equal(m.Bytes, b) {
						t.Fatalf("%v left % x unchanged", c, b)
					}
					var derr error
					if c == gen.Concat {
						n, err := decodeStream(m.Bytes, v)
						if n != 2 && err == codec.ErrIncomplete {
							t.Fatalf("concat % x: %d packets before the incomplete one", m.Bytes, n)
						}
						derr = err
					} else {
						_, _, derr = codec.Decode(m.Bytes, v)
					}
					var ce *codec.Error
					if derr != nil && !errors.Is(derr, codec.ErrIncomplete) && !errors.As(derr, &ce) {
						t.Fatalf("untyped error %T %v for % x", derr, derr, m.Bytes)
					}
					if errors.Is(derr, c.Expect()) {
						expected++
						types[typ] = true
					}
				}
				if applied == 0 || expected == 0 {
					t.Fatalf("%v on %v: applied %d times, %d gave %v", c, v, applied, expected, c.Expect())
				}
				t.Logf("applied %d, %d rejected as %v, on %d packet types", applied, expected, c.Expect(), len(types))
			})
		}
	}
}

func TestParseClass(t *testing.T) {
	for _, c := range gen.Classes(codec.V5) {
		if got, ok := gen.ParseClass(c.String()); !ok || got != c {
			t.Fatalf("ParseClass(%q) = %v, %v", c.String(), got, ok)
		}
	}
	if _, ok := gen.ParseClass("nope"); ok {
		t.Fatal("ParseClass accepted nope")
	}
	if len(gen.Classes(codec.V311)) != len(gen.Classes(codec.V5))-5 {
		t.Fatal("3.1.1 should lack exactly the five property classes")
	}
}

// TestWalkRefusesBrokenBytes: Walk lays out only whole valid packets.
func TestWalkRefusesBrokenBytes(t *testing.T) {
	for _, b := range [][]byte{nil, {0x30}, {0x30, 0x05, 0x00}, {0x00, 0x00}, {0xc0, 0x00, 0x00}} {
		if _, err := gen.Walk(b, codec.V5); !errors.Is(err, gen.ErrLayout) {
			t.Fatalf("Walk(% x) = %v, want ErrLayout", b, err)
		}
	}
}
