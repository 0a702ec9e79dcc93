//go:build !race

// Allocation counts are meaningless under the race detector, which makes
// sync.Pool drop items at random; these tests run in the plain test pass.

package codec

import "testing"

// loopReader serves the same bytes forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.b[l.off:])
		n += c
		l.off = (l.off + c) % len(l.b)
	}
	return n, nil
}

func TestAllocsReaderSteadyState(t *testing.T) {
	small, _ := stream(t, 3, func(i int) int { return 100 * i })
	r := NewReader(&loopReader{b: small}, 0)
	var d Decoder
	d.Version = V5
	n := testing.AllocsPerRun(1000, func() {
		_, b, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Decode(b); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Next+Decode allocates %v times per packet", n)
	}
	big, _ := stream(t, 1, func(int) int { return 100 << 10 })
	rb := NewReader(&loopReader{b: big}, 0)
	rb.Next() // warm the pool
	if n := testing.AllocsPerRun(50, func() { rb.Next() }); n != 0 {
		t.Errorf("large packets allocate %v times per packet", n)
	}
}

func TestAllocsMatchTopic(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { MatchTopic("sport/+/player1/#", "sport/tennis/player1/score") }); n != 0 {
		t.Errorf("MatchTopic allocates %v times", n)
	}
}
