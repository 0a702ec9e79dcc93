package client

import (
	"context"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// Client is an MQTT 3.1.1 client. Create it with New; it is safe for
// concurrent use. MQTT 5.0 operations do not exist on it: use Client5.
type Client struct{ c *core }

// Client5 is an MQTT 5.0 client. Create it with New5; it is safe for
// concurrent use.
type Client5 struct{ c *core }

// ConnInfo is what the server's CONNACK said about the connection.
type ConnInfo = session.ConnInfo

// New returns an MQTT 3.1.1 client for cfg; it does not connect yet. It
// returns an error matching session.ErrInvalidConfig for a bad
// configuration (no URL, a password without a user name [MQTT-3.1.2-22],
// an empty client identifier on a persistent session [MQTT-3.1.3-7], ...).
func New(cfg Config) (*Client, error) {
	sc := cfg.sessionConfig(codec.V311)
	c, err := newCore(codec.V311, cfg, sc, nil)
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// New5 returns an MQTT 5.0 client for cfg; it does not connect yet. Errors
// as New.
func New5(cfg Config5) (*Client5, error) {
	c, err := newCore(codec.V5, cfg.Config, cfg.sessionConfig(), nil)
	if err != nil {
		return nil, err
	}
	return &Client5{c: c}, nil
}

// NewWithStateFunc is New with a function called, in order and on a
// goroutine of the client's, at every change of connection state. It must
// return promptly; the client closes only after it has returned.
func NewWithStateFunc(cfg Config, f func(StateChange)) (*Client, error) {
	c, err := newCore(codec.V311, cfg, cfg.sessionConfig(codec.V311), f)
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// New5WithStateFunc is New5 with a state function (see NewWithStateFunc).
func New5WithStateFunc(cfg Config5, f func(StateChange)) (*Client5, error) {
	c, err := newCore(codec.V5, cfg.Config, cfg.sessionConfig(), f)
	if err != nil {
		return nil, err
	}
	return &Client5{c: c}, nil
}

// Connect dials the broker (walking the server list) and waits for the
// first CONNACK, retrying as the reconnect policy allows: by default until
// ctx ends. From then on the client reconnects by itself after a
// connection loss. If ctx ends first, the client is closed and a
// *ConnectError returned, which matches ctx's error and the last attempt's
// (a refused dial, a TLS error, a CONNACK code) with errors.Is and
// errors.As. An error no retry can fix ends Connect at once, wrapped with
// ErrClosed: a *ReasonError for a refused CONNACK (bad credentials, ...;
// one from a broker that does not speak MQTT 5.0 also matches
// ErrUnsupportedVersion), a certificate error, a *transport.URLError.
// ErrClosed after Disconnect.
func (c *Client) Connect(ctx context.Context) error { return c.c.connect(ctx) }

// Connect is Client.Connect for MQTT 5.0.
func (c *Client5) Connect(ctx context.Context) error { return c.c.connect(ctx) }

// Disconnect sends DISCONNECT, closes the connection and the client: every
// waiting call and Subscription then returns ErrClosed. It never hangs,
// whatever ctx: the client is always closed and its goroutines have exited
// when Disconnect returns. It returns ctx's error when ctx ended before the
// DISCONNECT was written (the connection is then cut, and the broker
// publishes the will), else nil. Calling it again returns nil. Called from
// an OnStateChange or OnUnrouted callback, it does not wait for that
// callback: the callbacks' goroutine exits after the callback returns.
func (c *Client) Disconnect(ctx context.Context) error { return c.c.close(ctx, nil, nil) }

// Disconnect is Client.Disconnect for MQTT 5.0, with an optional reason
// code (such as codec.ReasonDisconnectWithWill, which asks the broker to
// publish the will) and DISCONNECT properties (Session Expiry Interval,
// Reason String, User Property).
func (c *Client5) Disconnect(ctx context.Context, reason codec.ReasonCode, props *codec.Properties) error {
	d := &codec.Disconnect{ReasonCode: reason}
	if props != nil {
		d.Props = *props
	}
	return c.c.close(ctx, nil, d)
}

// Publish sends a message to topic. Options: a QoS (default AtMostOnce) and
// Retain. QoS 0 returns once the packet is handed to the connection; QoS 1
// returns on PUBACK, QoS 2 on PUBCOMP. While the client is reconnecting,
// Publish waits for the connection or ctx. When ctx ends, a message not yet
// sent is withdrawn; one already sent stays in flight and completes
// quietly. Errors: ErrInvalidTopic, ErrQueueFull, ErrUnsupported (QoS or
// retain the server refused), codec.ErrPacketTooLarge, ErrSessionLost, a
// *ReasonError, ErrClosed, ctx's error.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, opts ...PublishOption) error {
	op := c.c.getPubOp()
	for _, o := range opts {
		if o != nil {
			o.applyPub(&op.r)
		}
	}
	_, err := c.c.publish(ctx, topic, payload, op)
	return err
}

// PublishAsync queues a message and returns at once, never blocking the
// caller: for telemetry loops that must not stall while the broker is slow
// or away. The topic and payload are copied. The returned handle's Done is
// closed when the publish completes (as Publish would return) or fails;
// its Err says which. While offline the message waits in the bounded queue
// (Config.MaxQueued; beyond it the handle fails with ErrQueueFull), and a
// QoS 1/2 message is saved in the Store, when one is set, once the client's
// loop has taken it: the handle's Accepted is closed when that is synced,
// and a crash from then on loses nothing (a process restarted on the same
// Store sends it). No goroutine is started per message, and a call
// makes one allocation when its topic and payload fit in 192 bytes (two
// beyond), plus a channel for each of Done and Accepted asked for before
// its event. Options as Publish.
func (c *Client) PublishAsync(topic string, payload []byte, opts ...PublishOption) *Publishing {
	op := c.c.getPubOp() // pooled: the options' calls would put a local on the heap
	for _, o := range opts {
		if o != nil {
			o.applyPub(&op.r)
		}
	}
	return c.c.publishAsync(topic, payload, op)
}

// PublishAsync is Client.PublishAsync with MQTT 5.0 options; the handle's
// Ack gives the PUBACK's or PUBCOMP's reason code and properties.
func (c *Client5) PublishAsync(topic string, payload []byte, opts ...PublishOption5) *Publishing {
	op := c.c.getPubOp() // pooled: the options' calls would put a local on the heap
	for _, o := range opts {
		if o != nil {
			o.applyPub5(&op.r)
		}
	}
	return c.c.publishAsync(topic, payload, op)
}

// Drain waits until every accepted publish is complete: those in flight,
// those queued (PublishAsync and Publish calls alike) and those restored
// from the Store by a restarted process. It waits across reconnects.
// Errors: ctx's error, the terminal error if the client closes first.
func (c *Client) Drain(ctx context.Context) error { return c.c.drainAll(ctx, false) }

// Drain is Client.Drain for MQTT 5.0.
func (c *Client5) Drain(ctx context.Context) error { return c.c.drainAll(ctx, false) }

// PubAck is the server's acknowledgement of an MQTT 5.0 QoS 1/2 publish:
// its reason code (0x10 says no subscriber matched) and properties.
type PubAck struct {
	Code  codec.ReasonCode
	Props codec.Properties
}

// Publish sends a message to topic, with MQTT 5.0 properties among the
// options. It returns the PUBACK's or PUBCOMP's reason code and properties
// for QoS 1/2. Errors as Client.Publish; a negative acknowledgement is a
// *ReasonError.
func (c *Client5) Publish(ctx context.Context, topic string, payload []byte, opts ...PublishOption5) (PubAck, error) {
	op := c.c.getPubOp()
	for _, o := range opts {
		if o != nil {
			o.applyPub5(&op.r)
		}
	}
	res, err := c.c.publish(ctx, topic, payload, op)
	return PubAck{Code: res.code, Props: res.props}, err
}

// Subscribe subscribes to one or more topic filters with one SUBSCRIBE and
// returns the Subscription once the SUBACK granted them all. Options: a QoS
// (the maximum), ManualAck, QueueSize. Messages published to matching
// topics arrive in the Subscription's queue. Errors: ErrInvalidTopic, a
// *ReasonError for a refused filter (the subscription is then undone),
// ErrUnsupported, ErrClosed, ctx's error.
func (c *Client) Subscribe(ctx context.Context, filters []string, opts ...SubscribeOption) (*Subscription, error) {
	var r subReq
	for _, o := range opts {
		if o != nil {
			o.applySub(&r)
		}
	}
	return c.c.subscribe(ctx, filters, &r)
}

// Subscribe is Client.Subscribe for MQTT 5.0, with the 5.0 subscription
// options: NoLocal, RetainAsPublished, RetainHandling, SubscriptionID and
// UserProperty.
func (c *Client5) Subscribe(ctx context.Context, filters []string, opts ...SubscribeOption5) (*Subscription, error) {
	var r subReq
	for _, o := range opts {
		if o != nil {
			o.applySub5(&r)
		}
	}
	return c.c.subscribe(ctx, filters, &r)
}

// Unsubscribe sends one UNSUBSCRIBE for filters that no Subscription of
// this client holds, typically subscriptions a persistent session kept on
// the broker from an earlier connection, and waits for the UNSUBACK. A
// filter a Subscription of this client still uses is left alone (not sent:
// close that Subscription instead), so that the broker keeps delivering
// what the client still routes; when every filter is left alone no packet
// is sent and the result has no codes. While the connection is down the
// UNSUBSCRIBE waits for the next one. Errors: ErrInvalidTopic for a
// malformed filter, ErrClosed, ctx's error.
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) (UnsubscribeResult, error) {
	return c.c.unsubscribeFilters(ctx, filters, nil)
}

// Unsubscribe is Client.Unsubscribe for MQTT 5.0, with User Properties on
// the UNSUBSCRIBE. The result holds one reason code per filter sent; 0x11
// (no subscription existed) is not an error. A refused filter (a code of
// 0x80 or more) gives a *ReasonError that names it.
func (c *Client5) Unsubscribe(ctx context.Context, filters []string, user ...codec.UserProperty) (UnsubscribeResult, error) {
	return c.c.unsubscribeFilters(ctx, filters, user)
}

// Ping sends a PINGREQ and returns the round-trip time until the PINGRESP.
// Errors: ErrNotConnected, ErrConnectionLost, ErrClosed, ctx's error.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) { return c.c.ping(ctx) }

// Ping is Client.Ping for MQTT 5.0.
func (c *Client5) Ping(ctx context.Context) (time.Duration, error) { return c.c.ping(ctx) }

// Info returns what the current connection's CONNACK said (session present,
// assigned client identifier, server limits), or ErrNotConnected.
func (c *Client) Info() (ConnInfo, error) { return c.c.connInfo() }

// Info is Client.Info for MQTT 5.0.
func (c *Client5) Info() (ConnInfo, error) { return c.c.connInfo() }

// State returns the connection state.
func (c *Client) State() State { return State(c.c.state.Load()) }

// State returns the connection state.
func (c *Client5) State() State { return State(c.c.state.Load()) }

// Done returns a channel closed when the client has closed: after
// Disconnect, or when reconnecting gave up (Err then says why).
func (c *Client) Done() <-chan struct{} { return c.c.exited }

// Done returns a channel closed when the client has closed.
func (c *Client5) Done() <-chan struct{} { return c.c.exited }

// Err returns why the client closed: ErrClosed after Disconnect, or an
// error wrapping the last failure when reconnecting gave up; nil while the
// client is open.
func (c *Client) Err() error { return c.c.err() }

// Err returns why the client closed; nil while it is open.
func (c *Client5) Err() error { return c.c.err() }

// Unrouted returns how many incoming messages matched no subscription.
func (c *Client) Unrouted() uint64 { return c.c.unrouted.Load() }

// Unrouted returns how many incoming messages matched no subscription.
func (c *Client5) Unrouted() uint64 { return c.c.unrouted.Load() }

// Reauthenticate runs an MQTT 5.0 re-authentication with the configured
// Authenticator and waits for its end. Errors: ErrUnsupported without an
// Authenticator, ErrNotConnected, ErrAuth, ErrClosed, ctx's error.
func (c *Client5) Reauthenticate(ctx context.Context) error { return c.c.reauthenticate(ctx) }

// ExpectReply registers a request/response waiter: the next message on
// topic whose Correlation Data equals corr goes to the returned channel,
// and to no subscription (a Subscription must still cover topic for the
// broker to send it). Call cancel when the reply is no longer wanted. The
// channel is closed if the client closes first. The reqresp package builds
// on it.
func (c *Client5) ExpectReply(ctx context.Context, topic string, corr []byte) (reply <-chan Message, cancel func(), err error) {
	return c.c.expectReply(ctx, topic, corr)
}

func (c *core) err() error {
	select {
	case <-c.exited:
		return c.terminal()
	default:
		return nil
	}
}
