package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
	"github.com/zmqtt/zmqtt-go/transport"
)

// Config configures a client of either version. Zero values are the seed's
// defaults, noted on each field.
type Config struct {
	// URL names the broker: mqtt:// or tcp:// (port 1883), mqtts://, ssl://
	// or tls:// (8883), ws:// or wss:// (80/443), unix:///path. Required
	// unless Dial is set. User information in the URL
	// (mqtt://user:pass@host) supplies Username and Password when those
	// are not set; logs show the URL without it.
	URL string
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
	// Reconnect is the reconnect policy; see ReconnectPolicy for defaults.
	Reconnect ReconnectPolicy
	// Dial replaces the dialer: it returns a connected byte stream to the
	// broker (for example through a proxy, or a net.Conn the caller already
	// has). URL is then only used in logs.
	Dial func(ctx context.Context) (net.Conn, error)
	// ConnectTimeout bounds the wait for CONNACK after the transport is up;
	// default 30 s.
	ConnectTimeout time.Duration
	// PingTimeout bounds the wait for PINGRESP; default the keep alive.
	PingTimeout time.Duration
	// MaxQueued bounds the publishes waiting for the connection or for send
	// quota; default 1000. Publish fails with ErrQueueFull beyond it.
	MaxQueued int
	// FanOut delivers a message to every matching subscription instead of
	// the most specific one.
	FanOut bool
	// StrippedPrefixes are broker prefixes ignored when filters are matched;
	// default "$queue" and "$exclusive".
	StrippedPrefixes []string
	// Store persists unacknowledged QoS 1/2 state across process restarts
	// (see session/filestore). Nil keeps it in memory.
	Store session.Store
	// Logger receives the client's logs; nil discards them. Payloads and
	// passwords are never logged.
	Logger *slog.Logger
	// OnUnrouted is called, from the client's dispatch goroutine, for each
	// message no subscription took. Nil only counts them (Stats).
	OnUnrouted func(Message)
}

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

// ReconnectPolicy says when to connect again after a failure. The defaults
// are the seed's: initial delay 1 s, maximum delay 60 s, factor 2, five
// attempts, plus full jitter (each delay is drawn uniformly between half the
// nominal delay and the nominal delay).
type ReconnectPolicy struct {
	// Disabled turns reconnecting off: the first failure is final.
	Disabled bool
	// InitialDelay is the delay before the first retry; default 1 s.
	InitialDelay time.Duration
	// MaxDelay caps the delay; default 60 s.
	MaxDelay time.Duration
	// Factor multiplies the delay after each failed attempt; default 2.
	Factor float64
	// MaxAttempts bounds the attempts in a row (1 = one try); default 5.
	// Negative means unlimited.
	MaxAttempts int
	// NoJitter uses the nominal delays as they are.
	NoJitter bool
}

func (p *ReconnectPolicy) normalize() {
	if p.InitialDelay <= 0 {
		p.InitialDelay = time.Second
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 60 * time.Second
	}
	if p.MaxDelay < p.InitialDelay {
		p.MaxDelay = p.InitialDelay
	}
	if p.Factor < 1 {
		p.Factor = 2
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 5
	}
	if p.Disabled {
		p.MaxAttempts = 1
	}
}

// delay returns the delay before attempt n (n >= 1 failed attempts so far),
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

// dialer returns the function that opens a connection.
func (c *Config) dialer() func(ctx context.Context) (net.Conn, error) {
	if c.Dial != nil {
		return c.Dial
	}
	url, tlsConf := c.URL, c.TLS
	return func(ctx context.Context) (net.Conn, error) {
		return transport.Dial(ctx, url, &transport.Options{TLSConfig: tlsConf})
	}
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
