package session

import (
	"slices"
	"strings"

	"github.com/zmqtt/zmqtt-go/codec"
)

// The router holds the subscription registry as a trie of filter levels and
// chooses the handles an incoming topic goes to (DESIGN.md section 3):
//
//   - "$share/<group>/" and the configured broker prefixes are stripped
//     before a filter is matched;
//   - when the PUBLISH carries Subscription Identifiers, only the entries
//     registered with one of them compete (all matching entries compete when
//     none of them matches: the identifier then says nothing useful);
//   - in exclusive routing the most specific filter wins: levels are ranked
//     literal < '+' < '#' and compared from the left, a shorter filter
//     beats a longer one with the same ranks, ties go to the earliest entry;
//   - in fan-out routing every matching handle gets the message once.
//
// Lookups do not allocate in steady state.

type entry struct {
	handle Handle
	filter string // as subscribed
	match  string // with $share/<group>/ and broker prefixes stripped
	subID  uint32
	seq    uint64 // registration order
	group  *subGroup
	node   *node // where the trie holds it; nil while the trie is not built
	inHash bool  // registered in node.hash (the filter ends in "#")
	in     bool  // registered in the router
}

type node struct {
	parent   *node
	level    string
	children map[string]*node
	plus     *node
	hash     []*entry // filters ending in "#" after this node's levels
	here     []*entry // filters ending exactly at this node
}

type router struct {
	root     node
	seq      uint64
	prefixes []string
	// all holds every entry in registration order. With at most
	// linearMax of them, lookup matches each filter against the topic
	// directly: a comparison of levels costs less than hashing each level
	// of the topic for the trie's maps, and a client usually has a few
	// subscriptions. The trie is built when the entries first outnumber
	// linearMax, and kept from then on; a client with a few subscriptions
	// never holds its nodes and maps (about 300 bytes a level).
	all  []*entry
	trie bool

	// scratch, reused by route
	stack   []frame
	matched []*entry
}

type frame struct {
	n   *node
	pos int
}

func newRouter(prefixes []string) router {
	return router{prefixes: prefixes}
}

// stripFilter removes "$share/<group>/" and one configured broker prefix
// level from a filter (seed rules 47 and 48).
func stripFilter(f string, prefixes []string) string {
	if _, rest, ok := codec.ParseShared(f); ok {
		f = rest
	}
	for _, p := range prefixes {
		if len(f) > len(p) && f[len(p)] == '/' && strings.HasPrefix(f, p) {
			return f[len(p)+1:]
		}
	}
	return f
}

// add registers e.
func (r *router) add(e *entry) {
	r.seq++
	e.seq = r.seq
	e.match = stripFilter(e.filter, r.prefixes)
	e.in = true
	r.all = append(r.all, e)
	switch {
	case r.trie:
		r.insert(e)
	case len(r.all) > linearMax:
		r.trie = true
		for _, x := range r.all {
			r.insert(x)
		}
	}
}

// insert puts e in the trie.
func (r *router) insert(e *entry) {
	n := &r.root
	rest := e.match
	for {
		level, tail, more := strings.Cut(rest, "/")
		if level == "#" {
			n.hash = append(n.hash, e)
			e.node, e.inHash = n, true
			return
		}
		var child *node
		if level == "+" {
			if n.plus == nil {
				n.plus = &node{parent: n, level: "+"}
			}
			child = n.plus
		} else {
			child = n.children[level]
			if child == nil {
				if n.children == nil {
					n.children = make(map[string]*node)
				}
				child = &node{parent: n, level: level}
				n.children[level] = child
			}
		}
		n = child
		if !more {
			break
		}
		rest = tail
	}
	n.here = append(n.here, e)
	e.node = n
}

// remove unregisters e and prunes trie nodes left empty.
func (r *router) remove(e *entry) {
	if !e.in {
		return
	}
	e.in = false
	r.all = deleteEntry(r.all, e)
	n := e.node
	if n == nil {
		return
	}
	e.node = nil
	if e.inHash {
		n.hash = deleteEntry(n.hash, e)
	} else {
		n.here = deleteEntry(n.here, e)
	}
	for n != &r.root && len(n.here) == 0 && len(n.hash) == 0 && len(n.children) == 0 && n.plus == nil {
		p := n.parent
		if p.plus == n {
			p.plus = nil
		} else {
			delete(p.children, n.level)
		}
		n = p
	}
}

func deleteEntry(list []*entry, e *entry) []*entry {
	if i := slices.Index(list, e); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	return list
}

