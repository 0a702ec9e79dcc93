package fuzz

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/fuzz/gen"
)

// FuzzEncode checks the encoder against the decoder: a packet made by
// fuzz/gen from the fuzzer's bytes gets one field set to a value the bytes
// choose, often one the spec forbids (QoS 3, packet identifier 0, a
// wildcard in a topic name, U+0000 or ill-formed UTF-8, a property the
// packet does not allow or out of its range, a reason code of another
// packet, an empty SUBSCRIBE...), each of the twelve variants of the chosen
// kind on its own copy. Append must then either refuse it with an
// *codec.Error (Offset -1) or write bytes that decode to an equal packet:
// the encoder refuses what the decoder refuses. Size must be exact, and the
// helpers around a packet (Clone, String, CheckSender, ConnectVersion, the
// topic functions, reason code names) must not panic on any of it.
func FuzzEncode(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		// The choices of the corruption come first, so that a seed can name
		// them (see corpus_test.go); the packet's fields follow.
		g := gen.FromBytes(data)
		c := corruption{k: g.Intn(7), sub: g.Intn(12), bad: g.Intn(len(badStrings)), x: g.Intn(256)}
		v := g.Version()
		orig := g.AnyPacket(v)
		// Every variant of the kind, on a copy of the packet each.
		for range 12 {
			c.sub = (c.sub + 1) % 12
			c.x = (c.x + 0x55) % 256 // walks every QoS and index too
			checkEncode(t, codec.Clone(orig), v, c)
		}
	})
}

// checkEncode applies c to p and checks the property of FuzzEncode.
func checkEncode(t *testing.T, p codec.Packet, v codec.Version, c corruption) {
	what := c.apply(p)
	enc, err := codec.Append(nil, p, v)
	if err != nil {
		var ce *codec.Error
		if !errors.As(err, &ce) || ce.Offset != -1 || ce.Error() == "" {
			t.Fatalf("%s: Append of %v: %T %v, want an *codec.Error at offset -1", what, p, err, err)
		}
		_ = p.Size(v)
		return
	}
	if size := p.Size(v); size != len(enc) {
		t.Fatalf("%s: Size %d, Append wrote %d", what, size, len(enc))
	}
	q, n, err := codec.Decode(enc, v)
	if err != nil || n != len(enc) {
		t.Fatalf("%s: Append wrote % x for %v, which does not decode: %v", what, enc, p, err)
	}
	// Present may differ: marks of absent properties are not encoded.
	if diff := cmp.Diff(codec.Clone(p), q, eq, cmpopts.IgnoreFields(codec.Properties{}, "Present")); diff != "" {
		t.Fatalf("%s: encoding then decoding changes the packet:\n%s", what, diff)
	}
	if enc2, err := codec.Append(nil, q, v); err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("%s: the decoded packet encodes to % x, not % x (%v)", what, enc2, enc, err)
	}
	if pub, ok := p.(*codec.Publish); ok {
		hdr, err := pub.AppendHeader(nil, v)
		if err != nil || !bytes.Equal(append(hdr, pub.Payload...), enc) {
			t.Fatalf("%s: AppendHeader and the payload differ from Append: %v", what, err)
		}
	}
	if _, err := codec.Append(nil, p, codec.Version(3)); !errors.Is(err, codec.ErrUnsupportedVersion) {
		t.Fatalf("Append for version 3: %v", err)
	}
	helpers(t, q, enc, v)
}

// typedClone calls the Clone method of p's own type, which codec.Clone
// does not use for every type.
func typedClone(p codec.Packet) codec.Packet {
	switch p := p.(type) {
	case *codec.Puback:
		return p.Clone()
	case *codec.Pubrec:
		return p.Clone()
	case *codec.Pubrel:
		return p.Clone()
	case *codec.Pubcomp:
		return p.Clone()
	}
	return codec.Clone(p)
}

