package session

import (
	"testing"

	"pgregory.net/rapid"
)

// TestIDAllocModel drives the paged identifier allocator with random takes,
// frees and marks against a plain set: it never hands out 0, an identifier
// above max or one in use, it goes round robin, and a page emptied and
// reused starts clear.
func TestIDAllocModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		max := rapid.SampledFrom([]uint16{1, 3, 1023, 1024, 1025, 2048, 65535}).Draw(t, "max")
		a := newIDAlloc(max)
		used := map[uint16]bool{}
		last := uint16(0)
		for range rapid.IntRange(1, 3000).Draw(t, "steps") {
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0, 1:
				id, ok := a.take()
				if ok != (len(used) < int(max)) {
					t.Fatalf("take: ok=%v with %d of %d in use", ok, len(used), max)
				}
				if !ok {
					continue
				}
				if id == 0 || id > max || used[id] {
					t.Fatalf("take gave %d (max %d, in use %v)", id, max, used[id])
				}
				if len(used) == 0 && last != 0 && id != last%max+1 {
					t.Fatalf("take gave %d after %d with nothing in use: not round robin", id, last)
				}
				used[id], last = true, id
			case 2:
				id := rapid.Uint16Range(0, max).Draw(t, "free")
				a.free(id)
				delete(used, id)
			case 3:
				id := rapid.Uint16Range(0, max).Draw(t, "mark")
				a.mark(id)
				if id != 0 {
					used[id] = true
				}
			}
			if a.n != len(used) {
				t.Fatalf("allocator counts %d in use, the model %d", a.n, len(used))
			}
		}
		for id := uint16(1); id <= max && id != 0; id++ {
			if a.inUse(id) != used[id] {
				t.Fatalf("id %d: in use %v, model %v", id, a.inUse(id), used[id])
			}
			if id == 65535 {
				break
			}
		}
	})
}

// TestIDAllocPagesReused: walking the whole identifier space with one
// message in flight at a time holds at most two pages and allocates only
// while the first pages are made.
func TestIDAllocPagesReused(t *testing.T) {
	a := newIDAlloc(65535)
	walk := func() {
		for range 65535 {
			id, ok := a.take()
			if !ok {
				t.Fatal("take failed with nothing in use")
			}
			a.free(id)
		}
	}
	walk()
	if allocs := testing.AllocsPerRun(3, walk); allocs != 0 {
		t.Errorf("a walk over the identifier space allocated %v times; want 0 (the spare page is reused)", allocs)
	}
	live := 0
	for _, p := range a.pages {
		if p != nil {
			live++
		}
	}
	if live != 0 || a.n != 0 {
		t.Errorf("with nothing in flight %d pages are held and n=%d; want 0 and 0", live, a.n)
	}
}

// TestIDAllocTableGrows: the table of pages grows as identifiers reach
// them: a session that took a few identifiers has one entry, the whole
// walk ends with one per page.
func TestIDAllocTableGrows(t *testing.T) {
	a := newIDAlloc(65535)
	for range 5 {
		id, ok := a.take()
		if !ok {
			t.Fatal("no identifier")
		}
		a.free(id)
	}
	if len(a.pages) != 1 {
		t.Errorf("after 5 identifiers the table has %d entries, want 1", len(a.pages))
	}
	for range 65535 {
		id, _ := a.take()
		a.free(id)
	}
	if want := 65535/idPageBits + 1; len(a.pages) != want {
		t.Errorf("after the whole walk the table has %d entries, want %d", len(a.pages), want)
	}
	if a.inUse(65535) || a.n != 0 {
		t.Error("identifiers left in use")
	}
}
