package client

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
	"github.com/zmqtt/zmqtt-go/transport"
)

// core is the machinery both client types share. Its goroutines:
//
//   - loop (at most one per client, only while there is work): owns the
//     session and every field marked "loop" below. Each pass takes all the
//     work queued for it (user calls, chunks read, a finished write, acks,
//     timers), then writes the session's bytes and drains all its events.
//     It is started by the first kick when none runs, parks between passes
//     while work keeps coming, and exits after loopLinger without work: an
//     idle client has no loop goroutine. Every event source queues its work
//     and kicks (see sched). The last pass of a closed client (Disconnect,
//     or reconnection gave up) resolves every waiter, after the
//     connection's goroutines have exited, and closes exited.
//   - reader (one per connection): reads chunks of bytes from the net.Conn
//     and queues them for the loop; it never blocks on the application. It
//     exits when the connection is closed or reading fails.
//   - writer (at most one per connection, only while a write is in
//     progress): writes one batch of bytes (several packets) and exits.
//   - dialer (one per attempt): opens the transport and queues the result.
//     It exits when dialing ends (its context is canceled at close); a
//     connection it opens after the client closed is closed.
//   - timers (time.AfterFunc): the session's deadline, the linger check
//     and the reconnect delay queue their work like any other source.
//   - notifier (one per client, only while callbacks are queued): runs the
//     user's callbacks (OnUnrouted, OnStateChange) in order, outside any
//     lock.
//
// User calls queue a function for the loop and wait for its result with
// their context; a queued function always runs, and every waiter is
// resolved exactly once.
type core struct {
	v       codec.Version
	cfg     Config
	log     *slog.Logger
	servers []string // the broker URLs, walked on failed attempts

	sc     sched         // work for the loop, and whether a loop runs
	kickCh chan struct{} // wakes a parked loop (cap 1)
	loopFn func()        // c.loop, made once: a go statement with a method value allocates
	pubOps sync.Pool     // of *pubOp, per client: see getPubOp
	exited chan struct{} // closed when the loop has shut the client down

	ackMu sync.Mutex
	acks  []ackKey

	in        intake // PublishAsync calls for the loop
	maxQueued int

	info     atomic.Pointer[session.ConnInfo]
	state    atomic.Int32
	closeErr atomic.Pointer[error]
	unrouted atomic.Uint64
	lastFail atomic.Pointer[attemptFailure] // the last failed attempt
	live     atomic.Pointer[connState]      // the connection, for an abort by Disconnect

	notes notifier

	stats    counters
	o        observing
	openSubs atomic.Pointer[[]*Subscription] // the subscriptions in use, for Stats; written by the loop

	// loop
	s          *session.Session
	conn       *connState
	gen        uint64
	dialing    bool
	dialCancel context.CancelFunc
	retryTimer *time.Timer
	timer      *time.Timer   // the loop's timer (time.AfterFunc): the session's deadline or the linger check
	armed      time.Time     // when timer fires; zero when it has fired (or was never set)
	lastWork   time.Time     // when the loop last took work other than its timer
	lingerAt   time.Time     // when the loop next checks whether it has had no work for loopLinger; zero: not set
	goCold     bool          // the loop exits when no work is waiting
	woke       bool          // this pass woke a caller, who may soon call again
	pass       passWork      // what else this pass was kicked for
	passCmds   []func()      // the calls this pass runs (swapped with sc.cmds)
	attempts   int           // failed attempts in a row
	rounds     int           // failed rounds of the server list in a row
	srv        int           // index in servers of the server in use or tried
	roundStart int           // where the current round of the list began
	redirect   string        // a Server Reference to try next
	dialURL    string        // the server of the attempt in progress or the connection
	upSince    time.Time     // when the connection's CONNACK came; zero when not connected
	curDelay   time.Duration // the last reconnect delay
	closing    bool
	closeWait  []chan error
	connWait   []chan error
	waiters    map[session.Token]chan result
	subs       map[session.Handle]*Subscription
	nextHandle session.Handle
	ackRefs    map[session.AckID]int
	ackKeys    map[ackKey]bool
	out, spare []byte
	readPaused bool            // a subscription's queue is full: the loop does not read
	fullSubs   []*Subscription // the subscriptions that paused reading
	rng        *rand.Rand
	replies    map[session.Token]chan Message
	asyncW     map[session.Token]*Publishing // PublishAsync handles by token
	drains     []drainReq
	unsynced   bool                       // the session may have saved accepted messages the Store has not synced
	accPending []*Publishing              // PublishAsync handles to mark accepted after the next Sync
	pubs       map[session.Token]pubTrack // publishes the session took and has not completed
	readAt     int64                      // while consume feeds the session: when the bytes were read, in ns since stats.born plus one; 0 otherwise
}

