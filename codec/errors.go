package codec

import (
	"errors"
	"strconv"
)

// ErrIncomplete reports that a byte slice holds less than one whole packet.
// It is not an error of the packet: read more bytes and try again. It is
// never wrapped in an *Error.
var ErrIncomplete = errors.New("zmqtt: incomplete packet")

// Sentinels for the kinds of *Error, to match with errors.Is.
var (
	// ErrMalformed matches an *Error whose Reason is ReasonMalformedPacket:
	// the bytes cannot be parsed as the spec describes.
	ErrMalformed = errors.New("zmqtt: malformed packet")
	// ErrProtocol matches an *Error whose Reason is ReasonProtocolError (or
	// another rule-level reason such as ReasonTopicAliasInvalid): the packet
	// parses but breaks a rule of the protocol.
	ErrProtocol = errors.New("zmqtt: protocol error")
	// ErrPacketTooLarge matches an *Error whose Reason is
	// ReasonPacketTooLarge: the packet is above a maximum packet size.
	ErrPacketTooLarge = errors.New("zmqtt: packet too large")
	// ErrUnsupportedVersion matches an *Error whose Reason is
	// ReasonUnsupportedProtocolVersion: a CONNECT names a protocol or level
	// this codec does not speak, or a caller passed an invalid Version.
	ErrUnsupportedVersion = errors.New("zmqtt: unsupported protocol version")
	// ErrInvalidTopic matches every topic name or topic filter that fails
	// validation, from ValidateTopicName and ValidateTopicFilter, and the
	// *Error of a packet that carries one.
	ErrInvalidTopic = errors.New("zmqtt: invalid topic")
)

// Error is the one error type of the codec for a packet that is malformed,
// breaks a protocol rule or is too large, found while decoding or while
// encoding. Reason is the MQTT 5.0 reason code a receiver sends in its
// DISCONNECT (or CONNACK); on MQTT 3.1.1 the connection is simply closed.
type Error struct {
	Reason ReasonCode // ReasonMalformedPacket, ReasonProtocolError, ReasonPacketTooLarge, ...
	Type   Type       // the packet type, 0 when it was not known yet
	Offset int        // byte offset in the packet where decoding failed; -1 when encoding
	Rule   string     // the rule broken: a normative statement id such as "MQTT-3.3.1-4", or "§2.2.2.2" where the specification states the rule without one; may be empty
	Msg    string     // what is wrong, in lower case
	Err    error      // an underlying cause, such as a *TopicError; may be nil
}

// Error formats the error as
// "zmqtt: malformed packet: PUBLISH at byte 0: QoS 3 is not allowed [MQTT-3.3.1-4]".
// It never contains payload bytes.
func (e *Error) Error() string {
	b := make([]byte, 0, 96)
	b = append(b, "zmqtt: "...)
	b = append(b, e.Reason.String()...)
	if e.Type != 0 {
		b = append(b, ": "...)
		b = append(b, e.Type.String()...)
	}
	if e.Offset >= 0 {
		b = append(b, " at byte "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
	} else {
		b = append(b, " (encoding)"...)
	}
	if e.Msg != "" {
		b = append(b, ": "...)
		b = append(b, e.Msg...)
	}
	if e.Rule != "" {
		b = append(b, " ["...)
		b = append(b, e.Rule...)
		b = append(b, ']')
	}
	return string(b)
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrMalformed) and the other sentinels match by
// reason code.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrMalformed:
		return e.Reason == ReasonMalformedPacket
	case ErrProtocol:
		return e.Reason == ReasonProtocolError || e.Reason == ReasonTopicAliasInvalid ||
			e.Reason == ReasonReceiveMaximumExceeded
	case ErrPacketTooLarge:
		return e.Reason == ReasonPacketTooLarge
	case ErrUnsupportedVersion:
		return e.Reason == ReasonUnsupportedProtocolVersion
	case ErrInvalidTopic:
		return e.Reason == ReasonTopicNameInvalid || e.Reason == ReasonTopicFilterInvalid
	}
	return false
}

// newErr builds an *Error. Offsets are relative to the start of the packet.
func newErr(reason ReasonCode, t Type, off int, rule, msg string) *Error {
	return &Error{Reason: reason, Type: t, Offset: off, Rule: rule, Msg: msg}
}

func malformed(t Type, off int, rule, msg string) *Error {
	return newErr(ReasonMalformedPacket, t, off, rule, msg)
}

func protocolErr(t Type, off int, rule, msg string) *Error {
	return newErr(ReasonProtocolError, t, off, rule, msg)
}

// encErr builds the *Error of a packet that Append refuses to write.
func encErr(reason ReasonCode, t Type, rule, msg string) *Error {
	return newErr(reason, t, -1, rule, msg)
}

// TopicError reports a topic name or topic filter that breaks the rules of
// section 4.7. It matches ErrInvalidTopic with errors.Is.
type TopicError struct {
	Topic  string // the topic or filter as given (may be long; never a payload)
	Filter bool   // true for a topic filter, false for a topic name
	Rule   string // the rule broken, as in Error.Rule
	Msg    string // what is wrong
}

// Error formats the error as `zmqtt: invalid topic filter "a/#/b": ...`.
func (e *TopicError) Error() string {
	kind := "topic name"
	if e.Filter {
		kind = "topic filter"
	}
	t := e.Topic
	if len(t) > 64 {
		t = t[:64] + "..."
	}
	s := "zmqtt: invalid " + kind + " " + strconv.Quote(t) + ": " + e.Msg
	if e.Rule != "" {
		s += " [" + e.Rule + "]"
	}
	return s
}

// Is makes errors.Is(err, ErrInvalidTopic) true.
func (e *TopicError) Is(target error) bool { return target == ErrInvalidTopic }
