package client

import (
	"errors"
	"math"
	mbits "math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Stats is a snapshot of a client's counters and gauges, as returned by
// Client.Stats and Client5.Stats. Counters start at zero when the client is
// made and only grow; they keep their values after the client closed.
// Gauges (Inflight*, Queued*, Uptime) say how things stand now.
//
// Each field is read atomically, but the snapshot is not taken at a single
// instant: two fields may differ by the packets of one turn of the client's
// loop. What the application sees is counted first: when Publish returns,
// Stats counts the acknowledgement that completed it (and PublishLatency
// its duration); when Next returns a message, Stats counts the PUBLISH
// that carried it and its delivery. The gauges are stored once per turn of
// the loop (after it handled an input and wrote what it produced).
type Stats struct {
	// Sent counts what the client handed to the connection: every packet,
	// counted when the loop gives its bytes to the writer (a write that then
	// fails is not taken back). Received counts every whole packet read from
	// the connection that the session decoded, one that broke a rule of the
	// protocol included; a packet that does not decode (malformed), which
	// ends the connection, is not counted.
	Sent, Received Traffic

	// Delivered counts incoming messages handed to subscriptions (once per
	// message, whatever the number of subscriptions in fan-out routing) or
	// to a request waiting for its reply. Duplicates the session recognised
	// are not delivered again, so Delivered may be below
	// Received.Messages.
	Delivered uint64
	// Dropped counts QoS 0 messages dropped by full DropWhenFull queues:
	// the sum of every subscription's Subscription.Dropped, closed ones
	// included.
	Dropped uint64
	// Unrouted counts incoming messages no subscription took (as the
	// Unrouted method).
	Unrouted uint64

	// ConnectAttempts counts dials started (first attempts and retries).
	ConnectAttempts uint64
	// Connects counts connections the broker accepted with a CONNACK;
	// Reconnects is Connects after the first one.
	Connects, Reconnects uint64
	// ConnectionsLost counts accepted connections that ended other than by
	// Disconnect: a network error, a timeout, a protocol error, the
	// broker's DISCONNECT.
	ConnectionsLost uint64
	// Uptime is how long the current connection has been up since its
	// CONNACK; zero when not connected. ConnectedTotal is the time spent
	// connected over the client's life, the current connection included.
	Uptime, ConnectedTotal time.Duration

	// InflightOut is the number of outgoing QoS 1/2 messages sent and not
	// yet completed (PUBACK, or PUBREC then PUBCOMP). InflightIn is the
	// number of incoming QoS 1/2 messages whose flow is not complete:
	// waiting for the application's (or the client's automatic)
	// acknowledgement, held for their subscription on a resumed session, or
	// waiting for the broker's PUBREL; it is what counts against our
	// Receive Maximum.
	InflightOut, InflightIn int
	// Queued is the number of publishes accepted and waiting in the
	// session's queue for the connection, send quota (Receive Maximum or
	// MaxInflight) or a packet identifier; bounded by Config.MaxQueued.
	// After the client closed, InflightOut and Queued say what it left
	// unfinished (failed with ErrClosed; kept in the Store when one is
	// set).
	Queued int
	// QueuedAsync is the number of PublishAsync calls the client's loop has
	// not taken in yet; bounded by Config.MaxQueued.
	QueuedAsync int
	// QueuedSubscriptions is the number of messages waiting in the queues of
	// the open subscriptions for the application to read them (Next, All).
	QueuedSubscriptions int

	// PublishLatency is the distribution of QoS 1/2 publish durations, from
	// the client's loop taking the message in (Publish or PublishAsync) to
	// its acknowledgement (PUBACK, or PUBCOMP; a refusing PUBACK or PUBREC
	// counts too), time spent queued while offline or beyond the send window
	// included. Publishes that fail without an acknowledgement (client
	// closed, session lost, withdrawn) are not counted.
	PublishLatency Latency
}

// Traffic counts packets and bytes in one direction.
type Traffic struct {
	// Packets counts packets by type, indexed by codec.Type:
	// Packets[codec.TypePuback] is the number of PUBACKs, for instance.
	Packets [16]uint64
	// Bytes is the size of every packet, fixed headers included: what the
	// connection carried, before TLS or WebSocket framing.
	Bytes uint64
	// Messages counts PUBLISH packets by QoS (index 0, 1, 2), resent ones
	// included; MessageBytes is their size, headers and properties
	// included.
	Messages, MessageBytes [3]uint64
	// Duplicates counts PUBLISH packets with the DUP flag set: resends of a
	// QoS 1/2 message after a reconnect (by us when Sent, by the broker
	// when Received).
	Duplicates uint64
}

// latencyBounds are the upper bounds of the buckets of Latency, close to
// OpenTelemetry's default histogram boundaries for durations: fine at the
// low end, where a loopback or LAN round trip lands, and up to 10 s for a
// publish that waited for a reconnect.
var latencyBounds = [...]time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// LatencyBuckets is the number of buckets of a Latency histogram.
const LatencyBuckets = len(latencyBounds) + 1

// Latency is a histogram of durations with the count, sum, minimum,
// maximum and last value.
type Latency struct {
	Count uint64
	// Total is the sum of the durations: Total / Count is the mean (see
	// Mean).
	Total time.Duration
	// Min, Max and Last are zero while Count is zero.
	Min, Max, Last time.Duration
	// Buckets[i] counts the durations d with Bound(i-1) < d <= Bound(i):
	// bounds 250 µs, 500 µs, 1 ms, 2.5 ms, 5 ms, 10 ms, 25 ms, 50 ms,
	// 100 ms, 250 ms, 500 ms, 1 s, 2.5 s, 5 s, 10 s, and a last bucket
	// without a bound.
	Buckets [LatencyBuckets]uint64
}

// Mean returns Total / Count, or 0 when Count is 0.
func (l Latency) Mean() time.Duration {
	if l.Count == 0 {
		return 0
	}
	return l.Total / time.Duration(l.Count)
}

// Bound returns the inclusive upper bound of bucket i: math.MaxInt64 for
// the last bucket, and 0 for an i out of range.
func (Latency) Bound(i int) time.Duration {
	switch {
	case i >= 0 && i < len(latencyBounds):
		return latencyBounds[i]
	case i == len(latencyBounds):
		return math.MaxInt64
	}
	return 0
}

// Quantile returns an estimate of the q-quantile (0 <= q <= 1) of the
// durations: the upper bound of the bucket it falls in, capped by Max; 0
// when Count is 0.
func (l Latency) Quantile(q float64) time.Duration {
	if l.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(l.Count)))
	rank = max(rank, 1)
	var seen uint64
	for i, n := range l.Buckets {
		seen += n
		if seen >= rank {
			return min(l.Bound(i), l.Max)
		}
	}
	return l.Max
}

