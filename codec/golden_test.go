package codec_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zmqtt/zmqtt-go/codec"
)

// The golden packets of testdata/golden: hand-written bytes with a comment
// per field (see testdata/golden/README.md). Each one decodes to the value
// written out below and encodes back to the same bytes.

const goldenDir = "../testdata/golden"

// goldenPacket is one packet of a golden file.
type goldenPacket struct {
	name string
	line int // line of the "== name" header
	b    []byte
}

// loadGolden parses a golden file.
func loadGolden(t *testing.T, file string) []goldenPacket {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenPacket
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "=="):
			out = append(out, goldenPacket{name: strings.TrimSpace(line[2:]), line: n})
			continue
		}
		if len(out) == 0 {
			t.Fatalf("%s:%d: bytes before the first packet name", file, n)
		}
		cur := &out[len(out)-1]
		if rest, ok := strings.CutPrefix(line, "fill "); ok {
			fs := strings.Fields(rest)
			if len(fs) != 2 {
				t.Fatalf("%s:%d: want `fill XX N`", file, n)
			}
			c, err1 := strconv.ParseUint(fs[0], 16, 8)
			k, err2 := strconv.Atoi(fs[1])
			if err1 != nil || err2 != nil || k < 0 {
				t.Fatalf("%s:%d: bad fill %q", file, n, rest)
			}
			cur.b = append(cur.b, bytes.Repeat([]byte{byte(c)}, k)...)
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
		if err != nil {
			t.Fatalf("%s:%d: %v", file, n, err)
		}
		cur.b = append(cur.b, b...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// present builds a Present set.
func present(ids ...codec.PropID) codec.PropSet {
	var s codec.PropSet
	for _, id := range ids {
		s |= 1 << id
	}
	return s
}

// fill is n bytes of '.', the payload of the Remaining Length examples.
func fill(n int) []byte { return bytes.Repeat([]byte{'.'}, n) }

var goldenV311 = map[string]codec.Packet{
	"connect-spec-example": &codec.Connect{
		CleanStart: true, KeepAlive: 10, ClientID: "zmqtt",
		Will:         &codec.Will{QoS: 1, Topic: "bye", Payload: []byte("gone")},
		UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("pass"),
	},
	"connect-minimal":       &codec.Connect{CleanStart: true, KeepAlive: 60},
	"connect-username-only": &codec.Connect{ClientID: "c1", UsernameFlag: true, Username: "u"},
	"connect-empty-username-password": &codec.Connect{
		CleanStart: true, KeepAlive: 10, ClientID: "e", UsernameFlag: true, PasswordFlag: true,
	},
	"connect-will-qos2-retain": &codec.Connect{
		CleanStart: true, KeepAlive: 30, ClientID: "d",
		Will: &codec.Will{QoS: 2, Retain: true, Topic: "a/b"},
	},
	"connack-session-present":           &codec.Connack{SessionPresent: true},
	"connack-not-authorized":            &codec.Connack{ReasonCode: codec.ReturnNotAuthorized},
	"publish-qos0":                      &codec.Publish{Topic: "a/b", Payload: []byte("hi")},
	"publish-qos1-dup":                  &codec.Publish{Dup: true, QoS: 1, Topic: "a/b", PacketID: 1, Payload: []byte("x")},
	"publish-qos2-retain-empty-payload": &codec.Publish{QoS: 2, Retain: true, Topic: "t", PacketID: 65535},
	"publish-utf8-spec-example":         &codec.Publish{Topic: "A\U0002A6D4", Payload: []byte("!")},
	"publish-remaining-length-127":      &codec.Publish{Topic: "a", Payload: fill(124)},
	"publish-remaining-length-128":      &codec.Publish{Topic: "a", Payload: fill(125)},
	"publish-remaining-length-16383":    &codec.Publish{Topic: "a", Payload: fill(16380)},
	"publish-remaining-length-16384":    &codec.Publish{Topic: "a", Payload: fill(16381)},
	"publish-remaining-length-2097151":  &codec.Publish{Topic: "a", Payload: fill(2097148)},
	"publish-remaining-length-2097152":  &codec.Publish{Topic: "a", Payload: fill(2097149)},
	"puback":                            &codec.Puback{PacketID: 1},
	"pubrec":                            &codec.Pubrec{PacketID: 0x1234},
	"pubrel":                            &codec.Pubrel{PacketID: 0x1234},
	"pubcomp":                           &codec.Pubcomp{PacketID: 65535},
	"subscribe-spec-example": &codec.Subscribe{PacketID: 10, Subscriptions: []codec.Subscription{
		{Filter: "a/b", QoS: 1}, {Filter: "c/d", QoS: 2},
	}},
	"subscribe-wildcards": &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{
		{Filter: "#", QoS: 0}, {Filter: "+/x", QoS: 1},
	}},
	"suback-spec-example":      &codec.Suback{PacketID: 10, ReasonCodes: []codec.ReasonCode{0, 2, 0x80}},
	"unsubscribe-spec-example": &codec.Unsubscribe{PacketID: 10, Filters: []string{"a/b", "c/d"}},
	"unsuback":                 &codec.Unsuback{PacketID: 10},
	"pingreq":                  &codec.Pingreq{},
	"pingresp":                 &codec.Pingresp{},
	"disconnect":               &codec.Disconnect{},
}

var goldenV5 = map[string]codec.Packet{
	"connect-spec-example": &codec.Connect{
		CleanStart: true, KeepAlive: 10, ClientID: "zmqtt",
		Props: codec.Properties{Present: present(codec.PropSessionExpiryInterval), SessionExpiry: 10},
		Will: &codec.Will{QoS: 1, Topic: "bye", Payload: []byte("gone"),
			Props: codec.Properties{Present: present(codec.PropWillDelayInterval), WillDelay: 30}},
		UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("pass"),
	},
	"connect-all-properties": &codec.Connect{
		CleanStart: true, KeepAlive: 65535, ClientID: "all",
		Props: codec.Properties{
			Present: present(codec.PropSessionExpiryInterval, codec.PropAuthenticationMethod, codec.PropAuthenticationData,
				codec.PropRequestProblemInformation, codec.PropRequestResponseInformation, codec.PropReceiveMaximum,
				codec.PropTopicAliasMaximum, codec.PropUserProperty, codec.PropMaximumPacketSize),
			SessionExpiry: 3600, AuthMethod: "SCRAM", AuthData: []byte{1, 2, 3}, RequestProblemInfo: 0,
			RequestResponseInfo: 1, ReceiveMaximum: 20, TopicAliasMaximum: 10,
			User:              []codec.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: "v2"}},
			MaximumPacketSize: 65535,
		},
		Will: &codec.Will{QoS: 2, Retain: true, Topic: "will/all", Payload: []byte{1, 2, 3},
			Props: codec.Properties{
				Present: present(codec.PropPayloadFormatIndicator, codec.PropMessageExpiryInterval, codec.PropContentType,
					codec.PropResponseTopic, codec.PropCorrelationData, codec.PropWillDelayInterval, codec.PropUserProperty),
				PayloadFormat: 1, MessageExpiry: 60, ContentType: "text/plain", ResponseTopic: "r/all",
				CorrelationData: []byte{0xab, 0xcd}, WillDelay: 5, User: []codec.UserProperty{{Key: "w", Value: "1"}},
			}},
		UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte{0, 0xff},
	},
	"connect-password-without-username": &codec.Connect{PasswordFlag: true, Password: []byte("sec")},
	"connect-username-only":             &codec.Connect{KeepAlive: 60, ClientID: "c2", UsernameFlag: true, Username: "u"},
	"connack-success":                   &codec.Connack{},
	"connack-all-properties": &codec.Connack{SessionPresent: true, Props: codec.Properties{
		Present: present(codec.PropSessionExpiryInterval, codec.PropAssignedClientIdentifier, codec.PropServerKeepAlive,
			codec.PropAuthenticationMethod, codec.PropAuthenticationData, codec.PropResponseInformation,
			codec.PropServerReference, codec.PropReasonString, codec.PropReceiveMaximum, codec.PropTopicAliasMaximum,
			codec.PropMaximumQoS, codec.PropRetainAvailable, codec.PropUserProperty, codec.PropMaximumPacketSize,
			codec.PropWildcardSubscriptionAvailable, codec.PropSubscriptionIdentifierAvailable,
			codec.PropSharedSubscriptionAvailable),
		SessionExpiry: 0, AssignedClientID: "cl-1", ServerKeepAlive: 60, AuthMethod: "SCRAM", AuthData: []byte{0x0a, 0x0b},
		ResponseInfo: "resp", ServerReference: "srv", ReasonString: "ok", ReceiveMaximum: 10, TopicAliasMaximum: 5,
		MaximumQoS: 1, RetainAvailable: 0, User: []codec.UserProperty{{Key: "a", Value: "b"}},
		MaximumPacketSize: 1 << 20, WildcardSubAvailable: 0, SubIDAvailable: 0, SharedSubAvailable: 1,
	}},
	"connack-not-authorized": &codec.Connack{ReasonCode: codec.ReasonNotAuthorized,
		Props: codec.Properties{Present: present(codec.PropReasonString), ReasonString: "no"}},
	"publish-qos0": &codec.Publish{Topic: "a/b", Payload: []byte("hi")},
	"publish-qos1-properties": &codec.Publish{QoS: 1, Topic: "a/b", PacketID: 7, Payload: []byte("{}"),
		Props: codec.Properties{
			Present: present(codec.PropPayloadFormatIndicator, codec.PropMessageExpiryInterval, codec.PropContentType,
				codec.PropResponseTopic, codec.PropCorrelationData, codec.PropSubscriptionIdentifier,
				codec.PropTopicAlias, codec.PropUserProperty),
			PayloadFormat: 1, MessageExpiry: 0, ContentType: "json", ResponseTopic: "rep/1",
			CorrelationData: []byte{0xde, 0xad, 0xbe, 0xef}, SubscriptionIDs: []uint32{1, 268435455},
			TopicAlias: 1, User: []codec.UserProperty{{Key: "k", Value: "v"}},
		}},
	"publish-qos2-dup-retain": &codec.Publish{Dup: true, QoS: 2, Retain: true, Topic: "t", PacketID: 2, Payload: []byte("z")},
	"publish-topic-alias-empty-topic": &codec.Publish{Payload: []byte("p"),
		Props: codec.Properties{Present: present(codec.PropTopicAlias), TopicAlias: 5}},
	"publish-utf8-spec-example": &codec.Publish{Topic: "A\U0002A6D4", Payload: []byte("!")},
	"puback-short":              &codec.Puback{PacketID: 1},
	"puback-reason-only":        &codec.Puback{PacketID: 1, ReasonCode: codec.ReasonNoMatchingSubscribers},
	"puback-reason-properties": &codec.Puback{PacketID: 2, ReasonCode: codec.ReasonNotAuthorized, Props: codec.Properties{
		Present: present(codec.PropReasonString, codec.PropUserProperty), ReasonString: "denied",
		User: []codec.UserProperty{{Key: "x", Value: "y"}},
	}},
	"pubrec-failure-short": &codec.Pubrec{PacketID: 3, ReasonCode: codec.ReasonUnspecifiedError},
	"pubrec-success-properties": &codec.Pubrec{PacketID: 4,
		Props: codec.Properties{Present: present(codec.PropReasonString), ReasonString: "yes"}},
	"pubrel-short":     &codec.Pubrel{PacketID: 6},
	"pubrel-not-found": &codec.Pubrel{PacketID: 5, ReasonCode: codec.ReasonPacketIdentifierNotFound},
	"pubcomp-short":    &codec.Pubcomp{PacketID: 8},
	"pubcomp-not-found-properties": &codec.Pubcomp{PacketID: 7, ReasonCode: codec.ReasonPacketIdentifierNotFound,
		Props: codec.Properties{Present: present(codec.PropReasonString), ReasonString: "gone"}},
	"subscribe-options": &codec.Subscribe{PacketID: 11,
		Props: codec.Properties{Present: present(codec.PropSubscriptionIdentifier, codec.PropUserProperty),
			SubscriptionIDs: []uint32{128}, User: []codec.UserProperty{{Key: "s", Value: "t"}}},
		Subscriptions: []codec.Subscription{
			{Filter: "a/b", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: codec.DoNotSendRetained},
			{Filter: "c/#", QoS: 2, RetainHandling: codec.SendRetainedIfNew},
			{Filter: "$share/g/x/+", RetainAsPublished: true},
		}},
	"suback-codes": &codec.Suback{PacketID: 11,
		Props:       codec.Properties{Present: present(codec.PropReasonString), ReasonString: "ok"},
		ReasonCodes: []codec.ReasonCode{0x00, 0x01, 0x02, 0x80, 0x8f, 0x9e, 0xa1, 0xa2}},
	"suback-minimal": &codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{codec.ReasonGrantedQoS1}},
	"unsubscribe-properties": &codec.Unsubscribe{PacketID: 12,
		Props:   codec.Properties{Present: present(codec.PropUserProperty), User: []codec.UserProperty{{Key: "k", Value: "v"}}},
		Filters: []string{"a/b", "$share/g/#"}},
	"unsuback-codes":         &codec.Unsuback{PacketID: 12, ReasonCodes: []codec.ReasonCode{0x00, 0x11, 0x87, 0x8f}},
	"pingreq":                &codec.Pingreq{},
	"pingresp":               &codec.Pingresp{},
	"disconnect-short":       &codec.Disconnect{},
	"disconnect-reason-only": &codec.Disconnect{ReasonCode: codec.ReasonDisconnectWithWill},
	"disconnect-properties": &codec.Disconnect{Props: codec.Properties{
		Present:       present(codec.PropSessionExpiryInterval, codec.PropReasonString, codec.PropUserProperty),
		SessionExpiry: 0, ReasonString: "bye", User: []codec.UserProperty{{Key: "k", Value: "v"}},
	}},
	"disconnect-server-moved": &codec.Disconnect{ReasonCode: codec.ReasonServerMoved, Props: codec.Properties{
		Present: present(codec.PropServerReference, codec.PropReasonString), ServerReference: "host:1883", ReasonString: "moved",
	}},
	"auth-short": &codec.Auth{},
	"auth-continue": &codec.Auth{ReasonCode: codec.ReasonContinueAuthentication, Props: codec.Properties{
		Present: present(codec.PropAuthenticationMethod, codec.PropAuthenticationData), AuthMethod: "SCRAM", AuthData: []byte{1, 2, 3, 4},
	}},
	"auth-reauthenticate": &codec.Auth{ReasonCode: codec.ReasonReauthenticate, Props: codec.Properties{
		Present:    present(codec.PropAuthenticationMethod, codec.PropReasonString, codec.PropUserProperty),
		AuthMethod: "SCRAM", ReasonString: "re", User: []codec.UserProperty{{Key: "a", Value: "b"}},
	}},
	"auth-success-method": &codec.Auth{Props: codec.Properties{Present: present(codec.PropAuthenticationMethod), AuthMethod: "SCRAM"}},
}

