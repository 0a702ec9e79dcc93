package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// PipeBuffer is the number of bytes each direction of a Pipe holds before
// Write blocks, like a socket's send buffer.
const PipeBuffer = 64 << 10

// Pipe returns two connected in-memory ends of a full-duplex byte stream,
// for tests and for embedding a broker in the same process. Unlike
// net.Pipe, each direction is buffered (PipeBuffer bytes), so a Write
// returns as soon as its bytes are buffered rather than when the peer reads
// them, as with a socket.
//
// The ends behave like sockets: Read returns what is buffered (blocking
// until there is something), io.EOF once the peer has closed and the buffer
// is drained; Write fails once either end is closed; read and write
// deadlines fail the blocked call with os.ErrDeadlineExceeded and leave the
// conn usable. All errors are *ConnError with Addr "pipe". Pipe starts no
// goroutine and blocks only on channels and timers, so it works inside a
// testing/synctest bubble (create it inside the bubble).
func Pipe() (net.Conn, net.Conn) {
	ab := newPipeBuf()
	ba := newPipeBuf()
	a := &pipeEnd{rx: ba, tx: ab, closed: make(chan struct{}), name: "pipe-a"}
	b := &pipeEnd{rx: ab, tx: ba, closed: make(chan struct{}), name: "pipe-b"}
	a.rd.init()
	a.wd.init()
	b.rd.init()
	b.wd.init()
	a.peer, b.peer = b, a
	return a, b
}

// pipeBuf is one direction of a pipe.
type pipeBuf struct {
	mu       sync.Mutex
	buf      []byte
	off      int           // read offset into buf
	eof      bool          // the writing end closed
	gone     bool          // the reading end closed
	readable chan struct{} // signalled (capacity 1) when bytes arrive or eof/gone is set
	writable chan struct{} // signalled (capacity 1) when room appears or eof/gone is set
}

func newPipeBuf() *pipeBuf {
	return &pipeBuf{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// pipeDeadline is a deadline that closes a channel when it passes.
type pipeDeadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func (d *pipeDeadline) init() { d.cancel = make(chan struct{}) }

func (d *pipeDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to have closed cancel
	}
	d.timer = nil
	expired := isClosed(d.cancel)
	if t.IsZero() {
		if expired {
			d.cancel = make(chan struct{})
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !expired {
			close(d.cancel)
		}
		return
	}
	if expired {
		d.cancel = make(chan struct{})
	}
	c := d.cancel
	d.timer = time.AfterFunc(dur, func() { close(c) })
}

func (d *pipeDeadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

type pipeEnd struct {
	rx, tx    *pipeBuf
	peer      *pipeEnd
	rd, wd    pipeDeadline
	closeOnce sync.Once
	closed    chan struct{}
	name      string
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

func (p *pipeEnd) err(op string, err error) error {
	return &ConnError{Op: op, Addr: "pipe", Err: err}
}

// Read reads buffered bytes from the peer.
func (p *pipeEnd) Read(b []byte) (int, error) {
	for {
		if isClosed(p.closed) {
			return 0, p.err("read", net.ErrClosed)
		}
		rb := p.rx
		rb.mu.Lock()
		if rb.off < len(rb.buf) {
			if len(b) == 0 {
				rb.mu.Unlock()
				return 0, nil
			}
			n := copy(b, rb.buf[rb.off:])
			rb.off += n
			if rb.off == len(rb.buf) {
				rb.buf, rb.off = rb.buf[:0], 0
			}
			rb.mu.Unlock()
			signal(rb.writable)
			return n, nil
		}
		eof := rb.eof
		rb.mu.Unlock()
		if eof {
			return 0, p.err("read", io.EOF)
		}
		dl := p.rd.wait()
		if isClosed(dl) {
			return 0, p.err("read", os.ErrDeadlineExceeded)
		}
		select {
		case <-rb.readable:
		case <-dl:
		case <-p.closed:
		}
	}
}

// Write buffers b for the peer, blocking while the buffer is full.
func (p *pipeEnd) Write(b []byte) (int, error) {
	written := 0
	for {
		if isClosed(p.closed) {
			return written, p.err("write", net.ErrClosed)
		}
		tb := p.tx
		tb.mu.Lock()
		if tb.gone {
			tb.mu.Unlock()
			return written, p.err("write", io.ErrClosedPipe)
		}
		if room := PipeBuffer - (len(tb.buf) - tb.off); room > 0 && written < len(b) {
			if tb.off > 0 && len(tb.buf)+min(room, len(b)-written) > cap(tb.buf) {
				// compact before growing
				n := copy(tb.buf, tb.buf[tb.off:])
				tb.buf, tb.off = tb.buf[:n], 0
			}
			chunk := b[written:min(len(b), written+room)]
			tb.buf = append(tb.buf, chunk...)
			written += len(chunk)
			tb.mu.Unlock()
			signal(tb.readable)
			if written == len(b) {
				return written, nil
			}
			continue
		}
		tb.mu.Unlock()
		if written == len(b) {
			return written, nil
		}
		dl := p.wd.wait()
		if isClosed(dl) {
			return written, p.err("write", os.ErrDeadlineExceeded)
		}
		select {
		case <-tb.writable:
		case <-dl:
		case <-p.closed:
		}
	}
}

// Close closes this end: the peer reads what is buffered and then io.EOF,
// and its writes fail. Blocked calls on this end return net.ErrClosed.
func (p *pipeEnd) Close() error {
	first := false
	p.closeOnce.Do(func() {
		first = true
		close(p.closed)
		p.tx.mu.Lock()
		p.tx.eof = true
		p.tx.mu.Unlock()
		signal(p.tx.readable)
		p.rx.mu.Lock()
		p.rx.gone = true
		p.rx.buf, p.rx.off = nil, 0
		p.rx.mu.Unlock()
		signal(p.rx.writable)
	})
	if !first {
		return p.err("close", net.ErrClosed)
	}
	return nil
}

func (p *pipeEnd) LocalAddr() net.Addr  { return pipeAddr(p.name) }
func (p *pipeEnd) RemoteAddr() net.Addr { return pipeAddr(p.peer.name) }

// SetDeadline sets the read and write deadlines.
func (p *pipeEnd) SetDeadline(t time.Time) error {
	if isClosed(p.closed) {
		return p.err("set deadline", net.ErrClosed)
	}
	p.rd.set(t)
	p.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (p *pipeEnd) SetReadDeadline(t time.Time) error {
	if isClosed(p.closed) {
		return p.err("set deadline", net.ErrClosed)
	}
	p.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline.
func (p *pipeEnd) SetWriteDeadline(t time.Time) error {
	if isClosed(p.closed) {
		return p.err("set deadline", net.ErrClosed)
	}
	p.wd.set(t)
	return nil
}
