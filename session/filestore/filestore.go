// Package filestore is a session.Store in one file that survives a process
// restart and a crash: an append-only log of records, each with its length
// and a CRC-32C checksum, compacted by writing a new file and renaming it
// over the old one.
//
// It is the I/O side of the session layer: package session itself never
// touches the file system (see the architecture test).
//
// Durability: records are buffered until Sync, which writes and fsyncs
// them. The client calls Sync before it writes the packets that depend on
// them, so a PUBLISH is on disk before it leaves and an incoming QoS 2
// identifier before its PUBREC, and after it accepts messages that must
// wait (queued records), before it reports them accepted.
//
// Damage: Open reads the whole log and refuses a file that is truncated in
// the middle of a record (a torn write) or whose checksum does not match,
// with an error that matches session.ErrStoreCorrupt and says where. Nothing
// is dropped silently; Options.TruncateTorn lets a caller accept losing a
// torn last record explicitly.
package filestore

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/zmqtt/zmqtt-go/session"
)

const magic = "ZMQTTSS1"

// Record types.
const (
	recPutOut byte = iota + 1
	recReleaseOut
	recDeleteOut
	recPutIn
	recDeleteIn
	recReset
	recPutQueued
	recDeleteQueued
)

const (
	maxRecord      = 1 << 28 // larger than any MQTT packet plus header
	minCompactSize = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options tune a FileStore.
type Options struct {
	// TruncateTorn accepts a log whose last record was cut short by a crash
	// and drops that record (it was never made durable by Sync). Without it,
	// Open refuses such a file.
	TruncateTorn bool
}

// CorruptError reports a damaged store file. It matches
// session.ErrStoreCorrupt.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

// Error formats the error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("zmqtt: session store %s is corrupt at byte %d: %s", e.Path, e.Offset, e.Reason)
}

// Is matches session.ErrStoreCorrupt.
func (e *CorruptError) Is(target error) bool { return target == session.ErrStoreCorrupt }

// FileStore is a session.Store in a file. It is safe for concurrent use.
type FileStore struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	w       *bufio.Writer
	size    int64 // bytes in the file, buffered ones included
	out     map[uint16]session.OutboundRecord
	queued  map[uint64][]byte
	in      map[uint16]bool
	nextID  uint16
	live    int64 // bytes the live records would take
	err     error // sticky write error
	scratch []byte
}

// Open opens the store at path, creating it when it does not exist, and
// reads its state. It returns a *CorruptError (session.ErrStoreCorrupt) for
// a damaged file and the file system's error otherwise.
func Open(path string, opts *Options) (*FileStore, error) {
	if opts == nil {
		opts = &Options{}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("zmqtt: open session store: %w", err)
	}
	s := &FileStore{path: path, f: f, out: make(map[uint16]session.OutboundRecord), queued: make(map[uint64][]byte), in: make(map[uint16]bool)}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("zmqtt: read session store: %w", err)
	}
	end, err := s.replay(data, opts.TruncateTorn)
	if err != nil {
		f.Close()
		return nil, err
	}
	if len(data) == 0 {
		if _, err := f.Write([]byte(magic)); err != nil {
			f.Close()
			return nil, fmt.Errorf("zmqtt: write session store: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("zmqtt: sync session store: %w", err)
		}
		end = int64(len(magic))
	} else if end < int64(len(data)) {
		if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, fmt.Errorf("zmqtt: truncate session store: %w", err)
		}
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("zmqtt: seek session store: %w", err)
	}
	s.size = end
	s.w = bufio.NewWriterSize(f, 64<<10)
	return s, nil
}

