package codec_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Differential tests against github.com/eclipse/paho.golang/packets
// (v0.23.0), an independent MQTT 5.0 codec: packets this codec encodes decode
// in paho to the same fields, and paho's encodings decode here to the same
// fields. paho speaks MQTT 5.0 only, so every packet here is 5.0.
//
// Known limits of paho v0.23.0 that the tests step around, each checked
// against its source:
//   - an empty string or binary property is an absent one (it writes only
//     non-empty ones), so generated properties are never empty;
//   - a PUBLISH holds one Subscription Identifier (it keeps the last);
//   - it packs the Will Properties with the CONNECT's property filter, so
//     Payload Format Indicator, Message Expiry Interval, Content Type,
//     Response Topic and Correlation Data of a Will are lost when paho
//     encodes (decoding them works);
//   - it cannot decode a DISCONNECT with Remaining Length 0, which MQTT 5.0
//     section 3.14.2.1 allows (it reads a reason code that is not there).

// pahoConfig is what paho can represent.
var pahoConfig = genConfig{v: codec.V5, nonEmpty: true, oneSubID: true}

// fataler is what the helpers need of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func ptr[T any](v T) *T { return &v }

// propsToPaho converts properties; a property is present in paho when its
// pointer is set or its string or slice is not empty.
func propsToPaho(p *codec.Properties) *packets.Properties {
	q := &packets.Properties{
		ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData,
		AssignedClientID: p.AssignedClientID, AuthMethod: p.AuthMethod, AuthData: p.AuthData,
		ResponseInfo: p.ResponseInfo, ServerReference: p.ServerReference, ReasonString: p.ReasonString,
	}
	if p.Has(codec.PropPayloadFormatIndicator) {
		q.PayloadFormat = ptr(p.PayloadFormat)
	}
	if p.Has(codec.PropMessageExpiryInterval) {
		q.MessageExpiry = ptr(p.MessageExpiry)
	}
	if len(p.SubscriptionIDs) > 0 {
		q.SubscriptionIdentifier = ptr(int(p.SubscriptionIDs[len(p.SubscriptionIDs)-1]))
	}
	if p.Has(codec.PropSessionExpiryInterval) {
		q.SessionExpiryInterval = ptr(p.SessionExpiry)
	}
	if p.Has(codec.PropServerKeepAlive) {
		q.ServerKeepAlive = ptr(p.ServerKeepAlive)
	}
	if p.Has(codec.PropRequestProblemInformation) {
		q.RequestProblemInfo = ptr(p.RequestProblemInfo)
	}
	if p.Has(codec.PropWillDelayInterval) {
		q.WillDelayInterval = ptr(p.WillDelay)
	}
	if p.Has(codec.PropRequestResponseInformation) {
		q.RequestResponseInfo = ptr(p.RequestResponseInfo)
	}
	if p.Has(codec.PropReceiveMaximum) {
		q.ReceiveMaximum = ptr(p.ReceiveMaximum)
	}
	if p.Has(codec.PropTopicAliasMaximum) {
		q.TopicAliasMaximum = ptr(p.TopicAliasMaximum)
	}
	if p.Has(codec.PropTopicAlias) {
		q.TopicAlias = ptr(p.TopicAlias)
	}
	if p.Has(codec.PropMaximumQoS) {
		q.MaximumQOS = ptr(p.MaximumQoS)
	}
	if p.Has(codec.PropRetainAvailable) {
		q.RetainAvailable = ptr(p.RetainAvailable)
	}
	for _, u := range p.User {
		q.User = append(q.User, packets.User{Key: u.Key, Value: u.Value})
	}
	if p.Has(codec.PropMaximumPacketSize) {
		q.MaximumPacketSize = ptr(p.MaximumPacketSize)
	}
	if p.Has(codec.PropWildcardSubscriptionAvailable) {
		q.WildcardSubAvailable = ptr(p.WildcardSubAvailable)
	}
	if p.Has(codec.PropSubscriptionIdentifierAvailable) {
		q.SubIDAvailable = ptr(p.SubIDAvailable)
	}
	if p.Has(codec.PropSharedSubscriptionAvailable) {
		q.SharedSubAvailable = ptr(p.SharedSubAvailable)
	}
	return q
}

