package codec

// Connect is the CONNECT packet [§3.1]: the first packet a client sends.
// The protocol level written is the Version passed to Append; Decode refuses
// a CONNECT whose level is not the Version it was given (ConnectVersion
// reads the level first, for a server that does not know it yet).
type Connect struct {
	CleanStart bool   // Clean Start on 5.0, Clean Session on 3.1.1
	KeepAlive  uint16 // seconds; 0 turns keep alive off
	ClientID   string // may be empty: the server assigns one (3.1.1: only with CleanStart)
	Will       *Will  // nil: no will message

	// The user name is sent when UsernameFlag is set or Username is not
	// empty; the password when PasswordFlag is set or Password is not empty.
	// MQTT 3.1.1 does not allow a password without a user name
	// [MQTT-3.1.2-22]. Decode sets both flags from the packet.
	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte

	Props Properties // MQTT 5.0 CONNECT properties
}

// Will is the will message of a CONNECT [§3.1.2.5], published by the
// server when the connection ends without a normal DISCONNECT.
type Will struct {
	QoS     QoS
	Retain  bool
	Topic   string // a topic name: no wildcards
	Payload []byte
	Props   Properties // MQTT 5.0 Will Properties
}

const protocolName = "MQTT"

// Type returns TypeConnect.
func (p *Connect) Type() Type { return TypeConnect }

func (p *Connect) hasUsername() bool { return p.UsernameFlag || p.Username != "" }
func (p *Connect) hasPassword() bool { return p.PasswordFlag || len(p.Password) != 0 }

// remaining validates p and returns its Remaining Length and the property
// list lengths of the CONNECT and of the will.
func (p *Connect) remaining(v Version) (rem, plen, wplen int, err *Error) {
	t := TypeConnect
	rem = 2 + len(protocolName) + 1 + 1 + 2 // protocol name, level, flags, keep alive
	if v == V5 {
		if plen, err = p.Props.propsSize(TypeConnect, t); err != nil {
			return
		}
		rem += vbiLen(plen) + plen
	} else if !p.Props.Empty() {
		err = noProps(t)
		return
	}
	if len(p.ClientID) > maxString {
		err = encErr(ReasonMalformedPacket, t, "§1.5.4", "client identifier is longer than 65535 bytes")
		return
	}
	if !validUTF8String(p.ClientID) {
		err = encErr(ReasonMalformedPacket, t, "MQTT-3.1.3-4", "client identifier is not valid UTF-8 or contains U+0000")
		return
	}
	if v == V311 && p.ClientID == "" && !p.CleanStart {
		err = encErr(ReasonClientIdentifierNotValid, t, "MQTT-3.1.3-7", "an empty client identifier requires clean session on MQTT 3.1.1")
		return
	}
	rem += 2 + len(p.ClientID)
	if w := p.Will; w != nil {
		if !w.QoS.Valid() {
			err = encErr(ReasonMalformedPacket, t, "MQTT-3.1.2-12", "will QoS must be 0, 1 or 2")
			return
		}
		if terr := checkTopicName(w.Topic); terr != nil {
			err = encErr(topicNameReason, t, terr.Rule, "will topic: "+terr.Msg)
			err.Err = terr
			return
		}
		if len(w.Payload) > maxString {
			err = encErr(ReasonMalformedPacket, t, "§3.1.3.4", "will payload is longer than 65535 bytes")
			return
		}
		rem += 2 + len(w.Topic) + 2 + len(w.Payload)
		if v == V5 {
			if wplen, err = w.Props.propsSize(ctxWill, t); err != nil {
				return
			}
			rem += vbiLen(wplen) + wplen
		} else if !w.Props.Empty() {
			err = encErr(ReasonProtocolError, t, "", "will properties require MQTT 5.0")
			return
		}
	}
	if p.hasUsername() {
		if len(p.Username) > maxString {
			err = encErr(ReasonMalformedPacket, t, "§1.5.4", "user name is longer than 65535 bytes")
			return
		}
		if !validUTF8String(p.Username) {
			err = encErr(ReasonMalformedPacket, t, "MQTT-3.1.3-11", "user name is not valid UTF-8 or contains U+0000")
			return
		}
		rem += 2 + len(p.Username)
	}
	if p.hasPassword() {
		if v == V311 && !p.hasUsername() {
			err = encErr(ReasonMalformedPacket, t, "MQTT-3.1.2-22", "a password requires a user name on MQTT 3.1.1")
			return
		}
		if len(p.Password) > maxString {
			err = encErr(ReasonMalformedPacket, t, "§1.5.6", "password is longer than 65535 bytes")
			return
		}
		rem += 2 + len(p.Password)
	}
	return rem, plen, wplen, nil
}

