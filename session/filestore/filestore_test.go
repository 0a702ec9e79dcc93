package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

func open(t *testing.T, path string, opts *Options) *FileStore {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rec(id uint16, seq uint64, payload string) session.OutboundRecord {
	p := codec.Publish{Topic: "t", QoS: 1, PacketID: id, Payload: []byte(payload)}
	b, err := p.Append(nil, codec.V5)
	if err != nil {
		panic(err)
	}
	return session.OutboundRecord{ID: id, Seq: seq, Packet: b}
}

// fill writes a known sequence of changes and returns the state it leaves.
func fill(t *testing.T, s *FileStore) session.State {
	t.Helper()
	must(t, s.PutOutbound(rec(1, 1, "one")))
	must(t, s.PutOutbound(rec(2, 2, "two")))
	must(t, s.PutOutbound(rec(3, 3, "three")))
	must(t, s.ReleaseOutbound(2))
	must(t, s.DeleteOutbound(1))
	must(t, s.PutInbound(7))
	must(t, s.PutInbound(8))
	must(t, s.DeleteInbound(7))
	must(t, s.Sync())
	r2, r3 := rec(2, 2, "two"), rec(3, 3, "three")
	r2.Released = true
	return session.State{Outbound: []session.OutboundRecord{r2, r3}, Inbound: []uint16{8}, NextID: 4}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	s := open(t, path, nil)
	want := fill(t, s)
	got, _ := s.Load()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("state before reopen (-want +got):\n%s", diff)
	}
	must(t, s.Close())
	s2 := open(t, path, nil)
	got, err := s2.Load()
	must(t, err)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("state after reopen (-want +got):\n%s", diff)
	}
	must(t, s2.Reset())
	must(t, s2.Sync())
	s2.Close()
	got, _ = open(t, path, nil).Load()
	if len(got.Outbound) != 0 || len(got.Inbound) != 0 {
		t.Fatalf("state after Reset: %+v", got)
	}
}

// TestTornAndCorrupt cuts the file at every byte of its records and flips
// every byte: each damaged file is refused with ErrStoreCorrupt, never a
// panic and never a silently shorter state.
func TestTornAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.log")
	s := open(t, path, nil)
	fill(t, s)
	must(t, s.Close())
	data, err := os.ReadFile(path)
	must(t, err)
	for cut := 1; cut < len(data); cut++ {
		if cut == len(magic) {
			continue // a header alone is a valid empty store
		}
		p := filepath.Join(dir, "cut.log")
		must(t, os.WriteFile(p, data[:cut], 0o600))
		_, err := Open(p, nil)
		if !isBoundary(data, cut) {
			var ce *CorruptError
			if !errors.Is(err, session.ErrStoreCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("file cut at %d: %v, want ErrStoreCorrupt", cut, err)
			}
		} else if err != nil {
			t.Fatalf("file cut at record boundary %d: %v", cut, err)
		}
	}
	for i := 0; i < len(data); i++ {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x40
		p := filepath.Join(dir, "flip.log")
		must(t, os.WriteFile(p, bad, 0o600))
		if _, err := Open(p, nil); !errors.Is(err, session.ErrStoreCorrupt) {
			t.Fatalf("byte %d flipped: %v, want ErrStoreCorrupt", i, err)
		}
	}
}

// isBoundary reports whether cut falls between two whole records.
func isBoundary(data []byte, cut int) bool {
	off := len(magic)
	for off < len(data) {
		if off == cut {
			return true
		}
		n := int(data[off])<<24 | int(data[off+1])<<16 | int(data[off+2])<<8 | int(data[off+3])
		off += 8 + n
	}
	return false
}

func TestTruncateTornOption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	s := open(t, path, nil)
	must(t, s.PutOutbound(rec(1, 1, "kept")))
	must(t, s.Sync())
	must(t, s.PutOutbound(rec(2, 2, "torn")))
	must(t, s.Close())
	data, _ := os.ReadFile(path)
	must(t, os.WriteFile(path, data[:len(data)-3], 0o600))
	if _, err := Open(path, nil); !errors.Is(err, session.ErrStoreCorrupt) {
		t.Fatalf("torn tail without the option: %v", err)
	}
	s2 := open(t, path, &Options{TruncateTorn: true})
	st, _ := s2.Load()
	if len(st.Outbound) != 1 || st.Outbound[0].ID != 1 {
		t.Fatalf("state %+v, want only the synced record", st)
	}
	// The torn bytes are gone: appending and reopening works.
	must(t, s2.PutOutbound(rec(3, 3, "after")))
	must(t, s2.Close())
	st, _ = open(t, path, nil).Load()
	if len(st.Outbound) != 2 {
		t.Fatalf("state after repair and append: %+v", st)
	}
}

func TestBadHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	must(t, os.WriteFile(path, []byte("something else entirely"), 0o600))
	if _, err := Open(path, nil); !errors.Is(err, session.ErrStoreCorrupt) {
		t.Fatalf("%v", err)
	}
}

func TestCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	s := open(t, path, nil)
	payload := string(make([]byte, 1000))
	for i := 0; i < 5000; i++ {
		id := uint16(i%100 + 1)
		must(t, s.PutOutbound(rec(id, uint64(i+1), payload)))
		if i < 4950 {
			must(t, s.DeleteOutbound(id))
		}
		if i%500 == 0 {
			must(t, s.Sync())
		}
	}
	must(t, s.Sync())
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Size() > 4<<20 {
		t.Fatalf("log is %d bytes after compaction", fi.Size())
	}
	want, _ := s.Load()
	must(t, s.Close())
	got, _ := open(t, path, nil).Load()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("compacted state differs (-want +got):\n%s", diff)
	}
	if len(got.Outbound) != 50 {
		t.Fatalf("%d live records, want 50", len(got.Outbound))
	}
}