// result is what a waiter receives.
type result struct {
	err   error
	code  codec.ReasonCode
	codes []codec.ReasonCode
	props codec.Properties
	rtt   time.Duration
	// filters are those an UNSUBSCRIBE carried
	filters []string
}

type dialResult struct {
	gen  uint64
	conn net.Conn
	err  error
}

// State is the connection state of a client.
type State int32

// The states.
const (
	StateIdle         State = iota // created, Connect not called yet
	StateConnecting                // dialing, or waiting for CONNACK
	StateConnected                 // CONNACK accepted
	StateReconnecting              // the connection was lost; waiting to retry
	StateClosed                    // Disconnect, or reconnecting gave up
)

var stateNames = [...]string{"idle", "connecting", "connected", "reconnecting", "closed"}

// String returns the state's name.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state?"
}

// StateChange reports a change of connection state: the new state, the
// server concerned (the one being dialled, connected to, or just lost;
// shown without user information) and, for a lost or failed connection,
// why.
type StateChange struct {
	State  State
	Server string
	Err    error
}

// attemptFailure is the last failed attempt, for Connect's error.
type attemptFailure struct {
	err      error
	server   string
	attempts int
}

// ConnectError is Connect's error when its context ends before a CONNACK:
// it carries the context's error and the error of the last failed attempt
// (a refused dial, a TLS or WebSocket handshake, a CONNACK, a timeout), and
// errors.Is and errors.As match either.
type ConnectError struct {
	Ctx      error  // the context's error
	Last     error  // the last attempt's error; nil when none had failed yet
	Server   string // the server of the last attempt, without user information
	Attempts int    // failed attempts
}

// Error says why Connect gave up and what the last attempt met.
func (e *ConnectError) Error() string {
	s := "zmqtt: connect: " + e.Ctx.Error()
	if e.Last == nil {
		return s + " before any attempt failed"
	}
	return s + " after " + strconv.Itoa(e.Attempts) + " failed attempt(s); last, to " + e.Server + ": " + e.Last.Error()
}

// Unwrap returns the context's error and the last attempt's.
func (e *ConnectError) Unwrap() []error {
	if e.Last == nil {
		return []error{e.Ctx}
	}
	return []error{e.Ctx, e.Last}
}

func newCore(v codec.Version, cfg Config, sc session.Config, onState func(StateChange)) (*core, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if onState == nil {
		onState = cfg.OnStateChange
	}
	if o := cfg.Observer; o != nil && o.OnStateChange != nil {
		if app := onState; app != nil {
			onState = func(sc StateChange) {
				app(sc)
				o.OnStateChange(sc)
			}
		} else {
			onState = o.OnStateChange
		}
	}
	s, err := session.New(sc)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &core{
		v:       v,
		cfg:     cfg,
		servers: cfg.servers(),
		log:     log.With("client", sc.ClientID),
		kickCh:  make(chan struct{}, 1),
		exited:  make(chan struct{}),
		s:       s,
		waiters: make(map[session.Token]chan result),
		subs:    make(map[session.Handle]*Subscription),
		rng:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15)),
	}
	c.stats.born = time.Now()
	c.o.init(&cfg)
	c.maxQueued = cfg.MaxQueued
	if c.maxQueued <= 0 {
		c.maxQueued = 1000
	}
	c.cfg.Reconnect.normalize() // in place: the client keeps no second copy
	c.notes.start(onState)
	c.loopFn = c.loop
	return c, nil
}

