package client

import (
	"github.com/zmqtt/zmqtt-go/codec"
)

// QoS is a quality-of-service level. Its values are also options: pass one
// to Publish or Subscribe.
type QoS byte

// The QoS levels of the seed: AT_MOST_ONCE, AT_LEAST_ONCE, EXACTLY_ONCE.
const (
	AtMostOnce  QoS = 0 // QoS 0: fire and forget
	AtLeastOnce QoS = 1 // QoS 1: acknowledged, may be duplicated
	ExactlyOnce QoS = 2 // QoS 2: delivered once
)

// String returns "QoS 0", "QoS 1" or "QoS 2".
func (q QoS) String() string { return codec.QoS(q).String() }

func (q QoS) applyPub(r *pubReq)  { r.p.QoS = codec.QoS(q) }
func (q QoS) applyPub5(r *pubReq) { q.applyPub(r) }
func (q QoS) applySub(r *subReq)  { r.qos, r.perFilter = codec.QoS(q), "QoS" }
func (q QoS) applySub5(r *subReq) { q.applySub(r) }

// PublishOption configures a Publish on either protocol version: a QoS,
// Retain.
type PublishOption interface{ applyPub(*pubReq) }

// PublishOption5 configures a Publish on MQTT 5.0: every PublishOption and
// the MQTT 5.0 properties. A 5.0-only option does not compile in a 3.1.1
// client's Publish.
type PublishOption5 interface{ applyPub5(*pubReq) }

// SubscribeOption configures a Subscribe on either version.
type SubscribeOption interface{ applySub(*subReq) }

// SubscribeOption5 configures a Subscribe on MQTT 5.0.
type SubscribeOption5 interface{ applySub5(*subReq) }

type pubReq struct {
	p codec.Publish
}

type subReq struct {
	// perFilter names the last option given that SubscribeFilters takes
	// from each Filter instead.
	perFilter string
	qos       codec.QoS
	manual    bool
	queue     int
	drop      bool
	noLocal   bool
	rap       bool
	rh        codec.RetainHandling
	id        uint32
	user      []codec.UserProperty
}

type retainOpt struct{}

func (retainOpt) applyPub(r *pubReq)  { r.p.Retain = true }
func (retainOpt) applyPub5(r *pubReq) { r.p.Retain = true }

// PublishOptionBoth is a publish option valid on 3.1.1 and 5.0.
type PublishOptionBoth interface {
	PublishOption
	PublishOption5
}

// Retain asks the server to keep the message for future subscribers.
var Retain PublishOptionBoth = retainOpt{}

type propsOpt struct{ p codec.Properties }

func (o propsOpt) applyPub5(r *pubReq) { r.p.Props = o.p }

// WithProperties sets every MQTT 5.0 publish property at once: Payload
// Format Indicator, Message Expiry Interval, Content Type, Response Topic,
// Correlation Data and User Property (Topic Alias and Subscription
// Identifier are the session's business). Later property options change it.
func WithProperties(p codec.Properties) PublishOption5 { return propsOpt{p: p} }

type pubFunc func(*codec.Properties)

func (f pubFunc) applyPub5(r *pubReq) { f(&r.p.Props) }

// ContentType sets the Content Type property (MQTT 5.0).
func ContentType(t string) PublishOption5 {
	return pubFunc(func(p *codec.Properties) { p.ContentType = t })
}

// ResponseTopic sets the Response Topic property (MQTT 5.0).
func ResponseTopic(t string) PublishOption5 {
	return pubFunc(func(p *codec.Properties) { p.ResponseTopic = t })
}

// CorrelationData sets the Correlation Data property (MQTT 5.0); an empty
// non-nil slice is sent as present and empty.
func CorrelationData(d []byte) PublishOption5 {
	return pubFunc(func(p *codec.Properties) {
		p.CorrelationData = d
		p.Mark(codec.PropCorrelationData)
	})
}

// MessageExpiry sets the Message Expiry Interval in seconds (MQTT 5.0).
func MessageExpiry(seconds uint32) PublishOption5 {
	return pubFunc(func(p *codec.Properties) {
		p.MessageExpiry = seconds
		p.Mark(codec.PropMessageExpiryInterval)
	})
}

// PayloadUTF8 marks the payload as UTF-8 text (Payload Format Indicator 1,
// MQTT 5.0).
func PayloadUTF8() PublishOption5 {
	return pubFunc(func(p *codec.Properties) { p.PayloadFormat = 1 })
}

type userOpt struct{ k, v string }

func (o userOpt) applyPub5(r *pubReq) {
	r.p.Props.User = append(r.p.Props.User, codec.UserProperty{Key: o.k, Value: o.v})
}
func (o userOpt) applySub5(r *subReq) {
	r.user = append(r.user, codec.UserProperty{Key: o.k, Value: o.v})
}

// UserOption is a User Property option, valid for Publish and Subscribe
// on MQTT 5.0.
type UserOption interface {
	PublishOption5
	SubscribeOption5
}

// UserProperty adds a User Property (MQTT 5.0); repeats are allowed and kept
// in order.
func UserProperty(key, value string) UserOption { return userOpt{key, value} }

type subFunc func(*subReq)

func (f subFunc) applySub(r *subReq)  { f(r) }
func (f subFunc) applySub5(r *subReq) { f(r) }

type subFunc5 func(*subReq)

func (f subFunc5) applySub5(r *subReq) { f(r) }

// BothVersions is a subscribe option valid on 3.1.1 and 5.0.
type BothVersions interface {
	SubscribeOption
	SubscribeOption5
}

// ManualAck turns automatic acknowledgement off: the application
// acknowledges each QoS 1/2 message with Message.Ack, and the server keeps
// it (and sends no more than our Receive Maximum) until then.
func ManualAck() BothVersions { return subFunc(func(r *subReq) { r.manual = true }) }

// QueueSize bounds the subscription's queue (default 1000 messages). When
// the queue is full the client stops reading from the connection until the
// consumer makes room, so a burst is held back by TCP and the broker rather
// than dropped (see the package documentation, "Delivery"); with
// DropWhenFull it drops instead.
func QueueSize(n int) BothVersions { return subFunc(func(r *subReq) { r.queue = n }) }

// DropWhenFull makes a full queue drop rather than hold the connection
// back: a new QoS 0 message replaces the oldest QoS 0 message (counted by
// Subscription.Dropped), and a QoS 1/2 message waits unacknowledged until
// it fits, so the broker's inflight window holds the rest back. Other
// subscriptions and acknowledgements then never wait for this one's
// consumer.
func DropWhenFull() BothVersions { return subFunc(func(r *subReq) { r.drop = true }) }

// NoLocal asks the server not to send back this client's own messages
// (MQTT 5.0).
func NoLocal() SubscribeOption5 {
	return subFunc5(func(r *subReq) { r.noLocal, r.perFilter = true, "NoLocal" })
}

// RetainAsPublished keeps the RETAIN flag of forwarded messages (MQTT 5.0).
func RetainAsPublished() SubscribeOption5 {
	return subFunc5(func(r *subReq) { r.rap, r.perFilter = true, "RetainAsPublished" })
}

// RetainHandling chooses when retained messages are sent (MQTT 5.0).
func RetainHandling(h codec.RetainHandling) SubscribeOption5 {
	return subFunc5(func(r *subReq) { r.rh, r.perFilter = h, "RetainHandling" })
}

// SubscriptionID sets the Subscription Identifier (1..268,435,455, MQTT
// 5.0); messages the server sends for it carry it, and the router uses it.
func SubscriptionID(id uint32) SubscribeOption5 { return subFunc5(func(r *subReq) { r.id = id }) }
