package client

import (
	"errors"
	"net"
	"time"
)

const (
	readBufSize = 32 << 10
	readBufs    = 3
	// finalWriteTimeout bounds the write of a last DISCONNECT to a peer that
	// may not be reading any more.
	finalWriteTimeout = time.Second
)

// chunk is one read from the connection.
type chunk struct {
	b   []byte
	err error
}

// connState is one network connection and its reader and writer.
type connState struct {
	conn      net.Conn
	gen       uint64
	readCh    chan chunk
	free      chan []byte
	writeCh   chan []byte
	writeDone chan error
	writing   bool
	done      chan struct{} // closed at teardown: reader and writer exit
	rExit     chan struct{}
	wExit     chan struct{}
	pending   []byte // bytes not fed to the session yet: a partial packet, or kept back by a pause
	readErr   error  // the reader's final error, reported once pending is consumed
	lastWrite []byte // the batch the writer holds
}

func newConnState(conn net.Conn, gen uint64) *connState {
	cs := &connState{
		conn:      conn,
		gen:       gen,
		readCh:    make(chan chunk),
		free:      make(chan []byte, readBufs),
		writeCh:   make(chan []byte, 1),
		writeDone: make(chan error, 1),
		done:      make(chan struct{}),
		rExit:     make(chan struct{}),
		wExit:     make(chan struct{}),
	}
	for i := 0; i < readBufs; i++ {
		cs.free <- make([]byte, readBufSize)
	}
	go cs.read()
	go cs.write()
	return cs
}

// read is the connection's reader goroutine. It exits when the connection
// is torn down or a read fails (after handing the failure to the loop).
func (cs *connState) read() {
	defer close(cs.rExit)
	for {
		var buf []byte
		select {
		case buf = <-cs.free:
		case <-cs.done:
			return
		}
		n, err := cs.conn.Read(buf[:cap(buf)])
		select {
		case cs.readCh <- chunk{b: buf[:n], err: err}:
		case <-cs.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// write is the connection's writer goroutine. It exits when the connection
// is torn down or a write fails (after reporting the failure).
func (cs *connState) write() {
	defer close(cs.wExit)
	for {
		select {
		case b := <-cs.writeCh:
			_, err := cs.conn.Write(b)
			select {
			case cs.writeDone <- err:
			case <-cs.done:
				return
			}
			if err != nil {
				return
			}
		case <-cs.done:
			return
		}
	}
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
		cs.free <- ch.b[:cap(ch.b)]
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
	c.readAt = now
	defer func() { c.readAt = time.Time{} }()
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
	cs.writeCh <- b
}

// onWritten is the writer's report of a batch.
func (c *core) onWritten(err error) {
	cs := c.conn
	cs.writing = false
	c.spare = cs.lastWrite[:0]
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
		c.spare = cs.lastWrite[:0]
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
	<-cs.wExit
	if cs.lastWrite != nil {
		c.spare = cs.lastWrite[:0]
	}
	c.s.ConnectionLost(time.Now(), nil) // no-op when the session already closed
}