// call queues fn for the loop and returns ErrClosed (or the terminal
// error) if the client is closed, or ctx's error if ctx has ended; once
// call returns nil, fn runs. fn must not block.
func (c *core) call(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !c.enqueue(fn) {
		return c.terminal()
	}
	return nil
}

// terminal returns the error that closed the client.
func (c *core) terminal() error {
	if p := c.closeErr.Load(); p != nil {
		return *p
	}
	return ErrClosed
}

// await waits for a waiter's result; on cancellation it runs cancel on the
// loop (for example to withdraw a queued publish).
func (c *core) await(ctx context.Context, ch chan result, cancel func()) (result, error) {
	select {
	case r := <-ch:
		return r, r.err
	case <-ctx.Done():
		if cancel != nil {
			c.post(cancel)
		}
		return result{}, ctx.Err()
	}
}

// post queues fn for the loop without waiting for it to run; it does
// nothing once the client is closed.
func (c *core) post(fn func()) { c.enqueue(fn) }

// postAck queues an acknowledgement for the loop; callers never block.
func (c *core) postAck(k ackKey) error {
	select {
	case <-c.exited:
		return c.terminal()
	default:
	}
	c.ackMu.Lock()
	c.acks = append(c.acks, k)
	c.ackMu.Unlock()
	c.wakeLoop()
	return nil
}

func (c *core) setState(st State, err error) {
	if State(c.state.Swap(int32(st))) == st && err == nil {
		return
	}
	c.notes.state(StateChange{State: st, Server: redactedURL(c.dialURL), Err: err})
}

// loop is the client's owner goroutine; see the type's comment. Started by
// a kick, it runs passes until it has had no work for loopLinger, or until
// the client is closed.
func (c *core) loop() {
	for {
		c.flush()
		c.drain()
		c.checkDrains()
		c.publishGauges()
		exit := c.shouldExit()
		if !exit {
			c.armTimer()
		}
		if !c.take(exit) {
			if exit {
				if c.timer != nil {
					c.timer.Stop()
				}
				c.shutdown()
				c.stats.release()
				close(c.exited)
			}
			return
		}
		c.handle()
	}
}

// handle does the work take took: the queued calls in order, then the
// other sources.
func (c *core) handle() {
	for i, fn := range c.passCmds {
		fn()
		c.passCmds[i] = nil
	}
	c.passCmds = c.passCmds[:0]
	if c.pass.room {
		c.resumeReading()
	}
	if c.pass.wake {
		c.applyAcks()
		c.applyIntake()
	}
	if cs := c.conn; cs != nil && cs.writing {
		select {
		case err := <-cs.writeDone:
			c.onWritten(err)
		default:
		}
	}
	// Bytes that arrived are a sign of life: apply them before a deadline,
	// or a loop that was slow to run would blame the broker for its own
	// delay.
	c.readReady()
	if c.pass.timer {
		c.timerFired()
	}
}

// timerFired handles the loop's timer: the session's deadline, when it has
// come, and the linger check.
func (c *core) timerFired() {
	c.armed = time.Time{}
	now := time.Now()
	if d := c.s.Deadline(); !d.IsZero() && !now.Before(d) {
		// While reading is paused for a slow consumer, the pause is ours,
		// not the broker's: the link counts as alive (PINGREQs still go
		// out when due).
		c.trim()
		if c.readPaused && c.conn != nil {
			c.s.NoteAlive(now)
		}
		c.s.HandleTimeout(now)
	}
	if !c.lingerAt.IsZero() && !now.Before(c.lingerAt) {
		if now.Sub(c.lastWork) >= loopLinger {
			c.goCold = true
			c.lingerAt = time.Time{}
		} else {
			c.lingerAt = c.lastWork.Add(loopLinger)
		}
	}
}

