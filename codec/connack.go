package codec

// Connack is the CONNACK packet [§3.2]: the server's answer to CONNECT.
// On MQTT 3.1.1 ReasonCode holds the return code (0 to 5, see
// ReasonFromReturnCode); on 5.0 a reason code of the CONNACK table.
type Connack struct {
	SessionPresent bool // the server resumed a session; always false when ReasonCode is not 0
	ReasonCode     ReasonCode
	Props          Properties // MQTT 5.0 CONNACK properties
}

// Type returns TypeConnack.
func (p *Connack) Type() Type { return TypeConnack }

func (p *Connack) remaining(v Version) (rem, plen int, err *Error) {
	t := TypeConnack
	if !ValidReason(t, v, p.ReasonCode) {
		return 0, 0, encErr(ReasonProtocolError, t, connackCodeRule(v), "reason code "+hexByte(byte(p.ReasonCode))+" is not allowed in CONNACK")
	}
	if p.SessionPresent && p.ReasonCode != 0 {
		return 0, 0, encErr(ReasonProtocolError, t, connackSPRule(v), "session present with a non-zero reason code")
	}
	if v == V311 {
		if !p.Props.Empty() {
			return 0, 0, noProps(t)
		}
		return 2, 0, nil
	}
	if plen, err = p.Props.propsSize(t, t); err != nil {
		return 0, 0, err
	}
	return 2 + vbiLen(plen) + plen, plen, nil
}

// connackCodeRule names the rule a CONNACK code outside the version's table
// breaks: 5.0 has a statement for it; 3.1.1 only reserves 6-255 in the
// table of section 3.2.2.3, which has none.
func connackCodeRule(v Version) string {
	if v == V311 {
		return "§3.2.2.3"
	}
	return "MQTT-3.2.2-8"
}

func connackSPRule(v Version) string {
	if v == V311 {
		return "MQTT-3.2.2-4"
	}
	return "MQTT-3.2.2-6"
}

// Size returns the encoded size of p for version v.
func (p *Connack) Size(v Version) int {
	if v == V311 {
		return 4
	}
	plen, _ := p.Props.propsSize(TypeConnack, TypeConnack)
	return headerSize(2 + vbiLen(plen) + plen)
}

// Append validates p and appends its encoding to dst.
func (p *Connack) Append(dst []byte, v Version) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	rem, plen, err := p.remaining(v)
	if err != nil {
		return dst, err
	}
	dst = grow(dst, headerSize(rem))
	dst = appendHeader(dst, byte(TypeConnack)<<4, rem)
	var flags byte
	if p.SessionPresent {
		flags = 1
	}
	dst = append(dst, flags, byte(p.ReasonCode))
	if v == V5 {
		dst = p.Props.appendProps(dst, plen)
	}
	return dst, nil
}

// Decode decodes a whole CONNACK packet from the start of src.
func (p *Connack) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

func (p *Connack) decode(b []byte, h Header, v Version) error {
	t := TypeConnack
	off, end := h.Len, len(b)
	p.Props.reset()
	if end-off < 2 {
		return short(t, off, "acknowledge flags and reason code")
	}
	if b[off]&0xFE != 0 {
		return malformed(t, off, "MQTT-3.2.2-1", "reserved acknowledge flags are set")
	}
	p.SessionPresent = b[off] == 1
	p.ReasonCode = ReasonCode(b[off+1])
	if !ValidReason(t, v, p.ReasonCode) {
		return protocolErr(t, off+1, connackCodeRule(v), "reason code "+hexByte(b[off+1])+" is not allowed in CONNACK")
	}
	if p.SessionPresent && p.ReasonCode != 0 {
		return protocolErr(t, off, connackSPRule(v), "session present with a non-zero reason code")
	}
	off += 2
	if v == V5 {
		if off == end {
			return short(t, off, "property length")
		}
		var err error
		if off, err = p.Props.decodeProps(b, off, end, t, t); err != nil {
			return err
		}
	}
	return endCheck(t, off, end)
}

// Clone returns a deep copy of p.
func (p *Connack) Clone() *Connack {
	c := *p
	c.Props = p.Props.Clone()
	return &c
}
