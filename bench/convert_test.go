package bench

import (
	"fmt"

	paho "github.com/eclipse/paho.golang/packets"
	mochi "github.com/mochi-mqtt/server/v2/packets"

	"github.com/zmqtt/zmqtt-go/codec"
)

// The conversions in this file carry one packet between zmqtt's types and
// those of paho.golang and mochi-mqtt. They cover exactly the fields and
// properties the benchmark packets use, and refuse anything else, so that a
// packet can never lose a property on the way and make one implementation do
// less work than the others. They run outside the timed loops.

// mappedProps are the properties the conversions carry.
var mappedProps = []codec.PropID{
	codec.PropMessageExpiryInterval,
	codec.PropSessionExpiryInterval,
	codec.PropReceiveMaximum,
	codec.PropTopicAliasMaximum,
	codec.PropWillDelayInterval,
	codec.PropSubscriptionIdentifier,
	codec.PropReasonString,
	codec.PropUserProperty,
}

// checkMapped returns an error if p holds a property the conversions do not
// carry.
func checkMapped(p *codec.Properties) error {
	for id := codec.PropID(0); id < 64; id++ {
		if !p.Has(id) {
			continue
		}
		known := false
		for _, m := range mappedProps {
			known = known || m == id
		}
		if !known {
			return fmt.Errorf("the benchmark conversions do not carry the %v property", id)
		}
	}
	if len(p.SubscriptionIDs) > 1 {
		return fmt.Errorf("the benchmark conversions carry one subscription identifier, not %d", len(p.SubscriptionIDs))
	}
	return nil
}

// --- paho.golang ---------------------------------------------------------

func toPahoProps(p *codec.Properties) (*paho.Properties, error) {
	if err := checkMapped(p); err != nil {
		return nil, err
	}
	out := &paho.Properties{ReasonString: p.ReasonString}
	if p.Has(codec.PropMessageExpiryInterval) {
		v := p.MessageExpiry
		out.MessageExpiry = &v
	}
	if p.Has(codec.PropSessionExpiryInterval) {
		v := p.SessionExpiry
		out.SessionExpiryInterval = &v
	}
	if p.Has(codec.PropReceiveMaximum) {
		v := p.ReceiveMaximum
		out.ReceiveMaximum = &v
	}
	if p.Has(codec.PropTopicAliasMaximum) {
		v := p.TopicAliasMaximum
		out.TopicAliasMaximum = &v
	}
	if p.Has(codec.PropWillDelayInterval) {
		v := p.WillDelay
		out.WillDelayInterval = &v
	}
	if len(p.SubscriptionIDs) == 1 {
		v := int(p.SubscriptionIDs[0])
		out.SubscriptionIdentifier = &v
	}
	for _, u := range p.User {
		out.User = append(out.User, paho.User{Key: u.Key, Value: u.Value})
	}
	return out, nil
}

func fromPahoProps(p *paho.Properties) codec.Properties {
	var out codec.Properties
	if p == nil {
		return out
	}
	out.ReasonString = p.ReasonString
	if p.MessageExpiry != nil {
		out.MessageExpiry = *p.MessageExpiry
		out.Mark(codec.PropMessageExpiryInterval)
	}
	if p.SessionExpiryInterval != nil {
		out.SessionExpiry = *p.SessionExpiryInterval
		out.Mark(codec.PropSessionExpiryInterval)
	}
	if p.ReceiveMaximum != nil {
		out.ReceiveMaximum = *p.ReceiveMaximum
		out.Mark(codec.PropReceiveMaximum)
	}
	if p.TopicAliasMaximum != nil {
		out.TopicAliasMaximum = *p.TopicAliasMaximum
		out.Mark(codec.PropTopicAliasMaximum)
	}
	if p.WillDelayInterval != nil {
		out.WillDelay = *p.WillDelayInterval
		out.Mark(codec.PropWillDelayInterval)
	}
	if p.SubscriptionIdentifier != nil {
		out.SubscriptionIDs = []uint32{uint32(*p.SubscriptionIdentifier)}
	}
	for _, u := range p.User {
		out.User = append(out.User, codec.UserProperty{Key: u.Key, Value: u.Value})
	}
	return out
}