// propsFromPaho converts paho's properties back, marking each one present.
func propsFromPaho(q *packets.Properties) codec.Properties {
	var p codec.Properties
	if q == nil {
		return p
	}
	str := func(id codec.PropID, s string, dst *string) {
		if s != "" {
			*dst = s
			p.Mark(id)
		}
	}
	bin := func(id codec.PropID, b []byte, dst *[]byte) {
		if len(b) > 0 {
			*dst = b
			p.Mark(id)
		}
	}
	byt := func(id codec.PropID, v *byte, dst *byte) {
		if v != nil {
			*dst = *v
			p.Mark(id)
		}
	}
	u16 := func(id codec.PropID, v *uint16, dst *uint16) {
		if v != nil {
			*dst = *v
			p.Mark(id)
		}
	}
	u32 := func(id codec.PropID, v *uint32, dst *uint32) {
		if v != nil {
			*dst = *v
			p.Mark(id)
		}
	}
	byt(codec.PropPayloadFormatIndicator, q.PayloadFormat, &p.PayloadFormat)
	u32(codec.PropMessageExpiryInterval, q.MessageExpiry, &p.MessageExpiry)
	str(codec.PropContentType, q.ContentType, &p.ContentType)
	str(codec.PropResponseTopic, q.ResponseTopic, &p.ResponseTopic)
	bin(codec.PropCorrelationData, q.CorrelationData, &p.CorrelationData)
	if q.SubscriptionIdentifier != nil {
		p.SubscriptionIDs = []uint32{uint32(*q.SubscriptionIdentifier)}
		p.Mark(codec.PropSubscriptionIdentifier)
	}
	u32(codec.PropSessionExpiryInterval, q.SessionExpiryInterval, &p.SessionExpiry)
	str(codec.PropAssignedClientIdentifier, q.AssignedClientID, &p.AssignedClientID)
	u16(codec.PropServerKeepAlive, q.ServerKeepAlive, &p.ServerKeepAlive)
	str(codec.PropAuthenticationMethod, q.AuthMethod, &p.AuthMethod)
	bin(codec.PropAuthenticationData, q.AuthData, &p.AuthData)
	byt(codec.PropRequestProblemInformation, q.RequestProblemInfo, &p.RequestProblemInfo)
	u32(codec.PropWillDelayInterval, q.WillDelayInterval, &p.WillDelay)
	byt(codec.PropRequestResponseInformation, q.RequestResponseInfo, &p.RequestResponseInfo)
	str(codec.PropResponseInformation, q.ResponseInfo, &p.ResponseInfo)
	str(codec.PropServerReference, q.ServerReference, &p.ServerReference)
	str(codec.PropReasonString, q.ReasonString, &p.ReasonString)
	u16(codec.PropReceiveMaximum, q.ReceiveMaximum, &p.ReceiveMaximum)
	u16(codec.PropTopicAliasMaximum, q.TopicAliasMaximum, &p.TopicAliasMaximum)
	u16(codec.PropTopicAlias, q.TopicAlias, &p.TopicAlias)
	byt(codec.PropMaximumQoS, q.MaximumQOS, &p.MaximumQoS)
	byt(codec.PropRetainAvailable, q.RetainAvailable, &p.RetainAvailable)
	for _, u := range q.User {
		p.User = append(p.User, codec.UserProperty{Key: u.Key, Value: u.Value})
		p.Mark(codec.PropUserProperty)
	}
	u32(codec.PropMaximumPacketSize, q.MaximumPacketSize, &p.MaximumPacketSize)
	byt(codec.PropWildcardSubscriptionAvailable, q.WildcardSubAvailable, &p.WildcardSubAvailable)
	byt(codec.PropSubscriptionIdentifierAvailable, q.SubIDAvailable, &p.SubIDAvailable)
	byt(codec.PropSharedSubscriptionAvailable, q.SharedSubAvailable, &p.SharedSubAvailable)
	return p
}

