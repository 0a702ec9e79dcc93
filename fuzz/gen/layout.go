package gen

import (
	"errors"

	"github.com/zmqtt/zmqtt-go/codec"
)

// FieldKind says what a length-prefixed field of a packet holds.
type FieldKind uint8

// The kinds of length-prefixed fields.
const (
	KindString    FieldKind = iota // a UTF-8 string
	KindBinary                     // binary data: no UTF-8 rules
	KindTopicName                  // a topic name: UTF-8, no wildcards
	KindFilter                     // a topic filter of SUBSCRIBE or UNSUBSCRIBE
)

// Field is one length-prefixed field: a two-byte length at Off, then Len
// bytes.
type Field struct {
	Off  int // offset of the two-byte length in the packet
	Len  int // length of the content
	Kind FieldKind
	Prop int // index in Layout.Props of the property block holding it, or -1
}

// PropBlock is one property block: its Variable Byte Integer length at Off
// (LenSize bytes), the properties from Start to End, and the offset of each
// property identifier.
type PropBlock struct {
	Off, LenSize int
	Start, End   int
	Items        []int
	Context      codec.Type // the packet type, or 0 for the Will Properties
}

// Bits names bits of one byte of a packet.
type Bits struct {
	Off   int
	Mask  byte
	Shift uint8 // for a QoS: the position of its low bit
}

// Layout is where the fields of one encoded packet are. Offsets count from
// the first byte of the packet.
type Layout struct {
	Type      codec.Type
	Version   codec.Version
	HeaderLen int // the fixed header: first byte and remaining length
	Remaining int
	PacketID  int // offset of the packet identifier, -1 when there is none
	Fields    []Field
	Props     []PropBlock
	QoS       []Bits // every two-bit QoS: PUBLISH flags, Will QoS, subscription options
	Reserved  []Bits // reserved bits that must be zero in a valid packet
}

// ErrLayout is returned by Walk for bytes it cannot lay out.
var ErrLayout = errors.New("gen: not a well-formed packet")

// Walk finds the fields of b, one whole valid packet of version v (such as
// Bytes returns, or a packet codec.Decode accepts). It returns ErrLayout for
// bytes that do not frame as such a packet.
func Walk(b []byte, v codec.Version) (*Layout, error) {
	h, err := codec.ParseHeader(b)
	if err != nil || h.Size() != len(b) {
		return nil, ErrLayout
	}
	l := &Layout{Type: h.Type, Version: v, HeaderLen: h.Len, Remaining: h.Remaining, PacketID: -1}
	w := walker{b: b, off: h.Len, l: l, v5: v == codec.V5}
	if h.Type != codec.TypeConnect && h.Type != codec.TypePublish {
		if fixed := byte(0); h.Type == codec.TypePubrel || h.Type == codec.TypeSubscribe || h.Type == codec.TypeUnsubscribe {
			fixed = 2
			l.Reserved = append(l.Reserved, Bits{Off: 0, Mask: 0x0F &^ fixed})
		} else {
			l.Reserved = append(l.Reserved, Bits{Off: 0, Mask: 0x0F})
		}
	}
	if !w.body(h) || w.off != len(b) {
		return nil, ErrLayout
	}
	return l, nil
}

type walker struct {
	b   []byte
	off int
	l   *Layout
	v5  bool
	bad bool
}

func (w *walker) need(n int) bool {
	if w.off+n > len(w.b) {
		w.bad = true
		return false
	}
	return true
}

func (w *walker) u8() byte {
	if !w.need(1) {
		return 0
	}
	w.off++
	return w.b[w.off-1]
}

func (w *walker) u16() int {
	if !w.need(2) {
		return 0
	}
	w.off += 2
	return int(w.b[w.off-2])<<8 | int(w.b[w.off-1])
}

func (w *walker) vbi() int {
	x, n := readVBI(w.b[min(w.off, len(w.b)):])
	if n == 0 {
		w.bad = true
		return 0
	}
	w.off += n
	return x
}

func (w *walker) field(k FieldKind, prop int) {
	off := w.off
	n := w.u16()
	if !w.need(n) {
		return
	}
	w.off += n
	w.l.Fields = append(w.l.Fields, Field{Off: off, Len: n, Kind: k, Prop: prop})
}

func (w *walker) id() {
	w.l.PacketID = w.off
	w.u16()
}