// toPaho returns p as a paho.golang control packet, ready for WriteTo.
// paho.golang speaks MQTT 5.0 only.
func toPaho(p codec.Packet) (*paho.ControlPacket, error) {
	switch p := p.(type) {
	case *codec.Publish:
		props, err := toPahoProps(&p.Props)
		if err != nil {
			return nil, err
		}
		pub := &paho.Publish{QoS: byte(p.QoS), Duplicate: p.Dup, Retain: p.Retain, Topic: p.Topic,
			PacketID: p.PacketID, Payload: p.Payload, Properties: props}
		return pub.ToControlPacket(), nil
	case *codec.Connect:
		props, err := toPahoProps(&p.Props)
		if err != nil {
			return nil, err
		}
		c := &paho.Connect{ProtocolName: "MQTT", ProtocolVersion: 5, CleanStart: p.CleanStart,
			KeepAlive: p.KeepAlive, ClientID: p.ClientID, Properties: props,
			UsernameFlag: p.UsernameFlag || p.Username != "", Username: p.Username,
			PasswordFlag: p.PasswordFlag || len(p.Password) > 0, Password: p.Password}
		if w := p.Will; w != nil {
			wp, err := toPahoProps(&w.Props)
			if err != nil {
				return nil, err
			}
			c.WillFlag, c.WillQOS, c.WillRetain, c.WillTopic, c.WillMessage, c.WillProperties =
				true, byte(w.QoS), w.Retain, w.Topic, w.Payload, wp
		}
		return &paho.ControlPacket{FixedHeader: paho.FixedHeader{Type: paho.CONNECT}, Content: c}, nil
	case *codec.Subscribe:
		props, err := toPahoProps(&p.Props)
		if err != nil {
			return nil, err
		}
		s := &paho.Subscribe{PacketID: p.PacketID, Properties: props}
		for _, o := range p.Subscriptions {
			s.Subscriptions = append(s.Subscriptions, paho.SubOptions{Topic: o.Filter, QoS: byte(o.QoS),
				RetainHandling: byte(o.RetainHandling), NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished})
		}
		return &paho.ControlPacket{FixedHeader: paho.FixedHeader{Type: paho.SUBSCRIBE, Flags: 2}, Content: s}, nil
	case *codec.Puback:
		props, err := toPahoProps(&p.Props)
		if err != nil {
			return nil, err
		}
		a := &paho.Puback{PacketID: p.PacketID, ReasonCode: byte(p.ReasonCode), Properties: props}
		return &paho.ControlPacket{FixedHeader: paho.FixedHeader{Type: paho.PUBACK}, Content: a}, nil
	}
	return nil, fmt.Errorf("no paho.golang conversion for %T", p)
}

// fromPaho returns the zmqtt value of a packet paho.golang decoded.
func fromPaho(cp *paho.ControlPacket) (codec.Packet, error) {
	switch c := cp.Content.(type) {
	case *paho.Publish:
		return &codec.Publish{QoS: codec.QoS(c.QoS), Dup: c.Duplicate, Retain: c.Retain, Topic: c.Topic,
			PacketID: c.PacketID, Payload: c.Payload, Props: fromPahoProps(c.Properties)}, nil
	case *paho.Connect:
		if c.ProtocolName != "MQTT" || c.ProtocolVersion != 5 {
			return nil, fmt.Errorf("paho.golang decoded protocol %q level %d", c.ProtocolName, c.ProtocolVersion)
		}
		p := &codec.Connect{CleanStart: c.CleanStart, KeepAlive: c.KeepAlive, ClientID: c.ClientID,
			UsernameFlag: c.UsernameFlag, Username: c.Username, PasswordFlag: c.PasswordFlag,
			Password: c.Password, Props: fromPahoProps(c.Properties)}
		if c.WillFlag {
			p.Will = &codec.Will{QoS: codec.QoS(c.WillQOS), Retain: c.WillRetain, Topic: c.WillTopic,
				Payload: c.WillMessage, Props: fromPahoProps(c.WillProperties)}
		}
		return p, nil
	case *paho.Subscribe:
		p := &codec.Subscribe{PacketID: c.PacketID, Props: fromPahoProps(c.Properties)}
		for _, o := range c.Subscriptions {
			p.Subscriptions = append(p.Subscriptions, codec.Subscription{Filter: o.Topic, QoS: codec.QoS(o.QoS),
				NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished,
				RetainHandling: codec.RetainHandling(o.RetainHandling)})
		}
		return p, nil
	case *paho.Puback:
		return &codec.Puback{PacketID: c.PacketID, ReasonCode: codec.ReasonCode(c.ReasonCode),
			Props: fromPahoProps(c.Properties)}, nil
	}
	return nil, fmt.Errorf("no conversion from paho.golang's %T", cp.Content)
}

