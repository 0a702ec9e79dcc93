package gen

import (
	"strings"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Packet generates a valid packet of type t for version v: every field the
// version allows gets a value the codec accepts, optional fields and
// properties are present or absent by choice. It returns nil for AUTH on
// 3.1.1 and for a type outside 1..15.
func (g *Gen) Packet(v codec.Version, t codec.Type) codec.Packet {
	v5 := v == codec.V5
	switch t {
	case codec.TypeConnect:
		return g.connect(v5)
	case codec.TypeConnack:
		p := &codec.Connack{}
		if v5 {
			p.ReasonCode = g.reason(t, v)
			p.Props = g.props(t)
		} else if g.chance(4) {
			p.ReasonCode = codec.ReasonCode(1 + g.Intn(5))
		}
		p.SessionPresent = p.ReasonCode == 0 && g.Bool()
		return p
	case codec.TypePublish:
		return g.publish(v5)
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		id := g.packetID()
		var code codec.ReasonCode
		var props codec.Properties
		if v5 {
			code = g.reason(t, v)
			if g.Bool() {
				props = g.props(t)
			}
		}
		switch t {
		case codec.TypePuback:
			return &codec.Puback{PacketID: id, ReasonCode: code, Props: props}
		case codec.TypePubrec:
			return &codec.Pubrec{PacketID: id, ReasonCode: code, Props: props}
		case codec.TypePubrel:
			return &codec.Pubrel{PacketID: id, ReasonCode: code, Props: props}
		}
		return &codec.Pubcomp{PacketID: id, ReasonCode: code, Props: props}
	case codec.TypeSubscribe:
		p := &codec.Subscribe{PacketID: g.packetID()}
		if v5 {
			p.Props = g.props(t)
		}
		for n := 1 + g.Intn(4); len(p.Subscriptions) < n; {
			p.Subscriptions = append(p.Subscriptions, g.Subscription(v))
		}
		return p
	case codec.TypeSuback:
		p := &codec.Suback{PacketID: g.packetID()}
		if v5 {
			p.Props = g.props(t)
		}
		for n := 1 + g.Intn(4); len(p.ReasonCodes) < n; {
			p.ReasonCodes = append(p.ReasonCodes, g.reason(t, v))
		}
		return p
	case codec.TypeUnsubscribe:
		p := &codec.Unsubscribe{PacketID: g.packetID()}
		if v5 {
			p.Props = g.props(t)
		}
		for n := 1 + g.Intn(4); len(p.Filters) < n; {
			p.Filters = append(p.Filters, g.TopicFilter(v))
		}
		return p
	case codec.TypeUnsuback:
		p := &codec.Unsuback{PacketID: g.packetID()}
		if v5 {
			p.Props = g.props(t)
			for n := 1 + g.Intn(4); len(p.ReasonCodes) < n; {
				p.ReasonCodes = append(p.ReasonCodes, g.reason(t, v))
			}
		}
		return p
	case codec.TypePingreq:
		return &codec.Pingreq{}
	case codec.TypePingresp:
		return &codec.Pingresp{}
	case codec.TypeDisconnect:
		p := &codec.Disconnect{}
		if v5 && g.Bool() {
			p.ReasonCode = g.reason(t, v)
			p.Props = g.props(t)
		}
		return p
	case codec.TypeAuth:
		if !v5 {
			return nil
		}
		p := &codec.Auth{}
		if g.Bool() {
			p.ReasonCode = g.reason(t, v)
			p.Props = g.props(t)
			if p.Props.AuthMethod == "" { // [§3.15.2.2.2]: a method unless success without properties
				p.Props.AuthMethod = "SCRAM-SHA-1"
				p.Props = marked(p.Props)
			}
		}
		return p
	}
	return nil
}

// AnyPacket generates a valid packet of a type chosen among Types(v).
func (g *Gen) AnyPacket(v codec.Version) codec.Packet { return g.Packet(v, g.Type(v)) }

func (g *Gen) connect(v5 bool) *codec.Connect {
	p := &codec.Connect{CleanStart: g.Bool(), KeepAlive: uint16(g.Intn(4) * 30)}
	if g.Bool() {
		p.ClientID = g.String()
	}
	if !v5 && p.ClientID == "" {
		p.CleanStart = true // [MQTT-3.1.3-7]
	}
	if g.Bool() {
		p.UsernameFlag = true
		p.Username = g.String()
	}
	if g.Bool() && (v5 || p.UsernameFlag) {
		p.PasswordFlag = true
		p.Password = g.binary()
	}
	if g.Bool() {
		w := &codec.Will{QoS: codec.QoS(g.Intn(3)), Retain: g.Bool(), Topic: g.TopicName(), Payload: g.binary()}
		if v5 {
			w.Props = g.props(0)
		}
		p.Will = w
	}
	if v5 {
		p.Props = g.props(codec.TypeConnect)
	}
	return p
}

func (g *Gen) publish(v5 bool) *codec.Publish {
	p := &codec.Publish{QoS: codec.QoS(g.Intn(3)), Retain: g.Bool(), Topic: g.TopicName(), Payload: g.binary()}
	if p.QoS > 0 {
		p.PacketID = g.packetID()
		p.Dup = g.Bool()
	}
	if v5 {
		p.Props = g.props(codec.TypePublish)
		if p.Props.TopicAlias != 0 && g.Bool() {
			p.Topic = "" // the alias stands for the topic [MQTT-3.3.2-12 allows an empty name with an alias]
		}
	}
	return p
}

// Subscription generates one valid subscription of a SUBSCRIBE for v.
func (g *Gen) Subscription(v codec.Version) codec.Subscription {
	s := codec.Subscription{Filter: g.TopicFilter(v), QoS: codec.QoS(g.Intn(3))}
	if v == codec.V5 {
		_, _, shared := codec.ParseShared(s.Filter)
		s.NoLocal = !shared && g.Bool()
		s.RetainAsPublished = g.Bool()
		s.RetainHandling = codec.RetainHandling(g.Intn(3))
	}
	return s
}

func (g *Gen) packetID() uint16 {
	if g.rnd == nil && len(g.buf) == 0 {
		return 1
	}
	return uint16(1 + g.Intn(65535))
}

// levels are the topic levels generated topics are made of: ASCII,
// multi-byte UTF-8, control characters and an empty level.
var levels = []string{"a", "b", "sensor", "temp", "é", "日本", "\U0001F600", "x y", "", "\x01", "\u00a0", "dev-1"}

// TopicName generates a valid, non-empty topic name without wildcards.
func (g *Gen) TopicName() string {
	n := 1 + g.Intn(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = pick(g, levels...)
	}
	s := strings.Join(parts, "/")
	if s == "" {
		s = "t"
	}
	return s
}

// TopicFilter generates a valid topic filter: levels with single-level
// wildcards, an optional multi-level wildcard at the end and, on 5.0, an
// optional shared-subscription prefix.
func (g *Gen) TopicFilter(v codec.Version) string {
	n := 1 + g.Intn(4)
	parts := make([]string, n)
	for i := range parts {
		if g.chance(3) {
			parts[i] = "+"
		} else {
			parts[i] = pick(g, levels...)
		}
	}
	if g.chance(3) {
		parts[n-1] = "#"
	}
	s := strings.Join(parts, "/")
	if s == "" {
		s = "f"
	}
	if v == codec.V5 && g.chance(5) {
		s = "$share/" + pick(g, "g", "grp", "日") + "/" + s
	}
	return s
}

// String generates a valid UTF-8 string (possibly empty) without U+0000.
func (g *Gen) String() string {
	var b strings.Builder
	for n := g.Intn(5); n > 0; n-- {
		b.WriteString(pick(g, levels...))
		b.WriteString(pick(g, "", "/", "-", "+", "#", "$"))
	}
	return b.String()
}

func (g *Gen) binary() []byte {
	n := g.Intn(12)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.small())
	}
	return b
}

