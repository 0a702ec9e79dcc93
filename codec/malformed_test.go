package codec_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Helpers that build packets from their fields, so that each case below
// shows only the field it breaks.

// wire builds a packet: the first byte, the Remaining Length of the parts and
// the parts.
func wire(first byte, parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	b := []byte{first}
	n := len(body)
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(append(b, byte(n)), body...)
}

// whex is raw bytes written in hex, spaces allowed.
func whex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// wstr is a UTF-8 string or binary field: a two-byte length and the bytes.
func wstr(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// wprops is a property list: its length as a Variable Byte Integer, then the
// properties.
func wprops(ps ...[]byte) []byte {
	var body []byte
	for _, p := range ps {
		body = append(body, p...)
	}
	return wire(0, body)[1:] // the length encoding is that of a Remaining Length
}

// wconn is the variable header of a CONNECT up to the keep alive.
func wconn(level, flags byte) []byte {
	return append(wstr("MQTT"), level, flags, 0x00, 0x3c)
}

type malformedCase struct {
	name   string // the statement broken, cited by id
	v      codec.Version
	from   codec.Role // RoleAny: codec.Decode; otherwise a Decoder with this From
	b      []byte
	reason codec.ReasonCode
	typ    codec.Type
	rule   string // the Rule the error must carry; "" when not checked
}

const (
	mal   = codec.ReasonMalformedPacket
	proto = codec.ReasonProtocolError
)

var (
	v3 = codec.V311
	v5 = codec.V5
)

// malformedCases holds one packet per rule of the "Validation" section of
// the package documentation (and DESIGN.md section 2). Each is refused with
// an *Error carrying the reason code the codec assigns: 0x81 for bytes that
// cannot be parsed as the spec describes, 0x82 for a packet that parses but
// breaks a rule (see DESIGN-NOTES.md, "Reason codes of refused packets").
var malformedCases = []malformedCase{
	// Fixed header.
	{"reserved packet type 0 [§2.1.2]", v5, 0, whex("00 00"), mal, 0, "§2.1.2"},
	{"CONNECT reserved flags [MQTT-2.1.3-1] [MQTT-2.2.2-2] (3.1.1)", v3, 0, whex("11 00"), mal, codec.TypeConnect, "MQTT-2.1.3-1"},
	{"PUBREL flags 0000 [MQTT-3.6.1-1] [MQTT-2.1.3-1] [MQTT-2.2.2-2] (3.1.1)", v3, 0, whex("60 02 00 01"), mal, codec.TypePubrel, "MQTT-2.1.3-1"},
	{"SUBSCRIBE flags 0000 [MQTT-3.8.1-1] [MQTT-2.1.3-1]", v5, 0, wire(0x80, whex("00 01 00"), wstr("a"), whex("00")), mal, codec.TypeSubscribe, "MQTT-2.1.3-1"},
	{"UNSUBSCRIBE flags 0011 [MQTT-3.10.1-1] [MQTT-2.1.3-1] [MQTT-2.2.2-2] (3.1.1)", v3, 0, wire(0xA3, whex("00 01"), wstr("a")), mal, codec.TypeUnsubscribe, "MQTT-2.1.3-1"},
	{"PINGREQ flags 1000 [MQTT-2.1.3-1] [MQTT-2.2.2-2] (3.1.1)", v3, 0, whex("c8 00"), mal, codec.TypePingreq, "MQTT-2.1.3-1"},
	{"AUTH flags 0001 [MQTT-2.1.3-1] [MQTT-3.15.1-1]", v5, 0, whex("f1 00"), mal, codec.TypeAuth, "MQTT-2.1.3-1"},
	{"DISCONNECT flags 0001 [MQTT-2.1.3-1] [MQTT-3.14.1-1] (5.0)", v5, 0, whex("e1 00"), mal, codec.TypeDisconnect, "MQTT-2.1.3-1"},
	{"DISCONNECT flags 0010 [MQTT-2.2.2-2] (3.1.1)", v3, 0, whex("e2 00"), mal, codec.TypeDisconnect, "MQTT-2.1.3-1"},
	{"PUBLISH QoS 3 [MQTT-3.3.1-4]", v3, 0, wire(0x36, wstr("t"), whex("00 01")), mal, codec.TypePublish, "MQTT-3.3.1-4"},
	{"PUBLISH DUP on QoS 0 [MQTT-3.3.1-2]", v3, 0, wire(0x38, wstr("t")), mal, codec.TypePublish, "MQTT-3.3.1-2"},
	{"remaining length over four bytes [§1.5.5]", v5, 0, whex("30 80 80 80 80 01"), mal, codec.TypePublish, "§1.5.5"},
	{"remaining length not minimal [MQTT-1.5.5-1]", v3, 0, whex("c0 80 00"), mal, codec.TypePingreq, "MQTT-1.5.5-1"},
	{"PINGREQ with a body [§2.1.4]", v3, 0, whex("c0 01 00"), mal, codec.TypePingreq, "§2.1.4"},
	{"PINGRESP with a body [§2.1.4]", v5, 0, whex("d0 01 00"), mal, codec.TypePingresp, "§2.1.4"},
	{"AUTH on MQTT 3.1.1 [§2.2.1]", v3, 0, whex("f0 00"), mal, codec.TypeAuth, "§2.2.1"},

	// CONNECT.
	{"protocol name not MQTT [MQTT-3.1.2-1] (3.1.1)", v3, 0, wire(0x10, wstr("MQIs"), whex("04 02 00 3c"), wstr("c")), codec.ReasonUnsupportedProtocolVersion, codec.TypeConnect, "MQTT-3.1.2-1"},
	{"protocol level 3 [MQTT-3.1.2-2]", v3, 0, wire(0x10, wconn(3, 0x02), wstr("c")), codec.ReasonUnsupportedProtocolVersion, codec.TypeConnect, "MQTT-3.1.2-2"},
	{"protocol level 5 on a 3.1.1 decode [MQTT-3.1.2-2]", v3, 0, wire(0x10, wconn(5, 0x02), whex("00"), wstr("c")), codec.ReasonUnsupportedProtocolVersion, codec.TypeConnect, "MQTT-3.1.2-2"},
	{"reserved connect flag [MQTT-3.1.2-3]", v3, 0, wire(0x10, wconn(4, 0x03), wstr("c")), mal, codec.TypeConnect, "MQTT-3.1.2-3"},
	{"will QoS without will flag [MQTT-3.1.2-11] (5.0)", v5, 0, wire(0x10, wconn(5, 0x0A), whex("00"), wstr("c")), mal, codec.TypeConnect, "MQTT-3.1.2-11"},
	{"will QoS without will flag [MQTT-3.1.2-11] [MQTT-3.1.2-13] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x0A), wstr("c")), mal, codec.TypeConnect, "MQTT-3.1.2-11"},
	{"will retain without will flag [MQTT-3.1.2-13] (5.0)", v5, 0, wire(0x10, wconn(5, 0x22), whex("00"), wstr("c")), mal, codec.TypeConnect, "MQTT-3.1.2-11"},
	{"will retain without will flag [MQTT-3.1.2-11] [MQTT-3.1.2-15] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x22), wstr("c")), mal, codec.TypeConnect, "MQTT-3.1.2-11"},
	{"will QoS 3 [MQTT-3.1.2-14] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x1E), wstr("c"), wstr("w"), wstr("")), mal, codec.TypeConnect, "MQTT-3.1.2-12"},
	{"will QoS 3 [MQTT-3.1.2-12] (5.0)", v5, 0, wire(0x10, wconn(5, 0x1E), whex("00"), wstr("c"), whex("00"), wstr("w"), wstr("")), mal, codec.TypeConnect, "MQTT-3.1.2-12"},
	{"3.1.1 password without user name [MQTT-3.1.2-22] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x42), wstr("c"), wstr("pw")), mal, codec.TypeConnect, "MQTT-3.1.2-22"},
	{"3.1.1 empty client identifier without clean session [MQTT-3.1.3-8] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x00), wstr("")), codec.ReasonClientIdentifierNotValid, codec.TypeConnect, "MQTT-3.1.3-8"},
	{"client identifier not UTF-8 [MQTT-3.1.3-4] [MQTT-1.5.3-1] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x02), wstr("\xff")), mal, codec.TypeConnect, "MQTT-3.1.3-4"},
	{"client identifier with U+0000 [MQTT-1.5.4-2]", v5, 0, wire(0x10, wconn(5, 0x02), whex("00"), wstr("a\x00")), mal, codec.TypeConnect, "MQTT-3.1.3-4"},
	{"will topic with a wildcard [MQTT-3.3.2-2] [MQTT-4.7.1-1] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x06), wstr("c"), wstr("a/+"), wstr("")), mal, codec.TypeConnect, "MQTT-3.3.2-2"},
	{"empty will topic [MQTT-4.7.3-1]", v3, 0, wire(0x10, wconn(4, 0x06), wstr("c"), wstr(""), wstr("")), mal, codec.TypeConnect, "MQTT-4.7.3-1"},
	{"user name with a UTF-16 surrogate [MQTT-1.5.3-1] (3.1.1) [MQTT-3.1.3-11] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x82), wstr("c"), wstr("\xed\xa0\x80")), mal, codec.TypeConnect, "MQTT-3.1.3-11"},
	{"user name with a UTF-16 surrogate [MQTT-1.5.4-1] [MQTT-3.1.3-12] (5.0)", v5, 0, wire(0x10, wconn(5, 0x82), whex("00"), wstr("c"), wstr("\xed\xa0\x80")), mal, codec.TypeConnect, "MQTT-3.1.3-11"},
	{"will topic not UTF-8 [MQTT-1.5.3-1] (3.1.1) [MQTT-3.1.3-10] (3.1.1)", v3, 0, wire(0x10, wconn(4, 0x06), wstr("c"), wstr("\xc3\x28"), wstr("")), mal, codec.TypeConnect, "MQTT-1.5.4-1"},
	{"will topic not UTF-8 [MQTT-1.5.4-1] [MQTT-3.1.3-11] (5.0)", v5, 0, wire(0x10, wconn(5, 0x06), whex("00"), wstr("c"), whex("00"), wstr("\xc3\x28"), wstr("")), mal, codec.TypeConnect, "MQTT-1.5.4-1"},
	{"password runs past the packet [§2.1.4]", v3, 0, wire(0x10, wconn(4, 0xC2), wstr("c"), wstr("u"), whex("00 05 61")), mal, codec.TypeConnect, "§2.1.4"},
	{"CONNECT with a byte after the last field [§2.1.4]", v3, 0, wire(0x10, wconn(4, 0x02), wstr("c"), whex("00")), mal, codec.TypeConnect, "§2.1.4"},
	{"topic alias not allowed in CONNECT [§2.2.2.2]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("23 00 01")), wstr("c")), mal, codec.TypeConnect, "§2.2.2.2"},
	{"unknown property identifier 0x7F [§2.2.2.2]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("7f 00")), wstr("c")), mal, codec.TypeConnect, "§2.2.2.2"},
	{"session expiry interval twice [§3.1.2.11.2]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("11 00 00 00 01"), whex("11 00 00 00 02")), wstr("c")), proto, codec.TypeConnect, "§2.2.2.2"},
	{"receive maximum 0 [§3.1.2.11.3]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("21 00 00")), wstr("c")), proto, codec.TypeConnect, "§3.1.2.11.3"},
	{"maximum packet size 0 [§3.1.2.11.4]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("27 00 00 00 00")), wstr("c")), proto, codec.TypeConnect, "§3.1.2.11.4"},
	{"request response information 2 [§3.1.2.11.6]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("19 02")), wstr("c")), proto, codec.TypeConnect, "§3.1.2.11.6"},
	{"request problem information 2 [§3.1.2.11.7]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("17 02")), wstr("c")), proto, codec.TypeConnect, "§3.1.2.11.7"},
	{"authentication data without method [§3.1.2.11.10]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("16 00 01 aa")), wstr("c")), proto, codec.TypeConnect, "§3.1.2.11.10"},
	{"property length runs past the packet [§2.2.2.1]", v5, 0, wire(0x10, wconn(5, 0x02), whex("20 11 00 00 00 01")), mal, codec.TypeConnect, "§2.2.2.1"},
	{"property runs past the property length [§2.2.2.2]", v5, 0, wire(0x10, wconn(5, 0x02), whex("03 11 00 00"), whex("00 00"), wstr("c")), mal, codec.TypeConnect, "§2.2.2.2"},
	{"property length not minimal [MQTT-1.5.5-1]", v5, 0, wire(0x10, wconn(5, 0x02), whex("80 00"), wstr("c")), mal, codec.TypeConnect, "MQTT-1.5.5-1"},
	{"session expiry interval in the will properties [§2.2.2.2]", v5, 0, wire(0x10, wconn(5, 0x06), whex("00"), wstr("c"), wprops(whex("11 00 00 00 01")), wstr("w"), wstr("")), mal, codec.TypeConnect, "§2.2.2.2"},
	{"will payload format indicator 2 [§3.1.3.2.3]", v5, 0, wire(0x10, wconn(5, 0x06), whex("00"), wstr("c"), wprops(whex("01 02")), wstr("w"), wstr("")), proto, codec.TypeConnect, ""},
	{"will response topic with a wildcard [MQTT-3.3.2-14]", v5, 0, wire(0x10, wconn(5, 0x06), whex("00"), wstr("c"), wprops(whex("08"), wstr("r/#")), wstr("w"), wstr("")), mal, codec.TypeConnect, "MQTT-3.3.2-14"},
	{"user property not UTF-8 [MQTT-1.5.7-1]", v5, 0, wire(0x10, wconn(5, 0x02), wprops(whex("26"), wstr("k"), wstr("\xc3\x28")), wstr("c")), mal, codec.TypeConnect, "MQTT-1.5.7-1"},

	// CONNACK.
	{"CONNACK reserved acknowledge flags [MQTT-3.2.2-1] (5.0)", v3, 0, whex("20 02 02 00"), mal, codec.TypeConnack, "MQTT-3.2.2-1"},
	{"CONNACK 3.1.1 return code 6 [§3.2.2.3]", v3, 0, whex("20 02 00 06"), proto, codec.TypeConnack, "§3.2.2.3"},
	{"CONNACK 3.1.1 session present with a refusal [MQTT-3.2.2-4] (3.1.1)", v3, 0, whex("20 02 01 05"), proto, codec.TypeConnack, "MQTT-3.2.2-4"},
	{"CONNACK 5.0 session present with a refusal [MQTT-3.2.2-6] (5.0)", v5, 0, whex("20 03 01 80 00"), proto, codec.TypeConnack, "MQTT-3.2.2-6"},
	{"CONNACK reason code 0x04 [MQTT-3.2.2-8]", v5, 0, whex("20 03 00 04 00"), proto, codec.TypeConnack, "MQTT-3.2.2-8"},
	{"CONNACK 5.0 without property length [§2.1.4]", v5, 0, whex("20 02 00 00"), mal, codec.TypeConnack, "§2.1.4"},
	{"CONNACK maximum QoS 2 [§3.2.2.3.4]", v5, 0, wire(0x20, whex("00 00"), wprops(whex("24 02"))), proto, codec.TypeConnack, "§3.2.2.3.4"},
	{"CONNACK retain available 2 [§3.2.2.3.5]", v5, 0, wire(0x20, whex("00 00"), wprops(whex("25 02"))), proto, codec.TypeConnack, "§3.2.2.3.5"},
	{"CONNACK wildcard subscription available 2 [§3.2.2.3.11]", v5, 0, wire(0x20, whex("00 00"), wprops(whex("28 02"))), proto, codec.TypeConnack, "§3.2.2.3.11"},
	{"CONNACK subscription identifiers available 2 [§3.2.2.3.12]", v5, 0, wire(0x20, whex("00 00"), wprops(whex("29 02"))), proto, codec.TypeConnack, "§3.2.2.3.12"},
	{"CONNACK shared subscription available 2 [§3.2.2.3.13]", v5, 0, wire(0x20, whex("00 00"), wprops(whex("2a 02"))), proto, codec.TypeConnack, "§3.2.2.3.13"},
	{"CONNACK will delay interval not allowed [§2.2.2.2]", v5, 0, wire(0x20, whex("00 00"), wprops(whex("18 00 00 00 01"))), mal, codec.TypeConnack, "§2.2.2.2"},

	// PUBLISH.
	{"topic name with '+' [MQTT-3.3.2-2] [MQTT-4.7.1-1] (3.1.1)", v3, 0, wire(0x30, wstr("a/+"), []byte("x")), mal, codec.TypePublish, "MQTT-3.3.2-2"},
	{"topic name with '#' [MQTT-3.3.2-2] [MQTT-4.7.0-1]", v5, 0, wire(0x30, wstr("a/#"), whex("00")), mal, codec.TypePublish, "MQTT-3.3.2-2"},
	{"topic name with U+0000 [MQTT-4.7.3-2] [MQTT-1.5.3-2] (3.1.1)", v3, 0, wire(0x30, wstr("a\x00b")), mal, codec.TypePublish, "MQTT-4.7.3-2"},
	{"topic name not UTF-8 [MQTT-1.5.3-1] (3.1.1)", v3, 0, wire(0x30, wstr("\xc3\x28")), mal, codec.TypePublish, "MQTT-1.5.4-1"},
	{"topic name with an encoded surrogate [MQTT-1.5.4-1]", v5, 0, wire(0x30, wstr("a\xed\xb0\x80"), whex("00")), mal, codec.TypePublish, "MQTT-1.5.4-1"},
	{"3.1.1 empty topic name [MQTT-4.7.3-1]", v3, 0, wire(0x30, wstr("")), proto, codec.TypePublish, "MQTT-3.3.2-1"},
	{"5.0 empty topic name without topic alias [MQTT-3.3.2-1]", v5, 0, wire(0x30, wstr(""), whex("00")), proto, codec.TypePublish, "MQTT-3.3.2-1"},
	{"PUBLISH QoS 1 packet identifier 0 [MQTT-2.2.1-3] [MQTT-2.3.1-1] (3.1.1)", v3, 0, wire(0x32, wstr("t"), whex("00 00")), proto, codec.TypePublish, "MQTT-2.2.1-3"},
	{"PUBLISH QoS 2 packet identifier missing [§2.1.4]", v3, 0, wire(0x34, wstr("t"), whex("01")), mal, codec.TypePublish, "§2.1.4"},
	{"topic name runs past the packet [§2.1.4]", v3, 0, wire(0x30, whex("00 09 61")), mal, codec.TypePublish, "§2.1.4"},
	{"topic alias 0 [MQTT-3.3.2-8]", v5, 0, wire(0x30, wstr("t"), wprops(whex("23 00 00"))), proto, codec.TypePublish, "MQTT-3.3.2-8"},
	{"payload format indicator 2 [§3.3.2.3.2]", v5, 0, wire(0x30, wstr("t"), wprops(whex("01 02"))), proto, codec.TypePublish, "§3.3.2.3.2"},
	{"subscription identifier 0 [§3.3.2.3.8]", v5, 0, wire(0x30, wstr("t"), wprops(whex("0b 00"))), proto, codec.TypePublish, "§3.3.2.3.8"},
	{"subscription identifier not minimal [MQTT-1.5.5-1]", v5, 0, wire(0x30, wstr("t"), wprops(whex("0b 81 00"))), mal, codec.TypePublish, "MQTT-1.5.5-1"},
	{"response topic with a wildcard [MQTT-3.3.2-14]", v5, 0, wire(0x30, wstr("t"), wprops(whex("08"), wstr("r/+"))), mal, codec.TypePublish, "MQTT-3.3.2-14"},
	{"content type twice [§2.2.2.2]", v5, 0, wire(0x30, wstr("t"), wprops(whex("03"), wstr("a"), whex("03"), wstr("b"))), proto, codec.TypePublish, "§2.2.2.2"},
	{"session expiry interval not allowed in PUBLISH [§2.2.2.2]", v5, 0, wire(0x30, wstr("t"), wprops(whex("11 00 00 00 01"))), mal, codec.TypePublish, "§2.2.2.2"},
	{"content type not UTF-8 [MQTT-1.5.4-1] [MQTT-3.3.2-19]", v5, 0, wire(0x30, wstr("t"), wprops(whex("03"), wstr("\xe0\x80\xaf"))), mal, codec.TypePublish, "MQTT-1.5.4-1"},
	{"response topic not UTF-8 [MQTT-1.5.4-1] [MQTT-3.3.2-13]", v5, 0, wire(0x30, wstr("t"), wprops(whex("08"), wstr("\xc3\x28"))), mal, codec.TypePublish, "MQTT-1.5.4-1"},
	{"correlation data runs past the property length [§2.2.2.2]", v5, 0, wire(0x30, wstr("t"), wprops(whex("09 00 09 01"))), mal, codec.TypePublish, "§2.2.2.2"},
	{"a client's PUBLISH with a subscription identifier [MQTT-3.3.4-6]", v5, codec.RoleClient, wire(0x30, wstr("t"), wprops(whex("0b 01"))), proto, codec.TypePublish, "MQTT-3.3.4-6"},

	// PUBACK, PUBREC, PUBREL, PUBCOMP.
	{"PUBACK packet identifier 0 [MQTT-2.2.1-3]", v3, 0, whex("40 02 00 00"), proto, codec.TypePuback, "MQTT-2.2.1-3"},
	{"PUBCOMP packet identifier 0 [MQTT-2.2.1-3]", v5, 0, whex("70 02 00 00"), proto, codec.TypePubcomp, "MQTT-2.2.1-3"},
	{"PUBACK packet identifier cut short [§2.1.4]", v3, 0, whex("40 01 00"), mal, codec.TypePuback, "§2.1.4"},
	{"3.1.1 PUBREC with a third byte [§2.1.4]", v3, 0, whex("50 03 00 01 00"), mal, codec.TypePubrec, "§2.1.4"},
	{"PUBACK reason code 0x92 [MQTT-3.4.2-1]", v5, 0, whex("40 03 00 01 92"), proto, codec.TypePuback, "MQTT-3.4.2-1"},
	{"PUBREC reason code 0x04 [MQTT-3.5.2-1]", v5, 0, whex("50 03 00 01 04"), proto, codec.TypePubrec, "MQTT-3.5.2-1"},
	{"PUBREL reason code 0x10 [MQTT-3.6.2-1]", v5, 0, whex("62 03 00 01 10"), proto, codec.TypePubrel, "MQTT-3.6.2-1"},
	{"PUBCOMP reason code 0x80 [MQTT-3.7.2-1]", v5, 0, whex("70 03 00 01 80"), proto, codec.TypePubcomp, "MQTT-3.7.2-1"},
	{"topic alias not allowed in PUBACK [§2.2.2.2]", v5, 0, wire(0x40, whex("00 01 00"), wprops(whex("23 00 01"))), mal, codec.TypePuback, "§2.2.2.2"},
	{"PUBACK bytes after the properties [§2.1.4]", v5, 0, wire(0x40, whex("00 01 00"), wprops(), whex("00")), mal, codec.TypePuback, "§2.1.4"},
	{"reason string twice in PUBREL [§3.6.2.2.2]", v5, 0, wire(0x62, whex("00 01 00"), wprops(whex("1f"), wstr("a"), whex("1f"), wstr("b"))), proto, codec.TypePubrel, "§2.2.2.2"},

	// SUBSCRIBE.
	{"3.1.1 SUBSCRIBE without a topic filter [MQTT-3.8.3-3] (3.1.1)", v3, 0, whex("82 02 00 01"), proto, codec.TypeSubscribe, "MQTT-3.8.3-2"},
	{"5.0 SUBSCRIBE without a topic filter [MQTT-3.8.3-2] (5.0)", v5, 0, whex("82 03 00 01 00"), proto, codec.TypeSubscribe, "MQTT-3.8.3-2"},
	{"SUBSCRIBE packet identifier 0 [MQTT-2.2.1-3] [MQTT-2.3.1-1] (3.1.1)", v3, 0, wire(0x82, whex("00 00"), wstr("a"), whex("00")), proto, codec.TypeSubscribe, "MQTT-2.2.1-3"},
	{"3.1.1 requested QoS 3 [MQTT-3-8.3-4] (3.1.1)", v3, 0, wire(0x82, whex("00 01"), wstr("a"), whex("03")), mal, codec.TypeSubscribe, "MQTT-3.8.3-4"},
	{"3.1.1 reserved subscription option bits [MQTT-3-8.3-4] (3.1.1)", v3, 0, wire(0x82, whex("00 01"), wstr("a"), whex("04")), mal, codec.TypeSubscribe, "MQTT-3.8.3-4"},
	{"5.0 reserved subscription option bits [MQTT-3.8.3-5]", v5, 0, wire(0x82, whex("00 01 00"), wstr("a"), whex("40")), mal, codec.TypeSubscribe, "MQTT-3.8.3-5"},
	{"5.0 maximum QoS 3 [§3.8.3.1]", v5, 0, wire(0x82, whex("00 01 00"), wstr("a"), whex("03")), proto, codec.TypeSubscribe, "§3.8.3.1"},
	{"retain handling 3 [§3.8.3.1]", v5, 0, wire(0x82, whex("00 01 00"), wstr("a"), whex("30")), proto, codec.TypeSubscribe, "§3.8.3.1"},
	{"no local on a shared subscription [MQTT-3.8.3-4] (5.0)", v5, 0, wire(0x82, whex("00 01 00"), wstr("$share/g/a"), whex("04")), proto, codec.TypeSubscribe, "MQTT-3.8.3-4"},
	{"'#' not last in a filter [MQTT-4.7.1-2] (3.1.1)", v3, 0, wire(0x82, whex("00 01"), wstr("a/#/b"), whex("00")), mal, codec.TypeSubscribe, "MQTT-4.7.1-1"},
	{"'#' not a whole level [MQTT-4.7.1-1] (5.0)", v5, 0, wire(0x82, whex("00 01 00"), wstr("a#"), whex("00")), mal, codec.TypeSubscribe, "MQTT-4.7.1-1"},
	{"'+' not a whole level [MQTT-4.7.1-3] (3.1.1)", v3, 0, wire(0x82, whex("00 01"), wstr("a/b+"), whex("00")), mal, codec.TypeSubscribe, "MQTT-4.7.1-2"},
	{"empty topic filter [MQTT-4.7.3-1]", v3, 0, wire(0x82, whex("00 01"), wstr(""), whex("00")), mal, codec.TypeSubscribe, "MQTT-4.7.3-1"},
	{"topic filter not UTF-8 [MQTT-1.5.4-1] [MQTT-3.8.3-1] (5.0)", v5, 0, wire(0x82, whex("00 01 00"), wstr("\xf8\x88\x80\x80\x80"), whex("00")), mal, codec.TypeSubscribe, "MQTT-1.5.4-1"},
	{"topic filter not UTF-8 [MQTT-1.5.3-1] (3.1.1) [MQTT-3.8.3-1] (3.1.1)", v3, 0, wire(0x82, whex("00 01"), wstr("\xc3\x28"), whex("00")), mal, codec.TypeSubscribe, "MQTT-1.5.4-1"},
	{"shared subscription without share name [MQTT-4.8.2-1]", v5, 0, wire(0x82, whex("00 01 00"), wstr("$share//a"), whex("00")), proto, codec.TypeSubscribe, "MQTT-4.8.2-1"},
	{"share name with a wildcard [MQTT-4.8.2-2]", v5, 0, wire(0x82, whex("00 01 00"), wstr("$share/+/a"), whex("00")), proto, codec.TypeSubscribe, "MQTT-4.8.2-2"},
	{"shared subscription without topic filter [MQTT-4.8.2-2]", v3, 0, wire(0x82, whex("00 01"), wstr("$share/g"), whex("00")), proto, codec.TypeSubscribe, "MQTT-4.8.2-2"},
	{"subscription options missing [§2.1.4]", v3, 0, wire(0x82, whex("00 01"), wstr("a")), mal, codec.TypeSubscribe, "§2.1.4"},
	{"two subscription identifiers in SUBSCRIBE [§3.8.2.1.2]", v5, 0, wire(0x82, whex("00 01"), wprops(whex("0b 01 0b 02")), wstr("a"), whex("00")), proto, codec.TypeSubscribe, "§2.2.2.2"},
	{"subscription identifier 0 in SUBSCRIBE [§3.8.2.1.2]", v5, 0, wire(0x82, whex("00 01"), wprops(whex("0b 00")), wstr("a"), whex("00")), proto, codec.TypeSubscribe, "§3.8.2.1.2"},
	{"reason string not allowed in SUBSCRIBE [§2.2.2.2]", v5, 0, wire(0x82, whex("00 01"), wprops(whex("1f"), wstr("r")), wstr("a"), whex("00")), mal, codec.TypeSubscribe, "§2.2.2.2"},

	// SUBACK.
	{"3.1.1 SUBACK without return codes [MQTT-3.9.3-1]", v3, 0, whex("90 02 00 01"), proto, codec.TypeSuback, "MQTT-3.9.3-2"},
	{"5.0 SUBACK without reason codes [MQTT-3.9.3-1]", v5, 0, whex("90 03 00 01 00"), proto, codec.TypeSuback, "MQTT-3.9.3-2"},
	{"3.1.1 SUBACK return code 0x03 [MQTT-3.9.3-2]", v3, 0, whex("90 03 00 01 03"), proto, codec.TypeSuback, "MQTT-3.9.3-2"},
	{"3.1.1 SUBACK return code 0x8F (5.0 only) [MQTT-3.9.3-2]", v3, 0, whex("90 03 00 01 8f"), proto, codec.TypeSuback, "MQTT-3.9.3-2"},
	{"5.0 SUBACK reason code 0x11 [MQTT-3.9.3-2]", v5, 0, whex("90 04 00 01 00 11"), proto, codec.TypeSuback, "MQTT-3.9.3-2"},
	{"SUBACK packet identifier 0 [MQTT-2.2.1-3]", v5, 0, whex("90 04 00 00 00 00"), proto, codec.TypeSuback, "MQTT-2.2.1-3"},

	// UNSUBSCRIBE and UNSUBACK.
	{"3.1.1 UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]", v3, 0, whex("a2 02 00 01"), proto, codec.TypeUnsubscribe, "MQTT-3.10.3-2"},
	{"5.0 UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]", v5, 0, whex("a2 03 00 01 00"), proto, codec.TypeUnsubscribe, "MQTT-3.10.3-2"},
	{"UNSUBSCRIBE misplaced '#' [MQTT-4.7.1-1] (5.0)", v5, 0, wire(0xA2, whex("00 01 00"), wstr("#/a")), mal, codec.TypeUnsubscribe, "MQTT-4.7.1-1"},
	{"UNSUBSCRIBE topic filter not UTF-8 [MQTT-1.5.3-1] (3.1.1) [MQTT-3.10.3-1] (3.1.1)", v3, 0, wire(0xA2, whex("00 01"), wstr("\xc3\x28")), mal, codec.TypeUnsubscribe, "MQTT-1.5.4-1"},
	{"UNSUBSCRIBE topic filter with U+0000 [MQTT-1.5.4-2] [MQTT-3.10.3-1] (5.0)", v5, 0, wire(0xA2, whex("00 01 00"), wstr("a\x00")), mal, codec.TypeUnsubscribe, "MQTT-1.5.4-1"},
	{"UNSUBSCRIBE topic filter runs past the packet [§2.1.4]", v3, 0, wire(0xA2, whex("00 01"), whex("00 04 61")), mal, codec.TypeUnsubscribe, "§2.1.4"},
	{"reason string not allowed in UNSUBSCRIBE [§2.2.2.2]", v5, 0, wire(0xA2, whex("00 01"), wprops(whex("1f"), wstr("r")), wstr("a")), mal, codec.TypeUnsubscribe, "§2.2.2.2"},
	{"3.1.1 UNSUBACK with a payload [§2.1.4]", v3, 0, whex("b0 03 00 01 00"), mal, codec.TypeUnsuback, "§2.1.4"},
	{"5.0 UNSUBACK without reason codes [MQTT-3.11.3-1]", v5, 0, whex("b0 03 00 01 00"), proto, codec.TypeUnsuback, "MQTT-3.11.3-2"},
	{"5.0 UNSUBACK reason code 0x02 [MQTT-3.11.3-2]", v5, 0, whex("b0 04 00 01 00 02"), proto, codec.TypeUnsuback, "MQTT-3.11.3-2"},
	{"UNSUBACK packet identifier 0 [MQTT-2.2.1-3]", v3, 0, whex("b0 02 00 00"), proto, codec.TypeUnsuback, "MQTT-2.2.1-3"},

	// DISCONNECT.
	{"3.1.1 DISCONNECT with a body [§2.1.4]", v3, 0, whex("e0 01 00"), mal, codec.TypeDisconnect, "§2.1.4"},
	{"DISCONNECT reason code 0x18 [MQTT-3.14.2-1]", v5, 0, whex("e0 01 18"), proto, codec.TypeDisconnect, "MQTT-3.14.2-1"},
	{"topic alias not allowed in DISCONNECT [§2.2.2.2]", v5, 0, wire(0xE0, whex("00"), wprops(whex("23 00 01"))), mal, codec.TypeDisconnect, "§2.2.2.2"},
	{"session expiry interval twice in DISCONNECT [§2.2.2.2]", v5, 0, wire(0xE0, whex("00"), wprops(whex("11 00 00 00 01 11 00 00 00 01"))), proto, codec.TypeDisconnect, "§2.2.2.2"},
	{"DISCONNECT property length runs past the packet [§2.2.2.1]", v5, 0, whex("e0 02 00 05"), mal, codec.TypeDisconnect, "§2.2.2.1"},
	{"a server's DISCONNECT with session expiry interval [MQTT-3.14.2-2]", v5, codec.RoleServer, wire(0xE0, whex("00"), wprops(whex("11 00 00 00 01"))), proto, codec.TypeDisconnect, "MQTT-3.14.2-2"},
	{"a client's DISCONNECT with reason code 0x8B [MQTT-3.14.2-1]", v5, codec.RoleClient, whex("e0 01 8b"), proto, codec.TypeDisconnect, "MQTT-3.14.2-1"},
	{"a server's DISCONNECT with reason code 0x04 [MQTT-3.14.2-1]", v5, codec.RoleServer, whex("e0 01 04"), proto, codec.TypeDisconnect, "MQTT-3.14.2-1"},
	{"a 3.1.1 server sends no DISCONNECT [§2.1.2]", v3, codec.RoleServer, whex("e0 00"), proto, codec.TypeDisconnect, "§2.1.2"},

	// AUTH.
	{"AUTH reason code 0x80 [MQTT-3.15.2-1]", v5, 0, whex("f0 02 80 00"), proto, codec.TypeAuth, "MQTT-3.15.2-1"},
	{"AUTH reason code without property length [§2.1.4]", v5, 0, whex("f0 01 18"), mal, codec.TypeAuth, "§2.1.4"},
	{"AUTH properties without authentication method [§3.15.2.2.2]", v5, 0, wire(0xF0, whex("18"), wprops(whex("1f"), wstr("hi"))), proto, codec.TypeAuth, "§3.15.2.2.2"},
	{"AUTH continue with an empty property block [§3.15.2.2.2]", v5, 0, wire(0xF0, whex("18"), whex("00")), proto, codec.TypeAuth, "§3.15.2.2.2"},
	{"AUTH success in the long form without method [§3.15.2.2.2]", v5, 0, wire(0xF0, whex("00"), whex("00")), proto, codec.TypeAuth, "§3.15.2.2.2"},
	{"authentication method twice in AUTH [§3.15.2.2.2]", v5, 0, wire(0xF0, whex("18"), wprops(whex("15"), wstr("a"), whex("15"), wstr("a"))), proto, codec.TypeAuth, "§2.2.2.2"},
	{"payload format indicator not allowed in AUTH [§2.2.2.2]", v5, 0, wire(0xF0, whex("18"), wprops(whex("15"), wstr("a"), whex("01 01"))), mal, codec.TypeAuth, "§2.2.2.2"},
	{"a client's AUTH with reason code 0x00 [MQTT-3.15.2-1]", v5, codec.RoleClient, wire(0xF0, whex("00"), wprops(whex("15"), wstr("a"))), proto, codec.TypeAuth, "MQTT-3.15.2-1"},
	{"a server's AUTH with reason code 0x19 [MQTT-3.15.2-1]", v5, codec.RoleServer, wire(0xF0, whex("19"), wprops(whex("15"), wstr("a"))), proto, codec.TypeAuth, "MQTT-3.15.2-1"},

	// Direction [§2.1.2].
	{"a server sends no CONNECT [§2.1.2]", v5, codec.RoleServer, wire(0x10, wconn(5, 0x02), whex("00"), wstr("c")), proto, codec.TypeConnect, "§2.1.2"},
	{"a client sends no CONNACK [§2.1.2]", v3, codec.RoleClient, whex("20 02 00 00"), proto, codec.TypeConnack, "§2.1.2"},
	{"a client sends no SUBACK [§2.1.2]", v5, codec.RoleClient, whex("90 04 00 01 00 00"), proto, codec.TypeSuback, "§2.1.2"},
	{"a server sends no SUBSCRIBE [§2.1.2]", v3, codec.RoleServer, wire(0x82, whex("00 01"), wstr("a"), whex("00")), proto, codec.TypeSubscribe, "§2.1.2"},
	{"a server sends no PINGREQ [§2.1.2]", v5, codec.RoleServer, whex("c0 00"), proto, codec.TypePingreq, "§2.1.2"},
}

// decodeCase decodes the bytes of a case, turning a panic into a failure.
func decodeCase(t *testing.T, c malformedCase) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v", r)
		}
	}()
	if c.from != codec.RoleAny {
		d := codec.Decoder{Version: c.v, From: c.from}
		p, _, err := d.Decode(c.b)
		if err == nil {
			t.Fatalf("Decoder from %v accepts % x as %v", c.from, c.b, p)
		}
		// Without a role the packet itself is fine: the refusal is the
		// direction's alone.
		if _, _, err := codec.Decode(c.b, c.v); err != nil {
			t.Fatalf("the packet is refused without a role too: %v", err)
		}
		return err
	}
	p, _, err := codec.Decode(c.b, c.v)
	if err == nil {
		t.Fatalf("Decode accepts % x as %v", c.b, p)
	}
	return err
}

func TestMalformed(t *testing.T) {
	if len(malformedCases) < 60 {
		t.Fatalf("only %d cases", len(malformedCases))
	}
	names := map[string]bool{}
	for _, c := range malformedCases {
		if names[c.name+c.v.String()] {
			t.Errorf("case %q listed twice", c.name)
		}
		names[c.name+c.v.String()] = true
		t.Run(c.v.String()+"/"+c.name, func(t *testing.T) {
			err := decodeCase(t, c)
			var e *codec.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *codec.Error", err, err)
			}
			if e.Reason != c.reason || e.Type != c.typ {
				t.Errorf("got reason %#02x type %v (%v), want reason %#02x type %v",
					byte(e.Reason), e.Type, e, byte(c.reason), c.typ)
			}
			if c.rule != "" && e.Rule != c.rule {
				t.Errorf("rule %q, want %q (%v)", e.Rule, c.rule, e)
			}
			if strings.Contains(err.Error(), "%!") {
				t.Errorf("badly formatted error %q", err)
			}
			// The offset may be the end of the packet: it ended too soon.
			if e.Offset < 0 || e.Offset > len(c.b) {
				t.Errorf("offset %d outside the packet of %d bytes", e.Offset, len(c.b))
			}
			if got, want := errors.Is(err, codec.ErrMalformed), c.reason == mal; got != want {
				t.Errorf("errors.Is(err, ErrMalformed) = %v", got)
			}
			if got, want := errors.Is(err, codec.ErrProtocol), c.reason == proto; got != want {
				t.Errorf("errors.Is(err, ErrProtocol) = %v", got)
			}
			if errors.Is(err, codec.ErrIncomplete) {
				t.Errorf("a refused packet matches ErrIncomplete")
			}
			if c.from != codec.RoleAny || c.typ == 0 {
				return
			}
			// The Decode method of the packet type and a Decoder say the same.
			if m := newOfType(c.typ); m != nil {
				_, err2 := m.Decode(c.b, c.v)
				if !sameError(err, err2) {
					t.Errorf("%T.Decode: %v, codec.Decode: %v", m, err2, err)
				}
			}
			d := codec.Decoder{Version: c.v}
			if _, _, err3 := d.Decode(c.b); !sameError(err, err3) {
				t.Errorf("Decoder.Decode: %v, codec.Decode: %v", err3, err)
			}
			// A longer buffer (the next packet's bytes behind) changes nothing.
			more := append(append([]byte(nil), c.b...), 0xc0, 0x00)
			if _, _, err4 := codec.Decode(more, c.v); !sameError(err, err4) {
				t.Errorf("with bytes behind: %v, alone: %v", err4, err)
			}
		})
	}
}

func sameError(a, b error) bool {
	var ea, eb *codec.Error
	if !errors.As(a, &ea) || !errors.As(b, &eb) {
		return false
	}
	return ea.Reason == eb.Reason && ea.Type == eb.Type && ea.Offset == eb.Offset && ea.Rule == eb.Rule
}

// newOfType returns a zero packet of type t.
func newOfType(t codec.Type) codec.Packet {
	switch t {
	case codec.TypeConnect:
		return new(codec.Connect)
	case codec.TypeConnack:
		return new(codec.Connack)
	case codec.TypePublish:
		return new(codec.Publish)
	case codec.TypePuback:
		return new(codec.Puback)
	case codec.TypePubrec:
		return new(codec.Pubrec)
	case codec.TypePubrel:
		return new(codec.Pubrel)
	case codec.TypePubcomp:
		return new(codec.Pubcomp)
	case codec.TypeSubscribe:
		return new(codec.Subscribe)
	case codec.TypeSuback:
		return new(codec.Suback)
	case codec.TypeUnsubscribe:
		return new(codec.Unsubscribe)
	case codec.TypeUnsuback:
		return new(codec.Unsuback)
	case codec.TypePingreq:
		return new(codec.Pingreq)
	case codec.TypePingresp:
		return new(codec.Pingresp)
	case codec.TypeDisconnect:
		return new(codec.Disconnect)
	case codec.TypeAuth:
		return new(codec.Auth)
	}
	return nil
}

func TestDecodeWrongTypeAndVersion(t *testing.T) {
	// The Decode method of one type refuses another type's packet.
	var p codec.Puback
	if _, err := p.Decode(whex("50 02 00 01"), v5); !errors.Is(err, codec.ErrMalformed) {
		t.Errorf("Puback.Decode of a PUBREC: %v", err)
	}
	// An invalid Version is refused before a byte is read.
	for _, v := range []codec.Version{0, 3, 6} {
		if _, _, err := codec.Decode(whex("c0 00"), v); !errors.Is(err, codec.ErrUnsupportedVersion) {
			t.Errorf("Decode with version %d: %v", v, err)
		}
	}
	// ConnectVersion reads the level, and refuses other protocols [MQTT-3.1.2-2].
	if v, err := codec.ConnectVersion(wire(0x10, wconn(5, 0x02), whex("00"), wstr("c"))); err != nil || v != v5 {
		t.Errorf("ConnectVersion of a 5.0 CONNECT: %v, %v", v, err)
	}
	if _, err := codec.ConnectVersion(wire(0x10, wconn(3, 0x02), wstr("c"))); !errors.Is(err, codec.ErrUnsupportedVersion) {
		t.Errorf("ConnectVersion of level 3: %v", err)
	}
	if _, err := codec.ConnectVersion(wire(0x10, wconn(4, 0x02), wstr("c"))[:7]); err != codec.ErrIncomplete {
		t.Errorf("ConnectVersion of a prefix: %v", err)
	}
}

// encodeRefusal is a packet value Append must refuse.
type encodeRefusal struct {
	name   string
	v      codec.Version
	p      codec.Packet
	reason codec.ReasonCode
	rule   string // "" when not checked
}

func longString(n int) string { return strings.Repeat("a", n) }

// encodeRefusals: Append refuses what Decode refuses, so the SDK never sends
// a packet its own decoder would call malformed. Most have a decoding twin in
// malformedCases.
var encodeRefusals = []encodeRefusal{
	{"empty SUBSCRIBE 3.1.1 [MQTT-3.8.3-3] (3.1.1)", v3, &codec.Subscribe{PacketID: 1}, proto, "MQTT-3.8.3-2"},
	{"empty SUBSCRIBE 5.0 [MQTT-3.8.3-2] (5.0)", v5, &codec.Subscribe{PacketID: 1}, proto, "MQTT-3.8.3-2"},
	{"empty UNSUBSCRIBE [MQTT-3.10.3-2]", v5, &codec.Unsubscribe{PacketID: 1}, proto, "MQTT-3.10.3-2"},
	{"SUBACK without codes 3.1.1 [MQTT-3.9.3-1]", v3, &codec.Suback{PacketID: 1}, proto, ""},
	{"SUBACK without codes 5.0 [MQTT-3.9.3-1]", v5, &codec.Suback{PacketID: 1}, proto, ""},
	{"UNSUBACK without codes 5.0 [MQTT-3.11.3-1]", v5, &codec.Unsuback{PacketID: 1}, proto, ""},
	{"UNSUBACK with codes 3.1.1", v3, &codec.Unsuback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}}, proto, ""},
	{"3.1.1 password without user name [MQTT-3.1.2-22] (3.1.1)", v3, &codec.Connect{CleanStart: true, ClientID: "c", Password: []byte("pw")}, mal, "MQTT-3.1.2-22"},
	{"3.1.1 password flag without user name [MQTT-3.1.2-22] (3.1.1)", v3, &codec.Connect{CleanStart: true, ClientID: "c", PasswordFlag: true}, mal, "MQTT-3.1.2-22"},
	{"3.1.1 empty client identifier without clean session [MQTT-3.1.3-7] (3.1.1)", v3, &codec.Connect{}, codec.ReasonClientIdentifierNotValid, "MQTT-3.1.3-7"},
	{"client identifier not UTF-8 [MQTT-3.1.3-4]", v5, &codec.Connect{ClientID: "\xff"}, mal, "MQTT-3.1.3-4"},
	{"client identifier over 65535 bytes [§1.5.4]", v5, &codec.Connect{ClientID: longString(65536)}, mal, ""},
	{"user name with U+0000 [MQTT-3.1.3-12] (5.0)", v5, &codec.Connect{Username: "a\x00"}, mal, "MQTT-3.1.3-11"},
	{"user name with a UTF-16 surrogate [MQTT-3.1.3-11] (3.1.1)", v3, &codec.Connect{CleanStart: true, UsernameFlag: true, Username: "\xed\xa0\x80"}, mal, "MQTT-3.1.3-11"},
	{"user name over 65535 bytes", v5, &codec.Connect{Username: longString(65536)}, mal, ""},
	{"password over 65535 bytes", v5, &codec.Connect{Password: make([]byte, 65536)}, mal, ""},
	{"will QoS 3 [MQTT-3.1.2-14] (3.1.1)", v3, &codec.Connect{CleanStart: true, Will: &codec.Will{QoS: 3, Topic: "w"}}, mal, "MQTT-3.1.2-12"},
	{"will QoS 3 [MQTT-3.1.2-12] (5.0)", v5, &codec.Connect{Will: &codec.Will{QoS: 3, Topic: "w"}}, mal, "MQTT-3.1.2-12"},
	{"will topic not UTF-8 [MQTT-3.1.3-10] (3.1.1)", v3, &codec.Connect{CleanStart: true, Will: &codec.Will{Topic: "\xc3\x28"}}, mal, "MQTT-1.5.4-1"},
	{"will topic not UTF-8 [MQTT-3.1.3-11] (5.0)", v5, &codec.Connect{Will: &codec.Will{Topic: "\xc3\x28"}}, mal, "MQTT-1.5.4-1"},
	{"will topic with a wildcard [MQTT-3.3.2-2]", v5, &codec.Connect{Will: &codec.Will{Topic: "w/#"}}, mal, "MQTT-3.3.2-2"},
	{"empty will topic [MQTT-4.7.3-1]", v5, &codec.Connect{Will: &codec.Will{}}, mal, "MQTT-4.7.3-1"},
	{"will payload over 65535 bytes", v5, &codec.Connect{Will: &codec.Will{Topic: "w", Payload: make([]byte, 65536)}}, mal, ""},
	{"CONNECT properties on 3.1.1", v3, &codec.Connect{CleanStart: true, Props: codec.Properties{SessionExpiry: 1}}, proto, ""},
	{"will properties on 3.1.1", v3, &codec.Connect{CleanStart: true, Will: &codec.Will{Topic: "w", Props: codec.Properties{WillDelay: 1}}}, proto, ""},
	{"topic alias not allowed in CONNECT [§2.2.2.2]", v5, &codec.Connect{Props: codec.Properties{TopicAlias: 1}}, mal, "§2.2.2.2"},
	{"session expiry not allowed in the will [§2.2.2.2]", v5, &codec.Connect{Will: &codec.Will{Topic: "w", Props: codec.Properties{SessionExpiry: 1}}}, mal, "§2.2.2.2"},
	{"receive maximum 0 [§3.1.2.11.3]", v5, &codec.Connect{Props: codec.Properties{Present: present(codec.PropReceiveMaximum)}}, proto, "§3.1.2.11.3"},
	{"maximum packet size 0 [§3.1.2.11.4]", v5, &codec.Connect{Props: codec.Properties{Present: present(codec.PropMaximumPacketSize)}}, proto, "§3.1.2.11.4"},
	{"request problem information 2 [§3.1.2.11.7]", v5, &codec.Connect{Props: codec.Properties{RequestProblemInfo: 2}}, proto, "§3.1.2.11.7"},
	{"authentication data without method [§3.1.2.11.10]", v5, &codec.Connect{Props: codec.Properties{AuthData: []byte{1}}}, proto, "§3.1.2.11.10"},
	{"topic over 65535 bytes [MQTT-4.7.3-3]", v5, &codec.Publish{Topic: longString(65536)}, mal, "MQTT-4.7.3-3"},
	{"PUBLISH QoS 3 [MQTT-3.3.1-4]", v5, &codec.Publish{QoS: 3, PacketID: 1, Topic: "t"}, mal, "MQTT-3.3.1-4"},
	{"PUBLISH DUP on QoS 0 [MQTT-3.3.1-2]", v3, &codec.Publish{Dup: true, Topic: "t"}, mal, "MQTT-3.3.1-2"},
	{"PUBLISH QoS 1 packet identifier 0 [MQTT-2.2.1-3] [MQTT-2.3.1-1] (3.1.1)", v3, &codec.Publish{QoS: 1, Topic: "t"}, proto, "MQTT-2.2.1-3"},
	{"PUBLISH QoS 0 with a packet identifier [MQTT-2.2.1-2] [MQTT-2.3.1-5] (3.1.1)", v3, &codec.Publish{PacketID: 1, Topic: "t"}, proto, "MQTT-2.2.1-2"},
	{"wildcard '+' in topic name [MQTT-3.3.2-2] [MQTT-4.7.1-1] (3.1.1)", v3, &codec.Publish{Topic: "a/+"}, mal, "MQTT-3.3.2-2"},
	{"wildcard '#' in topic name [MQTT-3.3.2-2] [MQTT-4.7.0-1]", v5, &codec.Publish{Topic: "#"}, mal, "MQTT-3.3.2-2"},
	{"wildcard after a multi-byte character [MQTT-3.3.2-2]", v5, &codec.Publish{Topic: "é/#"}, mal, "MQTT-3.3.2-2"},
	{"topic name with U+0000 [MQTT-4.7.3-2]", v5, &codec.Publish{Topic: "a\x00"}, mal, "MQTT-4.7.3-2"},
	{"topic name not UTF-8 [MQTT-1.5.3-1] (3.1.1)", v3, &codec.Publish{Topic: "\xc0\xaf"}, mal, "MQTT-1.5.4-1"},
	{"empty topic name 3.1.1 [MQTT-4.7.3-1]", v3, &codec.Publish{}, proto, "MQTT-3.3.2-1"},
	{"empty topic name 3.1.1 even with a topic alias", v3, &codec.Publish{Props: codec.Properties{TopicAlias: 1}}, proto, ""},
	{"empty topic name 5.0 without topic alias [MQTT-3.3.2-1]", v5, &codec.Publish{}, proto, "MQTT-3.3.2-1"},
	{"PUBLISH properties on 3.1.1", v3, &codec.Publish{Topic: "t", Props: codec.Properties{ContentType: "x"}}, proto, ""},
	{"topic alias 0 [MQTT-3.3.2-8]", v5, &codec.Publish{Topic: "t", Props: codec.Properties{Present: present(codec.PropTopicAlias)}}, proto, "MQTT-3.3.2-8"},
	{"payload format indicator 2 [§3.3.2.3.2]", v5, &codec.Publish{Topic: "t", Props: codec.Properties{PayloadFormat: 2}}, proto, "§3.3.2.3.2"},
	{"reason string not allowed in PUBLISH [§2.2.2.2]", v5, &codec.Publish{Topic: "t", Props: codec.Properties{ReasonString: "r"}}, mal, "§2.2.2.2"},
	{"subscription identifier 0 [§3.3.2.3.8]", v5, &codec.Publish{Topic: "t", Props: codec.Properties{SubscriptionIDs: []uint32{0}}}, proto, ""},
	{"subscription identifier over 268435455", v5, &codec.Publish{Topic: "t", Props: codec.Properties{SubscriptionIDs: []uint32{1 << 28}}}, proto, ""},
	{"response topic with a wildcard [MQTT-3.3.2-14]", v5, &codec.Publish{Topic: "t", Props: codec.Properties{ResponseTopic: "r/+"}}, mal, "MQTT-3.3.2-14"},
	{"response topic not UTF-8 [MQTT-3.3.2-13]", v5, &codec.Publish{Topic: "t", Props: codec.Properties{ResponseTopic: "\xc3\x28"}}, mal, "MQTT-1.5.4-1"},
	{"content type with U+0000 [MQTT-1.5.4-2] [MQTT-3.3.2-19]", v5, &codec.Publish{Topic: "t", Props: codec.Properties{ContentType: "\x00"}}, mal, "MQTT-1.5.4-1"},
	{"content type over 65535 bytes", v5, &codec.Publish{Topic: "t", Props: codec.Properties{ContentType: longString(65536)}}, mal, ""},
	{"user property not UTF-8 [MQTT-1.5.7-1]", v5, &codec.Publish{Topic: "t", Props: codec.Properties{User: []codec.UserProperty{{Key: "k", Value: "\xff"}}}}, mal, "MQTT-1.5.7-1"},
	{"correlation data over 65535 bytes", v5, &codec.Publish{Topic: "t", Props: codec.Properties{CorrelationData: make([]byte, 65536)}}, mal, ""},
	{"CONNACK 3.1.1 return code 6 [§3.2.2.3]", v3, &codec.Connack{ReasonCode: 6}, proto, "§3.2.2.3"},
	{"CONNACK 5.0 reason code 0x04 [MQTT-3.2.2-8]", v5, &codec.Connack{ReasonCode: 0x04}, proto, "MQTT-3.2.2-8"},
	{"CONNACK session present with a refusal [MQTT-3.2.2-6]", v5, &codec.Connack{SessionPresent: true, ReasonCode: 0x80}, proto, "MQTT-3.2.2-6"},
	{"CONNACK properties on 3.1.1", v3, &codec.Connack{Props: codec.Properties{ReasonString: "r"}}, proto, ""},
	{"CONNACK maximum QoS 2 [§3.2.2.3.4]", v5, &codec.Connack{Props: codec.Properties{MaximumQoS: 2}}, proto, "§3.2.2.3.4"},
	{"CONNACK will delay not allowed [§2.2.2.2]", v5, &codec.Connack{Props: codec.Properties{WillDelay: 1}}, mal, "§2.2.2.2"},
	{"PUBACK packet identifier 0 [MQTT-2.2.1-3]", v5, &codec.Puback{}, proto, "MQTT-2.2.1-3"},
	{"PUBACK reason code on 3.1.1", v3, &codec.Puback{PacketID: 1, ReasonCode: 0x10}, proto, ""},
	{"PUBACK properties on 3.1.1", v3, &codec.Puback{PacketID: 1, Props: codec.Properties{ReasonString: "r"}}, proto, ""},
	{"PUBACK reason code 0x92 [MQTT-3.4.2-1]", v5, &codec.Puback{PacketID: 1, ReasonCode: 0x92}, proto, "MQTT-3.4.2-1"},
	{"PUBREC content type not allowed [§2.2.2.2]", v5, &codec.Pubrec{PacketID: 1, Props: codec.Properties{ContentType: "c"}}, mal, "§2.2.2.2"},
	{"PUBREL reason code 0x10 [MQTT-3.6.2-1]", v5, &codec.Pubrel{PacketID: 1, ReasonCode: 0x10}, proto, "MQTT-3.6.2-1"},
	{"PUBCOMP packet identifier 0 [MQTT-2.2.1-3]", v3, &codec.Pubcomp{}, proto, "MQTT-2.2.1-3"},
	{"SUBSCRIBE packet identifier 0 [MQTT-2.2.1-3]", v5, &codec.Subscribe{Subscriptions: []codec.Subscription{{Filter: "a"}}}, proto, "MQTT-2.2.1-3"},
	{"misplaced '#' in a filter [MQTT-4.7.1-1] (5.0)", v5, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a/#/b"}}}, mal, "MQTT-4.7.1-1"},
	{"misplaced '+' in a filter [MQTT-4.7.1-3] (3.1.1)", v3, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a+"}}}, mal, "MQTT-4.7.1-2"},
	{"misplaced '#' in a filter [MQTT-4.7.1-2] (3.1.1)", v3, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "#/a"}}}, mal, "MQTT-4.7.1-1"},
	{"topic filter not UTF-8 [MQTT-3.8.3-1] (3.1.1)", v3, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "\xc3\x28"}}}, mal, "MQTT-1.5.4-1"},
	{"topic filter with U+0000 [MQTT-3.8.3-1] (5.0)", v5, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a\x00"}}}, mal, "MQTT-1.5.4-1"},
	{"empty filter [MQTT-4.7.3-1]", v3, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: ""}}}, mal, "MQTT-4.7.3-1"},
	{"filter over 65535 bytes [MQTT-4.7.3-3]", v5, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: longString(65536)}}}, mal, "MQTT-4.7.3-3"},
	{"shared subscription without share name [MQTT-4.8.2-1]", v5, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "$share//a"}}}, proto, "MQTT-4.8.2-1"},
	{"subscription QoS 3 on 3.1.1 [MQTT-3-8.3-4] (3.1.1)", v3, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a", QoS: 3}}}, mal, "MQTT-3.8.3-4"},
	{"subscription QoS 3 on 5.0 [§3.8.3.1]", v5, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a", QoS: 3}}}, proto, "§3.8.3.1"},
	{"no local on 3.1.1", v3, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a", NoLocal: true}}}, proto, ""},
	{"retain handling 3 [§3.8.3.1]", v5, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a", RetainHandling: 3}}}, proto, "§3.8.3.1"},
	{"no local on a shared subscription [MQTT-3.8.3-4] (5.0)", v5, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "$share/g/a", NoLocal: true}}}, proto, "MQTT-3.8.3-4"},
	{"two subscription identifiers in SUBSCRIBE [§3.8.2.1.2]", v5, &codec.Subscribe{PacketID: 1, Props: codec.Properties{SubscriptionIDs: []uint32{1, 2}}, Subscriptions: []codec.Subscription{{Filter: "a"}}}, proto, "§3.8.2.1.2"},
	{"reason string not allowed in SUBSCRIBE [§2.2.2.2]", v5, &codec.Subscribe{PacketID: 1, Props: codec.Properties{ReasonString: "r"}, Subscriptions: []codec.Subscription{{Filter: "a"}}}, mal, "§2.2.2.2"},
	{"SUBACK 3.1.1 return code 0x8F [MQTT-3.9.3-2]", v3, &codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0x8f}}, proto, "MQTT-3.9.3-2"},
	{"SUBACK 5.0 reason code 0x11 [MQTT-3.9.3-2]", v5, &codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0x11}}, proto, "MQTT-3.9.3-2"},
	{"UNSUBSCRIBE packet identifier 0 [MQTT-2.2.1-3] [MQTT-2.3.1-1] (3.1.1)", v3, &codec.Unsubscribe{Filters: []string{"a"}}, proto, "MQTT-2.2.1-3"},
	{"UNSUBSCRIBE misplaced '+' [MQTT-4.7.1-2] (5.0)", v5, &codec.Unsubscribe{PacketID: 1, Filters: []string{"+a"}}, mal, "MQTT-4.7.1-2"},
	{"UNSUBSCRIBE topic filter not UTF-8 [MQTT-3.10.3-1] (3.1.1)", v3, &codec.Unsubscribe{PacketID: 1, Filters: []string{"\xc3\x28"}}, mal, "MQTT-1.5.4-1"},
	{"UNSUBSCRIBE topic filter not UTF-8 [MQTT-3.10.3-1] (5.0)", v5, &codec.Unsubscribe{PacketID: 1, Filters: []string{"\xed\xb0\x80"}}, mal, "MQTT-1.5.4-1"},
	{"UNSUBACK 5.0 reason code 0x02 [MQTT-3.11.3-2]", v5, &codec.Unsuback{PacketID: 1, ReasonCodes: []codec.ReasonCode{2}}, proto, "MQTT-3.11.3-2"},
	{"DISCONNECT reason code on 3.1.1", v3, &codec.Disconnect{ReasonCode: 0x04}, proto, ""},
	{"DISCONNECT properties on 3.1.1", v3, &codec.Disconnect{Props: codec.Properties{ReasonString: "r"}}, proto, ""},
	{"DISCONNECT reason code 0x18 [MQTT-3.14.2-1]", v5, &codec.Disconnect{ReasonCode: 0x18}, proto, "MQTT-3.14.2-1"},
	{"topic alias not allowed in DISCONNECT [§2.2.2.2]", v5, &codec.Disconnect{Props: codec.Properties{TopicAlias: 3}}, mal, "§2.2.2.2"},
	{"AUTH on 3.1.1", v3, &codec.Auth{}, proto, ""},
	{"AUTH reason code 0x80 [MQTT-3.15.2-1]", v5, &codec.Auth{ReasonCode: 0x80}, proto, "MQTT-3.15.2-1"},
	{"AUTH properties without method [§3.15.2.2.2]", v5, &codec.Auth{ReasonCode: 0x18, Props: codec.Properties{AuthData: []byte{1}}}, proto, "§3.15.2.2.2"},
	{"AUTH continue without any property [§3.15.2.2.2]", v5, &codec.Auth{ReasonCode: 0x18}, proto, "§3.15.2.2.2"},
}

