package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
	"github.com/zmqtt/zmqtt-go/transport"
)

// peer is a scripted broker on the far end of an in-memory pipe: tests say
// what it must receive and what it sends, packet by packet. It is a thin
// layer over conformance.Peer (the script kit) that fails the test on the
// kit's *conformance.Failure, which says what was expected and what came.
type peer struct {
	t    *testing.T
	v    codec.Version
	conn net.Conn
	cp   *conformance.Peer
}

// peerTimeout bounds each wait of the scripted broker.
const peerTimeout = 30 * time.Second

// network hands out one pipe per dial; the test takes the broker's ends
// from conns.
type network struct {
	v     codec.Version
	conns chan *peer
	fail  chan error // an error to return from the next dial, if any
	t     *testing.T
}

func newNetwork(t *testing.T, v codec.Version) *network {
	return &network{v: v, conns: make(chan *peer, 8), fail: make(chan error, 8), t: t}
}

func (n *network) dial(ctx context.Context) (net.Conn, error) {
	select {
	case err := <-n.fail:
		return nil, err
	default:
	}
	c, s := transport.Pipe()
	n.conns <- newPeer(n.t, n.v, s)
	return c, nil
}

// newPeer wraps the broker's end of a pipe.
func newPeer(t *testing.T, v codec.Version, s net.Conn) *peer {
	cp := conformance.NewPeer(s, v, codec.RoleClient)
	t.Cleanup(func() { cp.Close() }) // stops the kit's reader goroutine
	return &peer{t: t, v: v, conn: s, cp: cp}
}

// accept waits for the client's next connection.
func (n *network) accept() *peer {
	n.t.Helper()
	select {
	case p := <-n.conns:
		return p
	case <-time.After(peerTimeout):
		n.t.Fatal("the client did not dial")
		return nil
	}
}

func (p *peer) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), peerTimeout)
}

// recv reads the next packet the client sent.
func (p *peer) recv() codec.Packet {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	pk, err := p.cp.Next(ctx)
	if err != nil {
		p.t.Fatalf("broker read: %v", err)
	}
	return pk
}

// expect checks the client's next packet: every field, as
// conformance.Expect compares them.
func (p *peer) expect(want codec.Packet) codec.Packet {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	var got codec.Packet
	keep := conformance.Satisfy(func(pk codec.Packet) string { got = pk; return "" })
	if err := p.cp.Run(ctx, conformance.Expect(want, keep)); err != nil {
		p.t.Fatalf("client sent the wrong packet: %v", err)
	}
	return got
}

// send writes packets to the client.
func (p *peer) send(pkts ...codec.Packet) {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	if err := p.cp.Run(ctx, conformance.SendBytes(p.encode(pkts))); err != nil {
		p.t.Fatalf("broker write: %v", err)
	}
}

// sendAsync writes packets to the client from another goroutine, for a
// test that must read while they are written; the channel gets the
// write's error, which the test checks on its own goroutine.
func (p *peer) sendAsync(pkts ...codec.Packet) <-chan error {
	p.t.Helper()
	b := p.encode(pkts)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := p.ctx()
		defer cancel()
		errc <- p.cp.Run(ctx, conformance.SendBytes(b))
	}()
	return errc
}

// encode appends pkts in the peer's version; it fails the test on a
// packet the codec refuses.
func (p *peer) encode(pkts []codec.Packet) []byte {
	p.t.Helper()
	var b []byte
	for _, pk := range pkts {
		var err error
		if b, err = codec.Append(b, pk, p.v); err != nil {
			p.t.Fatalf("encode %v: %v", pk, err)
		}
	}
	return b
}

// handshake reads the CONNECT and answers with ack (a plain CONNACK when nil).
func (p *peer) handshake(ack *codec.Connack) *codec.Connect {
	p.t.Helper()
	c, ok := p.recv().(*codec.Connect)
	if !ok {
		p.t.Fatal("the first packet is not CONNECT")
	}
	if ack == nil {
		ack = &codec.Connack{}
	}
	p.send(ack)
	return c
}

// closed checks that the client closed the connection without sending
// anything more (a DISCONNECT included).
func (p *peer) closed() {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	if pk, err := p.cp.Next(ctx); !errors.Is(err, conformance.ErrClosed) {
		p.t.Fatalf("got %v, %v; want the connection closed", pk, err)
	}
}

// quietFor checks that the client sends nothing for d.
func (p *peer) quietFor(d time.Duration) {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	if err := p.cp.Run(ctx, conformance.ExpectNothing(d)); err != nil {
		p.t.Fatalf("the client should be quiet: %v", err)
	}
}
