package client

import "sync"

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
}

func (n *notifier) start(onState func(StateChange)) {
	n.onState = onState
}

// run calls the queued callbacks in order; it exits when the queue is empty.
func (n *notifier) run() {
	defer n.wg.Done()
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

// wait blocks until the callbacks queued before stop have run.
func (n *notifier) wait() { n.wg.Wait() }
