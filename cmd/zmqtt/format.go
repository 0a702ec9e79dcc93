package main

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

// sub -F: mosquitto_sub's output format. A format is text with three kinds
// of sequence, checked when the command starts (an unknown one is a usage
// error, as in mosquitto_sub):
//
//	%[-][0][width][.precision]c   a field of the message (below)
//	@c                            strftime(3) conversion c of the local time,
//	                              @N nanoseconds, @@ a literal @
//	\c                            \\ \0 \a \e \n \r \t \v
//
// The fields: %% a literal %, %t topic, %p payload, %x/%X payload in
// lower/upper case hexadecimal, %l payload length, %q QoS, %r retain flag
// (0 or 1), %m packet identifier (0 at QoS 0), %I ISO 8601 local time
// (2006-01-02T15:04:05+0000), %U Unix time with nanoseconds, %j/%J the
// message as JSON with the payload quoted, or embedded as JSON, and the MQTT
// 5.0 properties: %A topic alias, %C content type, %D correlation data, %E
// message expiry interval, %F payload format indicator, %P user properties
// (key:value, space separated, repeats kept), %R response topic, %S
// subscription identifier. Each message ends with a newline unless -N.
//
// Flags, widths and precisions apply as in mosquitto_sub: 0 pads with zeros
// (%A %E %F %l %m %S %p %x %X), - aligns left, a width is the minimum width
// of %A %C %E %F %I %l %m %S %t and the exact width of %p (shorter is
// padded, longer cut), a precision the maximum width of %C %I %R %t.
//
// Where the output differs from mosquitto_sub 2.0.11, the difference is a
// mosquitto bug, kept out on purpose:
//   - %x and %X with a width print the whole payload up to width/2 bytes;
//     mosquitto prints only half of a payload shorter than the width, and
//     prints %X in lower case when a width is given;
//   - %j and %J keep a payload or string with a zero byte whole (escaped as
//     \u0000); mosquitto cuts it at the zero byte;
//   - the properties in %j and %J come in a fixed order (subscription
//     identifier, payload format indicator, content type, response topic,
//     correlation data, user properties, message expiry interval, topic
//     alias). That is the order in which Mosquitto forwards the properties
//     of a publisher that writes them in identifier order, as zmqtt pub
//     does; mosquitto_sub prints them in the order of the packet.
type format struct {
	segs []fmtSeg
}

// fmtSeg is one piece of a format: literal bytes, a % field or an @ time
// conversion.
type fmtSeg struct {
	kind  byte // 0: literal; '%' a message field; '@' a time conversion
	lit   []byte
	conv  byte
	left  bool
	zero  bool
	width int
	prec  int // -1: none
}

// fieldChars are the % fields mosquitto_sub knows.
const fieldChars = "%ACDEFIjJlmPpqRrStUxX"

// parseFormat checks and compiles a -F format.
func parseFormat(s string) (*format, error) {
	f := &format{}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f.segs = append(f.segs, fmtSeg{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			seg := fmtSeg{kind: '%', prec: -1}
			i++
			if i < len(s) && s[i] == '-' {
				seg.left = true
				i++
			}
			if i < len(s) && s[i] == '0' {
				seg.zero = true
				i++
			}
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				seg.width = min(seg.width*10+int(s[i]-'0'), 1<<20)
				i++
			}
			if i < len(s) && s[i] == '.' {
				seg.prec = 0
				i++
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					seg.prec = min(seg.prec*10+int(s[i]-'0'), 1<<20)
					i++
				}
			}
			if i >= len(s) {
				return nil, usagef("-F: incomplete format specifier at the end of %q", s)
			}
			if !bytes.ContainsRune([]byte(fieldChars), rune(s[i])) {
				return nil, usagef("-F: invalid format specifier '%c' (known: %s)", s[i], fieldChars)
			}
			seg.conv = s[i]
			flush()
			f.segs = append(f.segs, seg)
		case '@':
			i++
			if i >= len(s) {
				return nil, usagef("-F: incomplete format specifier at the end of %q", s)
			}
			if s[i] == '@' {
				lit = append(lit, '@')
				continue
			}
			flush()
			f.segs = append(f.segs, fmtSeg{kind: '@', conv: s[i]})
		case '\\':
			i++
			if i >= len(s) {
				return nil, usagef("-F: incomplete escape specifier at the end of %q", s)
			}
			c, ok := escapes[s[i]]
			if !ok {
				return nil, usagef("-F: invalid escape specifier '%c' (known: \\\\ \\0 \\a \\e \\n \\r \\t \\v)", s[i])
			}
			lit = append(lit, c)
		default:
			lit = append(lit, s[i])
		}
	}
	flush()
	return f, nil
}