// readReady applies every chunk the reader has ready, without waiting.
func (c *core) readReady() {
	for c.conn != nil && !c.readPaused {
		select {
		case ch := <-c.conn.readCh:
			c.onRead(ch)
		default:
			return
		}
	}
}

// shouldExit reports whether the loop is done: closing, with no connection
// and nothing left to write. A dial in progress has been canceled; its
// goroutine closes what it opens once the loop is gone.
func (c *core) shouldExit() bool {
	return c.closing && c.conn == nil
}

// startConnect begins connecting (the first attempt of Connect).
func (c *core) startConnect() {
	if c.conn != nil || c.dialing || c.retryTimer != nil || c.closing {
		return
	}
	c.attempts = 0
	c.startDial()
}

func (c *core) startDial() {
	c.gen++
	gen := c.gen
	c.dialing = true
	c.stats.add(cAttempts, 1)
	dial := c.nextDial()
	c.setState(StateConnecting, nil)
	c.log.Debug("connecting", "url", redactedURL(c.dialURL), "attempt", c.attempts+1)
	ctx, cancel := context.WithCancel(context.Background())
	c.dialCancel = cancel
	go func() {
		conn, err := dial(ctx)
		d := dialResult{gen: gen, conn: conn, err: err}
		if !c.enqueue(func() { c.onDialed(d) }) && conn != nil {
			conn.Close() // the client closed while dialing
		}
	}()
}

// nextDial picks the server of the next attempt (a Server Reference first,
// else the current entry of the list) and returns its dial function.
func (c *core) nextDial() func(context.Context) (net.Conn, error) {
	switch {
	case c.redirect != "":
		c.dialURL, c.redirect = c.redirect, ""
	case len(c.servers) > 0:
		c.dialURL = c.servers[c.srv]
	}
	if c.cfg.Dial != nil {
		return c.cfg.Dial
	}
	url, opts := c.dialURL, c.cfg.transportOptions()
	return func(ctx context.Context) (net.Conn, error) { return transport.Dial(ctx, url, opts) }
}

func (c *core) onDialed(d dialResult) {
	c.dialing = false
	if c.dialCancel != nil {
		c.dialCancel()
		c.dialCancel = nil
	}
	if d.err == nil && d.conn == nil {
		d.err = errors.New("zmqtt: Dial returned no connection and no error")
	}
	if d.err != nil || c.closing {
		if d.conn != nil {
			d.conn.Close()
		}
		if c.closing {
			return
		}
		c.log.Warn("dial failed", "url", redactedURL(c.dialURL), "err", d.err)
		c.failed(d.err)
		return
	}
	c.conn = newConnState(d.conn, c.gen, c)
	c.live.Store(c.conn)
	if c.o.tr != nil {
		c.o.tr.newConnection()
	}
	// A new connection must be read (its CONNACK) even while a consumer is
	// slow: the pause starts again at the next message for a full queue.
	c.readPaused = false
	clear(c.fullSubs)
	c.fullSubs = c.fullSubs[:0]
	if err := c.s.Connect(time.Now()); err != nil {
		c.teardown()
		c.failed(err)
		return
	}
	c.log.Debug("transport connected", "url", redactedURL(c.dialURL))
}

