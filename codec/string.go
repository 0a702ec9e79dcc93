package codec

import (
	"strconv"
	"strings"
)

// String methods describe packets for logs. They never print a payload, a
// password, authentication data or correlation data: only their lengths.

func (p *Properties) writeTo(b *strings.Builder) {
	m := p.mask()
	if m == 0 {
		return
	}
	b.WriteString(" props{")
	first := true
	sep := func() {
		if !first {
			b.WriteString(" ")
		}
		first = false
	}
	for id := PropID(1); int(id) < len(propTable); id++ {
		if !m.Has(id) {
			continue
		}
		switch propTable[id].kind {
		case kindByte, kindUint16, kindUint32:
			sep()
			b.WriteString(strings.ReplaceAll(id.String(), " ", "-"))
			b.WriteString("=")
			b.WriteString(strconv.FormatUint(uint64(p.intProp(id)), 10))
		case kindVBI:
			for _, sid := range p.SubscriptionIDs {
				sep()
				b.WriteString("subscription-identifier=")
				b.WriteString(strconv.FormatUint(uint64(sid), 10))
			}
		case kindString:
			sep()
			b.WriteString(strings.ReplaceAll(id.String(), " ", "-"))
			b.WriteString("=")
			b.WriteString(strconv.Quote(p.stringProp(id)))
		case kindBinary:
			sep()
			b.WriteString(strings.ReplaceAll(id.String(), " ", "-"))
			b.WriteString("=<")
			b.WriteString(strconv.Itoa(len(p.binaryProp(id))))
			b.WriteString(" bytes>")
		case kindPair:
			for _, u := range p.User {
				sep()
				b.WriteString("user:")
				b.WriteString(strconv.Quote(u.Key))
				b.WriteString("=")
				b.WriteString(strconv.Quote(u.Value))
			}
		}
	}
	b.WriteString("}")
}

func (p *Properties) intProp(id PropID) uint32 {
	switch id {
	case PropPayloadFormatIndicator:
		return uint32(p.PayloadFormat)
	case PropMessageExpiryInterval:
		return p.MessageExpiry
	case PropSessionExpiryInterval:
		return p.SessionExpiry
	case PropServerKeepAlive:
		return uint32(p.ServerKeepAlive)
	case PropRequestProblemInformation:
		return uint32(p.RequestProblemInfo)
	case PropWillDelayInterval:
		return p.WillDelay
	case PropRequestResponseInformation:
		return uint32(p.RequestResponseInfo)
	case PropReceiveMaximum:
		return uint32(p.ReceiveMaximum)
	case PropTopicAliasMaximum:
		return uint32(p.TopicAliasMaximum)
	case PropTopicAlias:
		return uint32(p.TopicAlias)
	case PropMaximumQoS:
		return uint32(p.MaximumQoS)
	case PropRetainAvailable:
		return uint32(p.RetainAvailable)
	case PropMaximumPacketSize:
		return p.MaximumPacketSize
	case PropWildcardSubscriptionAvailable:
		return uint32(p.WildcardSubAvailable)
	case PropSubscriptionIdentifierAvailable:
		return uint32(p.SubIDAvailable)
	case PropSharedSubscriptionAvailable:
		return uint32(p.SharedSubAvailable)
	}
	return 0
}

func field(b *strings.Builder, name, value string) {
	b.WriteString(" ")
	b.WriteString(name)
	b.WriteString("=")
	b.WriteString(value)
}

func itoa(n int) string { return strconv.Itoa(n) }

// String describes the packet; the password is never shown.
func (p *Connect) String() string {
	var b strings.Builder
	b.WriteString("CONNECT{client-id=")
	b.WriteString(strconv.Quote(p.ClientID))
	field(&b, "clean-start", strconv.FormatBool(p.CleanStart))
	field(&b, "keep-alive", itoa(int(p.KeepAlive)))
	if p.hasUsername() {
		field(&b, "username", strconv.Quote(p.Username))
	}
	if p.hasPassword() {
		field(&b, "password", "<redacted>")
	}
	if w := p.Will; w != nil {
		b.WriteString(" will{topic=")
		b.WriteString(strconv.Quote(w.Topic))
		field(&b, "qos", itoa(int(w.QoS)))
		field(&b, "retain", strconv.FormatBool(w.Retain))
		field(&b, "payload", "<"+itoa(len(w.Payload))+" bytes>")
		w.Props.writeTo(&b)
		b.WriteString("}")
	}
	p.Props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}