var escapes = map[byte]byte{'\\': '\\', '0': 0, 'a': '\a', 'e': 0x1b, 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

// fmtEnv is what printing a message needs besides the message.
type fmtEnv struct {
	now    time.Time
	pretty bool // --pretty: %j and %J indented as cJSON_Print does
	// warn receives what mosquitto_sub prints on standard error while
	// formatting: a %J payload that is not JSON.
	warn func(string)
}

// print appends the formatted message to b.
func (f *format) print(b *bytes.Buffer, m *client.Message, env *fmtEnv) {
	for i := range f.segs {
		s := &f.segs[i]
		switch s.kind {
		case 0:
			b.Write(s.lit)
		case '@':
			if s.conv == 'N' {
				fmt.Fprintf(b, "%09d", env.now.Nanosecond())
			} else {
				strftime(b, s.conv, env.now)
			}
		case '%':
			s.field(b, m, env)
		}
	}
}

func (s *fmtSeg) pad() byte {
	if s.zero && !s.left {
		return '0'
	}
	return ' '
}

// field appends one % field.
func (s *fmtSeg) field(b *bytes.Buffer, m *client.Message, env *fmtEnv) {
	p := &m.Properties
	switch s.conv {
	case '%':
		b.WriteByte('%')
	case 'A':
		s.optInt(b, p.Has(codec.PropTopicAlias), uint64(p.TopicAlias))
	case 'C':
		if p.Has(codec.PropContentType) {
			s.str(b, p.ContentType)
		} else {
			blank(b, ' ', s.width)
		}
	case 'D':
		b.Write(p.CorrelationData)
	case 'E':
		s.optInt(b, p.Has(codec.PropMessageExpiryInterval), uint64(p.MessageExpiry))
	case 'F':
		s.optInt(b, p.Has(codec.PropPayloadFormatIndicator), uint64(p.PayloadFormat))
	case 'I':
		s.str(b, env.now.Format("2006-01-02T15:04:05-0700"))
	case 'j':
		messageJSON(b, m, env, false)
	case 'J':
		messageJSON(b, m, env, true)
	case 'l':
		s.int(b, uint64(len(m.Payload)))
	case 'm':
		s.int(b, uint64(m.PacketID))
	case 'P':
		for i, u := range p.User {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(u.Key)
			b.WriteByte(':')
			b.WriteString(u.Value)
		}
	case 'p':
		s.payload(b, m.Payload, "")
	case 'q':
		b.WriteByte('0' + byte(m.QoS))
	case 'R':
		if p.Has(codec.PropResponseTopic) {
			s.str(b, p.ResponseTopic)
		}
	case 'r':
		if m.Retain {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	case 'S':
		if len(p.SubscriptionIDs) > 0 {
			s.int(b, uint64(p.SubscriptionIDs[0]))
		} else {
			blank(b, s.pad(), s.width)
		}
	case 't':
		s.str(b, m.Topic)
	case 'U':
		fmt.Fprintf(b, "%d.%09d", env.now.Unix(), env.now.Nanosecond())
	case 'x':
		s.payload(b, m.Payload, "0123456789abcdef")
	case 'X':
		s.payload(b, m.Payload, "0123456789ABCDEF")
	}
}

func blank(b *bytes.Buffer, c byte, n int) {
	for range n {
		b.WriteByte(c)
	}
}

// int appends v as printf's %d, %-Nd or %0Nd does.
func (s *fmtSeg) int(b *bytes.Buffer, v uint64) {
	d := strconv.FormatUint(v, 10)
	n := s.width - len(d)
	if !s.left {
		blank(b, s.pad(), n)
	}
	b.WriteString(d)
	if s.left {
		blank(b, ' ', n)
	}
}

// optInt appends v when the property is present, else width pad bytes.
func (s *fmtSeg) optInt(b *bytes.Buffer, present bool, v uint64) {
	if present {
		s.int(b, v)
	} else {
		blank(b, s.pad(), s.width)
	}
}

// str appends v as printf's %*.*s does: cut to the precision, padded with
// spaces to the width.
func (s *fmtSeg) str(b *bytes.Buffer, v string) {
	if s.prec >= 0 && len(v) > s.prec {
		v = v[:s.prec]
	}
	n := s.width - len(v)
	if !s.left {
		blank(b, ' ', n)
	}
	b.WriteString(v)
	if s.left {
		blank(b, ' ', n)
	}
}

// payload appends the payload raw (digits "") or in hexadecimal. A width
// is exact for the raw payload (cut or padded, as mosquitto_sub does) and
// a maximum for hexadecimal, which is cut to whole bytes.
func (s *fmtSeg) payload(b *bytes.Buffer, p []byte, digits string) {
	per := 1
	if digits != "" {
		per = 2
	}
	n := 0
	if s.width > 0 {
		if len(p)*per > s.width {
			p = p[:s.width/per]
		}
		n = s.width - len(p)*per
	}
	if !s.left {
		blank(b, s.pad(), n)
	}
	if digits == "" {
		b.Write(p)
	} else {
		for _, c := range p {
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&15])
		}
	}
	if s.left {
		blank(b, ' ', n)
	}
}

