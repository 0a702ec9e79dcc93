package session

// idAlloc hands out packet identifiers [§2.2.1]: never 0, never one that
// is in use, round robin over 1..max so that an identifier just released is
// the last to be used again. PUBLISH, SUBSCRIBE and UNSUBSCRIBE share it.
//
// The in-use set is a bitmap split in pages of idPageBits identifiers, each
// allocated when an identifier in it is first taken and set aside when its
// last one is released: a connection with a few messages in flight holds
// one or two pages (136 bytes each), not 8 KiB. One emptied page is kept
// for reuse, so the round robin's walk from page to page does not
// allocate. The table of pages grows as the walk reaches them (at most 65
// entries), so a session that has used a few identifiers holds one entry.
type idAlloc struct {
	max   uint16
	next  uint16
	n     int       // identifiers in use
	pages []*idPage // by id / idPageBits; nil or past the end: none in use
	spare *idPage   // an emptied page, zeroed, for the next one needed
}

const idPageBits = 1024

type idPage struct {
	bits [idPageBits / 64]uint64
	n    int // identifiers in use in this page
}

func newIDAlloc(max uint16) idAlloc {
	return idAlloc{max: max, next: 1}
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

func (a *idAlloc) inUse(id uint16) bool {
	pg := int(id / idPageBits)
	if pg >= len(a.pages) {
		return false
	}
	p := a.pages[pg]
	i := id % idPageBits
	return p != nil && p.bits[i>>6]&(1<<(i&63)) != 0
}

// mark records id as in use (also for identifiers restored from a store).
func (a *idAlloc) mark(id uint16) {
	if id == 0 || id > a.max || a.inUse(id) {
		return
	}
	pg := int(id / idPageBits)
	for len(a.pages) <= pg {
		a.pages = append(a.pages, nil)
	}
	p := a.pages[pg]
	if p == nil {
		if p, a.spare = a.spare, nil; p == nil {
			p = new(idPage)
		}
		a.pages[pg] = p
	}
	i := id % idPageBits
	p.bits[i>>6] |= 1 << (i & 63)
	p.n++
	a.n++
}

// free releases id; releasing a free identifier does nothing.
func (a *idAlloc) free(id uint16) {
	if id == 0 || id > a.max || !a.inUse(id) {
		return
	}
	p := a.pages[id/idPageBits]
	i := id % idPageBits
	p.bits[i>>6] &^= 1 << (i & 63)
	p.n--
	a.n--
	if p.n == 0 {
		a.pages[id/idPageBits] = nil
		a.spare = p // all its bits are clear again
	}
}
