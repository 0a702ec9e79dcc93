package codec_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Generators of valid packets for property tests (here) and the
// differential test against paho.golang (paho_test.go). The tables of
// allowed properties and reason codes are written out from the
// specification, independently of the codec's own tables, so a generator
// that produces a packet the codec refuses points at a difference.

// genConfig narrows the generators for a peer that cannot represent every
// valid packet.
type genConfig struct {
	v codec.Version
	// nonEmpty: string and binary properties are never empty (paho.golang
	// takes an empty one for an absent one).
	nonEmpty bool
	// oneSubID: at most one Subscription Identifier in a PUBLISH
	// (paho.golang keeps one).
	oneSubID bool
}

var versions = []codec.Version{codec.V311, codec.V5}

// The allowed properties of each packet type (MQTT 5.0 section 2.2.2.2,
// Table 2-4) and of the Will Properties (3.1.3.2).
var (
	propsConnect = []codec.PropID{0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27}
	propsWill    = []codec.PropID{0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26}
	propsConnack = []codec.PropID{0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25,
		0x26, 0x27, 0x28, 0x29, 0x2A}
	propsPublish     = []codec.PropID{0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26}
	propsAck         = []codec.PropID{0x1F, 0x26} // PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK
	propsSubscribe   = []codec.PropID{0x0B, 0x26}
	propsUnsubscribe = []codec.PropID{0x26}
	propsDisconnect  = []codec.PropID{0x11, 0x1C, 0x1F, 0x26}
	propsAuth        = []codec.PropID{0x15, 0x16, 0x1F, 0x26}
)

// The reason codes of each MQTT 5.0 packet type (Tables 3-1, 3-4 to 3-7,
// 3-8, 3-9, 3-10, 3-11 and 3-13 of MQTT 5.0), and the 3.1.1 return codes.
var (
	reasonsConnack = []codec.ReasonCode{0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
		0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}
	reasonsPuback     = []codec.ReasonCode{0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99} // PUBACK, PUBREC
	reasonsPubrel     = []codec.ReasonCode{0x00, 0x92}                                           // PUBREL, PUBCOMP
	reasonsSuback     = []codec.ReasonCode{0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2}
	reasonsUnsuback   = []codec.ReasonCode{0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91}
	reasonsDisconnect = []codec.ReasonCode{0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E,
		0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2}
	reasonsAuth       = []codec.ReasonCode{0x00, 0x18, 0x19}
	returnCodes311    = []codec.ReasonCode{0, 1, 2, 3, 4, 5}
	subackReturns311  = []codec.ReasonCode{0x00, 0x01, 0x02, 0x80}
	topicLevels       = []string{"a", "b", "sport", "tennis", "$SYS", "é", "\U0002A6D4", "", "x y", "ab$c", "\u0001"}
	filterLevels      = []string{"a", "b", "+", "", "é", "sport", "$SYS"}
	shareGroups       = []string{"g", "grp-1", "é"}
	stringRunes       = rapid.RuneFrom([]rune{'a', 'b', 'Z', '0', '-', ' ', '/', '+', '#', '$', 'é', '€', '\u0001', '\u007f', '\uFFFF', '\U0002A6D4'}, unicode.Greek)
	allPacketTypesV5  = []codec.Type{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	allPacketTypes311 = allPacketTypesV5[:14]
)

func genString(min int) *rapid.Generator[string] { return rapid.StringOfN(stringRunes, min, 12, -1) }

func genBytes(min int) *rapid.Generator[[]byte] { return rapid.SliceOfN(rapid.Byte(), min, 16) }

// genTopic generates a valid topic name: one to four levels, no wildcards.
func genTopic() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		s := strings.Join(rapid.SliceOfN(rapid.SampledFrom(topicLevels), 1, 4).Draw(t, "levels"), "/")
		if s == "" {
			s = "t"
		}
		return s
	})
}

// genFilter generates a valid topic filter, shared or not; shared reports
// which.
func genFilter(t *rapid.T) (filter string, shared bool) {
	levels := rapid.SliceOfN(rapid.SampledFrom(filterLevels), 0, 4).Draw(t, "filter levels")
	if rapid.Bool().Draw(t, "multi-level wildcard") {
		levels = append(levels, "#")
	}
	f := strings.Join(levels, "/")
	if f == "" {
		f = "#"
	}
	if rapid.IntRange(0, 3).Draw(t, "shared") == 0 {
		return "$share/" + rapid.SampledFrom(shareGroups).Draw(t, "group") + "/" + f, true
	}
	return f, false
}

