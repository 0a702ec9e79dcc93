package client

import (
	"context"
	"errors"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Filter is one topic filter of a SUBSCRIBE with its own maximum QoS, for
// SubscribeFilters on either protocol version. The zero QoS is AtMostOnce,
// as for Subscribe.
type Filter struct {
	Topic string // the topic filter; wildcards and $share/<group>/ allowed
	QoS   QoS    // the maximum QoS of messages sent for this filter
}

// Filter5 is one topic filter of an MQTT 5.0 SUBSCRIBE with every
// subscription option of its own [§3.8.3.1], for Client5.SubscribeFilters5.
// The fields beyond Topic and QoS do not exist on Filter, so a 3.1.1 client
// cannot be asked for them.
type Filter5 struct {
	Topic string
	QoS   QoS
	// NoLocal: the broker does not send this client's own messages back
	// for this filter [MQTT-3.8.3-3]. Not allowed on a shared subscription
	// [MQTT-3.8.3-4].
	NoLocal bool
	// RetainAsPublished keeps the RETAIN flag of messages forwarded for
	// this filter [MQTT-3.3.1-12].
	RetainAsPublished bool
	// RetainHandling says when retained messages are sent for this filter:
	// at subscribe (codec.SendRetained, the default), only for a new
	// subscription (codec.SendRetainedIfNew) or never
	// (codec.DoNotSendRetained) [MQTT-3.3.1-9] [MQTT-3.3.1-10]
	// [MQTT-3.3.1-11].
	RetainHandling codec.RetainHandling
}

// ErrInvalidArgument matches every *ArgumentError.
var ErrInvalidArgument = errors.New("zmqtt: invalid argument")

// ArgumentError reports a call whose arguments contradict each other or
// the state they refer to (a subscription-wide QoS given to
// SubscribeFilters, a filter a Subscription does not hold, a handler
// registered twice). Nothing was sent. It matches ErrInvalidArgument.
type ArgumentError struct {
	Func string // the function or method called
	Msg  string // what is wrong
}

// Error formats the error as "zmqtt: <Func>: <Msg>".
func (e *ArgumentError) Error() string { return "zmqtt: " + e.Func + ": " + e.Msg }

// Is matches ErrInvalidArgument.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// perFilterConflict refuses a subscription-wide option that SubscribeFilters
// takes from each filter: which one should win is not for the client to
// guess.
func perFilterConflict(fn string, r *subReq) error {
	if r.perFilter == "" {
		return nil
	}
	return &ArgumentError{Func: fn, Msg: "the " + r.perFilter + " option is set per filter here, in the Filter values"}
}

// SubscribeFilters subscribes to filters with one SUBSCRIBE in which each
// filter carries its own maximum QoS, and returns the Subscription once
// the SUBACK granted them all (Granted has the code of each). Options are
// those of the whole subscription: ManualAck, QueueSize, DropWhenFull; a QoS
// among them is an *ArgumentError (ErrInvalidArgument), since each Filter
// has its own. Other errors as Subscribe: a *ProtocolError for no filter
// [MQTT-3.8.3-3], ErrInvalidTopic, a *ReasonError naming the first filter
// the broker refused (the whole subscription is then undone),
// ErrUnsupported, ErrClosed, ctx's error.
func (c *Client) SubscribeFilters(ctx context.Context, filters []Filter, opts ...SubscribeOption) (*Subscription, error) {
	return c.c.subscribeFilters(ctx, filters, opts)
}

// SubscribeFilters is Client.SubscribeFilters on MQTT 5.0, with the options
// both versions share: it is the form Conn has. SubscribeFilters5 takes the
// 5.0 options.
func (c *Client5) SubscribeFilters(ctx context.Context, filters []Filter, opts ...SubscribeOption) (*Subscription, error) {
	return c.c.subscribeFilters(ctx, filters, opts)
}

// subscribeFilters is SubscribeFilters of both versions.
func (c *core) subscribeFilters(ctx context.Context, filters []Filter, opts []SubscribeOption) (*Subscription, error) {
	var r subReq
	for _, o := range opts {
		if o != nil {
			o.applySub(&r)
		}
	}
	if err := perFilterConflict("SubscribeFilters", &r); err != nil {
		return nil, err
	}
	return c.subscribeEach(ctx, commonFilters(filters), &r)
}

// SubscribeFilters5 subscribes to filters with one MQTT 5.0 SUBSCRIBE in
// which each filter carries its own subscription options (QoS, No Local,
// Retain As Published, Retain Handling) [§3.8.3.1]. Options are those of
// the whole subscription: ManualAck, QueueSize, DropWhenFull, SubscriptionID
// and UserProperty; a QoS, NoLocal, RetainAsPublished or RetainHandling
// option is an *ArgumentError (ErrInvalidArgument). The SUBACK's reason
// code of each filter is in Granted; a filter the broker refused fails the
// call with a *ReasonError that names it [MQTT-3.9.3-1], and the
// subscription is undone. Errors as Client5.Subscribe otherwise; No Local on
// a shared subscription is refused before sending [MQTT-3.8.3-4].
func (c *Client5) SubscribeFilters5(ctx context.Context, filters []Filter5, opts ...SubscribeOption5) (*Subscription, error) {
	var r subReq
	for _, o := range opts {
		if o != nil {
			o.applySub5(&r)
		}
	}
	if err := perFilterConflict("SubscribeFilters5", &r); err != nil {
		return nil, err
	}
	subs := make([]codec.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = codec.Subscription{Filter: f.Topic, QoS: codec.QoS(f.QoS), NoLocal: f.NoLocal,
			RetainAsPublished: f.RetainAsPublished, RetainHandling: f.RetainHandling}
	}
	return c.c.subscribeEach(ctx, subs, &r)
}

func commonFilters(filters []Filter) []codec.Subscription {
	subs := make([]codec.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = codec.Subscription{Filter: f.Topic, QoS: codec.QoS(f.QoS)}
	}
	return subs
}