func TestAppendRefuses(t *testing.T) {
	for _, c := range encodeRefusals {
		t.Run(c.v.String()+"/"+c.name, func(t *testing.T) {
			dst := []byte{1, 2, 3}
			out, err := c.p.Append(dst, c.v)
			var e *codec.Error
			if !errors.As(err, &e) {
				t.Fatalf("Append: %v (% x), want *codec.Error", err, head(out))
			}
			if e.Reason != c.reason || e.Type != c.p.Type() || e.Offset != -1 {
				t.Errorf("got reason %#02x type %v offset %d (%v), want reason %#02x type %v offset -1",
					byte(e.Reason), e.Type, e.Offset, e, byte(c.reason), c.p.Type())
			}
			if c.rule != "" && e.Rule != c.rule {
				t.Errorf("rule %q, want %q (%v)", e.Rule, c.rule, e)
			}
			if strings.Contains(err.Error(), "%!") {
				t.Errorf("badly formatted error %q", err)
			}
			if len(out) != 3 || out[0] != 1 || out[2] != 3 {
				t.Errorf("Append changed dst on refusal: % x", head(out))
			}
			if _, err2 := codec.Append(nil, c.p, c.v); !sameError(err, err2) {
				t.Errorf("codec.Append: %v, method: %v", err2, err)
			}
			// Size does not validate, but must not panic.
			_ = c.p.Size(c.v)
			_ = c.p.String()
		})
	}
}

