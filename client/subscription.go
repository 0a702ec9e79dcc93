package client

import (
	"context"
	"iter"
	"slices"
	"strconv"
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
	// PacketID is the packet identifier the server sent the message with
	// (0 at QoS 0), for logs and tools that print it; acknowledgement does
	// not need it.
	PacketID uint16
	// Properties are the MQTT 5.0 publish properties (zero on 3.1.1),
	// including every Subscription Identifier the server sent.
	Properties codec.Properties

	c    *core
	feed *Feed // a message pushed through a Feed: Ack reports to it
	key  ackKey
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
	if m.feed != nil {
		m.feed.ack(m)
		return nil
	}
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
	m := Message{QoS: QoS(p.QoS), Retain: p.Retain, Duplicate: p.Dup, PacketID: p.PacketID}
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
	c      *core // nil for a Feed's subscription
	feed   *Feed // the Feed that fills it, if any
	handle session.Handle
	manual bool
	drop   bool // DropWhenFull: drop QoS 0 rather than hold the connection back
	max    int
	// loop: until the SUBACK, messages routed here wait in held,
	// unacknowledged: a refused subscription hands them to OnUnrouted.
	pending bool
	held    []Message

	mu       sync.Mutex
	filters  []string           // what the subscription still holds (Unsubscribe removes)
	codes    []codec.ReasonCode // the SUBACK's code of each of filters
	queue    []Message          // ring
	head, n  int
	overflow []Message // QoS 1/2 messages waiting for room; not acknowledged
	dropped  uint64
	full     bool            // the queue filled up and the loop stopped reading
	err      error           // set when the subscription ends
	notify   chan struct{}   // a message was queued, or the subscription ended (never closed)
	done     chan struct{}   // a Feed's: closed when the subscription ends; nil for a client's
	watchers []chan struct{} // Merge calls waiting on this subscription among others
}

// idleQueueSlots is the largest queue an empty subscription keeps; a
// Message is about 350 bytes.
const idleQueueSlots = 16

func newSubscription(c *core, h session.Handle, filters []string, r *subReq) *Subscription {
	max := r.queue
	if max <= 0 {
		max = 1000
	}
	// The queue starts empty and grows on demand (append); trim lets a
	// large one go when it is empty and the client is quiet.
	return &Subscription{c: c, handle: h, filters: filters, manual: r.manual, drop: r.drop, max: max,
		notify: make(chan struct{}, 1)}
}

// Filters returns the topic filters the subscription holds: those of its
// SUBSCRIBE, less those removed by Unsubscribe.
func (s *Subscription) Filters() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.filters...)
}

// Granted returns the SUBACK's reason codes: the granted QoS of each filter
// Filters returns, in the same order. A Feed's subscription has none.
func (s *Subscription) Granted() []codec.ReasonCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]codec.ReasonCode(nil), s.codes...)
}

// setGranted records the SUBACK's codes.
func (s *Subscription) setGranted(codes []codec.ReasonCode) {
	s.mu.Lock()
	s.codes = codes
	s.mu.Unlock()
}

// holding returns those of filters the subscription still holds.
func (s *Subscription) holding(filters []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range filters {
		if slices.Contains(s.filters, f) {
			out = append(out, f)
		}
	}
	return out
}