// The counters the loop keeps (see counters). Each is an index into
// counters.local and counters.shared.
const (
	cSentPackets  = 0                 // 16: by packet type
	cRecvPackets  = cSentPackets + 16 // 16
	cSentBytes    = cRecvPackets + 16 // 1
	cRecvBytes    = cSentBytes + 1    // 1
	cSentMsgs     = cRecvBytes + 1    // 3: by QoS
	cRecvMsgs     = cSentMsgs + 3     // 3
	cSentMsgBytes = cRecvMsgs + 3     // 3
	cRecvMsgBytes = cSentMsgBytes + 3 // 3
	cSentDup      = cRecvMsgBytes + 3 // 1
	cRecvDup      = cSentDup + 1      // 1
	cDelivered    = cRecvDup + 1      // 1
	cDropped      = cDelivered + 1    // 1
	cAttempts     = cDropped + 1      // 1
	cConnects     = cAttempts + 1     // 1
	cLost         = cConnects + 1     // 1
	cLatCount     = cLost + 1         // 1
	cLatTotal     = cLatCount + 1     // 1: nanoseconds
	cLatBuckets   = cLatTotal + 1     // LatencyBuckets
	nCounters     = cLatBuckets + LatencyBuckets
)

// counters are the client's statistics. The loop counts in local, without
// atomics, and adds to shared (publish) before anything it counted can be
// seen by the application: before a waiter is resolved or a message
// queued, and once per turn. A batch of packets thus costs one atomic add
// per counter it changed. Stats reads shared. Every field but shared, the
// gauges and the latency extremes is the loop's. local comes from a pool
// when the loop first counts and goes back when the loop goroutine exits
// (release), so that an idle client does not keep it.
type counters struct {
	local  *[nCounters]uint64
	dirty  [(nCounters + 63) / 64]uint64 // bit i: local[i] is not zero
	shared [nCounters]atomic.Uint64

	// gauges, stored by the loop
	inflightOut, inflightIn, queued atomic.Int64
	// connectedAt is when the current connection's CONNACK came, in
	// nanoseconds since born, plus one; 0 when not connected.
	connectedAt atomic.Int64
	upTotal     atomic.Int64 // nanoseconds connected, finished connections only
	born        time.Time    // monotonic base of connectedAt

	latMin, latMax, latLast atomic.Int64 // nanoseconds; stored by the loop
	latSeen                 bool         // the loop recorded a latency
}

