package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo is a TCP server that writes back what it reads.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func packets(t *testing.T, ps ...codec.Packet) []byte {
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = codec.Append(b, p, codec.V5); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func dial(t *testing.T, p *Proxy) net.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestForwardAndReset(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	in := packets(t, &codec.Pingreq{}, &codec.Publish{Topic: "a", Payload: []byte("x")})
	c.Write(in)
	got := make([]byte, len(in))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, in) {
		t.Fatalf("echo through the proxy: %x %v", got, err)
	}
	// Reset when a PUBACK goes to the broker.
	p.SetRule(func(d Direction, typ codec.Type, n int) Action {
		if d == ToBroker && typ == codec.TypePuback {
			return Reset
		}
		return Forward
	})
	c.Write(packets(t, &codec.Puback{PacketID: 1}))
	if _, err := c.Read(got); err == nil {
		t.Fatal("connection survived a reset")
	}
}

func TestCutAndBlackHole(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetRule(func(d Direction, typ codec.Type, n int) Action {
		if n == 1 && d == ToClient && typ == codec.TypePublish {
			return Cut
		}
		if n == 2 && typ == codec.TypePublish {
			return BlackHole
		}
		return Forward
	})
	c := dial(t, p)
	pub := packets(t, &codec.Publish{Topic: "topic", Payload: make([]byte, 100)})
	c.Write(pub)
	got, _ := io.ReadAll(c)
	if len(got) != len(pub)/2 {
		t.Fatalf("cut delivered %d bytes of %d", len(got), len(pub))
	}
	c2 := dial(t, p)
	c2.Write(pub)
	c2.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var ne net.Error
	if _, err := c2.Read(make([]byte, 10)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("black hole answered: %v", err)
	}
	if p.Connections() != 2 {
		t.Fatalf("connections %d", p.Connections())
	}
}