// helpers runs the functions around a decoded packet q (encoded as enc).
func helpers(t *testing.T, q codec.Packet, enc []byte, v codec.Version) {
	if q.String() == "" || q.Type().String() == "" {
		t.Fatal("empty String")
	}
	if diff := cmp.Diff(q, typedClone(q), eq); diff != "" {
		t.Fatalf("Clone differs:\n%s", diff)
	}
	for _, s := range badStrings[:11] {
		for _, err := range []error{codec.ValidateTopicName(s), codec.ValidateTopicFilter(s)} {
			var te *codec.TopicError
			if err != nil && (!errors.As(err, &te) || !errors.Is(err, codec.ErrInvalidTopic) || err.Error() == "") {
				t.Fatalf("topic %q: %T %v", s, err, err)
			}
		}
	}
	for _, role := range []codec.Role{codec.RoleAny, codec.RoleClient, codec.RoleServer} {
		if err := codec.CheckSender(q, role, v); err != nil {
			var ce *codec.Error
			if !errors.As(err, &ce) || !errors.Is(err, codec.ErrProtocol) {
				t.Fatalf("CheckSender from %v: %T %v", role, err, err)
			}
		}
		_ = role.String()
	}
	var topics, filters []string
	var codes []codec.ReasonCode
	switch q := q.(type) {
	case *codec.Connect:
		got, err := codec.ConnectVersion(enc)
		if err != nil || got != v {
			t.Fatalf("ConnectVersion of % x: %v, %v; want %v", enc, got, err, v)
		}
		if q.Will != nil {
			topics = append(topics, q.Will.Topic)
		}
	case *codec.Connack:
		codes = append(codes, q.ReasonCode, codec.ReasonFromReturnCode(q.ReasonCode))
	case *codec.Publish:
		topics = append(topics, q.Topic)
	case *codec.Subscribe:
		for _, s := range q.Subscriptions {
			filters = append(filters, s.Filter)
			_ = s.RetainHandling.String()
			_ = s.QoS.String()
		}
	case *codec.Unsubscribe:
		filters = q.Filters
	case *codec.Suback:
		codes = q.ReasonCodes
	case *codec.Unsuback:
		codes = q.ReasonCodes
	case *codec.Puback:
		codes = append(codes, q.ReasonCode)
	case *codec.Disconnect:
		codes = append(codes, q.ReasonCode)
	case *codec.Auth:
		codes = append(codes, q.ReasonCode)
	}
	for _, c := range codes {
		_ = codec.ReasonFromReturnCode(c)
		if c.Name(q.Type(), v) == "" || c.String() == "" {
			t.Fatalf("reason code %d has no name", c)
		}
		_ = c.Failed()
	}
	for _, tp := range topics {
		if tp != "" && codec.ValidateTopicName(tp) != nil {
			t.Fatalf("decoded topic name %q does not validate", tp)
		}
		for _, f := range filters {
			_ = codec.MatchTopic(f, tp)
		}
		_ = codec.MatchTopic("#", tp)
		_ = codec.MatchTopic("+/+", tp)
	}
	for _, f := range filters {
		if err := codec.ValidateTopicFilter(f); err != nil {
			t.Fatalf("decoded filter %q does not validate: %v", f, err)
		}
		_, _, _ = codec.ParseShared(f)
	}
}

// badStrings are strings the spec forbids or that stress the length rules.
var badStrings = []string{"\x00", "a\x00b", "\xff", "\xed\xa0\x80", "\xc0\x80", "a/#", "+", "a/+/b", "#/a", "a#", "",
	strings.Repeat("x", 65536)}

// corruption is one change of a field: k the kind, sub the variant, bad an
// index in badStrings, x a free byte (a reason code, a QoS, an index).
type corruption struct{ k, sub, bad, x int }