func TestAppendRefusesNilAndBadVersion(t *testing.T) {
	if _, err := codec.Append(nil, nil, v5); !errors.Is(err, codec.ErrProtocol) {
		t.Errorf("Append(nil packet): %v", err)
	}
	pkts := []codec.Packet{&codec.Connect{}, &codec.Connack{}, &codec.Publish{Topic: "t"}, &codec.Puback{PacketID: 1},
		&codec.Pubrec{PacketID: 1}, &codec.Pubrel{PacketID: 1}, &codec.Pubcomp{PacketID: 1},
		&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a"}}},
		&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}}, &codec.Unsubscribe{PacketID: 1, Filters: []string{"a"}},
		&codec.Unsuback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}}, &codec.Pingreq{}, &codec.Pingresp{},
		&codec.Disconnect{}, &codec.Auth{}}
	for _, p := range pkts {
		for _, v := range []codec.Version{0, 3, 6} {
			if _, err := p.Append(nil, v); !errors.Is(err, codec.ErrUnsupportedVersion) {
				t.Errorf("%v.Append with version %d: %v", p.Type(), v, err)
			}
		}
	}
}

// TestErrorText checks the format of the error message and that it never
// carries payload bytes.
func TestErrorText(t *testing.T) {
	secret := "s3cr3t-payload"
	b := wire(0x36, wstr("t"), whex("00 01"), []byte(secret))
	_, _, err := codec.Decode(b, v3)
	want := "zmqtt: malformed packet: PUBLISH at byte 0: QoS 3 is not allowed [MQTT-3.3.1-4]"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	_, err = (&codec.Publish{QoS: 1, Topic: "t", Payload: []byte(secret)}).Append(nil, v5)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "(encoding)") {
		t.Errorf("encoding error: %v", err)
	}
	_ = fmt.Sprint(err)
}

