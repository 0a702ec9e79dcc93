package client

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// Publishing is the completion handle of a PublishAsync: Done is closed
// when the publish completed (QoS 0: handed to the connection; QoS 1: PUBACK;
// QoS 2: PUBCOMP) or failed, and Err then says which. It is safe for
// concurrent use.
type Publishing struct {
	state atomic.Uint32 // pubEnded, pubAccepted, and who waits for them
	mu    sync.Mutex    // guards done and acc
	// done and acc are made by the first call that finds their event still
	// ahead: a handle looked at only afterwards costs no channel, and its
	// events cost the loop one atomic operation each, no lock.
	done, acc chan struct{}
	err       error
	code      codec.ReasonCode
	props     *codec.Properties // of the acknowledgement; nil when it had none
}

// The bits of Publishing.state: an event, and beside it (shifted by
// pubWaited) that its channel was made.
const (
	pubEnded    = 1 << iota // err, code and props are final
	pubAccepted             // the loop took the message in, and the Store synced it
	pubWaited   = 2         // shift from an event's bit to its channel's
)

// event returns a channel closed once bit is set in p's state. It makes
// the channel and then marks it made; set, which sets bit and reads the
// mark in one operation, closes it when it was made first, and event
// returns closedChan when bit came first.
func (p *Publishing) event(bit uint32, ch *chan struct{}) <-chan struct{} {
	if p.state.Load()&bit != 0 {
		return closedChan
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if *ch == nil {
		*ch = make(chan struct{})
	}
	if p.state.Or(bit<<pubWaited)&bit != 0 {
		return closedChan
	}
	return *ch
}

// set sets bit in p's state and closes its channel if one was made.
func (p *Publishing) set(bit uint32, ch *chan struct{}) {
	if p.state.Or(bit)&(bit<<pubWaited) == 0 {
		return // no channel: event will see bit
	}
	p.mu.Lock()
	close(*ch)
	p.mu.Unlock()
}

// Done returns a channel closed when the publish has completed or failed.
func (p *Publishing) Done() <-chan struct{} { return p.event(pubEnded, &p.done) }

// Accepted returns a channel closed once the client has taken the message
// in (or failed it; Err says so). From then on the message counts in
// Drain, and a QoS 1/2 message is durable when a Store is set: it is in
// the Store and synced, so a crash of the process does not lose it; a
// process restarted with the same Store sends it. Accepted is closed
// within microseconds of PublishAsync when the loop is idle: a caller
// that hands its data over and then may die (a shutdown, an exit) waits
// for it.
func (p *Publishing) Accepted() <-chan struct{} { return p.event(pubAccepted, &p.acc) }

// Err returns nil while the publish is under way or after it completed,
// and its error after it failed: the errors of Publish (ErrQueueFull,
// ErrInvalidTopic, a *ReasonError, a *PoisonError, ErrSessionLost with
// FailOnSessionLost, ErrClosed, ...).
func (p *Publishing) Err() error {
	if p.state.Load()&pubEnded != 0 {
		return p.err
	}
	return nil
}

// Wait waits for the publish to complete and returns its error, or ctx's
// error when ctx ends first (the publish goes on).
func (p *Publishing) Wait(ctx context.Context) error {
	select {
	case <-p.Done():
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ack returns the MQTT 5.0 acknowledgement (reason code and properties) of
// a completed QoS 1/2 publish; zero before then and on 3.1.1.
func (p *Publishing) Ack() PubAck {
	if p.state.Load()&pubEnded == 0 {
		return PubAck{}
	}
	a := PubAck{Code: p.code}
	if p.props != nil {
		a.Props = *p.props
	}
	return a
}

// resolve ends the publish with r; it is called once.
func (p *Publishing) resolve(r result) {
	p.err, p.code = r.err, r.code
	if !r.props.Empty() {
		props := r.props
		p.props = &props
	}
	p.set(pubEnded, &p.done)
}

// accept marks the message taken in; it is called once.
func (p *Publishing) accept() { p.set(pubAccepted, &p.acc) }

func failedPublishing(err error) *Publishing {
	p := &Publishing{err: err}
	p.state.Store(pubEnded | pubAccepted)
	return p
}

// publishingWith is a handle allocated together with the copy of a small
// message.
type publishingWith[A any] struct {
	h    Publishing
	data A
}

// newPublishing returns a new handle and a buffer of n bytes for the copy
// of its message, in one allocation when the message is small (the handle
// is 64 bytes: 64 more fill the 128-byte size class, 192 more the 256-byte
// one). Either lives as long as the other is used.
func newPublishing(n int) (*Publishing, []byte) {
	switch {
	case n <= 64:
		x := new(publishingWith[[64]byte])
		return &x.h, x.data[:n:n]
	case n <= 192:
		x := new(publishingWith[[192]byte])
		return &x.h, x.data[:n:n]
	}
	return new(Publishing), make([]byte, n)
}

// closedChan is what Done and Accepted return once their event is past.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// asyncPub is a PublishAsync waiting for the loop.
type asyncPub struct {
	p codec.Publish
	h *Publishing
	t pubTrack
}

// intake holds PublishAsync calls for the loop: callers never wait for it.
// Its length is bounded by Config.MaxQueued (the session's queue then
// bounds what follows).
type intake struct {
	mu     sync.Mutex
	queue  []asyncPub
	spare  []asyncPub
	closed bool // the loop has ended: nothing more is taken
}

// publishAsync copies the message and hands it to the loop without
// waiting; op holds the options, and publishAsync releases it. It fails
// at once (a Publishing already done) for an invalid topic, a full intake
// or a closed client.
func (c *core) publishAsync(topic string, payload []byte, op *pubOp) *Publishing {
	if err := codec.ValidateTopicName(topic); err != nil {
		op.release()
		return failedPublishing(err)
	}
	var t pubTrack
	if c.o.pubHooks {
		op.r.p.Topic, op.r.p.Payload = topic, payload
		c.startPublish(context.Background(), &op.r.p, &op.ps, &t)
	}
	p := op.r.p
	if op.ps.own { // OnPublish set user properties in the op's reused slice
		p.Props.User = slices.Clone(p.Props.User)
	}
	op.release()
	// The topic is copied too: it may view a buffer the caller reuses (a
	// string decoded by codec does).
	h, buf := newPublishing(len(topic) + len(payload))
	copy(buf, topic)
	copy(buf[len(topic):], payload)
	p.Topic = ""
	if len(topic) > 0 {
		p.Topic = unsafe.String(&buf[0], len(topic))
	}
	t.topic = p.Topic
	p.Payload = buf[len(topic):len(buf):len(buf)]
	if payload == nil {
		p.Payload = nil
	}
	c.in.mu.Lock()
	var err error
	switch {
	case c.in.closed: // the loop has ended
		err = c.terminal()
	case len(c.in.queue) >= c.maxQueued:
		err = ErrQueueFull
	}
	if err != nil {
		c.in.mu.Unlock()
		c.endPublishEarly(&t, err)
		return failedPublishing(err)
	}
	c.in.queue = append(c.in.queue, asyncPub{p: p, h: h, t: t})
	c.in.mu.Unlock()
	c.wakeLoop()
	return h
}

// applyIntake hands the waiting PublishAsync calls to the session, in
// order; runs on the loop. The next flush marks them accepted, once what
// the session saved is durable.
func (c *core) applyIntake() {
	c.in.mu.Lock()
	q := c.in.queue
	c.in.queue, c.in.spare = c.in.spare[:0], nil
	c.in.mu.Unlock()
	now := time.Now()
	for i := range q {
		a := &q[i]
		tok, err := c.s.Publish(now, &a.p)
		c.tookPublish(now, tok, err, a.p.QoS, &a.t)
		switch {
		case err != nil:
			a.h.resolve(result{err: err})
		case tok == 0:
			a.h.resolve(result{}) // QoS 0: handed to the connection
		default:
			put(&c.asyncW, tok, a.h)
			c.unsynced = true
		}
		c.accPending = append(c.accPending, a.h) // accepted by flush, after the Store's Sync
		q[i] = asyncPub{}
	}
	c.in.mu.Lock()
	c.in.spare = q[:0]
	c.in.mu.Unlock()
}

// syncAccepted makes the Store durable when the session may have saved
// accepted messages that the write path did not sync (queued while
// offline or beyond the send window), then marks the PublishAsync
// handles waiting for that accepted. While the writer is busy it leaves
// both to the next flush, whose write syncs first anyway: one fsync, not
// two. A failed Sync is logged; the Store's error then fails the messages
// that depend on it when they are sent.
func (c *core) syncAccepted() {
	if c.conn != nil && c.conn.writing {
		return
	}
	if st := c.cfg.Store; c.unsynced && st != nil {
		if err := st.Sync(); err != nil {
			c.log.Error("session store sync failed", "err", err)
		}
	}
	c.unsynced = false
	for i, h := range c.accPending {
		h.accept()
		c.accPending[i] = nil
	}
	c.accPending = c.accPending[:0]
}

// drainReq is a Drain waiting for the session to have nothing unfinished.
type drainReq struct {
	w chan error
	// connected: give up (ErrNotConnected) when there is no connection,
	// as Disconnect's drain does; Drain itself waits across reconnects.
	connected bool
}

// drain waits until every accepted publish is complete.
func (c *core) drainAll(ctx context.Context, connectedOnly bool) error {
	w := make(chan error, 1)
	if err := c.call(ctx, func() {
		c.drains = append(c.drains, drainReq{w: w, connected: connectedOnly})
		c.checkDrains()
	}); err != nil {
		return err
	}
	select {
	case err := <-w:
		return err
	case <-c.exited:
		select {
		case err := <-w:
			return err
		default:
			return c.terminal()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkDrains resolves the Drain calls whose condition holds; runs on the
// loop after every input.
func (c *core) checkDrains() {
	if len(c.drains) == 0 {
		return
	}
	unacked, queued := c.s.Inflight()
	c.in.mu.Lock()
	queued += len(c.in.queue)
	c.in.mu.Unlock()
	idle := unacked == 0 && queued == 0
	kept := c.drains[:0]
	for _, d := range c.drains {
		switch {
		case idle:
			d.w <- nil
		case d.connected && !c.s.Connected():
			d.w <- ErrNotConnected
		default:
			kept = append(kept, d)
		}
	}
	clear(c.drains[len(kept):])
	c.drains = kept
}

// settleAsync resolves a PublishAsync's handle from a session event; it
// reports whether the token was one.
func (c *core) settleAsync(tok session.Token, r result) bool {
	h, ok := c.asyncW[tok]
	if ok {
		delete(c.asyncW, tok)
		h.resolve(r)
	}
	return ok
}
