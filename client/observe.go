package client

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// Observer receives a client's events, for metrics and tracing: an
// OpenTelemetry adapter, a Prometheus exporter, a packet trace of one's own.
// Set it as Config.Observer. Every field is optional; a nil Observer (the
// default) and a nil field cost nothing but a nil check, and with an
// Observer set the client allocates nothing per message for it (only new
// topic names are copied, see PacketInfo.Topic).
//
// What an Observer sees never includes a payload, a password or
// authentication data: packets are described by type, identifier, QoS,
// topic, size and reason code; publishes and messages by their topic, QoS,
// payload size and (MQTT 5.0) properties.
//
// OnPacket, OnPublishDone and OnMessage run on the client's loop goroutine,
// the one that owns the connection: they must return quickly and must not
// block, or every publish, acknowledgement and PINGREQ of the client waits.
// They must not call a method of the client that waits for the loop
// (Publish, Subscribe, Ping, Drain, Disconnect, Subscription.Close, ...): it
// would wait forever. Stats, State, Info, Unrouted and PublishAsync do not
// wait and may be called. OnPublish runs on the goroutine of the Publish or
// PublishAsync call; OnStateChange on the goroutine that runs the client's
// callbacks.
type Observer struct {
	// OnStateChange is called at every change of connection state, as
	// Config.OnStateChange is (in order, after it, on the client's
	// callback goroutine), so that an observer does not take that field
	// from the application.
	OnStateChange func(StateChange)

	// OnPacket is called for every packet sent (when its bytes are handed
	// to the connection) and every packet received (when the session has
	// taken it), in wire order per direction. A CONNECT is described by
	// its type and size only.
	OnPacket func(Direction, PacketInfo)

	// OnPublish is called by Publish and PublishAsync (of either version)
	// for every message whose topic name is valid, before the client takes
	// it, with the caller's context (context.Background for PublishAsync).
	// Through p it may set MQTT 5.0 user properties of the PUBLISH, such as
	// a W3C traceparent and tracestate. What it returns comes back as
	// PublishDone.Value: a span, for instance. OnPublishDone is called
	// exactly once for every publish OnPublish saw.
	OnPublish func(ctx context.Context, p *PublishStart) any

	// OnPublishDone is called when a publish is over: QoS 0 handed to the
	// connection, QoS 1 acknowledged by PUBACK, QoS 2 by PUBCOMP, a
	// refusal (PUBACK or PUBREC with a failure reason code), or a failure
	// (ErrQueueFull, ErrClosed when the client closes first, the caller's
	// context when a message not yet sent was withdrawn, ...). It runs on
	// the loop goroutine, or on the caller's goroutine when the publish
	// failed before the client took it (closed client, full PublishAsync
	// intake, context ended before the loop took the call).
	OnPublishDone func(PublishDone)

	// OnMessage is called for every incoming message the client delivers
	// (to its subscriptions, or to a request waiting for its reply), after
	// the session recognised duplicates, before the message is queued.
	OnMessage func(MessageInfo)
}

// Direction says whether a packet was sent or received.
type Direction uint8

// The directions.
const (
	PacketSent     Direction = iota + 1 // client to broker
	PacketReceived                      // broker to client
)

// String returns "sent" or "received".
func (d Direction) String() string {
	switch d {
	case PacketSent:
		return "sent"
	case PacketReceived:
		return "received"
	}
	return "direction?"
}

// PacketInfo describes one packet without its contents: no payload, no
// password, no authentication data, no properties.
type PacketInfo struct {
	Type codec.Type
	// Size is the packet's size on the wire, fixed header included.
	Size int
	// PacketID is the packet identifier; 0 for packets without one (QoS 0
	// PUBLISH, CONNECT, PINGREQ, ...).
	PacketID uint16
	// QoS, Dup and Retain are the flags of a PUBLISH.
	QoS         QoS
	Dup, Retain bool
	// Topic is the topic name of a PUBLISH. When the packet carried only a
	// topic alias, the topic that alias stands for on this connection
	// (empty if the client did not see the alias set up). The string is
	// the client's own and may be kept: the client copies each new topic
	// name once and reuses the copy (up to 1024 names, then it starts
	// over).
	Topic string
	// TopicAlias is the MQTT 5.0 topic alias of a PUBLISH; 0 for none.
	TopicAlias uint16
	// Reason is the reason code of a CONNACK (the return code on 3.1.1)
	// and a SUBACK, and on MQTT 5.0 of a PUBACK, PUBREC, PUBREL, PUBCOMP,
	// UNSUBACK, DISCONNECT or AUTH; 0 (success) also when the packet's
	// short form left it out. For SUBACK and UNSUBACK it is the first
	// failure code, else the first code. HasReason says whether the packet
	// carries one.
	Reason    codec.ReasonCode
	HasReason bool
}

