// Package client is the MQTT client of zmqtt-go: it composes the transport,
// the session state machine and the codec, owns the goroutines, reconnects,
// and delivers messages to bounded per-subscription queues. It imports
// session, transport and codec.
//
// # Versions
//
// New returns an MQTT 3.1.1 *Client, New5 an MQTT 5.0 *Client5. Operations
// and options that only MQTT 5.0 has (publish properties, subscription
// options, DISCONNECT reasons, re-authentication, request/response) exist
// only on Client5 or take 5.0-only option types, so they do not compile
// against a 3.1.1 client.
//
//	c, err := client.New5(client.Config5{Config: client.Config{URL: "mqtt://localhost:1883"}})
//	err = c.Connect(ctx)
//	defer c.Disconnect(ctx, 0, nil)
//	sub, err := c.Subscribe(ctx, []string{"sensors/#"}, client.AtLeastOnce)
//	_, err = c.Publish(ctx, "sensors/kitchen", []byte("21.5"), client.AtLeastOnce)
//	for m, err := range sub.All(ctx) { ... }
//
// # Delivery
//
// Every incoming message goes to one subscription: the one whose
// Subscription Identifier the broker echoed, else the most specific
// matching filter (Config.FanOut delivers to every matching subscription).
// Each Subscription has its own bounded queue. The goroutine that reads the
// network never waits for the application: a full queue drops its oldest
// QoS 0 message (Subscription.Dropped counts them), and keeps a QoS 1/2
// message aside without acknowledging it until the consumer makes room, so
// the broker's inflight window (our Receive Maximum) holds the rest back.
// PINGRESP, acknowledgements and other subscriptions keep flowing.
//
// With ManualAck the application acknowledges each QoS 1/2 message with
// Message.Ack; until then the broker keeps it, and a QoS 2 message is never
// delivered twice.
//
// # Reconnecting
//
// After a connection loss the client dials again with exponential backoff
// and jitter (ReconnectPolicy). Unacknowledged QoS 1/2 messages are resent
// by the session when the broker resumed it; subscriptions are made again
// when it did not. Publishes, subscribes and pings made meanwhile wait for
// the connection or for their context. Errors that reconnecting cannot fix
// (refused credentials, certificate errors) end the client at once; when
// the policy gives up, every waiting call and every Subscription gets the
// terminal error, which also reaches Err and Done.
//
// # Errors
//
// The client returns the errors of the layers below as they are, so
// errors.Is and errors.As work on them. The exceptions of the seed (the
// Python zMQTT) map as follows:
//
//	MQTTError                 any error of this module
//	MQTTConnectError          *ReasonError with Packet CONNACK (errors.Is ErrRefused)
//	MQTTProtocolError         *ProtocolError (errors.Is ErrProtocol)
//	MQTTDisconnectedError     ErrNotConnected, ErrConnectionLost, ErrClosed
//	MQTTTimeoutError          ErrTimeout (a *session.TimeoutError), or the context's error
//	MQTTInvalidTopicError     ErrInvalidTopic (a *codec.TopicError)
//	MQTTSubscribeError        *ReasonError with Packet SUBACK and Filter
//	MQTTPublishError          *ReasonError with Packet PUBACK or PUBREC
//	MQTTQoSExceededError      *UnsupportedError (errors.Is ErrUnsupported)
//	MQTTLimitExceededError    *ProtocolError with Reason 0x93 or 0x95
//	MQTTAuthError             ErrAuth
//	RuntimeError (5.0 only)   does not compile; ErrUnsupported where types cannot say
//	ValueError (bad option)   *session.ConfigError (errors.Is session.ErrInvalidConfig)
//	asyncio.TimeoutError      context.DeadlineExceeded
//
// SafeToRetry tells which failures are worth trying again unchanged.
//
// # Logging
//
// Config.Logger receives structured logs (log/slog): connection changes at
// Info, failures at Warn and Error, details at Debug. Payloads, passwords
// and authentication data are never logged.
//
// # Goroutines
//
// A client runs one loop goroutine that owns the session, one reader and one
// writer per connection, a dialer per connection attempt and one notifier
// for callbacks; each one's exit condition is written at its definition.
// None outlives Disconnect (or the end of reconnecting). User calls hand
// their work to the loop and wait with their context; every waiter is
// resolved exactly once.
package client
