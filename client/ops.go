package client

import (
	"context"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// connect starts connecting (once) and waits for the first CONNACK. When
// ctx ends first, the client is closed: a caller that gives up on Connect
// does not leave it retrying in the background. The error then is a
// *ConnectError with the last attempt's cause.
func (c *core) connect(ctx context.Context) error {
	w := make(chan error, 1)
	err := c.call(ctx, func() {
		if c.s.Connected() {
			w <- nil
			return
		}
		c.connWait = append(c.connWait, w)
		c.startConnect()
	})
	if err != nil {
		if ctx.Err() != nil {
			return &ConnectError{Ctx: ctx.Err()}
		}
		return err
	}
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		c.close(context.Background(), ctx.Err(), nil)
		select {
		case err := <-w: // a CONNACK or a final error won the race
			if err == nil {
				return nil
			}
		default:
		}
		ce := &ConnectError{Ctx: ctx.Err()}
		if f := c.lastFail.Load(); f != nil {
			ce.Last, ce.Server, ce.Attempts = f.err, f.server, f.attempts
		}
		return ce
	}
}

// close ends the client: a DISCONNECT when connected (reason and
// properties on 5.0), then every waiter and subscription gets ErrClosed,
// and the goroutines exit. It never hangs: the loop always takes the
// request, and when ctx ends before the DISCONNECT is written the
// connection is cut, so the client still closes and every goroutine exits
// before close returns; close then returns ctx's error to say the
// DISCONNECT may not have reached the broker.
func (c *core) close(ctx context.Context, cause error, d *codec.Disconnect) error {
	if cause == nil && c.cfg.DrainTimeout >= 0 && State(c.state.Load()) == StateConnected {
		timeout := c.cfg.DrainTimeout
		if timeout == 0 {
			timeout = DefaultDrainTimeout
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.drainAll(dctx, true)
		cancel()
		if err != nil {
			c.log.Warn("disconnecting with publishes unfinished", "err", err)
		}
	}
	w := make(chan error, 1)
	fn := func() {
		if cause != nil {
			e := error(&closedError{cause: cause})
			c.closeErr.CompareAndSwap(nil, &e)
		}
		c.closing = true
		c.closeWait = append(c.closeWait, w)
		if c.dialCancel != nil {
			c.dialCancel()
		}
		if c.s.Connected() {
			reason, props := codec.ReasonNormalDisconnection, (*codec.Properties)(nil)
			if d != nil {
				reason, props = d.ReasonCode, &d.Props
			}
			if err := c.s.Disconnect(time.Now(), reason, props); err != nil {
				c.s.Disconnect(time.Now(), 0, nil)
			}
		} else if c.conn != nil {
			c.teardown()
		}
	}
	if !c.enqueue(fn) {
		c.notes.wait()
		return nil // already closed
	}
	var err error
	select {
	case <-w:
	case <-c.exited:
	case <-ctx.Done():
		err = ctx.Err()
		if cs := c.live.Load(); cs != nil {
			cs.conn.Close() // the final write, if any, fails at once
		}
	}
	<-c.exited
	c.notes.wait()
	return err
}

// run executes fn on the loop and waits until it has run. It returns the
// terminal error if the client is closed and ctx's error if ctx ends before
// the loop took fn.
func (c *core) run(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	if err := c.call(ctx, func() {
		defer close(done)
		fn()
	}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-c.exited:
		return c.terminal()
	}
}

// pubOp is the state of one Publish call. Ops are pooled and the loop
// runs the method value exec, bound once when the op is made, so a
// publish that completes normally allocates nothing: before, the closures,
// the captured results and two channels cost eight allocations per call.
type pubOp struct {
	c    *core
	r    pubReq
	tok  session.Token
	err  error
	ran  chan struct{} // the loop ran exec
	w    chan result   // the waiter of a QoS 1/2 publish
	exec func()
	t    pubTrack     // for Stats and the Observer; the loop copies it
	ps   PublishStart // what OnPublish sees
}

// getPubOp returns a cleared op of c's pool. The pool is per client, not
// global: a channel belongs to the testing/synctest bubble it was made in,
// and ops shared between clients of different bubbles (a user's tests, run
// in parallel) would cross them.
func (c *core) getPubOp() *pubOp {
	if op, ok := c.pubOps.Get().(*pubOp); ok {
		return op
	}
	op := &pubOp{c: c, ran: make(chan struct{}, 1), w: make(chan result, 1)}
	op.exec = op.run
	return op
}

// release clears op and returns it to its client's pool. Only a caller
// that knows the loop will not touch op again may release it: ran and w
// are drained.
func (op *pubOp) release() {
	op.r, op.tok, op.err, op.t = pubReq{}, 0, nil, pubTrack{}
	op.ps.reset()
	op.c.pubOps.Put(op)
}

// run is exec: on the loop, hand the message to the session.
func (op *pubOp) run() {
	c := op.c
	now := time.Now()
	op.tok, op.err = c.s.Publish(now, &op.r.p)
	if op.err == nil && op.tok != 0 {
		c.waiters[op.tok] = op.w
		c.unsynced = true
	}
	c.tookPublish(now, op.tok, op.err, op.r.p.QoS, &op.t)
	op.ran <- struct{}{}
}

// publish hands op's message (topic and payload set here, the options
// already applied) to the session and waits for its completion. op is
// released unless the loop may still use it (the client closed while
// waiting, or ctx ended with the message in flight).
func (c *core) publish(ctx context.Context, topic string, payload []byte, op *pubOp) (result, error) {
	op.r.p.Topic, op.r.p.Payload = topic, payload
	if err := codec.ValidateTopicName(topic); err != nil {
		op.release()
		return result{}, err
	}
	if c.o.pubHooks {
		c.startPublish(ctx, &op.r.p, &op.ps, &op.t)
	}
	if err := c.call(ctx, op.exec); err != nil {
		c.endPublishEarly(&op.t, err)
		op.release()
		return result{}, err
	}
	select {
	case <-op.ran:
	case <-c.exited:
		return result{}, c.terminal()
	}
	tok, err := op.tok, op.err
	if err != nil || tok == 0 {
		op.release()
		return result{}, err // tok 0: QoS 0, handed to the connection
	}
	select {
	case r := <-op.w:
		op.release()
		return r, r.err
	case <-ctx.Done():
		// Built here, not up front as await's cancel: the closure is an
		// allocation that only this path should pay.
		cerr := ctx.Err()
		c.post(func() {
			if c.s.Cancel(tok) {
				delete(c.waiters, tok)
				if t, ok := c.pubs[tok]; ok {
					delete(c.pubs, tok)
					c.endPublish(time.Now(), &t, cerr, 0)
				}
			}
		})
		return result{}, cerr
	}
}

// subscribe registers a subscription and waits for its SUBACK. When any
// filter is refused the whole subscription is undone (seed rule 39) and the
// error names the first refused filter.
func (c *core) subscribe(ctx context.Context, filters []string, r *subReq) (*Subscription, error) {
	subs := make([]codec.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = codec.Subscription{Filter: f, QoS: r.qos, NoLocal: r.noLocal, RetainAsPublished: r.rap, RetainHandling: r.rh}
	}
	return c.subscribeEach(ctx, subs, r)
}

// subscribeEach is subscribe with the options of each filter in subs; the
// subscription-wide options come from r.
func (c *core) subscribeEach(ctx context.Context, subs []codec.Subscription, r *subReq) (*Subscription, error) {
	if len(subs) == 0 {
		rule := "MQTT-3.8.3-2"
		if c.v == codec.V311 {
			rule = "MQTT-3.8.3-3"
		}
		return nil, &ProtocolError{Reason: codec.ReasonProtocolError, Rule: rule, Msg: "subscribe needs at least one topic filter"}
	}
	filters := make([]string, len(subs))
	for i, s := range subs {
		if err := codec.ValidateTopicFilter(s.Filter); err != nil {
			return nil, err
		}
		filters[i] = s.Filter
	}
	w := make(chan result, 1)
	var sub *Subscription
	var serr error
	if err := c.run(ctx, func() {
		c.nextHandle++
		h := c.nextHandle
		sub = newSubscription(c, h, filters, r)
		sub.pending = true
		c.subs[h] = sub
		tok, err := c.s.Subscribe(time.Now(), h, subs, session.SubscribeOptions{ID: r.id, User: r.user})
		if err != nil {
			delete(c.subs, h)
			serr = err
			return
		}
		c.syncSubs()
		c.waiters[tok] = w
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	res, err := c.await(ctx, w, nil)
	if err != nil {
		// Refused, or the caller gave up: take the subscription back.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.unsubscribe(cctx, sub, nil, nil)
		cancel()
		return nil, err
	}
	sub.setGranted(res.codes)
	return sub, nil
}

// unsubscribe removes filters (nil: every filter, which closes the
// subscription) from sub, sends an UNSUBSCRIBE with user for those no other
// subscription uses, and waits for the UNSUBACK. Closing a subscription
// that is already closed returns at once.
func (c *core) unsubscribe(ctx context.Context, sub *Subscription, filters []string, user []codec.UserProperty) (UnsubscribeResult, error) {
	if len(user) > 0 && c.v == codec.V311 {
		return UnsubscribeResult{}, &UnsupportedError{Feature: "user properties", Detail: "they need MQTT 5.0"}
	}
	if filters != nil {
		// Refused by the codec (a bad user property) before the
		// subscription changes.
		probe := codec.Unsubscribe{PacketID: 1, Filters: filters, Props: codec.Properties{User: user}}
		if _, err := probe.Append(nil, c.v); err != nil {
			return UnsubscribeResult{}, err
		}
	}
	w := make(chan result, 1)
	var uerr error
	already := false
	if err := c.run(ctx, func() {
		if _, ok := c.subs[sub.handle]; !ok {
			already = true
			return
		}
		if filters == nil {
			filters = sub.Filters()
		} else if filters = sub.holding(filters); len(filters) == 0 {
			already = true // a concurrent Unsubscribe took them
			return
		}
		if sub.removeFilters(filters) == 0 {
			delete(c.subs, sub.handle)
			c.syncSubs()
			c.unrouteHeld(sub)
			c.settle(sub.end(ErrSubscriptionClosed))
		}
		tok, err := c.s.Unsubscribe(time.Now(), sub.handle, filters, user)
		if err != nil {
			uerr = err
			return
		}
		c.waiters[tok] = w
	}); err != nil {
		return UnsubscribeResult{}, err
	}
	if already {
		if err := sub.ended(); filters != nil && err != nil {
			return UnsubscribeResult{}, err
		}
		return UnsubscribeResult{Filters: filters}, nil
	}
	if uerr != nil {
		return UnsubscribeResult{Filters: filters}, uerr
	}
	res, err := c.await(ctx, w, nil)
	return UnsubscribeResult{Filters: filters, Sent: res.filters, Codes: res.codes, Props: res.props}, err
}

// unsubscribeFilters sends an UNSUBSCRIBE for filters no subscription of
// this client uses and waits for the UNSUBACK. The session leaves out the
// filters a subscription still uses (with none left it sends nothing), and
// holds the packet until the next CONNACK while the connection is down.
func (c *core) unsubscribeFilters(ctx context.Context, filters []string, user []codec.UserProperty) (UnsubscribeResult, error) {
	if len(filters) == 0 {
		return UnsubscribeResult{}, &ProtocolError{Reason: codec.ReasonProtocolError, Rule: "MQTT-3.10.3-2", Msg: "unsubscribe needs at least one topic filter"}
	}
	for _, f := range filters {
		if err := codec.ValidateTopicFilter(f); err != nil {
			return UnsubscribeResult{}, err
		}
	}
	filters = append([]string(nil), filters...)
	w := make(chan result, 1)
	var uerr error
	if err := c.run(ctx, func() {
		// Handle 0 belongs to no subscription (handles start at 1): the
		// session sends every filter no subscription holds.
		tok, err := c.s.Unsubscribe(time.Now(), 0, filters, user)
		if err != nil {
			uerr = err
			return
		}
		c.waiters[tok] = w
	}); err != nil {
		return UnsubscribeResult{}, err
	}
	if uerr != nil {
		return UnsubscribeResult{Filters: filters}, uerr
	}
	res, err := c.await(ctx, w, nil)
	return UnsubscribeResult{Filters: filters, Codes: res.codes, Props: res.props}, err
}

// ping sends a PINGREQ and returns the round-trip time.
func (c *core) ping(ctx context.Context) (time.Duration, error) {
	w := make(chan result, 1)
	var perr error
	if err := c.run(ctx, func() {
		tok, err := c.s.Ping(time.Now())
		if err != nil {
			perr = err
			return
		}
		c.waiters[tok] = w
	}); err != nil {
		return 0, err
	}
	if perr != nil {
		return 0, perr
	}
	r, err := c.await(ctx, w, nil)
	return r.rtt, err
}

// reauthenticate runs an MQTT 5.0 re-authentication.
func (c *core) reauthenticate(ctx context.Context) error {
	w := make(chan result, 1)
	var aerr error
	if err := c.run(ctx, func() {
		tok, err := c.s.Reauthenticate(time.Now())
		if err != nil {
			aerr = err
			return
		}
		c.waiters[tok] = w
	}); err != nil {
		return err
	}
	if aerr != nil {
		return aerr
	}
	_, err := c.await(ctx, w, nil)
	return err
}

// connInfo returns the current connection's CONNACK information.
func (c *core) connInfo() (session.ConnInfo, error) {
	if p := c.info.Load(); p != nil {
		return *p, nil
	}
	return session.ConnInfo{}, ErrNotConnected
}

// expectReply registers a request waiting for a reply on topic with the
// correlation data corr; the reply arrives on the returned channel (closed
// if the client closes first). cancel withdraws it.
func (c *core) expectReply(ctx context.Context, topic string, corr []byte) (<-chan Message, func(), error) {
	w := make(chan Message, 1)
	var tok session.Token
	if err := c.run(ctx, func() {
		tok = c.s.ExpectReply(topic, corr)
		put(&c.replies, tok, w)
	}); err != nil {
		return nil, nil, err
	}
	cancel := func() {
		c.post(func() {
			c.s.CancelReply(topic, tok)
			delete(c.replies, tok)
		})
	}
	return w, cancel, nil
}
