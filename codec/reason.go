package codec

import "strconv"

// ReasonCode is an MQTT 5.0 reason code [§2.4]. On MQTT 3.1.1 the same
// type carries the CONNACK return code (0 to 5) and the SUBACK return codes
// (0, 1, 2 and 0x80), whose values the codec keeps as they are on the wire.
type ReasonCode byte

// The MQTT 5.0 reason codes. Several codes share the value 0: Success,
// Normal disconnection and Granted QoS 0.
const (
	ReasonSuccess                     ReasonCode = 0x00
	ReasonNormalDisconnection         ReasonCode = 0x00
	ReasonGrantedQoS0                 ReasonCode = 0x00
	ReasonGrantedQoS1                 ReasonCode = 0x01
	ReasonGrantedQoS2                 ReasonCode = 0x02
	ReasonDisconnectWithWill          ReasonCode = 0x04
	ReasonNoMatchingSubscribers       ReasonCode = 0x10
	ReasonNoSubscriptionExisted       ReasonCode = 0x11
	ReasonContinueAuthentication      ReasonCode = 0x18
	ReasonReauthenticate              ReasonCode = 0x19
	ReasonUnspecifiedError            ReasonCode = 0x80
	ReasonMalformedPacket             ReasonCode = 0x81
	ReasonProtocolError               ReasonCode = 0x82
	ReasonImplementationSpecificError ReasonCode = 0x83
	ReasonUnsupportedProtocolVersion  ReasonCode = 0x84
	ReasonClientIdentifierNotValid    ReasonCode = 0x85
	ReasonBadUserNameOrPassword       ReasonCode = 0x86
	ReasonNotAuthorized               ReasonCode = 0x87
	ReasonServerUnavailable           ReasonCode = 0x88
	ReasonServerBusy                  ReasonCode = 0x89
	ReasonBanned                      ReasonCode = 0x8A
	ReasonServerShuttingDown          ReasonCode = 0x8B
	ReasonBadAuthenticationMethod     ReasonCode = 0x8C
	ReasonKeepAliveTimeout            ReasonCode = 0x8D
	ReasonSessionTakenOver            ReasonCode = 0x8E
	ReasonTopicFilterInvalid          ReasonCode = 0x8F
	ReasonTopicNameInvalid            ReasonCode = 0x90
	ReasonPacketIdentifierInUse       ReasonCode = 0x91
	ReasonPacketIdentifierNotFound    ReasonCode = 0x92
	ReasonReceiveMaximumExceeded      ReasonCode = 0x93
	ReasonTopicAliasInvalid           ReasonCode = 0x94
	ReasonPacketTooLarge              ReasonCode = 0x95
	ReasonMessageRateTooHigh          ReasonCode = 0x96
	ReasonQuotaExceeded               ReasonCode = 0x97
	ReasonAdministrativeAction        ReasonCode = 0x98
	ReasonPayloadFormatInvalid        ReasonCode = 0x99
	ReasonRetainNotSupported          ReasonCode = 0x9A
	ReasonQoSNotSupported             ReasonCode = 0x9B
	ReasonUseAnotherServer            ReasonCode = 0x9C
	ReasonServerMoved                 ReasonCode = 0x9D
	ReasonSharedSubscriptionsNotSupp  ReasonCode = 0x9E
	ReasonConnectionRateExceeded      ReasonCode = 0x9F
	ReasonMaximumConnectTime          ReasonCode = 0xA0
	ReasonSubscriptionIDsNotSupported ReasonCode = 0xA1
	ReasonWildcardSubsNotSupported    ReasonCode = 0xA2
)

// The MQTT 3.1.1 CONNACK return codes [§3.2.2.3]. They travel in
// Connack.ReasonCode on a 3.1.1 connection.
const (
	ReturnAccepted                    ReasonCode = 0
	ReturnUnacceptableProtocolVersion ReasonCode = 1
	ReturnIdentifierRejected          ReasonCode = 2
	ReturnServerUnavailable           ReasonCode = 3
	ReturnBadUserNameOrPassword       ReasonCode = 4
	ReturnNotAuthorized               ReasonCode = 5
)

