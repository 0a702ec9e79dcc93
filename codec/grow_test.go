package codec

import "testing"

// TestGrowAmortised: appending packet after packet into one buffer
// reallocates a logarithmic number of times, not once per packet.
func TestGrowAmortised(t *testing.T) {
	var dst []byte
	reallocs := 0
	const acks = 10000
	for i := range acks {
		before := cap(dst)
		var err error
		dst, err = (&Puback{PacketID: uint16(i%65535 + 1)}).Append(dst, V5)
		if err != nil {
			t.Fatal(err)
		}
		if cap(dst) != before {
			reallocs++
		}
	}
	if len(dst) != 4*acks {
		t.Fatalf("%d bytes, want %d", len(dst), 4*acks)
	}
	if reallocs > 20 {
		t.Errorf("%d PUBACKs appended into one buffer reallocated it %d times; want about log2(%d)", acks, reallocs, 4*acks)
	}
	if got := grow(nil, 7); cap(got) != 7 {
		t.Errorf("grow(nil, 7) has capacity %d, want exactly 7", cap(got))
	}
}