// goldenHeaders are the header-only entries: the fixed header each one must
// parse to.
var goldenHeaders = map[string]codec.Header{
	"header/publish-remaining-length-268435455": {Type: codec.TypePublish, Remaining: codec.MaxRemainingLength, Len: 5},
}

// TestGoldenV311 decodes every packet of v311.hex to its value in goldenV311
// and encodes that value back to the same bytes, so the encoder is held to
// the layout rules of MQTT 3.1.1 byte for byte: the reserved flag values of
// the fixed header, 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE and 0000
// elsewhere [MQTT-2.2.2-1] (3.1.1); no packet identifier in a QoS 0 PUBLISH
// [MQTT-2.3.1-5] (3.1.1); the CONNECT payload in the order client
// identifier, will topic, will message, user name, password
// [MQTT-3.1.3-1] (3.1.1), the client identifier always present and first
// (empty in connect-minimal) [MQTT-3.1.3-3] (3.1.1); will topic and message
// present with the will flag [MQTT-3.1.2-9] (3.1.1), and without it no will
// fields, will QoS 0 and will retain 0 [MQTT-3.1.2-11] (3.1.1)
// [MQTT-3.1.2-13] (3.1.1) [MQTT-3.1.2-15] (3.1.1); a user name exactly when
// its flag is set [MQTT-3.1.2-18] (3.1.1) [MQTT-3.1.2-19] (3.1.1), and a
// password exactly when its flag is set [MQTT-3.1.2-20] (3.1.1)
// [MQTT-3.1.2-21] (3.1.1).
func TestGoldenV311(t *testing.T) { testGolden(t, "v311.hex", codec.V311, goldenV311, 14) }