// --- mochi-mqtt ----------------------------------------------------------

func toMochiProps(p *codec.Properties) (mochi.Properties, error) {
	if err := checkMapped(p); err != nil {
		return mochi.Properties{}, err
	}
	out := mochi.Properties{
		MessageExpiryInterval:     p.MessageExpiry,
		SessionExpiryInterval:     p.SessionExpiry,
		SessionExpiryIntervalFlag: p.Has(codec.PropSessionExpiryInterval),
		ReceiveMaximum:            p.ReceiveMaximum,
		TopicAliasMaximum:         p.TopicAliasMaximum,
		WillDelayInterval:         p.WillDelay,
		ReasonString:              p.ReasonString,
	}
	// mochi-mqtt writes these only when they are not zero: it cannot carry a
	// zero that was marked present.
	for id, zero := range map[codec.PropID]bool{
		codec.PropMessageExpiryInterval: p.MessageExpiry == 0,
		codec.PropReceiveMaximum:        p.ReceiveMaximum == 0,
		codec.PropTopicAliasMaximum:     p.TopicAliasMaximum == 0,
		codec.PropWillDelayInterval:     p.WillDelay == 0,
	} {
		if zero && p.Has(id) {
			return out, fmt.Errorf("mochi-mqtt cannot encode a zero %v", id)
		}
	}
	for _, id := range p.SubscriptionIDs {
		out.SubscriptionIdentifier = append(out.SubscriptionIdentifier, int(id))
	}
	for _, u := range p.User {
		out.User = append(out.User, mochi.UserProperty{Key: u.Key, Val: u.Value})
	}
	return out, nil
}

func fromMochiProps(p *mochi.Properties) codec.Properties {
	out := codec.Properties{
		MessageExpiry:     p.MessageExpiryInterval,
		ReceiveMaximum:    p.ReceiveMaximum,
		TopicAliasMaximum: p.TopicAliasMaximum,
		WillDelay:         p.WillDelayInterval,
		ReasonString:      p.ReasonString,
	}
	if p.SessionExpiryIntervalFlag {
		out.SessionExpiry = p.SessionExpiryInterval
		out.Mark(codec.PropSessionExpiryInterval)
	}
	for _, id := range p.SubscriptionIdentifier {
		out.SubscriptionIDs = append(out.SubscriptionIDs, uint32(id))
	}
	for _, u := range p.User {
		out.User = append(out.User, codec.UserProperty{Key: u.Key, Value: u.Val})
	}
	return out
}