// messageJSON appends %j (payload as a JSON string) or %J (payload
// embedded as JSON) in the shape mosquitto_sub prints with cJSON.
func messageJSON(b *bytes.Buffer, m *client.Message, env *fmtEnv, embed bool) {
	root := &jnode{kind: 'o'}
	now := env.now
	root.add("tst", jstr(now.Format("2006-01-02T15:04:05.000000")+"Z"+now.Format("-0700")))
	root.add("topic", jstr(m.Topic))
	root.add("qos", jint(uint64(m.QoS)))
	root.add("retain", jint(uint64(btoi(m.Retain))))
	root.add("payloadlen", jint(uint64(len(m.Payload))))
	if m.QoS > 0 {
		root.add("mid", jint(uint64(m.PacketID)))
	}
	if !m.Properties.Empty() || len(m.Properties.User) > 0 || len(m.Properties.SubscriptionIDs) > 0 {
		root.add("properties", propsJSON(&m.Properties))
	}
	switch {
	case len(m.Payload) == 0:
		root.add("payload", &jnode{kind: 'l', text: []byte("null")})
	case embed:
		v, ok := parseJSON(m.Payload)
		if !ok {
			env.warn("message payload is not valid JSON on topic " + m.Topic)
			return
		}
		root.add("payload", v)
	default:
		root.add("payload", &jnode{kind: 's', text: m.Payload})
	}
	root.write(b, env.pretty, 0)
}

