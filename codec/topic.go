package codec

import (
	"strings"
	"unsafe"
)

// Topic rules of section 4.7: topic names (PUBLISH, Will, Response Topic),
// topic filters (SUBSCRIBE, UNSUBSCRIBE), matching, and shared subscriptions
// (section 4.8.2).

// ValidateTopicName reports whether s may be used as the topic name of a
// PUBLISH: 1 to 65,535 bytes of well-formed UTF-8 without U+0000 and without
// the wildcards '+' and '#' [MQTT-4.7.3-1] [MQTT-3.3.2-2] [MQTT-4.7.1-1].
// '$' is allowed anywhere. The error is a *TopicError that matches
// ErrInvalidTopic.
func ValidateTopicName(s string) error {
	if err := checkTopicName(s); err != nil {
		return err
	}
	return nil
}

// ValidateTopicFilter reports whether s may be used as a topic filter in
// SUBSCRIBE or UNSUBSCRIBE: 1 to 65,535 bytes of well-formed UTF-8 without
// U+0000, '#' only alone or after '/' as the last character
// [MQTT-4.7.1-1], '+' only as a whole level [MQTT-4.7.1-2], and a
// "$share/<name>/<filter>" with a share name of at least one character
// without '/', '+' or '#' and a non-empty filter [MQTT-4.8.2-1]
// [MQTT-4.8.2-2]. The error is a *TopicError that matches ErrInvalidTopic.
func ValidateTopicFilter(s string) error {
	if err := checkTopicFilter(s); err != nil {
		return err
	}
	return nil
}

func topicErr(s string, filter bool, rule, msg string) *TopicError {
	return &TopicError{Topic: s, Filter: filter, Rule: rule, Msg: msg}
}

func checkTopicName(s string) *TopicError {
	if len(s) == 0 {
		return topicErr(s, false, "MQTT-4.7.3-1", "empty")
	}
	if len(s) > maxString {
		return topicErr(s, false, "MQTT-4.7.3-3", "longer than 65535 bytes")
	}
	if plain(unsafe.Slice(unsafe.StringData(s), len(s)), true) {
		return nil
	}
	for i := 0; i < len(s); i++ {
		if !topicSpecial[s[i]] {
			continue
		}
		switch c := s[i]; {
		case c == '+' || c == '#':
			return topicErr(s, false, "MQTT-3.3.2-2", "wildcards are not allowed in a topic name")
		case c == 0:
			return topicErr(s, false, "MQTT-4.7.3-2", "contains U+0000")
		case c >= 0x80:
			if !validUTF8String(s[i:]) {
				return topicErr(s, false, "MQTT-1.5.4-1", "not valid UTF-8")
			}
			if strings.ContainsAny(s[i:], "+#") {
				return topicErr(s, false, "MQTT-3.3.2-2", "wildcards are not allowed in a topic name")
			}
			return nil
		}
	}
	return nil
}

// checkTopicBytes checks a decoded topic name in place, without allocating
// unless it fails; an empty name is the caller's concern (it is allowed with
// a Topic Alias on MQTT 5.0). off is the offset of the name's length field.
func checkTopicBytes(b []byte, t Type, off int) *Error {
	if plain(b, true) || validUTF8Slow(b) && !containsWildcard(b) {
		return nil
	}
	terr := checkTopicName(string(b))
	e := newErr(topicNameReason, t, off, terr.Rule, "topic name: "+terr.Msg)
	e.Err = terr
	return e
}

func containsWildcard(b []byte) bool {
	for _, c := range b {
		if c == '+' || c == '#' {
			return true
		}
	}
	return false
}

const sharePrefix = "$share/"

// topicSpecial marks the bytes a topic name scan must stop at: the
// wildcards, U+0000 and the start of a multi-byte UTF-8 sequence.
var topicSpecial = func() (t [256]bool) {
	t['+'], t['#'], t[0] = true, true, true
	for c := 0x80; c < 256; c++ {
		t[c] = true
	}
	return t
}()

