package client

// Tests of Merge and Feed: fan-in order, termination, and that nothing is
// left behind (each runs in a synctest bubble, which fails when a
// goroutine outlives the test; TestMain's goleak checks the rest).

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"go.uber.org/goleak"
)

// collect ranges over seq and returns the topics and the final error.
func collect(seq func(func(Message, error) bool)) (topics []string, end error) {
	for m, err := range seq {
		if err != nil {
			return topics, err
		}
		topics = append(topics, m.Topic)
	}
	return topics, nil
}

// TestMergeTakesInTurn: subscriptions with messages waiting are served in
// turn, each in its own order; when every one has ended Merge yields
// ErrSubscriptionClosed, after the messages still queued.
func TestMergeTakesInTurn(t *testing.T) {
	run(t, func(t *testing.T) {
		a, b, c := NewFeed(FeedConfig{}), NewFeed(FeedConfig{}), NewFeed(FeedConfig{})
		push(t, a, "a1", "a2", "a3")
		push(t, b, "b1")
		push(t, c, "c1", "c2")
		a.End(nil)
		b.End(nil)
		c.End(nil)
		got, end := collect(Merge(context.Background(), a.Subscription(), b.Subscription(), c.Subscription(), a.Subscription()))
		want := []string{"a1", "b1", "c1", "a2", "c2", "a3"}
		if !slices.Equal(got, want) || !errors.Is(end, ErrSubscriptionClosed) {
			t.Fatalf("Merge gave %q then %v; want %q then ErrSubscriptionClosed", got, end, want)
		}
		if got, _ := collect(Merge(context.Background())); len(got) != 0 {
			t.Fatalf("Merge of nothing yielded %q", got)
		}
	})
}

// TestMergeWaitsAndEnds: Merge waits for messages pushed later on any of
// its subscriptions; one that ends leaves while the others go on; the end
// error of a subscription that did not end by Close wins over
// ErrSubscriptionClosed.
func TestMergeWaitsAndEnds(t *testing.T) {
	run(t, func(t *testing.T) {
		a, b := NewFeed(FeedConfig{}), NewFeed(FeedConfig{})
		lost := errors.New("client gave up")
		type item struct {
			topic string
			err   error
		}
		out := make(chan item)
		go func() {
			for m, err := range Merge(context.Background(), a.Subscription(), b.Subscription()) {
				out <- item{m.Topic, err}
			}
			close(out)
		}()
		synctest.Wait()
		select {
		case it := <-out:
			t.Fatalf("Merge yielded %v with nothing queued", it)
		default:
		}
		push(t, b, "b1")
		if it := <-out; it.topic != "b1" || it.err != nil {
			t.Fatalf("got %+v", it)
		}
		a.End(lost)
		synctest.Wait()
		push(t, b, "b2")
		if it := <-out; it.topic != "b2" || it.err != nil {
			t.Fatalf("after a ended, got %+v; want b's message", it)
		}
		b.End(nil)
		if it := <-out; !errors.Is(it.err, lost) {
			t.Fatalf("final error %v, want a's end error", it.err)
		}
		if _, ok := <-out; ok {
			t.Fatal("Merge went on after its final error")
		}
	})
}

// TestMergeContextAndBreak: Merge stops with ctx's error when ctx ends
// while it waits, and before taking a message once ctx has ended; breaking
// out of the loop leaves the subscriptions readable, with no trace of the
// merge on them.
func TestMergeContextAndBreak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	run(t, func(t *testing.T) {
		a, b := NewFeed(FeedConfig{}), NewFeed(FeedConfig{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		got, end := collect(Merge(ctx, a.Subscription(), b.Subscription()))
		if len(got) != 0 || !errors.Is(end, context.DeadlineExceeded) || time.Since(start) != time.Minute {
			t.Fatalf("Merge gave %q then %v after %v; want the deadline after 1m", got, end, time.Since(start))
		}

		push(t, a, "a1", "a2")
		for m, err := range Merge(context.Background(), a.Subscription(), b.Subscription()) {
			if err != nil || m.Topic != "a1" {
				t.Fatalf("got %v %v", m.Topic, err)
			}
			break
		}
		for _, s := range []*Subscription{a.Subscription(), b.Subscription()} {
			s.mu.Lock()
			n := len(s.watchers)
			s.mu.Unlock()
			if n != 0 {
				t.Fatalf("a subscription still has %d watchers after the merge ended", n)
			}
		}
		if m, err := a.Subscription().Next(context.Background()); err != nil || m.Topic != "a2" {
			t.Fatalf("Next after the merge: %v %v", m.Topic, err)
		}

		push(t, b, "b1")
		done, stop := context.WithCancel(context.Background())
		stop()
		if got, end := collect(Merge(done, b.Subscription())); len(got) != 0 || !errors.Is(end, context.Canceled) {
			t.Fatalf("with ctx ended: %q %v; want no message and context.Canceled", got, end)
		}
	})
}

// TestMergeClientSubscriptions: subscriptions of two clients in one loop;
// when one client closes its subscription leaves the merge and the other
// goes on; when the other closes too the merge ends with the terminal
// error (ErrClosed), not ErrSubscriptionClosed.
func TestMergeClientSubscriptions(t *testing.T) {
	run(t, func(t *testing.T) {
		c5, n5 := newTest5(t, Config5{})
		p5, _ := connect5(t, c5, n5, nil)
		c3, n3 := newTest311(t, Config{})
		p3 := connect311(t, c3, n3)
		ctx := context.Background()
		r5 := async(func() (*Subscription, error) { return c5.Subscribe(ctx, []string{"five/#"}, AtLeastOnce) })
		p5.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "five/#", QoS: 1}}})
		p5.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
		r3 := async(func() (*Subscription, error) { return c3.Subscribe(ctx, []string{"three/#"}, AtLeastOnce) })
		p3.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "three/#", QoS: 1}}})
		p3.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
		s5, s3 := (<-r5).v, (<-r3).v

		type item struct {
			topic string
			err   error
		}
		out := make(chan item)
		go func() {
			for m, err := range Merge(ctx, s5, s3) {
				out <- item{m.Topic, err}
			}
			close(out)
		}()
		p3.send(&codec.Publish{Topic: "three/x", QoS: 1, PacketID: 7})
		p3.expect(&codec.Puback{PacketID: 7})
		if it := <-out; it.topic != "three/x" {
			t.Fatalf("got %+v", it)
		}
		disconnect5(t, c5, p5)
		p3.send(&codec.Publish{Topic: "three/y"})
		if it := <-out; it.topic != "three/y" || it.err != nil {
			t.Fatalf("after the 5.0 client closed: %+v", it)
		}
		disconnect311(t, c3, p3)
		it := <-out
		if !errors.Is(it.err, ErrClosed) || errors.Is(it.err, ErrSubscriptionClosed) {
			t.Fatalf("final error %v; want the clients' ErrClosed", it.err)
		}
		if _, ok := <-out; ok {
			t.Fatal("Merge went on after its final error")
		}
	})
}
