package client

import "sync"

// notifier runs the user's callbacks on a goroutine of its own, in the
// order the loop produced them, so that user code never runs on the loop
// or under a lock. Its queue is unbounded: callbacks are rare (state
// changes) or opted into (OnUnrouted). The goroutine exits after stop, once
// the queue is empty.
type notifier struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []func()
	stopped bool
	done    chan struct{}
	onState func(StateChange)
}

func (n *notifier) start(onState func(StateChange)) {
	n.cond = sync.NewCond(&n.mu)
	n.done = make(chan struct{})
	n.onState = onState
	go n.run()
}

func (n *notifier) run() {
	defer close(n.done)
	for {
		n.mu.Lock()
		for len(n.queue) == 0 && !n.stopped {
			n.cond.Wait()
		}
		if len(n.queue) == 0 {
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
		n.cond.Signal()
	}
	n.mu.Unlock()
}

func (n *notifier) state(sc StateChange) {
	if n.onState != nil {
		n.push(func() { n.onState(sc) })
	}
}

// stop lets the goroutine finish the queue and exit; it does not wait.
func (n *notifier) stop() {
	n.mu.Lock()
	n.stopped = true
	n.cond.Signal()
	n.mu.Unlock()
}

// wait blocks until the goroutine has exited.
func (n *notifier) wait() { <-n.done }
