package gen

import (
	"encoding/binary"
	"strconv"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Class is a kind of field-level mutation.
type Class uint8

// The mutation classes. Each changes one field of a valid packet.
const (
	RemainingLength Class = iota // the remaining length off by one, huge, over four bytes or not minimal
	StringLength                 // a string or binary length off by one or huge
	PropertyLength               // a property block's length off by one or huge (5.0)
	ReservedBits                 // a reserved flag or bit set: fixed header, CONNECT, CONNACK, subscription options
	QoS3                         // a QoS of 3: PUBLISH, Will, subscription
	PacketID0                    // a packet identifier of 0
	PropUnknown                  // a property identifier the spec does not define (5.0)
	PropDuplicate                // a property that may appear once, twice (5.0)
	PropWrongPacket              // a property the packet type does not allow (5.0)
	PropValue                    // a property value out of its range: a flag of 2, a maximum of 0, a topic alias of 0 (5.0)
	UTF8Surrogate                // a UTF-16 surrogate (U+D800..U+DFFF) encoded in a string
	UTF8Null                     // U+0000 in a string
	UTF8Overlong                 // an overlong UTF-8 form in a string
	TopicWildcard                // a wildcard in a topic name
	FilterWildcard               // a misplaced wildcard in a topic filter
	Truncate                     // the packet cut short
	Concat                       // the packet followed by another and part of a third
	numClasses
)

var classNames = [numClasses]string{
	"remaining-length", "string-length", "property-length", "reserved-bits", "qos3", "packet-id-0",
	"property-unknown", "property-duplicate", "property-wrong-packet", "property-value", "utf8-surrogate", "utf8-null",
	"utf8-overlong", "topic-wildcard", "filter-wildcard", "truncate", "concat",
}

// String returns the class's name, such as "qos3".
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// ParseClass returns the class named s (as String writes it) and whether
// there is one.
func ParseClass(s string) (Class, bool) {
	for c, n := range classNames {
		if n == s {
			return Class(c), true
		}
	}
	return 0, false
}

// Classes returns every class that applies to version v: all of them on
// 5.0, all but the property classes on 3.1.1.
func Classes(v codec.Version) []Class {
	var out []Class
	for c := Class(0); c < numClasses; c++ {
		if v != codec.V5 && (c == PropertyLength || c == PropUnknown || c == PropDuplicate || c == PropWrongPacket || c == PropValue) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// Expect returns the kind of error codec.Decode gives for most mutants of
// the class: codec.ErrMalformed, codec.ErrProtocol or codec.ErrIncomplete.
// For Concat it is the error of decoding the bytes packet after packet:
// two packets, then codec.ErrIncomplete.
func (c Class) Expect() error {
	switch c {
	case PacketID0, PropDuplicate, PropValue:
		return codec.ErrProtocol
	case Truncate, Concat:
		return codec.ErrIncomplete
	}
	return codec.ErrMalformed
}

// Mutant is a mutated packet.
type Mutant struct {
	Bytes []byte     // the mutated bytes
	Class Class      // the mutation applied
	Type  codec.Type // the type of the packet that was mutated
	Note  string     // what was changed, such as "remaining length 12 -> 13"
}

// Mutate applies a mutation of class c to b, one whole valid packet of
// version v, and reports whether the class applies to the packet (a PINGREQ
// has no string to break). b is not modified. It returns false too when b is
// not a packet Walk can lay out.
func (g *Gen) Mutate(b []byte, v codec.Version, c Class) (Mutant, bool) {
	l, err := Walk(b, v)
	if err != nil {
		return Mutant{}, false
	}
	m := Mutant{Class: c, Type: l.Type}
	var ok bool
	m.Bytes, m.Note, ok = g.mutate(b, l, c)
	return m, ok
}

// MutateAny applies one mutation to b, one whole valid packet of version v,
// choosing the class among those that apply; truncation always does. For
// bytes Walk cannot lay out it truncates them, or returns them unchanged
// with Class Truncate when they are shorter than two bytes.
func (g *Gen) MutateAny(b []byte, v codec.Version) Mutant {
	cs := Classes(v)
	start := g.Intn(len(cs))
	for i := range cs {
		c := cs[(start+i)%len(cs)]
		if m, ok := g.Mutate(b, v, c); ok {
			return m
		}
	}
	m := Mutant{Class: Truncate, Bytes: append([]byte(nil), b...)}
	if len(b) > 0 {
		m.Type = codec.Type(b[0] >> 4)
		m.Bytes = m.Bytes[:g.Intn(len(b))]
		m.Note = "cut to " + strconv.Itoa(len(m.Bytes)) + " bytes"
	}
	return m
}

// edit is a packet being changed: the body (after the fixed header) and the
// layout of the original.
type edit struct {
	first byte
	body  []byte
	l     *Layout
}

func newEdit(b []byte, l *Layout) *edit {
	return &edit{first: b[0], body: append([]byte(nil), b[l.HeaderLen:]...), l: l}
}

// at converts a packet offset of the original into a body offset.
func (e *edit) at(off int) int { return off - e.l.HeaderLen }

// bytes re-frames the body with a correct remaining length.
func (e *edit) bytes() []byte {
	out := appendVBI([]byte{e.first}, len(e.body))
	return append(out, e.body...)
}

// insert puts data at packet offset off, inside the string field f (when
// not nil) and the property block pb (when >= 0), and fixes their lengths.
func (e *edit) insert(off int, data []byte, f *Field, pb int) {
	i := e.at(off)
	e.body = append(e.body[:i], append(append([]byte(nil), data...), e.body[i:]...)...)
	if f != nil {
		binary.BigEndian.PutUint16(e.body[e.at(f.Off):], uint16(f.Len+len(data)))
	}
	if pb >= 0 {
		p := e.l.Props[pb]
		e.setVBI(p.Off, p.LenSize, p.End-p.Start+len(data))
	}
}

// setVBI replaces the size-byte Variable Byte Integer at packet offset off.
func (e *edit) setVBI(off, size, x int) {
	i := e.at(off)
	nv := appendVBI(nil, x)
	e.body = append(e.body[:i], append(nv, e.body[i+size:]...)...)
}

func (g *Gen) mutate(b []byte, l *Layout, c Class) ([]byte, string, bool) {
	e := newEdit(b, l)
	switch c {
	case RemainingLength:
		rem := l.Remaining
		hdr := []byte{b[0]}
		var note string
		longer := false
		switch g.Intn(5) {
		case 0:
			hdr = appendVBI(hdr, rem+1)
			note = "one more than the bytes that follow"
			longer = true
		case 1:
			if rem == 0 {
				return nil, "", false
			}
			hdr = appendVBI(hdr, rem-1)
			note = "one less than the fields need"
		case 2:
			hdr = appendVBI(hdr, codec.MaxRemainingLength)
			note = "the largest remaining length"
		case 3:
			hdr = append(hdr, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F)
			note = "five bytes of remaining length"
		default:
			hdr = appendVBI(hdr, rem)
			if len(hdr) == 5 {
				return nil, "", false
			}
			hdr[len(hdr)-1] |= 0x80
			hdr = append(hdr, 0x00)
			note = "not minimally encoded"
		}
		out := append(hdr, b[l.HeaderLen:]...)
		if longer && g.Bool() {
			out = append(out, 0) // give the extra byte, so the packet is complete
			note += ", with one more byte"
		}
		return out, "remaining length " + strconv.Itoa(rem) + ": " + note, true
	case StringLength:
		if len(l.Fields) == 0 {
			return nil, "", false
		}
		f := l.Fields[g.Intn(len(l.Fields))]
		n := pick(g, f.Len+1, f.Len-1, 0xFFFF, f.Len+2)
		if n < 0 {
			n = f.Len + 1
		}
		binary.BigEndian.PutUint16(e.body[e.at(f.Off):], uint16(n))
		return e.bytes(), "string at byte " + strconv.Itoa(f.Off) + ": length " + strconv.Itoa(f.Len) + " -> " + strconv.Itoa(n), true
	case PropertyLength:
		if len(l.Props) == 0 {
			return nil, "", false
		}
		pi := g.Intn(len(l.Props))
		p := l.Props[pi]
		n := p.End - p.Start
		nn := pick(g, n+1, n-1, codec.MaxRemainingLength, n+2)
		if nn < 0 {
			nn = n + 1
		}
		e.setVBI(p.Off, p.LenSize, nn)
		return e.bytes(), "property length at byte " + strconv.Itoa(p.Off) + ": " + strconv.Itoa(n) + " -> " + strconv.Itoa(nn), true
	case ReservedBits:
		var sites []Bits
		sites = append(sites, l.Reserved...)
		if l.Type == codec.TypePublish && b[0]&0x06 == 0 {
			sites = append(sites, Bits{Off: 0, Mask: 0x08}) // DUP on QoS 0
		}
		if len(sites) == 0 {
			return nil, "", false
		}
		s := sites[g.Intn(len(sites))]
		bit := g.bitOf(s.Mask)
		out := append([]byte(nil), b...)
		out[s.Off] ^= bit
		return out, "bit 0x" + strconv.FormatUint(uint64(bit), 16) + " of byte " + strconv.Itoa(s.Off) + " flipped", true
	case QoS3:
		if len(l.QoS) == 0 {
			return nil, "", false
		}
		s := l.QoS[g.Intn(len(l.QoS))]
		out := append([]byte(nil), b...)
		out[s.Off] |= 3 << s.Shift // a Will QoS site exists only when the Will flag is set
		return out, "QoS 3 at byte " + strconv.Itoa(s.Off), true
	case PacketID0:
		if l.PacketID < 0 {
			return nil, "", false
		}
		out := append([]byte(nil), b...)
		out[l.PacketID], out[l.PacketID+1] = 0, 0
		return out, "packet identifier 0", true
	case PropValue:
		var cands []int
		for i, p := range l.Props {
			for _, id := range allowedProps(p.Context) {
				if _, ok := outOfRange[id]; ok {
					cands = append(cands, i)
					break
				}
			}
		}
		if len(cands) == 0 {
			return nil, "", false
		}
		pi := cands[g.Intn(len(cands))]
		p := l.Props[pi]
		var ids []codec.PropID
		for _, id := range allowedProps(p.Context) {
			if _, ok := outOfRange[id]; ok {
				ids = append(ids, id)
			}
		}
		id := ids[g.Intn(len(ids))]
		at := append(append([]int(nil), p.Items...), p.End)[g.Intn(len(p.Items)+1)]
		e.insert(at, outOfRange[id], nil, pi)
		return e.bytes(), id.String() + " out of range", true
	case PropUnknown, PropDuplicate, PropWrongPacket:
		if len(l.Props) == 0 {
			return nil, "", false
		}
		pi := g.Intn(len(l.Props))
		p := l.Props[pi]
		var prop []byte
		var note string
		switch c {
		case PropUnknown:
			id := pick(g, 0x00, 0x04, 0x0A, 0x10, 0x14, 0x1B, 0x1D, 0x20, 0x2B, 0x40, 0x7F)
			prop = []byte{byte(id), 0x00}
			note = "unknown property 0x" + strconv.FormatUint(uint64(id), 16)
		case PropDuplicate:
			var once []codec.PropID
			for _, id := range allowedProps(p.Context) {
				if id != codec.PropUserProperty && !(id == codec.PropSubscriptionIdentifier && p.Context == codec.TypePublish) {
					once = append(once, id)
				}
			}
			if len(once) == 0 {
				return nil, "", false
			}
			id := once[g.Intn(len(once))]
			one := propValue(id)
			prop = append(one, one...)
			note = id.String() + " twice"
		case PropWrongPacket:
			var wrong []codec.PropID
			for _, id := range propIDs {
				if propSpec[id].allowed&(1<<p.Context) == 0 {
					wrong = append(wrong, id)
				}
			}
			id := wrong[g.Intn(len(wrong))]
			prop = propValue(id)
			note = id.String() + " in " + ctxName(p.Context)
		}
		e.insert(p.Start, prop, nil, pi)
		return e.bytes(), note, true
	case UTF8Surrogate, UTF8Null, UTF8Overlong:
		var fs []Field
		for _, f := range l.Fields {
			if f.Kind != KindBinary && !(f.Off == l.HeaderLen && l.Type == codec.TypeConnect) {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			return nil, "", false
		}
		f := fs[g.Intn(len(fs))]
		var bad []byte
		switch c {
		case UTF8Surrogate:
			bad = pick(g, []byte{0xED, 0xA0, 0x80}, []byte{0xED, 0xBF, 0xBF}, []byte{0xED, 0xB0, 0x80})
		case UTF8Null:
			bad = []byte{0}
		default:
			bad = pick(g, []byte{0xC0, 0x80}, []byte{0xC1, 0xBF}, []byte{0xE0, 0x80, 0xAF}, []byte{0xF0, 0x80, 0x80, 0xAF})
		}
		e.insert(f.Off+2+g.Intn(f.Len+1), bad, &f, f.Prop)
		return e.bytes(), c.String() + " in the string at byte " + strconv.Itoa(f.Off), true
	case TopicWildcard:
		var fs []Field
		for _, f := range l.Fields {
			if f.Kind == KindTopicName && f.Len > 0 {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			return nil, "", false
		}
		f := fs[g.Intn(len(fs))]
		w := pick(g, "+", "#", "/+", "/#", "+/")
		e.insert(f.Off+2+g.Intn(f.Len+1), []byte(w), &f, f.Prop)
		return e.bytes(), "wildcard " + strconv.Quote(w) + " in the topic name at byte " + strconv.Itoa(f.Off), true
	case FilterWildcard:
		var fs []Field
		for _, f := range l.Fields {
			if f.Kind == KindFilter {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			return nil, "", false
		}
		f := fs[g.Intn(len(fs))]
		var w string
		at := f.Off + 2
		switch g.Intn(4) {
		case 0:
			w = "#/" // '#' not last
		case 1:
			w = "x+" // '+' inside a level
		case 2:
			w = "a#" // '#' inside a level
		default:
			w = "$share//" // a shared subscription without a group name
		}
		e.insert(at, []byte(w), &f, -1)
		return e.bytes(), "filter prefixed with " + strconv.Quote(w) + " at byte " + strconv.Itoa(f.Off), true
	case Truncate:
		if len(b) < 2 {
			return nil, "", false
		}
		n := 1 + g.Intn(len(b)-1)
		return append([]byte(nil), b[:n]...), "cut to " + strconv.Itoa(n) + " of " + strconv.Itoa(len(b)) + " bytes", true
	case Concat:
		second, err := g.Bytes(l.Version, g.Type(l.Version))
		if err != nil {
			return nil, "", false
		}
		third, err := g.Bytes(l.Version, g.Type(l.Version))
		if err != nil {
			return nil, "", false
		}
		k := 1 + g.Intn(len(third)-1)
		out := append(append(append([]byte(nil), b...), second...), third[:k]...)
		return out, "followed by a " + codec.Type(second[0]>>4).String() + " and " + strconv.Itoa(k) + " bytes of a " +
			codec.Type(third[0]>>4).String(), true
	}
	return nil, "", false
}

// bitOf chooses one bit of mask.
func (g *Gen) bitOf(mask byte) byte {
	var bits []byte
	for i := range 8 {
		if mask&(1<<i) != 0 {
			bits = append(bits, 1<<i)
		}
	}
	return bits[g.Intn(len(bits))]
}

// outOfRange holds, for each property with a range rule, the property with
// a value outside it.
var outOfRange = map[codec.PropID][]byte{
	codec.PropPayloadFormatIndicator:          {0x01, 2},
	codec.PropSubscriptionIdentifier:          {0x0B, 0},
	codec.PropRequestProblemInformation:       {0x17, 2},
	codec.PropRequestResponseInformation:      {0x19, 2},
	codec.PropReceiveMaximum:                  {0x21, 0, 0},
	codec.PropTopicAlias:                      {0x23, 0, 0},
	codec.PropMaximumQoS:                      {0x24, 2},
	codec.PropRetainAvailable:                 {0x25, 2},
	codec.PropMaximumPacketSize:               {0x27, 0, 0, 0, 0},
	codec.PropWildcardSubscriptionAvailable:   {0x28, 2},
	codec.PropSubscriptionIdentifierAvailable: {0x29, 2},
	codec.PropSharedSubscriptionAvailable:     {0x2A, 2},
}

// propValue returns property id with a valid value of its kind.
func propValue(id codec.PropID) []byte {
	out := []byte{byte(id)}
	switch kindOf(id) {
	case kindByte:
		return append(out, 1)
	case kindUint16:
		return append(out, 0, 1)
	case kindUint32:
		return append(out, 0, 0, 0, 1)
	case kindVBI:
		return append(out, 1)
	case kindString:
		return append(out, 0, 1, 'x')
	case kindBinary:
		return append(out, 0, 1, 1)
	case kindPair:
		return append(out, 0, 1, 'k', 0, 1, 'v')
	}
	return out
}

func ctxName(t codec.Type) string {
	if t == 0 {
		return "Will Properties"
	}
	return t.String()
}
