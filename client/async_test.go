package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"unsafe"

	"github.com/zmqtt/zmqtt-go/codec"
)

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestPublishAsyncHandle: a PublishAsync copies its topic and payload at
// the call, so the caller may reuse their buffers at once (a topic decoded
// by codec views one); the handle's Done and Accepted are open while their
// event is ahead and closed after it, whether asked for before or only
// after; Err and Ack are zero until the PUBACK, then carry its reason code
// and properties, a success code and an error code alike.
func TestPublishAsyncHandle(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)

		buf := []byte("async/tPAYLOAD")
		topic := unsafe.String(&buf[0], len("async/t"))
		h := c.PublishAsync(topic, buf[len(topic):], AtLeastOnce)
		done := h.Done() // asked for while the publish is under way
		copy(buf, "xxxxxxxxxxxxxx")
		p.expect(&codec.Publish{Topic: "async/t", QoS: 1, PacketID: 1, Payload: []byte("PAYLOAD")})
		synctest.Wait()
		if !isClosed(h.Accepted()) {
			t.Fatal("Accepted is open after the message was written")
		}
		if isClosed(done) || h.Err() != nil || h.Ack().Code != 0 {
			t.Fatalf("before the PUBACK: done %v, Err %v, Ack %+v", isClosed(done), h.Err(), h.Ack())
		}
		ack := &codec.Puback{PacketID: 1, ReasonCode: codec.ReasonNoMatchingSubscribers}
		ack.Props.ReasonString = "no subscribers"
		ack.Props.Mark(codec.PropReasonString)
		p.send(ack)
		<-done
		if err := h.Err(); err != nil {
			t.Fatalf("a PUBACK with a success code: %v", err)
		}
		if a := h.Ack(); a.Code != codec.ReasonNoMatchingSubscribers || a.Props.ReasonString != "no subscribers" {
			t.Fatalf("Ack %+v", a)
		}
		if !isClosed(h.Done()) || h.Wait(context.Background()) != nil {
			t.Fatal("Done or Wait after the end")
		}

		// Looked at only after the end: nothing was waiting on it.
		h = c.PublishAsync("async/t", []byte("2"), AtLeastOnce)
		p.expect(&codec.Publish{Topic: "async/t", QoS: 1, PacketID: 2, Payload: []byte("2")})
		p.send(&codec.Puback{PacketID: 2, ReasonCode: codec.ReasonNotAuthorized})
		if err := c.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		var re *ReasonError
		if !isClosed(h.Done()) || !isClosed(h.Accepted()) || !errors.As(h.Err(), &re) || re.Code != codec.ReasonNotAuthorized {
			t.Fatalf("after Drain: done %v, accepted %v, Err %v", isClosed(h.Done()), isClosed(h.Accepted()), h.Err())
		}
		if a := h.Ack(); a.Code != codec.ReasonNotAuthorized || !a.Props.Empty() {
			t.Fatalf("Ack %+v", a)
		}
		if err := h.Wait(context.Background()); !errors.Is(err, re) {
			t.Fatalf("Wait: %v", err)
		}

		// QoS 0 ends when it is handed to the connection.
		h = c.PublishAsync("async/t", nil, AtMostOnce)
		if err := h.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		p.expect(&codec.Publish{Topic: "async/t"})
		disconnect5(t, c, p)
	})
}

