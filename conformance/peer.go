package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// ErrClosed is returned by Peer.Next, and wrapped in the Failure of a step,
// when the connection ended: the remote side closed it, it broke, or the
// Peer was closed. The cause (io.EOF, a reset) is wrapped too.
var ErrClosed = errors.New("conformance: connection closed")

// MaxPacketSize is the largest packet a Peer reads by default: 1 MiB, more
// than any check needs and little enough that a broken peer announcing a
// huge packet does not make the kit allocate it. SetMaxPacketSize changes
// it before the first read.
const MaxPacketSize = 1 << 20

// Record is one packet of a transcript.
type Record struct {
	Sent   bool      // true: this side sent it; false: it arrived
	Packet string    // the packet as its String method prints it, or a note for bytes that did not decode
	Raw    []byte    // the packet's bytes
	At     time.Time // when it was written or read
}

func (r Record) String() string {
	dir := "<-"
	if r.Sent {
		dir = "->"
	}
	return dir + " " + r.Packet
}

// transcriptMax bounds a Peer's transcript: older records are dropped.
const transcriptMax = 64

// event is what the reader goroutine hands over: one packet, or the end.
type event struct {
	raw []byte
	pkt codec.Packet // nil when err is set
	err error        // a *codec.Error for bytes that did not decode; ErrClosed-wrapped at the end
	end bool         // the connection ended; no event follows
}

// Peer is one side of a connection driven by scripts: it writes packets to
// conn and reads the packets of the other side. It reads only when a step
// (or Next) asks for a packet, one packet at a time, so a Peer that is not
// asked to read applies backpressure like a peer that stopped reading. Its
// reader goroutine starts at the first read and exits when the connection
// ends or Close is called, which Close waits for. A read that a deadline
// cut short stays in flight: its packet is the next one returned. A Peer is
// safe for use by one goroutine at a time.
type Peer struct {
	conn    net.Conn
	version codec.Version
	remote  codec.Role
	maxSize int

	startOnce sync.Once
	want      chan struct{} // asks the reader goroutine for one packet
	asked     bool          // a packet was asked for and not yet taken
	in        chan event
	quit      chan struct{}
	readerWG  sync.WaitGroup
	closeOnce sync.Once

	ended    bool  // the end event was taken from in
	endErr   error // the error of the end event
	deferred []event

	mu         sync.Mutex
	transcript []Record
	steps      int
}

// NewPeer returns a Peer that speaks version v on conn. remote is the role
// of the other side (codec.RoleServer when this Peer plays a client): the
// packets it sends are decoded with the codec's direction rules for that
// role; codec.RoleAny skips them.
func NewPeer(conn net.Conn, v codec.Version, remote codec.Role) *Peer {
	return &Peer{conn: conn, version: v, remote: remote, maxSize: MaxPacketSize,
		want: make(chan struct{}), in: make(chan event, 1), quit: make(chan struct{})}
}

// Version returns the protocol version the Peer speaks.
func (p *Peer) Version() codec.Version { return p.version }

// Conn returns the Peer's connection.
func (p *Peer) Conn() net.Conn { return p.conn }

// SetMaxPacketSize sets the largest packet the Peer reads; a larger one
// ends the connection from the Peer's point of view with an error
// matching codec.ErrPacketTooLarge. It has effect only before the first
// read.
func (p *Peer) SetMaxPacketSize(n int) { p.maxSize = n }

// Close closes the connection and waits for the reader goroutine to exit.
// It returns the error of closing the connection.
func (p *Peer) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.quit)
		err = p.conn.Close()
	})
	p.readerWG.Wait()
	return err
}

// Transcript returns a copy of the packets sent and received so far (at
// most the last 64).
func (p *Peer) Transcript() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.transcript...)
}

func (p *Peer) record(r Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.transcript) == transcriptMax {
		copy(p.transcript, p.transcript[1:])
		p.transcript = p.transcript[:transcriptMax-1]
	}
	p.transcript = append(p.transcript, r)
}

func (p *Peer) start() {
	p.startOnce.Do(func() {
		p.readerWG.Add(1)
		go p.read()
	})
}

