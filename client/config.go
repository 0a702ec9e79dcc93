package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
	"github.com/zmqtt/zmqtt-go/transport"
)

// Config configures a client of either version. Zero values are the
// defaults noted on each field; each default is chosen for a service that
// runs for months (see the package documentation, "Running in production").
type Config struct {
	// URL names the broker: mqtt:// or tcp:// (port 1883), mqtts://, ssl://
	// or tls:// (8883), ws:// or wss:// (80/443), unix:///path. User
	// information in the URL (mqtt://user:pass@host) supplies Username and
	// Password when those are not set; logs show the URL without it. URL
	// and Servers together must name at least one broker unless Dial is
	// set. New refuses a URL that can never be dialled with a *ConfigError.
	URL string
	// Servers lists more brokers, for a cluster: the client tries URL (when
	// set) and then Servers in order, moving to the next one after a failed
	// attempt and staying on the one that works. Each entry has its own
	// scheme; TLS, credentials and every other option are shared. Within
	// one round of the list the next server is tried at once; the reconnect
	// delay applies between rounds. An MQTT 5.0 Server Reference (CONNACK or
	// DISCONNECT with 0x9C Use another server or 0x9D Server moved) is
	// tried next, with the same TLS settings; a reference that would drop
	// TLS is ignored.
	Servers []string
	// ClientID is the client identifier; empty lets the broker assign one,
	// which is then reused on every reconnect.
	ClientID string
	// KeepAlive is the keep alive interval; default 60 s. NoKeepAlive turns
	// it off.
	KeepAlive time.Duration
	// Persistent keeps the session on the broker across connections (Clean
	// Start / Clean Session false). Default false: every connection starts
	// clean, as the seed's clean_session=True.
	Persistent bool
	Username   string
	Password   []byte
	Will       *Will
	// TLS configures mqtts:// and wss://; nil means the system roots with
	// verification on.
	TLS *tls.Config
	// Reconnect is the reconnect policy; the default retries without limit
	// (see ReconnectPolicy).
	Reconnect ReconnectPolicy
	// Dial replaces the dialer: it returns a connected byte stream to the
	// broker (for example through a proxy, or a net.Conn the caller already
	// has). URL and Servers are then only used in logs, and Server
	// References are not followed.
	Dial func(ctx context.Context) (net.Conn, error)
	// NetDial, when set, opens the byte stream under TLS and WebSocket for
	// the URL and Servers entries (network "tcp" or "unix", addr
	// "host:port" or a socket path): for a proxy, a custom resolver or a
	// socket option. Unlike Dial, the server list, the schemes and Server
	// References keep working.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Proxy sends every connection to a broker (URL, Servers, Server
	// References; not unix://) through this proxy, as a tunnel to the
	// broker's host and port:
	//
	//	http://[user:pass@]host[:port]     HTTP CONNECT (port 80 by default)
	//	https://[user:pass@]host[:port]    HTTP CONNECT over TLS to the proxy (443)
	//	socks5://[user:pass@]host[:port]   SOCKS5, the broker's name resolved here (1080)
	//	socks5h://[user:pass@]host[:port]  SOCKS5, the broker's name resolved by the proxy
	//
	// TLS to the broker (mqtts://, wss://) runs end to end inside the
	// tunnel, verified against the broker's name. NetDial, when set,
	// reaches the proxy. New refuses a URL that cannot be used with a
	// *ConfigError. A proxy that refuses the credentials (407, SOCKS5
	// authentication) ends the client at once with transport.ErrProxyAuth:
	// retrying cannot fix them; an unreachable proxy and a refused tunnel
	// are retried like any failed dial. Empty (the default) with ProxyFunc
	// nil connects directly. See ProxyFunc for the environment.
	Proxy string
	// ProxyFunc chooses the proxy of each connection from the broker's URL
	// (nil for a direct connection); set it to
	// transport.ProxyFromEnvironment to honour HTTPS_PROXY (for mqtts://
	// and wss://), HTTP_PROXY (for mqtt:// and ws://), ALL_PROXY and
	// NO_PROXY. It is called at every dial, so the environment is read
	// again at each reconnect. At most one of Proxy and ProxyFunc may be
	// set.
	//
	// The default ignores the environment, unlike net/http: those
	// variables are usually set for a process's HTTP traffic, and
	// routing broker connections through an HTTP proxy nobody chose for
	// them (many allow CONNECT to port 443 only) would break working
	// deployments and surprise; mosquitto_pub and the Paho clients ignore
	// them too. Opting in is one line.
	ProxyFunc func(broker *url.URL) (*url.URL, error)
	// ProxyTLS configures TLS to an https:// proxy (the broker's TLS is
	// TLS); nil means the system roots.
	ProxyTLS *tls.Config
	// WebSocketHeader is sent with the WebSocket handshake of ws:// and
	// wss:// URLs: an Authorization header or a cookie that a gateway in
	// front of the broker asks for, say. A "Host" entry replaces the Host
	// header.
	WebSocketHeader http.Header
	// WebSocketSubprotocols are offered in the WebSocket handshake before
	// "mqtt", which is always offered ([MQTT-6.0.0-3]); nil offers "mqtt"
	// alone. The server must select one of them. Example: "mqttv3.1" for
	// a broker of the MQTT 3.1 era.
	WebSocketSubprotocols []string
	// OnStateChange is called, in order and on a goroutine of the client's,
	// at every change of connection state, with the server concerned. It
	// must return promptly: the client closes only after it has returned.
	// It may call Disconnect, which then returns once the client is closed
	// without waiting for the callback that called it; the callbacks queued
	// behind it (the change to StateClosed among them) run after it returns.
	OnStateChange func(StateChange)
	// ConnectTimeout bounds the wait for CONNACK after the transport is up;
	// default 30 s.
	ConnectTimeout time.Duration
	// PingTimeout is how long the client waits, with a PINGREQ outstanding,
	// for any packet from the broker before it declares the connection
	// dead; default half the keep alive in force (at least 500 ms). Any
	// packet received counts as a sign of life, so a busy link is never
	// dropped for a PINGRESP queued behind messages; a PINGREQ goes out
	// when either direction has been quiet for the keep alive. A dead link
	// is therefore noticed within 1.5x the keep alive.
	PingTimeout time.Duration
	// MaxQueued bounds the publishes waiting for the connection or for send
	// quota; default 1000. Publish fails with ErrQueueFull beyond it.
	MaxQueued int
	// MaxInflight bounds the QoS 1/2 messages in flight towards the broker
	// (sent, not yet acknowledged); the others wait in order. Default: 20 on
	// MQTT 3.1.1, which has no Receive Maximum (Mosquitto's default
	// max_inflight_messages; a 3.1.1 broker may drop a client that sends
	// more), and the broker's Receive Maximum on 5.0 (a set value caps it).
	MaxInflight int
	// PoisonCloses is how many times in a row the broker may close the
	// connection right after a QoS 1/2 message was (re)sent before that
	// message's Publish fails with a *PoisonError and the message leaves the
	// session and the Store; default 3, negative turns it off. Without it a
	// message the broker refuses by closing (one over an unannounced
	// maximum packet size) would be resent at every reconnect, forever.
	PoisonCloses int
	// SessionLost says what becomes of accepted, unfinished QoS 1/2
	// publishes when a reconnect finds no session on the broker. Default
	// RepublishOnSessionLost: they are published again as new messages, so
	// at-least-once holds across any reconnect (a QoS 2 message may then
	// arrive twice: exactly once cannot span a lost session).
	// FailOnSessionLost fails them with ErrSessionLost instead.
	SessionLost SessionLostPolicy
	// HoldTimeout bounds how long a QoS 1/2 message of a resumed session
	// that no subscription takes yet is held, unacknowledged, waiting for
	// its subscription to be made again; default 30 s. Then it goes to
	// OnUnrouted (counted by Unrouted) and is acknowledged once that
	// returned. Long enough for a restarted application to subscribe
	// again; a message a subscription takes within it is delivered as
	// usual.
	HoldTimeout time.Duration
	// DrainTimeout bounds how long Disconnect waits, while connected, for
	// every accepted publish to complete (the PUBACKs and PUBCOMPs of what
	// is in flight, and the queue behind it) before it sends DISCONNECT:
	// a graceful shutdown. Default 10 s; negative does not wait. Draining
	// stops when the connection is lost (it does not wait for a reconnect)
	// and when Disconnect's context ends; what did not complete then fails
	// with ErrClosed, and stays in the Store when one is set.
	DrainTimeout time.Duration
	// FanOut delivers a message to every matching subscription instead of
	// the most specific one.
	FanOut bool
	// StrippedPrefixes are broker prefixes ignored when filters are matched;
	// default "$queue" and "$exclusive".
	StrippedPrefixes []string
	// Store persists unacknowledged QoS 1/2 state across process restarts
	// (see session/filestore): messages in flight, and those accepted and
	// still queued (offline, or beyond the send window), so that a crash
	// loses nothing accepted. Nil keeps it in memory: a reconnect loses
	// nothing, a process exit does.
	Store session.Store
	// Logger receives the client's logs; nil discards them. Payloads and
	// passwords are never logged. At Debug level it also gets one line per
	// packet sent or received ("packet sent", "packet received": type,
	// size, identifier, QoS, topic, reason code; see PacketInfo); the
	// client asks Enabled once per batch of packets, so a Logger above
	// Debug costs nothing per packet.
	Logger *slog.Logger
	// Observer receives the client's events for metrics and tracing:
	// state changes, packets, the start and end of each publish (with a
	// way to add MQTT 5.0 user properties such as a W3C traceparent) and
	// incoming messages; see Observer for where each runs. Nil (the
	// default) costs nothing. Stats works with or without it.
	Observer *Observer
	// OnUnrouted is called, on a goroutine of the client's that runs the
	// user's callbacks in order, for each message no subscription took:
	// one matching no filter, one that arrived for a subscription the
	// broker then refused, one held for a resumed session past
	// HoldTimeout. The last two are acknowledged only after OnUnrouted
	// returns, so a crash first leaves them with the broker. Nil only
	// counts them (Unrouted) and acknowledges at once. It must not block
	// for long: later callbacks wait behind it. Like OnStateChange, it may
	// call Disconnect.
	OnUnrouted func(Message)
}

