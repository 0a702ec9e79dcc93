package fuzz

import (
	"errors"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// FuzzDecode feeds arbitrary bytes to codec.Decode for both versions: it must
// never panic, must return ErrIncomplete or an *codec.Error on failure, and a
// packet it accepts must encode to bytes that decode to the same encoding.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x30, 0x05, 0x00, 0x01, 'a', 'h', 'i'})
	f.Add([]byte{0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []codec.Version{codec.V311, codec.V5} {
			p, n, err := codec.Decode(b, v)
			if err != nil {
				var e *codec.Error
				if !errors.Is(err, codec.ErrIncomplete) && !errors.As(err, &e) {
					t.Fatalf("untyped error %T: %v", err, err)
				}
				continue
			}
			if n <= 0 || n > len(b) {
				t.Fatalf("n = %d of %d", n, len(b))
			}
			enc, err := codec.Append(nil, p, v)
			if err != nil {
				t.Fatalf("decoded %v but cannot encode it: %v", p, err)
			}
			q, m, err := codec.Decode(enc, v)
			if err != nil || m != len(enc) {
				t.Fatalf("re-encoding %x of %v does not decode: %v", enc, p, err)
			}
			enc2, err := codec.Append(nil, q, v)
			if err != nil || string(enc2) != string(enc) {
				t.Fatalf("second encoding differs: %x vs %x (%v)", enc2, enc, err)
			}
		}
	})
}