// failed handles an attempt that failed or a connection that ended: it
// schedules the next attempt, or gives up. See ReconnectPolicy for the
// rules: the next server of the list is tried at once within a round, the
// backoff delay applies between rounds, and the delays start over only
// after a connection that stayed up for StableAfter (or the current delay).
func (c *core) failed(err error) {
	wasUp := !c.upSince.IsZero()
	stable := wasUp && time.Since(c.upSince) >= max(c.cfg.Reconnect.StableAfter, c.curDelay)
	c.upSince = time.Time{}
	if stable {
		c.attempts, c.rounds, c.curDelay = 0, 0, 0
		c.roundStart = c.srv
	}
	c.attempts++
	server := redactedURL(c.dialURL)
	c.lastFail.Store(&attemptFailure{err: err, server: server, attempts: c.attempts})
	if c.closing {
		return
	}
	if !retryable(err) || c.cfg.Reconnect.MaxAttempts > 0 && c.attempts >= c.cfg.Reconnect.MaxAttempts {
		c.log.Error("giving up connecting", "url", server, "attempts", c.attempts, "err", err)
		c.giveUp(err)
		return
	}
	var d time.Duration
	switch ref := c.reference(err); {
	case ref != "":
		c.redirect = ref // tried at once, outside the rounds
	case stable:
		d = c.cfg.Reconnect.delay(1, c.rng.Float64()) // same server first: it worked
	default:
		if len(c.servers) > 0 {
			c.srv = (c.srv + 1) % len(c.servers)
		}
		if c.srv == c.roundStart {
			c.rounds++
			d = c.cfg.Reconnect.delay(c.rounds, c.rng.Float64())
		}
	}
	if d > 0 {
		c.curDelay = d
	}
	c.log.Info("reconnecting", "in", d, "attempt", c.attempts+1, "url", redactedURL(c.peekURL()), "err", err)
	c.setState(StateReconnecting, err)
	if d == 0 {
		c.startDial()
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		c.post(func() {
			if c.retryTimer == t { // not stopped, nor replaced
				c.retryTimer = nil
				c.startDial()
			}
		})
	})
	c.retryTimer = t
}

// peekURL is the server the next attempt will dial.
func (c *core) peekURL() string {
	if c.redirect != "" {
		return c.redirect
	}
	if len(c.servers) > 0 {
		return c.servers[c.srv]
	}
	return ""
}

// reference returns the server an MQTT 5.0 CONNACK or DISCONNECT with 0x9C
// (Use another server) or 0x9D (Server moved) points to, resolved against
// the current server's URL, or "" when there is none to follow.
func (c *core) reference(err error) string {
	var re *ReasonError
	if !errors.As(err, &re) || re.ServerReference == "" ||
		re.Code != codec.ReasonUseAnotherServer && re.Code != codec.ReasonServerMoved {
		return ""
	}
	if c.cfg.Dial != nil {
		c.log.Warn("server reference not followed: Config.Dial is set", "reference", re.ServerReference)
		return ""
	}
	u, rerr := resolveReference(c.dialURL, re.ServerReference)
	if rerr != nil {
		c.log.Warn("server reference not followed", "reference", re.ServerReference, "err", rerr)
		return ""
	}
	c.log.Info("following the server reference", "from", redactedURL(c.dialURL), "to", redactedURL(u), "reason", re.Code.String())
	return u
}

// resolveReference turns a Server Reference into a URL. The specification
// leaves its format open; we take the first of a space-separated list,
// either a URL (which must keep TLS when the current server uses it) or a
// host with an optional port, which replaces the host of the current URL
// (scheme, path and user information stay; the port stays when the
// reference has none).
func resolveReference(current, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if i := strings.IndexAny(ref, " \t"); i >= 0 {
		ref = ref[:i]
	}
	if strings.Contains(ref, "://") {
		if transport.IsTLS(current) && !transport.IsTLS(ref) {
			return "", errors.New("the reference would drop TLS")
		}
		return ref, transport.CheckURL(ref)
	}
	u, err := url.Parse(current)
	if err != nil {
		return "", err
	}
	if strings.EqualFold(u.Scheme, "unix") {
		return "", errors.New("a host reference does not apply to a unix socket URL")
	}
	host, port := ref, u.Port()
	if h, p, err := net.SplitHostPort(ref); err == nil {
		host, port = h, p
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u.Host = host
	out := u.String()
	return out, transport.CheckURL(out)
}

// retryable decides whether connecting again may help.
func retryable(err error) bool {
	var re *ReasonError
	if errors.As(err, &re) {
		return re.Retryable()
	}
	if errors.Is(err, ErrAuth) || errors.Is(err, transport.ErrProxyAuth) {
		return false // the same credentials would be refused again
	}
	var ue *transport.URLError
	if errors.As(err, &ue) {
		return false // the URL can never be dialled
	}
	var pe *ProtocolError
	if errors.As(err, &pe) && pe.Remote && (pe.Reason == codec.ReasonReceiveMaximumExceeded || pe.Reason == codec.ReasonPacketTooLarge) {
		return false // the server broke our limits: it would do so again (seed rule 16)
	}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return false
	}
	return true
}

