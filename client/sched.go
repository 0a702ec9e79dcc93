package client

import (
	"runtime"
	"sync"
	"time"
)

// loopLinger is how long the loop goroutine waits for work before it
// exits. A client that hears from the broker or its application more often
// than that keeps its loop, parked between passes; a quieter one gives its
// goroutine and stack (4-8 KiB) back and pays a goroutine start and its
// stack's growth, a few microseconds, at its next event: at under ten
// events a second that is a few thousandths of a percent of a core. Kept
// short because loops that linger add up: 500 clients connecting in a
// burst kept their loops at once with a 1 s linger, and the runtime keeps
// a goroutine descriptor for every goroutine that was ever alive at the
// same time (BenchmarkIdleMemory: 19.1 KiB per client with 1 s, 18.0 with
// 100 ms).
const loopLinger = 100 * time.Millisecond

// sched is how work reaches the loop. Every source (user calls, the
// reader, the writer, acks, subscriptions making room, the dialer and the
// timers) queues its work and kicks: the kick starts a loop goroutine when
// none runs, wakes the loop when it is parked, and otherwise only marks
// work pending (work or flags.timer), which the running loop sees before
// it parks or exits. At most one loop goroutine runs at a time: running is
// set by the kick that starts one and cleared by the loop that exits, both
// under mu.
type sched struct {
	mu      sync.Mutex
	running bool // a loop goroutine runs, or has been started
	parked  bool // the loop waits on kickCh
	dead    bool // the client is shut down: nothing is queued any more
	work    bool // something other than the loop's timer was queued since the loop last took its work
	cmds    []func()
	flags   passWork
}

// passWork is what a pass was kicked for besides its calls and the
// connection's channels.
type passWork struct {
	room  bool // a full subscription made room
	wake  bool // acks or PublishAsync calls wait
	timer bool // the loop's timer fired
}

// enqueue queues fn for the loop and kicks it. It reports false, and fn
// will not run, when the client is shut down.
func (c *core) enqueue(fn func()) bool {
	c.sc.mu.Lock()
	if c.sc.dead {
		c.sc.mu.Unlock()
		return false
	}
	c.sc.cmds = append(c.sc.cmds, fn)
	c.kickLocked(true)
	return true
}

// kick tells the loop that the connection's reader or writer has queued
// something. It never blocks.
func (c *core) kick() {
	c.sc.mu.Lock()
	c.kickLocked(true)
}

// wakeLoop tells the loop that acks or PublishAsync calls wait.
func (c *core) wakeLoop() {
	c.sc.mu.Lock()
	c.sc.flags.wake = true
	c.kickLocked(true)
}

// onTimer is the loop timer's function.
func (c *core) onTimer() {
	c.sc.mu.Lock()
	c.sc.flags.timer = true
	c.kickLocked(false)
}

// kickLocked marks work pending and makes sure a loop sees it: it starts
// one when none runs and wakes a parked one. It is called with sc.mu held
// and unlocks it.
func (c *core) kickLocked(work bool) {
	sc := &c.sc
	if sc.dead {
		sc.mu.Unlock()
		return
	}
	sc.work = sc.work || work
	switch {
	case !sc.running:
		sc.running = true
		sc.mu.Unlock()
		go c.loopFn()
	case sc.parked:
		sc.parked = false
		sc.mu.Unlock()
		c.kickCh <- struct{}{} // never blocks: one send per park, capacity 1
	default:
		sc.mu.Unlock()
	}
}

// take waits for work and takes it for a pass (passCmds, pass), reporting
// true. It reports false when the loop goroutine is to return: exit is set
// and no work waits (the client is then shut down: nothing more can be
// queued), or the loop has had no work for loopLinger (the next kick starts
// another).
func (c *core) take(exit bool) bool {
	sc := &c.sc
	for {
		if c.goCold && !exit {
			// Before letting go: what an idle connection holds goes back,
			// and the timer is set for the session alone.
			c.trim()
			c.stats.release()
			c.setTimer(c.s.Deadline())
		}
		sc.mu.Lock()
		if work := sc.work; work || sc.flags.timer {
			sc.work = false
			c.passCmds, sc.cmds = sc.cmds, c.passCmds[:0]
			c.pass, sc.flags = sc.flags, passWork{}
			sc.mu.Unlock()
			if work {
				c.lastWork = time.Now()
				c.goCold = false
			}
			return true
		}
		if exit {
			sc.dead = true
			sc.mu.Unlock()
			return false
		}
		if c.goCold {
			c.goCold = false
			sc.running = false
			sc.mu.Unlock() // from here on, another loop may own the fields
			return false
		}
		if c.woke {
			// The pass woke callers (a Publish got its PUBACK): they
			// tend to call again at once. Yielding once before parking
			// lets them queue while the loop still counts as running,
			// so their kicks wake nobody and their publishes share the
			// next pass and its write. With 8 publishers against a
			// server that acknowledges at once (BenchmarkCeilingPublish,
			// QoS 1) writes per publish went 0.78 -> 0.20 and client
			// CPU per publish 8.5 -> 5.9 us.
			c.woke = false
			sc.mu.Unlock()
			runtime.Gosched()
			continue
		}
		sc.parked = true
		sc.mu.Unlock()
		<-c.kickCh
	}
}

// armTimer sets the loop's timer for the session's deadline or the next
// linger check, whichever comes first. A loop started by its timer alone
// (the session's deadline) after a quiet spell goes cold again at once.
func (c *core) armTimer() {
	if c.lingerAt.IsZero() && !c.goCold {
		if at := c.lastWork.Add(loopLinger); time.Until(at) > 0 {
			c.lingerAt = at
		} else {
			c.goCold = true
		}
	}
	at := c.s.Deadline()
	if !c.lingerAt.IsZero() && (at.IsZero() || c.lingerAt.Before(at)) {
		at = c.lingerAt
	}
	c.setTimer(at)
}

// setTimer makes the loop's timer fire at at, or earlier: a timer set for
// an earlier time is left to fire, and the pass it starts (timerFired finds
// nothing due) sets it again. The session's deadline moves later with every
// packet sent, so under traffic this resets the timer when it fires, not
// on every pass. A zero at leaves the timer to fire, to no effect.
func (c *core) setTimer(at time.Time) {
	if at.IsZero() || !c.armed.IsZero() && !at.Before(c.armed) {
		return
	}
	c.armed = at
	switch {
	case c.timer == nil:
		c.timer = time.AfterFunc(time.Until(at), c.onTimer)
	default:
		c.timer.Reset(time.Until(at))
	}
}
