package session

import (
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Routing says how an incoming message that matches several subscriptions
// is delivered.
type Routing uint8

const (
	// RouteExclusive delivers each message once, to one subscription: the
	// one whose Subscription Identifier the server echoed, else the one with
	// the most specific matching filter (literal beats '+' beats '#',
	// compared level by level from the left), ties to the earliest.
	RouteExclusive Routing = iota
	// RouteFanOut delivers a copy to every matching subscription.
	RouteFanOut
)

// Authenticator carries out MQTT 5.0 enhanced authentication [§4.12].
// The session calls it synchronously, from the goroutine that drives it.
type Authenticator interface {
	// Method returns the Authentication Method, such as "SCRAM-SHA-256".
	Method() string
	// Initial returns the Authentication Data of the CONNECT, or of the
	// AUTH that starts a re-authentication.
	Initial() ([]byte, error)
	// Continue answers the server's AUTH (continue authentication) data
	// with the data of the next AUTH.
	Continue(data []byte) ([]byte, error)
	// Finish checks the server's final data of a successful CONNACK or of
	// an AUTH with reason Success. An error fails the connection.
	Finish(data []byte) error
}

// Config is the configuration of a Session. Zero values are the defaults
// noted on each field.
type Config struct {
	// Version is the protocol version: codec.V311 or codec.V5 (required).
	Version codec.Version
	// ClientID is the client identifier. Empty asks the server to assign
	// one (on 3.1.1 only with CleanStart); the assigned one is reused on
	// every reconnect. An Assigned Client Identifier in a CONNACK is taken
	// only when the CONNECT carried none [MQTT-3.1.3-7]; otherwise it is
	// ignored and ours stays.
	ClientID string
	// CleanStart asks the server to discard any session at the first
	// connect. Reconnects of the same Session never set it: they resume.
	CleanStart bool
	// KeepAlive is the keep alive interval; 0 turns keep alive off. It is
	// sent in whole seconds (at most 65,535).
	KeepAlive time.Duration
	// PingTimeout is how long, with a PINGREQ outstanding, nothing at all
	// may arrive from the server before the connection is declared dead
	// (EventClosed with a *TimeoutError): counted from the later of that
	// PINGREQ and the last packet received, so any packet is a sign of
	// life (see the package's Liveness rule in keepalive.go). Default (0):
	// half the keep alive in force (the server's when it sent one), at
	// least 500 ms, computed at each CONNACK; 30 s when the keep alive is 0
	// (it then bounds Ping only). A set value is used as is.
	PingTimeout time.Duration
	// ConnectTimeout bounds the wait for CONNACK (and the authentication
	// exchange before it); default 30 s.
	ConnectTimeout time.Duration

	Username     string
	UsernameFlag bool // send the user name even when empty
	Password     []byte
	PasswordFlag bool // send the password even when empty
	Will         *codec.Will

	// MQTT 5.0 CONNECT properties.
	SessionExpiry       uint32 // seconds; sent on every 5.0 CONNECT, 0 included
	ReceiveMaximum      uint16 // our inbound window; default 65,535
	MaximumPacketSize   uint32 // our inbound limit; 0 means none
	TopicAliasMaximum   uint16 // inbound topic aliases we accept; default 0
	RequestResponseInfo bool
	// RequestProblemInfo false asks the server to leave out reason strings
	// and user properties; nil (default) leaves the property out (true).
	RequestProblemInfo *bool
	User               []codec.UserProperty
	Authenticator      Authenticator

	// OutboundAliases lets the session assign topic aliases to outgoing
	// PUBLISH packets, up to the server's Topic Alias Maximum, least
	// recently used first out. Default off.
	OutboundAliases bool

	// Routing chooses exclusive (default) or fan-out delivery.
	Routing Routing
	// StrippedPrefixes are broker prefixes removed, with the level after
	// them, before a filter is matched; default "$queue" and "$exclusive".
	// "$share/<group>/" is always removed. Set it to an empty non-nil slice
	// to strip none.
	StrippedPrefixes []string
	// HoldTimeout bounds how long a QoS 1 or 2 message of a resumed session
	// waits, unacknowledged, for its subscription to be restored; default
	// 30 s. It is then reported as unrouted and acknowledged.
	HoldTimeout time.Duration

	// Limits, configurable so that tests can make them small.
	// MaxPacketID is the largest packet identifier used; default 65,535.
	MaxPacketID uint16
	// MaxQueued bounds the publishes waiting for the connection or for send
	// quota; default 1,000.
	MaxQueued int

	// MaxInflight is the most QoS 1 and 2 messages in flight towards the
	// server at once (sent and not yet acknowledged); the others wait in the
	// queue, in order. Default (0): on MQTT 3.1.1, which has no Receive
	// Maximum, 20, what Mosquitto (max_inflight_messages) and libmosquitto
	// accept by default; on MQTT 5.0 the server's Receive Maximum. A set
	// value also caps the server's Receive Maximum on 5.0. Negative values
	// are refused.
	MaxInflight int

	// PoisonCloses is how many times in a row the server may end the
	// connection (transport lost, see ConnectionLost, or a server
	// DISCONNECT) with a QoS 1 or 2 message as the oldest unacknowledged
	// PUBLISH sent on that connection before that message fails with a
	// *PoisonError (ErrPoisonMessage): such a message is likely larger than
	// the server's maximum packet size or refused by its policy, and would
	// otherwise block the session at every reconnect. Our own timeouts,
	// protocol errors we raise, a normal Disconnect and a connection that
	// never reached CONNACK do not count, and end the row. Default (0) 3;
	// negative turns the rule off.
	PoisonCloses int

	// SessionLost says what happens to the accepted, unfinished QoS 1 and
	// 2 messages when a CONNACK says the server has no session for us
	// (Session Present 0 [MQTT-3.2.2-5]). The default, RepublishOnSessionLost,
	// sends them again as new messages; FailOnSessionLost fails them with
	// ErrSessionLost.
	SessionLost SessionLostPolicy

	// Store persists what must survive a process restart. Nil keeps the
	// state in memory only.
	Store Store
}

// SessionLostPolicy says what happens to unfinished outgoing QoS 1 and 2
// messages when the server did not keep the session.
type SessionLostPolicy uint8

const (
	// RepublishOnSessionLost (default) sends the accepted but not completed
	// QoS 1 and 2 messages again as new messages (a new packet identifier,
	// DUP clear), in their original order, ahead of the messages queued
	// after them; their tokens complete when the new exchange does. The
	// server forgot which of them it had received, so each may arrive
	// twice: QoS 1 stays at least once; for QoS 2, exactly once cannot span
	// a lost session, and a message whose PUBREC had come (the server had
	// it) is delivered again. Their Store records stay until they complete,
	// so a restart still has them.
	RepublishOnSessionLost SessionLostPolicy = iota
	// FailOnSessionLost fails every unfinished QoS 1 and 2 message with
	// ErrSessionLost: the caller decides whether to publish it again.
	FailOnSessionLost
)

const (
	defaultConnectTimeout = 30 * time.Second
	defaultHoldTimeout    = 30 * time.Second
	defaultMaxQueued      = 1000
	defaultPoisonCloses   = 3
	defaultMaxInflight311 = 20
)

var defaultPrefixes = []string{"$queue", "$exclusive"}

// normalize validates c and fills in defaults.
func (c *Config) normalize() error {
	bad := func(field, msg string) error { return &ConfigError{Field: field, Msg: msg} }
	if !c.Version.Valid() {
		return bad("Version", "must be codec.V311 or codec.V5")
	}
	if c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second {
		return bad("KeepAlive", "must be between 0 and 65535 s")
	}
	if c.KeepAlive > 0 && c.KeepAlive < time.Second {
		return bad("KeepAlive", "is sent in whole seconds: use at least 1 s, or 0 to turn it off")
	}
	if c.PingTimeout < 0 || c.ConnectTimeout < 0 || c.HoldTimeout < 0 || c.MaxQueued < 0 {
		return bad("timeouts", "must not be negative")
	}
	if c.MaxInflight < 0 {
		return bad("MaxInflight", "must not be negative")
	}
	if c.SessionLost > FailOnSessionLost {
		return bad("SessionLost", "must be RepublishOnSessionLost or FailOnSessionLost")
	}
	if c.PoisonCloses == 0 {
		c.PoisonCloses = defaultPoisonCloses
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
	if c.HoldTimeout == 0 {
		c.HoldTimeout = defaultHoldTimeout
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = defaultMaxQueued
	}
	if c.MaxPacketID == 0 {
		c.MaxPacketID = 65535
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = 65535
	}
	if c.StrippedPrefixes == nil {
		c.StrippedPrefixes = defaultPrefixes
	}
	for _, p := range c.StrippedPrefixes {
		if p == "" || strings.ContainsAny(p, "/+#") || p == "$share" || p == "$SYS" {
			return bad("StrippedPrefixes", "each prefix is one topic level, not $share or $SYS: "+p)
		}
	}
	if c.Version == codec.V311 {
		switch {
		case c.ClientID == "" && !c.CleanStart:
			return bad("ClientID", "an empty client identifier needs CleanStart on MQTT 3.1.1 [MQTT-3.1.3-7]")
		case len(c.Password) > 0 && c.Username == "" && !c.UsernameFlag:
			return bad("Password", "a password needs a user name on MQTT 3.1.1 [MQTT-3.1.2-22]")
		case c.Will != nil && !c.Will.Props.Empty():
			return bad("Will", "will properties need MQTT 5.0")
		case c.SessionExpiry != 0 || c.ReceiveMaximum != 65535 || c.MaximumPacketSize != 0 ||
			c.TopicAliasMaximum != 0 || c.RequestResponseInfo || c.RequestProblemInfo != nil ||
			len(c.User) != 0 || c.Authenticator != nil:
			return bad("Version", "MQTT 5.0 CONNECT options are set on an MQTT 3.1.1 session")
		}
	}
	if c.MaximumPacketSize != 0 && c.MaximumPacketSize < 16 {
		return bad("MaximumPacketSize", "must be 0 (no limit) or at least 16 bytes")
	}
	// Build the CONNECT once, so that a bad client identifier, will or
	// property is reported now rather than at every connect.
	s := &Session{cfg: *c, clientID: c.ClientID}
	if _, err := s.connectPacket(nil).Append(nil, c.Version); err != nil {
		return bad("CONNECT", err.Error())
	}
	return nil
}
