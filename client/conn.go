package client

import (
	"errors"
	"net"
	"sync"
	"time"
	"unsafe"
)

const (
	// readBufs bounds the chunks read and not yet fed to the session.
	readBufs = 3
	// finalWriteTimeout bounds the write of a last DISCONNECT to a peer that
	// may not be reading any more.
	finalWriteTimeout = time.Second
)

// chunk is one read from the connection.
type chunk struct {
	b    []byte
	err  error
	next int // the class of the reader's next read (nextReadClass)
}

// connState is one network connection and its reader and writer.
//
// Memory of an idle connection: the reader reads into buffers in four
// sizes (512 B to 32 KiB): a read that fills its buffer makes the next one
// four times larger, a read that uses less than a quarter of it makes the
// next one the size that fits (nextReadClass). A quiet connection
// therefore waits for its next packet in a 512-byte buffer, and a burst
// reaches 32 KiB reads on its third read. The loop hands each buffer back
// through free once it has fed it to the session, so a busy connection
// reuses its own buffers; a buffer of the wrong size goes to a
// process-wide pool and one of the right size comes from it. When the
// session's timer fires (keep alive: nothing was sent for a while), trim
// gives the connection's spare buffers back. No writer goroutine waits on
// an idle connection: each batch is written by a goroutine started for it
// (at most one at a time), which exits when the write returns.
type connState struct {
	conn      net.Conn
	gen       uint64
	readCh    chan chunk
	free      chan []byte // buffers (or nil) the reader may read into: readBufs in all
	writeDone chan error  // the batch's writer reports here (cap 1)
	writing   bool
	done      chan struct{} // closed at teardown: the reader exits
	rExit     chan struct{}
	pending   []byte // bytes not fed to the session yet: a partial packet, or kept back by a pause
	readErr   error  // the reader's final error, reported once pending is consumed
	lastWrite []byte // the batch the writer holds
	writer    func() // cs.writeBatch, made once: a go statement with arguments allocates
	c         *core  // kicked when a chunk or a write result is queued
}

func newConnState(conn net.Conn, gen uint64, c *core) *connState {
	cs := &connState{
		conn:      conn,
		gen:       gen,
		c:         c,
		readCh:    make(chan chunk, readBufs),
		free:      make(chan []byte, readBufs),
		writeDone: make(chan error, 1),
		done:      make(chan struct{}),
		rExit:     make(chan struct{}),
	}
	for range readBufs {
		cs.free <- nil
	}
	cs.writer = cs.writeBatch
	go cs.read()
	return cs
}

// read is the connection's reader goroutine. It exits when the connection
// is torn down or a read fails (after handing the failure to the loop).
func (cs *connState) read() {
	defer close(cs.rExit)
	class := 0
	for {
		var buf []byte
		select {
		case buf = <-cs.free:
		case <-cs.done:
			return
		}
		if size := readClassSize(class); cap(buf) != size {
			if buf != nil {
				putReadBuf(buf)
			}
			buf = getReadBuf(class)
		}
		n, err := cs.conn.Read(buf[:cap(buf)])
		class = nextReadClass(class, n)
		select {
		case cs.readCh <- chunk{b: buf[:n], err: err, next: class}: // never blocks: one chunk per buffer
			cs.c.kick()
		case <-cs.done:
			putReadBuf(buf)
			return
		}
		if err != nil {
			return
		}
	}
}

// writeBatch is a batch's writer goroutine: it writes lastWrite, which the
// loop does not touch while writing is set, reports the result on
// writeDone (never blocking: one writer at a time, capacity 1), kicks the
// loop and exits.
func (cs *connState) writeBatch() {
	_, err := cs.conn.Write(cs.lastWrite)
	cs.writeDone <- err
	cs.c.kick()
}

// Read buffer classes: 512 B, 2 KiB, 8 KiB, 32 KiB.
const (
	readClasses  = 4
	minReadShift = 9
)

var readPools [readClasses]sync.Pool

func readClassSize(class int) int { return 1 << (minReadShift + 2*class) }

// getReadBuf returns a buffer of the class's size from its pool.
func getReadBuf(class int) []byte {
	if p, ok := readPools[class].Get().(*byte); ok {
		return unsafe.Slice(p, readClassSize(class))
	}
	return make([]byte, readClassSize(class))
}