func (w *walker) props(ctx codec.Type) {
	if !w.v5 || w.bad {
		return
	}
	off := w.off
	n := w.vbi()
	if w.bad || !w.need(n) {
		return
	}
	pb := PropBlock{Off: off, LenSize: w.off - off, Start: w.off, End: w.off + n, Context: ctx}
	idx := len(w.l.Props)
	w.l.Props = append(w.l.Props, pb)
	for w.off < pb.End && !w.bad {
		w.l.Props[idx].Items = append(w.l.Props[idx].Items, w.off)
		id := codec.PropID(w.u8())
		switch kindOf(id) {
		case kindByte:
			w.u8()
		case kindUint16:
			w.u16()
		case kindUint32:
			if w.need(4) {
				w.off += 4
			}
		case kindVBI:
			w.vbi()
		case kindString:
			k := KindString
			if id == codec.PropResponseTopic {
				k = KindTopicName
			}
			w.field(k, idx)
		case kindBinary:
			w.field(KindBinary, idx)
		case kindPair:
			w.field(KindString, idx)
			w.field(KindString, idx)
		default:
			w.bad = true
		}
	}
	if w.off != pb.End {
		w.bad = true
	}
}

// body walks the variable header and payload; it reports success.
func (w *walker) body(h codec.Header) bool {
	l, end := w.l, len(w.b)
	switch h.Type {
	case codec.TypeConnect:
		w.field(KindString, -1) // protocol name
		w.u8()                  // level
		fo := w.off
		f := w.u8()
		l.Reserved = append(l.Reserved, Bits{Off: fo, Mask: 0x01})
		w.u16() // keep alive
		w.props(codec.TypeConnect)
		w.field(KindString, -1) // client id
		if f&0x04 != 0 {
			l.QoS = append(l.QoS, Bits{Off: fo, Mask: 0x18, Shift: 3})
			w.props(0)
			w.field(KindTopicName, -1)
			w.field(KindBinary, -1)
		}
		if f&0x80 != 0 {
			w.field(KindString, -1)
		}
		if f&0x40 != 0 {
			w.field(KindBinary, -1)
		}
	case codec.TypeConnack:
		fo := w.off
		w.u8()
		l.Reserved = append(l.Reserved, Bits{Off: fo, Mask: 0xFE})
		w.u8()
		w.props(codec.TypeConnack)
	case codec.TypePublish:
		l.QoS = append(l.QoS, Bits{Off: 0, Mask: 0x06, Shift: 1})
		w.field(KindTopicName, -1)
		if w.b[0]&0x06 != 0 {
			w.id()
		}
		w.props(codec.TypePublish)
		w.off = max(w.off, end)
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		w.id()
		if w.off < end {
			w.u8()
		}
		if w.off < end {
			w.props(h.Type)
		}
	case codec.TypeSubscribe:
		w.id()
		w.props(h.Type)
		for w.off < end && !w.bad {
			w.field(KindFilter, -1)
			mask := byte(0xC0)
			if !w.v5 {
				mask = 0xFC
			}
			l.QoS = append(l.QoS, Bits{Off: w.off, Mask: 0x03})
			l.Reserved = append(l.Reserved, Bits{Off: w.off, Mask: mask})
			w.u8()
		}
	case codec.TypeSuback, codec.TypeUnsuback:
		w.id()
		w.props(h.Type)
		w.off = max(w.off, end)
	case codec.TypeUnsubscribe:
		w.id()
		w.props(h.Type)
		for w.off < end && !w.bad {
			w.field(KindFilter, -1)
		}
	case codec.TypeDisconnect, codec.TypeAuth:
		if w.off < end {
			w.u8()
		}
		if w.off < end {
			w.props(h.Type)
		}
	}
	return !w.bad
}

// readVBI decodes a Variable Byte Integer at the start of b; n is 0 when b
// does not start with one of at most four bytes.
func readVBI(b []byte) (x, n int) {
	mul := 1
	for i := 0; i < 4 && i < len(b); i++ {
		x += int(b[i]&0x7F) * mul
		if b[i]&0x80 == 0 {
			return x, i + 1
		}
		mul <<= 7
	}
	return 0, 0
}

// appendVBI appends x as a minimal Variable Byte Integer.
func appendVBI(dst []byte, x int) []byte {
	for {
		c := byte(x & 0x7F)
		x >>= 7
		if x > 0 {
			c |= 0x80
		}
		dst = append(dst, c)
		if x == 0 {
			return dst
		}
	}
}