// TestPublishAsyncWhileClosing: PublishAsync calls that race with the
// client's close all end, taken in and acknowledged or failed with the
// terminal error; none is left waiting (the loop may end between a call's
// check of the client and its taking the intake's lock).
func TestPublishAsyncWhileClosing(t *testing.T) {
	run(t, func(t *testing.T) {
		// No drain before the DISCONNECT: the publishers never stop adding.
		c, n := newTest5(t, Config5{Config: Config{DrainTimeout: -1}})
		p, _ := connect5(t, c, n, nil)
		var acks atomic.Int64
		go func() { // the broker acknowledges what it gets until the end
			for {
				pk, err := p.cp.Next(context.Background())
				if err != nil {
					return
				}
				if pub, ok := pk.(*codec.Publish); ok {
					if p.cp.Send(context.Background(), &codec.Puback{PacketID: pub.PacketID}) == nil {
						acks.Add(1)
					}
				}
			}
		}()
		const publishers = 4
		handles := make([][]*Publishing, publishers)
		var wg sync.WaitGroup
		started := make(chan struct{}, publishers)
		for i := range publishers {
			wg.Go(func() { // until a call fails at once with the client closed
				var last *Publishing
				for k := 0; ; k++ {
					h := c.PublishAsync("close/t", []byte("x"), AtLeastOnce)
					handles[i] = append(handles[i], h)
					if k == 100 {
						started <- struct{}{}
					}
					switch err := h.Err(); {
					case errors.Is(err, ErrClosed):
						return
					case errors.Is(err, ErrQueueFull) && last != nil:
						<-last.Done() // the intake is full: wait for room
					case err == nil:
						last = h
					}
				}
			})
		}
		for range publishers {
			<-started
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		synctest.Wait()
		acked, failed := 0, 0
		for _, hs := range handles {
			for _, h := range hs {
				if !isClosed(h.Done()) || !isClosed(h.Accepted()) {
					t.Fatalf("a handle left open after the close: done %v, accepted %v", isClosed(h.Done()), isClosed(h.Accepted()))
				}
				switch err := h.Err(); {
				case err == nil:
					acked++
				case errors.Is(err, ErrClosed):
					failed++
				case !errors.Is(err, ErrQueueFull): // the intake full is an answer too
					t.Fatalf("a publish failed: %v", err)
				}
			}
		}
		// A QoS 1 handle ends without error only for a PUBACK.
		if int64(acked) > acks.Load() {
			t.Fatalf("%d handles succeeded, the broker sent %d PUBACKs", acked, acks.Load())
		}
		t.Logf("%d handles acknowledged, %d failed by the close", acked, failed)
	})
}

// TestPublishingEvents: a handle's Done and Accepted channels close when
// their event comes, whether the channel is asked for before the event,
// after it, or while it happens (run it with -race).
func TestPublishingEvents(t *testing.T) {
	ctx := context.Background()
	for range 2000 {
		h := new(Publishing)
		var wg sync.WaitGroup
		for _, ch := range []func() <-chan struct{}{h.Done, h.Accepted} {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(ctx, peerTimeout)
				defer cancel()
				select {
				case <-ch():
				case <-ctx.Done():
					t.Error("a channel asked for around its event never closed")
				}
			})
		}
		h.resolve(result{code: codec.ReasonNoMatchingSubscribers})
		h.accept()
		wg.Wait()
		if t.Failed() {
			return
		}
		if !isClosed(h.Done()) || !isClosed(h.Accepted()) || h.Ack().Code != codec.ReasonNoMatchingSubscribers {
			t.Fatal("after both events")
		}
	}
}

// TestPublishAsyncObservedUserProperty: the user properties an Observer's
// OnPublish sets on a PublishAsync stay with that message, though the
// calls share pooled state: three calls made before the loop takes any
// each carry their own value, after the user property of the call's own
// options.
func TestPublishAsyncObservedUserProperty(t *testing.T) {
	run(t, func(t *testing.T) {
		obs := &Observer{OnPublish: func(ctx context.Context, p *PublishStart) any {
			if err := p.SetUserProperty("seq", p.Topic); err != nil {
				t.Error(err)
			}
			return nil
		}}
		c, n := newTest5(t, Config5{Config: Config{Observer: obs}})
		p, _ := connect5(t, c, n, nil)
		var hs []*Publishing
		for _, topic := range []string{"t/1", "t/2", "t/3"} {
			hs = append(hs, c.PublishAsync(topic, nil, UserProperty("app", "a")))
		}
		for _, topic := range []string{"t/1", "t/2", "t/3"} {
			pub, ok := p.recv().(*codec.Publish)
			if !ok || pub.Topic != topic {
				t.Fatalf("got %v, want a PUBLISH to %s", pub, topic)
			}
			want := []codec.UserProperty{{Key: "app", Value: "a"}, {Key: "seq", Value: topic}}
			if got := pub.Props.User; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("%s carries user properties %v, want %v", topic, got, want)
			}
		}
		for _, h := range hs {
			if err := h.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		disconnect5(t, c, p)
	})
}
