package codec

// Pingreq is the PINGREQ packet [§3.12]: no fields.
type Pingreq struct{}

// Pingresp is the PINGRESP packet [§3.13]: no fields.
type Pingresp struct{}

// Disconnect is the DISCONNECT packet [§3.14]. MQTT 3.1.1 carries no
// fields; 5.0 a reason code and properties, both left out on the wire when
// they are the defaults.
type Disconnect struct {
	ReasonCode ReasonCode // MQTT 5.0 only
	Props      Properties // MQTT 5.0: Session Expiry Interval, Reason String, User Property, Server Reference
}

// Auth is the MQTT 5.0 AUTH packet [§3.15] of enhanced authentication.
type Auth struct {
	ReasonCode ReasonCode // 0x00 success, 0x18 continue authentication, 0x19 re-authenticate
	Props      Properties // Authentication Method and Data, Reason String, User Property
}

// Type returns TypePingreq.
func (p *Pingreq) Type() Type { return TypePingreq }

// Type returns TypePingresp.
func (p *Pingresp) Type() Type { return TypePingresp }

// Type returns TypeDisconnect.
func (p *Disconnect) Type() Type { return TypeDisconnect }

// Type returns TypeAuth.
func (p *Auth) Type() Type { return TypeAuth }

// Size returns 2.
func (p *Pingreq) Size(Version) int { return 2 }

// Size returns 2.
func (p *Pingresp) Size(Version) int { return 2 }

// Append appends the two bytes of a PINGREQ.
func (p *Pingreq) Append(dst []byte, v Version) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	return append(dst, byte(TypePingreq)<<4, 0), nil
}

// Append appends the two bytes of a PINGRESP.
func (p *Pingresp) Append(dst []byte, v Version) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	return append(dst, byte(TypePingresp)<<4, 0), nil
}

// Decode decodes a whole PINGREQ packet from the start of src.
func (p *Pingreq) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

// Decode decodes a whole PINGRESP packet from the start of src.
func (p *Pingresp) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

// reasonProps is the shared layout of DISCONNECT and AUTH on 5.0.
func reasonPropsRemaining(c ReasonCode, props *Properties, v Version, t Type) (rem, plen int, err *Error) {
	if v == V311 {
		if t == TypeAuth {
			return 0, 0, encErr(ReasonProtocolError, t, "§2.1.2", "AUTH requires MQTT 5.0")
		}
		if c != 0 {
			return 0, 0, encErr(ReasonProtocolError, t, "", "reason codes require MQTT 5.0")
		}
		if !props.Empty() {
			return 0, 0, noProps(t)
		}
		return 0, -1, nil
	}
	if !ValidReason(t, v, c) {
		return 0, 0, encErr(ReasonProtocolError, t, reasonRule(t), "reason code "+hexByte(byte(c))+" is not allowed in "+t.String())
	}
	if plen, err = props.propsSize(t, t); err != nil {
		return 0, 0, err
	}
	if t == TypeAuth && (c != 0 || plen != 0) {
		if err = checkAuthProps(props.mask(), -1); err != nil {
			return 0, 0, err
		}
	}
	switch {
	case plen == 0 && c == 0:
		return 0, -1, nil
	case plen == 0 && t == TypeDisconnect:
		return 1, -1, nil
	}
	return 1 + vbiLen(plen) + plen, plen, nil
}

// checkAuthProps applies the rule of section 3.15.2.2.2 that an AUTH packet
// names its authentication method: omitting it is a Protocol Error. Only
// the short form (Remaining Length 0, a success without properties) has
// no property block, and so needs none; callers skip the check for it.
func checkAuthProps(m PropSet, off int) *Error {
	if !m.Has(PropAuthenticationMethod) {
		return newErr(ReasonProtocolError, TypeAuth, off, "§3.15.2.2.2", "AUTH without an authentication method")
	}
	return nil
}

func reasonRule(t Type) string {
	if t == TypeAuth {
		return "MQTT-3.15.2-1"
	}
	return "MQTT-3.14.2-1"
}

func reasonPropsSize(c ReasonCode, props *Properties, v Version, t Type) int {
	if v == V311 {
		return 2
	}
	plen, _ := props.propsSize(t, t)
	switch {
	case plen == 0 && c == 0:
		return 2
	case plen == 0 && t == TypeDisconnect:
		return 3
	}
	return headerSize(1 + vbiLen(plen) + plen)
}

func appendReasonProps(dst []byte, c ReasonCode, props *Properties, v Version, t Type) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	rem, plen, err := reasonPropsRemaining(c, props, v, t)
	if err != nil {
		return dst, err
	}
	dst = grow(dst, headerSize(rem))
	dst = appendHeader(dst, byte(t)<<4, rem)
	if rem == 0 {
		return dst, nil
	}
	dst = append(dst, byte(c))
	if plen >= 0 {
		dst = props.appendProps(dst, plen)
	}
	return dst, nil
}

func decodeReasonProps(b []byte, h Header, v Version, c *ReasonCode, props *Properties) error {
	t := h.Type
	props.reset()
	*c = 0
	off, end := h.Len, len(b)
	if v == V311 || off == end {
		return endCheck(t, off, end)
	}
	*c = ReasonCode(b[off])
	if !ValidReason(t, v, *c) {
		return protocolErr(t, off, reasonRule(t), "reason code "+hexByte(b[off])+" is not allowed in "+t.String())
	}
	off++
	if off == end {
		if t == TypeAuth {
			return short(t, off, "property length")
		}
		return nil
	}
	off, err := props.decodeProps(b, off, end, t, t)
	if err != nil {
		return err
	}
	if err := endCheck(t, off, end); err != nil {
		return err
	}
	if t == TypeAuth {
		if err := checkAuthProps(props.Present, h.Len+1); err != nil {
			return err
		}
	}
	return nil
}

// Size returns the encoded size of p for version v.
func (p *Disconnect) Size(v Version) int {
	return reasonPropsSize(p.ReasonCode, &p.Props, v, TypeDisconnect)
}

// Append validates p and appends its encoding to dst.
func (p *Disconnect) Append(dst []byte, v Version) ([]byte, error) {
	return appendReasonProps(dst, p.ReasonCode, &p.Props, v, TypeDisconnect)
}

// Decode decodes a whole DISCONNECT packet from the start of src.
func (p *Disconnect) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

func (p *Disconnect) decode(b []byte, h Header, v Version) error {
	return decodeReasonProps(b, h, v, &p.ReasonCode, &p.Props)
}

// Clone returns a deep copy of p.
func (p *Disconnect) Clone() *Disconnect {
	c := *p
	c.Props = p.Props.Clone()
	return &c
}

// Size returns the encoded size of p for version v.
func (p *Auth) Size(v Version) int { return reasonPropsSize(p.ReasonCode, &p.Props, v, TypeAuth) }

// Append validates p and appends its encoding to dst. AUTH exists in MQTT 5.0
// only.
func (p *Auth) Append(dst []byte, v Version) ([]byte, error) {
	return appendReasonProps(dst, p.ReasonCode, &p.Props, v, TypeAuth)
}

// Decode decodes a whole AUTH packet from the start of src.
func (p *Auth) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

func (p *Auth) decode(b []byte, h Header, v Version) error {
	return decodeReasonProps(b, h, v, &p.ReasonCode, &p.Props)
}

// Clone returns a deep copy of p.
func (p *Auth) Clone() *Auth {
	c := *p
	c.Props = p.Props.Clone()
	return &c
}
