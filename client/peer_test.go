package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/transport"
)

// peer is a scripted broker on the far end of an in-memory pipe: tests say
// what it must receive and what it sends, packet by packet.
type peer struct {
	t    *testing.T
	v    codec.Version
	conn net.Conn
	r    *codec.Reader
	d    codec.Decoder
}

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
	n.conns <- &peer{t: n.t, v: n.v, conn: s, r: codec.NewReader(s, 0), d: codec.Decoder{Version: n.v, From: codec.RoleClient}}
	return c, nil
}

// accept waits for the client's next connection.
func (n *network) accept() *peer {
	n.t.Helper()
	select {
	case p := <-n.conns:
		return p
	case <-time.After(time.Hour):
		n.t.Fatal("the client did not dial")
		return nil
	}
}

var pktOpts = cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(codec.Properties{}, "Present")}

// recv reads the next packet the client sent.
func (p *peer) recv() codec.Packet {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(time.Hour))
	_, b, err := p.r.Next()
	if err != nil {
		p.t.Fatalf("broker read: %v", err)
	}
	pk, _, err := p.d.Decode(b)
	if err != nil {
		p.t.Fatalf("client sent an invalid packet % x: %v", b, err)
	}
	return codec.Clone(pk)
}

// expect checks the client's next packet.
func (p *peer) expect(want codec.Packet) codec.Packet {
	p.t.Helper()
	got := p.recv()
	if diff := cmp.Diff(want, got, pktOpts); diff != "" {
		p.t.Fatalf("client sent (-want +got):\n%s", diff)
	}
	return got
}

// send writes packets to the client.
func (p *peer) send(pkts ...codec.Packet) {
	p.t.Helper()
	var b []byte
	for _, pk := range pkts {
		var err error
		if b, err = codec.Append(b, pk, p.v); err != nil {
			p.t.Fatalf("encode %v: %v", pk, err)
		}
	}
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatalf("broker write: %v", err)
	}
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

// closed checks that the client closed the connection (the read ends).
func (p *peer) closed() {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(time.Hour))
	if _, _, err := p.r.Next(); err == nil {
		p.t.Fatal("the client sent a packet; want the connection closed")
	}
}

// quietFor checks that the client sends nothing for d.
func (p *peer) quietFor(d time.Duration) {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(d))
	_, b, err := p.r.Next()
	if err == nil {
		p.t.Fatalf("client sent % x while it should be quiet", b)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		p.t.Fatalf("broker read: %v", err)
	}
	p.r = codec.NewReader(p.conn, 0) // the timed-out reader is sticky
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
