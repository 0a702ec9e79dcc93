package client

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// TestNextReadClass: a read that fills its buffer makes the next one larger
// (up to 32 KiB); one that uses under a quarter makes the next the smallest
// class that holds twice as much.
func TestNextReadClass(t *testing.T) {
	for _, tc := range []struct{ class, n, want int }{
		{0, 512, 1},        // full: grow
		{1, 2048, 2},       // full: grow
		{3, 32768, 3},      // full at the top: stay
		{0, 2, 0},          // a PINGRESP: stay small
		{3, 2, 0},          // quiet after a burst: back to 512 B at once
		{3, 3000, 2},       // under a quarter of 32 KiB: the class holding 6000 B
		{3, 9000, 3},       // over a quarter: stay
		{2, 1500, 2},       // under a quarter of 8 KiB, but 3000 B need 8 KiB
		{1, 511, 1},        // not under a quarter of 2 KiB: stay
		{1, 100, 0},        // under a quarter: 512 B
		{2, 0, 0},          // end of stream
		{0, 511, 0},        // not full: stay
		{2, 8192 - 1, 2},   // nearly full: stay
		{2, 8192 + 0, 3},   // full: grow
		{1, 2048 / 4, 1},   // exactly a quarter: stay
		{1, 2048/4 - 1, 1}, // 1022 B wanted: 2 KiB
	} {
		if got := nextReadClass(tc.class, tc.n); got != tc.want {
			t.Errorf("nextReadClass(%d, %d) = %d, want %d", tc.class, tc.n, got, tc.want)
		}
	}
}

// TestKeepReadBuf: a large read buffer stays with the connection only while
// the reader's next read uses its size; one a PINGRESP landed in goes back
// to the pool.
func TestKeepReadBuf(t *testing.T) {
	for _, tc := range []struct {
		class, n int
		want     bool
	}{
		{3, 32768, true}, // a full read at the top: the next is as large
		{3, 9000, true},  // over a quarter: the next read uses it again
		{3, 2, false},    // a PINGRESP after a burst
		{3, 3000, false}, // the next read wants 8 KiB
		{2, 8192, false}, // full: the next read wants 32 KiB
		{1, 600, true},
		{0, 512, false}, // the smallest class always goes back
		{0, 2, false},
	} {
		b := make([]byte, tc.n, readClassSize(tc.class))
		if got := keepReadBuf(b, nextReadClass(tc.class, tc.n)); got != tc.want {
			t.Errorf("keepReadBuf(%d of %d B) = %v, want %v", tc.n, cap(b), got, tc.want)
		}
	}
}

