package codec

import (
	"errors"
	"io"
	"math/bits"
	"sync"
)

// DefaultReadBufferSize is the size of a Reader's buffer. Packets that fit
// are returned as slices of it; larger ones get a pooled buffer of their own.
const DefaultReadBufferSize = 32 << 10

// Reader takes whole packets off an io.Reader. It reads the fixed header,
// checks the packet's size against a maximum before it reads the body
// (refusing it with an *Error that matches ErrPacketTooLarge), and returns
// the packet's bytes without copying them when they fit in its buffer.
//
// The bytes Next returns are valid until the next call of Next or Release.
// A Reader is not safe for concurrent use. Errors are sticky: after one,
// every call of Next returns it again.
type Reader struct {
	r     io.Reader
	max   int
	buf   []byte
	start int // unread data is buf[start:end]
	end   int
	big   *[]byte // pooled buffer that holds the last packet, if it was large
	err   error
}

var readBufPool = sync.Pool{New: func() any { b := make([]byte, DefaultReadBufferSize); return &b }}

// Pools of large packet buffers, one per power of two from 64 KiB.
const bigMinShift = 16

var bigPools [29 - bigMinShift + 1]sync.Pool

func getBig(n int) *[]byte {
	shift := bits.Len(uint(n - 1))
	if shift < bigMinShift {
		shift = bigMinShift
	}
	i := shift - bigMinShift
	if v := bigPools[i].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<shift)
	return &b
}

func putBig(b *[]byte) {
	shift := bits.Len(uint(cap(*b) - 1))
	if i := shift - bigMinShift; i >= 0 && i < len(bigPools) && cap(*b) == 1<<shift {
		bigPools[i].Put(b)
	}
}

// NewReader returns a Reader of r that refuses packets larger than
// maxPacketSize bytes (the whole packet, fixed header included).
// maxPacketSize <= 0 means MaxPacketSize, the protocol's own limit.
func NewReader(r io.Reader, maxPacketSize int) *Reader {
	if maxPacketSize <= 0 || maxPacketSize > MaxPacketSize {
		maxPacketSize = MaxPacketSize
	}
	return &Reader{r: r, max: maxPacketSize, buf: *readBufPool.Get().(*[]byte)}
}

// SetMaxPacketSize changes the largest packet Next accepts from the next
// packet on; n <= 0 means MaxPacketSize.
func (r *Reader) SetMaxPacketSize(n int) {
	if n <= 0 || n > MaxPacketSize {
		n = MaxPacketSize
	}
	r.max = n
}

// Buffered returns the number of bytes read from the underlying reader that
// Next has not returned yet.
func (r *Reader) Buffered() int { return r.end - r.start }

// Next returns the next whole packet: its fixed header and all its bytes,
// fixed header included. It returns io.EOF when the stream ends between
// packets, io.ErrUnexpectedEOF when it ends inside one, the *Error of
// ParseHeader or Frame for a bad or too large fixed header, and any error of
// the underlying reader.
func (r *Reader) Next() (Header, []byte, error) {
	if r.big != nil {
		putBig(r.big)
		r.big = nil
	}
	if r.err != nil {
		return Header{}, nil, r.err
	}
	for {
		h, n, err := Frame(r.buf[r.start:r.end], r.max)
		if err == nil {
			b := r.buf[r.start : r.start+n : r.start+n]
			r.start += n
			return h, b, nil
		}
		if !errors.Is(err, ErrIncomplete) {
			r.err = err
			return Header{}, nil, err
		}
		if h.Len > 0 && h.Size() > len(r.buf) {
			return r.readBig(h)
		}
		if err := r.fill(); err != nil {
			return Header{}, nil, err
		}
	}
}

// fill reads more bytes, moving the unread ones to the front first when the
// buffer has no room left.
func (r *Reader) fill() error {
	if r.start > 0 && (r.end == len(r.buf) || r.start == r.end) {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if err == io.EOF && r.end > r.start {
		err = io.ErrUnexpectedEOF
	}
	r.err = err
	return err
}

// readBig reads a packet larger than the buffer into a pooled buffer.
func (r *Reader) readBig(h Header) (Header, []byte, error) {
	r.big = getBig(h.Size())
	b := *r.big
	have := copy(b, r.buf[r.start:r.end])
	r.start, r.end = 0, 0
	if _, err := io.ReadFull(r.r, b[have:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
		return Header{}, nil, err
	}
	return h, b[:len(b):len(b)], nil
}

// Release returns the Reader's buffers to their pools. The Reader must not
// be used afterwards, nor any bytes it returned.
func (r *Reader) Release() {
	if r.big != nil {
		putBig(r.big)
		r.big = nil
	}
	if r.buf != nil {
		b := r.buf[:cap(r.buf)]
		readBufPool.Put(&b)
		r.buf = nil
	}
	if r.err == nil {
		r.err = errReleased
	}
}

var errReleased = errors.New("zmqtt: reader released")
