package transport_test

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/zmqtt/zmqtt-go/transport"
)

// BenchmarkWrite1KiB compares 1 KiB writes through our conns with the raw
// ones under them: TCP over loopback (transport.Dial against net.Dial) and
// the in-memory Pipe against net.Pipe. A goroutine drains the far end.
// Compare impl=tcp-transport with impl=tcp-raw: the wrapper adds no
// allocation and a few nanoseconds.
func BenchmarkWrite1KiB(b *testing.B) {
	msg := make([]byte, 1024)
	run := func(b *testing.B, w net.Conn, r net.Conn) {
		done := make(chan struct{})
		go func() {
			io.Copy(io.Discard, r)
			close(done)
		}()
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := w.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		w.Close()
		<-done
		r.Close()
	}
	tcpPair := func(b *testing.B, dial func(addr string) (net.Conn, error)) (net.Conn, net.Conn) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := l.Accept()
			accepted <- c
		}()
		w, err := dial(l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		return w, <-accepted
	}
	b.Run("impl=tcp-raw", func(b *testing.B) {
		w, r := tcpPair(b, func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) })
		run(b, w, r)
	})
	b.Run("impl=tcp-transport", func(b *testing.B) {
		w, r := tcpPair(b, func(addr string) (net.Conn, error) {
			return transport.Dial(context.Background(), "mqtt://"+addr, nil)
		})
		run(b, w, r)
	})
	b.Run("impl=netpipe", func(b *testing.B) {
		w, r := net.Pipe()
		run(b, w, r)
	})
	b.Run("impl=pipe", func(b *testing.B) {
		w, r := transport.Pipe()
		run(b, w, r)
	})
}