// countPacket counts one packet of header h in direction dir; runs on
// the loop.
func (k *counters) countPacket(dir Direction, h codec.Header) {
	size := uint64(h.Size())
	pk, by, msgs, mb, dup := cSentPackets, cSentBytes, cSentMsgs, cSentMsgBytes, cSentDup
	if dir == PacketReceived {
		pk, by, msgs, mb, dup = cRecvPackets, cRecvBytes, cRecvMsgs, cRecvMsgBytes, cRecvDup
	}
	k.add(pk+int(h.Type&0x0F), 1)
	k.add(by, size)
	if h.Type == codec.TypePublish {
		q := int(h.Flags>>1) & 3
		if q > 2 {
			q = 2 // never: ParseHeader refuses QoS 3
		}
		k.add(msgs+q, 1)
		k.add(mb+q, size)
		if h.Flags&0x08 != 0 {
			k.add(dup, 1)
		}
	}
}

// localPool holds the local counts of clients whose loop is not running.
var localPool = sync.Pool{New: func() any { return new([nCounters]uint64) }}

// add adds n to counter i; runs on the loop.
func (k *counters) add(i int, n uint64) {
	if k.local == nil {
		k.local = localPool.Get().(*[nCounters]uint64)
	}
	k.local[i] += n
	k.dirty[i/64] |= 1 << (i % 64)
}

// latency records one publish duration; runs on the loop.
func (k *counters) latency(d time.Duration) {
	d = max(d, 0)
	k.add(cLatCount, 1)
	k.add(cLatTotal, uint64(d))
	b := len(latencyBounds)
	for i, bound := range latencyBounds {
		if d <= bound {
			b = i
			break
		}
	}
	k.add(cLatBuckets+b, 1)
	n := int64(d)
	if !k.latSeen || n < k.latMin.Load() {
		k.latMin.Store(n)
		k.latSeen = true
	}
	if n > k.latMax.Load() {
		k.latMax.Store(n)
	}
	k.latLast.Store(n)
}

// publish adds the local counts to the shared ones; runs on the loop. Its
// cost is one atomic add per counter that changed since the last call.
func (k *counters) publish() {
	for w, bits := range k.dirty {
		for bits != 0 {
			i := w*64 + mbits.TrailingZeros64(bits)
			bits &= bits - 1
			k.shared[i].Add(k.local[i])
			k.local[i] = 0
		}
		k.dirty[w] = 0
	}
}

// release publishes the local counts and gives their array back to the
// pool; runs on the loop, when its goroutine is about to exit.
func (k *counters) release() {
	if k.local == nil {
		return
	}
	k.publish()
	localPool.Put(k.local)
	k.local = nil
}

