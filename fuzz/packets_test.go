package fuzz

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/zmqtt/zmqtt-go/codec"
)

// One fuzz target per packet type: the four acknowledgements of PUBLISH
// share one, SUBACK and UNSUBACK share one, and PINGREQ, PINGRESP,
// DISCONNECT and AUTH share one. Each target forces the type nibble of the
// first byte to its own type(s), so the fuzzer spends its time inside that
// type's decoder, and checks:
//
//   - no panic, in codec.Decode, in the type's Decode method and in a
//     Decoder of every role;
//   - a failure is ErrIncomplete or an *codec.Error;
//   - the type's Decode method and codec.Decode agree;
//   - a packet that decodes encodes again (Append accepts it, Size is
//     exact), the encoding decodes to an equal packet and encodes to the
//     same bytes, and every proper prefix of it is incomplete;
//   - Clone gives an equal packet.

func FuzzConnect(f *testing.F)     { fuzzTypes(f, codec.TypeConnect) }
func FuzzConnack(f *testing.F)     { fuzzTypes(f, codec.TypeConnack) }
func FuzzPublish(f *testing.F)     { fuzzTypes(f, codec.TypePublish) }
func FuzzSubscribe(f *testing.F)   { fuzzTypes(f, codec.TypeSubscribe) }
func FuzzUnsubscribe(f *testing.F) { fuzzTypes(f, codec.TypeUnsubscribe) }

// FuzzSubAcks covers SUBACK and UNSUBACK, which share a layout.
func FuzzSubAcks(f *testing.F) { fuzzTypes(f, codec.TypeSuback, codec.TypeUnsuback) }

// FuzzPubAcks covers PUBACK, PUBREC, PUBREL and PUBCOMP, which share a layout.
func FuzzPubAcks(f *testing.F) {
	fuzzTypes(f, codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp)
}

// FuzzControl covers PINGREQ, PINGRESP, DISCONNECT and AUTH.
func FuzzControl(f *testing.F) {
	fuzzTypes(f, codec.TypePingreq, codec.TypePingresp, codec.TypeDisconnect, codec.TypeAuth)
}

var eq = cmp.Options{cmpopts.EquateEmpty()}

func fuzzTypes(f *testing.F, types ...codec.Type) {
	vs, bs := seedsFor(f, types...)
	for i := range bs {
		f.Add(vs[i], bs[i])
	}
	f.Fuzz(func(t *testing.T, vb byte, b []byte) {
		v := codec.V311
		if vb&1 == 1 { // the seeds use 4 and 5; any byte picks one
			v = codec.V5
		}
		if len(b) > 0 {
			// Keep the flags nibble; choose the type among this target's.
			typ := types[int(b[0]>>4)%len(types)]
			b = append([]byte{byte(typ)<<4 | b[0]&0x0F}, b[1:]...)
		}
		checkPacket(t, b, v)
	})
}

// checkPacket is the property every per-type target checks.
func checkPacket(t *testing.T, b []byte, v codec.Version) {
	p, n, err := codec.Decode(b, v)
	checkErr(t, err)
	// The Decode method of the type agrees with codec.Decode.
	if len(b) > 0 && b[0]>>4 != 0 {
		m := newPacket(codec.Type(b[0] >> 4))
		n2, err2 := m.Decode(b, v)
		checkErr(t, err2)
		if (err == nil) != (err2 == nil) || n2 != n {
			t.Fatalf("%T.Decode: n=%d %v; codec.Decode: n=%d %v", m, n2, err2, n, err)
		}
		if err == nil {
			if diff := cmp.Diff(p, m, eq); diff != "" {
				t.Fatalf("%T.Decode differs from codec.Decode:\n%s", m, diff)
			}
		}
	}
	// Decoders with roles apply more rules, but never panic.
	for _, role := range []codec.Role{codec.RoleAny, codec.RoleClient, codec.RoleServer} {
		d := codec.Decoder{Version: v, From: role}
		q, dn, derr := d.Decode(b)
		checkErr(t, derr)
		if role == codec.RoleAny && ((derr == nil) != (err == nil) || dn != n) {
			t.Fatalf("Decoder: n=%d %v; codec.Decode: n=%d %v", dn, derr, n, err)
		}
		if derr == nil && err != nil {
			t.Fatalf("a Decoder from %v accepts what codec.Decode refuses: %v", role, err)
		}
		if derr == nil {
			if diff := cmp.Diff(p, q, eq); diff != "" {
				t.Fatalf("Decoder from %v differs from codec.Decode:\n%s", role, diff)
			}
		}
	}
	if err != nil {
		return
	}
	if n <= 0 || n > len(b) {
		t.Fatalf("Decode used %d of %d bytes", n, len(b))
	}
	enc, err := codec.Append(nil, p, v)
	if err != nil {
		t.Fatalf("decoded %v but Append refuses it: %v", p, err)
	}
	if size := p.Size(v); size != len(enc) {
		t.Fatalf("Size %d, Append wrote %d", size, len(enc))
	}
	q, m, err := codec.Decode(enc, v)
	if err != nil || m != len(enc) {
		t.Fatalf("re-encoding % x of %v: n=%d, %v", enc, p, m, err)
	}
	if diff := cmp.Diff(p, q, eq); diff != "" {
		t.Fatalf("re-encoding changes the packet (-first +second):\n%s", diff)
	}
	enc2, err := codec.Append(nil, q, v)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("second encoding % x differs from % x (%v)", enc2, enc, err)
	}
	if diff := cmp.Diff(p, codec.Clone(p), eq); diff != "" {
		t.Fatalf("Clone differs:\n%s", diff)
	}
	if len(enc) <= 64 {
		for k := range len(enc) {
			if _, _, err := codec.Decode(enc[:k], v); err != codec.ErrIncomplete {
				t.Fatalf("the first %d bytes of % x: %v, want ErrIncomplete", k, enc, err)
			}
		}
	}
	_ = p.String()
}

// checkErr fails unless err is nil, ErrIncomplete or an *codec.Error.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil || err == codec.ErrIncomplete {
		return
	}
	var e *codec.Error
	if !errors.As(err, &e) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
	if e.Offset < -1 {
		t.Fatalf("negative offset in %v", e)
	}
	if e.Error() == "" {
		t.Fatalf("empty error message")
	}
}

func newPacket(t codec.Type) codec.Packet {
	switch t {
	case codec.TypeConnect:
		return new(codec.Connect)
	case codec.TypeConnack:
		return new(codec.Connack)
	case codec.TypePublish:
		return new(codec.Publish)
	case codec.TypePuback:
		return new(codec.Puback)
	case codec.TypePubrec:
		return new(codec.Pubrec)
	case codec.TypePubrel:
		return new(codec.Pubrel)
	case codec.TypePubcomp:
		return new(codec.Pubcomp)
	case codec.TypeSubscribe:
		return new(codec.Subscribe)
	case codec.TypeSuback:
		return new(codec.Suback)
	case codec.TypeUnsubscribe:
		return new(codec.Unsubscribe)
	case codec.TypeUnsuback:
		return new(codec.Unsuback)
	case codec.TypePingreq:
		return new(codec.Pingreq)
	case codec.TypePingresp:
		return new(codec.Pingresp)
	case codec.TypeDisconnect:
		return new(codec.Disconnect)
	case codec.TypeAuth:
		return new(codec.Auth)
	}
	return nil
}