// replay applies the records of data and returns where the valid log ends.
func (s *FileStore) replay(data []byte, truncateTorn bool) (int64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	corrupt := func(off int, reason string) error {
		return &CorruptError{Path: s.path, Offset: int64(off), Reason: reason}
	}
	if len(data) < len(magic) || string(data[:len(magic)]) != magic {
		return 0, corrupt(0, "not a zmqtt session store (bad header)")
	}
	off := len(magic)
	for off < len(data) {
		if len(data)-off < 8 {
			if truncateTorn {
				return int64(off), nil
			}
			return 0, corrupt(off, "record header cut short (torn write)")
		}
		n := int(binary.BigEndian.Uint32(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n == 0 || n > maxRecord {
			return 0, corrupt(off, fmt.Sprintf("impossible record length %d", n))
		}
		if len(data)-off-8 < n {
			if truncateTorn {
				return int64(off), nil
			}
			return 0, corrupt(off, "record cut short (torn write)")
		}
		body := data[off+8 : off+8+n]
		if crc32.Checksum(body, castagnoli) != sum {
			return 0, corrupt(off, "checksum mismatch")
		}
		if err := s.apply(body); err != nil {
			return 0, corrupt(off, err.Error())
		}
		off += 8 + n
	}
	return int64(off), nil
}

// apply applies one record body to the in-memory state.
func (s *FileStore) apply(b []byte) error {
	typ, b := b[0], b[1:]
	id := func() (uint16, error) {
		if len(b) < 2 {
			return 0, errors.New("record too short")
		}
		return binary.BigEndian.Uint16(b), nil
	}
	switch typ {
	case recPutOut:
		if len(b) < 10 {
			return errors.New("outbound record too short")
		}
		r := session.OutboundRecord{ID: binary.BigEndian.Uint16(b), Seq: binary.BigEndian.Uint64(b[2:]), Packet: slices.Clone(b[10:])}
		if old, ok := s.out[r.ID]; ok {
			s.live -= liveSize(old)
		}
		s.out[r.ID] = r
		s.live += liveSize(r)
		s.nextID = r.ID + 1
	case recReleaseOut:
		i, err := id()
		if err != nil {
			return err
		}
		if r, ok := s.out[i]; ok {
			r.Released = true
			s.out[i] = r
		}
	case recDeleteOut:
		i, err := id()
		if err != nil {
			return err
		}
		if r, ok := s.out[i]; ok {
			s.live -= liveSize(r)
			delete(s.out, i)
		}
	case recPutIn:
		i, err := id()
		if err != nil {
			return err
		}
		if !s.in[i] {
			s.in[i] = true
			s.live += 11
		}
	case recDeleteIn:
		i, err := id()
		if err != nil {
			return err
		}
		if s.in[i] {
			delete(s.in, i)
			s.live -= 11
		}
	case recReset:
		for _, r := range s.out {
			s.live -= liveSize(r)
		}
		clear(s.out)
		s.live -= 11 * int64(len(s.in))
		clear(s.in)
	case recPutQueued:
		if len(b) < 8 {
			return errors.New("queued record too short")
		}
		seq := binary.BigEndian.Uint64(b)
		if old, ok := s.queued[seq]; ok {
			s.live -= queuedSize(old)
		}
		s.queued[seq] = slices.Clone(b[8:])
		s.live += queuedSize(b[8:])
	case recDeleteQueued:
		if len(b) < 8 {
			return errors.New("record too short")
		}
		seq := binary.BigEndian.Uint64(b)
		if old, ok := s.queued[seq]; ok {
			s.live -= queuedSize(old)
			delete(s.queued, seq)
		}
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return nil
}

func liveSize(r session.OutboundRecord) int64 { return int64(8+1+10+len(r.Packet)) + 11 }

func queuedSize(pkt []byte) int64 { return int64(8 + 1 + 8 + len(pkt)) }

// write appends one record to the buffer and applies it.
func (s *FileStore) write(typ byte, parts ...[]byte) error {
	if s.err != nil {
		return s.err
	}
	if s.f == nil {
		return errClosed
	}
	body := append(s.scratch[:0], typ)
	for _, p := range parts {
		body = append(body, p...)
	}
	s.scratch = body
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(body, castagnoli))
	if _, err := s.w.Write(hdr[:]); err != nil {
		s.err = err
		return err
	}
	if _, err := s.w.Write(body); err != nil {
		s.err = err
		return err
	}
	s.size += int64(8 + len(body))
	return s.apply(body)
}

var errClosed = errors.New("zmqtt: session store is closed")

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// Load returns the state read by Open and changed since.
func (s *FileStore) Load() (session.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st session.State
	for _, r := range s.out {
		r.Packet = slices.Clone(r.Packet)
		st.Outbound = append(st.Outbound, r)
	}
	slices.SortFunc(st.Outbound, func(a, b session.OutboundRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	for seq, pkt := range s.queued {
		st.Queued = append(st.Queued, session.QueuedRecord{Seq: seq, Packet: slices.Clone(pkt)})
	}
	slices.SortFunc(st.Queued, func(a, b session.QueuedRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	for id := range s.in {
		st.Inbound = append(st.Inbound, id)
	}
	slices.Sort(st.Inbound)
	st.NextID = s.nextID
	return st, nil
}

// PutOutbound records an outgoing message.
func (s *FileStore) PutOutbound(r session.OutboundRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var head [10]byte
	binary.BigEndian.PutUint16(head[:], r.ID)
	binary.BigEndian.PutUint64(head[2:], r.Seq)
	return s.write(recPutOut, head[:], r.Packet)
}

// ReleaseOutbound records a PUBREC.
func (s *FileStore) ReleaseOutbound(id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(recReleaseOut, u16(id))
}

// DeleteOutbound forgets an outgoing message.
func (s *FileStore) DeleteOutbound(id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(recDeleteOut, u16(id))
}

// PutInbound records an incoming QoS 2 identifier.
func (s *FileStore) PutInbound(id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(recPutIn, u16(id))
}

// DeleteInbound forgets an incoming QoS 2 identifier.
func (s *FileStore) DeleteInbound(id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(recDeleteIn, u16(id))
}

// PutQueued records an accepted message not yet sent.
func (s *FileStore) PutQueued(r session.QueuedRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], r.Seq)
	return s.write(recPutQueued, head[:], r.Packet)
}

// DeleteQueued forgets a queued message.
func (s *FileStore) DeleteQueued(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(recDeleteQueued, binary.BigEndian.AppendUint64(nil, seq))
}

// Reset forgets the outbound and inbound records; queued ones stay.
func (s *FileStore) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(recReset)
}

// Sync writes the buffered records and fsyncs the file; when the log has
// grown well past its live records it is compacted first.
func (s *FileStore) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.f == nil {
		return errClosed
	}
	if s.size > minCompactSize && s.size > 4*(s.live+int64(len(magic))) {
		return s.compact()
	}
	if err := s.w.Flush(); err != nil {
		s.err = err
		return err
	}
	if err := s.f.Sync(); err != nil {
		s.err = err
		return err
	}
	return nil
}

// compact writes the live records to a new file, fsyncs it and renames it
// over the log: a crash leaves either the old log or the new one.
func (s *FileStore) compact() error {
	var buf bytes.Buffer
	buf.WriteString(magic)
	rec := func(body []byte) {
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
		binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(body, castagnoli))
		buf.Write(hdr[:])
		buf.Write(body)
	}
	outs := make([]session.OutboundRecord, 0, len(s.out))
	for _, r := range s.out {
		outs = append(outs, r)
	}
	slices.SortFunc(outs, func(a, b session.OutboundRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, r := range outs {
		body := []byte{recPutOut}
		body = binary.BigEndian.AppendUint16(body, r.ID)
		body = binary.BigEndian.AppendUint64(body, r.Seq)
		body = append(body, r.Packet...)
		rec(body)
		if r.Released {
			rec(append([]byte{recReleaseOut}, u16(r.ID)...))
		}
	}
	for id := range s.in {
		rec(append([]byte{recPutIn}, u16(id)...))
	}
	seqs := slices.Sorted(maps.Keys(s.queued))
	for _, seq := range seqs {
		body := []byte{recPutQueued}
		body = binary.BigEndian.AppendUint64(body, seq)
		rec(append(body, s.queued[seq]...))
	}
	tmp := s.path + ".tmp"
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		s.err = err
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		s.err = err
		return err
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	nf, err := os.OpenFile(s.path, os.O_RDWR, 0o600)
	if err != nil {
		s.err = err
		return err
	}
	if _, err := nf.Seek(0, io.SeekEnd); err != nil {
		nf.Close()
		s.err = err
		return err
	}
	s.f.Close()
	s.f = nf
	s.w.Reset(nf)
	s.size = int64(buf.Len())
	return nil
}

func writeFileSync(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Close syncs and closes the file. Later calls return an error.
func (s *FileStore) Close() error {
	if err := s.Sync(); err != nil {
		s.mu.Lock()
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

var _ session.Store = (*FileStore)(nil)
