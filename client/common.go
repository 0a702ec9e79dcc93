package client

import "context"

// Conn is what an MQTT 3.1.1 client (*Client) and an MQTT 5.0 client
// (*Client5) have in common: connect, publish, subscribe (per-filter QoS),
// close, and the connection's state. Write code against Conn to run it on
// either version, and mock Conn to test it without a broker (a Feed gives
// the mock's subscriptions). Acknowledgement goes through Message.Ack and
// Subscription as on both clients.
//
// The methods take the options both versions share (PublishOption,
// SubscribeOption); the 5.0-only ones (properties, No Local, reason codes
// on DISCONNECT) stay on Client5's own methods, Publish, Subscribe,
// SubscribeFilters5 and Disconnect, so they still cannot reach a 3.1.1
// client.
type Conn interface {
	// Connect connects, retrying as the reconnect policy allows, until
	// ctx ends (see Client.Connect).
	Connect(ctx context.Context) error
	// Send publishes payload to topic and waits as Client.Publish does;
	// a negative acknowledgement is a *ReasonError.
	Send(ctx context.Context, topic string, payload []byte, opts ...PublishOption) error
	// SubscribeFilters subscribes with one SUBSCRIBE in which each filter
	// has its own QoS (see Client.SubscribeFilters).
	SubscribeFilters(ctx context.Context, filters []Filter, opts ...SubscribeOption) (*Subscription, error)
	// Close disconnects normally and closes the client (see
	// Client.Disconnect).
	Close(ctx context.Context) error
	// State returns the connection state.
	State() State
	// Done is closed when the client has closed.
	Done() <-chan struct{}
	// Err says why the client closed; nil while it is open.
	Err() error
}

var (
	_ Conn = (*Client)(nil)
	_ Conn = (*Client5)(nil)
)

// Send is Publish: it is the form Conn has. Errors as Publish.
func (c *Client) Send(ctx context.Context, topic string, payload []byte, opts ...PublishOption) error {
	return c.Publish(ctx, topic, payload, opts...)
}

// Send publishes with the options both versions share, as Client.Publish:
// it is the form Conn has. The acknowledgement's reason code and
// properties are not returned (Publish returns them); a negative one is a
// *ReasonError. Errors as Publish.
func (c *Client5) Send(ctx context.Context, topic string, payload []byte, opts ...PublishOption) error {
	op := c.c.getPubOp()
	for _, o := range opts {
		if o != nil {
			o.applyPub(&op.r)
		}
	}
	_, err := c.c.publish(ctx, topic, payload, op)
	return err
}

// Close is Disconnect: it is the form Conn has. Errors as Disconnect.
func (c *Client) Close(ctx context.Context) error { return c.Disconnect(ctx) }

// Close is Disconnect with reason 0x00 (normal disconnection) and no
// properties: it is the form Conn has. Errors as Disconnect.
func (c *Client5) Close(ctx context.Context) error { return c.c.close(ctx, nil, nil) }
