package codec

// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout [§3.4] to
// [§3.7]: a packet identifier, then on MQTT 5.0 a reason code and
// properties, both of which may be left out when they are the defaults.

// Puback is the PUBACK packet: the response to a QoS 1 PUBLISH.
type Puback struct {
	PacketID   uint16
	ReasonCode ReasonCode // MQTT 5.0 only; 0 on 3.1.1
	Props      Properties // MQTT 5.0 only: Reason String and User Property
}

// Pubrec is the PUBREC packet: the first response to a QoS 2 PUBLISH.
type Pubrec struct {
	PacketID   uint16
	ReasonCode ReasonCode // MQTT 5.0 only; 0 on 3.1.1
	Props      Properties // MQTT 5.0 only: Reason String and User Property
}

// Pubrel is the PUBREL packet: the response to a PUBREC.
type Pubrel struct {
	PacketID   uint16
	ReasonCode ReasonCode // MQTT 5.0 only: 0 or ReasonPacketIdentifierNotFound
	Props      Properties // MQTT 5.0 only: Reason String and User Property
}

// Pubcomp is the PUBCOMP packet: the response to a PUBREL.
type Pubcomp struct {
	PacketID   uint16
	ReasonCode ReasonCode // MQTT 5.0 only: 0 or ReasonPacketIdentifierNotFound
	Props      Properties // MQTT 5.0 only: Reason String and User Property
}

// ack is the shared layout; the four packet types convert to it.
type ack struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Type returns TypePuback.
func (p *Puback) Type() Type { return TypePuback }

// Type returns TypePubrec.
func (p *Pubrec) Type() Type { return TypePubrec }

// Type returns TypePubrel.
func (p *Pubrel) Type() Type { return TypePubrel }

// Type returns TypePubcomp.
func (p *Pubcomp) Type() Type { return TypePubcomp }

// Size returns the encoded size of p for version v.
func (p *Puback) Size(v Version) int { return (*ack)(p).size(v, TypePuback) }

// Size returns the encoded size of p for version v.
func (p *Pubrec) Size(v Version) int { return (*ack)(p).size(v, TypePubrec) }

// Size returns the encoded size of p for version v.
func (p *Pubrel) Size(v Version) int { return (*ack)(p).size(v, TypePubrel) }

// Size returns the encoded size of p for version v.
func (p *Pubcomp) Size(v Version) int { return (*ack)(p).size(v, TypePubcomp) }

// Append validates p and appends its encoding to dst.
func (p *Puback) Append(dst []byte, v Version) ([]byte, error) {
	return (*ack)(p).append(dst, v, TypePuback)
}

// Append validates p and appends its encoding to dst.
func (p *Pubrec) Append(dst []byte, v Version) ([]byte, error) {
	return (*ack)(p).append(dst, v, TypePubrec)
}

// Append validates p and appends its encoding to dst.
func (p *Pubrel) Append(dst []byte, v Version) ([]byte, error) {
	return (*ack)(p).append(dst, v, TypePubrel)
}

// Append validates p and appends its encoding to dst.
func (p *Pubcomp) Append(dst []byte, v Version) ([]byte, error) {
	return (*ack)(p).append(dst, v, TypePubcomp)
}

// Decode decodes a whole PUBACK packet from the start of src.
func (p *Puback) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

// Decode decodes a whole PUBREC packet from the start of src.
func (p *Pubrec) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

// Decode decodes a whole PUBREL packet from the start of src.
func (p *Pubrel) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

// Decode decodes a whole PUBCOMP packet from the start of src.
func (p *Pubcomp) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

// Clone returns a deep copy of p.
func (p *Puback) Clone() *Puback { return (*Puback)((*ack)(p).clone()) }

// Clone returns a deep copy of p.
func (p *Pubrec) Clone() *Pubrec { return (*Pubrec)((*ack)(p).clone()) }