// giveUp closes the client with a terminal error.
func (c *core) giveUp(err error) {
	if err == nil {
		err = ErrClosed
	}
	terr := &closedError{cause: err}
	var e error = terr
	c.closeErr.CompareAndSwap(nil, &e)
	c.closing = true
	for _, w := range c.connWait {
		w <- terr
	}
	c.connWait = nil
}

// closedError is the terminal error of a client that gave up: it matches
// ErrClosed and the cause.
type closedError struct{ cause error }

func (e *closedError) Error() string   { return "zmqtt: client closed: " + e.cause.Error() }
func (e *closedError) Unwrap() []error { return []error{ErrClosed, e.cause} }

// shutdown resolves every waiter and ends every subscription; the loop then
// returns.
func (c *core) shutdown() {
	if c.retryTimer != nil {
		c.retryTimer.Stop()
		c.retryTimer = nil
	}
	err := c.terminal()
	now := time.Now()
	for t, p := range c.pubs { // OnPublishDone before Publish returns, as always
		delete(c.pubs, t)
		c.endPublish(now, &p, err, 0)
	}
	for t, w := range c.waiters {
		w <- result{err: err}
		delete(c.waiters, t)
	}
	for t, w := range c.replies {
		close(w)
		delete(c.replies, t)
	}
	for t, h := range c.asyncW {
		h.resolve(result{err: err})
		delete(c.asyncW, t)
	}
	c.in.mu.Lock()
	left := c.in.queue
	c.in.queue, c.in.closed = nil, true
	c.in.mu.Unlock()
	for _, a := range left {
		c.endPublish(now, &a.t, err, 0)
		a.h.resolve(result{err: err})
		a.h.accept()
	}
	for _, h := range c.accPending {
		h.accept()
	}
	c.accPending = nil
	for _, d := range c.drains {
		d.w <- err
	}
	c.drains = nil
	for h, sub := range c.subs {
		sub.end(err)
		delete(c.subs, h)
	}
	for _, w := range c.connWait {
		w <- err
	}
	c.connWait = nil
	c.setState(StateClosed, err)
	c.publishGauges()
	for _, w := range c.closeWait {
		w <- nil
	}
	c.closeWait = nil
	c.notes.stop()
}