func (p *Connect) flags() byte {
	var f byte
	if p.CleanStart {
		f |= 0x02
	}
	if w := p.Will; w != nil {
		f |= 0x04 | byte(w.QoS)<<3
		if w.Retain {
			f |= 0x20
		}
	}
	if p.hasPassword() {
		f |= 0x40
	}
	if p.hasUsername() {
		f |= 0x80
	}
	return f
}

// Size returns the encoded size of p for version v.
func (p *Connect) Size(v Version) int {
	rem := 2 + len(protocolName) + 4 + 2 + len(p.ClientID)
	if v == V5 {
		plen, _ := p.Props.propsSize(TypeConnect, TypeConnect)
		rem += vbiLen(plen) + plen
	}
	if w := p.Will; w != nil {
		rem += 4 + len(w.Topic) + len(w.Payload)
		if v == V5 {
			wplen, _ := w.Props.propsSize(ctxWill, TypeConnect)
			rem += vbiLen(wplen) + wplen
		}
	}
	if p.hasUsername() {
		rem += 2 + len(p.Username)
	}
	if p.hasPassword() {
		rem += 2 + len(p.Password)
	}
	return headerSize(rem)
}

// Append validates p and appends its encoding to dst.
func (p *Connect) Append(dst []byte, v Version) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	rem, plen, wplen, err := p.remaining(v)
	if err != nil {
		return dst, err
	}
	dst = grow(dst, headerSize(rem))
	dst = appendHeader(dst, byte(TypeConnect)<<4, rem)
	dst = appendString(dst, protocolName)
	dst = append(dst, byte(v), p.flags())
	dst = appendUint16(dst, p.KeepAlive)
	if v == V5 {
		dst = p.Props.appendProps(dst, plen)
	}
	dst = appendString(dst, p.ClientID)
	if w := p.Will; w != nil {
		if v == V5 {
			dst = w.Props.appendProps(dst, wplen)
		}
		dst = appendString(dst, w.Topic)
		dst = appendBinary(dst, w.Payload)
	}
	if p.hasUsername() {
		dst = appendString(dst, p.Username)
	}
	if p.hasPassword() {
		dst = appendBinary(dst, p.Password)
	}
	return dst, nil
}

// Decode decodes a whole CONNECT packet from the start of src.
func (p *Connect) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

// ConnectVersion reads the protocol name and level of the CONNECT packet at
// the start of src, so that a server can choose the Version to decode it
// with. It returns ErrIncomplete while the level has not arrived yet, and an
// *Error matching ErrUnsupportedVersion for a protocol other than MQTT
// 3.1.1 or 5.0.
func ConnectVersion(src []byte) (Version, error) {
	h, err := ParseHeader(src)
	if err != nil {
		return 0, err
	}
	if h.Type != TypeConnect {
		return 0, malformed(h.Type, 0, "MQTT-3.1.0-1", "expected CONNECT")
	}
	end := min(len(src), h.Size())
	name, off, ok := readBytes(src, h.Len, end)
	if !ok || off >= end {
		if len(src) < h.Size() {
			return 0, ErrIncomplete
		}
		return 0, short(TypeConnect, h.Len, "protocol name")
	}
	v := Version(src[off])
	if string(name) != protocolName || !v.Valid() {
		return 0, newErr(ReasonUnsupportedProtocolVersion, TypeConnect, h.Len, "MQTT-3.1.2-2", "protocol "+string(name)+" level "+v.String()+" is not supported")
	}
	return v, nil
}

func (p *Connect) decode(b []byte, h Header, v Version) error { return p.decodeInto(b, h, v, nil) }