// read is the reader goroutine: it reads one packet each time it is asked.
// It exits when the connection returns an error (the remote side closed
// it, or Close closed it) after handing over the end event, or when Close
// is called while it waits.
func (p *Peer) read() {
	defer p.readerWG.Done()
	r := codec.NewReader(p.conn, p.maxSize)
	dec := codec.Decoder{Version: p.version, From: p.remote}
	for {
		select {
		case <-p.want:
		case <-p.quit:
			return
		}
		_, b, err := r.Next()
		var ev event
		if err != nil {
			ev = event{end: true, err: fmt.Errorf("%w: %w", ErrClosed, err)}
			if errors.Is(err, io.EOF) {
				ev.err = fmt.Errorf("%w by the peer (EOF)", ErrClosed)
			}
		} else {
			ev.raw = append([]byte(nil), b...)
			pkt, _, derr := dec.Decode(ev.raw)
			if derr != nil {
				ev.err = derr
			} else {
				ev.pkt = codec.Clone(pkt)
			}
		}
		select {
		case p.in <- ev:
		case <-p.quit:
			return
		}
		if ev.end {
			return
		}
	}
}

// next returns the next event, waiting until ctx is done or until the
// optional deadline passes (ok false then, with a nil error for the
// deadline and ctx.Err() for the context).
func (p *Peer) next(ctx context.Context, until time.Time) (ev event, ok bool, err error) {
	if len(p.deferred) > 0 {
		ev = p.deferred[0]
		p.deferred = p.deferred[1:]
		return ev, true, nil
	}
	if p.ended {
		return event{end: true, err: p.endErr}, true, nil
	}
	p.start()
	if !p.asked {
		select {
		case p.want <- struct{}{}:
			p.asked = true
		case <-p.quit:
			p.ended, p.endErr = true, fmt.Errorf("%w: the Peer was closed", ErrClosed)
			return event{end: true, err: p.endErr}, true, nil
		}
	}
	var timer <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timer = t.C
	}
	select {
	case ev = <-p.in:
		p.asked = false
	case <-ctx.Done():
		return event{}, false, ctx.Err()
	case <-timer:
		return event{}, false, nil
	}
	if ev.end {
		p.ended, p.endErr = true, ev.err
		return ev, true, nil
	}
	rec := Record{Raw: ev.raw, At: time.Now()}
	if ev.err != nil {
		rec.Packet = fmt.Sprintf("% x (does not decode: %v)", clip(ev.raw, 32), ev.err)
	} else {
		rec.Packet = ev.pkt.String()
	}
	p.record(rec)
	return ev, true, nil
}

// Defer hands pkt back to the Peer: the next reads (Next and the steps
// that expect a packet) return the deferred packets first, in the order
// they were deferred, before reading more. A check that waits for one
// packet among others (a PUBREL while the broker already sends the next
// PUBLISH) defers the others.
func (p *Peer) Defer(pkt codec.Packet) {
	p.deferred = append(p.deferred, event{pkt: pkt})
}

// Next returns the next packet of the other side, waiting at most until
// ctx is done. It returns an error wrapping ErrClosed when the connection
// ended, a *codec.Error when the bytes did not decode, and ctx.Err() when
// the context ended first. The packet is the Peer's own copy.
func (p *Peer) Next(ctx context.Context) (codec.Packet, error) {
	ev, _, err := p.next(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	if ev.err != nil {
		return nil, ev.err
	}
	return ev.pkt, nil
}

// Send encodes pkt for the Peer's version and writes it, with the context's
// deadline as write deadline. It returns the codec's *codec.Error when the
// packet does not encode, or the write error.
func (p *Peer) Send(ctx context.Context, pkt codec.Packet) error {
	b, err := pkt.Append(nil, p.version)
	if err != nil {
		return err
	}
	return p.write(ctx, b, pkt.String())
}

// SendBytes writes b as it is (a packet, several, or a fragment), with the
// context's deadline as write deadline. It returns the write error.
func (p *Peer) SendBytes(ctx context.Context, b []byte) error {
	return p.write(ctx, b, fmt.Sprintf("bytes % x", clip(b, 32)))
}

func (p *Peer) write(ctx context.Context, b []byte, desc string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	p.conn.SetWriteDeadline(dl) // a conn without deadlines still writes
	p.record(Record{Sent: true, Packet: desc, Raw: append([]byte(nil), b...), At: time.Now()})
	_, err := p.conn.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
