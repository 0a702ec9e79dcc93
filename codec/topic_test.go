package codec

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateTopicName: the rules for topic names are the same in both
// versions, under different ids. Wildcards are refused [MQTT-3.3.2-2]
// [MQTT-4.7.0-1] [MQTT-4.7.1-1] (3.1.1), so are U+0000 [MQTT-4.7.3-2]
// [MQTT-1.5.3-2] (3.1.1) and ill-formed UTF-8, surrogates included
// [MQTT-1.5.4-1] [MQTT-1.5.3-1] (3.1.1); a name has 1 to 65535 bytes
// [MQTT-4.7.3-1] [MQTT-4.7.3-3].
func TestValidateTopicName(t *testing.T) {
	long := strings.Repeat("a", 65535)
	for _, tc := range []struct {
		name, topic string
		rule        string // "" when valid
	}{
		{"simple", "sport/tennis/player1", ""},
		{"dollar-inside", "a/b$c", ""},
		{"dollar-first", "$SYS/broker", ""},
		{"empty-levels", "a//b/", ""},
		{"slash-only", "/", ""},
		{"space", "sport tennis", ""},
		{"unicode", "temp/°C/ü", ""},
		{"max-length", long, ""},
		{"MQTT-4.7.3-1/empty", "", "MQTT-4.7.3-1"},
		{"MQTT-4.7.3-3/too-long", long + "a", "MQTT-4.7.3-3"},
		{"MQTT-3.3.2-2/plus", "a/+", "MQTT-3.3.2-2"},
		{"MQTT-3.3.2-2/hash", "a/#", "MQTT-3.3.2-2"},
		{"MQTT-3.3.2-2/plus-inside-level", "a+b", "MQTT-3.3.2-2"},
		{"MQTT-3.3.2-2/hash-after-unicode", "ü/#", "MQTT-3.3.2-2"},
		{"MQTT-4.7.3-2/nul", "a\x00b", "MQTT-4.7.3-2"},
		{"MQTT-1.5.4-1/bad-utf8", "a\xffb", "MQTT-1.5.4-1"},
		{"MQTT-1.5.4-1/surrogate", "a\xed\xa0\x80", "MQTT-1.5.4-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateTopicName(tc.topic)
			checkTopicErr(t, err, tc.rule, false)
		})
	}
}

// TestValidateTopicFilter: '#' only alone and last [MQTT-4.7.1-1] (5.0)
// [MQTT-4.7.1-2] (3.1.1), '+' only as a whole level [MQTT-4.7.1-2] (5.0)
// [MQTT-4.7.1-3] (3.1.1), in both versions; the Rule of the error carries
// the 5.0 id.
func TestValidateTopicFilter(t *testing.T) {
	for _, tc := range []struct {
		name, filter string
		rule         string
	}{
		{"literal", "sport/tennis", ""},
		{"hash-alone", "#", ""},
		{"plus-alone", "+", ""},
		{"hash-last", "sport/#", ""},
		{"plus-middle", "sport/+/player1", ""},
		{"plus-plus", "+/+", ""},
		{"plus-then-hash", "+/#", ""},
		{"empty-levels", "a//b", ""},
		{"dollar", "$SYS/#", ""},
		{"shared", "$share/group/a/+", ""},
		{"shared-hash", "$share/g/#", ""},
		{"share-word-not-prefix", "x/$share/g", ""},
		{"MQTT-4.7.3-1/empty", "", "MQTT-4.7.3-1"},
		{"MQTT-4.7.1-1/hash-not-last", "sport/#/ranking", "MQTT-4.7.1-1"},
		{"MQTT-4.7.1-1/hash-in-level", "sport#", "MQTT-4.7.1-1"},
		{"MQTT-4.7.1-1/hash-after-text", "a/b#", "MQTT-4.7.1-1"},
		{"MQTT-4.7.1-2/plus-in-level", "sport+", "MQTT-4.7.1-2"},
		{"MQTT-4.7.1-2/plus-before-text", "a/+b", "MQTT-4.7.1-2"},
		{"MQTT-4.7.3-2/nul", "a/\x00", "MQTT-1.5.4-1"},
		{"MQTT-1.5.4-1/bad-utf8", "\xc3\x28", "MQTT-1.5.4-1"},
		{"MQTT-4.8.2-1/share-no-name", "$share//a", "MQTT-4.8.2-1"},
		{"MQTT-4.8.2-1/share-only", "$share", "MQTT-4.8.2-1"},
		{"MQTT-4.8.2-1/share-slash-only", "$share/", "MQTT-4.8.2-1"},
		{"MQTT-4.8.2-2/share-no-filter", "$share/g", "MQTT-4.8.2-2"},
		{"MQTT-4.8.2-2/share-empty-filter", "$share/g/", "MQTT-4.8.2-2"},
		{"MQTT-4.8.2-2/share-wildcard-name", "$share/g+/a", "MQTT-4.8.2-2"},
		{"MQTT-4.7.1-1/share-bad-filter", "$share/g/a#", "MQTT-4.7.1-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkTopicErr(t, ValidateTopicFilter(tc.filter), tc.rule, true)
		})
	}
}

