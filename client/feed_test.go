package client

// Feed tests: a Subscription filled without a broker keeps the client's
// queue and acknowledgement rules.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// push queues QoS 1 messages on f, one per topic.
func push(t *testing.T, f *Feed, topics ...string) {
	t.Helper()
	for _, tp := range topics {
		if err := f.Push(context.Background(), Message{Topic: tp, QoS: AtLeastOnce}); err != nil {
			t.Fatalf("Push %s: %v", tp, err)
		}
	}
}

// TestFeedQueueAndAcks: a Feed's subscription keeps the client's rules: a
// bounded queue (Push waits while it is full), automatic acknowledgement
// when queued, or with ManualAck at Message.Ack, once; End lets the queue
// be read before its error; Push after End fails.
func TestFeedQueueAndAcks(t *testing.T) {
	run(t, func(t *testing.T) {
		var mu sync.Mutex
		var acked []string
		onAck := func(m Message) {
			mu.Lock()
			acked = append(acked, m.Topic)
			mu.Unlock()
		}
		ackedNow := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(acked)
		}
		ctx := context.Background()
		auto := NewFeed(FeedConfig{QueueSize: 2, OnAck: onAck})
		push(t, auto, "1", "2")
		// The queue is full: Push waits until Next makes room.
		pushed := make(chan error, 1)
		go func() { pushed <- auto.Push(ctx, Message{Topic: "3", QoS: ExactlyOnce}) }()
		synctest.Wait()
		select {
		case err := <-pushed:
			t.Fatalf("Push into a full queue returned %v without waiting", err)
		default:
		}
		if got := ackedNow(); !slices.Equal(got, []string{"1", "2"}) {
			t.Fatalf("acknowledged %q; want the two messages queued", got)
		}
		sub := auto.Subscription()
		if m, _ := sub.Next(ctx); m.Topic != "1" {
			t.Fatalf("Next %q", m.Topic)
		}
		if err := <-pushed; err != nil {
			t.Fatalf("the waiting Push: %v", err)
		}
		if got := ackedNow(); !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Fatalf("acknowledged %q; want 3 once queued", got)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := auto.Push(wctx, Message{Topic: "4"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Push into a full queue: %v, want the deadline", err)
		}
		auto.End(nil)

		manual := NewFeed(FeedConfig{ManualAck: true, OnAck: onAck, Version: codec.V5, Filters: []string{"m/#", "n"}})
		push(t, manual, "m/1")
		m, err := manual.Subscription().Next(ctx)
		if err != nil || slices.Contains(ackedNow(), "m/1") {
			t.Fatalf("ManualAck: acknowledged before Ack (%v)", err)
		}
		m.Ack(ctx)
		m.Ack(ctx)
		if got := ackedNow(); slices.Index(got, "m/1") != len(got)-1 || len(got) != 4 {
			t.Fatalf("acknowledged %q; want m/1 once, after Ack", got)
		}
		if res, err := manual.Subscription().Unsubscribe5(ctx, []string{"n"}, codec.UserProperty{Key: "k", Value: "v"}); err != nil || !slices.Equal(res.Filters, []string{"n"}) {
			t.Fatalf("Unsubscribe5 on a 5.0 feed: %+v %v", res, err)
		}
		push(t, manual, "m/2")
		manual.End(nil)
		if m, err := manual.Subscription().Next(ctx); err != nil || m.Topic != "m/2" {
			t.Fatalf("Next after End: %q %v; want the queued message first", m.Topic, err)
		}
		if _, err := manual.Subscription().Next(ctx); !errors.Is(err, ErrSubscriptionClosed) {
			t.Fatalf("Next at the end: %v", err)
		}
		if err := manual.Push(ctx, Message{Topic: "late"}); !errors.Is(err, ErrSubscriptionClosed) {
			t.Fatalf("Push after End: %v", err)
		}

		old := NewFeed(FeedConfig{Filters: []string{"x"}})
		if _, err := old.Subscription().Unsubscribe5(ctx, []string{"x"}, codec.UserProperty{Key: "k", Value: "v"}); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("user properties on a 3.1.1 feed: %v", err)
		}
		if res, err := old.Subscription().Close(ctx); err != nil || !slices.Equal(res.Filters, []string{"x"}) {
			t.Fatalf("Close: %+v %v", res, err)
		}
		if _, err := old.Subscription().Next(ctx); !errors.Is(err, ErrSubscriptionClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	})
}

// TestEndWakesEveryNext: when a subscription ends, every Next waiting on it
// returns the end's error, not just the one that took the wake-up (the end
// is signalled on the same one-slot channel as a message, and each waiter
// passes it on).
func TestEndWakesEveryNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := NewFeed(FeedConfig{Filters: []string{"t/#"}})
		sub := f.Subscription()
		const waiters = 3
		errs := make(chan error, waiters)
		for range waiters {
			go func() {
				_, err := sub.Next(ctx)
				errs <- err
			}()
		}
		synctest.Wait() // all three wait in Next
		f.End(nil)
		for i := range waiters {
			if err := <-errs; !errors.Is(err, ErrSubscriptionClosed) {
				t.Fatalf("waiter %d: Next = %v, want ErrSubscriptionClosed", i, err)
			}
		}
	})
}
