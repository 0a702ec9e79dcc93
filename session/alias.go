package session

// aliasTable assigns topic aliases to outgoing PUBLISH packets
// [§3.3.2.3.4]: up to the server's Topic Alias Maximum, reusing the
// least recently used alias when all are taken. It is reset on every
// connection: aliases never carry over [MQTT-3.3.2-7].
type aliasTable struct {
	max     uint16
	byTopic map[string]uint16
	topics  []string // alias-1 -> topic
	used    []uint64 // alias-1 -> last use
	clock   uint64
}

// forget drops the mapping of alias a that lookup has just made but that was
// never sent (the PUBLISH failed): the server does not know it, so the alias
// must not be used without its topic. The slot becomes the first to reuse.
func (t *aliasTable) forget(a uint16) {
	if a == 0 || int(a) > len(t.topics) {
		return
	}
	delete(t.byTopic, t.topics[a-1])
	t.topics[a-1] = ""
	t.used[a-1] = 0
}

func (t *aliasTable) reset(max uint16) {
	t.max = max
	clear(t.byTopic)
	t.topics = t.topics[:0]
	t.used = t.used[:0]
}

// lookup returns the alias for topic and whether the server already knows
// it; a new or reassigned alias must be sent with its topic.
func (t *aliasTable) lookup(topic string) (alias uint16, known bool) {
	t.clock++
	if a, ok := t.byTopic[topic]; ok {
		t.used[a-1] = t.clock
		return a, true
	}
	if t.byTopic == nil {
		t.byTopic = make(map[string]uint16)
	}
	owned := cloneStr(topic)
	if len(t.topics) < int(t.max) {
		t.topics = append(t.topics, owned)
		t.used = append(t.used, t.clock)
		a := uint16(len(t.topics))
		t.byTopic[owned] = a
		return a, false
	}
	lru := 0
	for i, u := range t.used {
		if u < t.used[lru] {
			lru = i
		}
	}
	delete(t.byTopic, t.topics[lru])
	t.topics[lru] = owned
	t.used[lru] = t.clock
	a := uint16(lru + 1)
	t.byTopic[owned] = a
	return a, false
}