// TestGoldenV5 does the same for MQTT 5.0 and v5.hex: the reserved flag
// values [MQTT-2.1.3-1]; a Property Length of 0 when there are no properties
// (publish-qos0, connect-username-only) [MQTT-2.2.2-1] (5.0); the protocol
// name "MQTT" [MQTT-3.1.2-1] (5.0); the CONNECT payload in the order client
// identifier, will properties, will topic, will payload, user name,
// password [MQTT-3.1.3-1] (5.0), the client identifier always present and
// first [MQTT-3.1.3-3] (5.0); will properties, topic and payload present
// with the will flag [MQTT-3.1.2-9] (5.0), will QoS and will retain 0
// without it [MQTT-3.1.2-11] (5.0) [MQTT-3.1.2-13] (5.0); a user name
// exactly when its flag is set [MQTT-3.1.2-16] (5.0) [MQTT-3.1.2-17] (5.0),
// a password exactly when its flag is set [MQTT-3.1.2-18] (5.0)
// [MQTT-3.1.2-19] (5.0).
func TestGoldenV5(t *testing.T) { testGolden(t, "v5.hex", codec.V5, goldenV5, 15) }

func testGolden(t *testing.T, file string, v codec.Version, want map[string]codec.Packet, types int) {
	pkts := loadGolden(t, file)
	seen := map[string]bool{}
	covered := map[codec.Type]bool{}
	for _, g := range pkts {
		if seen[g.name] {
			t.Errorf("%s:%d: %q appears twice", file, g.line, g.name)
		}
		seen[g.name] = true
		t.Run(g.name, func(t *testing.T) {
			if h, ok := goldenHeaders[g.name]; ok {
				checkGoldenHeader(t, g.b, h, v)
				return
			}
			w, ok := want[g.name]
			if !ok {
				t.Fatalf("%s:%d: no expected value in golden_test.go", file, g.line)
			}
			covered[w.Type()] = true
			checkGolden(t, g.b, w, v)
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("expected value %q has no packet in %s", name, file)
		}
	}
	if len(covered) != types {
		t.Errorf("%s covers %d packet types, want %d: %v", file, len(covered), types, covered)
	}
}

func checkGolden(t *testing.T, b []byte, want codec.Packet, v codec.Version) {
	t.Helper()
	opts := pktCmp
	// Decode, the package function.
	got, n, err := codec.Decode(b, v)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if n != len(b) {
		t.Errorf("Decode used %d of %d bytes", n, len(b))
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("decoded fields differ (-want +got):\n%s", diff)
	}
	// The Decode method of the packet type, and a Decoder.
	m := codec.Clone(want)
	if n, err := m.Decode(b, v); err != nil || n != len(b) {
		t.Errorf("%T.Decode: n=%d err=%v", m, n, err)
	} else if diff := cmp.Diff(want, m, opts); diff != "" {
		t.Errorf("%T.Decode fields differ (-want +got):\n%s", m, diff)
	}
	d := codec.Decoder{Version: v}
	if p, n, err := d.Decode(b); err != nil || n != len(b) {
		t.Errorf("Decoder.Decode: n=%d err=%v", n, err)
	} else if diff := cmp.Diff(want, p, opts); diff != "" {
		t.Errorf("Decoder fields differ (-want +got):\n%s", diff)
	}
	// Encode both the decoded packet and the expected value: the same bytes.
	for _, p := range []codec.Packet{got, want} {
		if size := p.Size(v); size != len(b) {
			t.Errorf("Size = %d, want %d", size, len(b))
		}
		enc, err := codec.Append(nil, p, v)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Errorf("re-encoding differs:\n got % x\nwant % x", head(enc), head(b))
		}
		// Appending after existing bytes keeps them.
		pre := []byte{0xAA, 0xBB}
		enc2, err := codec.Append(pre, p, v)
		if err != nil || !bytes.Equal(enc2[:2], pre) || !bytes.Equal(enc2[2:], b) {
			t.Errorf("Append to a non-empty buffer: err=%v", err)
		}
	}
	// The header says the same as the packet.
	h, err := codec.ParseHeader(b)
	if err != nil || h.Type != want.Type() || h.Size() != len(b) {
		t.Errorf("ParseHeader: %+v, %v", h, err)
	}
	// Every proper prefix is incomplete, never an error of the packet.
	if len(b) <= 512 {
		for k := range len(b) {
			if _, _, err := codec.Decode(b[:k], v); err != codec.ErrIncomplete {
				t.Fatalf("the first %d bytes: %v, want ErrIncomplete", k, err)
			}
		}
	}
	// The other version: a 3.1.1 packet with a 5.0 body (or the reverse) may
	// decode or fail, but never panics and never returns an untyped error.
	other := codec.V5
	if v == codec.V5 {
		other = codec.V311
	}
	if _, _, err := codec.Decode(b, other); err != nil {
		var e *codec.Error
		if !errors.As(err, &e) {
			t.Errorf("decoding as %v: untyped error %v", other, err)
		}
	}
}