// TestSessionRestart is the store test: state saved, the process
// "restarts" (a new Session from the same file), and every unacknowledged
// message is resent, in order, with DUP set [MQTT-4.4.0-1].
func TestSessionRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	st := open(t, path, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s1, err := session.New(session.Config{Version: codec.V5, ClientID: "c", Store: st})
	must(t, err)
	feed := func(s *session.Session, p codec.Packet) {
		b, err := codec.Append(nil, p, codec.V5)
		must(t, err)
		if _, err := s.HandleBytes(now, b); err != nil {
			t.Fatal(err)
		}
		for _, ok := s.NextEvent(); ok; _, ok = s.NextEvent() {
		}
	}
	must(t, s1.Connect(now))
	feed(s1, &codec.Connack{})
	for _, p := range []string{"a", "b", "c", "d"} {
		qos := codec.QoS(1)
		if p == "b" || p == "c" {
			qos = 2
		}
		if _, err := s1.Publish(now, &codec.Publish{Topic: "t", QoS: qos, Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	feed(s1, &codec.Puback{PacketID: 1}) // a done
	feed(s1, &codec.Pubrec{PacketID: 2}) // b released
	feed(s1, &codec.Publish{Topic: "in", QoS: 2, PacketID: 40})
	must(t, st.Sync())
	must(t, st.Close()) // the process dies here

	st2 := open(t, path, nil)
	s2, err := session.New(session.Config{Version: codec.V5, ClientID: "c", Store: st2})
	must(t, err)
	must(t, s2.Connect(now))
	s2.AppendTransmit(nil)
	feed(s2, &codec.Connack{SessionPresent: true})
	out := s2.AppendTransmit(nil)
	d := codec.Decoder{Version: codec.V5, From: codec.RoleClient}
	var got []string
	for len(out) > 0 {
		p, n, err := d.Decode(out)
		must(t, err)
		switch p := p.(type) {
		case *codec.Publish:
			if !p.Dup {
				t.Fatalf("resend without DUP: %v", p)
			}
			got = append(got, "PUBLISH "+string(p.Payload))
		case *codec.Pubrel:
			got = append(got, "PUBREL "+string(rune('0'+p.PacketID)))
		default:
			got = append(got, p.String())
		}
		out = out[n:]
	}
	want := []string{"PUBREL 2", "PUBLISH c", "PUBLISH d"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("resent after restart (-want +got):\n%s", diff)
	}
}

// PutOutbound replaces a record, Released included: the session rewrites
// the records of a lost session's messages so (session.RepublishOnSessionLost).
func TestPutOutboundReplacesReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	s := open(t, path, nil)
	must(t, s.PutOutbound(rec(2, 2, "two")))
	must(t, s.ReleaseOutbound(2))
	must(t, s.PutOutbound(rec(2, 2, "two")))
	must(t, s.Sync())
	must(t, s.Close())
	st, err := open(t, path, nil).Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []session.OutboundRecord{rec(2, 2, "two")}
	if diff := cmp.Diff(want, st.Outbound, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("records after reopen (-want +got):\n%s", diff)
	}
}

// Queued records (accepted messages not yet sent) survive a reopen, a Reset
// (a lost session does not take them) and a compaction, in acceptance order.
func TestQueuedRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	s := open(t, path, nil)
	q := func(seq uint64, payload string) session.QueuedRecord {
		r := rec(1, seq, payload)
		return session.QueuedRecord{Seq: seq, Packet: r.Packet}
	}
	must(t, s.PutOutbound(rec(1, 1, "out")))
	must(t, s.PutQueued(q(3, "c")))
	must(t, s.PutQueued(q(2, "b")))
	must(t, s.PutQueued(q(4, "d")))
	must(t, s.DeleteQueued(3))
	must(t, s.Reset())
	must(t, s.Sync())
	want := []session.QueuedRecord{q(2, "b"), q(4, "d")}
	check := func(st *FileStore, when string) {
		t.Helper()
		got, err := st.Load()
		must(t, err)
		if len(got.Outbound) != 0 {
			t.Fatalf("%s: Reset kept outbound records %+v", when, got.Outbound)
		}
		if diff := cmp.Diff(want, got.Queued); diff != "" {
			t.Fatalf("%s: queued records (-want +got):\n%s", when, diff)
		}
	}
	check(s, "before reopening")
	must(t, s.Close())
	s = open(t, path, nil)
	check(s, "after reopening")

	// Churn until Sync compacts the log; the queued records stay.
	payload := string(make([]byte, 1000))
	for i := range 3000 {
		must(t, s.PutOutbound(rec(9, uint64(100+i), payload)))
		must(t, s.DeleteOutbound(9))
	}
	before, err := os.Stat(path)
	must(t, err)
	must(t, s.Sync())
	after, err := os.Stat(path)
	must(t, err)
	if after.Size() >= before.Size() && after.Size() > 1<<20 {
		t.Fatalf("log not compacted: %d bytes", after.Size())
	}
	check(s, "after compaction")
	must(t, s.Close())
	check(open(t, path, nil), "after compaction and reopening")
}