// putReadBuf gives b, which getReadBuf returned, back to its pool. The
// pools hold a pointer to the first byte, so that Put does not allocate.
func putReadBuf(b []byte) {
	b = b[:cap(b)]
	for class := range readClasses {
		if len(b) == readClassSize(class) {
			readPools[class].Put(&b[0])
			return
		}
	}
}

// keepReadBuf reports whether the connection keeps a read buffer b for
// its reader, whose next read is of class next: only a buffer larger than
// the smallest class and of that size. The last read of a burst, or the
// first packet after a quiet spell, that uses a little of a large buffer
// gives it back to the pool: otherwise an idle connection would keep a
// 32 KiB spare until the next keep alive trim, and the trim could miss one
// that a PINGRESP had just filled.
func keepReadBuf(b []byte, next int) bool {
	return cap(b) > readClassSize(0) && cap(b) == readClassSize(next)
}

// nextReadClass is the class of the next read after one of class that
// returned n bytes: larger when it filled the buffer, the smallest that
// holds twice n when it used less than a quarter.
func nextReadClass(class, n int) int {
	size := readClassSize(class)
	switch {
	case n >= size && class < readClasses-1:
		return class + 1
	case n < size/4:
		c := 0
		for c < class && readClassSize(c) < 2*n {
			c++
		}
		return c
	}
	return class
}

// onRead feeds a chunk to the session (see consume) and returns its buffer
// to the reader.
func (c *core) onRead(ch chunk) {
	cs := c.conn
	data := ch.b
	if len(cs.pending) > 0 {
		cs.pending = append(cs.pending, data...)
		data = cs.pending
	}
	c.consume(cs, data)
	if c.conn == cs {
		if keepReadBuf(ch.b, ch.next) {
			cs.free <- ch.b // a burst's buffer: the reader needs it again
		} else {
			putReadBuf(ch.b) // to the pool: a quiet client keeps no spare
			cs.free <- nil
		}
		if ch.err != nil {
			cs.readErr = ch.err
		}
		c.checkReadErr(cs)
	}
	c.drain()
}

// consume feeds data to the session one packet at a time, draining the
// events of each packet before the next (they borrow from the bytes). It
// stops at a partial packet, at the end of the connection, or when a
// subscription's queue filled up (reading is paused); what is left is kept
// in pending.
func (c *core) consume(cs *connState, data []byte) {
	now := time.Now()
	c.readAt = int64(now.Sub(c.stats.born)) + 1
	defer func() { c.readAt = 0 }()
	mode := c.traceMode()
	for len(data) > 0 && c.conn == cs && !c.readPaused {
		n, err := c.s.HandleBytes(now, data)
		if n > 0 {
			c.observePackets(PacketReceived, data[:n], mode)
		}
		if err != nil || n == 0 {
			break
		}
		data = data[n:]
		c.drain()
	}
	if c.conn != cs {
		return
	}
	if len(data) == 0 {
		cs.pending = cs.pending[:0]
		if cap(cs.pending) > 1<<20 {
			cs.pending = nil
		}
		return
	}
	cs.pending = append(cs.pending[:0], data...) // may overlap: append moves
}

// checkReadErr reports the reader's final error once the bytes before it
// have been fed to the session.
func (c *core) checkReadErr(cs *connState) {
	if c.conn == cs && cs.readErr != nil && !c.readPaused {
		c.s.ConnectionLost(time.Now(), cs.readErr)
	}
}

// flush hands the session's bytes to the writer when it is idle, after
// making the Store durable: nothing leaves before what it depends on is on
// disk. What was accepted and is not on its way is made durable too.
func (c *core) flush() {
	c.write()
	c.syncAccepted()
}