// checkGoldenHeader checks a header-only entry: the fixed header, and the
// header bytes AppendHeader writes for a PUBLISH of that size.
func checkGoldenHeader(t *testing.T, b []byte, want codec.Header, v codec.Version) {
	t.Helper()
	h, err := codec.ParseHeader(b)
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	if h != want {
		t.Fatalf("ParseHeader = %+v, want %+v", h, want)
	}
	if _, _, err := codec.Frame(b, 0); err != codec.ErrIncomplete {
		t.Errorf("Frame with no limit: %v, want ErrIncomplete", err)
	}
	if _, _, err := codec.Frame(b, 1<<20); !errors.Is(err, codec.ErrPacketTooLarge) {
		t.Errorf("Frame with a 1 MiB limit: %v, want ErrPacketTooLarge", err)
	}
	if _, _, err := codec.Decode(b, v); err != codec.ErrIncomplete {
		t.Errorf("Decode: %v, want ErrIncomplete", err)
	}
	if testing.Short() {
		return
	}
	// A payload this large is only mapped, never touched: AppendHeader does
	// not read it.
	topicLen := int(b[h.Len])<<8 | int(b[h.Len+1])
	p := &codec.Publish{Topic: string(b[h.Len+2 : h.Len+2+topicLen])}
	n := h.Remaining - 2 - topicLen
	p.Payload = make([]byte, n, n+1)
	enc, err := p.AppendHeader(nil, v)
	if err != nil {
		t.Fatalf("AppendHeader: %v", err)
	}
	if !bytes.Equal(enc, b) {
		t.Errorf("AppendHeader = % x, want % x", enc, b)
	}
	if p.Size(v) != h.Size() {
		t.Errorf("Size = %d, want %d", p.Size(v), h.Size())
	}
	// One byte more does not fit in a Remaining Length.
	p.Payload = p.Payload[:n+1]
	if _, err := p.AppendHeader(nil, v); !errors.Is(err, codec.ErrPacketTooLarge) {
		t.Errorf("a payload one byte larger: %v, want ErrPacketTooLarge", err)
	}
}

// pktCmp compares packets field by field: a nil and an empty slice are
// equal (a decoded empty field is an empty slice of the input), and byte
// slices are compared with bytes.Equal, which is much faster than cmp's
// element walk on the large payloads of the golden packets.
var pktCmp = cmp.Options{
	cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) }),
	cmp.FilterValues(func(a, b any) bool {
		va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
		if !va.IsValid() || !vb.IsValid() || va.Type() != vb.Type() || va.Type() == bytesType {
			return false
		}
		k := va.Kind()
		return (k == reflect.Slice || k == reflect.Map) && va.Len() == 0 && vb.Len() == 0
	}, cmp.Comparer(func(_, _ any) bool { return true })),
}

var bytesType = reflect.TypeOf([]byte(nil))

// head shortens a large encoding for a message.
func head(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
