package client

import (
	"context"
	"slices"
	"sync"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// FeedConfig configures a Feed.
type FeedConfig struct {
	// Filters are the topic filters the subscription reports holding; a
	// Feed does not match them against the messages pushed.
	Filters []string
	// Version is the protocol the subscription pretends to be of: with
	// codec.V311 (or zero), Unsubscribe5 with user properties fails as it
	// would on a 3.1.1 client.
	Version codec.Version
	// QueueSize, ManualAck and DropWhenFull are the subscription options of
	// the same names (default queue: 1000 messages).
	QueueSize    int
	ManualAck    bool
	DropWhenFull bool
	// OnAck is called, on the goroutine that causes it and at most once
	// per message, when a QoS 1/2 message is acknowledged: when it is queued
	// (or moves from aside into the queue), or at Message.Ack with
	// ManualAck, or when the subscription ends with it still aside. Nil
	// ignores acknowledgements.
	OnAck func(Message)
}

// Feed fills a Subscription that no broker feeds: what a mock of Conn
// returns from SubscribeFilters, and a way to test code that consumes
// Subscriptions, Merge or a Router without a broker. The Subscription
// behaves as a client's: the same bounded queue, the same acknowledgement
// rules (reported to FeedConfig.OnAck), Next, All, Unsubscribe and Close. A
// Feed is safe for concurrent use.
type Feed struct {
	sub   *Subscription
	v     codec.Version
	onAck func(Message)
	space chan struct{} // a message left the queue (cap 1)

	mu      sync.Mutex
	seq     uint64
	pending map[session.AckID]bool // QoS 1/2 messages pushed and not yet acknowledged
}

// NewFeed returns a Feed and, through its Subscription method, the
// Subscription it fills.
func NewFeed(cfg FeedConfig) *Feed {
	r := subReq{queue: cfg.QueueSize, manual: cfg.ManualAck, drop: cfg.DropWhenFull}
	f := &Feed{v: cfg.Version, onAck: cfg.OnAck, space: make(chan struct{}, 1), pending: make(map[session.AckID]bool)}
	f.sub = newSubscription(nil, 0, slices.Clone(cfg.Filters), &r)
	f.sub.feed = f
	f.sub.done = make(chan struct{})
	return f
}

// Subscription returns the subscription the Feed fills.
func (f *Feed) Subscription() *Subscription { return f.sub }

// Push queues a copy of m on the subscription, as the client does with a
// message from the broker: while the queue is full Push waits (the client
// would stop reading from the connection), unless DropWhenFull applies the
// drop rule. A QoS 1/2 message is acknowledged (OnAck) once queued, unless
// ManualAck. Errors: ctx's error, and the subscription's end error
// (ErrSubscriptionClosed after Close, or End's error).
func (f *Feed) Push(ctx context.Context, m Message) error {
	m.c, m.feed, m.key = nil, f, ackKey{}
	s := f.sub
	s.mu.Lock()
	for s.err == nil && !s.drop && s.n >= s.max {
		s.mu.Unlock()
		select {
		case <-f.space:
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	if err := s.err; err != nil {
		s.mu.Unlock()
		return err
	}
	if m.QoS != AtMostOnce {
		f.mu.Lock()
		f.seq++
		m.key.id = session.AckID(f.seq)
		f.pending[m.key.id] = true
		f.mu.Unlock()
	}
	queued, _ := s.pushLocked(m)
	s.mu.Unlock()
	if queued && !s.manual {
		f.ack(m)
	}
	return nil
}

// End ends the subscription as a client that closed would: Next returns
// the messages still queued, then err (ErrSubscriptionClosed when nil).
// Messages kept aside unacknowledged are acknowledged. Ending twice keeps
// the first error.
func (f *Feed) End(err error) {
	if err == nil {
		err = ErrSubscriptionClosed
	}
	f.end(err)
}

func (f *Feed) end(err error) {
	for _, m := range f.sub.endAside(err) {
		f.ack(m)
	}
}

// took is called when a message leaves the queue.
func (f *Feed) took() {
	select {
	case f.space <- struct{}{}:
	default:
	}
}

// settle is Subscription.settle for the Feed's subscription: a message
// was taken, and acks are the messages that moved into the queue. It is
// not inlined, so that its Message copies stay out of the frame of a
// client subscription's Next.
//
//go:noinline
func (f *Feed) settle(acks []Message) {
	f.took()
	for _, o := range acks {
		f.ack(o)
	}
}

// ack reports the first acknowledgement of a QoS 1/2 message to OnAck.
func (f *Feed) ack(m Message) {
	if m.key.id == 0 {
		return
	}
	f.mu.Lock()
	due := f.pending[m.key.id]
	delete(f.pending, m.key.id)
	f.mu.Unlock()
	if due && f.onAck != nil {
		f.onAck(m)
	}
}

// unsubscribe removes filters from the subscription; removing the last
// ends it.
func (f *Feed) unsubscribe(filters []string) UnsubscribeResult {
	if f.sub.removeFilters(filters) == 0 {
		f.end(ErrSubscriptionClosed)
	}
	return UnsubscribeResult{Filters: filters, Sent: filters}
}

// close ends the subscription, removing every filter.
func (f *Feed) close(_ []codec.UserProperty) UnsubscribeResult {
	filters := f.sub.Filters()
	if len(filters) == 0 {
		return UnsubscribeResult{}
	}
	return f.unsubscribe(filters)
}
