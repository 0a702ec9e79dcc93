package main

// Unit tests of -F, -D and the option parser, in-process. What mosquitto_sub
// prints for the same formats is checked against the real thing in
// compat_test.go; these cover what a broker round trip cannot pin down
// (fixed times, every strftime conversion, parse errors).

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

// TestStrftime: every conversion of glibc's strftime in the C locale; the
// wanted strings are what `TZ=UTC date -d @T +FORMAT` prints.
func TestStrftime(t *testing.T) {
	const convs = "aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ%"
	for _, c := range []struct {
		unix int64
		want string
	}{
		{1796475012, "Sat|Saturday|Dec|December|Sat Dec  5 12:50:12 2026|20|05|12/05/26| 5|2026-12-05|26|2026|Dec|12|12|339|12|12|12|50|\n|PM|pm|12:50:12 PM|12:50|1796475012|12|\t|12:50:12|6|48|49|6|48|12/05/26|12:50:12|26|2026|+0000|UTC|%"},
		{1704067199, "Sun|Sunday|Dec|December|Sun Dec 31 23:59:59 2023|20|31|12/31/23|31|2023-12-31|23|2023|Dec|23|11|365|23|11|12|59|\n|PM|pm|11:59:59 PM|23:59|1704067199|59|\t|23:59:59|7|53|52|0|52|12/31/23|23:59:59|23|2023|+0000|UTC|%"},
		{1735689600, "Wed|Wednesday|Jan|January|Wed Jan  1 00:00:00 2025|20|01|01/01/25| 1|2025-01-01|25|2025|Jan|00|12|001| 0|12|01|00|\n|AM|am|12:00:00 AM|00:00|1735689600|00|\t|00:00:00|3|00|01|3|00|01/01/25|00:00:00|25|2025|+0000|UTC|%"},
	} {
		tm := time.Unix(c.unix, 0).UTC()
		var b bytes.Buffer
		for i := range len(convs) {
			if i > 0 {
				b.WriteByte('|')
			}
			strftime(&b, convs[i], tm)
		}
		if b.String() != c.want {
			t.Errorf("%d:\n got %q\nwant %q", c.unix, b.String(), c.want)
		}
	}
	// The zone of the time, not UTC; an unknown conversion is written as
	// glibc writes it.
	ist := time.Unix(1796475012, 0).In(time.FixedZone("IST", 5*3600+1800))
	var b bytes.Buffer
	for _, c := range []byte("z|Z|H|Q|E") {
		strftime(&b, c, ist)
	}
	if want := "+0530%|IST%|18%|%Q%|%E"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestFormatFields: each field, flag, width and precision on a message
// with every property, at a fixed time.
func TestFormatFields(t *testing.T) {
	m := client.Message{Topic: "a/b", Payload: []byte("hello"), QoS: 1, Retain: true, PacketID: 42,
		Properties: codec.Properties{ContentType: "text/plain", ResponseTopic: "r/t", CorrelationData: []byte("c1"),
			MessageExpiry: 60, PayloadFormat: 1, TopicAlias: 3, SubscriptionIDs: []uint32{9, 10},
			User: []codec.UserProperty{{Key: "k", Value: "1"}, {Key: "k", Value: "2"}}}}
	m.Properties.Mark(codec.PropPayloadFormatIndicator)
	empty := client.Message{Topic: "e", QoS: 0}
	now := time.Date(2026, 12, 5, 12, 50, 12, 1234567, time.UTC)
	for _, c := range []struct {
		format string
		m      *client.Message
		want   string
	}{
		{"%t %p %q %r %m %l %x %X %%", &m, "a/b hello 1 1 42 5 68656c6c6f 68656C6C6F %"},
		{"%P|%C|%R|%D|%E|%F|%A|%S", &m, "k:1 k:2|text/plain|r/t|c1|60|1|3|9"},
		{"[%5t][%-5t][%.1t][%6.2t][%05l][%-5l][%5l]", &m, "[  a/b][a/b  ][a][    a/][00005][5    ][    5]"},
		{"[%8p][%-8p][%08p][%3p][%5q][%5r]", &m, "[   hello][hello   ][000hello][hel][1][1]"},
		{"[%14x][%-14X][%4x][%014x]", &m, "[    68656c6c6f][68656C6C6F    ][6865][000068656c6c6f]"},
		{"[%5C][%5E][%05E][%5F][%5A][%5S][%R][%D][%P]", &empty, "[     ][     ][00000][     ][     ][     ][][][]"},
		{"%I|%U|@Y-@m-@d@@@N", &m, "2026-12-05T12:50:12+0000|1796475012.001234567|2026-12-05@001234567"},
		{`\t\0\a\e\n\r\v\\`, &m, "\t\x00\a\x1b\n\r\v\\"},
		{"%j", &m, `{"tst":"2026-12-05T12:50:12.001234Z+0000","topic":"a/b","qos":1,"retain":1,"payloadlen":5,"mid":42,` +
			`"properties":{"subscription-identifier":9,"subscription-identifier":10,"payload-format-indicator":1,"content-type":"text/plain",` +
			`"response-topic":"r/t","correlation-data":"c1","user-properties":{"k":"1","k":"2"},"message-expiry-interval":60,"topic-alias":3},"payload":"hello"}`},
		{"%j", &empty, `{"tst":"2026-12-05T12:50:12.001234Z+0000","topic":"e","qos":0,"retain":0,"payloadlen":0,"payload":null}`},
	} {
		f, err := parseFormat(c.format)
		if err != nil {
			t.Fatalf("%q: %v", c.format, err)
		}
		var b bytes.Buffer
		f.print(&b, c.m, &fmtEnv{now: now, warn: func(s string) { t.Errorf("%q: warning %q", c.format, s) }})
		if b.String() != c.want {
			t.Errorf("%q:\n got %q\nwant %q", c.format, b.String(), c.want)
		}
	}
}

// TestFormatErrors: a format with a sequence mosquitto_sub does not know is
// a usage error, found before connecting.
func TestFormatErrors(t *testing.T) {
	for _, c := range []struct{ format, want string }{
		{"%Z", "invalid format specifier 'Z'"},
		{"%-05.3Z", "invalid format specifier 'Z'"},
		{"%0-5t", "invalid format specifier '-'"},
		{"abc%", "incomplete format specifier"},
		{"%5", "incomplete format specifier"},
		{"%1.", "incomplete format specifier"},
		{"@", "incomplete format specifier"},
		{`\q`, `invalid escape specifier 'q'`},
		{`abc\`, "incomplete escape specifier"},
	} {
		_, err := parseFormat(c.format)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(ue.msg, c.want) {
			t.Errorf("%q: got %v, want a usage error saying %q", c.format, err, c.want)
		}
	}
}

// TestJSONPayload: %J rewrites a JSON payload as cJSON writes it, compact
// and --pretty, and refuses what is not one JSON value.
func TestJSONPayload(t *testing.T) {
	for _, c := range []struct{ in, compact, pretty string }{
		{`{"a": 1.0, "a": [1e3, -0, 0.30000000000000004, 3.14159265358979323846, 1e400, 5e-324, 123456789012345678]}`,
			`{"a":1,"a":[1000,-0,0.3,3.1415926535897931,null,4.94065645841247e-324,1.2345678901234568e+17]}`,
			"{\n\t\"a\":\t1,\n\t\"a\":\t[1000, -0, 0.3, 3.1415926535897931, null, 4.94065645841247e-324, 1.2345678901234568e+17]\n}"},
		{` ["\u00e9\/\u0001\"\\\b\f\n\r\t", true, false, null, {}, []] `,
			"[\"é/\\u0001\\\"\\\\\\b\\f\\n\\r\\t\",true,false,null,{},[]]",
			"[\"é/\\u0001\\\"\\\\\\b\\f\\n\\r\\t\", true, false, null, {\n\t}, []]"},
		{`{"o":{"p":[{"q":{}}]}}`, `{"o":{"p":[{"q":{}}]}}`,
			"{\n\t\"o\":\t{\n\t\t\"p\":\t[{\n\t\t\t\t\"q\":\t{\n\t\t\t\t}\n\t\t\t}]\n\t}\n}"},
	} {
		n, ok := parseJSON([]byte(c.in))
		if !ok {
			t.Fatalf("%s: not parsed", c.in)
		}
		for _, pretty := range []bool{false, true} {
			var b bytes.Buffer
			n.write(&b, pretty, 0)
			want := c.compact
			if pretty {
				want = c.pretty
			}
			if b.String() != want {
				t.Errorf("%s (pretty %v):\n got %q\nwant %q", c.in, pretty, b.String(), want)
			}
		}
	}
	for _, bad := range []string{"", "not json", `{"a":1} {"b":2}`, `[1,]`, `{"a"}`} {
		if _, ok := parseJSON([]byte(bad)); ok {
			t.Errorf("%q parsed as JSON", bad)
		}
	}
	if got := string(cjsonNumber(math.NaN())); got != "null" {
		t.Errorf("NaN: %q", got)
	}
}

// TestParseOptions: the mosquitto-style parser.
func TestParseOptions(t *testing.T) {
	newSet := func() (*optSet, *common, *[]string, *string) {
		s := newOptSet("sub", "", "")
		var f common
		var topics []string
		var msg string
		s.list(&topics, "FILTER", "", "-t", "--topic")
		s.str(&msg, "MESSAGE", "", "-m", "--message")
		f.register(s, "311")
		return s, &f, &topics, &msg
	}
	s, f, topics, msg := newSet()
	err := s.parse([]string{"-t", "a", "--topic=b", "-m", "-5", "-D", "PUBLISH", "User-Property", "k", "v",
		"-D", "connect", "session-expiry-interval", "60", "-cafile", "ca.pem", "-i", "me"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.finish(s); err != nil {
		t.Fatal(err)
	}
	if strings.Join(*topics, ",") != "a,b" || *msg != "-5" || f.cafile != "ca.pem" {
		t.Errorf("topics %q, message %q, cafile %q", *topics, *msg, f.cafile)
	}
	if f.version != codec.V5 || f.expiry != 60 {
		t.Errorf("-D selects MQTT 5.0 and sets the expiry: version %v, expiry %d", f.version, f.expiry)
	}
	if u := f.props.props[pcPublish].User; len(u) != 1 || u[0] != (codec.UserProperty{Key: "k", Value: "v"}) {
		t.Errorf("publish user properties %v", u)
	}
	if f.brokerU != "mqtts://localhost:8883" {
		t.Errorf("--cafile turns TLS on: %q", f.brokerU)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-t"}, "-t needs a value"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"--nope"}, "unknown option --nope"},
		{[]string{"-D", "publish", "content-type"}, "needs a command, a property and a value"},
		{[]string{"-D", "publish", "user-property", "k"}, "needs a name and a value"},
		{[]string{"-D", "pubrel", "user-property", "k", "v"}, "properties on PUBREL are not supported"},
		{[]string{"-D", "suback", "reason-string", "x"}, "unknown command"},
		{[]string{"-D", "connect", "content-type", "x"}, "content-type is not allowed in CONNECT"},
		{[]string{"-D", "connect", "assigned-client-identifier", "x"}, "only a server sends"},
		{[]string{"-D", "publish", "topic-alias", "0"}, "from 1 to 65535"},
		{[]string{"-D", "publish", "message-expiry-interval", "1x"}, `"1x" is not a whole number`},
		{[]string{"-D", "publish", "content-type", "a", "-D", "publish", "content-type", "b"}, "given twice"},
		{[]string{"-k", "70000"}, "from 0 to 65535"},
		{[]string{"--capath", "/etc/ssl"}, "--capath is not supported"},
		{[]string{"-t=x"}, "unknown option -t=x"},
		{[]string{"--retain=1"}, "unknown option --retain"},
	} {
		s, _, _, _ := newSet()
		err := s.parse(c.args)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(ue.msg, c.want) {
			t.Errorf("%q: got %v, want a usage error saying %q", c.args, err, c.want)
		}
	}
	s, _, _, _ = newSet()
	if err := s.parse([]string{"-t", "x", "--help"}); !errors.Is(err, errHelp) {
		t.Errorf("--help: %v", err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-V", "311", "-D", "publish", "content-type", "t"}, "MQTT 3.1.1"},
		{[]string{"-x", "10"}, "-V 5"},
		{[]string{"-V", "5", "-x", "-1"}, "never expires needs a client identifier"},
		{[]string{"-V", "5", "-i", "x", "-x", "5", "-D", "connect", "session-expiry-interval", "5"}, "not both"},
		{[]string{"-c"}, "-c needs a client identifier"},
		{[]string{"-i", "a", "-I", "b"}, "-i or -I"},
		{[]string{"--will-qos", "1"}, "--will-qos needs --will-topic"},
		{[]string{"-D", "will", "content-type", "x"}, "-D will needs --will-topic"},
		{[]string{"--will-topic", "a/+"}, "--will-topic"},
		{[]string{"-D", "connect", "authentication-data", "x"}, "needs -D connect authentication-method"},
		{[]string{"-V", "mqttv31"}, "MQTT 3.1 is not supported"},
		{[]string{"--unix", "/s", "--url", "mqtt://h"}, "--unix or --url"},
	} {
		s, f, _, _ := newSet()
		err := s.parse(c.args)
		if err == nil {
			err = f.finish(s)
		}
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(ue.msg, c.want) {
			t.Errorf("%q: got %v, want a usage error saying %q", c.args, err, c.want)
		}
	}

	// -L: credentials stay in the URL (the client takes them from it), the
	// path names the topic, and -c with -x -1 means a session that never
	// expires.
	s, f, _, _ = newSet()
	if err := s.parse([]string{"-L", "mqtt://u:p@example.com:1884/some/topic", "-V", "mqttv5", "-c", "-i", "me"}); err != nil {
		t.Fatal(err)
	}
	if err := f.finish(s); err != nil {
		t.Fatal(err)
	}
	if f.brokerU != "mqtt://u:p@example.com:1884" || f.urlTopic != "some/topic" || f.expiry != maxU32 {
		t.Errorf("-L: url %q, topic %q, expiry %d", f.brokerU, f.urlTopic, f.expiry)
	}
}