// PublishStart is the outgoing message an Observer's OnPublish sees. Its
// exported fields are for reading; user properties are changed with
// SetUserProperty. It is valid only during the call.
type PublishStart struct {
	Topic       string
	QoS         QoS
	Retain      bool
	PayloadSize int
	Version     codec.Version
	// Time is when OnPublish was called; PublishDone.Duration counts from
	// it.
	Time time.Time

	props *codec.Properties    // the publish's properties
	user  []codec.UserProperty // a copy of props.User once changed, reused
	own   bool                 // props.User is user
}

// Properties returns the MQTT 5.0 properties of the message (zero on
// 3.1.1). The slices in it are shared with the message: do not change
// them.
func (p *PublishStart) Properties() codec.Properties { return *p.props }

// UserProperty returns the value of the first user property named key,
// and whether there is one.
func (p *PublishStart) UserProperty(key string) (string, bool) {
	for _, u := range p.props.User {
		if u.Key == key {
			return u.Value, true
		}
	}
	return "", false
}

// SetUserProperty sets the MQTT 5.0 user property key to value: the first
// property with that name is replaced, else one is added at the end. The
// caller's slice of user properties is never modified: the message gets
// a copy (kept and reused by Publish, so no allocation in steady state).
// It returns an error matching ErrUnsupported on MQTT 3.1.1, which has no
// properties.
func (p *PublishStart) SetUserProperty(key, value string) error {
	if p.Version != codec.V5 {
		return &UnsupportedError{Feature: "user properties", Detail: "MQTT 3.1.1 has no properties"}
	}
	if !p.own {
		p.user = append(p.user[:0], p.props.User...)
		p.own = true
	}
	for i := range p.user {
		if p.user[i].Key == key {
			p.user[i].Value = value
			p.props.User = p.user
			return nil
		}
	}
	p.user = append(p.user, codec.UserProperty{Key: key, Value: value})
	p.props.User = p.user
	return nil
}

// reset clears p for reuse, keeping the capacity of its user properties.
func (p *PublishStart) reset() {
	clear(p.user)
	*p = PublishStart{user: p.user[:0]}
}

// PublishDone is the end of a publish an Observer's OnPublish saw.
type PublishDone struct {
	Topic string
	QoS   QoS
	// Duration is the time from OnPublish to the end: the whole operation
	// as its caller sees it, time queued while offline included.
	Duration time.Duration
	// Err is nil for a success, else the publish's error: a *ReasonError
	// for a refusal, ErrClosed, ErrQueueFull, a context's error, ...
	Err error
	// Code is the reason code of the PUBACK, PUBREC or PUBCOMP that ended
	// a QoS 1/2 publish on MQTT 5.0 (0x10 No matching subscribers, say); 0
	// otherwise.
	Code codec.ReasonCode
	// Value is what OnPublish returned.
	Value any
}

// MessageInfo is an incoming message as an Observer's OnMessage sees it:
// everything but the payload.
type MessageInfo struct {
	Topic             string
	QoS               QoS
	Retain, Duplicate bool
	PayloadSize       int
	// Properties are the message's MQTT 5.0 properties (zero on 3.1.1),
	// user properties (a traceparent, say) included. They are the
	// delivered Message's: read them, do not change them.
	Properties codec.Properties
	// Reply is true for a message that went to a request waiting for its
	// reply (Client5.ExpectReply) rather than to subscriptions.
	Reply bool
}

// pubTrack is what the loop keeps of a publish until it is over, for
// PublishLatency and the Observer.
type pubTrack struct {
	accepted time.Time // the loop took it in
	start    time.Time // OnPublish was called (observed only)
	topic    string
	qos      QoS
	val      any
	observed bool // OnPublishDone is due
}

// observer state of a core: the Observer's functions, checked for nil on
// the hot paths, and the tracer.
type observing struct {
	obs       *Observer
	onPacket  func(Direction, PacketInfo)
	onMessage func(MessageInfo)
	pubHooks  bool    // OnPublish or OnPublishDone set
	logTrace  bool    // a Logger was given: packets may be logged at Debug
	tr        *tracer // made at the first traced packet: most clients never trace
}

func (o *observing) init(cfg *Config) {
	o.logTrace = cfg.Logger != nil
	o.obs = cfg.Observer
	if o.obs == nil {
		return
	}
	o.onPacket = o.obs.OnPacket
	o.onMessage = o.obs.OnMessage
	o.pubHooks = o.obs.OnPublish != nil || o.obs.OnPublishDone != nil
}

// traceMode says what a batch of packets needs besides counting.
type traceMode uint8

const (
	traceObserver traceMode = 1 << iota // OnPacket
	traceLog                            // Debug lines
)