// genProps draws a subset of ids with valid values. Every property drawn is
// marked present, as Decode marks it.
func genProps(t *rapid.T, cfg genConfig, ids []codec.PropID, maxSubIDs int) codec.Properties {
	var p codec.Properties
	if cfg.v != codec.V5 {
		return p
	}
	min := 0
	if cfg.nonEmpty {
		min = 1
	}
	for _, id := range ids {
		if !rapid.Bool().Draw(t, "has "+id.String()) {
			continue
		}
		p.Mark(id)
		switch id {
		case codec.PropPayloadFormatIndicator:
			p.PayloadFormat = rapid.ByteRange(0, 1).Draw(t, "payload format")
		case codec.PropMessageExpiryInterval:
			p.MessageExpiry = rapid.Uint32().Draw(t, "message expiry")
		case codec.PropContentType:
			p.ContentType = genString(min).Draw(t, "content type")
		case codec.PropResponseTopic:
			p.ResponseTopic = genTopic().Draw(t, "response topic")
		case codec.PropCorrelationData:
			p.CorrelationData = genBytes(min).Draw(t, "correlation data")
		case codec.PropSubscriptionIdentifier:
			p.SubscriptionIDs = rapid.SliceOfN(rapid.Uint32Range(1, codec.MaxSubscriptionID), 1, maxSubIDs).Draw(t, "subscription ids")
		case codec.PropSessionExpiryInterval:
			p.SessionExpiry = rapid.Uint32().Draw(t, "session expiry")
		case codec.PropAssignedClientIdentifier:
			p.AssignedClientID = genString(min).Draw(t, "assigned client id")
		case codec.PropServerKeepAlive:
			p.ServerKeepAlive = rapid.Uint16().Draw(t, "server keep alive")
		case codec.PropAuthenticationMethod:
			p.AuthMethod = genString(min).Draw(t, "auth method")
		case codec.PropAuthenticationData:
			p.AuthData = genBytes(min).Draw(t, "auth data")
		case codec.PropRequestProblemInformation:
			p.RequestProblemInfo = rapid.ByteRange(0, 1).Draw(t, "request problem info")
		case codec.PropWillDelayInterval:
			p.WillDelay = rapid.Uint32().Draw(t, "will delay")
		case codec.PropRequestResponseInformation:
			p.RequestResponseInfo = rapid.ByteRange(0, 1).Draw(t, "request response info")
		case codec.PropResponseInformation:
			p.ResponseInfo = genString(min).Draw(t, "response info")
		case codec.PropServerReference:
			p.ServerReference = genString(min).Draw(t, "server reference")
		case codec.PropReasonString:
			p.ReasonString = genString(min).Draw(t, "reason string")
		case codec.PropReceiveMaximum:
			p.ReceiveMaximum = rapid.Uint16Min(1).Draw(t, "receive maximum")
		case codec.PropTopicAliasMaximum:
			p.TopicAliasMaximum = rapid.Uint16().Draw(t, "topic alias maximum")
		case codec.PropTopicAlias:
			p.TopicAlias = rapid.Uint16Min(1).Draw(t, "topic alias")
		case codec.PropMaximumQoS:
			p.MaximumQoS = rapid.ByteRange(0, 1).Draw(t, "maximum qos")
		case codec.PropRetainAvailable:
			p.RetainAvailable = rapid.ByteRange(0, 1).Draw(t, "retain available")
		case codec.PropUserProperty:
			n := rapid.IntRange(1, 3).Draw(t, "user properties")
			for range n {
				p.User = append(p.User, codec.UserProperty{Key: genString(0).Draw(t, "key"), Value: genString(0).Draw(t, "value")})
			}
		case codec.PropMaximumPacketSize:
			p.MaximumPacketSize = rapid.Uint32Min(1).Draw(t, "maximum packet size")
		case codec.PropWildcardSubscriptionAvailable:
			p.WildcardSubAvailable = rapid.ByteRange(0, 1).Draw(t, "wildcard available")
		case codec.PropSubscriptionIdentifierAvailable:
			p.SubIDAvailable = rapid.ByteRange(0, 1).Draw(t, "subscription ids available")
		case codec.PropSharedSubscriptionAvailable:
			p.SharedSubAvailable = rapid.ByteRange(0, 1).Draw(t, "shared available")
		default:
			t.Fatalf("no generator for %v", id)
		}
	}
	return p
}

