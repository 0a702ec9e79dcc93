package session

import (
	"cmp"
	"errors"
	"slices"
	"sync"
)

// Store persists the part of a session that must survive a process restart
// so that no QoS 1 or 2 message is lost in a crash: the outgoing QoS 1 and 2
// PUBLISH packets not yet acknowledged, those accepted and still waiting in
// the queue for a connection, the incoming QoS 2 packet identifiers answered
// with PUBREC but not yet released, and the next packet identifier.
//
// The session calls a Store synchronously, in the order things happen, and
// before the packet that depends on a record is handed out for sending: an
// outgoing PUBLISH is saved before it is sent, an incoming QoS 2 identifier
// before its PUBREC. A Store that buffers writes must make them durable in
// Sync, which the caller of the session runs before it writes to the
// network. An error from a Store fails the operation that caused it.
//
// MemoryStore keeps the state in memory (for tests and for a process that
// only needs to survive reconnects); the filestore package keeps it in a
// crash-safe file.
type Store interface {
	// Load returns the saved state. A new, empty store returns a zero State.
	Load() (State, error)
	// PutOutbound saves an outgoing QoS 1 or 2 PUBLISH. Packet is its
	// encoding without DUP and without topic alias; the store must copy it.
	// It replaces any record with the same ID, Released included: the
	// session rewrites the records of a lost session's messages this way
	// (Config.SessionLost).
	PutOutbound(r OutboundRecord) error
	// ReleaseOutbound records that the PUBLISH with this identifier got its
	// PUBREC and that its PUBREL is due.
	ReleaseOutbound(id uint16) error
	// DeleteOutbound forgets an outgoing message: acknowledged, refused or
	// failed.
	DeleteOutbound(id uint16) error
	// PutInbound saves an incoming QoS 2 identifier answered with PUBREC.
	PutInbound(id uint16) error
	// DeleteInbound forgets an incoming QoS 2 identifier after PUBCOMP.
	DeleteInbound(id uint16) error
	// PutQueued saves an outgoing QoS 1 or 2 PUBLISH accepted while it
	// cannot be sent yet (no connection, no send quota): Packet is its
	// encoding with a placeholder packet identifier; the store must copy
	// it. When the message is sent its record moves to PutOutbound, under
	// the same Seq, before DeleteQueued: a crash in between leaves both,
	// and a Session restoring them keeps only the outbound one.
	PutQueued(r QueuedRecord) error
	// DeleteQueued forgets the queued message with this Seq: sent (it has
	// an outbound record now), withdrawn or failed.
	DeleteQueued(seq uint64) error
	// Reset forgets every outbound and inbound record: the server did not
	// resume the session. Queued records stay: they never reached any
	// session.
	Reset() error
	// Sync makes every change so far durable.
	Sync() error
}

// State is what a Store holds.
type State struct {
	// Outbound are the unacknowledged outgoing messages, oldest first.
	Outbound []OutboundRecord
	// Queued are the accepted messages not yet sent, oldest first.
	Queued []QueuedRecord
	// Inbound are the incoming QoS 2 identifiers waiting for PUBREL.
	Inbound []uint16
	// NextID is the packet identifier to try first; 0 means 1.
	NextID uint16
}

// OutboundRecord is one unacknowledged outgoing QoS 1 or 2 message.
type OutboundRecord struct {
	ID       uint16
	Seq      uint64 // acceptance order, kept when the message is published again
	Released bool   // PUBREC received: the PUBREL is what remains to send
	Packet   []byte // PUBLISH encoding: DUP clear, full topic, no alias
}

// QueuedRecord is one accepted QoS 1 or 2 message not yet sent.
type QueuedRecord struct {
	Seq    uint64 // acceptance order; its outbound record keeps it
	Packet []byte // PUBLISH encoding: DUP clear, full topic, placeholder packet identifier
}

// ErrStoreCorrupt matches every error of a Store whose saved data is
// truncated or damaged. Such a store is never read past the damage, and
// nothing is dropped silently.
var ErrStoreCorrupt = errors.New("zmqtt: session store is corrupt")

// MemoryStore is a Store in memory, safe for concurrent use. A new Session
// built on the same MemoryStore resumes the old one's state, which is how
// tests simulate a process restart.
type MemoryStore struct {
	mu      sync.Mutex
	out     map[uint16]OutboundRecord
	queued  map[uint64][]byte
	in      map[uint16]bool
	nextID  uint16
	failErr error
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{out: make(map[uint16]OutboundRecord), queued: make(map[uint64][]byte), in: make(map[uint16]bool)}
}

// FailWith makes every later write fail with err (nil to stop); for tests
// of the session's handling of store failures.
func (m *MemoryStore) FailWith(err error) {
	m.mu.Lock()
	m.failErr = err
	m.mu.Unlock()
}

// Load returns a copy of the state.
func (m *MemoryStore) Load() (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st State
	for _, r := range m.out {
		r.Packet = slices.Clone(r.Packet)
		st.Outbound = append(st.Outbound, r)
	}
	slices.SortFunc(st.Outbound, func(a, b OutboundRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	for seq, pkt := range m.queued {
		st.Queued = append(st.Queued, QueuedRecord{Seq: seq, Packet: slices.Clone(pkt)})
	}
	slices.SortFunc(st.Queued, func(a, b QueuedRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	for id := range m.in {
		st.Inbound = append(st.Inbound, id)
	}
	slices.Sort(st.Inbound)
	st.NextID = m.nextID
	return st, nil
}

// PutOutbound saves a copy of r.
func (m *MemoryStore) PutOutbound(r OutboundRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	r.Packet = slices.Clone(r.Packet)
	m.out[r.ID] = r
	m.nextID = r.ID + 1
	return nil
}

// ReleaseOutbound marks the message with id as released.
func (m *MemoryStore) ReleaseOutbound(id uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	if r, ok := m.out[id]; ok {
		r.Released = true
		m.out[id] = r
	}
	return nil
}

// DeleteOutbound forgets the message with id.
func (m *MemoryStore) DeleteOutbound(id uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	delete(m.out, id)
	return nil
}

// PutInbound saves an incoming QoS 2 identifier.
func (m *MemoryStore) PutInbound(id uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	m.in[id] = true
	return nil
}

// DeleteInbound forgets an incoming QoS 2 identifier.
func (m *MemoryStore) DeleteInbound(id uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	delete(m.in, id)
	return nil
}

// PutQueued saves a copy of r.
func (m *MemoryStore) PutQueued(r QueuedRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	m.queued[r.Seq] = slices.Clone(r.Packet)
	return nil
}

// DeleteQueued forgets the queued message with seq.
func (m *MemoryStore) DeleteQueued(seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	delete(m.queued, seq)
	return nil
}

// Reset forgets the outbound and inbound records; queued ones stay.
func (m *MemoryStore) Reset() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	clear(m.out)
	clear(m.in)
	return nil
}

// Sync does nothing: memory is as durable as it gets.
func (m *MemoryStore) Sync() error { return nil }