var reasonNames = map[ReasonCode]string{
	0x00: "success",
	0x01: "granted QoS 1",
	0x02: "granted QoS 2",
	0x04: "disconnect with will message",
	0x10: "no matching subscribers",
	0x11: "no subscription existed",
	0x18: "continue authentication",
	0x19: "re-authenticate",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8B: "server shutting down",
	0x8C: "bad authentication method",
	0x8D: "keep alive timeout",
	0x8E: "session taken over",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x92: "packet identifier not found",
	0x93: "receive maximum exceeded",
	0x94: "topic alias invalid",
	0x95: "packet too large",
	0x96: "message rate too high",
	0x97: "quota exceeded",
	0x98: "administrative action",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "QoS not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

var returnCodeNames = [...]string{
	"connection accepted",
	"unacceptable protocol version",
	"identifier rejected",
	"server unavailable",
	"bad user name or password",
	"not authorized",
}

// String returns the MQTT 5.0 name of the code in lower case, such as
// "packet too large", or "reason code 0xNN" for a value the spec does not
// define. Use Name for the name a code has in one packet type.
func (c ReasonCode) String() string {
	if s, ok := reasonNames[c]; ok {
		return s
	}
	return "reason code 0x" + strconv.FormatUint(uint64(c), 16)
}

// Name returns the name the code has in packet type t of version v: 0x00 is
// "normal disconnection" in DISCONNECT and "granted QoS 0" in SUBACK, and on
// MQTT 3.1.1 a CONNACK carries return codes with names of their own.
func (c ReasonCode) Name(t Type, v Version) string {
	switch {
	case t == TypeConnack && v == V311:
		if int(c) < len(returnCodeNames) {
			return returnCodeNames[c]
		}
		return "return code " + strconv.Itoa(int(c))
	case t == TypeSuback && c == 0:
		return "granted QoS 0"
	case t == TypeDisconnect && c == 0:
		return "normal disconnection"
	}
	return c.String()
}

// Failed reports whether the code says that an operation failed: 0x80 and
// above on MQTT 5.0. On 3.1.1 use it for SUBACK codes only; a CONNACK return
// code failed when it is not zero.
func (c ReasonCode) Failed() bool { return c >= 0x80 }

// ReasonFromReturnCode maps an MQTT 3.1.1 CONNACK return code to the MQTT 5.0
// reason code with the same meaning, so that callers can treat both versions
// alike. Unknown return codes map to ReasonUnspecifiedError.
func ReasonFromReturnCode(rc ReasonCode) ReasonCode {
	switch rc {
	case ReturnAccepted:
		return ReasonSuccess
	case ReturnUnacceptableProtocolVersion:
		return ReasonUnsupportedProtocolVersion
	case ReturnIdentifierRejected:
		return ReasonClientIdentifierNotValid
	case ReturnServerUnavailable:
		return ReasonServerUnavailable
	case ReturnBadUserNameOrPassword:
		return ReasonBadUserNameOrPassword
	case ReturnNotAuthorized:
		return ReasonNotAuthorized
	}
	return ReasonUnspecifiedError
}

// reasonSet is a 256-bit set of reason codes.
type reasonSet [4]uint64

func (s *reasonSet) has(c ReasonCode) bool { return s[c>>6]&(1<<(c&63)) != 0 }

func makeReasonSet(codes ...ReasonCode) reasonSet {
	var s reasonSet
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

// The reason codes each MQTT 5.0 packet type may carry (the tables of
// sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3,
// 3.14.2.1 and 3.15.2.1).
var (
	connackReasons = makeReasonSet(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
		0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)
	pubackReasons     = makeReasonSet(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)
	pubrelReasons     = makeReasonSet(0x00, 0x92)
	subackReasons     = makeReasonSet(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
	subackReasons311  = makeReasonSet(0x00, 0x01, 0x02, 0x80)
	unsubackReasons   = makeReasonSet(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)
	disconnectReasons = makeReasonSet(0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
		0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E,
		0x9F, 0xA0, 0xA1, 0xA2)
	// disconnectClientReasons are the DISCONNECT reason codes a client may
	// send; the others in disconnectReasons are the server's alone.
	disconnectClientReasons = makeReasonSet(0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94,
		0x95, 0x96, 0x97, 0x98, 0x99)
	// disconnectServerReasons are those a server may send.
	disconnectServerReasons = makeReasonSet(0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
		0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E,
		0x9F, 0xA0, 0xA1, 0xA2)
	authReasons = makeReasonSet(0x00, 0x18, 0x19)
)

// ValidReason reports whether packet type t of version v may carry reason
// code c. Packet types without a reason code report false.
func ValidReason(t Type, v Version, c ReasonCode) bool {
	if v == V311 {
		switch t {
		case TypeConnack:
			return c <= ReturnNotAuthorized
		case TypeSuback:
			return subackReasons311.has(c)
		}
		return false
	}
	switch t {
	case TypeConnack:
		return connackReasons.has(c)
	case TypePuback, TypePubrec:
		return pubackReasons.has(c)
	case TypePubrel, TypePubcomp:
		return pubrelReasons.has(c)
	case TypeSuback:
		return subackReasons.has(c)
	case TypeUnsuback:
		return unsubackReasons.has(c)
	case TypeDisconnect:
		return disconnectReasons.has(c)
	case TypeAuth:
		return authReasons.has(c)
	}
	return false
}
