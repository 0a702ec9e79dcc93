package client

import (
	"context"
	"errors"
	"iter"
	"slices"
)

// Merge returns an iterator over the messages of several subscriptions, in
// one loop: for m, err := range client.Merge(ctx, a, b). Each message is
// taken from its subscription's queue as Next would take it, so the
// queues' bounds and acknowledgement rules are unchanged; subscriptions
// with messages waiting are served in turn, so a busy one cannot starve
// the others. The subscriptions may belong to different clients, of either
// version, or to Feeds.
//
// A subscription that ends (Close, its client closed) leaves the merge
// once its queued messages were read; the others go on. The iterator
// stops after yielding one error: ctx's error when ctx ends (checked before
// each message), or, when every subscription has ended, the end error of
// the first that ended for another reason than Close (a client's terminal
// error), else ErrSubscriptionClosed. With no subscription it yields
// nothing. Merge starts no goroutine: breaking out of the loop leaves
// nothing behind, and the subscriptions can be read again afterwards.
func Merge(ctx context.Context, subs ...*Subscription) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		live := make([]*Subscription, 0, len(subs))
		for _, s := range subs {
			if s != nil && !slices.Contains(live, s) {
				live = append(live, s)
			}
		}
		if len(live) == 0 {
			return
		}
		wake := make(chan struct{}, 1)
		for _, s := range live {
			s.watch(wake)
		}
		defer func() {
			for _, s := range subs {
				if s != nil {
					s.unwatch(wake)
				}
			}
		}()
		var endErr error
		next := 0 // the subscription served first in the next round
		for {
			if err := ctx.Err(); err != nil {
				yield(Message{}, err)
				return
			}
			var m Message
			got := false
			var ended []*Subscription
			n := len(live)
			var after *Subscription // the subscription to serve first next round
			for i := 0; i < n; i++ {
				sub := live[(next+i)%n]
				msg, ok, err := sub.take()
				if ok {
					m, got = msg, true
					after = live[(next+i+1)%n]
					break
				}
				if err != nil {
					ended = append(ended, sub)
					if endErr == nil || errors.Is(endErr, ErrSubscriptionClosed) && !errors.Is(err, ErrSubscriptionClosed) {
						endErr = err
					}
				}
			}
			if len(ended) > 0 {
				live = slices.DeleteFunc(live, func(s *Subscription) bool { return slices.Contains(ended, s) })
			}
			next = max(slices.Index(live, after), 0)
			if got {
				if !yield(m, nil) {
					return
				}
				continue
			}
			if len(live) == 0 {
				yield(Message{}, endErr)
				return
			}
			select {
			case <-wake:
			case <-ctx.Done():
			}
		}
	}
}