// drain handles every event the session has produced.
func (c *core) drain() {
	for {
		ev, ok := c.s.NextEvent()
		if !ok {
			return
		}
		c.stats.publish() // the packets behind the event, before anyone learns of it
		switch ev.Kind {
		case session.EventConnected:
			info := ev.Info // the session's, never changed: kept as it is
			c.info.Store(info)
			c.upSince = time.Now()
			c.stats.add(cConnects, 1)
			c.stats.connUp(c.upSince)
			c.stats.publish()    // before Connect returns
			c.roundStart = c.srv // a new round starts from the server that works
			c.setState(StateConnected, nil)
			c.log.Info("connected", "url", redactedURL(c.dialURL), "session_present", info.SessionPresent, "connection", info.ConnectionNumber)
			for _, w := range c.connWait {
				w <- nil
			}
			c.connWait = nil
		case session.EventMessage:
			c.dispatch(ev.Message)
		case session.EventUnrouted:
			var k ackKey
			if sm := ev.Message; sm.Held && sm.Ack != 0 {
				// A held message whose time ran out: the session left its
				// acknowledgement to us.
				k = ackKey{id: sm.Ack}
				put(&c.ackKeys, k, true)
				put(&c.ackRefs, k.id, 1)
			}
			var m Message
			if c.cfg.OnUnrouted != nil {
				m = copyMessage(ev.Message)
			}
			c.unroute(m, k, "message without subscriber", ev.Message.Topic)
		case session.EventPublished, session.EventSubscribed, session.EventUnsubscribed,
			session.EventPong, session.EventAuthenticated:
			switch ev.Kind {
			case session.EventSubscribed:
				c.subscribed(ev.Handle, ev.Err)
			case session.EventPublished:
				c.publishEvent(&ev)
				c.stats.publish() // its latency, before Publish returns
			}
			w, ok := c.waiters[ev.Token]
			_, async := c.asyncW[ev.Token]
			if ok || async {
				r := result{err: ev.Err, code: ev.Code, rtt: ev.RTT}
				if len(ev.Codes) > 0 {
					r.codes = append([]codec.ReasonCode(nil), ev.Codes...)
				}
				if len(ev.Filters) > 0 {
					r.filters = append([]string(nil), ev.Filters...)
				}
				if ev.Props != nil {
					r.props = ev.Props.Clone()
				}
				if ok {
					delete(c.waiters, ev.Token)
					w <- r
					c.woke = true
				} else {
					c.settleAsync(ev.Token, r)
				}
			}
		case session.EventRestoreFailed:
			if sub := c.subs[ev.Handle]; sub != nil {
				c.log.Warn("subscription lost on reconnect", "filters", sub.Filters(), "err", ev.Err)
				c.settle(sub.end(ev.Err))
				delete(c.subs, ev.Handle)
				c.syncSubs()
			}
		case session.EventClosed:
			c.onClosed(ev.Err)
		}
	}
}

// dispatch copies an incoming message into its subscriptions' queues, or
// to the request waiting for it.
func (c *core) dispatch(sm *session.Message) {
	m := copyMessage(sm)
	m.c = c
	c.stats.add(cDelivered, 1)
	c.stats.publish()
	if c.o.onMessage != nil {
		c.observeMessage(&m, sm.Reply != 0)
	}
	if sm.Reply != 0 {
		if w, ok := c.replies[sm.Reply]; ok {
			delete(c.replies, sm.Reply)
			w <- m // buffered: the waiter never blocks the loop
		}
		if sm.Ack != 0 {
			c.s.Ack(time.Now(), sm.Ack)
		}
		return
	}
	if sm.Ack != 0 {
		put(&c.ackRefs, sm.Ack, len(sm.Targets))
	}
	for _, h := range sm.Targets {
		sub := c.subs[h]
		k := ackKey{id: sm.Ack, h: h}
		mm := m
		if sm.Ack != 0 {
			mm.key = k
			put(&c.ackKeys, k, true)
		}
		if sub == nil {
			c.ack(k)
			continue
		}
		if sub.pending {
			sub.held = append(sub.held, mm)
			continue
		}
		queued, full := sub.push(mm)
		if queued && (!sub.manual || mm.QoS == AtMostOnce) {
			c.ack(k)
		}
		if full {
			c.pauseReading(sub)
		}
	}
}

// subscribed applies a SUBACK to the subscription it answers: the messages
// that arrived for it before are queued now, in order, or, when the broker
// refused it, handed to OnUnrouted; they are acknowledged only then.
func (c *core) subscribed(h session.Handle, err error) {
	sub := c.subs[h]
	if sub == nil || !sub.pending {
		return
	}
	if err != nil {
		c.unrouteHeld(sub)
		return
	}
	sub.pending = false
	held := sub.held
	sub.held = nil
	for _, m := range held {
		queued, full := sub.push(m)
		if queued && (!sub.manual || m.QoS == AtMostOnce) {
			c.ack(m.key)
		}
		if full {
			c.pauseReading(sub)
		}
	}
}

// unrouteHeld hands the messages held for a subscription that will not
// be made to OnUnrouted (see unroute).
func (c *core) unrouteHeld(sub *Subscription) {
	held := sub.held
	sub.held, sub.pending = nil, false
	for _, m := range held {
		k := m.key
		m.c, m.key = nil, ackKey{}
		c.unroute(m, k, "message of a refused subscription", m.Topic)
	}
}