// gauge stores v in g when it changed; a load is cheaper than a store.
func gauge(g *atomic.Int64, v int) {
	if g.Load() != int64(v) {
		g.Store(int64(v))
	}
}

// connUp and connDown track the time connected; they run on the loop.
func (k *counters) connUp(now time.Time) {
	k.connectedAt.Store(int64(now.Sub(k.born)) + 1)
}

func (k *counters) connDown(now time.Time) {
	if at := k.connectedAt.Swap(0); at != 0 {
		k.upTotal.Add(int64(now.Sub(k.born)) - (at - 1))
	}
}

// publishGauges stores the loop's gauges and publishes the counts; runs on
// the loop once per turn.
func (c *core) publishGauges() {
	unacked, queued := c.s.Inflight()
	gauge(&c.stats.inflightOut, unacked)
	gauge(&c.stats.queued, queued)
	gauge(&c.stats.inflightIn, c.s.Inbound())
	c.stats.publish()
}

// snapshot builds a Stats from the shared counters; safe from any
// goroutine.
func (c *core) snapshot() Stats {
	k := &c.stats
	v := func(i int) uint64 { return k.shared[i].Load() }
	var s Stats
	for t := range 16 {
		s.Sent.Packets[t] = v(cSentPackets + t)
		s.Received.Packets[t] = v(cRecvPackets + t)
	}
	s.Sent.Bytes, s.Received.Bytes = v(cSentBytes), v(cRecvBytes)
	for q := range 3 {
		s.Sent.Messages[q], s.Received.Messages[q] = v(cSentMsgs+q), v(cRecvMsgs+q)
		s.Sent.MessageBytes[q], s.Received.MessageBytes[q] = v(cSentMsgBytes+q), v(cRecvMsgBytes+q)
	}
	s.Sent.Duplicates, s.Received.Duplicates = v(cSentDup), v(cRecvDup)
	s.Delivered = v(cDelivered)
	s.Dropped = v(cDropped)
	s.Unrouted = c.unrouted.Load()
	s.ConnectAttempts = v(cAttempts)
	s.Connects = v(cConnects)
	if s.Connects > 0 {
		s.Reconnects = s.Connects - 1
	}
	s.ConnectionsLost = v(cLost)
	s.ConnectedTotal = time.Duration(k.upTotal.Load())
	if at := k.connectedAt.Load(); at != 0 {
		s.Uptime = max(time.Since(k.born)-time.Duration(at-1), 0)
		s.ConnectedTotal += s.Uptime
	}
	s.InflightOut = int(k.inflightOut.Load())
	s.InflightIn = int(k.inflightIn.Load())
	s.Queued = int(k.queued.Load())
	c.in.mu.Lock()
	s.QueuedAsync = len(c.in.queue)
	c.in.mu.Unlock()
	if subs := c.openSubs.Load(); subs != nil {
		for _, sub := range *subs {
			s.QueuedSubscriptions += sub.queued()
		}
	}
	l := &s.PublishLatency
	l.Count = v(cLatCount)
	l.Total = time.Duration(v(cLatTotal))
	for i := range l.Buckets {
		l.Buckets[i] = v(cLatBuckets + i)
	}
	if l.Count > 0 {
		l.Min, l.Max, l.Last = time.Duration(k.latMin.Load()), time.Duration(k.latMax.Load()), time.Duration(k.latLast.Load())
	}
	return s
}

// publishAcked reports whether a publish that ended with err got an
// acknowledgement from the server (a success, or a refusing reason code):
// only those count in PublishLatency.
func publishAcked(err error) bool {
	if err == nil {
		return true
	}
	var re *ReasonError
	return errors.As(err, &re)
}

// Stats returns a snapshot of the client's counters and gauges (see
// Stats). It is cheap (atomic loads, and a lock per open subscription
// for its queue length), never waits for the client's loop, and works
// after the client closed. It returns no error.
func (c *Client) Stats() Stats { return c.c.snapshot() }

// Stats is Client.Stats for MQTT 5.0.
func (c *Client5) Stats() Stats { return c.c.snapshot() }
