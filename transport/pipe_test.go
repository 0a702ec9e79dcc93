package transport_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zmqtt/zmqtt-go/transport"
)

func TestPipeBuffersWrites(t *testing.T) {
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	// Unlike net.Pipe, a write returns before anyone reads.
	if n, err := a.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := a.Write([]byte(" world")); n != 6 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	buf := make([]byte, 64)
	n, err := b.Read(buf)
	if err != nil || string(buf[:n]) != "hello world" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	// Both directions are independent.
	b.Write([]byte("back"))
	n, _ = a.Read(buf)
	if string(buf[:n]) != "back" {
		t.Fatalf("reverse direction read %q", buf[:n])
	}
	if a.LocalAddr().String() != b.RemoteAddr().String() || a.LocalAddr().Network() != "pipe" {
		t.Errorf("addresses %v/%v and %v/%v do not mirror", a.LocalAddr(), a.RemoteAddr(), b.LocalAddr(), b.RemoteAddr())
	}
}

func TestPipeReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := transport.Pipe()
		defer a.Close()
		defer b.Close()
		start := time.Now()
		a.SetReadDeadline(start.Add(3 * time.Second))
		_, err := a.Read(make([]byte, 8))
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, transport.ErrConnectionLost) {
			t.Fatalf("Read after the deadline: %v", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%v is not a net.Error timeout", err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("the deadline fired after %v, want 3s", got)
		}
		// The conn stays usable: clear the deadline and read.
		a.SetReadDeadline(time.Time{})
		b.Write([]byte("late"))
		buf := make([]byte, 8)
		if n, err := a.Read(buf); err != nil || string(buf[:n]) != "late" {
			t.Fatalf("Read after clearing the deadline = %q, %v", buf[:n], err)
		}
		// A deadline in the past fails at once; extending a deadline
		// while a read waits keeps it waiting.
		a.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := a.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("past deadline: %v", err)
		}
		a.SetReadDeadline(time.Now().Add(time.Second))
		done := make(chan error, 1)
		go func() {
			_, err := a.Read(buf)
			done <- err
		}()
		synctest.Wait()
		a.SetReadDeadline(time.Now().Add(10 * time.Second))
		<-time.After(5 * time.Second) // the bubble's fake clock moves past the first deadline
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("the read returned %v after its deadline was extended", err)
		default:
		}
		b.Write([]byte("x"))
		if err := <-done; err != nil {
			t.Fatalf("Read: %v", err)
		}
	})
}

func TestPipeWriteBlocksWhenFullUntilDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := transport.Pipe()
		defer a.Close()
		defer b.Close()
		a.SetWriteDeadline(time.Now().Add(time.Second))
		big := make([]byte, transport.PipeBuffer+100)
		n, err := a.Write(big)
		if n != transport.PipeBuffer || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write into a full pipe = %d, %v; want %d and a deadline error", n, err, transport.PipeBuffer)
		}
		// A reader makes room and a blocked writer goes on.
		a.SetWriteDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			_, err := a.Write(make([]byte, 500))
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Write to a full pipe returned %v", err)
		default:
		}
		if _, err := io.ReadFull(b, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Write after room appeared: %v", err)
		}
	})
}

func TestPipeClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := transport.Pipe()
		// Buffered bytes are still read after the writer closes, then EOF.
		a.Write([]byte("last words"))
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(b)
		if !errors.Is(err, io.EOF) || !errors.Is(err, transport.ErrConnectionLost) {
			t.Fatalf("ReadAll after close: %v, want a ConnError wrapping io.EOF", err)
		}
		if string(got) != "last words" {
			t.Fatalf("read %q after close", got)
		}
		// Writing to a closed peer fails.
		if _, err := b.Write([]byte("anyone?")); !errors.Is(err, transport.ErrConnectionLost) {
			t.Fatalf("Write to a closed peer: %v", err)
		}
		// Calls on the closed end fail with net.ErrClosed; Close twice too.
		if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read on a closed end: %v", err)
		}
		if err := a.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
		if err := a.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SetDeadline on a closed end: %v", err)
		}
		b.Close()

		// Close from the other side wakes a blocked reader and writer.
		c, d := transport.Pipe()
		readErr := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			readErr <- err
		}()
		writeErr := make(chan error, 1)
		go func() {
			_, err := c.Write(make([]byte, transport.PipeBuffer*2))
			writeErr <- err
		}()
		synctest.Wait()
		d.Close()
		if err := <-readErr; !errors.Is(err, io.EOF) {
			t.Fatalf("blocked Read after the peer closed: %v", err)
		}
		if err := <-writeErr; !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("blocked Write after the peer closed: %v", err)
		}
		// Close of the own end wakes a blocked reader too.
		e, f := transport.Pipe()
		go func() {
			_, err := e.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait()
		e.Close()
		if err := <-readErr; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Read after own Close: %v", err)
		}
		f.Close()
	})
}

// TestPipeConcurrentStream sends 4 MiB each way with concurrent readers
// and writers in odd chunk sizes; run under -race.
func TestPipeConcurrentStream(t *testing.T) {
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	const size = 4 << 20
	ab := make([]byte, size)
	ba := make([]byte, size)
	rand.Read(ab)
	rand.Read(ba)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	write := func(c net.Conn, data []byte) {
		defer wg.Done()
		for off := 0; off < len(data); {
			n := min(len(data)-off, 1+off%7919)
			if _, err := c.Write(data[off : off+n]); err != nil {
				errs <- err
				return
			}
			off += n
		}
	}
	read := func(c net.Conn, want []byte) {
		defer wg.Done()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			errs <- err
			return
		}
		if !bytes.Equal(got, want) {
			errs <- errors.New("the stream arrived changed")
		}
	}
	wg.Add(4)
	go write(a, ab)
	go write(b, ba)
	go read(b, ab)
	go read(a, ba)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