// withAuthMethod adds an Authentication Method to p if it has none.
func withAuthMethod(p *codec.Properties) {
	if !p.Has(codec.PropAuthenticationMethod) {
		p.AuthMethod = "m"
		p.Mark(codec.PropAuthenticationMethod)
	}
}

func genPacketID(t *rapid.T) uint16 { return rapid.Uint16Min(1).Draw(t, "packet id") }

func genReason(t *rapid.T, codes []codec.ReasonCode) codec.ReasonCode {
	return rapid.SampledFrom(codes).Draw(t, "reason code")
}

// genPacket generates a valid packet of any type for cfg.v.
func genPacket(cfg genConfig) *rapid.Generator[codec.Packet] {
	return rapid.Custom(func(t *rapid.T) codec.Packet {
		types := allPacketTypesV5
		if cfg.v == codec.V311 {
			types = allPacketTypes311
		}
		return genPacketOf(t, cfg, rapid.SampledFrom(types).Draw(t, "type"))
	})
}

// genPacketOf generates a valid packet of type typ.
func genPacketOf(t *rapid.T, cfg genConfig, typ codec.Type) codec.Packet {
	v5 := cfg.v == codec.V5
	switch typ {
	case codec.TypeConnect:
		p := &codec.Connect{
			CleanStart: rapid.Bool().Draw(t, "clean start"),
			KeepAlive:  rapid.Uint16().Draw(t, "keep alive"),
			ClientID:   genString(0).Draw(t, "client id"),
			Props:      genProps(t, cfg, propsConnect, 0),
		}
		if !v5 && p.ClientID == "" {
			p.CleanStart = true // an empty client identifier needs it on 3.1.1 [§3.1.3.1]
		}
		if p.Props.Has(codec.PropAuthenticationData) {
			withAuthMethod(&p.Props) // [§3.1.2.11.10]
		}
		if rapid.Bool().Draw(t, "will") {
			p.Will = &codec.Will{
				QoS:     codec.QoS(rapid.IntRange(0, 2).Draw(t, "will qos")),
				Retain:  rapid.Bool().Draw(t, "will retain"),
				Topic:   genTopic().Draw(t, "will topic"),
				Payload: genBytes(0).Draw(t, "will payload"),
				Props:   genProps(t, cfg, propsWill, 0),
			}
		}
		if rapid.Bool().Draw(t, "user name") {
			p.UsernameFlag, p.Username = true, genString(0).Draw(t, "username")
		}
		if (v5 || p.UsernameFlag) && rapid.Bool().Draw(t, "password") {
			p.PasswordFlag, p.Password = true, genBytes(0).Draw(t, "password")
		}
		return p
	case codec.TypeConnack:
		p := &codec.Connack{Props: genProps(t, cfg, propsConnack, 0)}
		if v5 {
			p.ReasonCode = genReason(t, reasonsConnack)
		} else {
			p.ReasonCode = genReason(t, returnCodes311)
		}
		p.SessionPresent = p.ReasonCode == 0 && rapid.Bool().Draw(t, "session present")
		return p
	case codec.TypePublish:
		p := &codec.Publish{
			QoS:     codec.QoS(rapid.IntRange(0, 2).Draw(t, "qos")),
			Retain:  rapid.Bool().Draw(t, "retain"),
			Topic:   genTopic().Draw(t, "topic"),
			Payload: genBytes(0).Draw(t, "payload"),
		}
		maxIDs := 3
		if cfg.oneSubID {
			maxIDs = 1
		}
		p.Props = genProps(t, cfg, propsPublish, maxIDs)
		if p.QoS > 0 {
			p.PacketID = genPacketID(t)
			p.Dup = rapid.Bool().Draw(t, "dup")
		}
		if p.Props.Has(codec.PropTopicAlias) && rapid.Bool().Draw(t, "alias only") {
			p.Topic = "" // a Topic Alias stands for the name [§3.3.2.3.4]
		}
		return p
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		id := genPacketID(t)
		var rc codec.ReasonCode
		props := genProps(t, cfg, propsAck, 0)
		if v5 {
			if typ == codec.TypePuback || typ == codec.TypePubrec {
				rc = genReason(t, reasonsPuback)
			} else {
				rc = genReason(t, reasonsPubrel)
			}
		}
		switch typ {
		case codec.TypePuback:
			return &codec.Puback{PacketID: id, ReasonCode: rc, Props: props}
		case codec.TypePubrec:
			return &codec.Pubrec{PacketID: id, ReasonCode: rc, Props: props}
		case codec.TypePubrel:
			return &codec.Pubrel{PacketID: id, ReasonCode: rc, Props: props}
		}
		return &codec.Pubcomp{PacketID: id, ReasonCode: rc, Props: props}
	case codec.TypeSubscribe:
		p := &codec.Subscribe{PacketID: genPacketID(t), Props: genProps(t, cfg, propsSubscribe, 1)}
		n := rapid.IntRange(1, 4).Draw(t, "subscriptions")
		for range n {
			f, shared := genFilter(t)
			s := codec.Subscription{Filter: f, QoS: codec.QoS(rapid.IntRange(0, 2).Draw(t, "max qos"))}
			if v5 {
				s.NoLocal = !shared && rapid.Bool().Draw(t, "no local") // not on a shared subscription [§3.8.3.1]
				s.RetainAsPublished = rapid.Bool().Draw(t, "retain as published")
				s.RetainHandling = codec.RetainHandling(rapid.IntRange(0, 2).Draw(t, "retain handling"))
			}
			p.Subscriptions = append(p.Subscriptions, s)
		}
		return p
	case codec.TypeSuback:
		p := &codec.Suback{PacketID: genPacketID(t), Props: genProps(t, cfg, propsAck, 0)}
		codes := subackReturns311
		if v5 {
			codes = reasonsSuback
		}
		p.ReasonCodes = rapid.SliceOfN(rapid.SampledFrom(codes), 1, 5).Draw(t, "codes")
		return p
	case codec.TypeUnsubscribe:
		p := &codec.Unsubscribe{PacketID: genPacketID(t), Props: genProps(t, cfg, propsUnsubscribe, 0)}
		n := rapid.IntRange(1, 4).Draw(t, "filters")
		for range n {
			f, _ := genFilter(t)
			p.Filters = append(p.Filters, f)
		}
		return p
	case codec.TypeUnsuback:
		p := &codec.Unsuback{PacketID: genPacketID(t), Props: genProps(t, cfg, propsAck, 0)}
		if v5 {
			p.ReasonCodes = rapid.SliceOfN(rapid.SampledFrom(reasonsUnsuback), 1, 5).Draw(t, "codes")
		}
		return p
	case codec.TypePingreq:
		return &codec.Pingreq{}
	case codec.TypePingresp:
		return &codec.Pingresp{}
	case codec.TypeDisconnect:
		p := &codec.Disconnect{Props: genProps(t, cfg, propsDisconnect, 0)}
		if v5 {
			p.ReasonCode = genReason(t, reasonsDisconnect)
		}
		return p
	case codec.TypeAuth:
		p := &codec.Auth{ReasonCode: genReason(t, reasonsAuth), Props: genProps(t, cfg, propsAuth, 0)}
		if !p.Props.Empty() || p.ReasonCode != 0 {
			withAuthMethod(&p.Props) // [§3.15.2.2.2]
		}
		return p
	}
	t.Fatalf("no generator for type %v", typ)
	return nil
}