// SessionLostPolicy says what happens to unfinished QoS 1/2 publishes when
// the broker did not keep the session.
type SessionLostPolicy = session.SessionLostPolicy

// The session-lost policies.
const (
	RepublishOnSessionLost = session.RepublishOnSessionLost // default: publish again as new messages
	FailOnSessionLost      = session.FailOnSessionLost      // fail them with ErrSessionLost
)

// NoKeepAlive as Config.KeepAlive turns keep alive off.
const NoKeepAlive time.Duration = -1

// Will is the message the broker publishes when the connection ends without
// a normal DISCONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     QoS
	Retain  bool
}

// Config5 configures an MQTT 5.0 client: Config plus the CONNECT options of
// 5.0. These fields do not exist on a 3.1.1 client's Config.
type Config5 struct {
	Config
	// SessionExpiry is how long the broker keeps the session after the
	// connection ends (sent on every CONNECT, 0 included).
	SessionExpiry time.Duration
	// ReceiveMaximum is our inbound window of unacknowledged QoS 1/2
	// messages; default 65,535.
	ReceiveMaximum uint16
	// MaximumPacketSize refuses larger incoming packets; 0 means no limit.
	MaximumPacketSize uint32
	// TopicAliasMaximum is how many topic aliases the broker may use
	// towards us.
	TopicAliasMaximum uint16
	// OutboundTopicAliases lets the client use topic aliases towards the
	// broker, up to the broker's maximum.
	OutboundTopicAliases bool
	// RequestResponseInfo asks for Response Information in CONNACK.
	RequestResponseInfo bool
	// RequestProblemInfo false asks the broker to leave reason strings and
	// user properties out of errors; nil leaves the property out.
	RequestProblemInfo *bool
	User               []codec.UserProperty
	WillProperties     codec.Properties
	// Authenticator carries out enhanced authentication.
	Authenticator session.Authenticator
}

