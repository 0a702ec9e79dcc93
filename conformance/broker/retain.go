package broker

import (
	"context"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

// retained publishes a retained message on a new topic and returns the
// publisher and topic; the topic is cleared when the check ends.
func retained(ctx context.Context, e *Env, payload string) (*conformance.Peer, string, error) {
	pub, err := e.Client(ctx)
	if err != nil {
		return nil, "", err
	}
	topic := e.Topic("r")
	return pub, topic, e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte(payload)})
}

func retainChecks() []Check {
	return []Check{
		{
			Name:          "retain/sent-to-new-subscription",
			Statements311: ids("MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-8"),
			Statements5:   ids("MQTT-3.3.1-5", "MQTT-3.3.1-9"),
			Requires:      needRetain,
			Run: func(ctx context.Context, e *Env) error {
				_, topic, err := retained(ctx, e, "kept")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("kept")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:          "retain/wildcard-subscription-gets-retained",
			Statements311: ids("MQTT-3.3.1-6"),
			Statements5:   ids("MQTT-3.3.1-9"),
			Requires:      all(needRetain, needWildcard),
			Run: func(ctx context.Context, e *Env) error {
				_, topic, err := retained(ctx, e, "kept")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, sub, topic[:len(topic)-1]+"#", 1); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("kept")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:          "retain/replaced",
			Statements311: ids("MQTT-3.3.1-5", "MQTT-3.3.1-7"),
			Statements5:   ids("MQTT-3.3.1-5"),
			Requires:      needRetain,
			Run: func(ctx context.Context, e *Env) error {
				pub, topic, err := retained(ctx, e, "old")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 0, Retain: true, Payload: []byte("new")}); err != nil {
					return err
				}
				if err := pub.Run(ctx, conformance.Send(&codec.Pingreq{}), conformance.Expect(&codec.Pingresp{})); err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 0, Retain: true, Payload: []byte("new")}, conformance.IgnoreProps()); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-3.3.1-5").Note("only the newest retained message"))
			},
		},
		{
			Name:          "retain/cleared-by-empty-payload",
			Statements311: ids("MQTT-3.3.1-10", "MQTT-3.3.1-11"),
			Statements5:   ids("MQTT-3.3.1-6", "MQTT-3.3.1-7"),
			Requires:      needRetain,
			Run: func(ctx context.Context, e *Env) error {
				pub, topic, err := retained(ctx, e, "gone")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Retain: true}); err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites(cite(e.Version, "MQTT-3.3.1-10", "MQTT-3.3.1-6")))
			},
		},
		{
			Name:          "retain/non-retained-publish-leaves-store",
			Statements311: ids("MQTT-3.3.1-12"),
			Statements5:   ids("MQTT-3.3.1-8"),
			Requires:      needRetain,
			Run: func(ctx context.Context, e *Env) error {
				pub, topic, err := retained(ctx, e, "kept")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("live")}); err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("kept")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:          "retain/live-delivery-flag-cleared",
			Statements311: ids("MQTT-3.3.1-9"),
			Statements5:   ids("MQTT-3.3.1-12"),
			Requires:      needRetain,
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("live")}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("live")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:          "retain/resubscribe-sends-again",
			Statements311: ids("MQTT-3.8.4-3", "MQTT-3.3.1-6"),
			Statements5:   ids("MQTT-3.8.4-4", "MQTT-3.3.1-9"),
			Requires:      needRetain,
			Run: func(ctx context.Context, e *Env) error {
				_, topic, err := retained(ctx, e, "again")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				for range 2 {
					if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
						return err
					}
					if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("again")}, conformance.IgnoreProps()); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			Name:        "retain/handling-1-only-new-subscription",
			Versions:    v5only,
			Statements5: ids("MQTT-3.3.1-10"),
			Requires:    needRetain,
			Run: func(ctx context.Context, e *Env) error {
				_, topic, err := retained(ctx, e, "once")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				opt := codec.Subscription{Filter: topic, QoS: 1, RetainHandling: codec.SendRetainedIfNew}
				if _, err := e.Subscribe(ctx, sub, 1, codec.Properties{}, opt); err != nil {
					return err
				}
				if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("once")}, conformance.IgnoreProps()); err != nil {
					return err
				}
				if _, err := e.Subscribe(ctx, sub, 2, codec.Properties{}, opt); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-3.3.1-10").Note("the subscription existed"))
			},
		},
		{
			Name:        "retain/handling-2-none",
			Versions:    v5only,
			Statements5: ids("MQTT-3.3.1-11"),
			Requires:    needRetain,
			Run: func(ctx context.Context, e *Env) error {
				_, topic, err := retained(ctx, e, "never")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Subscribe(ctx, sub, 1, codec.Properties{}, codec.Subscription{Filter: topic, QoS: 1, RetainHandling: codec.DoNotSendRetained}); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-3.3.1-11"))
			},
		},
		{
			Name:        "retain/as-published-keeps-flag",
			Versions:    v5only,
			Statements5: ids("MQTT-3.3.1-13"),
			Requires:    needRetain,
			Run: func(ctx context.Context, e *Env) error {
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				topic := e.Topic("rap")
				defer clearRetained(e, topic)
				if _, err := e.Subscribe(ctx, sub, 1, codec.Properties{}, codec.Subscription{Filter: topic, QoS: 1, RetainAsPublished: true}); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("rap")}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("rap")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:        "retain/not-available-refused",
			Versions:    v5only,
			Statements5: ids("MQTT-3.2.2-14", "MQTT-4.13.1-1"),
			Requires: func(c Caps) string {
				if c.Retain {
					return "Retain Available is 1"
				}
				return ""
			},
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Publish{Topic: e.Topic("r"), Retain: true, Payload: []byte("x")}, e.Version)
				return sendAndExpectClosed(ctx, e, true, b, "MQTT-3.2.2-14")
			},
		},
		{
			Name:        "expiry/retained-message-expires",
			Versions:    v5only,
			Statements5: ids("MQTT-3.3.2-5"),
			Requires:    needRetain,
			Timeout:     15 * time.Second,
			Run: func(ctx context.Context, e *Env) error {
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				topic := e.Topic("rexp")
				defer clearRetained(e, topic)
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("x"), Props: codec.Properties{MessageExpiry: 1}}); err != nil {
					return err
				}
				if err := pub.Run(ctx, conformance.ExpectNothing(2100*time.Millisecond)); err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-3.3.2-5").Note("the retained message expired"))
			},
		},
	}
}