// unroute counts a message no subscription takes (Unrouted) and hands it
// to OnUnrouted. k, when set, is its pending acknowledgement: given only
// after OnUnrouted has returned, so that nothing is acknowledged that the
// application was not given; a crash before then leaves the message with
// the broker. Without OnUnrouted it is given at once.
func (c *core) unroute(m Message, k ackKey, why, topic string) {
	n := c.unrouted.Add(1)
	c.log.Debug(why, "topic", topic, "unrouted_total", n)
	if c.cfg.OnUnrouted == nil {
		c.ack(k)
		return
	}
	on := c.cfg.OnUnrouted
	if k.id == 0 {
		c.notes.push(func() { on(m) })
		return
	}
	c.notes.push(func() {
		on(m)
		c.postAck(k)
	})
}

// pauseReading stops reading from the connection until sub's consumer has
// made room: a burst then waits in the kernel's buffers and at the broker
// instead of being dropped.
func (c *core) pauseReading(sub *Subscription) {
	c.readPaused = true
	c.fullSubs = append(c.fullSubs, sub)
}

// roomMade tells the loop that a full subscription made room; it never
// blocks.
func (c *core) roomMade() {
	c.sc.mu.Lock()
	c.sc.flags.room = true
	c.kickLocked(true)
}

// resumeReading reads again when every subscription that paused reading
// has room, first feeding the session the bytes kept back.
func (c *core) resumeReading() {
	if !c.readPaused {
		return
	}
	kept := c.fullSubs[:0]
	for _, s := range c.fullSubs {
		if !s.hasRoom() {
			kept = append(kept, s)
		}
	}
	clear(c.fullSubs[len(kept):])
	c.fullSubs = kept
	if len(kept) > 0 {
		return
	}
	c.readPaused = false
	if cs := c.conn; cs != nil {
		c.consume(cs, cs.pending)
		c.checkReadErr(cs)
	}
	c.drain()
}

// ack settles one delivery of a message; the session acknowledges the
// message when every subscription it went to has settled it.
func (c *core) ack(k ackKey) {
	if k.id == 0 || !c.ackKeys[k] {
		return
	}
	delete(c.ackKeys, k)
	c.ackRefs[k.id]--
	if c.ackRefs[k.id] <= 0 {
		delete(c.ackRefs, k.id)
		c.s.Ack(time.Now(), k.id)
	}
}

func (c *core) settle(keys []ackKey) {
	for _, k := range keys {
		c.ack(k)
	}
}

func (c *core) applyAcks() {
	c.ackMu.Lock()
	acks := c.acks
	c.acks = nil
	c.ackMu.Unlock()
	for _, k := range acks {
		c.ack(k)
	}
}

// onClosed handles the end of a connection reported by the session.
func (c *core) onClosed(err error) {
	if c.conn == nil {
		return
	}
	c.info.Store(nil)
	if err != nil && c.stats.connectedAt.Load() != 0 {
		c.stats.add(cLost, 1)
	}
	c.flushFinal()
	c.teardown()
	if err == nil { // a normal Disconnect
		return
	}
	c.log.Warn("connection ended", "url", redactedURL(c.dialURL), "err", err)
	if c.closing {
		return
	}
	c.failed(err)
}

// syncSubs publishes the subscriptions in use for Stats; runs on the loop
// after every change of subs (rare: subscribe, unsubscribe, refusal).
func (c *core) syncSubs() {
	list := make([]*Subscription, 0, len(c.subs))
	for _, sub := range c.subs {
		list = append(list, sub)
	}
	c.openSubs.Store(&list)
}

// put sets (*m)[k] = v, making the map on first use: the maps of what a
// client has never done (acknowledgements, PublishAsync, requests) stay nil
// and cost an idle client nothing.
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V)
	}
	(*m)[k] = v
}
