package session

import (
	"errors"
	"strconv"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Sentinel errors of the session. Match them with errors.Is; the typed errors
// below carry the detail and match the sentinels too.
var (
	// ErrNotConnected: the operation needs a connection and there is none.
	ErrNotConnected = errors.New("zmqtt: not connected")
	// ErrConnected: Connect was called while a connection is in use.
	ErrConnected = errors.New("zmqtt: already connected")
	// ErrPacketIDsExhausted: every packet identifier is in use.
	ErrPacketIDsExhausted = errors.New("zmqtt: all packet identifiers are in use")
	// ErrQueueFull: the queue of publishes waiting for the connection or
	// for send quota is full.
	ErrQueueFull = errors.New("zmqtt: publish queue is full")
	// ErrSessionLost: the server did not resume the session, so an
	// unacknowledged QoS 1 or 2 message may not have arrived (only with
	// Config.SessionLost FailOnSessionLost; by default it is published
	// again).
	ErrSessionLost = errors.New("zmqtt: session not present on the server; unacknowledged message lost")
	// ErrConnectionLost: the network connection ended.
	ErrConnectionLost = errors.New("zmqtt: connection lost")
	// ErrTimeout: a deadline of the protocol passed (CONNACK, PINGRESP).
	ErrTimeout = errors.New("zmqtt: timeout")
	// ErrUnsupported: the server said it does not support what the
	// operation needs (QoS, retain, wildcards, shared subscriptions,
	// subscription identifiers), or the protocol version lacks it.
	ErrUnsupported = errors.New("zmqtt: not supported")
	// ErrCanceled: the operation was canceled before anything was sent.
	ErrCanceled = errors.New("zmqtt: canceled")
	// ErrClosed: the session was closed by Disconnect.
	ErrClosed = errors.New("zmqtt: session closed")
	// ErrRefused: the server answered an operation with a failure reason
	// code (CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK).
	ErrRefused = errors.New("zmqtt: refused by the server")
	// ErrProtocol matches every *ProtocolError.
	ErrProtocol = errors.New("zmqtt: protocol error")
	// ErrAuth matches every failure of enhanced authentication.
	ErrAuth = errors.New("zmqtt: authentication failed")
	// ErrInvalidConfig matches the errors of New for a bad Config.
	ErrInvalidConfig = errors.New("zmqtt: invalid session configuration")
	// ErrUnsupportedVersion: the server refused the protocol version of the
	// CONNECT (a CONNACK with reason 0x84, or return code 0x01 on 3.1.1),
	// or answered an MQTT 5.0 CONNECT with an MQTT 3.1.1 CONNACK. It is
	// matched by the *ReasonError of that CONNACK, which also matches
	// ErrRefused and is not Retryable.
	ErrUnsupportedVersion = errors.New("zmqtt: the server does not support this MQTT version")
	// ErrPoisonMessage matches every *PoisonError: the server closed the
	// connection Config.PoisonCloses times in a row after the message was
	// sent.
	ErrPoisonMessage = errors.New("zmqtt: the server keeps closing the connection after this message")
)

// ReasonError is a failure reason code from the server: a refused CONNACK,
// a negative PUBACK or PUBREC, a failed subscription or unsubscription, or a
// DISCONNECT. It matches ErrRefused (and ErrConnectionLost when Packet is
// DISCONNECT) with errors.Is.
type ReasonError struct {
	Packet     codec.Type       // the packet that carried the code
	Code       codec.ReasonCode // on 3.1.1 CONNACK, mapped with codec.ReasonFromReturnCode
	ReturnCode codec.ReasonCode // the 3.1.1 CONNACK return code as sent; 0 otherwise
	Reason     string           // the Reason String property, if the server sent one
	User       []codec.UserProperty
	// ServerReference is the Server Reference property of a CONNACK or
	// DISCONNECT (0x9C use another server, 0x9D server moved).
	ServerReference string
	// Filter is the topic filter a SUBACK or UNSUBACK code belongs to.
	Filter string
	// Note is the session's explanation of the code, when it has one (such
	// as "the broker does not speak MQTT 5.0"); it is not from the server.
	Note string
}

// Error formats the error as "zmqtt: PUBACK: quota exceeded (reason 0x97): <reason string>".
func (e *ReasonError) Error() string {
	s := "zmqtt: " + e.Packet.String()
	if e.Filter != "" {
		s += " " + strconv.Quote(e.Filter)
	}
	s += ": " + e.Code.String() + " (reason 0x" + strconv.FormatUint(uint64(e.Code), 16) + ")"
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Note != "" {
		s += ": " + e.Note
	}
	return s
}

// Is matches ErrRefused, ErrConnectionLost for a DISCONNECT, and
// ErrUnsupportedVersion for a CONNACK with reason 0x84 (unsupported
// protocol version).
func (e *ReasonError) Is(target error) bool {
	switch target {
	case ErrRefused:
		return true
	case ErrConnectionLost:
		return e.Packet == codec.TypeDisconnect
	case ErrUnsupportedVersion:
		return e.Packet == codec.TypeConnack && e.Code == codec.ReasonUnsupportedProtocolVersion
	}
	return false
}

// Retryable reports whether connecting again may succeed without a change
// of configuration: server unavailable, busy, shutting down, moved, quota or
// rate limits, and the like. Bad credentials, a bad client identifier, an
// unsupported protocol version, a ban, a bad authentication method, or a
// session taken over by another client with the same identifier are not.
func (e *ReasonError) Retryable() bool {
	switch e.Code {
	case codec.ReasonUnsupportedProtocolVersion, codec.ReasonClientIdentifierNotValid,
		codec.ReasonBadUserNameOrPassword, codec.ReasonNotAuthorized, codec.ReasonBanned,
		codec.ReasonBadAuthenticationMethod, codec.ReasonMalformedPacket, codec.ReasonProtocolError,
		codec.ReasonTopicNameInvalid, codec.ReasonPacketTooLarge, codec.ReasonPayloadFormatInvalid,
		codec.ReasonRetainNotSupported, codec.ReasonQoSNotSupported,
		codec.ReasonSessionTakenOver: // another client uses our identifier: do not fight it
		return false
	}
	return true
}

// ProtocolError reports a broken protocol rule. Remote is true when the
// server broke it (the session then closes the connection, sending a
// DISCONNECT with Reason on 5.0) and false when the caller asked for
// something the protocol forbids. It matches ErrProtocol, and the matching
// codec sentinel through Err when the codec found it.
type ProtocolError struct {
	Remote bool
	Reason codec.ReasonCode // what a DISCONNECT carries for it
	Rule   string           // the rule broken, as in codec.Error.Rule: "MQTT-4.3.3-9" or a section "§4.9"
	Msg    string
	Err    error // the underlying *codec.Error, if any
}

// Error formats the error.
func (e *ProtocolError) Error() string {
	who := "local"
	if e.Remote {
		who = "server"
	}
	s := "zmqtt: protocol error (" + who + "): " + e.Msg
	if e.Rule != "" {
		s += " [" + e.Rule + "]"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the codec error underneath, if any.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Is matches ErrProtocol.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

func remoteErr(reason codec.ReasonCode, rule, msg string) *ProtocolError {
	return &ProtocolError{Remote: true, Reason: reason, Rule: rule, Msg: msg}
}

// UnsupportedError reports an operation the server's CONNACK said it does
// not support, or a feature the protocol version lacks; it is returned before
// a byte is written. It matches ErrUnsupported.
type UnsupportedError struct {
	Feature string // "QoS 2", "retain", "wildcard subscriptions", ...
	Detail  string
}

// Error formats the error.
func (e *UnsupportedError) Error() string {
	s := "zmqtt: " + e.Feature + " not supported"
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is matches ErrUnsupported.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// TooLargeError reports a packet above the server's Maximum Packet Size,
// refused before it was written. It matches codec.ErrPacketTooLarge.
type TooLargeError struct {
	Size, Max int
}

// Error formats the error.
func (e *TooLargeError) Error() string {
	return "zmqtt: packet of " + strconv.Itoa(e.Size) + " bytes exceeds the server's maximum packet size of " + strconv.Itoa(e.Max)
}

// Is matches codec.ErrPacketTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == codec.ErrPacketTooLarge }

// ConfigError reports a bad Config field. It matches ErrInvalidConfig.
type ConfigError struct {
	Field, Msg string
}

// Error formats the error.
func (e *ConfigError) Error() string { return "zmqtt: config " + e.Field + ": " + e.Msg }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// PoisonError is the failure of a QoS 1 or 2 publish after the server ended
// the connection Config.PoisonCloses times in a row with this message as the
// oldest unacknowledged PUBLISH sent on the connection. It matches
// ErrPoisonMessage.
type PoisonError struct {
	Closes int // how many times in a row the server closed the connection
	Size   int // the encoded PUBLISH packet, in bytes
}

// Error formats the error.
func (e *PoisonError) Error() string {
	return "zmqtt: the server closed the connection " + strconv.Itoa(e.Closes) +
		" times in a row after this message was sent; it is likely larger than the server's maximum packet size (the message is " +
		strconv.Itoa(e.Size) + " bytes) or refused by the server's policy"
}

// Is matches ErrPoisonMessage.
func (e *PoisonError) Is(target error) bool { return target == ErrPoisonMessage }
