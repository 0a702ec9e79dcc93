package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func mustAppend(t testing.TB, p Packet, v Version) []byte {
	t.Helper()
	b, err := p.Append(nil, v)
	if err != nil {
		t.Fatalf("append %v: %v", p, err)
	}
	return b
}

// stream builds a byte stream of n PUBLISH packets with growing payloads and
// returns it with the packets' encodings.
func stream(t testing.TB, n int, payload func(i int) int) ([]byte, [][]byte) {
	var all []byte
	var each [][]byte
	for i := 0; i < n; i++ {
		p := &Publish{QoS: 1, PacketID: uint16(i + 1), Topic: "r/t", Payload: bytes.Repeat([]byte{byte(i)}, payload(i))}
		b := mustAppend(t, p, V5)
		each = append(each, b)
		all = append(all, b...)
	}
	return all, each
}

func readAll(t *testing.T, r *Reader, want [][]byte) {
	t.Helper()
	for i, w := range want {
		h, b, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(b, w) {
			t.Fatalf("packet %d: got %d bytes, want %d", i, len(b), len(w))
		}
		if h.Size() != len(w) || h.Type != TypePublish {
			t.Fatalf("packet %d: header %+v", i, h)
		}
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("errors are sticky: second call gave %v", err)
	}
}

func TestReaderManyPacketsPerRead(t *testing.T) {
	all, each := stream(t, 200, func(i int) int { return i * 7 })
	readAll(t, NewReader(bytes.NewReader(all), 0), each)
}

func TestReaderOneByteAtATime(t *testing.T) {
	all, each := stream(t, 30, func(i int) int { return i * 13 })
	readAll(t, NewReader(iotest.OneByteReader(bytes.NewReader(all)), 0), each)
}

func TestReaderHalfReads(t *testing.T) {
	all, each := stream(t, 50, func(i int) int { return (i * 997) % 3000 })
	readAll(t, NewReader(iotest.HalfReader(bytes.NewReader(all)), 0), each)
}

func TestReaderPacketsLargerThanBuffer(t *testing.T) {
	sizes := []int{10, DefaultReadBufferSize - 20, DefaultReadBufferSize + 1, 3 * DefaultReadBufferSize, 5, 200 << 10, 1}
	all, each := stream(t, len(sizes), func(i int) int { return sizes[i] })
	readAll(t, NewReader(iotest.HalfReader(bytes.NewReader(all)), 0), each)
}

// countingReader counts the bytes taken from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// TestReaderRefusesLargePacketBeforeBody checks that the maximum packet size
// is enforced on the fixed header, before the body is read.
func TestReaderRefusesLargePacketBeforeBody(t *testing.T) {
	big := mustAppend(t, &Publish{Topic: "a", Payload: make([]byte, 1<<20)}, V5)
	cr := &countingReader{r: iotest.OneByteReader(bytes.NewReader(big))}
	r := NewReader(cr, 1000)
	_, _, err := r.Next()
	if !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("got %v, want ErrPacketTooLarge", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonPacketTooLarge || e.Type != TypePublish {
		t.Fatalf("error %#v", err)
	}
	if cr.n > 5 {
		t.Errorf("reader consumed %d bytes; the fixed header has at most 5", cr.n)
	}
	if _, _, err2 := r.Next(); err2 != err {
		t.Errorf("error is not sticky: %v", err2)
	}
}

// TestReaderHugeRemainingLength: a header that announces 256 MB must not
// make the reader allocate it.
func TestReaderHugeRemainingLength(t *testing.T) {
	hdr := []byte{0x30, 0xff, 0xff, 0xff, 0x7f}
	r := NewReader(bytes.NewReader(hdr), 1<<20)
	if _, _, err := r.Next(); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestReaderUnexpectedEOF(t *testing.T) {
	b := mustAppend(t, &Publish{Topic: "a", Payload: []byte("hello")}, V311)
	for cut := 1; cut < len(b); cut++ {
		r := NewReader(bytes.NewReader(b[:cut]), 0)
		if _, _, err := r.Next(); err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
	big := mustAppend(t, &Publish{Topic: "a", Payload: make([]byte, 100<<10)}, V311)
	r := NewReader(bytes.NewReader(big[:len(big)-1]), 0)
	if _, _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("large packet cut short: %v", err)
	}
}

func TestReaderBadHeader(t *testing.T) {
	for _, b := range [][]byte{
		{0x00, 0x00},                   // reserved type
		{0x62 ^ 0x02, 0x02, 0x00, 0x1}, // PUBREL without its 0010 flags
		{0x36, 0x00},                   // QoS 3
		{0x30, 0x80, 0x80, 0x80, 0x80, 0x01},
	} {
		r := NewReader(bytes.NewReader(b), 0)
		if _, _, err := r.Next(); !errors.Is(err, ErrMalformed) {
			t.Errorf("% x: %v, want ErrMalformed", b, err)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(errReader{boom}, 0)
	if _, _, err := r.Next(); err != boom {
		t.Fatalf("got %v", err)
	}
}

func TestReaderReleased(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte{0xc0, 0x00}), 0)
	r.Release()
	if _, _, err := r.Next(); err == nil {
		t.Fatal("Next after Release succeeded")
	}
}
