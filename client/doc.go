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
// Each Subscription has its own bounded queue (QueueSize, default 1000
// messages). When a queue fills up, the client stops reading from the
// connection until that consumer makes room: a burst then waits in the
// kernel's socket buffers and at the broker, and nothing is dropped, while
// memory stays bounded by the queue. The pause is the client's own, so it
// does not count against the broker's liveness: PINGREQs still go out and
// the link is not declared dead while a consumer is slow. The price is
// that everything behind the full queue on that connection waits too
// (other subscriptions, acknowledgements of our publishes). A subscription
// made with DropWhenFull never holds the connection back: a full queue
// drops its oldest QoS 0 message (Subscription.Dropped counts them) and
// keeps a QoS 1/2 message aside, unacknowledged, until the consumer makes
// room, so the broker's inflight window holds the rest back.
//
// With ManualAck the application acknowledges each QoS 1/2 message with
// Message.Ack; until then the broker keeps it, and a QoS 2 message is never
// delivered twice.
//
// # Filters, handlers and fan-in
//
// SubscribeFilters sends one SUBSCRIBE in which each Filter has its own
// QoS; Client5.SubscribeFilters5 takes Filter5 values, with No Local,
// Retain As Published and Retain Handling per filter.
// Subscription.Unsubscribe removes some filters of a subscription and keeps
// the others (Unsubscribe5 adds User Properties on 5.0). A Router gives each filter a
// Handler and dispatches a subscription's messages by the client's own
// routing rules, on a fixed number of goroutines; with ManualAck a message
// is acknowledged when its handler has returned. Merge reads several
// subscriptions, of one client or several, in one loop, without starting
// a goroutine.
//
//	var r client.Router
//	r.Handle("sensors/+/temperature", onTemperature)
//	r.Handle("sensors/#", onOther)
//	sub, err := c.Subscribe(ctx, r.Filters(), client.AtLeastOnce, client.ManualAck())
//	err = r.Serve(ctx, sub) // until ctx ends
//
// # One interface for both versions
//
// Conn is what *Client and *Client5 share: Connect, Send, SubscribeFilters,
// Close, State, Done, Err. Code written against it runs on either version;
// a mock of it returns Subscriptions filled by a Feed, so that such code is
// tested without a broker (see the Conn example).
//
// # Running in production
//
// The defaults are chosen for a service that runs for months:
//
//   - Reconnecting never gives up (ReconnectPolicy): delays from 250 ms
//     doubling to 30 s, jittered, starting over only after a connection
//     stayed up for 10 s. Errors a retry cannot fix end the client at once:
//     an unusable URL (refused by New already), refused credentials or
//     client identifier, refused proxy credentials (transport.ErrProxyAuth),
//     an unsupported protocol version (ErrUnsupportedVersion), a ban, a
//     certificate error, another client taking the session over.
//   - A cluster is a list: Config.URL plus Config.Servers. A failed
//     attempt moves to the next server at once; the delay applies between
//     rounds of the list; the client stays on the server that works. MQTT
//     5.0 Server References (0x9C, 0x9D) are followed. StateChange.Server
//     and the logs say which server the client is on.
//   - A dead link (black hole, half-open) is noticed within 1.5x the keep
//     alive, whatever the client was doing: a PINGREQ goes out when either
//     direction has been quiet for the keep alive, and the link is dead
//     when, with a PINGREQ outstanding, nothing at all arrives for
//     PingTimeout (half the keep alive). Any packet received is a sign of
//     life, so a busy link is never dropped for a late PINGRESP.
//   - Nothing accepted is lost to a reconnect: unacknowledged QoS 1/2
//     messages are resent when the broker resumed the session, and
//     published again as new messages when it did not
//     (RepublishOnSessionLost; a QoS 2 message may then arrive twice).
//     Subscriptions are made again. On 3.1.1 at most MaxInflight (20)
//     QoS 1/2 messages are in flight, which brokers' defaults accept.
//   - A message the broker answers by closing the connection (over its
//     maximum packet size, say) fails with a *PoisonError after
//     PoisonCloses (3) closes in a row, instead of looping forever.
//   - Publish waits for the connection while offline; PublishAsync never
//     blocks and returns a *Publishing handle. With a Store, a QoS 1/2
//     message is durable once its handle's Accepted is closed: a process
//     killed while offline sends it after a restart. Drain waits until
//     everything accepted is complete; Disconnect drains first (up to
//     DrainTimeout, 10 s) while connected.
//   - Connect with a deadline returns a *ConnectError carrying the last
//     attempt's cause (refused dial, TLS error, CONNACK code). Disconnect
//     never hangs, whatever its context.
//
// # Proxies and WebSocket options
//
// Config.Proxy sends every broker connection through an HTTP CONNECT
// (http://, https://) or SOCKS5 (socks5://, socks5h://) proxy, credentials
// in the URL; TLS and WebSocket run end to end inside the tunnel, and the
// server list, failover and Server References work as without it.
// Config.ProxyFunc chooses per broker; transport.ProxyFromEnvironment
// there honours HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY. The
// environment is not read otherwise: broker traffic goes through a proxy
// only when the configuration says so. A proxy's failure reaches Connect
// and the logs as a *transport.ProxyError (errors.Is
// transport.ErrProxyUnreachable, ErrProxyAuth or ErrProxyRefused).
//
// Config.WebSocketHeader is sent with the WebSocket handshake (an
// Authorization header or a cookie for a gateway), and
// Config.WebSocketSubprotocols are offered before "mqtt".
//
// # Reconnecting
//
// After a connection loss the client dials again as above. Publishes,
// subscribes and pings made meanwhile wait for the connection or for their
// context. When a policy with MaxAttempts gives up, every waiting call and
// every Subscription gets the terminal error, which also reaches Err and
// Done.
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
// Info, failures at Warn and Error, details at Debug. At Debug it also gets
// a packet trace: one "packet sent" or "packet received" line per packet,
// with its type, size, packet identifier, QoS, topic and reason code. The
// client asks the Logger whether Debug is enabled once per batch of
// packets, so a Logger at Info costs nothing per packet. Payloads,
// passwords and authentication data are never logged.
//
// # Metrics and tracing
//
// Client.Stats and Client5.Stats return a snapshot of counters and gauges:
// packets and bytes sent and received (by packet type, and PUBLISH by QoS),
// messages delivered, dropped and unrouted, connection attempts, connects,
// reconnects and losses, time connected, messages in flight in each
// direction, the depths of the publish queue, the PublishAsync intake and
// the subscription queues, and a histogram of QoS 1/2 publish latencies.
// The client counts on its loop goroutine without locks and publishes the
// counts with one atomic add per changed counter; Stats never waits for
// the loop.
//
// Config.Observer receives events for an exporter or a tracing adapter:
// state changes, every packet (described, never its contents), the start
// of each publish (where MQTT 5.0 user properties such as a W3C traceparent
// can be added) and its end (error, reason code, duration), and every
// incoming message with its properties. A nil Observer costs a nil check;
// a publish allocates nothing with or without one.
//
// # Goroutines
//
// A connected client keeps one goroutine, the connection's reader. The loop
// goroutine that owns the session runs while there is work and exits after
// 100 ms without any (the next event starts it again); a writer runs
// while a batch is being written, a dialer per connection attempt, and a
// notifier while callbacks are queued. Each one's exit condition is written
// at its definition. None outlives Disconnect (or the end of reconnecting).
// User calls queue their work for the loop and wait with their context;
// every waiter is resolved exactly once. An idle client with one
// subscription holds under 18 KiB, goroutine stacks included (17.6-17.8
// KiB in bench/BenchmarkIdleMemory).
package client