// TestPropertyRoundTrip: for every valid packet of both versions,
// Decode(Append(p)) gives p back, Size is exact, a Decoder agrees, and a
// Clone shares no memory with the decoded buffer.
func TestPropertyRoundTrip(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				p := genPacket(genConfig{v: v}).Draw(t, "packet")
				enc, err := codec.Append(nil, p, v)
				if err != nil {
					t.Fatalf("Append(%v): %v", p, err)
				}
				if size := p.Size(v); size != len(enc) {
					t.Fatalf("Size = %d, Append wrote %d", size, len(enc))
				}
				q, n, err := codec.Decode(enc, v)
				if err != nil || n != len(enc) {
					t.Fatalf("Decode(% x) of %v: n=%d, %v", enc, p, n, err)
				}
				if diff := cmp.Diff(p, q, pktCmp); diff != "" {
					t.Fatalf("round trip changes the packet (-sent +decoded):\n%s", diff)
				}
				d := codec.Decoder{Version: v}
				r, _, err := d.Decode(enc)
				if err != nil {
					t.Fatalf("Decoder: %v", err)
				}
				if diff := cmp.Diff(p, r, pktCmp); diff != "" {
					t.Fatalf("Decoder differs (-sent +decoded):\n%s", diff)
				}
				c := codec.Clone(q)
				for i := range enc {
					enc[i] = 0xEE // the decoded packet's memory, not the clone's
				}
				if diff := cmp.Diff(p, c, pktCmp); diff != "" {
					t.Fatalf("Clone shares memory with the decoded buffer (-sent +clone):\n%s", diff)
				}
				if s := q.String(); s == "" {
					t.Fatalf("empty String")
				}
			})
		})
	}
}

