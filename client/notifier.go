package client

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// notifier runs the user's callbacks in the order the loop produced them,
// on a goroutine of its own, so that user code never runs on the loop or
// under a lock. The goroutine is started when a callback is queued and none
// is running, and exits when the queue is empty: an idle client has none.
// The queue is unbounded: callbacks are rare (state changes) or opted into
// (OnUnrouted).
type notifier struct {
	mu      sync.Mutex
	queue   []func()
	running bool // a goroutine is working through the queue
	stopped bool
	wg      sync.WaitGroup
	onState func(StateChange)
	// gid identifies the goroutine working through the queue (0: none), so
	// that a callback that closes the client is not made to wait for
	// itself (inCallback).
	gid atomic.Uint64
}

func (n *notifier) start(onState func(StateChange)) {
	n.onState = onState
}

// run calls the queued callbacks in order; it exits when the queue is empty.
func (n *notifier) run() {
	defer n.wg.Done()
	n.gid.Store(goid())
	defer n.gid.Store(0)
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.running = false
			n.queue = nil
			n.mu.Unlock()
			return
		}
		fn := n.queue[0]
		n.queue[0] = nil
		n.queue = n.queue[1:]
		n.mu.Unlock()
		fn()
	}
}

func (n *notifier) push(fn func()) {
	n.mu.Lock()
	if !n.stopped {
		n.queue = append(n.queue, fn)
		if !n.running {
			n.running = true
			n.wg.Add(1)
			go n.run()
		}
	}
	n.mu.Unlock()
}

func (n *notifier) state(sc StateChange) {
	if n.onState != nil {
		n.push(func() { n.onState(sc) })
	}
}

// stop refuses callbacks from now on; those queued still run. It does not
// wait.
func (n *notifier) stop() {
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
}

// wait blocks until the callbacks queued before stop have run. Called from
// one of those callbacks (one that closes the client), it returns at once:
// waiting would be waiting for itself. The callbacks queued behind it then
// run after it returns, on the same goroutine, which exits after them.
func (n *notifier) wait() {
	if n.inCallback() {
		return
	}
	n.wg.Wait()
}

// inCallback reports whether the caller is the goroutine running the
// user's callbacks.
func (n *notifier) inCallback() bool {
	g := n.gid.Load()
	return g != 0 && g == goid()
}

// goid returns the calling goroutine's id, read from the first line of its
// stack trace ("goroutine 42 [running]:"). Go keeps goroutine ids out of
// its API on purpose; the client needs one fact only, whether close was
// called from its own callback goroutine, and asks it once per notifier
// run and once per close, never on a message's path.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