// removeFilters takes filters out of the subscription, with their granted
// codes, and returns how many it still holds.
func (s *Subscription) removeFilters(filters []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range filters {
		for i := 0; i < len(s.filters); i++ {
			if s.filters[i] != f {
				continue
			}
			s.filters = slices.Delete(s.filters, i, i+1)
			if i < len(s.codes) {
				s.codes = slices.Delete(s.codes, i, i+1)
			}
			i--
		}
	}
	return len(s.filters)
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

// wake tells a waiting Next, and every Merge over the subscription, that a
// message was queued or the subscription ended; s.mu is held.
func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
	for _, w := range s.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// watch adds w (capacity 1) to the channels wake signals; unwatch takes it
// out again.
func (s *Subscription) watch(w chan struct{}) {
	s.mu.Lock()
	s.watchers = append(s.watchers, w)
	s.mu.Unlock()
}

func (s *Subscription) unwatch(w chan struct{}) {
	s.mu.Lock()
	if i := slices.Index(s.watchers, w); i >= 0 {
		s.watchers = slices.Delete(s.watchers, i, i+1)
	}
	s.mu.Unlock()
}

// push queues a message; called by the client's loop. It reports whether the
// message is in the queue (so that an automatic acknowledgement is due) and
// whether the queue is now full, so that the loop stops reading until the
// consumer makes room (not with DropWhenFull). A queue holds at most one
// message over its size: the one that filled it.
func (s *Subscription) push(m Message) (queued, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushLocked(m)
}

// pushLocked is push with s.mu held.
func (s *Subscription) pushLocked(m Message) (queued, full bool) {
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

// trim lets an empty queue of more than idleQueueSlots go: the burst
// that grew it is over. The loop calls it from core.trim.
func (s *Subscription) trim() {
	s.mu.Lock()
	if s.n == 0 && len(s.queue) > idleQueueSlots {
		s.queue, s.head = nil, 0
	}
	s.mu.Unlock()
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
//
// While it waits, Next holds little stack: the message is taken straight
// into its result and the wait is a two-way select in a function of its
// own, so that a goroutine parked in Next (with a caller of modest frame)
// fits Go's smallest stack.
func (s *Subscription) Next(ctx context.Context) (m Message, err error) {
	for {
		var ok bool
		if ok, err = s.takeInto(&m); ok || err != nil {
			return m, err
		}
		if err = s.await(ctx); err != nil {
			return Message{}, err
		}
	}
}

// await waits until a message may be queued or the subscription ended, or
// ctx is done.
func (s *Subscription) await(ctx context.Context) error {
	select {
	case <-s.notify:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take removes the next queued message without waiting: ok is true when
// there was one. Otherwise err is why the subscription ended, or nil when
// it is live and empty. Taking a message makes room: QoS 1/2 messages that
// waited aside move into the queue (acknowledged now, unless ManualAck),
// and a loop that stopped reading for this queue is told.
func (s *Subscription) take() (m Message, ok bool, err error) {
	ok, err = s.takeInto(&m)
	return m, ok, err
}

// takeInto is take writing the message into *m.
func (s *Subscription) takeInto(m *Message) (ok bool, err error) {
	s.mu.Lock()
	if s.n == 0 {
		err = s.err
		if err != nil {
			// Another Next waiting on the subscription learns of the end
			// too: each passes the signal on.
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
		return false, err
	}
	*m = s.queue[s.head]
	clear(s.queue[s.head : s.head+1])
	s.head = (s.head + 1) % len(s.queue)
	s.n--
	var acks []Message
	if len(s.overflow) > 0 {
		acks = s.refill()
	}
	if s.n > 0 {
		s.wake()
	}
	room := s.full && s.n < s.max
	if room {
		s.full = false
	}
	s.mu.Unlock()
	if len(acks) > 0 || room || s.feed != nil {
		s.settle(acks, room)
	}
	return true, nil
}

// refill moves messages that waited aside into the queue while it has
// room, and returns those to acknowledge now; s.mu is held. It is apart
// from takeInto, like settle, so that Next's frame stays small.
func (s *Subscription) refill() []Message {
	var acks []Message
	for len(s.overflow) > 0 && s.n < s.max {
		o := s.overflow[0]
		s.overflow = s.overflow[1:]
		s.append(o)
		if !s.manual {
			acks = append(acks, o)
		}
	}
	return acks
}

// settle acknowledges what refill moved and tells whoever fills the queue
// (a Feed after every take) that it has room.
func (s *Subscription) settle(acks []Message, room bool) {
	if f := s.feed; f != nil {
		f.settle(acks)
		return
	}
	if room {
		s.c.roomMade()
	}
	for i := range acks {
		s.c.postAck(acks[i].key)
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
	var keys []ackKey
	for _, o := range s.endAside(err) {
		keys = append(keys, o.key)
	}
	return keys
}

// endAside is end returning the messages that waited aside, unacknowledged;
// none when the subscription had ended already.
func (s *Subscription) endAside(err error) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil
	}
	s.err = err
	aside := s.overflow
	s.overflow = nil
	if s.done != nil {
		close(s.done)
	}
	s.wake()
	if s.full {
		s.full = false
		if s.c != nil {
			s.c.roomMade()
		}
	}
	return aside
}

// UnsubscribeResult is what the UNSUBACK said.
type UnsubscribeResult struct {
	// Filters are the filters the call removed from the subscription.
	Filters []string
	// Sent are the filters the UNSUBSCRIBE carried: Filters less those
	// another Subscription of this client still holds (the broker keeps one
	// subscription per filter for the whole session [MQTT-3.8.4-3], so it
	// must keep those). Empty when no packet was needed.
	Sent []string
	// Codes holds one reason code per entry of Sent on MQTT 5.0; empty on
	// 3.1.1, whose UNSUBACK has none.
	Codes []codec.ReasonCode
	Props codec.Properties
}

// Close unsubscribes (an UNSUBSCRIBE for the filters no other subscription
// of this client uses) and waits for the UNSUBACK until ctx is done. Queued
// messages can still be read with Next; then it returns
// ErrSubscriptionClosed. Closing again returns an empty result and nil.
func (s *Subscription) Close(ctx context.Context) (UnsubscribeResult, error) {
	if s.feed != nil {
		return s.feed.close(nil), nil
	}
	return s.c.unsubscribe(ctx, s, nil, nil)
}

// Unsubscribe removes some of the subscription's filters with one
// UNSUBSCRIBE and waits for the UNSUBACK until ctx is done; the other
// filters stay active. Messages already queued, those of the removed
// filters included, can still be read and are acknowledged as before;
// messages the broker sends for a removed filter after this call go to
// another matching Subscription or, with none, to Config.OnUnrouted.
// Removing every filter closes the subscription, as Close does. Filters
// another Subscription of this client still holds leave this one but are
// not sent (see UnsubscribeResult.Sent). Errors: a *ProtocolError for no
// filter [MQTT-3.10.3-2], an *ArgumentError (ErrInvalidArgument) for a
// filter the subscription does not hold, ErrSubscriptionClosed after Close,
// a *ReasonError naming the first filter the broker refused (0x80 or above;
// the filter has left the subscription all the same), ErrClosed, ctx's
// error (the UNSUBSCRIBE then still completes in the background).
func (s *Subscription) Unsubscribe(ctx context.Context, filters ...string) (UnsubscribeResult, error) {
	return s.unsubscribe(ctx, filters, nil)
}

// Unsubscribe5 is Unsubscribe with MQTT 5.0 User Properties on the
// UNSUBSCRIBE; passing every filter of Filters closes the subscription with
// them. On a subscription of a 3.1.1 client, user properties give an
// *UnsupportedError (ErrUnsupported) and nothing is changed. Other errors as
// Unsubscribe.
func (s *Subscription) Unsubscribe5(ctx context.Context, filters []string, user ...codec.UserProperty) (UnsubscribeResult, error) {
	return s.unsubscribe(ctx, filters, user)
}

func (s *Subscription) unsubscribe(ctx context.Context, filters []string, user []codec.UserProperty) (UnsubscribeResult, error) {
	if len(filters) == 0 {
		return UnsubscribeResult{}, &ProtocolError{Reason: codec.ReasonProtocolError, Rule: "MQTT-3.10.3-2", Msg: "unsubscribe needs at least one topic filter"}
	}
	var uniq []string
	held := s.Filters()
	for _, f := range filters {
		if !slices.Contains(held, f) {
			if s.ended() != nil {
				return UnsubscribeResult{}, ErrSubscriptionClosed
			}
			return UnsubscribeResult{}, &ArgumentError{Func: "Unsubscribe", Msg: "the subscription does not hold the filter " + strconv.Quote(f)}
		}
		if !slices.Contains(uniq, f) {
			uniq = append(uniq, f)
		}
	}
	if s.feed != nil {
		if len(user) > 0 && s.feed.v != codec.V5 {
			return UnsubscribeResult{}, &UnsupportedError{Feature: "user properties", Detail: "they need MQTT 5.0"}
		}
		return s.feed.unsubscribe(uniq), nil
	}
	return s.c.unsubscribe(ctx, s, uniq, user)
}

// ended returns why the subscription ended; nil while it is live.
func (s *Subscription) ended() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