// toPaho converts a packet to paho's type for it.
func toPaho(t fataler, p codec.Packet) packets.Packet {
	switch p := p.(type) {
	case *codec.Connect:
		c := &packets.Connect{
			ProtocolName: "MQTT", ProtocolVersion: 5, CleanStart: p.CleanStart, KeepAlive: p.KeepAlive,
			ClientID: p.ClientID, Properties: propsToPaho(&p.Props),
			UsernameFlag: p.UsernameFlag, Username: p.Username, PasswordFlag: p.PasswordFlag, Password: p.Password,
		}
		if w := p.Will; w != nil {
			c.WillFlag, c.WillQOS, c.WillRetain = true, byte(w.QoS), w.Retain
			c.WillTopic, c.WillMessage, c.WillProperties = w.Topic, w.Payload, propsToPaho(&w.Props)
		}
		return c
	case *codec.Connack:
		return &packets.Connack{SessionPresent: p.SessionPresent, ReasonCode: byte(p.ReasonCode), Properties: propsToPaho(&p.Props)}
	case *codec.Publish:
		return &packets.Publish{Duplicate: p.Dup, QoS: byte(p.QoS), Retain: p.Retain, Topic: p.Topic,
			PacketID: p.PacketID, Properties: propsToPaho(&p.Props), Payload: p.Payload}
	case *codec.Puback:
		return &packets.Puback{PacketID: p.PacketID, ReasonCode: byte(p.ReasonCode), Properties: propsToPaho(&p.Props)}
	case *codec.Pubrec:
		return &packets.Pubrec{PacketID: p.PacketID, ReasonCode: byte(p.ReasonCode), Properties: propsToPaho(&p.Props)}
	case *codec.Pubrel:
		return &packets.Pubrel{PacketID: p.PacketID, ReasonCode: byte(p.ReasonCode), Properties: propsToPaho(&p.Props)}
	case *codec.Pubcomp:
		return &packets.Pubcomp{PacketID: p.PacketID, ReasonCode: byte(p.ReasonCode), Properties: propsToPaho(&p.Props)}
	case *codec.Subscribe:
		s := &packets.Subscribe{PacketID: p.PacketID, Properties: propsToPaho(&p.Props)}
		for _, o := range p.Subscriptions {
			s.Subscriptions = append(s.Subscriptions, packets.SubOptions{Topic: o.Filter, QoS: byte(o.QoS),
				NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished, RetainHandling: byte(o.RetainHandling)})
		}
		return s
	case *codec.Suback:
		return &packets.Suback{PacketID: p.PacketID, Properties: propsToPaho(&p.Props), Reasons: codesToBytes(p.ReasonCodes)}
	case *codec.Unsubscribe:
		return &packets.Unsubscribe{PacketID: p.PacketID, Properties: propsToPaho(&p.Props), Topics: p.Filters}
	case *codec.Unsuback:
		return &packets.Unsuback{PacketID: p.PacketID, Properties: propsToPaho(&p.Props), Reasons: codesToBytes(p.ReasonCodes)}
	case *codec.Pingreq:
		return &packets.Pingreq{}
	case *codec.Pingresp:
		return &packets.Pingresp{}
	case *codec.Disconnect:
		return &packets.Disconnect{ReasonCode: byte(p.ReasonCode), Properties: propsToPaho(&p.Props)}
	case *codec.Auth:
		return &packets.Auth{ReasonCode: byte(p.ReasonCode), Properties: propsToPaho(&p.Props)}
	}
	t.Fatalf("no paho conversion for %T", p)
	return nil
}

func codesToBytes(cs []codec.ReasonCode) []byte {
	b := make([]byte, len(cs))
	for i, c := range cs {
		b[i] = byte(c)
	}
	return b
}

func codesFromBytes(b []byte) []codec.ReasonCode {
	cs := make([]codec.ReasonCode, len(b))
	for i, c := range b {
		cs[i] = codec.ReasonCode(c)
	}
	return cs
}