// reason picks a reason code valid for t and v.
func (g *Gen) reason(t codec.Type, v codec.Version) codec.ReasonCode {
	var ok []codec.ReasonCode
	for c := 0; c < 256; c++ {
		if codec.ValidReason(t, v, codec.ReasonCode(c)) {
			ok = append(ok, codec.ReasonCode(c))
		}
	}
	if len(ok) == 0 {
		return 0
	}
	return ok[g.Intn(len(ok))]
}

// props generates properties allowed in packet type t (0: the Will
// Properties), each present or not by choice, with values the codec
// accepts.
func (g *Gen) props(t codec.Type) codec.Properties {
	var p codec.Properties
	for _, id := range allowedProps(t) {
		if !g.chance(3) {
			continue
		}
		switch id {
		case codec.PropPayloadFormatIndicator:
			p.PayloadFormat = byte(g.Intn(2))
		case codec.PropMessageExpiryInterval:
			p.MessageExpiry = uint32(g.u64())
		case codec.PropContentType:
			p.ContentType = g.String()
		case codec.PropResponseTopic:
			p.ResponseTopic = g.TopicName()
		case codec.PropCorrelationData:
			p.CorrelationData = g.binary()
		case codec.PropSubscriptionIdentifier:
			n := 1
			if t == codec.TypePublish {
				n += g.Intn(3)
			}
			for range n {
				p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(1+g.Intn(codec.MaxSubscriptionID)))
			}
		case codec.PropSessionExpiryInterval:
			p.SessionExpiry = uint32(g.u64())
		case codec.PropAssignedClientIdentifier:
			p.AssignedClientID = g.String()
		case codec.PropServerKeepAlive:
			p.ServerKeepAlive = uint16(g.u64())
		case codec.PropAuthenticationMethod:
			p.AuthMethod = g.String()
			if p.AuthMethod == "" {
				p.AuthMethod = "PLAIN"
			}
		case codec.PropAuthenticationData:
			if p.AuthMethod != "" {
				p.AuthData = g.binary()
			}
		case codec.PropRequestProblemInformation:
			p.RequestProblemInfo = byte(g.Intn(2))
		case codec.PropWillDelayInterval:
			p.WillDelay = uint32(g.u64())
		case codec.PropRequestResponseInformation:
			p.RequestResponseInfo = byte(g.Intn(2))
		case codec.PropResponseInformation:
			p.ResponseInfo = g.String()
		case codec.PropServerReference:
			p.ServerReference = g.String()
		case codec.PropReasonString:
			p.ReasonString = g.String()
		case codec.PropReceiveMaximum:
			p.ReceiveMaximum = uint16(1 + g.Intn(65535))
		case codec.PropTopicAliasMaximum:
			p.TopicAliasMaximum = uint16(g.u64())
		case codec.PropTopicAlias:
			p.TopicAlias = uint16(1 + g.Intn(65535))
		case codec.PropMaximumQoS:
			p.MaximumQoS = byte(g.Intn(2))
		case codec.PropRetainAvailable:
			p.RetainAvailable = byte(g.Intn(2))
		case codec.PropUserProperty:
			for n := 1 + g.Intn(3); n > 0; n-- {
				p.User = append(p.User, codec.UserProperty{Key: g.String(), Value: g.String()})
			}
		case codec.PropMaximumPacketSize:
			p.MaximumPacketSize = uint32(1 + g.Intn(1<<31))
		case codec.PropWildcardSubscriptionAvailable:
			p.WildcardSubAvailable = byte(g.Intn(2))
		case codec.PropSubscriptionIdentifierAvailable:
			p.SubIDAvailable = byte(g.Intn(2))
		case codec.PropSharedSubscriptionAvailable:
			p.SharedSubAvailable = byte(g.Intn(2))
		}
		if id != codec.PropUserProperty && id != codec.PropSubscriptionIdentifier {
			p.Mark(id) // present even when the value drawn is zero
		}
	}
	if p.Has(codec.PropAuthenticationData) && !p.Has(codec.PropAuthenticationMethod) {
		p.AuthMethod = "PLAIN"
		p.Mark(codec.PropAuthenticationMethod)
	}
	if p.Has(codec.PropTopicAlias) && p.TopicAlias == 0 {
		p.TopicAlias = 1
	}
	return marked(p)
}

// marked sets the Present bit of every property p holds, as Decode does, so
// that a generated packet and its decoding compare equal.
func marked(p codec.Properties) codec.Properties {
	for _, id := range propIDs {
		if p.Has(id) {
			p.Mark(id)
		}
	}
	return p
}