// linearMax is the number of entries up to which lookup scans them
// instead of walking the trie.
const linearMax = 8

// lookup collects every entry whose filter matches topic into r.matched.
func (r *router) lookup(topic string) []*entry {
	r.matched = r.matched[:0]
	if !r.trie || len(r.all) <= linearMax {
		for _, e := range r.all {
			if matchTopic(e.match, topic) {
				r.matched = append(r.matched, e)
			}
		}
		return r.matched
	}
	return r.walk(topic)
}

// matchTopic reports whether filter (stripped, as entry.match) matches
// topic: '+' is one level, '#' the rest (the parent level included:
// "a/#" matches "a"), and a topic starting with '$' is not matched by a
// wildcard in the first level [MQTT-4.7.2-1].
func matchTopic(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore:
			return !tmore
		case !tmore:
			return frest == "#"
		}
		filter, topic = frest, trest
	}
}

// walk is lookup through the trie.
func (r *router) walk(topic string) []*entry {
	r.matched = r.matched[:0]
	dollar := len(topic) > 0 && topic[0] == '$'
	r.stack = append(r.stack[:0], frame{&r.root, 0})
	for len(r.stack) > 0 {
		f := r.stack[len(r.stack)-1]
		r.stack = r.stack[:len(r.stack)-1]
		n, pos := f.n, f.pos
		atRoot := n == &r.root
		if !(atRoot && dollar) {
			r.matched = append(r.matched, n.hash...)
		}
		if pos > len(topic) { // every level consumed
			r.matched = append(r.matched, n.here...)
			continue
		}
		end := strings.IndexByte(topic[pos:], '/')
		if end < 0 {
			end = len(topic)
		} else {
			end += pos
		}
		if c := n.children[topic[pos:end]]; c != nil {
			r.stack = append(r.stack, frame{c, end + 1})
		}
		if n.plus != nil && !(atRoot && dollar) {
			r.stack = append(r.stack, frame{n.plus, end + 1})
		}
	}
	return r.matched
}

// moreSpecific reports whether filter a beats filter b: ranks literal 0,
// '+' 1, '#' 2 compared level by level from the left; with equal ranks the
// shorter filter wins.
func moreSpecific(a, b string) (better, equal bool) {
	for {
		la, ra, moreA := strings.Cut(a, "/")
		lb, rb, moreB := strings.Cut(b, "/")
		if x, y := levelRank(la), levelRank(lb); x != y {
			return x < y, false
		}
		switch {
		case !moreA && !moreB:
			return false, true
		case !moreA:
			return true, false
		case !moreB:
			return false, false
		}
		a, b = ra, rb
	}
}

func levelRank(l string) int {
	switch l {
	case "+":
		return 1
	case "#":
		return 2
	}
	return 0
}

// route returns the handles a message on topic goes to, appended to out.
func (r *router) route(topic string, subIDs []uint32, mode Routing, out []Handle) []Handle {
	cands := r.lookup(topic)
	if len(cands) == 0 {
		return out
	}
	if len(subIDs) > 0 {
		// Keep only the entries the server named, when it named any of ours.
		k := 0
		for _, e := range cands {
			if e.subID != 0 && slices.Contains(subIDs, e.subID) {
				cands[k] = e
				k++
			}
		}
		if k > 0 {
			cands = cands[:k]
		}
	}
	if mode == RouteFanOut {
		for _, e := range cands {
			if !slices.Contains(out, e.handle) {
				out = append(out, e.handle)
			}
		}
		return out
	}
	best := cands[0]
	for _, e := range cands[1:] {
		better, equal := moreSpecific(e.match, best.match)
		if better || (equal && e.seq < best.seq) {
			best = e
		}
	}
	return append(out, best.handle)
}

// StripFilter returns filter as the router matches it: without
// "$share/<group>/" and without the first level when that level is one of
// prefixes (nil means the default broker prefixes, "$queue" and
// "$exclusive"). Code that routes on top of a subscription uses it to agree
// with the session on which filter a topic belongs to.
func StripFilter(filter string, prefixes []string) string {
	if prefixes == nil {
		prefixes = defaultPrefixes
	}
	return stripFilter(filter, prefixes)
}

// MoreSpecific compares two stripped filters (see StripFilter) as exclusive
// routing does: better is true when a wins over b (levels ranked literal,
// then '+', then '#', compared from the left; with equal ranks the shorter
// filter wins), equal when neither wins, in which case the session picks
// the earlier subscription.
func MoreSpecific(a, b string) (better, equal bool) { return moreSpecific(a, b) }
