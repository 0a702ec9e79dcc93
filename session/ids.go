package session

// idAlloc hands out packet identifiers [§2.2.1]: never 0, never one that
// is in use, round robin over 1..max so that an identifier just released is
// the last to be used again. PUBLISH, SUBSCRIBE and UNSUBSCRIBE share it.
type idAlloc struct {
	max  uint16
	next uint16
	n    int      // identifiers in use
	used []uint64 // bit i: identifier i is in use
}

func newIDAlloc(max uint16) idAlloc {
	return idAlloc{max: max, next: 1, used: make([]uint64, int(max)/64+1)}
}

// take returns a free identifier, or false when all are in use.
func (a *idAlloc) take() (uint16, bool) {
	if a.n >= int(a.max) {
		return 0, false
	}
	for {
		id := a.next
		if a.next == a.max {
			a.next = 1
		} else {
			a.next++
		}
		if !a.inUse(id) {
			a.mark(id)
			return id, true
		}
	}
}

func (a *idAlloc) inUse(id uint16) bool { return a.used[id>>6]&(1<<(id&63)) != 0 }

// mark records id as in use (also for identifiers restored from a store).
func (a *idAlloc) mark(id uint16) {
	if id == 0 || id > a.max || a.inUse(id) {
		return
	}
	a.used[id>>6] |= 1 << (id & 63)
	a.n++
}

// free releases id; releasing a free identifier does nothing.
func (a *idAlloc) free(id uint16) {
	if id == 0 || id > a.max || !a.inUse(id) {
		return
	}
	a.used[id>>6] &^= 1 << (id & 63)
	a.n--
}
