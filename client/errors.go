package client

import (
	"errors"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// Errors. The client reports the session's and the codec's errors as they
// are, so errors.Is and errors.As work across the layers; the names below
// are the same values.
var (
	// ErrNotConnected: an operation that needs the connection (Ping, Info)
	// while there is none.
	ErrNotConnected = session.ErrNotConnected
	// ErrConnectionLost: the network connection ended. Errors that end a
	// connection (a ping timeout, the server's DISCONNECT) match it too.
	ErrConnectionLost = session.ErrConnectionLost
	// ErrTimeout: no CONNACK or PINGRESP in time.
	ErrTimeout = session.ErrTimeout
	// ErrClosed: the client was disconnected or gave up reconnecting.
	ErrClosed = session.ErrClosed
	// ErrRefused: the server answered with a failure reason code; the error
	// is a *ReasonError.
	ErrRefused = session.ErrRefused
	// ErrProtocol: the server broke the protocol, or the caller asked for
	// something it forbids; the error is a *ProtocolError.
	ErrProtocol = session.ErrProtocol
	// ErrUnsupported: the server (or the protocol version) does not support
	// what the operation needs.
	ErrUnsupported = session.ErrUnsupported
	// ErrInvalidTopic: a topic name or filter breaks the rules of MQTT.
	ErrInvalidTopic = codec.ErrInvalidTopic
	// ErrQueueFull: too many publishes wait for the connection or quota.
	ErrQueueFull = session.ErrQueueFull
	// ErrSessionLost: the broker did not resume the session, so a QoS 1/2
	// message sent before may not have arrived.
	ErrSessionLost = session.ErrSessionLost
	// ErrAuth: enhanced authentication failed.
	ErrAuth = session.ErrAuth
	// ErrUnsupportedVersion: the broker does not speak the protocol version
	// of the client: a CONNACK 0x84, a 3.1.1 return code 1, or a 3.1.1
	// CONNACK in answer to a 5.0 CONNECT. It is final: use the other client
	// type (New for 3.1.1, New5 for 5.0).
	ErrUnsupportedVersion = session.ErrUnsupportedVersion
	// ErrPoisonMessage: the broker closed the connection Config.PoisonCloses
	// times in a row right after a QoS 1/2 message was sent (typically a
	// message larger than its unannounced maximum packet size); the message
	// was withdrawn so the connection could stay up. The error is a
	// *PoisonError.
	ErrPoisonMessage = session.ErrPoisonMessage
	// ErrSubscriptionClosed: Next on a closed Subscription.
	ErrSubscriptionClosed = errors.New("zmqtt: subscription closed")
)

// ReasonError is a failure reason code from the server: a refused CONNACK,
// PUBACK/PUBREC, SUBACK or UNSUBACK, or the server's DISCONNECT. It carries
// the code, the reason string, user properties and the filter concerned.
type ReasonError = session.ReasonError

// PoisonError is the failure of a publish the broker kept closing the
// connection over: how many closes in a row and the packet's size.
type PoisonError = session.PoisonError

// ProtocolError reports a broken protocol rule, by the server (Remote) or
// by the caller.
type ProtocolError = session.ProtocolError

// UnsupportedError reports an operation the server does not support.
type UnsupportedError = session.UnsupportedError

// SafeToRetry reports whether an operation that failed with err can be
// tried again unchanged: connection losses and timeouts, and server codes
// that say "later" (server busy, quota exceeded, ...). Bad input, refused
// credentials and protocol errors are not.
func SafeToRetry(err error) bool {
	var re *ReasonError
	if errors.As(err, &re) {
		return re.Retryable()
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Remote
	}
	return errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrNotConnected)
}

// ConfigError reports a bad Config field: New and New5 return it for an
// unusable URL or Servers entry and for every option the session refuses.
// It matches session.ErrInvalidConfig.
type ConfigError = session.ConfigError