// write is flush's network half.
func (c *core) write() {
	cs := c.conn
	if cs == nil {
		if c.s.PendingTransmit() > 0 {
			c.s.AppendTransmit(nil) // nowhere to send them: the session resends what matters
		}
		return
	}
	c.out = c.s.AppendTransmit(c.out)
	if cs.writing || len(c.out) == 0 {
		return
	}
	if st := c.cfg.Store; st != nil {
		c.unsynced = false
		if err := st.Sync(); err != nil {
			c.log.Error("session store sync failed", "err", err)
			c.s.ConnectionLost(time.Now(), err)
			c.out = c.out[:0]
			c.drain()
			return
		}
	}
	c.observePackets(PacketSent, c.out, c.traceMode())
	b := c.out
	c.out = c.spare[:0]
	c.spare = nil
	cs.writing = true
	cs.lastWrite = b
	go cs.writer()
}

// keepSpare keeps a written batch's buffer for the next batch.
func (c *core) keepSpare(b []byte) { c.spare = b[:0] }

// idleKeep is the capacity of a buffer trim keeps.
const idleKeep = 4 << 10

// trim gives back the buffers a burst grew and a quiet connection does not
// need: the read buffers waiting for the reader, write and partial packet
// buffers over idleKeep that are empty, the slots of empty subscription
// queues and the session's decoder values (Session.Trim). The loop calls
// it when the session's timer fires, which under steady traffic is at most
// once per keep alive interval, and before its goroutine exits after
// loopLinger without work, so a busy connection regrows them rarely.
func (c *core) trim() {
	c.s.Trim()
	if len(c.out) == 0 && cap(c.out) > idleKeep {
		c.out = nil
	}
	if cap(c.spare) > idleKeep {
		c.spare = nil
	}
	for _, sub := range c.subs {
		sub.trim()
	}
	cs := c.conn
	if cs == nil {
		return
	}
	if len(cs.pending) == 0 && cap(cs.pending) > idleKeep {
		cs.pending = nil
	}
	taken := 0
	for taken < readBufs {
		select {
		case b := <-cs.free:
			taken++
			if b != nil {
				putReadBuf(b)
			}
			continue
		default:
		}
		break
	}
	for range taken {
		cs.free <- nil
	}
}

// onWritten is the writer's report of a batch.
func (c *core) onWritten(err error) {
	cs := c.conn
	cs.writing = false
	c.keepSpare(cs.lastWrite)
	cs.lastWrite = nil
	if err != nil {
		if !c.s.Connected() && cs.readErr == nil && !timedOut(err) {
			// Before CONNACK a refused connection often shows first as a
			// reset write, while the reason (a TLS alert such as
			// "certificate required") waits in the receive buffer: the
			// reader, which ends at once on a reset connection, reports it.
			return
		}
		c.s.ConnectionLost(time.Now(), err)
		c.drain()
	}
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// flushFinal writes what the session queued before it closed the connection
// (a DISCONNECT), when the writer is idle, with a short deadline.
func (c *core) flushFinal() {
	cs := c.conn
	c.out = c.s.AppendTransmit(c.out)
	if len(c.out) == 0 && !cs.writing {
		return
	}
	cs.conn.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
	if cs.writing {
		// Let the batch in progress finish (or fail at the deadline) so the
		// final bytes follow it whole.
		if err := <-cs.writeDone; err != nil {
			cs.writing = false
			c.out = c.out[:0]
			return
		}
		cs.writing = false
		c.keepSpare(cs.lastWrite)
		cs.lastWrite = nil
	}
	if len(c.out) > 0 {
		c.observePackets(PacketSent, c.out, c.traceMode())
		cs.conn.Write(c.out)
	}
	c.out = c.out[:0]
}

// teardown closes the connection and waits for its reader and writer.
func (c *core) teardown() {
	cs := c.conn
	if cs == nil {
		return
	}
	c.conn = nil
	c.live.CompareAndSwap(cs, nil)
	c.stats.connDown(time.Now())
	close(cs.done)
	cs.conn.Close()
	<-cs.rExit
	for range len(cs.readCh) {
		putReadBuf((<-cs.readCh).b)
	}
	for range len(cs.free) {
		if b := <-cs.free; b != nil {
			putReadBuf(b)
		}
	}
	if cs.writing {
		<-cs.writeDone // the closed connection ends the write at once
		cs.writing = false
	}
	if cs.lastWrite != nil {
		c.keepSpare(cs.lastWrite)
	}

	c.s.ConnectionLost(time.Now(), nil) // no-op when the session already closed
}