// traceMode is asked once per batch: the Logger's Enabled is a call
// through an interface.
func (c *core) traceMode() traceMode {
	var m traceMode
	if c.o.onPacket != nil {
		m |= traceObserver
	}
	if c.o.logTrace && c.log.Enabled(context.Background(), slog.LevelDebug) {
		m |= traceLog
	}
	return m
}

// observePackets counts the whole packets in b, which went in direction
// dir, and traces them as m says; runs on the loop. b holds whole packets
// only (a batch the session encoded, or one packet it accepted).
func (c *core) observePackets(dir Direction, b []byte, m traceMode) {
	for len(b) > 0 {
		h, err := codec.ParseHeader(b)
		if err != nil || h.Size() > len(b) {
			return // not ours to judge: the session encoded or accepted it
		}
		c.stats.countPacket(dir, h)
		if m != 0 {
			if c.o.tr == nil {
				c.o.tr = new(tracer)
			}
			info := c.o.tr.info(dir, b[:h.Size()], h, c.v)
			if m&traceObserver != 0 {
				c.o.onPacket(dir, info)
			}
			if m&traceLog != 0 {
				c.logPacket(dir, info)
			}
		}
		b = b[h.Size():]
	}
}

// logPacket writes the Debug line of one packet.
func (c *core) logPacket(dir Direction, p PacketInfo) {
	var buf [10]slog.Attr
	a := append(buf[:0], slog.String("type", p.Type.String()), slog.Int("size", p.Size))
	if p.PacketID != 0 {
		a = append(a, slog.Int("id", int(p.PacketID)))
	}
	if p.Type == codec.TypePublish {
		a = append(a, slog.Int("qos", int(p.QoS)), slog.String("topic", p.Topic))
		if p.TopicAlias != 0 {
			a = append(a, slog.Int("alias", int(p.TopicAlias)))
		}
		if p.Dup {
			a = append(a, slog.Bool("dup", true))
		}
		if p.Retain {
			a = append(a, slog.Bool("retain", true))
		}
	}
	if p.HasReason {
		a = append(a, slog.String("reason", p.Reason.Name(p.Type, c.v)))
	}
	msg := "packet sent"
	if dir == PacketReceived {
		msg = "packet received"
	}
	c.log.LogAttrs(context.Background(), slog.LevelDebug, msg, a...)
}

// maxInterned bounds the topic names a tracer keeps.
const maxInterned = 1024

// tracer describes packets for OnPacket and the Debug trace: it decodes
// them again (the session's values are gone or private by then) into
// values of its own, so that it allocates nothing but new topic names. It
// mirrors the topic aliases of the connection in both directions.
type tracer struct {
	in, out           codec.Decoder
	aliasIn, aliasOut []string // by alias, this connection
	topics            map[string]string
}

// newConnection forgets the topic aliases: they belong to a connection.
func (t *tracer) newConnection() {
	clear(t.aliasIn)
	clear(t.aliasOut)
	t.aliasIn, t.aliasOut = t.aliasIn[:0], t.aliasOut[:0]
}

// intern returns an owned string equal to s, which may borrow from a
// buffer; the lookup with a borrowed key does not allocate.
func (t *tracer) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := t.topics[s]; ok {
		return v
	}
	if t.topics == nil {
		t.topics = make(map[string]string)
	} else if len(t.topics) >= maxInterned {
		clear(t.topics)
	}
	v := strings.Clone(s)
	t.topics[v] = v
	return v
}

// info describes pkt, a whole packet with header h.
func (t *tracer) info(dir Direction, pkt []byte, h codec.Header, v codec.Version) PacketInfo {
	pi := PacketInfo{Type: h.Type, Size: h.Size()}
	if h.Type == codec.TypeConnect {
		return pi // never decoded: it carries the password
	}
	d, aliases := &t.out, &t.aliasOut
	if dir == PacketReceived {
		d, aliases = &t.in, &t.aliasIn
	}
	if d.Version != v {
		*d = codec.Decoder{Version: v}
	}
	p, _, err := d.Decode(pkt)
	if err != nil {
		return pi
	}
	v5 := v == codec.V5
	switch p := p.(type) {
	case *codec.Publish:
		pi.QoS, pi.Dup, pi.Retain, pi.PacketID = QoS(p.QoS), p.Dup, p.Retain, p.PacketID
		pi.Topic = t.intern(p.Topic)
		if p.Props.Present.Has(codec.PropTopicAlias) && p.Props.TopicAlias != 0 {
			a := int(p.Props.TopicAlias)
			pi.TopicAlias = p.Props.TopicAlias
			switch {
			case pi.Topic != "":
				for len(*aliases) <= a {
					*aliases = append(*aliases, "")
				}
				(*aliases)[a] = pi.Topic
			case a < len(*aliases):
				pi.Topic = (*aliases)[a]
			}
		}
	case *codec.Puback:
		pi.PacketID, pi.Reason, pi.HasReason = p.PacketID, p.ReasonCode, v5
	case *codec.Pubrec:
		pi.PacketID, pi.Reason, pi.HasReason = p.PacketID, p.ReasonCode, v5
	case *codec.Pubrel:
		pi.PacketID, pi.Reason, pi.HasReason = p.PacketID, p.ReasonCode, v5
	case *codec.Pubcomp:
		pi.PacketID, pi.Reason, pi.HasReason = p.PacketID, p.ReasonCode, v5
	case *codec.Connack:
		pi.Reason, pi.HasReason = p.ReasonCode, true
	case *codec.Subscribe:
		pi.PacketID = p.PacketID
	case *codec.Unsubscribe:
		pi.PacketID = p.PacketID
	case *codec.Suback:
		pi.PacketID = p.PacketID
		pi.Reason, pi.HasReason = firstFailure(p.ReasonCodes), true
	case *codec.Unsuback:
		pi.PacketID = p.PacketID
		if v5 {
			pi.Reason, pi.HasReason = firstFailure(p.ReasonCodes), true
		}
	case *codec.Disconnect:
		pi.Reason, pi.HasReason = p.ReasonCode, v5
	case *codec.Auth:
		pi.Reason, pi.HasReason = p.ReasonCode, true
	}
	return pi
}

