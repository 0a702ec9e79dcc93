package client

import (
	"context"
	"iter"
	"sync"
	"unsafe"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// Message is an incoming application message. It owns its memory: keep it
// as long as needed.
type Message struct {
	Topic     string
	Payload   []byte
	QoS       QoS
	Retain    bool
	Duplicate bool
	// Properties are the MQTT 5.0 publish properties (zero on 3.1.1),
	// including every Subscription Identifier the server sent.
	Properties codec.Properties

	c   *core
	key ackKey
}

type ackKey struct {
	id session.AckID
	h  session.Handle
}

// Ack acknowledges a message of a ManualAck subscription: PUBACK for QoS 1,
// PUBREC for QoS 2. It returns at once; the acknowledgement is sent by the
// client's loop (after a reconnect, when the connection is down). It is
// idempotent, and does nothing for QoS 0 or automatic acknowledgement. It
// returns ErrClosed when the client is closed.
func (m Message) Ack(ctx context.Context) error {
	if m.c == nil || m.key.id == 0 {
		return nil
	}
	return m.c.postAck(m.key)
}

// copyMessage makes an owned Message of a session message in one
// allocation for the topic, payload and string properties (two when it
// carries user properties or subscription identifiers).
func copyMessage(sm *session.Message) Message {
	p := &sm.Publish
	pr := &p.Props
	n := len(p.Topic) + len(p.Payload) + len(pr.ContentType) + len(pr.ResponseTopic) + len(pr.CorrelationData)
	for _, u := range pr.User {
		n += len(u.Key) + len(u.Value)
	}
	buf := make([]byte, 0, n)
	str := func(s string) string {
		if s == "" {
			return ""
		}
		start := len(buf)
		buf = append(buf, s...)
		return unsafe.String(&buf[start], len(s))
	}
	bin := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	m := Message{QoS: QoS(p.QoS), Retain: p.Retain, Duplicate: p.Dup}
	m.Topic = str(p.Topic)
	m.Payload = bin(p.Payload)
	m.Properties = *pr
	m.Properties.ContentType = str(pr.ContentType)
	m.Properties.ResponseTopic = str(pr.ResponseTopic)
	m.Properties.CorrelationData = bin(pr.CorrelationData)
	if len(pr.User) > 0 {
		m.Properties.User = make([]codec.UserProperty, len(pr.User))
		for i, u := range pr.User {
			m.Properties.User[i] = codec.UserProperty{Key: str(u.Key), Value: str(u.Value)}
		}
	}
	if len(pr.SubscriptionIDs) > 0 {
		m.Properties.SubscriptionIDs = append([]uint32(nil), pr.SubscriptionIDs...)
	}
	return m
}

// Subscription is an active subscription: its filters, its bounded queue of
// messages and its acknowledgement policy. It survives reconnects: the
// client subscribes again when the broker lost the session. It is safe for
// concurrent use.
type Subscription struct {
	c       *core
	handle  session.Handle
	filters []string
	manual  bool
	drop    bool // DropWhenFull: drop QoS 0 rather than hold the connection back
	max     int
	codes   []codec.ReasonCode
	// loop: until the SUBACK, messages routed here wait in held,
	// unacknowledged: a refused subscription hands them to OnUnrouted.
	pending bool
	held    []Message

	mu       sync.Mutex
	queue    []Message // ring
	head, n  int
	overflow []Message // QoS 1/2 messages waiting for room; not acknowledged
	dropped  uint64
	full     bool          // the queue filled up and the loop stopped reading
	err      error         // set when the subscription ends
	notify   chan struct{} // a message was queued (never closed)
	done     chan struct{} // closed when the subscription ends
}

func newSubscription(c *core, h session.Handle, filters []string, r *subReq) *Subscription {
	max := r.queue
	if max <= 0 {
		max = 1000
	}
	return &Subscription{c: c, handle: h, filters: filters, manual: r.manual, drop: r.drop, max: max,
		queue: make([]Message, min(max, 64)), notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// Filters returns the subscription's topic filters.
func (s *Subscription) Filters() []string { return append([]string(nil), s.filters...) }

// Granted returns the SUBACK's reason codes: the granted QoS of each filter.
func (s *Subscription) Granted() []codec.ReasonCode {
	return append([]codec.ReasonCode(nil), s.codes...)
}

// queued returns the number of messages waiting in the queue, for Stats.
func (s *Subscription) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Dropped returns how many QoS 0 messages were dropped because the queue
// was full.
func (s *Subscription) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// push queues a message; called by the client's loop. It reports whether the
// message is in the queue (so that an automatic acknowledgement is due) and
// whether the queue is now full, so that the loop stops reading until the
// consumer makes room (not with DropWhenFull). A queue holds at most one
// message over its size: the one that filled it.
func (s *Subscription) push(m Message) (queued, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return true, false // closed: acknowledge and forget
	}
	if !s.drop {
		s.append(m)
		s.wake()
		if s.n >= s.max {
			s.full = true
		}
		return true, s.full
	}
	if s.n < s.max {
		s.append(m)
		s.wake()
		return true, false
	}
	if m.QoS == AtMostOnce {
		// Drop the oldest QoS 0 message; QoS 1/2 are never dropped.
		for i := 0; i < s.n; i++ {
			j := (s.head + i) % len(s.queue)
			if s.queue[j].QoS == AtMostOnce {
				for k := i; k < s.n-1; k++ {
					a, b := (s.head+k)%len(s.queue), (s.head+k+1)%len(s.queue)
					s.queue[a] = s.queue[b]
				}
				s.queue[(s.head+s.n-1)%len(s.queue)] = m
				s.dropped++
				s.c.stats.add(cDropped, 1)
				s.wake()
				return true, false
			}
		}
		s.dropped++ // the queue holds only QoS 1/2: the new QoS 0 goes
		s.c.stats.add(cDropped, 1)
		return true, false
	}
	s.overflow = append(s.overflow, m)
	return false, false
}

// hasRoom reports whether the loop may read again as far as this
// subscription is concerned: its queue is below its size, or it ended.
func (s *Subscription) hasRoom() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.n < s.max {
		s.full = false
		return true
	}
	return false
}

func (s *Subscription) append(m Message) {
	if s.n == len(s.queue) {
		grown := make([]Message, min(max(2*len(s.queue), 1), s.max+1))
		for i := 0; i < s.n; i++ {
			grown[i] = s.queue[(s.head+i)%len(s.queue)]
		}
		s.queue, s.head = grown, 0
	}
	s.queue[(s.head+s.n)%len(s.queue)] = m
	s.n++
}

// Next returns the next message, waiting for one until ctx is done. It
// returns ErrSubscriptionClosed after Close, and the client's terminal
// error when the client gave up.
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	for {
		s.mu.Lock()
		if s.n > 0 {
			m := s.queue[s.head]
			s.queue[s.head] = Message{}
			s.head = (s.head + 1) % len(s.queue)
			s.n--
			var acks []ackKey
			for len(s.overflow) > 0 && s.n < s.max {
				o := s.overflow[0]
				s.overflow = s.overflow[1:]
				s.append(o)
				if !s.manual {
					acks = append(acks, o.key)
				}
			}
			if s.n > 0 {
				s.wake()
			}
			room := s.full && s.n < s.max
			if room {
				s.full = false
			}
			s.mu.Unlock()
			if room {
				s.c.roomMade()
			}
			for _, k := range acks {
				s.c.postAck(k)
			}
			return m, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return Message{}, err
		}
		select {
		case <-s.notify:
		case <-s.done:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// All returns an iterator over the subscription's messages: for m, err :=
// range sub.All(ctx). It stops after yielding the first error (ctx done,
// subscription closed, client closed).
func (s *Subscription) All(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			m, err := s.Next(ctx)
			if err != nil {
				yield(Message{}, err)
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

// end stops the subscription: waiting Next calls return err. Messages still
// queued can be read first. It returns the keys of messages that waited
// unacknowledged, so the loop can settle them.
func (s *Subscription) end(err error) []ackKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil
	}
	s.err = err
	var keys []ackKey
	for _, o := range s.overflow {
		keys = append(keys, o.key)
	}
	s.overflow = nil
	close(s.done)
	if s.full {
		s.full = false
		s.c.roomMade()
	}
	return keys
}

// UnsubscribeResult is what the UNSUBACK said.
type UnsubscribeResult struct {
	Filters []string
	// Codes holds one reason code per filter on MQTT 5.0; empty on 3.1.1.
	Codes []codec.ReasonCode
	Props codec.Properties
}

// Close unsubscribes (an UNSUBSCRIBE for the filters no other subscription
// of this client uses) and waits for the UNSUBACK until ctx is done. Queued
// messages can still be read with Next; then it returns
// ErrSubscriptionClosed. Closing twice returns the first result.
func (s *Subscription) Close(ctx context.Context) (UnsubscribeResult, error) {
	return s.c.unsubscribe(ctx, s)
}