// fromPaho converts a packet paho decoded.
func fromPaho(t fataler, cp *packets.ControlPacket) codec.Packet {
	switch p := cp.Content.(type) {
	case *packets.Connect:
		if p.ProtocolName != "MQTT" || p.ProtocolVersion != 5 {
			t.Fatalf("paho reads protocol %q level %d", p.ProtocolName, p.ProtocolVersion)
		}
		c := &codec.Connect{CleanStart: p.CleanStart, KeepAlive: p.KeepAlive, ClientID: p.ClientID,
			Props: propsFromPaho(p.Properties), UsernameFlag: p.UsernameFlag, Username: p.Username,
			PasswordFlag: p.PasswordFlag, Password: p.Password}
		if p.WillFlag {
			c.Will = &codec.Will{QoS: codec.QoS(p.WillQOS), Retain: p.WillRetain, Topic: p.WillTopic,
				Payload: p.WillMessage, Props: propsFromPaho(p.WillProperties)}
		}
		return c
	case *packets.Connack:
		return &codec.Connack{SessionPresent: p.SessionPresent, ReasonCode: codec.ReasonCode(p.ReasonCode), Props: propsFromPaho(p.Properties)}
	case *packets.Publish:
		return &codec.Publish{Dup: p.Duplicate, QoS: codec.QoS(p.QoS), Retain: p.Retain, Topic: p.Topic,
			PacketID: p.PacketID, Props: propsFromPaho(p.Properties), Payload: p.Payload}
	case *packets.Puback:
		return &codec.Puback{PacketID: p.PacketID, ReasonCode: codec.ReasonCode(p.ReasonCode), Props: propsFromPaho(p.Properties)}
	case *packets.Pubrec:
		return &codec.Pubrec{PacketID: p.PacketID, ReasonCode: codec.ReasonCode(p.ReasonCode), Props: propsFromPaho(p.Properties)}
	case *packets.Pubrel:
		return &codec.Pubrel{PacketID: p.PacketID, ReasonCode: codec.ReasonCode(p.ReasonCode), Props: propsFromPaho(p.Properties)}
	case *packets.Pubcomp:
		return &codec.Pubcomp{PacketID: p.PacketID, ReasonCode: codec.ReasonCode(p.ReasonCode), Props: propsFromPaho(p.Properties)}
	case *packets.Subscribe:
		s := &codec.Subscribe{PacketID: p.PacketID, Props: propsFromPaho(p.Properties)}
		for _, o := range p.Subscriptions {
			s.Subscriptions = append(s.Subscriptions, codec.Subscription{Filter: o.Topic, QoS: codec.QoS(o.QoS),
				NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished, RetainHandling: codec.RetainHandling(o.RetainHandling)})
		}
		return s
	case *packets.Suback:
		return &codec.Suback{PacketID: p.PacketID, Props: propsFromPaho(p.Properties), ReasonCodes: codesFromBytes(p.Reasons)}
	case *packets.Unsubscribe:
		return &codec.Unsubscribe{PacketID: p.PacketID, Props: propsFromPaho(p.Properties), Filters: p.Topics}
	case *packets.Unsuback:
		return &codec.Unsuback{PacketID: p.PacketID, Props: propsFromPaho(p.Properties), ReasonCodes: codesFromBytes(p.Reasons)}
	case *packets.Pingreq:
		return &codec.Pingreq{}
	case *packets.Pingresp:
		return &codec.Pingresp{}
	case *packets.Disconnect:
		return &codec.Disconnect{ReasonCode: codec.ReasonCode(p.ReasonCode), Props: propsFromPaho(p.Properties)}
	case *packets.Auth:
		return &codec.Auth{ReasonCode: codec.ReasonCode(p.ReasonCode), Props: propsFromPaho(p.Properties)}
	}
	t.Fatalf("paho decoded an unknown %T", cp.Content)
	return nil
}

// pahoCanRead reports whether paho v0.23.0 can decode our encoding enc of p.
func pahoCanRead(p codec.Packet, enc []byte) bool {
	_, isDisconnect := p.(*codec.Disconnect)
	return !(isDisconnect && len(enc) == 2)
}

