// Package faultproxy is an in-process TCP proxy that understands MQTT
// framing and breaks connections on purpose, for tests: it can reset a
// connection, swallow traffic (a black hole), cut a packet in the middle or
// add latency, at the moment a given packet passes in a given direction.
// It is used by tests only.
package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Direction is the way a packet travels through the proxy.
type Direction int

const (
	ToBroker Direction = iota // client -> broker
	ToClient                  // broker -> client
)

// String returns "client->broker" or "broker->client".
func (d Direction) String() string {
	if d == ToBroker {
		return "client->broker"
	}
	return "broker->client"
}

// Action is what the proxy does with one packet.
type Action int

const (
	Forward   Action = iota // pass it on
	Reset                   // drop it and reset both sides of the connection
	BlackHole               // drop it and everything after, in both directions, without closing
	Cut                     // forward the first half of its bytes, then reset
)

// Rule decides the fate of each packet: it sees the direction, the packet
// type and the connection's number (1 for the first connection through the
// proxy). Rules run on the proxy's goroutines.
type Rule func(dir Direction, t codec.Type, conn int) Action

// Proxy listens on 127.0.0.1 and forwards each connection to a target.
type Proxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	rule    Rule
	observe Observer
	latency time.Duration
	conns   int
	active  map[*link]bool
	wg      sync.WaitGroup
	closed  bool
}

// Start listens on a free port of 127.0.0.1 and forwards to target
// ("host:port").
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, active: make(map[*link]bool)}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetRule replaces the rule; nil forwards everything.
func (p *Proxy) SetRule(r Rule) {
	p.mu.Lock()
	p.rule = r
	p.mu.Unlock()
}

// Observer sees each packet the proxy forwarded, after it was written:
// its direction, the connection's number and its bytes (valid only during
// the call). Observers run on the proxy's goroutines.
type Observer func(dir Direction, conn int, pkt []byte)

// SetObserver replaces the observer; nil observes nothing. Tests use it as
// a witness of what really crossed the wire.
func (p *Proxy) SetObserver(o Observer) {
	p.mu.Lock()
	p.observe = o
	p.mu.Unlock()
}

// SetLatency delays every chunk forwarded by d in each direction.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Connections returns how many connections the proxy has accepted.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// ResetAll resets every open connection.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.active))
	for l := range p.active {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.reset()
	}
}

// Close stops listening, resets every connection and waits for the proxy's
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.ResetAll()
	p.wg.Wait()
	return err
}

// accept is the listener goroutine; it exits when the listener closes.
func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns++
		n := p.conns
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c, n)
	}
}

type link struct {
	client, broker net.Conn
	once           sync.Once
	gone           chan struct{} // closed at reset
	hole           chan struct{} // closed when the link became a black hole
	holeOnce       sync.Once
	stall          chan struct{} // closed when the link stopped reading
	stallOnce      sync.Once
}

func (l *link) reset() {
	l.once.Do(func() {
		for _, c := range []net.Conn{l.client, l.broker} {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, not FIN
			}
			c.Close()
		}
		close(l.gone)
	})
}

func (l *link) blackhole() { l.holeOnce.Do(func() { close(l.hole) }) }
func (l *link) stalled()   { l.stallOnce.Do(func() { close(l.stall) }) }

// BlackHoleAll turns every open connection into a black hole now: the
// proxy goes on reading both sides and drops everything, without closing.
// The client's writes succeed; nothing ever comes back.
func (p *Proxy) BlackHoleAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.active {
		l.blackhole()
	}
}

// StallAll makes every open connection half-open now: the proxy stops
// reading both sides and forwards nothing, without closing, as a peer
// whose host vanished. The client's writes succeed until the socket
// buffers fill, then block.
func (p *Proxy) StallAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.active {
		l.stalled()
	}
}

// serve runs one connection: two pumps, one per direction. It exits when
// both pumps have.
func (p *Proxy) serve(c net.Conn, n int) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	b, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	l := &link{client: c, broker: b, gone: make(chan struct{}), hole: make(chan struct{}), stall: make(chan struct{})}
	p.mu.Lock()
	p.active[l] = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(l, c, b, ToBroker, n) }()
	go func() { defer wg.Done(); p.pump(l, b, c, ToClient, n) }()
	wg.Wait()
	l.reset()
	p.mu.Lock()
	delete(p.active, l)
	p.mu.Unlock()
}

// pump copies whole packets from src to dst, asking the rule about each. It
// exits when src fails or the link is reset; in a black hole it keeps
// reading and drops everything until the link is reset.
func (p *Proxy) pump(l *link, src, dst net.Conn, dir Direction, n int) {
	buf := make([]byte, 0, 64<<10)
	tmp := make([]byte, 32<<10)
	for {
		k, err := src.Read(tmp)
		select {
		case <-l.stall:
			<-l.gone // read nothing more until the link is reset
			return
		default:
		}
		if k > 0 {
			select {
			case <-l.hole:
				continue // swallowed
			default:
			}
			buf = append(buf, tmp[:k]...)
			for len(buf) > 0 {
				h, size, ferr := codec.Frame(buf, 0)
				if errors.Is(ferr, codec.ErrIncomplete) {
					break
				}
				if ferr != nil { // not MQTT: pass the bytes through
					size = len(buf)
				}
				p.mu.Lock()
				rule, lat, obs := p.rule, p.latency, p.observe
				p.mu.Unlock()
				act := Forward
				if rule != nil && ferr == nil {
					act = rule(dir, h.Type, n)
				}
				switch act {
				case Reset:
					l.reset()
					return
				case BlackHole:
					l.blackhole()
					buf = buf[:0]
					continue
				case Cut:
					dst.Write(buf[:size/2])
					l.reset()
					return
				default:
					if lat > 0 {
						time.Sleep(lat)
					}
					if _, err := dst.Write(buf[:size]); err != nil {
						l.reset()
						return
					}
					if obs != nil && ferr == nil {
						obs(dir, n, buf[:size])
					}
				}
				buf = append(buf[:0], buf[size:]...)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				l.reset()
			} else if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}
