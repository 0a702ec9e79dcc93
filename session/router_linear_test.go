package session

import (
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestRouterLinearMatchesTrie: for any filters and topic, the direct match
// lookup uses for a few entries finds exactly the entries the trie walk
// finds, $-topics, empty levels, '+' and '#' (the parent level included)
// among them [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.2-1].
func TestRouterLinearMatchesTrie(t *testing.T) {
	level := rapid.SampledFrom([]string{"a", "b", "", "$x", "$SYS"})
	flevel := rapid.SampledFrom([]string{"a", "b", "", "$x", "$SYS", "+", "+"})
	rapid.Check(t, func(t *rapid.T) {
		var filters []string
		for range rapid.IntRange(1, 20).Draw(t, "nfilters") {
			parts := rapid.SliceOfN(flevel, 1, 4).Draw(t, "levels")
			if rapid.Bool().Draw(t, "hash") {
				parts = append(parts, "#")
			}
			filters = append(filters, strings.Join(parts, "/"))
		}
		topic := strings.Join(rapid.SliceOfN(level, 1, 5).Draw(t, "topic"), "/")
		r := newRouter(nil)
		r.trie = true // build it from the first entry, to compare
		for i, f := range filters {
			r.add(&entry{handle: Handle(i + 1), filter: f})
		}
		handles := func(es []*entry) []Handle {
			var hs []Handle
			for _, e := range es {
				hs = append(hs, e.handle)
			}
			slices.Sort(hs)
			return hs
		}
		var direct []*entry
		for _, e := range r.all {
			if matchTopic(e.match, topic) {
				direct = append(direct, e)
			}
		}
		want := handles(r.walk(topic))
		if got := handles(direct); !slices.Equal(got, want) {
			t.Fatalf("topic %q, filters %q: direct match finds %v, the trie %v", topic, filters, got, want)
		}
		// A router left to choose (the trie built once the entries
		// outnumber linearMax) finds the same.
		r2 := newRouter(nil)
		for i, f := range filters {
			r2.add(&entry{handle: Handle(i + 1), filter: f})
		}
		if r2.trie != (len(filters) > linearMax) {
			t.Fatalf("%d filters: trie built %v", len(filters), r2.trie)
		}
		if got := handles(r2.lookup(topic)); !slices.Equal(got, want) {
			t.Fatalf("topic %q, filters %q: lookup finds %v, the trie %v", topic, filters, got, want)
		}
		// Removing entries keeps the list and the trie in step.
		for _, e := range slices.Clone(r.all) {
			if rapid.Bool().Draw(t, "remove") {
				r.remove(e)
			}
		}
		direct = direct[:0]
		for _, e := range r.all {
			if matchTopic(e.match, topic) {
				direct = append(direct, e)
			}
		}
		if got, want := handles(direct), handles(r.walk(topic)); !slices.Equal(got, want) {
			t.Fatalf("after removals, topic %q: direct match finds %v, the trie %v", topic, got, want)
		}
	})
}
