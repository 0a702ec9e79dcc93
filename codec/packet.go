package codec

import "fmt"

// Packet is one MQTT control packet. The concrete types are the pointers
// *Connect, *Connack, *Publish, *Puback, *Pubrec, *Pubrel, *Pubcomp,
// *Subscribe, *Suback, *Unsubscribe, *Unsuback, *Pingreq, *Pingresp,
// *Disconnect and *Auth.
type Packet interface {
	// Type returns the packet type.
	Type() Type
	// Size returns the exact number of bytes Append writes for version v,
	// fixed header included. It does not validate; for a packet Append
	// refuses, the number is meaningless.
	Size(v Version) int
	// Append validates the packet for version v and appends its encoding to
	// dst. It refuses what Decode refuses, with an *Error whose Offset is -1,
	// and then returns dst unchanged. It allocates only when dst lacks
	// capacity.
	Append(dst []byte, v Version) ([]byte, error)
	// Decode decodes one whole packet of this type from the start of src,
	// fixed header included, and returns the number of bytes it used.
	// Strings and byte slices of the result alias src. An incomplete packet
	// gives ErrIncomplete; a packet of another type, or one that breaks the
	// rules, gives an *Error.
	Decode(src []byte, v Version) (n int, err error)
	fmt.Stringer
}

// Header is the fixed header of a packet [§2.1.1].
type Header struct {
	Type      Type
	Flags     byte // the low nibble of the first byte
	Remaining int  // the Remaining Length: bytes after the fixed header
	Len       int  // bytes of the fixed header itself, 2 to 5
}

// Size returns the size of the whole packet, fixed header included.
func (h Header) Size() int { return h.Len + h.Remaining }

// ParseHeader decodes the fixed header at the start of src. It returns
// ErrIncomplete when src ends inside the header, and an *Error for a reserved
// packet type, flags that the type does not allow [MQTT-2.1.3-1], a PUBLISH
// with QoS 3 [MQTT-3.3.1-4] or with DUP on QoS 0 [MQTT-3.3.1-2], or a
// Remaining Length over four bytes or not minimally encoded. It reads no
// byte past the header and does not allocate.
func ParseHeader(src []byte) (Header, error) {
	if len(src) < 2 {
		return Header{}, ErrIncomplete
	}
	t := Type(src[0] >> 4)
	flags := src[0] & 0x0F
	if t == 0 {
		return Header{}, malformed(0, 0, "§2.1.2", "reserved packet type 0")
	}
	if t == TypePublish {
		if flags&0x06 == 0x06 {
			return Header{}, malformed(t, 0, "MQTT-3.3.1-4", "QoS 3 is not allowed")
		}
		if flags&0x08 != 0 && flags&0x06 == 0 {
			return Header{}, malformed(t, 0, "MQTT-3.3.1-2", "DUP set on a QoS 0 message")
		}
	} else if flags != fixedFlags[t] {
		return Header{}, malformed(t, 0, "MQTT-2.1.3-1", "reserved flags of the fixed header are wrong")
	}
	rem, next, res := readVBI(src, 1, len(src))
	switch res {
	case vbiIncomplete:
		return Header{}, ErrIncomplete
	case vbiTooLong:
		return Header{}, malformed(t, 1, "§1.5.5", "remaining length is longer than 4 bytes")
	case vbiNotMinimal:
		return Header{}, malformed(t, 1, "MQTT-1.5.5-1", "remaining length is not minimally encoded")
	}
	return Header{Type: t, Flags: flags, Remaining: rem, Len: next}, nil
}

// Frame reports the size of the packet at the start of src without decoding
// it. It returns ErrIncomplete until src holds the whole packet, and an
// *Error that matches ErrPacketTooLarge as soon as the fixed header shows a
// packet larger than max bytes (max <= 0 means MaxPacketSize).
func Frame(src []byte, max int) (h Header, n int, err error) {
	h, err = ParseHeader(src)
	if err != nil {
		return h, 0, err
	}
	if max <= 0 {
		max = MaxPacketSize
	}
	if h.Size() > max {
		return h, 0, &Error{Reason: ReasonPacketTooLarge, Type: h.Type, Offset: 0,
			Msg: fmt.Sprintf("packet of %d bytes is larger than the maximum of %d", h.Size(), max)}
	}
	if len(src) < h.Size() {
		return h, 0, ErrIncomplete
	}
	return h, h.Size(), nil
}

// newPacket returns a new zero packet of type t.
func newPacket(t Type) Packet {
	switch t {
	case TypeConnect:
		return new(Connect)
	case TypeConnack:
		return new(Connack)
	case TypePublish:
		return new(Publish)
	case TypePuback:
		return new(Puback)
	case TypePubrec:
		return new(Pubrec)
	case TypePubrel:
		return new(Pubrel)
	case TypePubcomp:
		return new(Pubcomp)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeSuback:
		return new(Suback)
	case TypeUnsubscribe:
		return new(Unsubscribe)
	case TypeUnsuback:
		return new(Unsuback)
	case TypePingreq:
		return new(Pingreq)
	case TypePingresp:
		return new(Pingresp)
	case TypeDisconnect:
		return new(Disconnect)
	case TypeAuth:
		return new(Auth)
	}
	return nil
}

// Decode decodes the one packet at the start of src for protocol version v
// and returns it with the number of bytes it used. Strings and byte slices in
// the packet alias src: they stay valid only while src is not modified (see
// the package documentation; Clone copies). A src that holds less than a
// whole packet gives an error that matches ErrIncomplete; a packet that is
// malformed or breaks a protocol rule gives an *Error. Decode allocates the
// returned packet; use a Decoder for decoding without allocation.
func Decode(src []byte, v Version) (p Packet, n int, err error) {
	if !v.Valid() {
		return nil, 0, badVersion(v)
	}
	h, err := ParseHeader(src)
	if err != nil {
		return nil, 0, err
	}
	if len(src) < h.Size() {
		return nil, 0, ErrIncomplete
	}
	p = newPacket(h.Type)
	if err := decodeInto(p, src[:h.Size()], h, v); err != nil {
		return nil, 0, err
	}
	return p, h.Size(), nil
}