// propsJSON is the "properties" object of %j: mosquitto's property names,
// user properties in an object of their own with repeated keys kept.
func propsJSON(p *codec.Properties) *jnode {
	o := &jnode{kind: 'o'}
	for _, id := range p.SubscriptionIDs {
		o.add("subscription-identifier", jint(uint64(id)))
	}
	if p.Has(codec.PropPayloadFormatIndicator) {
		o.add("payload-format-indicator", jint(uint64(p.PayloadFormat)))
	}
	if p.Has(codec.PropContentType) {
		o.add("content-type", jstr(p.ContentType))
	}
	if p.Has(codec.PropResponseTopic) {
		o.add("response-topic", jstr(p.ResponseTopic))
	}
	if p.Has(codec.PropCorrelationData) {
		o.add("correlation-data", &jnode{kind: 's', text: p.CorrelationData})
	}
	if len(p.User) > 0 {
		u := &jnode{kind: 'o'}
		for _, kv := range p.User {
			u.add(kv.Key, jstr(kv.Value))
		}
		o.add("user-properties", u)
	}
	if p.Has(codec.PropMessageExpiryInterval) {
		o.add("message-expiry-interval", jint(uint64(p.MessageExpiry)))
	}
	if p.Has(codec.PropTopicAlias) {
		o.add("topic-alias", jint(uint64(p.TopicAlias)))
	}
	return o
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// strftime appends the strftime(3) conversion c of t in the C locale, as
// glibc does; a character glibc does not know is written as %c.
func strftime(b *bytes.Buffer, c byte, t time.Time) {
	two := func(v int) { fmt.Fprintf(b, "%02d", v) }
	hour12 := t.Hour() % 12
	if hour12 == 0 {
		hour12 = 12
	}
	switch c {
	case 'a':
		b.WriteString(t.Format("Mon"))
	case 'A':
		b.WriteString(t.Format("Monday"))
	case 'b', 'h':
		b.WriteString(t.Format("Jan"))
	case 'B':
		b.WriteString(t.Format("January"))
	case 'c':
		fmt.Fprintf(b, "%s %s %2d %02d:%02d:%02d %d", t.Format("Mon"), t.Format("Jan"), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Year())
	case 'C':
		two(t.Year() / 100)
	case 'd':
		two(t.Day())
	case 'D', 'x':
		fmt.Fprintf(b, "%02d/%02d/%02d", int(t.Month()), t.Day(), t.Year()%100)
	case 'e':
		fmt.Fprintf(b, "%2d", t.Day())
	case 'F':
		fmt.Fprintf(b, "%d-%02d-%02d", t.Year(), int(t.Month()), t.Day())
	case 'g':
		y, _ := t.ISOWeek()
		two(y % 100)
	case 'G':
		y, _ := t.ISOWeek()
		fmt.Fprintf(b, "%d", y)
	case 'H':
		two(t.Hour())
	case 'I':
		two(hour12)
	case 'j':
		fmt.Fprintf(b, "%03d", t.YearDay())
	case 'k':
		fmt.Fprintf(b, "%2d", t.Hour())
	case 'l':
		fmt.Fprintf(b, "%2d", hour12)
	case 'm':
		two(int(t.Month()))
	case 'M':
		two(t.Minute())
	case 'n':
		b.WriteByte('\n')
	case 'p':
		b.WriteString(t.Format("PM"))
	case 'P':
		b.WriteString(t.Format("pm"))
	case 'r':
		fmt.Fprintf(b, "%02d:%02d:%02d %s", hour12, t.Minute(), t.Second(), t.Format("PM"))
	case 'R':
		fmt.Fprintf(b, "%02d:%02d", t.Hour(), t.Minute())
	case 's':
		fmt.Fprintf(b, "%d", t.Unix())
	case 'S':
		two(t.Second())
	case 't':
		b.WriteByte('\t')
	case 'T', 'X':
		fmt.Fprintf(b, "%02d:%02d:%02d", t.Hour(), t.Minute(), t.Second())
	case 'u':
		fmt.Fprintf(b, "%d", (int(t.Weekday())+6)%7+1)
	case 'U':
		two((t.YearDay() - 1 + 7 - int(t.Weekday())) / 7)
	case 'V':
		_, w := t.ISOWeek()
		two(w)
	case 'w':
		fmt.Fprintf(b, "%d", int(t.Weekday()))
	case 'W':
		two((t.YearDay() - 1 + 7 - (int(t.Weekday())+6)%7) / 7)
	case 'y':
		two(t.Year() % 100)
	case 'Y':
		fmt.Fprintf(b, "%d", t.Year())
	case 'z':
		b.WriteString(t.Format("-0700"))
	case 'Z':
		name, _ := t.Zone()
		b.WriteString(name)
	case '%':
		b.WriteByte('%')
	default:
		b.WriteByte('%')
		b.WriteByte(c)
	}
}