// apply sets one field of p, often to a forbidden value, and says what it
// did.
func (c corruption) apply(p codec.Packet) string {
	bad := badStrings[c.bad]
	props := propsOf(p)
	k := c.k
	switch k {
	case 0: // properties, on 3.1.1 too
		if props == nil {
			return "nothing"
		}
		switch c.sub {
		case 0:
			props.TopicAlias = 0
			props.Mark(codec.PropTopicAlias)
		case 1:
			props.PayloadFormat = 2
		case 2:
			props.MaximumQoS = 2
		case 3:
			props.ReceiveMaximum = 0
			props.Mark(codec.PropReceiveMaximum)
		case 4:
			props.RequestProblemInfo = 2
		case 5:
			props.SubscriptionIDs = append(props.SubscriptionIDs, uint32(c.x%3)*codec.MaxSubscriptionID)
		case 6:
			props.AuthData = []byte{1}
			props.AuthMethod = ""
		case 7:
			props.ResponseTopic = bad
		case 8:
			props.User = append(props.User, codec.UserProperty{Key: bad, Value: "v"})
		case 9:
			props.ReasonString = bad
		case 10:
			props.MaximumPacketSize = 0
			props.Mark(codec.PropMaximumPacketSize)
		default:
			props.Mark(codec.PropID(c.x % 0x30))
		}
		return "a property"
	case 1: // a reason code of another packet
		code := codec.ReasonCode(c.x)
		switch p := p.(type) {
		case *codec.Connack:
			p.ReasonCode = code
			p.SessionPresent = c.sub&1 == 1
		case *codec.Puback:
			p.ReasonCode = code
		case *codec.Pubrec:
			p.ReasonCode = code
		case *codec.Pubrel:
			p.ReasonCode = code
		case *codec.Pubcomp:
			p.ReasonCode = code
		case *codec.Suback:
			p.ReasonCodes = append(p.ReasonCodes, code)
		case *codec.Unsuback:
			p.ReasonCodes = append(p.ReasonCodes, code)
		case *codec.Disconnect:
			p.ReasonCode = code
		case *codec.Auth:
			p.ReasonCode = code
		}
		return "reason code"
	case 2: // packet identifier 0 and QoS
		q := codec.QoS(c.x & 3)
		switch p := p.(type) {
		case *codec.Publish:
			p.QoS, p.Dup = q, c.sub&1 == 1
			p.PacketID = uint16(c.sub >> 1 & 1)
		case *codec.Connect:
			if p.Will != nil {
				p.Will.QoS = q
			} else {
				p.Will = &codec.Will{QoS: q, Topic: "w"}
			}
		case *codec.Subscribe:
			p.Subscriptions[0].QoS = q
			p.PacketID = uint16(c.sub & 1)
		default:
			setID(p, 0)
		}
		return "QoS or packet identifier"
	case 3: // strings
		switch p := p.(type) {
		case *codec.Connect:
			switch c.sub & 3 {
			case 0:
				p.ClientID = bad
			case 1:
				p.Username, p.UsernameFlag = bad, true
			case 2:
				p.Password, p.UsernameFlag, p.Username, p.PasswordFlag = []byte(bad), false, "", true
			default:
				p.ClientID, p.CleanStart = "", false
			}
		case *codec.Publish:
			p.Topic = bad
		case *codec.Subscribe:
			p.Subscriptions[c.x%len(p.Subscriptions)].Filter = bad
		case *codec.Unsubscribe:
			p.Filters[c.x%len(p.Filters)] = bad
		}
		return "a string"
	case 4: // empty lists
		switch p := p.(type) {
		case *codec.Subscribe:
			p.Subscriptions = nil
		case *codec.Unsubscribe:
			p.Filters = nil
		case *codec.Suback:
			p.ReasonCodes = nil
		case *codec.Unsuback:
			p.ReasonCodes = nil
		}
		return "an empty list"
	case 5: // subscription options
		if s, ok := p.(*codec.Subscribe); ok {
			o := &s.Subscriptions[0]
			o.RetainHandling = codec.RetainHandling(c.x & 3)
			o.NoLocal = true
			if c.sub&1 == 1 {
				o.Filter = "$share/g/" + o.Filter
			}
		}
		return "subscription options"
	case 6: // a Will with forbidden parts
		if p, ok := p.(*codec.Connect); ok {
			p.Will = &codec.Will{Topic: bad, QoS: codec.QoS(c.x % 3), Retain: true}
			p.Will.Props.TopicAlias = uint16(c.sub & 1)
		}
		return "a Will"
	}
	return "nothing"
}

// propsOf returns the properties of p, or nil for PINGREQ and PINGRESP.
func propsOf(p codec.Packet) *codec.Properties {
	switch p := p.(type) {
	case *codec.Connect:
		if p.Will != nil && len(p.ClientID)%2 == 1 {
			return &p.Will.Props
		}
		return &p.Props
	case *codec.Connack:
		return &p.Props
	case *codec.Publish:
		return &p.Props
	case *codec.Puback:
		return &p.Props
	case *codec.Pubrec:
		return &p.Props
	case *codec.Pubrel:
		return &p.Props
	case *codec.Pubcomp:
		return &p.Props
	case *codec.Subscribe:
		return &p.Props
	case *codec.Suback:
		return &p.Props
	case *codec.Unsubscribe:
		return &p.Props
	case *codec.Unsuback:
		return &p.Props
	case *codec.Disconnect:
		return &p.Props
	case *codec.Auth:
		return &p.Props
	}
	return nil
}