// TestPropertyDecodeArbitrary: for any bytes, Decode either fails with
// ErrIncomplete or an *Error, or returns a packet that Append accepts and
// whose encoding decodes to the same packet. Half the inputs are valid
// encodings with a few bytes changed, which reach far deeper than random
// bytes do.
func TestPropertyDecodeArbitrary(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.SampledFrom(versions).Draw(t, "version")
		var b []byte
		if rapid.Bool().Draw(t, "mutate a valid packet") {
			p := genPacket(genConfig{v: v}).Draw(t, "packet")
			enc, err := codec.Append(nil, p, v)
			if err != nil {
				t.Fatalf("Append(%v): %v", p, err)
			}
			b = mutate(t, enc)
		} else {
			b = rapid.SliceOfN(rapid.Byte(), 0, 48).Draw(t, "bytes")
		}
		checkDecodeReencode(t, b, v)
	})
}

// mutate changes one to three bytes of b: overwrite, insert, delete or
// truncate.
func mutate(t *rapid.T, b []byte) []byte {
	b = append([]byte(nil), b...)
	for range rapid.IntRange(1, 3).Draw(t, "mutations") {
		if len(b) == 0 {
			break
		}
		i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
		switch rapid.IntRange(0, 3).Draw(t, "mutation") {
		case 0:
			b[i] = rapid.Byte().Draw(t, "byte")
		case 1:
			b = append(b[:i], append([]byte{rapid.Byte().Draw(t, "insert")}, b[i:]...)...)
		case 2:
			b = append(b[:i], b[i+1:]...)
		case 3:
			b = b[:i]
		}
	}
	return b
}

// checkDecodeReencode is the property of TestPropertyDecodeArbitrary for
// one input.
func checkDecodeReencode(t *rapid.T, b []byte, v codec.Version) {
	p, n, err := codec.Decode(b, v)
	if err != nil {
		var e *codec.Error
		if err != codec.ErrIncomplete && !errors.As(err, &e) {
			t.Fatalf("Decode(% x): untyped error %T %v", b, err, err)
		}
		return
	}
	if n <= 0 || n > len(b) {
		t.Fatalf("Decode(% x) used %d bytes", b, n)
	}
	enc, err := codec.Append(nil, p, v)
	if err != nil {
		t.Fatalf("Decode(% x) gives %v, which Append refuses: %v", b, p, err)
	}
	q, m, err := codec.Decode(enc, v)
	if err != nil || m != len(enc) {
		t.Fatalf("re-encoding % x of %v: n=%d, %v", enc, p, m, err)
	}
	if diff := cmp.Diff(p, q, pktCmp); diff != "" {
		t.Fatalf("decoded % x, re-encoded % x: fields differ (-first +second):\n%s", b, enc, diff)
	}
}

// TestPropertyStream: a stream of valid packets read by one Reader and one
// reused Decoder gives back every packet in order, though the Decoder
// reuses its values (nothing of an earlier packet leaks into a later one).
func TestPropertyStream(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.SampledFrom(versions).Draw(t, "version")
		pkts := rapid.SliceOfN(genPacket(genConfig{v: v}), 1, 8).Draw(t, "packets")
		var stream []byte
		for _, p := range pkts {
			var err error
			if stream, err = codec.Append(stream, p, v); err != nil {
				t.Fatalf("Append(%v): %v", p, err)
			}
		}
		r := codec.NewReader(bytes.NewReader(stream), 0)
		defer r.Release()
		d := codec.Decoder{Version: v}
		for i, p := range pkts {
			_, b, err := r.Next()
			if err != nil {
				t.Fatalf("packet %d: Reader: %v", i, err)
			}
			q, n, err := d.Decode(b)
			if err != nil || n != len(b) {
				t.Fatalf("packet %d: Decoder: n=%d of %d, %v", i, n, len(b), err)
			}
			if diff := cmp.Diff(p, q, pktCmp); diff != "" {
				t.Fatalf("packet %d differs after reuse (-sent +decoded):\n%s", i, diff)
			}
		}
		if _, _, err := r.Next(); err != io.EOF {
			t.Fatalf("after the last packet: %v, want io.EOF", err)
		}
	})
}