// String describes the packet.
func (p *Connack) String() string {
	var b strings.Builder
	b.WriteString("CONNACK{session-present=")
	b.WriteString(strconv.FormatBool(p.SessionPresent))
	field(&b, "reason", hexByte(byte(p.ReasonCode)))
	p.Props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}

// String describes the packet; the payload is shown by its length only.
func (p *Publish) String() string {
	var b strings.Builder
	b.WriteString("PUBLISH{topic=")
	b.WriteString(strconv.Quote(p.Topic))
	field(&b, "qos", itoa(int(p.QoS)))
	if p.QoS > 0 {
		field(&b, "id", itoa(int(p.PacketID)))
	}
	if p.Dup {
		b.WriteString(" dup")
	}
	if p.Retain {
		b.WriteString(" retain")
	}
	field(&b, "payload", "<"+itoa(len(p.Payload))+" bytes>")
	p.Props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}

func (a *ack) string(t Type) string {
	var b strings.Builder
	b.WriteString(t.String())
	b.WriteString("{id=")
	b.WriteString(itoa(int(a.PacketID)))
	if a.ReasonCode != 0 {
		field(&b, "reason", hexByte(byte(a.ReasonCode)))
	}
	a.Props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}

// String describes the packet.
func (p *Puback) String() string { return (*ack)(p).string(TypePuback) }

// String describes the packet.
func (p *Pubrec) String() string { return (*ack)(p).string(TypePubrec) }

// String describes the packet.
func (p *Pubrel) String() string { return (*ack)(p).string(TypePubrel) }

// String describes the packet.
func (p *Pubcomp) String() string { return (*ack)(p).string(TypePubcomp) }

// String describes the packet.
func (p *Subscribe) String() string {
	var b strings.Builder
	b.WriteString("SUBSCRIBE{id=")
	b.WriteString(itoa(int(p.PacketID)))
	for _, s := range p.Subscriptions {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(s.Filter))
		b.WriteString(":")
		b.WriteString(itoa(int(s.QoS)))
		if s.NoLocal {
			b.WriteString(",no-local")
		}
		if s.RetainAsPublished {
			b.WriteString(",retain-as-published")
		}
		if s.RetainHandling != 0 {
			b.WriteString(",retain-handling=")
			b.WriteString(itoa(int(s.RetainHandling)))
		}
	}
	p.Props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}

func codesString(name string, id uint16, codes []ReasonCode, props *Properties) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString("{id=")
	b.WriteString(itoa(int(id)))
	if len(codes) > 0 {
		b.WriteString(" codes=[")
		for i, c := range codes {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(hexByte(byte(c)))
		}
		b.WriteString("]")
	}
	props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}

// String describes the packet.
func (p *Suback) String() string {
	return codesString("SUBACK", p.PacketID, p.ReasonCodes, &p.Props)
}

// String describes the packet.
func (p *Unsuback) String() string {
	return codesString("UNSUBACK", p.PacketID, p.ReasonCodes, &p.Props)
}

// String describes the packet.
func (p *Unsubscribe) String() string {
	var b strings.Builder
	b.WriteString("UNSUBSCRIBE{id=")
	b.WriteString(itoa(int(p.PacketID)))
	for _, f := range p.Filters {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(f))
	}
	p.Props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}

// String returns "PINGREQ{}".
func (p *Pingreq) String() string { return "PINGREQ{}" }

// String returns "PINGRESP{}".
func (p *Pingresp) String() string { return "PINGRESP{}" }

// String describes the packet.
func (p *Disconnect) String() string {
	var b strings.Builder
	b.WriteString("DISCONNECT{reason=")
	b.WriteString(hexByte(byte(p.ReasonCode)))
	p.Props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}

// String describes the packet; authentication data is shown by its length.
func (p *Auth) String() string {
	var b strings.Builder
	b.WriteString("AUTH{reason=")
	b.WriteString(hexByte(byte(p.ReasonCode)))
	p.Props.writeTo(&b)
	b.WriteString("}")
	return b.String()
}