// ReconnectPolicy says when to connect again after a failure. The zero
// value is the default, chosen for services that run for months: retry
// without limit; between rounds of the server list wait InitialDelay (250
// ms), doubling up to MaxDelay (30 s), each delay drawn uniformly from the
// upper half of its nominal value (so a fleet does not reconnect in step,
// and a delay never collapses to zero). The delays start over only once a
// connection has stayed up for StableAfter (10 s) or the current delay,
// whichever is longer, so a broker that accepts and at once drops the
// connection cannot drive a tight loop.
//
// Whatever the policy, an error a retry cannot fix ends the client at
// once: an unusable URL, refused credentials or client identifier, an
// unsupported protocol version, a ban, a certificate error, another client
// taking the session over.
type ReconnectPolicy struct {
	// Disabled turns reconnecting off: the first failure is final.
	Disabled bool
	// InitialDelay is the delay before the first retry; default 250 ms.
	InitialDelay time.Duration
	// MaxDelay caps the delay; default 30 s.
	MaxDelay time.Duration
	// Factor multiplies the delay after each failed round; default 2.
	Factor float64
	// MaxAttempts, when positive, gives up after that many failed attempts
	// in a row (1 = one try). Zero (the default) or negative retries
	// without limit: giving up is something to ask for.
	MaxAttempts int
	// StableAfter is how long a connection must stay up before the delays
	// start over; default 10 s (the current delay, when that is longer).
	StableAfter time.Duration
	// NoJitter uses the nominal delays as they are.
	NoJitter bool
}