// firstFailure returns the first failure code of codes, else the first
// code.
func firstFailure(codes []codec.ReasonCode) codec.ReasonCode {
	for _, c := range codes {
		if c.Failed() {
			return c
		}
	}
	if len(codes) > 0 {
		return codes[0]
	}
	return 0
}

// startPublish calls OnPublish for a publish about to be handed to the
// loop and fills t with what the end of the publish needs; runs on the
// caller's goroutine, only when the Observer has publish hooks.
func (c *core) startPublish(ctx context.Context, p *codec.Publish, ps *PublishStart, t *pubTrack) {
	now := time.Now()
	*t = pubTrack{start: now, topic: p.Topic, qos: QoS(p.QoS), observed: true}
	if c.o.obs.OnPublish == nil {
		return
	}
	ps.Topic, ps.QoS, ps.Retain, ps.PayloadSize, ps.Version, ps.Time = p.Topic, QoS(p.QoS), p.Retain, len(p.Payload), c.v, now
	ps.props = &p.Props
	t.val = c.o.obs.OnPublish(ctx, ps)
}

// tookPublish records the session's answer to a publish, on the loop: a
// token means it completes later (its track waits in pubs); otherwise it
// is over now (QoS 0 written, or an error).
func (c *core) tookPublish(now time.Time, tok session.Token, err error, qos codec.QoS, t *pubTrack) {
	t.qos = QoS(qos)
	if err == nil && tok != 0 {
		t.accepted = now
		put(&c.pubs, tok, *t)
		return
	}
	c.endPublish(now, t, err, 0)
}

// endPublish ends a tracked publish: its latency, when the server
// acknowledged it, and OnPublishDone. It runs on the loop, except for a
// publish that failed before the loop took it (then t.accepted is zero).
func (c *core) endPublish(now time.Time, t *pubTrack, err error, code codec.ReasonCode) {
	if t.qos > 0 && !t.accepted.IsZero() && publishAcked(err) {
		c.stats.latency(now.Sub(t.accepted))
	}
	if t.observed {
		if f := c.o.obs.OnPublishDone; f != nil {
			f(PublishDone{Topic: t.topic, QoS: t.qos, Duration: now.Sub(t.start), Err: err, Code: code, Value: t.val})
		}
	}
}

// publishEvent ends the tracked publish of tok, if any, with the session's
// completion event; runs on the loop.
func (c *core) publishEvent(ev *session.Event) {
	t, ok := c.pubs[ev.Token]
	if !ok {
		return
	}
	delete(c.pubs, ev.Token)
	// An acknowledgement: when it was read, without reading the clock again.
	now := c.stats.born.Add(time.Duration(c.readAt - 1))
	if c.readAt == 0 {
		now = time.Now()
	}
	c.endPublish(now, &t, ev.Err, ev.Code)
}

// endPublishEarly reports the end of an observed publish the loop never
// took; runs on the caller's goroutine.
func (c *core) endPublishEarly(t *pubTrack, err error) {
	if t.observed {
		c.endPublish(time.Now(), t, err, 0)
	}
}

// observeMessage calls OnMessage for a delivered message; runs on the
// loop.
func (c *core) observeMessage(m *Message, reply bool) {
	c.o.onMessage(MessageInfo{Topic: m.Topic, QoS: m.QoS, Retain: m.Retain, Duplicate: m.Duplicate,
		PayloadSize: len(m.Payload), Properties: m.Properties, Reply: reply})
}
