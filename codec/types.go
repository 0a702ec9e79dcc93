package codec

import "strconv"

// Version is the MQTT protocol level carried in CONNECT.
type Version byte

// The protocol versions this codec speaks. The values are the protocol level
// byte of the CONNECT packet.
const (
	V311 Version = 4 // MQTT 3.1.1
	V5   Version = 5 // MQTT 5.0
)

// String returns "3.1.1", "5.0" or "Version(n)" for anything else.
func (v Version) String() string {
	switch v {
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return "Version(" + strconv.Itoa(int(v)) + ")"
}

// Valid reports whether v is a version this codec supports.
func (v Version) Valid() bool { return v == V311 || v == V5 }

// QoS is an MQTT quality-of-service level.
type QoS byte

// The three QoS levels. Any other value is invalid on the wire.
const (
	AtMostOnce  QoS = 0 // QoS 0: fire and forget
	AtLeastOnce QoS = 1 // QoS 1: acknowledged by PUBACK, may be duplicated
	ExactlyOnce QoS = 2 // QoS 2: four-way handshake, delivered once
)

// String returns "QoS 0", "QoS 1", "QoS 2" or "QoS(n)".
func (q QoS) String() string {
	if q <= ExactlyOnce {
		return "QoS " + strconv.Itoa(int(q))
	}
	return "QoS(" + strconv.Itoa(int(q)) + ")"
}

// Valid reports whether q is 0, 1 or 2.
func (q QoS) Valid() bool { return q <= ExactlyOnce }

// Type is an MQTT control packet type, the high nibble of the first byte.
type Type byte

// The control packet types [§2.1.2]. TypeAuth exists in MQTT 5.0 only;
// type 0 is reserved in both versions.
const (
	TypeConnect     Type = 1
	TypeConnack     Type = 2
	TypePublish     Type = 3
	TypePuback      Type = 4
	TypePubrec      Type = 5
	TypePubrel      Type = 6
	TypePubcomp     Type = 7
	TypeSubscribe   Type = 8
	TypeSuback      Type = 9
	TypeUnsubscribe Type = 10
	TypeUnsuback    Type = 11
	TypePingreq     Type = 12
	TypePingresp    Type = 13
	TypeDisconnect  Type = 14
	TypeAuth        Type = 15
)

var typeNames = [16]string{
	"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

// String returns the spec's name of the packet type, such as "PUBLISH".
func (t Type) String() string {
	if t < 16 {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// fixedFlags holds the only flags nibble allowed for each packet type other
// than PUBLISH [MQTT-2.1.3-1]; PUBLISH's flags are checked on their own.
var fixedFlags = [16]byte{
	TypePubrel:      0x2,
	TypeSubscribe:   0x2,
	TypeUnsubscribe: 0x2,
}

// RetainHandling is the MQTT 5.0 subscription option that says whether
// retained messages are sent when a subscription is made [§3.8.3.1].
type RetainHandling byte

// The retain handling values; 3 is a protocol error.
const (
	SendRetained          RetainHandling = 0 // send retained messages at the time of the subscribe
	SendRetainedIfNew     RetainHandling = 1 // send them only if the subscription did not exist
	DoNotSendRetained     RetainHandling = 2 // do not send retained messages
	retainHandlingInvalid RetainHandling = 3
)

// String returns a short description of the retain handling value.
func (r RetainHandling) String() string {
	switch r {
	case SendRetained:
		return "send retained"
	case SendRetainedIfNew:
		return "send retained if new"
	case DoNotSendRetained:
		return "do not send retained"
	}
	return "RetainHandling(" + strconv.Itoa(int(r)) + ")"
}

// Role names one side of an MQTT connection. Decoder uses it to apply the
// rules that depend on who sent a packet (a client never sends CONNACK, a
// server never sends a Subscription Identifier in ... etc.).
type Role byte

// The roles. RoleAny turns direction checks off.
const (
	RoleAny    Role = iota // either side: no direction checks
	RoleClient             // the packet was sent by a client
	RoleServer             // the packet was sent by a server
)

// String returns "client", "server" or "any".
func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleServer:
		return "server"
	}
	return "any"
}

// MaxRemainingLength is the largest Remaining Length a fixed header can carry
// (four bytes of Variable Byte Integer) [§1.5.5].
const MaxRemainingLength = 268_435_455

// MaxPacketSize is the largest possible MQTT packet: a five-byte fixed header
// plus MaxRemainingLength.
const MaxPacketSize = MaxRemainingLength + 5

// MaxSubscriptionID is the largest Subscription Identifier [§3.8.2.1.2].
const MaxSubscriptionID = MaxRemainingLength

// maxString is the longest UTF-8 string or binary field (two-byte length).
const maxString = 65535
