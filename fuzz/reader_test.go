package fuzz

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// chunkReader serves data in chunks whose sizes come from sizes, cycling;
// with eofWithData the last chunk comes with io.EOF, as io.Reader allows.
type chunkReader struct {
	data        []byte
	sizes       []byte
	i           int
	eofWithData bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)]) + 1
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	if len(c.data) == 0 && c.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

// FuzzReader feeds arbitrary bytes, in arbitrary chunk sizes, to the framing
// Reader with a maximum packet size. It must not panic; it must hand out
// exactly the packets codec.Frame finds in the bytes, none larger than the
// maximum, in order, and end with the error the framing predicts (io.EOF
// between packets, io.ErrUnexpectedEOF inside one, or the *codec.Error of a
// bad or too large fixed header); errors are sticky.
func FuzzReader(f *testing.F) {
	var stream []byte
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		for _, pkts := range goldenSeeds(f, v) {
			for _, b := range pkts {
				stream = append(stream, b...)
			}
		}
	}
	f.Add(stream, []byte{0, 3, 200, 7}, uint32(1<<16), false)
	f.Add(stream, []byte{255}, uint32(40), true)
	f.Add([]byte{0x30, 0x80, 0x80, 0x80, 0x01, 0x00, 0x01, 'a'}, []byte{1}, uint32(100), false)  // too large
	f.Add([]byte{0xc0, 0x00, 0xc0, 0x80, 0x00}, []byte{0}, uint32(0), false)                     // not minimal
	f.Add([]byte{0x30, 0x05, 0x00, 0x01, 'a', 'h'}, []byte{2}, uint32(1000), true)               // ends inside
	f.Add(append(bytes.Repeat([]byte{0xd0, 0x00}, 10), 0x00, 0x00), []byte{5}, uint32(3), false) // type 0
	// Two packets over the Reader's buffer: the pooled large-buffer path.
	big, err := codec.Append(nil, &codec.Publish{Topic: "big", Payload: make([]byte, 70_000)}, codec.V5)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append(append([]byte{0xc0, 0x00}, big...), big...), []byte{255, 255, 255}, uint32(200_000), false)
	f.Fuzz(func(t *testing.T, data, sizes []byte, maxArg uint32, eofWithData bool) {
		// At most 1 MiB: a header may claim 256 MiB, and the Reader would
		// allocate it under a larger limit.
		max := 2 + int(maxArg%(1<<20))
		r := codec.NewReader(&chunkReader{data: data, sizes: sizes, eofWithData: eofWithData}, max)
		defer r.Release()
		off := 0
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatalf("more packets than bytes")
			}
			h, b, err := r.Next()
			// What the framing says comes next.
			wh, wn, werr := codec.Frame(data[off:], max)
			if werr == nil {
				if err != nil {
					t.Fatalf("packet %d at byte %d: Reader %v, Frame finds %d bytes", i, off, err, wn)
				}
				if h != wh || !bytes.Equal(b, data[off:off+wn]) {
					t.Fatalf("packet %d at byte %d: Reader %+v % x, Frame %+v % x", i, off, h, b, wh, data[off:off+wn])
				}
				if len(b) > max || h.Size() != len(b) {
					t.Fatalf("packet of %d bytes (header %+v) over the maximum %d", len(b), h, max)
				}
				off += wn
				if r.Buffered() < 0 || r.Buffered() > len(data)-off {
					t.Fatalf("Buffered %d with %d bytes left", r.Buffered(), len(data)-off)
				}
				continue
			}
			if err == nil {
				t.Fatalf("packet %d at byte %d: Reader returns %d bytes, Frame: %v", i, off, len(b), werr)
			}
			if b != nil {
				t.Fatalf("bytes returned with error %v", err)
			}
			switch {
			case errors.Is(werr, codec.ErrIncomplete) && off == len(data):
				if err != io.EOF {
					t.Fatalf("at the end: %v, want io.EOF", err)
				}
			case errors.Is(werr, codec.ErrIncomplete):
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("inside a packet: %v, want io.ErrUnexpectedEOF", err)
				}
			default:
				var e, we *codec.Error
				if !errors.As(err, &e) || !errors.As(werr, &we) || e.Reason != we.Reason || e.Type != we.Type || e.Rule != we.Rule {
					t.Fatalf("bad header: Reader %v, Frame %v", err, werr)
				}
				if !errors.Is(err, codec.ErrMalformed) && !errors.Is(err, codec.ErrPacketTooLarge) {
					t.Fatalf("header error of an unexpected kind: %v", err)
				}
			}
			if _, _, err2 := r.Next(); err2 != err {
				t.Fatalf("errors are not sticky: %v then %v", err, err2)
			}
			return
		}
	})
}