// toMochi returns p as a mochi-mqtt packet for protocol level v.
func toMochi(p codec.Packet, v codec.Version) (*mochi.Packet, error) {
	pk := &mochi.Packet{ProtocolVersion: byte(v)}
	var err error
	switch p := p.(type) {
	case *codec.Publish:
		pk.FixedHeader = mochi.FixedHeader{Type: mochi.Publish, Qos: byte(p.QoS), Dup: p.Dup, Retain: p.Retain}
		pk.TopicName, pk.PacketID, pk.Payload = p.Topic, p.PacketID, p.Payload
		pk.Properties, err = toMochiProps(&p.Props)
	case *codec.Connect:
		pk.FixedHeader = mochi.FixedHeader{Type: mochi.Connect}
		pk.Connect = mochi.ConnectParams{ProtocolName: []byte("MQTT"), Clean: p.CleanStart,
			Keepalive: p.KeepAlive, ClientIdentifier: p.ClientID,
			UsernameFlag: p.UsernameFlag || p.Username != "", Username: []byte(p.Username),
			PasswordFlag: p.PasswordFlag || len(p.Password) > 0, Password: p.Password}
		if w := p.Will; w != nil {
			pk.Connect.WillFlag, pk.Connect.WillQos, pk.Connect.WillRetain = true, byte(w.QoS), w.Retain
			pk.Connect.WillTopic, pk.Connect.WillPayload = w.Topic, w.Payload
			if pk.Connect.WillProperties, err = toMochiProps(&w.Props); err != nil {
				return nil, err
			}
		}
		pk.Properties, err = toMochiProps(&p.Props)
	case *codec.Subscribe:
		// mochi-mqtt writes the fixed-header flags from Qos: 1 gives 0b0010.
		pk.FixedHeader = mochi.FixedHeader{Type: mochi.Subscribe, Qos: 1}
		pk.PacketID = p.PacketID
		for _, o := range p.Subscriptions {
			pk.Filters = append(pk.Filters, mochi.Subscription{Filter: o.Filter, Qos: byte(o.QoS),
				NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished, RetainHandling: byte(o.RetainHandling)})
		}
		pk.Properties, err = toMochiProps(&p.Props)
	case *codec.Puback:
		pk.FixedHeader = mochi.FixedHeader{Type: mochi.Puback}
		pk.PacketID, pk.ReasonCode = p.PacketID, byte(p.ReasonCode)
		pk.Properties, err = toMochiProps(&p.Props)
	default:
		return nil, fmt.Errorf("no mochi-mqtt conversion for %T", p)
	}
	if err != nil {
		return nil, err
	}
	return pk, nil
}

// fromMochi returns the zmqtt value of a packet mochi-mqtt decoded.
func fromMochi(pk *mochi.Packet) (codec.Packet, error) {
	switch pk.FixedHeader.Type {
	case mochi.Publish:
		return &codec.Publish{QoS: codec.QoS(pk.FixedHeader.Qos), Dup: pk.FixedHeader.Dup,
			Retain: pk.FixedHeader.Retain, Topic: pk.TopicName, PacketID: pk.PacketID,
			Payload: pk.Payload, Props: fromMochiProps(&pk.Properties)}, nil
	case mochi.Connect:
		c := &pk.Connect
		if string(c.ProtocolName) != "MQTT" || pk.ProtocolVersion != 4 && pk.ProtocolVersion != 5 {
			return nil, fmt.Errorf("mochi-mqtt decoded protocol %q level %d", c.ProtocolName, pk.ProtocolVersion)
		}
		p := &codec.Connect{CleanStart: c.Clean, KeepAlive: c.Keepalive, ClientID: c.ClientIdentifier,
			UsernameFlag: c.UsernameFlag, Username: string(c.Username), PasswordFlag: c.PasswordFlag,
			Password: c.Password, Props: fromMochiProps(&pk.Properties)}
		if c.WillFlag {
			p.Will = &codec.Will{QoS: codec.QoS(c.WillQos), Retain: c.WillRetain, Topic: c.WillTopic,
				Payload: c.WillPayload, Props: fromMochiProps(&c.WillProperties)}
		}
		return p, nil
	case mochi.Subscribe:
		p := &codec.Subscribe{PacketID: pk.PacketID, Props: fromMochiProps(&pk.Properties)}
		for _, o := range pk.Filters {
			p.Subscriptions = append(p.Subscriptions, codec.Subscription{Filter: o.Filter, QoS: codec.QoS(o.Qos),
				NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished,
				RetainHandling: codec.RetainHandling(o.RetainHandling)})
		}
		return p, nil
	case mochi.Puback:
		return &codec.Puback{PacketID: pk.PacketID, ReasonCode: codec.ReasonCode(pk.ReasonCode),
			Props: fromMochiProps(&pk.Properties)}, nil
	}
	return nil, fmt.Errorf("no conversion from mochi-mqtt packet type %d", pk.FixedHeader.Type)
}