// TestIdleClientHoldsLittle: after a burst of 1 KiB messages has been read
// and consumed, an idle client has no writer or notifier goroutine left;
// once keep alive has come due, its read, write and partial packet buffers
// and its subscription's queue are small again.
func TestIdleClientHoldsLittle(t *testing.T) {
	run(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
		defer cancel()
		states := make(chan StateChange, 16)
		c, n := newTest5(t, Config5{Config: Config{OnStateChange: func(sc StateChange) { states <- sc }}})
		p, _ := connect5(t, c, n, nil)
		sc := make(chan *Subscription, 1)
		go func() {
			s, err := c.Subscribe(ctx, []string{"burst/#"})
			if err != nil {
				t.Error(err)
			}
			sc <- s
		}()
		p.recv()
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}})
		sub := <-sc
		const burst = 200
		payload := bytes.Repeat([]byte{'x'}, 1024)
		msgs := make([]codec.Packet, burst)
		for i := range msgs {
			msgs[i] = &codec.Publish{Topic: "burst/a", Payload: payload}
		}
		sent := p.sendAsync(msgs...)
		for i := range burst {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if len(m.Payload) != len(payload) {
				t.Fatalf("message %d has %d bytes", i, len(m.Payload))
			}
		}
		if err := <-sent; err != nil {
			t.Fatalf("broker write: %v", err)
		}
		for len(states) > 0 {
			<-states
		}
		synctest.Wait()

		var stacks strings.Builder
		pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		for _, fn := range []string{"(*connState).writeBatch", "(*notifier).run"} {
			if strings.Contains(stacks.String(), fn) {
				t.Errorf("an idle client still runs %s", fn)
			}
		}
		// Keep alive comes due: the client sends PINGREQ, and its timer
		// gives back what the burst grew.
		time.Sleep(61 * time.Second)
		p.expect(&codec.Pingreq{})
		p.send(&codec.Pingresp{})
		synctest.Wait()
		var out, spare, pending, bufs int
		ctx2, cancel2 := context.WithTimeout(context.Background(), peerTimeout)
		defer cancel2()
		if err := c.c.run(ctx2, func() {
			out, spare = cap(c.c.out), cap(c.c.spare)
			if cs := c.c.conn; cs != nil {
				pending = cap(cs.pending)
				for range len(cs.free) {
					b := <-cs.free
					bufs += cap(b)
					cs.free <- b
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		sub.mu.Lock()
		slots := len(sub.queue)
		sub.mu.Unlock()
		if slots > idleQueueSlots {
			t.Errorf("the drained subscription keeps %d message slots; want at most %d", slots, idleQueueSlots)
		}
		if out > idleKeep || spare > idleKeep || pending > idleKeep || bufs > readClassSize(0)*readBufs {
			t.Errorf("idle after a keep alive: write buffers %d and %d B, partial packet buffer %d B, spare read buffers %d B; want each at most %d B and read buffers at most %d B",
				out, spare, pending, bufs, idleKeep, readClassSize(0)*readBufs)
		}
		disconnect5(t, c, p)
	})
}

// loopRunning reports whether the client has a loop goroutine and, when
// it has none, whether it keeps its local counters (read under the lock
// the loop that exited released, before any new loop can start).
func loopRunning(c *core) (running, counters bool) {
	c.sc.mu.Lock()
	defer c.sc.mu.Unlock()
	if c.sc.running {
		return true, false
	}
	return false, c.stats.local != nil
}

// TestLoopGoesCold: a client with no work for loopLinger has no loop
// goroutine and no local counters; what arrives then (a message from the
// broker, a Publish, its own keep alive) starts a loop again, and nothing
// is lost or late.
func TestLoopGoesCold(t *testing.T) {
	run(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		sc := make(chan *Subscription, 1)
		go func() {
			s, err := c.Subscribe(ctx, []string{"t/#"}, QoS(1))
			if err != nil {
				t.Error(err)
			}
			sc <- s
		}()
		p.recv()
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
		sub := <-sc
		synctest.Wait()
		if running, _ := loopRunning(c.c); !running {
			t.Fatal("no loop right after SUBACK; it should linger")
		}
		cold := func(when string) {
			t.Helper()
			time.Sleep(loopLinger + time.Millisecond)
			synctest.Wait()
			running, counters := loopRunning(c.c)
			if running {
				t.Fatalf("%s: the loop still runs after %v without work", when, loopLinger)
			}
			if counters {
				t.Errorf("%s: the cold client keeps its local counters", when)
			}
		}
		cold("after SUBACK")

		// The broker's message wakes it.
		p.send(&codec.Publish{Topic: "t/a", Payload: []byte("x"), QoS: 1, PacketID: 7})
		m, err := sub.Next(ctx)
		if err != nil || string(m.Payload) != "x" {
			t.Fatalf("Next = %q, %v", m.Payload, err)
		}
		p.expect(&codec.Puback{PacketID: 7})
		cold("after a message")

		// So does a Publish.
		done := make(chan error, 1)
		go func() { _, err := c.Publish(ctx, "t/b", []byte("y"), QoS(1)); done <- err }()
		pub, ok := p.recv().(*codec.Publish)
		if !ok || pub.Topic != "t/b" {
			t.Fatalf("the peer got %v, want the PUBLISH", pub)
		}
		p.send(&codec.Puback{PacketID: pub.PacketID})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := c.Stats().Sent.Messages[1]; got != 1 {
			t.Errorf("Stats counts %d QoS 1 messages sent, want 1", got)
		}
		cold("after a publish")

		// And keep alive comes due on time with no loop waiting for it.
		start := time.Now()
		time.Sleep(55 * time.Second) // the peer's expect waits less than keep alive
		p.expect(&codec.Pingreq{})
		if waited := time.Since(start); waited > 60*time.Second {
			t.Errorf("PINGREQ after %v idle, keep alive is 60 s", waited)
		}
		p.send(&codec.Pingresp{})
		cold("after keep alive")
		disconnect5(t, c, p)
	})
}

// TestIdleSizeClasses: the two values every client holds for its lifetime
// fit the 2,048-byte allocation class. A field added to either moves it to
// the 2,304- or 2,688-byte class and costs every idle client 256-640 bytes
// (BenchmarkIdleMemory in bench/); move rarely used state behind a pointer
// made at first use instead, as session.Session does with its message
// values.
func TestIdleSizeClasses(t *testing.T) {
	const class = 2048
	if n := unsafe.Sizeof(core{}); n > class {
		t.Errorf("core is %d bytes, over the %d-byte allocation class", n, class)
	}
	if n := unsafe.Sizeof(session.Session{}); n > class {
		t.Errorf("session.Session is %d bytes, over the %d-byte allocation class", n, class)
	}
}