// DefaultDrainTimeout is the default of Config.DrainTimeout.
const DefaultDrainTimeout = 10 * time.Second

// The defaults of ReconnectPolicy.
const (
	DefaultInitialDelay = 250 * time.Millisecond
	DefaultMaxDelay     = 30 * time.Second
	DefaultStableAfter  = 10 * time.Second
)

func (p *ReconnectPolicy) normalize() {
	if p.InitialDelay <= 0 {
		p.InitialDelay = DefaultInitialDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.InitialDelay {
		p.MaxDelay = p.InitialDelay
	}
	if p.Factor < 1 {
		p.Factor = 2
	}
	if p.StableAfter <= 0 {
		p.StableAfter = DefaultStableAfter
	}
	if p.MaxAttempts < 0 {
		p.MaxAttempts = 0
	}
	if p.Disabled {
		p.MaxAttempts = 1
	}
}

// delay returns the delay before round n+1 (n >= 1 failed rounds so far),
// jittered with r in [0, 1).
func (p *ReconnectPolicy) delay(n int, r float64) time.Duration {
	d := float64(p.InitialDelay)
	for i := 1; i < n && d < float64(p.MaxDelay); i++ {
		d *= p.Factor
	}
	if d > float64(p.MaxDelay) {
		d = float64(p.MaxDelay)
	}
	if !p.NoJitter {
		d = d/2 + d/2*r
	}
	return time.Duration(d)
}

// transportOptions are the dial options of every server.
func (c *Config) transportOptions() *transport.Options {
	opts := &transport.Options{
		TLSConfig:      c.TLS,
		Dialer:         c.NetDial,
		HTTPHeader:     c.WebSocketHeader,
		Subprotocols:   c.WebSocketSubprotocols,
		Proxy:          c.ProxyFunc,
		ProxyTLSConfig: c.ProxyTLS,
	}
	if c.Proxy != "" {
		if u, err := transport.ParseProxyURL(c.Proxy); err == nil { // check refused it otherwise
			opts.Proxy = transport.ProxyURL(u)
		}
	}
	return opts
}

// servers returns the broker URLs of c: URL, then Servers.
func (c *Config) servers() []string {
	var list []string
	if c.URL != "" {
		list = append(list, c.URL)
	}
	return append(list, c.Servers...)
}

// check validates the parts of c that the session does not: every server
// URL must be one the transport can dial.
func (c *Config) check() error {
	list := c.servers()
	if len(list) == 0 && c.Dial == nil {
		return &session.ConfigError{Field: "URL", Msg: "a broker URL, a Servers list or a Dial function is required"}
	}
	if c.Dial != nil {
		switch {
		case c.Proxy != "" || c.ProxyFunc != nil || c.ProxyTLS != nil:
			return &session.ConfigError{Field: "Proxy", Msg: "has no effect when Dial is set: Dial opens the connection itself (use NetDial to keep the URLs)"}
		case c.WebSocketHeader != nil:
			return &session.ConfigError{Field: "WebSocketHeader", Msg: "has no effect when Dial is set: Dial opens the connection itself"}
		case c.WebSocketSubprotocols != nil:
			return &session.ConfigError{Field: "WebSocketSubprotocols", Msg: "has no effect when Dial is set: Dial opens the connection itself"}
		}
		return nil // the URLs only name the server in logs
	}
	if c.Proxy != "" {
		if c.ProxyFunc != nil {
			return &session.ConfigError{Field: "Proxy", Msg: "set Proxy or ProxyFunc, not both"}
		}
		if _, err := transport.ParseProxyURL(c.Proxy); err != nil {
			return &session.ConfigError{Field: "Proxy", Msg: err.Error()}
		}
	}
	for i, u := range list {
		if err := transport.CheckURL(u); err != nil {
			field := "URL"
			if c.URL == "" || i > 0 {
				field = "Servers[" + strconv.Itoa(i-btoi(c.URL != "")) + "]"
			}
			return &session.ConfigError{Field: field, Msg: err.Error()}
		}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sessionConfig builds the session configuration of a client.
func (c *Config) sessionConfig(v codec.Version) session.Config {
	ka := c.KeepAlive
	switch {
	case ka == 0:
		ka = 60 * time.Second
	case ka < 0:
		ka = 0
	}
	user, pass := c.credentials()
	sc := session.Config{
		Version:          v,
		ClientID:         c.ClientID,
		CleanStart:       !c.Persistent,
		KeepAlive:        ka,
		PingTimeout:      c.PingTimeout,
		ConnectTimeout:   c.ConnectTimeout,
		Username:         user,
		Password:         pass,
		PasswordFlag:     pass != nil,
		StrippedPrefixes: c.StrippedPrefixes,
		MaxQueued:        c.MaxQueued,
		MaxInflight:      c.MaxInflight,
		PoisonCloses:     c.PoisonCloses,
		SessionLost:      c.SessionLost,
		HoldTimeout:      c.HoldTimeout,
		Store:            c.Store,
	}
	if c.FanOut {
		sc.Routing = session.RouteFanOut
	}
	if w := c.Will; w != nil {
		sc.Will = &codec.Will{Topic: w.Topic, Payload: w.Payload, QoS: codec.QoS(w.QoS), Retain: w.Retain}
	}
	return sc
}

func (c *Config5) sessionConfig() session.Config {
	sc := c.Config.sessionConfig(codec.V5)
	sc.SessionExpiry = uint32(c.SessionExpiry / time.Second)
	sc.ReceiveMaximum = c.ReceiveMaximum
	sc.MaximumPacketSize = c.MaximumPacketSize
	sc.TopicAliasMaximum = c.TopicAliasMaximum
	sc.OutboundAliases = c.OutboundTopicAliases
	sc.RequestResponseInfo = c.RequestResponseInfo
	sc.RequestProblemInfo = c.RequestProblemInfo
	sc.User = c.User
	sc.Authenticator = c.Authenticator
	if sc.Will != nil {
		sc.Will.Props = c.WillProperties
	}
	return sc
}

// credentials returns the user name and password: the fields, else the
// URL's user information.
func (c *Config) credentials() (string, []byte) {
	user, pass := c.Username, c.Password
	if u, err := url.Parse(c.URL); err == nil && u.User != nil {
		if user == "" {
			user = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && pass == nil {
			pass = []byte(p)
		}
	}
	return user, pass
}

// redactedURL is the URL as logs show it: without user information.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			if j := strings.Index(raw, "://"); j >= 0 && j < i {
				return raw[:j+3] + raw[i+1:]
			}
		}
		return raw
	}
	u.User = nil
	return u.String()
}