func checkTopicErr(t *testing.T, err error, rule string, filter bool) {
	t.Helper()
	if rule == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("error %v does not match ErrInvalidTopic", err)
	}
	var te *TopicError
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a *TopicError", err)
	}
	if te.Rule != rule || te.Filter != filter {
		t.Errorf("rule %q filter %v, want %q %v (%v)", te.Rule, te.Filter, rule, filter, err)
	}
	if !strings.HasPrefix(err.Error(), "zmqtt: invalid topic") {
		t.Errorf("message %q lacks the package prefix", err)
	}
}

// TestMatchTopic uses the examples of section 4.7 of both specifications.
func TestMatchTopic(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		// 4.7.1.2 multi-level wildcard
		{"sport/tennis/player1/#", "sport/tennis/player1", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
		{"sport/#", "sport", true},
		{"#", "sport/tennis", true},
		{"#", "/", true},
		{"sport/tennis/#", "sport/tennisplayer1", false},
		// 4.7.1.3 single-level wildcard
		{"sport/tennis/+", "sport/tennis/player1", true},
		{"sport/tennis/+", "sport/tennis/player2", true},
		{"sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"sport/+", "sport", false},
		{"sport/+", "sport/", true},
		{"+/+", "/finance", true},
		{"/+", "/finance", true},
		{"+", "/finance", false},
		{"+", "", true},
		{"+/tennis/#", "sport/tennis/player1/ranking", true},
		{"a/+/#", "a/b", true},
		{"a/+/#", "a", false},
		// 4.7.2 topics beginning with $ [MQTT-4.7.2-1]
		{"#", "$SYS/broker/clients", false},
		{"+/monitor/Clients", "$SYS/monitor/Clients", false},
		{"$SYS/#", "$SYS/monitor/Clients", true},
		{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
		{"+", "$SYS", false},
		{"a/#", "a/$b", true},
		// 4.7.3 case sensitivity and exact levels
		{"ACCOUNTS", "Accounts", false},
		{"a/b", "a/b", true},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b", false},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
	} {
		if got := MatchTopic(tc.filter, tc.topic); got != tc.want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestParseShared(t *testing.T) {
	for _, tc := range []struct {
		in, group, filter string
		ok                bool
	}{
		{"$share/g/a/b", "g", "a/b", true},
		{"$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", true},
		{"$share/g/#", "g", "#", true},
		{"$share/g", "", "", false},
		{"$share//a", "", "", false},
		{"$share/g/", "", "", false},
		{"$share/+/a", "", "", false},
		{"a/b", "", "", false},
		{"$queue/a", "", "", false},
	} {
		g, f, ok := ParseShared(tc.in)
		if g != tc.group || f != tc.filter || ok != tc.ok {
			t.Errorf("ParseShared(%q) = %q, %q, %v; want %q, %q, %v", tc.in, g, f, ok, tc.group, tc.filter, tc.ok)
		}
	}
}

// TestFilterFirstBadWildcard: with several misplaced wildcards the error
// names the first one, '#' [MQTT-4.7.1-1] (5.0) [MQTT-4.7.1-2] (3.1.1) or
// '+' [MQTT-4.7.1-2] (5.0) [MQTT-4.7.1-3] (3.1.1).
func TestFilterFirstBadWildcard(t *testing.T) {
	for filter, rule := range map[string]string{
		"a/#/+x":      "MQTT-4.7.1-1",
		"a+/#x":       "MQTT-4.7.1-2",
		"+/+/x+":      "MQTT-4.7.1-2",
		"x#":          "MQTT-4.7.1-1",
		"+/a/#/+":     "MQTT-4.7.1-1",
		"$share/g/a+": "MQTT-4.7.1-2",
	} {
		err := ValidateTopicFilter(filter)
		var te *TopicError
		if !errors.As(err, &te) || te.Rule != rule {
			t.Errorf("%q: %v, want rule %s", filter, err, rule)
		}
	}
	for _, ok := range []string{"+", "#", "+/+/#", "a/+/b/#", "$share/g/+/x/#", "/+/", "//#"} {
		if err := ValidateTopicFilter(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