// Clone returns a deep copy of p.
func (p *Pubrel) Clone() *Pubrel { return (*Pubrel)((*ack)(p).clone()) }

// Clone returns a deep copy of p.
func (p *Pubcomp) Clone() *Pubcomp { return (*Pubcomp)((*ack)(p).clone()) }

func (a *ack) clone() *ack {
	c := *a
	c.Props = a.Props.Clone()
	return &c
}

// remaining validates the packet and returns its Remaining Length and the
// length of its property list (-1: the property length is left out too).
func (a *ack) remaining(v Version, t Type) (rem, plen int, err *Error) {
	if a.PacketID == 0 {
		return 0, 0, encErr(ReasonProtocolError, t, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if v == V311 {
		if a.ReasonCode != 0 {
			return 0, 0, encErr(ReasonProtocolError, t, "", "reason codes require MQTT 5.0")
		}
		if !a.Props.Empty() {
			return 0, 0, noProps(t)
		}
		return 2, -1, nil
	}
	if !ValidReason(t, v, a.ReasonCode) {
		return 0, 0, encErr(ReasonProtocolError, t, ackRule(t), "reason code "+hexByte(byte(a.ReasonCode))+" is not allowed in "+t.String())
	}
	if plen, err = a.Props.propsSize(t, t); err != nil {
		return 0, 0, err
	}
	switch {
	case plen == 0 && a.ReasonCode == 0:
		return 2, -1, nil
	case plen == 0:
		return 3, -1, nil
	}
	return 3 + vbiLen(plen) + plen, plen, nil
}

func ackRule(t Type) string {
	switch t {
	case TypePuback:
		return "MQTT-3.4.2-1"
	case TypePubrec:
		return "MQTT-3.5.2-1"
	case TypePubrel:
		return "MQTT-3.6.2-1"
	}
	return "MQTT-3.7.2-1"
}

func (a *ack) size(v Version, t Type) int {
	if v == V311 {
		return 4
	}
	plen, _ := a.Props.propsSize(t, t)
	switch {
	case plen == 0 && a.ReasonCode == 0:
		return 4
	case plen == 0:
		return 5
	}
	return headerSize(3 + vbiLen(plen) + plen)
}

func (a *ack) append(dst []byte, v Version, t Type) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	rem, plen, err := a.remaining(v, t)
	if err != nil {
		return dst, err
	}
	dst = grow(dst, headerSize(rem))
	dst = appendHeader(dst, byte(t)<<4|fixedFlags[t], rem)
	dst = appendUint16(dst, a.PacketID)
	if rem == 2 {
		return dst, nil
	}
	dst = append(dst, byte(a.ReasonCode))
	if plen >= 0 {
		dst = a.Props.appendProps(dst, plen)
	}
	return dst, nil
}

func (a *ack) decode(b []byte, h Header, v Version) error {
	t := h.Type
	a.Props.reset()
	a.ReasonCode = 0
	off, end := h.Len, len(b)
	var ok bool
	if a.PacketID, off, ok = readUint16(b, off, end); !ok {
		return short(t, off, "packet identifier")
	}
	if a.PacketID == 0 {
		return protocolErr(t, h.Len, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if v == V311 || off == end {
		return endCheck(t, off, end)
	}
	a.ReasonCode = ReasonCode(b[off])
	if !ValidReason(t, v, a.ReasonCode) {
		return protocolErr(t, off, ackRule(t), "reason code "+hexByte(b[off])+" is not allowed in "+t.String())
	}
	off++
	if off == end {
		return nil
	}
	off, err := a.Props.decodeProps(b, off, end, t, t)
	if err != nil {
		return err
	}
	return endCheck(t, off, end)
}

const hexDigits = "0123456789abcdef"

// hexByte formats a byte as 0xNN.
func hexByte(c byte) string {
	return string([]byte{'0', 'x', hexDigits[c>>4], hexDigits[c&15]})
}