// Append validates p for version v and appends its encoding to dst. It is
// p.Append(dst, v) and returns what that returns.
func Append(dst []byte, p Packet, v Version) ([]byte, error) {
	if p == nil {
		return dst, encErr(ReasonProtocolError, 0, "", "nil packet")
	}
	return p.Append(dst, v)
}

// Clone returns a deep copy of p that shares no memory with p or with the
// buffer p was decoded from.
func Clone(p Packet) Packet {
	switch p := p.(type) {
	case *Connect:
		return p.Clone()
	case *Connack:
		return p.Clone()
	case *Publish:
		return p.Clone()
	case *Puback:
		return (*Puback)((*ack)(p).clone())
	case *Pubrec:
		return (*Pubrec)((*ack)(p).clone())
	case *Pubrel:
		return (*Pubrel)((*ack)(p).clone())
	case *Pubcomp:
		return (*Pubcomp)((*ack)(p).clone())
	case *Subscribe:
		return p.Clone()
	case *Suback:
		return p.Clone()
	case *Unsubscribe:
		return p.Clone()
	case *Unsuback:
		return p.Clone()
	case *Pingreq:
		return &Pingreq{}
	case *Pingresp:
		return &Pingresp{}
	case *Disconnect:
		return p.Clone()
	case *Auth:
		return p.Clone()
	}
	return nil
}

// decodeInto decodes the body of packet p; b is the whole packet
// (len(b) == h.Size()) and h its parsed fixed header. Every packet type has
// a decode method; the switch calls it without an interface conversion.
func decodeInto(p Packet, b []byte, h Header, v Version) error {
	switch p := p.(type) {
	case *Publish:
		return p.decode(b, h, v)
	case *Puback:
		return (*ack)(p).decode(b, h, v)
	case *Pubrec:
		return (*ack)(p).decode(b, h, v)
	case *Pubrel:
		return (*ack)(p).decode(b, h, v)
	case *Pubcomp:
		return (*ack)(p).decode(b, h, v)
	case *Pingreq:
		return endCheck(h.Type, h.Len, len(b))
	case *Pingresp:
		return endCheck(h.Type, h.Len, len(b))
	case *Connect:
		return p.decode(b, h, v)
	case *Connack:
		return p.decode(b, h, v)
	case *Subscribe:
		return p.decode(b, h, v)
	case *Suback:
		return p.decode(b, h, v)
	case *Unsubscribe:
		return p.decode(b, h, v)
	case *Unsuback:
		return p.decode(b, h, v)
	case *Disconnect:
		return p.decode(b, h, v)
	case *Auth:
		if v == V311 {
			return malformed(h.Type, 0, "§2.2.1", "AUTH does not exist in MQTT 3.1.1")
		}
		return p.decode(b, h, v)
	}
	return malformed(h.Type, 0, "", "unknown packet")
}

// decodeAs is the Decode method of every packet type: it checks the header
// and the type, then decodes the body.
func decodeAs(p Packet, src []byte, v Version) (int, error) {
	if !v.Valid() {
		return 0, badVersion(v)
	}
	h, err := ParseHeader(src)
	if err != nil {
		return 0, err
	}
	if h.Type != p.Type() {
		return 0, malformed(h.Type, 0, "", "expected "+p.Type().String())
	}
	if len(src) < h.Size() {
		return 0, ErrIncomplete
	}
	if err := decodeInto(p, src[:h.Size()], h, v); err != nil {
		return 0, err
	}
	return h.Size(), nil
}

func badVersion(v Version) *Error {
	return &Error{Reason: ReasonUnsupportedProtocolVersion, Offset: -1, Msg: "unsupported version " + v.String()}
}

// headerSize returns the size of a packet with the given Remaining Length.
func headerSize(rem int) int { return 1 + vbiLen(rem) + rem }

// appendHeader appends a fixed header; rem must not exceed MaxRemainingLength.
func appendHeader(dst []byte, first byte, rem int) []byte {
	return appendVBI(append(dst, first), rem)
}

// tooLarge is the encoding error of a packet whose Remaining Length does not
// fit in four bytes.
func tooLarge(t Type) *Error {
	return encErr(ReasonPacketTooLarge, t, "§1.5.5", "remaining length over 268435455 bytes")
}

// grow makes sure dst has room for n more bytes, so that the appends that
// follow never reallocate on the way. Like append, it at least doubles a
// buffer that holds something: packets appended one after another into one
// buffer (a session's acknowledgements) cost amortised constant time, where
// growing to the exact size copied the whole buffer for each packet. An
// empty buffer gets exactly n.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) < n {
		nd := make([]byte, len(dst), max(len(dst)+n, 2*cap(dst)))
		copy(nd, dst)
		return nd
	}
	return dst
}

// noProps is the encoding error for MQTT 5.0 properties on a 3.1.1 packet.
func noProps(t Type) *Error {
	return encErr(ReasonProtocolError, t, "", "properties require MQTT 5.0")
}

// endCheck reports a packet whose Remaining Length leaves bytes unread.
func endCheck(t Type, off, end int) error {
	if off != end {
		return malformed(t, off, "§2.1.4", "remaining length is longer than the packet's fields")
	}
	return nil
}

// short reports a packet that ends inside a field.
func short(t Type, off int, what string) *Error {
	return malformed(t, off, "§2.1.4", what+" runs past the end of the packet")
}
