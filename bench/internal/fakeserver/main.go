// Command fakeserver is the far end of the ceiling benchmarks
// (bench/ceiling_test.go): the least an MQTT server can do for one client,
// in a process of its own, so that the CPU time, context switches and
// system calls counted in the benchmark's process are the client's alone.
//
// It listens on 127.0.0.1 on a free port, prints the address as the first
// line of its standard output, accepts one connection, answers CONNECT
// with CONNACK and then, by -mode:
//
//	source  waits for one SUBSCRIBE (a plain topic, no wildcard), grants
//	        the requested QoS, and sends -n PUBLISH packets of -size bytes
//	        at -qos on that topic, as fast as TCP takes them, many packets
//	        per write. At QoS 1 at most the client's Receive Maximum (5.0;
//	        -window on 3.1.1) are unacknowledged. When every message was
//	        written (QoS 0) or acknowledged (QoS 1) it prints "sent N".
//	sink    acknowledges whatever the client sends: SUBACK, UNSUBACK,
//	        PUBACK, PUBREC, PUBCOMP, PINGRESP, the acknowledgements of one
//	        read in one write. Once it has received -n PUBLISH packets (when
//	        -n > 0) it prints "received N".
//
// It exits with status 0 when the client disconnects or the connection
// closes, and with status 1, after a message on standard error, on
// anything the client sends that it cannot take.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/zmqtt/zmqtt-go/codec"
)

const (
	maxPacket = 1 << 20  // larger incoming packets are refused
	writeBuf  = 64 << 10 // bytes of PUBLISH packets per write in source mode
)

type config struct {
	mode   string
	v      codec.Version
	n      int
	size   int
	qos    codec.QoS
	window int
}