// asPahoWrites returns what p becomes when paho encodes it: the Will
// Properties paho does not write are gone.
func asPahoWrites(p codec.Packet) codec.Packet {
	c, ok := p.(*codec.Connect)
	if !ok || c.Will == nil {
		return p
	}
	c = c.Clone()
	w := &c.Will.Props
	w.PayloadFormat, w.MessageExpiry, w.ContentType, w.ResponseTopic, w.CorrelationData = 0, 0, "", "", nil
	w.Present &^= present(codec.PropPayloadFormatIndicator, codec.PropMessageExpiryInterval, codec.PropContentType,
		codec.PropResponseTopic, codec.PropCorrelationData)
	return c
}

// ourToPaho encodes p here and decodes it in paho.
func ourToPaho(t fataler, p codec.Packet) {
	t.Helper()
	enc, err := codec.Append(nil, p, codec.V5)
	if err != nil {
		t.Fatalf("Append(%v): %v", p, err)
	}
	if !pahoCanRead(p, enc) {
		return
	}
	cp, err := packets.ReadPacket(bytes.NewReader(enc))
	if err != nil {
		t.Fatalf("paho cannot read our % x of %v: %v", enc, p, err)
	}
	if got := codec.Type(cp.Type); got != p.Type() {
		t.Fatalf("paho reads type %v, want %v", got, p.Type())
	}
	if diff := cmp.Diff(p, fromPaho(t, cp), pktCmp); diff != "" {
		t.Fatalf("paho reads our % x differently (-ours +paho):\n%s", enc, diff)
	}
}

// pahoToOur encodes p in paho and decodes it here.
func pahoToOur(t fataler, p codec.Packet) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := toPaho(t, p).WriteTo(&buf); err != nil {
		t.Fatalf("paho WriteTo: %v", err)
	}
	enc := buf.Bytes()
	got, n, err := codec.Decode(enc, codec.V5)
	if a, ok := p.(*codec.Auth); ok && a.ReasonCode == 0 && a.Props.Empty() {
		// paho writes an empty AUTH in the long form, with a property
		// block that lacks the Authentication Method: a Protocol Error
		// (MQTT 5.0 section 3.15.2.2.2) that we refuse. We write the
		// short form, Remaining Length 0.
		if !errors.Is(err, codec.ErrProtocol) {
			t.Fatalf("paho's % x: err = %v, want a protocol error", enc, err)
		}
		return
	}
	if err != nil || n != len(enc) {
		t.Fatalf("paho's % x of %v does not decode: n=%d of %d, %v", enc, p, n, len(enc), err)
	}
	if diff := cmp.Diff(asPahoWrites(p), got, pktCmp); diff != "" {
		t.Fatalf("paho's % x decodes differently (-sent +ours):\n%s", enc, diff)
	}
}

// TestPahoDifferential runs both directions over generated packets of
// every type.
func TestPahoDifferential(t *testing.T) {
	for _, typ := range allPacketTypesV5 {
		t.Run(typ.String(), func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				p := genPacketOf(rt, pahoConfig, typ)
				ourToPaho(rt, p)
				pahoToOur(rt, p)
			})
		})
	}
}

// TestPahoGolden decodes the 5.0 golden packets in paho and compares them
// with the values golden_test.go expects.
func TestPahoGolden(t *testing.T) {
	skip := map[string]string{
		"publish-qos1-properties": "two subscription identifiers; paho keeps one",
		"disconnect-short":        "paho cannot read a DISCONNECT with Remaining Length 0",
	}
	n := 0
	for _, g := range loadGolden(t, "v5.hex") {
		want, ok := goldenV5[g.name]
		if !ok || skip[g.name] != "" {
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			cp, err := packets.ReadPacket(bytes.NewReader(g.b))
			if err != nil {
				t.Fatalf("paho: %v", err)
			}
			if diff := cmp.Diff(want, fromPaho(t, cp), pktCmp); diff != "" {
				t.Errorf("paho reads the golden packet differently (-golden +paho):\n%s", diff)
			}
		})
		n++
	}
	if n < 30 {
		t.Errorf("only %d golden packets compared", n)
	}
}