func checkTopicFilter(s string) *TopicError {
	if len(s) == 0 {
		return topicErr(s, true, "MQTT-4.7.3-1", "empty")
	}
	if len(s) > maxString {
		return topicErr(s, true, "MQTT-4.7.3-3", "longer than 65535 bytes")
	}
	if !validUTF8String(s) {
		return topicErr(s, true, "MQTT-1.5.4-1", "not valid UTF-8 or contains U+0000")
	}
	f := s
	if strings.HasPrefix(s, sharePrefix) || s == "$share" {
		rest := strings.TrimPrefix(s, "$share")
		if rest == "" || rest == "/" {
			return topicErr(s, true, "MQTT-4.8.2-1", "shared subscription without a share name")
		}
		rest = rest[1:]
		slash := strings.IndexByte(rest, '/')
		name := rest
		if slash >= 0 {
			name = rest[:slash]
		}
		if name == "" {
			return topicErr(s, true, "MQTT-4.8.2-1", "shared subscription without a share name")
		}
		if strings.ContainsAny(name, "+#") {
			return topicErr(s, true, "MQTT-4.8.2-2", "share name contains a wildcard")
		}
		if slash < 0 || slash == len(rest)-1 {
			return topicErr(s, true, "MQTT-4.8.2-2", "shared subscription without a topic filter")
		}
		f = rest[slash+1:]
	}
	// Wildcards are rare and the scan for them is the hot part of
	// encoding a SUBSCRIBE: find them with IndexByte (vectorised) and check
	// only their neighbours. The first offending wildcard is reported.
	badPlus := -1
	for i := strings.IndexByte(f, '+'); i >= 0; {
		if (i > 0 && f[i-1] != '/') || (i < len(f)-1 && f[i+1] != '/') {
			badPlus = i
			break
		}
		j := strings.IndexByte(f[i+1:], '+')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if h := strings.IndexByte(f, '#'); h >= 0 && (badPlus < 0 || h < badPlus) {
		if h != len(f)-1 {
			return topicErr(s, true, "MQTT-4.7.1-1", "'#' must be the last character")
		}
		if h > 0 && f[h-1] != '/' {
			return topicErr(s, true, "MQTT-4.7.1-1", "'#' must occupy a whole level")
		}
	}
	if badPlus >= 0 {
		return topicErr(s, true, "MQTT-4.7.1-2", "'+' must occupy a whole level")
	}
	return nil
}

// ParseShared splits a shared subscription filter "$share/<group>/<filter>"
// into its share name and topic filter. ok is false when filter is not a
// well-formed shared subscription.
func ParseShared(filter string) (group, topicFilter string, ok bool) {
	rest, found := strings.CutPrefix(filter, sharePrefix)
	if !found {
		return "", "", false
	}
	group, topicFilter, found = strings.Cut(rest, "/")
	if !found || group == "" || topicFilter == "" || strings.ContainsAny(group, "+#") {
		return "", "", false
	}
	return group, topicFilter, true
}

// MatchTopic reports whether the topic name matches the topic filter
// [§4.7]. '+' matches exactly one level (which may be empty), '#' matches
// the rest of the levels including the parent level ("a/#" matches "a"), and
// a topic that starts with '$' never matches a filter that starts with a
// wildcard [MQTT-4.7.2-1]. Both arguments are assumed valid; a shared
// subscription filter must be split with ParseShared first. MatchTopic does
// not allocate.
func MatchTopic(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	fi, ti := 0, 0
	for {
		fend := indexFrom(filter, fi)
		flevel := filter[fi:fend]
		if flevel == "#" {
			return true
		}
		tend := indexFrom(topic, ti)
		if flevel != "+" && flevel != topic[ti:tend] {
			return false
		}
		fdone, tdone := fend == len(filter), tend == len(topic)
		switch {
		case fdone && tdone:
			return true
		case tdone:
			return filter[fend:] == "/#"
		case fdone:
			return false
		}
		fi, ti = fend+1, tend+1
	}
}

// indexFrom returns the index of the next '/' in s at or after i, or len(s).
func indexFrom(s string, i int) int {
	if j := strings.IndexByte(s[i:], '/'); j >= 0 {
		return i + j
	}
	return len(s)
}