// decodeInto decodes a CONNECT; a will, if any, is decoded into spare when
// it is not nil (the Decoder's reused value) and into a new Will otherwise.
func (p *Connect) decodeInto(b []byte, h Header, v Version, spare *Will) error {
	t := TypeConnect
	off, end := h.Len, len(b)
	name, off, ok := readBytes(b, off, end)
	if !ok || off+4 > end {
		return short(t, h.Len, "variable header")
	}
	if string(name) != protocolName {
		return newErr(ReasonUnsupportedProtocolVersion, t, h.Len, "MQTT-3.1.2-1", "protocol name is not MQTT")
	}
	if Version(b[off]) != v {
		return newErr(ReasonUnsupportedProtocolVersion, t, off, "MQTT-3.1.2-2", "protocol level "+Version(b[off]).String()+" where "+v.String()+" was expected")
	}
	flags := b[off+1]
	flagsOff := off + 1
	p.KeepAlive = uint16(b[off+2])<<8 | uint16(b[off+3])
	off += 4
	if flags&0x01 != 0 {
		return malformed(t, flagsOff, "MQTT-3.1.2-3", "reserved connect flag is set")
	}
	p.CleanStart = flags&0x02 != 0
	willFlag := flags&0x04 != 0
	willQoS := QoS(flags >> 3 & 3)
	willRetain := flags&0x20 != 0
	p.PasswordFlag = flags&0x40 != 0
	p.UsernameFlag = flags&0x80 != 0
	if !willFlag && (willQoS != 0 || willRetain) {
		return malformed(t, flagsOff, "MQTT-3.1.2-11", "will QoS or will retain set without the will flag")
	}
	if willQoS == 3 {
		return malformed(t, flagsOff, "MQTT-3.1.2-12", "will QoS 3")
	}
	if v == V311 && p.PasswordFlag && !p.UsernameFlag {
		return malformed(t, flagsOff, "MQTT-3.1.2-22", "password flag without user name flag")
	}
	p.Props.reset()
	if v == V5 {
		var err error
		if off, err = p.Props.decodeProps(b, off, end, TypeConnect, t); err != nil {
			return err
		}
	}
	id, next, ok := readBytes(b, off, end)
	if !ok {
		return short(t, off, "client identifier")
	}
	if !validUTF8(id) {
		return malformed(t, off, "MQTT-3.1.3-4", "client identifier is not valid UTF-8 or contains U+0000")
	}
	if v == V311 && len(id) == 0 && !p.CleanStart {
		return newErr(ReasonClientIdentifierNotValid, t, off, "MQTT-3.1.3-8", "empty client identifier without clean session")
	}
	p.ClientID = bstr(id)
	off = next
	p.Will = nil
	if willFlag {
		w := spare
		if w == nil {
			w = new(Will)
		}
		props := w.Props
		*w = Will{QoS: willQoS, Retain: willRetain, Props: props}
		w.Props.reset()
		if v == V5 {
			var err error
			if off, err = w.Props.decodeProps(b, off, end, ctxWill, t); err != nil {
				return err
			}
		}
		topic, next, ok := readBytes(b, off, end)
		if !ok {
			return short(t, off, "will topic")
		}
		if len(topic) == 0 {
			return newErr(topicNameReason, t, off, "MQTT-4.7.3-1", "empty will topic")
		}
		if err := checkTopicBytes(topic, t, off); err != nil {
			err.Msg = "will " + err.Msg
			return err
		}
		w.Topic = bstr(topic)
		off = next
		if w.Payload, off, ok = readBytes(b, off, end); !ok {
			return short(t, off, "will payload")
		}
		p.Will = w
	}
	p.Username, p.Password = "", nil
	if p.UsernameFlag {
		u, next, ok := readBytes(b, off, end)
		if !ok {
			return short(t, off, "user name")
		}
		if !validUTF8(u) {
			return malformed(t, off, "MQTT-3.1.3-11", "user name is not valid UTF-8 or contains U+0000")
		}
		p.Username, off = bstr(u), next
	}
	if p.PasswordFlag {
		if p.Password, off, ok = readBytes(b, off, end); !ok {
			return short(t, off, "password")
		}
	}
	return endCheck(t, off, end)
}

// Clone returns a deep copy of p.
func (p *Connect) Clone() *Connect {
	c := *p
	c.ClientID = cloneString(p.ClientID)
	c.Username = cloneString(p.Username)
	c.Password = cloneBytes(p.Password)
	c.Props = p.Props.Clone()
	if p.Will != nil {
		w := *p.Will
		w.Topic = cloneString(w.Topic)
		w.Payload = cloneBytes(w.Payload)
		w.Props = p.Will.Props.Clone()
		c.Will = &w
	}
	return &c
}