func main() {
	var cfg config
	var v string
	var qos int
	flag.StringVar(&cfg.mode, "mode", "sink", "source or sink")
	flag.StringVar(&v, "v", "5", "protocol version: 311 or 5")
	flag.IntVar(&cfg.n, "n", 0, "messages to send (source) or to count (sink)")
	flag.IntVar(&cfg.size, "size", 64, "payload bytes of each message (source)")
	flag.IntVar(&qos, "qos", 0, "QoS of the messages sent, 0 or 1 (source)")
	flag.IntVar(&cfg.window, "window", 1024, "unacknowledged QoS 1 messages at most on 3.1.1 (source)")
	flag.Parse()
	switch v {
	case "311", "3.1.1":
		cfg.v = codec.V311
	case "5", "5.0":
		cfg.v = codec.V5
	default:
		fail(fmt.Errorf("-v %q: want 311 or 5", v))
	}
	if cfg.mode != "source" && cfg.mode != "sink" {
		fail(fmt.Errorf("-mode %q: want source or sink", cfg.mode))
	}
	if qos != 0 && qos != 1 {
		fail(fmt.Errorf("-qos %d: want 0 or 1", qos))
	}
	cfg.qos = codec.QoS(qos)
	if cfg.n < 0 || cfg.size < 0 || cfg.window < 1 {
		fail(errors.New("-n and -size must not be negative, -window must be positive"))
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	fmt.Println(ln.Addr())
	conn, err := ln.Accept()
	ln.Close()
	if err != nil {
		fail(err)
	}
	s := &session{cfg: cfg, conn: conn, in: framer{r: conn, buf: make([]byte, 64<<10)},
		dec: codec.Decoder{Version: cfg.v, From: codec.RoleClient}}
	if cfg.mode == "source" {
		err = s.source()
	} else {
		err = s.sink()
	}
	conn.Close()
	if err != nil && !errors.Is(err, errClosed) {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fakeserver:", err)
	os.Exit(1)
}

// errClosed wraps the errors of reading and writing the connection: the
// client went away, which ends the server normally.
var errClosed = errors.New("connection closed")

type closedError struct{ err error }

func (e closedError) Error() string        { return "connection closed: " + e.err.Error() }
func (e closedError) Is(target error) bool { return target == errClosed }
func (e closedError) Unwrap() error        { return e.err }

// framer cuts the bytes of the connection into whole packets; a packet may
// arrive over any number of reads.
type framer struct {
	r        io.Reader
	buf      []byte
	off, end int // buf[off:end] is read and not yet returned
}

// ready reports whether a whole packet (or a malformed header) is waiting
// in the buffer: next would return without reading.
func (f *framer) ready() bool {
	_, _, err := codec.Frame(f.buf[f.off:f.end], maxPacket)
	return !errors.Is(err, codec.ErrIncomplete)
}

// next returns the next whole packet, reading as much as it needs. The
// bytes are valid until the next call.
func (f *framer) next() ([]byte, error) {
	for {
		h, n, err := codec.Frame(f.buf[f.off:f.end], maxPacket)
		if err == nil {
			p := f.buf[f.off : f.off+n]
			f.off += n
			return p, nil
		}
		if !errors.Is(err, codec.ErrIncomplete) {
			return nil, err
		}
		if f.off > 0 {
			f.end = copy(f.buf, f.buf[f.off:f.end])
			f.off = 0
		}
		if need := h.Size(); need > len(f.buf) {
			f.buf = append(f.buf[:f.end], make([]byte, need-f.end)...)
		}
		k, err := f.r.Read(f.buf[f.end:])
		f.end += k
		if err != nil && k == 0 {
			return nil, closedError{err}
		}
	}
}

type session struct {
	cfg  config
	conn net.Conn
	in   framer
	dec  codec.Decoder

	wmu sync.Mutex // one writer at a time on conn
	out []byte     // acknowledgements waiting to be written; under wmu in source mode
}

func (s *session) write(b []byte) error {
	if _, err := s.conn.Write(b); err != nil {
		return closedError{err}
	}
	return nil
}

func (s *session) add(p codec.Packet) error {
	var err error
	s.out, err = codec.Append(s.out, p, s.cfg.v)
	return err
}

// flush writes the waiting acknowledgements.
func (s *session) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	err := s.write(s.out)
	s.out = s.out[:0]
	return err
}

// read decodes the next packet; it is valid until the next read.
func (s *session) read() (codec.Packet, error) {
	raw, err := s.in.next()
	if err != nil {
		return nil, err
	}
	p, _, err := s.dec.Decode(raw)
	return p, err
}

// connect takes the CONNECT, answers it and returns the client's Receive
// Maximum (65,535 when it sent none, or on 3.1.1).
func (s *session) connect() (int, error) {
	p, err := s.read()
	if err != nil {
		return 0, err
	}
	c, ok := p.(*codec.Connect)
	if !ok {
		return 0, fmt.Errorf("first packet is %v, not CONNECT", p.Type())
	}
	recvMax := 65535
	if s.cfg.v == codec.V5 && c.Props.ReceiveMaximum != 0 {
		recvMax = int(c.Props.ReceiveMaximum)
	}
	if err := s.add(&codec.Connack{}); err != nil {
		return 0, err
	}
	return recvMax, s.flush()
}

func subackFor(p *codec.Subscribe) *codec.Suback {
	a := &codec.Suback{PacketID: p.PacketID}
	for _, sub := range p.Subscriptions {
		a.ReasonCodes = append(a.ReasonCodes, codec.ReasonCode(sub.QoS))
	}
	return a
}

func unsubackFor(p *codec.Unsubscribe, v codec.Version) *codec.Unsuback {
	a := &codec.Unsuback{PacketID: p.PacketID}
	if v == codec.V5 {
		a.ReasonCodes = make([]codec.ReasonCode, len(p.Filters))
	}
	return a
}

// sink acknowledges everything until the client disconnects.
func (s *session) sink() error {
	if _, err := s.connect(); err != nil {
		return err
	}
	received := 0
	for {
		p, err := s.read()
		if err != nil {
			return err
		}
		switch p := p.(type) {
		case *codec.Publish:
			received++
			switch p.QoS {
			case 1:
				err = s.add(&codec.Puback{PacketID: p.PacketID})
			case 2:
				err = s.add(&codec.Pubrec{PacketID: p.PacketID})
			}
			if received == s.cfg.n {
				fmt.Printf("received %d\n", received)
			}
		case *codec.Pubrel:
			err = s.add(&codec.Pubcomp{PacketID: p.PacketID})
		case *codec.Subscribe:
			err = s.add(subackFor(p))
		case *codec.Unsubscribe:
			err = s.add(unsubackFor(p, s.cfg.v))
		case *codec.Pingreq:
			err = s.add(&codec.Pingresp{})
		case *codec.Disconnect:
			return s.flush()
		default:
			return fmt.Errorf("unexpected %v", p.Type())
		}
		if err != nil {
			return err
		}
		if !s.in.ready() {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
}

// source sends the messages to the subscription and takes their
// acknowledgements until the client disconnects.
func (s *session) source() error {
	recvMax, err := s.connect()
	if err != nil {
		return err
	}
	window := min(recvMax, 65535)
	if s.cfg.v == codec.V311 {
		window = min(s.cfg.window, 65535)
	}
	var topic string
	for topic == "" {
		p, err := s.read()
		if err != nil {
			return err
		}
		switch p := p.(type) {
		case *codec.Subscribe:
			sub := p.Subscriptions[0]
			if err := codec.ValidateTopicName(sub.Filter); err != nil {
				return fmt.Errorf("source mode needs a plain topic, not the filter %q", sub.Filter)
			}
			if sub.QoS < s.cfg.qos {
				return fmt.Errorf("subscription at QoS %d, below -qos %d", sub.QoS, s.cfg.qos)
			}
			topic = sub.Filter
			err = s.add(subackFor(p))
		case *codec.Pingreq:
			err = s.add(&codec.Pingresp{})
		case *codec.Disconnect:
			return nil
		default:
			return fmt.Errorf("unexpected %v before SUBSCRIBE", p.Type())
		}
		if err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
	}

	f := &flow{window: window}
	f.cond.L = &f.mu
	sent := make(chan error, 1)
	go func() { sent <- s.send(topic, f) }()
	err = s.acks(f)
	// The client is gone or broke the protocol: stop the sender, which may
	// be blocked in a write, and wait for it.
	f.mu.Lock()
	f.closed = true
	f.cond.Broadcast()
	f.mu.Unlock()
	s.conn.Close()
	if serr := <-sent; err == nil && serr != nil && !errors.Is(serr, errClosed) {
		err = serr
	}
	return err
}

// flow is the QoS 1 window of the source: the packet identifiers in
// flight.
type flow struct {
	mu       sync.Mutex
	cond     sync.Cond // signalled when a slot frees or closed is set
	inflight [65536]bool
	count    int // true entries of inflight
	window   int
	closed   bool
	last     uint16 // the identifier given last
}

// take marks k free identifiers in flight and calls put with each, in
// order; the caller holds mu and has checked count+k <= window.
func (f *flow) take(k int, put func(i int, id uint16)) {
	for i := range k {
		id := f.last
		for {
			id++
			if id == 0 {
				id = 1
			}
			if !f.inflight[id] {
				break
			}
		}
		f.inflight[id] = true
		f.last = id
		put(i, id)
	}
	f.count += k
}

// send writes cfg.n messages, writeBuf bytes at a time, and prints "sent
// N" once all are written (QoS 0) or acknowledged (QoS 1).
func (s *session) send(topic string, f *flow) error {
	cfg := s.cfg
	pkt := &codec.Publish{Topic: topic, QoS: cfg.qos, Payload: make([]byte, cfg.size)}
	if cfg.qos > 0 {
		pkt.PacketID = 1
	}
	one, err := codec.Append(nil, pkt, cfg.v)
	if err != nil {
		return err
	}
	// The packet identifier follows the fixed header and the topic.
	h, err := codec.ParseHeader(one)
	if err != nil {
		return err
	}
	idAt := h.Len + 2 + len(topic)
	per := max(writeBuf/len(one), 1)
	buf := make([]byte, 0, per*len(one))
	for range per {
		buf = append(buf, one...)
	}
	for left := cfg.n; left > 0; {
		k := min(left, per)
		if cfg.qos > 0 {
			f.mu.Lock()
			for f.count >= f.window && !f.closed {
				f.cond.Wait()
			}
			if f.closed {
				f.mu.Unlock()
				return nil
			}
			k = min(k, f.window-f.count)
			f.take(k, func(i int, id uint16) {
				at := i*len(one) + idAt
				buf[at], buf[at+1] = byte(id>>8), byte(id)
			})
			f.mu.Unlock()
		}
		s.wmu.Lock()
		err := s.write(buf[:k*len(one)])
		s.wmu.Unlock()
		if err != nil {
			return err
		}
		left -= k
	}
	if cfg.qos > 0 {
		f.mu.Lock()
		for f.count > 0 && !f.closed {
			f.cond.Wait()
		}
		closed := f.closed
		f.mu.Unlock()
		if closed {
			return nil
		}
	}
	fmt.Printf("sent %d\n", cfg.n)
	return nil
}

// acks reads what the client sends while the messages go out: PUBACK frees
// a slot of the window; PINGREQ and UNSUBSCRIBE are answered.
func (s *session) acks(f *flow) error {
	for {
		p, err := s.read()
		if err != nil {
			return err
		}
		var reply codec.Packet
		switch p := p.(type) {
		case *codec.Puback:
			f.mu.Lock()
			ok := f.inflight[p.PacketID]
			if ok {
				f.inflight[p.PacketID] = false
				f.count--
				f.cond.Broadcast()
			}
			f.mu.Unlock()
			if !ok {
				return fmt.Errorf("PUBACK of packet identifier %d, not in flight", p.PacketID)
			}
		case *codec.Pingreq:
			reply = &codec.Pingresp{}
		case *codec.Unsubscribe:
			reply = unsubackFor(p, s.cfg.v)
		case *codec.Disconnect:
			return nil
		default:
			return fmt.Errorf("unexpected %v", p.Type())
		}
		if reply != nil {
			s.wmu.Lock()
			err := s.add(reply)
			if err == nil {
				err = s.flush()
			}
			s.wmu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}
