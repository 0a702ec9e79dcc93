package client

import (
	"context"
	"sync"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// Publishing is the completion handle of a PublishAsync: Done is closed
// when the publish completed (QoS 0: handed to the connection; QoS 1: PUBACK;
// QoS 2: PUBCOMP) or failed, and Err then says which. It is safe for
// concurrent use.
type Publishing struct {
	done chan struct{}
	acc  chan struct{} // shared by the calls the loop takes in together
	err  error
	ack  PubAck
}

// Done returns a channel closed when the publish has completed or failed.
func (p *Publishing) Done() <-chan struct{} { return p.done }

// Accepted returns a channel closed once the client has taken the message
// in (or failed it; Err says so). From then on the message counts in
// Drain, and a QoS 1/2 message is durable when a Store is set: it is in
// the Store and synced, so a crash of the process does not lose it; a
// process restarted with the same Store sends it. Accepted is closed
// within microseconds of PublishAsync when the loop is idle: a caller
// that hands its data over and then may die (a shutdown, an exit) waits
// for it.
func (p *Publishing) Accepted() <-chan struct{} { return p.acc }

// Err returns nil while the publish is under way or after it completed,
// and its error after it failed: the errors of Publish (ErrQueueFull,
// ErrInvalidTopic, a *ReasonError, a *PoisonError, ErrSessionLost with
// FailOnSessionLost, ErrClosed, ...).
func (p *Publishing) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Wait waits for the publish to complete and returns its error, or ctx's
// error when ctx ends first (the publish goes on).
func (p *Publishing) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ack returns the MQTT 5.0 acknowledgement (reason code and properties) of
// a completed QoS 1/2 publish; zero before then and on 3.1.1.
func (p *Publishing) Ack() PubAck {
	select {
	case <-p.done:
		return p.ack
	default:
		return PubAck{}
	}
}

func (p *Publishing) resolve(r result) {
	p.err, p.ack = r.err, PubAck{Code: r.code, Props: r.props}
	close(p.done)
}

func failedPublishing(err error) *Publishing {
	p := &Publishing{done: make(chan struct{}), acc: closedChan, err: err}
	close(p.done)
	return p
}

// closedChan is the Accepted channel of the handles failed at once.
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
	mu    sync.Mutex
	queue []asyncPub
	spare []asyncPub
	acc   chan struct{} // the Accepted channel of the calls in queue
}

// publishAsync copies the message and hands it to the loop without
// waiting. It fails at once (a Publishing already done) for an invalid
// topic, a full intake or a closed client.
func (c *core) publishAsync(topic string, payload []byte, r *pubReq) *Publishing {
	if err := codec.ValidateTopicName(topic); err != nil {
		return failedPublishing(err)
	}
	var t pubTrack
	if c.o.pubHooks {
		r.p.Topic, r.p.Payload = topic, payload
		c.startPublish(context.Background(), &r.p, &PublishStart{}, &t)
	}
	select {
	case <-c.exited:
		err := c.terminal()
		c.endPublishEarly(&t, err)
		return failedPublishing(err)
	default:
	}
	buf := make([]byte, len(topic)+len(payload))
	copy(buf, topic)
	copy(buf[len(topic):], payload)
	p := r.p
	p.Topic = string(buf[:len(topic)])
	t.topic = p.Topic
	p.Payload = buf[len(topic):len(buf):len(buf)]
	if payload == nil {
		p.Payload = nil
	}
	h := &Publishing{done: make(chan struct{})}
	c.in.mu.Lock()
	if len(c.in.queue) >= c.maxQueued {
		c.in.mu.Unlock()
		c.endPublishEarly(&t, ErrQueueFull)
		return failedPublishing(ErrQueueFull)
	}
	if c.in.acc == nil {
		c.in.acc = make(chan struct{})
	}
	h.acc = c.in.acc
	c.in.queue = append(c.in.queue, asyncPub{p: p, h: h, t: t})
	c.in.mu.Unlock()
	c.wakeLoop()
	return h
}

// applyIntake hands the waiting PublishAsync calls to the session, in
// order; runs on the loop. Their Accepted channel is closed by the next
// flush, once what the session saved is durable.
func (c *core) applyIntake() {
	c.in.mu.Lock()
	q, acc := c.in.queue, c.in.acc
	c.in.queue, c.in.spare, c.in.acc = c.in.spare[:0], nil, nil
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
		q[i] = asyncPub{}
	}
	if acc != nil {
		c.accPending = append(c.accPending, acc) // closed by flush, after the Store's Sync
	}
	c.in.mu.Lock()
	c.in.spare = q[:0]
	c.in.mu.Unlock()
}

// syncAccepted makes the Store durable when the session may have saved
// accepted messages that the write path did not sync (queued while
// offline or beyond the send window), then closes the Accepted channels
// waiting for that. While the writer is busy it leaves both to the next
// flush, whose write syncs first anyway: one fsync, not two. A failed
// Sync is logged; the Store's error then fails the messages that depend
// on it when they are sent.
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
	for i, a := range c.accPending {
		close(a)
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
