package session

import (
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Token names one command (a publish, subscribe, unsubscribe, ping or
// re-authentication) so that its completion event can be matched to it.
// Tokens are never 0 and never reused by a Session.
type Token uint64

// Handle names a subscription of the caller's. The session routes incoming
// messages to handles; what a handle stands for is the caller's business.
type Handle uint64

// AckID identifies an incoming QoS 1 or 2 message that waits for Ack. It is
// 0 for messages that need no acknowledgement.
type AckID uint64

// EventKind says what an Event reports.
type EventKind uint8

// The kinds of events.
const (
	// EventConnected: the server accepted the connection; Info holds what
	// its CONNACK said.
	EventConnected EventKind = iota + 1
	// EventMessage: an incoming message (Message) for one or more handles.
	EventMessage
	// EventUnrouted: an incoming message no subscription matches. QoS 1 and
	// 2 messages are acknowledged (the application decided to drop them by
	// not subscribing), except those held for a resumed session whose time
	// ran out (Config.HoldTimeout): they come with Message.Held set and
	// stay unacknowledged until the caller gives their Message.Ack, once it
	// has handed them on.
	EventUnrouted
	// EventPublished: a publish finished: Token, Err (nil on success),
	// Code and Props of the acknowledgement on 5.0.
	EventPublished
	// EventSubscribed: a SUBACK arrived: Token, Codes (one per filter), Err
	// when any filter failed (a *ReasonError for the first failure).
	EventSubscribed
	// EventUnsubscribed: an UNSUBACK arrived: Token, Filters (those the
	// UNSUBSCRIBE carried, one per entry of Codes on 5.0), Codes (5.0),
	// Err. It also comes, with no Filters, when no packet was needed.
	EventUnsubscribed
	// EventPong: a PINGRESP answered the Ping with this Token; RTT is the
	// round-trip time.
	EventPong
	// EventAuthenticated: a re-authentication finished (Token, Err).
	EventAuthenticated
	// EventRestoreFailed: a subscription the session restored after a
	// reconnect was refused; Handle and Err say which and why.
	EventRestoreFailed
	// EventClosed: the connection must be closed now: Err says why (a
	// *ReasonError for the server's DISCONNECT or a refused CONNACK, a
	// *ProtocolError, ErrTimeout, ErrConnectionLost, or nil after a normal
	// Disconnect). Bytes the session queued before it (a DISCONNECT) should
	// be written first. The session is back in the disconnected phase.
	EventClosed
)

var eventNames = [...]string{"", "connected", "message", "unrouted", "published", "subscribed",
	"unsubscribed", "pong", "authenticated", "restore-failed", "closed"}

// String returns the kind's name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "event?"
}

// Event is one output of the session. Which fields are set depends on Kind.
// An Event and the Message it points to are valid until the next call of a
// Handle method or command on the Session.
type Event struct {
	Kind    EventKind
	Token   Token
	Handle  Handle
	Err     error
	Message *Message         // EventMessage, EventUnrouted
	Code    codec.ReasonCode // EventPublished (5.0), EventAuthenticated
	Codes   []codec.ReasonCode
	Filters []string          // EventUnsubscribed: the filters the UNSUBSCRIBE carried
	Props   *codec.Properties // properties of the acknowledgement, when any
	RTT     time.Duration     // EventPong
	Info    *ConnInfo         // EventConnected; the session never changes it, so it may be kept
}

// Message is an incoming application message as the router delivers it.
// Its Publish fields (topic, payload, properties) borrow from the bytes
// given to HandleBytes, or from the session, until the next input: copy
// what must be kept.
type Message struct {
	codec.Publish
	// Targets are the handles the message is for: one in exclusive
	// routing, every matching one in fan-out routing.
	Targets []Handle
	// Reply is the token of the ExpectReply call whose response topic and
	// correlation data the message matched; 0 for none. A reply goes to its
	// waiter only: Targets is then empty.
	Reply Token
	// Ack identifies the message for Ack; 0 when no acknowledgement is due
	// (QoS 0, or already acknowledged).
	Ack AckID
	// Held is true for a message of a resumed session that waited,
	// unacknowledged, for its subscription to be restored.
	Held bool
}

// ConnInfo describes the connection as the server's CONNACK set it up.
// Values the server did not send hold the protocol's defaults.
type ConnInfo struct {
	Version          codec.Version
	SessionPresent   bool
	ClientID         string // the assigned client identifier, or the one sent
	KeepAlive        uint16 // Server Keep Alive if sent, else ours
	SessionExpiry    uint32
	ReceiveMaximum   uint16 // the server's (65,535 when it sent none, and on 3.1.1); Config.MaxInflight caps the send window
	MaximumQoS       codec.QoS
	RetainAvailable  bool
	MaximumPacket    uint32 // 0: no limit
	TopicAliasMax    uint16 // aliases we may use towards the server
	WildcardSubs     bool
	SubscriptionIDs  bool
	SharedSubs       bool
	ResponseInfo     string
	ServerReference  string
	AuthMethod       string
	Props            codec.Properties // every property of the CONNACK, owned by the session
	ConnectedAt      time.Time
	ConnectionNumber uint64 // 1 for the first successful connection, then 2, 3, ...
}