// TestPropertyValueErrorOffset: a property whose value breaks a range rule
// is reported at the byte where that property starts, not at the end of
// the property list.
func TestPropertyValueErrorOffset(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		at   int
		rule string
	}{
		{
			// PUBLISH "a/b", Message Expiry Interval 60, then Payload
			// Format Indicator 2, then the payload "x".
			name: "payload format indicator 2 [§3.3.2.3.2]",
			b: []byte{0x30, 14, 0, 3, 'a', '/', 'b',
				7, 0x02, 0, 0, 0, 60, 0x01, 2,
				'x'},
			at:   13,
			rule: "§3.3.2.3.2",
		},
		{
			// PUBLISH "a/b", a User Property k=v, then Response Topic "r/#".
			name: "response topic with a wildcard [MQTT-3.3.2-14]",
			b: []byte{0x30, 19, 0, 3, 'a', '/', 'b',
				13, 0x26, 0, 1, 'k', 0, 1, 'v', 0x08, 0, 3, 'r', '/', '#'},
			at:   15,
			rule: "MQTT-3.3.2-14",
		},
		{
			// PUBLISH "a/b", Topic Alias 0 first in the list.
			name: "topic alias 0 [MQTT-3.3.2-8]",
			b:    []byte{0x30, 9, 0, 3, 'a', '/', 'b', 3, 0x23, 0, 0},
			at:   8,
			rule: "MQTT-3.3.2-8",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := codec.Decode(c.b, codec.V5)
			var e *codec.Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode: %v, want a *codec.Error", err)
			}
			if e.Rule != c.rule || e.Offset != c.at {
				t.Errorf("got rule %q at byte %d (%v); want %q at byte %d", e.Rule, e.Offset, e, c.rule, c.at)
			}
		})
	}
}
