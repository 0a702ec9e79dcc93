package codec

// Publish is the PUBLISH packet [§3.3]: an application message.
//
// A decoded Publish borrows Topic, Payload and its properties from the
// decoded buffer; Clone makes a copy that owns its memory.
type Publish struct {
	Dup      bool   // DUP: this may be a resend [§3.3.1.1]; never with QoS 0
	QoS      QoS    // 0, 1 or 2
	Retain   bool   // RETAIN
	Topic    string // topic name; may be empty on MQTT 5.0 when Props.TopicAlias is set
	PacketID uint16 // not 0 for QoS 1 and 2; must be 0 for QoS 0
	Props    Properties
	Payload  []byte
}

// Type returns TypePublish.
func (p *Publish) Type() Type { return TypePublish }

func (p *Publish) flags() byte {
	f := byte(p.QoS) << 1
	if p.Dup {
		f |= 0x08
	}
	if p.Retain {
		f |= 0x01
	}
	return f
}

// remaining validates p and returns its Remaining Length and the length of
// its property list.
func (p *Publish) remaining(v Version) (rem, plen int, m PropSet, err *Error) {
	if !p.QoS.Valid() {
		return 0, 0, 0, encErr(ReasonMalformedPacket, TypePublish, "MQTT-3.3.1-4", "QoS must be 0, 1 or 2")
	}
	if p.Dup && p.QoS == AtMostOnce {
		return 0, 0, 0, encErr(ReasonMalformedPacket, TypePublish, "MQTT-3.3.1-2", "DUP set on a QoS 0 message")
	}
	if p.QoS == AtMostOnce {
		if p.PacketID != 0 {
			return 0, 0, 0, encErr(ReasonProtocolError, TypePublish, "MQTT-2.2.1-2", "packet identifier on a QoS 0 message")
		}
	} else if p.PacketID == 0 {
		return 0, 0, 0, encErr(ReasonProtocolError, TypePublish, "MQTT-2.2.1-3", "packet identifier 0")
	}
	rem = 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		rem += 2
	}
	m = p.Props.mask()
	if v == V5 {
		if plen, err = p.Props.propsSizeMask(m, TypePublish, TypePublish); err != nil {
			return 0, 0, 0, err
		}
		rem += vbiLen(plen) + plen
	} else if m != 0 {
		return 0, 0, 0, noProps(TypePublish)
	}
	if p.Topic == "" {
		if v == V311 || !m.Has(PropTopicAlias) {
			return 0, 0, 0, encErr(ReasonProtocolError, TypePublish, "MQTT-3.3.2-1", "empty topic name without a topic alias")
		}
	} else if terr := checkTopicName(p.Topic); terr != nil {
		e := encErr(topicNameReason, TypePublish, terr.Rule, terr.Msg)
		e.Err = terr
		return 0, 0, 0, e
	}
	if rem > MaxRemainingLength {
		return 0, 0, 0, tooLarge(TypePublish)
	}
	return rem, plen, m, nil
}

// topicNameReason is the reason code for a topic name that breaks the rules
// of section 4.7. A topic name with a wildcard or bad UTF-8 is not well
// formed, so it is a Malformed Packet; 0x90 (Topic Name invalid) is left for
// names that are well formed but refused.
const topicNameReason = ReasonMalformedPacket

// Size returns the encoded size of p for version v, fixed header included.
func (p *Publish) Size(v Version) int {
	rem := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		rem += 2
	}
	if v == V5 {
		plen, _ := p.Props.propsSize(TypePublish, TypePublish)
		rem += vbiLen(plen) + plen
	}
	return headerSize(rem)
}

// Append validates p and appends its encoding to dst.
func (p *Publish) Append(dst []byte, v Version) ([]byte, error) {
	return p.append(dst, v, true)
}

// AppendHeader is Append without the payload: it validates p and appends
// every byte before the payload. The bytes it writes followed by p.Payload
// are exactly what Append writes, so a writer can send a large payload from
// the caller's own buffer (net.Buffers{header, p.Payload}) instead of
// copying it. It allocates only when dst lacks capacity for the header.
func (p *Publish) AppendHeader(dst []byte, v Version) ([]byte, error) {
	return p.append(dst, v, false)
}

func (p *Publish) append(dst []byte, v Version, payload bool) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	rem, plen, m, err := p.remaining(v)
	if err != nil {
		return dst, err
	}
	if payload {
		dst = grow(dst, headerSize(rem))
	} else {
		dst = grow(dst, headerSize(rem)-len(p.Payload))
	}
	dst = appendHeader(dst, byte(TypePublish)<<4|p.flags(), rem)
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if v == V5 {
		if plen == 0 {
			dst = append(dst, 0)
		} else {
			dst = p.Props.appendPropsMask(dst, plen, m)
		}
	}
	if !payload {
		return dst, nil
	}
	return append(dst, p.Payload...), nil
}

// Decode decodes a whole PUBLISH packet from the start of src.
func (p *Publish) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

func (p *Publish) decode(b []byte, h Header, v Version) error {
	p.Dup = h.Flags&0x08 != 0
	p.QoS = QoS(h.Flags >> 1 & 3)
	p.Retain = h.Flags&0x01 != 0
	p.Props.reset()
	off, end := h.Len, len(b)
	topic, off, ok := readBytes(b, off, end)
	if !ok {
		return short(TypePublish, h.Len, "topic name")
	}
	if err := checkTopicBytes(topic, TypePublish, h.Len); err != nil {
		return err
	}
	p.Topic = bstr(topic)
	p.PacketID = 0
	if p.QoS > 0 {
		if p.PacketID, off, ok = readUint16(b, off, end); !ok {
			return short(TypePublish, off, "packet identifier")
		}
		if p.PacketID == 0 {
			return protocolErr(TypePublish, off-2, "MQTT-2.2.1-3", "packet identifier 0")
		}
	}
	if v == V5 {
		var err error
		if off, err = p.Props.decodeProps(b, off, end, TypePublish, TypePublish); err != nil {
			return err
		}
	}
	if len(topic) == 0 && (v == V311 || !p.Props.Present.Has(PropTopicAlias)) {
		return protocolErr(TypePublish, h.Len, "MQTT-3.3.2-1", "empty topic name without a topic alias")
	}
	p.Payload = nil
	if off < end {
		p.Payload = b[off:end:end]
	}
	return nil
}

// Clone returns a deep copy of p.
func (p *Publish) Clone() *Publish {
	c := *p
	c.Topic = cloneString(p.Topic)
	c.Payload = cloneBytes(p.Payload)
	c.Props = p.Props.Clone()
	return &c
}