type propKind uint8

const (
	kindNone propKind = iota
	kindByte
	kindUint16
	kindUint32
	kindVBI
	kindString
	kindBinary
	kindPair
)

// propSpec is what this package knows of each property: its value's kind
// and the packet types that may carry it (bit 0: the Will Properties).
var propSpec = map[codec.PropID]struct {
	kind    propKind
	allowed uint32
}{
	codec.PropPayloadFormatIndicator:          {kindByte, ts(codec.TypePublish, 0)},
	codec.PropMessageExpiryInterval:           {kindUint32, ts(codec.TypePublish, 0)},
	codec.PropContentType:                     {kindString, ts(codec.TypePublish, 0)},
	codec.PropResponseTopic:                   {kindString, ts(codec.TypePublish, 0)},
	codec.PropCorrelationData:                 {kindBinary, ts(codec.TypePublish, 0)},
	codec.PropSubscriptionIdentifier:          {kindVBI, ts(codec.TypePublish, codec.TypeSubscribe)},
	codec.PropSessionExpiryInterval:           {kindUint32, ts(codec.TypeConnect, codec.TypeConnack, codec.TypeDisconnect)},
	codec.PropAssignedClientIdentifier:        {kindString, ts(codec.TypeConnack)},
	codec.PropServerKeepAlive:                 {kindUint16, ts(codec.TypeConnack)},
	codec.PropAuthenticationMethod:            {kindString, ts(codec.TypeConnect, codec.TypeConnack, codec.TypeAuth)},
	codec.PropAuthenticationData:              {kindBinary, ts(codec.TypeConnect, codec.TypeConnack, codec.TypeAuth)},
	codec.PropRequestProblemInformation:       {kindByte, ts(codec.TypeConnect)},
	codec.PropWillDelayInterval:               {kindUint32, ts(0)},
	codec.PropRequestResponseInformation:      {kindByte, ts(codec.TypeConnect)},
	codec.PropResponseInformation:             {kindString, ts(codec.TypeConnack)},
	codec.PropServerReference:                 {kindString, ts(codec.TypeConnack, codec.TypeDisconnect)},
	codec.PropReasonString:                    {kindString, ts(codec.TypeConnack, codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp, codec.TypeSuback, codec.TypeUnsuback, codec.TypeDisconnect, codec.TypeAuth)},
	codec.PropReceiveMaximum:                  {kindUint16, ts(codec.TypeConnect, codec.TypeConnack)},
	codec.PropTopicAliasMaximum:               {kindUint16, ts(codec.TypeConnect, codec.TypeConnack)},
	codec.PropTopicAlias:                      {kindUint16, ts(codec.TypePublish)},
	codec.PropMaximumQoS:                      {kindByte, ts(codec.TypeConnack)},
	codec.PropRetainAvailable:                 {kindByte, ts(codec.TypeConnack)},
	codec.PropUserProperty:                    {kindPair, ^uint32(0) &^ ts(codec.TypePingreq, codec.TypePingresp)},
	codec.PropMaximumPacketSize:               {kindUint32, ts(codec.TypeConnect, codec.TypeConnack)},
	codec.PropWildcardSubscriptionAvailable:   {kindByte, ts(codec.TypeConnack)},
	codec.PropSubscriptionIdentifierAvailable: {kindByte, ts(codec.TypeConnack)},
	codec.PropSharedSubscriptionAvailable:     {kindByte, ts(codec.TypeConnack)},
}

// propIDs lists the properties in identifier order, for choices that must
// not depend on map order.
var propIDs = func() []codec.PropID {
	var ids []codec.PropID
	for id := codec.PropID(0); id < 0x80; id++ {
		if _, ok := propSpec[id]; ok {
			ids = append(ids, id)
		}
	}
	return ids
}()

func ts(types ...codec.Type) uint32 {
	var m uint32
	for _, t := range types {
		m |= 1 << t
	}
	return m
}

func kindOf(id codec.PropID) propKind { return propSpec[id].kind }

// allowedProps returns, in identifier order, the properties packet type t
// may carry (t = 0: the Will Properties).
func allowedProps(t codec.Type) []codec.PropID {
	var out []codec.PropID
	for _, id := range propIDs {
		if propSpec[id].allowed&(1<<t) != 0 {
			out = append(out, id)
		}
	}
	return out
}
