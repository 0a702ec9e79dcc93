package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

func subscribeChecks() []Check {
	return []Check{
		{
			Name:          "subscribe/multiple-filters-one-code-each",
			Statements311: ids("MQTT-3.8.4-4", "MQTT-3.8.4-5", "MQTT-3.9.3-1", "MQTT-3.9.3-2"),
			Statements5:   ids("MQTT-3.8.4-5", "MQTT-3.8.4-6", "MQTT-3.9.3-1", "MQTT-3.8.4-7"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				subs := []codec.Subscription{{Filter: e.Topic("a"), QoS: 0}, {Filter: e.Topic("b"), QoS: 1}, {Filter: e.Topic("c"), QoS: 2}}
				codes, err := e.Subscribe(ctx, p, 300, codec.Properties{}, subs...)
				if err != nil {
					return err
				}
				for i, c := range codes {
					if c > codec.ReasonCode(subs[i].QoS) {
						return failf(p, cite(e.Version, "MQTT-3.9.3-1", "MQTT-3.9.3-1"), fmt.Sprintf("code %d at most QoS %d", i, subs[i].QoS), fmt.Sprintf("0x%02x", byte(c)))
					}
				}
				if codes[0] != 0 {
					return failf(p, cite(e.Version, "MQTT-3.9.3-1", "MQTT-3.9.3-1"), "QoS 0 granted for the first filter, in order", fmt.Sprint(codes))
				}
				return nil
			},
		},
		{
			Name:          "subscribe/replaces-existing",
			Statements311: ids("MQTT-3.8.4-3"),
			Statements5:   ids("MQTT-3.8.4-3"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 0)
				if err != nil {
					return err
				}
				granted, err := e.Sub(ctx, sub, topic, 1)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("r")}); err != nil {
					return err
				}
				if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: granted, Payload: []byte("r")}, conformance.IgnoreProps()); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-3.8.4-3").Note("one subscription, one copy"))
			},
		},
		{
			Name:          "subscribe/invalid-filter-refused",
			Statements311: ids("MQTT-4.7.1-2", "MQTT-3.9.3-2"),
			Statements5:   ids("MQTT-4.7.1-1", "MQTT-3.9.3-2"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				// "x/#/y": # not last. Codec would refuse it, so build the bytes.
				filter := e.Topic("x") + "/#/y"
				return subscribeRefused(ctx, e, p, filter, 0x8f)
			},
		},
		{
			Name:          "subscribe/reserved-flags-close",
			Statements311: ids("MQTT-3.8.1-1", "MQTT-2.2.2-2"),
			Statements5:   ids("MQTT-3.8.1-1", "MQTT-4.13.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: e.Topic("f")}}}, e.Version)
				b[0] = 0x80 // flags 0000 instead of 0010
				return sendAndExpectClosed(ctx, e, true, b, "MQTT-3.8.1-1")
			},
		},
		{
			Name:          "subscribe/no-filter-close",
			Statements311: ids("MQTT-3.8.3-3", "MQTT-4.8.0-1"),
			Statements5:   ids("MQTT-3.8.3-2", "MQTT-4.13.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				b := []byte{0x82, 0x02, 0x00, 0x01}
				if e.Version == codec.V5 {
					b = []byte{0x82, 0x03, 0x00, 0x01, 0x00}
				}
				return sendAndExpectClosed(ctx, e, true, b, cite(e.Version, "MQTT-3.8.3-3", "MQTT-3.8.3-2"))
			},
		},
		{
			Name:          "subscribe/qos3-close",
			Statements311: ids("MQTT-3-8.3-4"),
			Statements5:   ids("MQTT-3.8.3-5", "MQTT-4.13.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: e.Topic("f")}}}, e.Version)
				b[len(b)-1] = 0x03
				return sendAndExpectClosed(ctx, e, true, b, cite(e.Version, "MQTT-3-8.3-4", "MQTT-3.8.3-5"))
			},
		},
		{
			Name:          "subscribe/reserved-option-bits-close",
			Statements311: ids("MQTT-3-8.3-4"),
			Statements5:   ids("MQTT-3.8.3-5"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: e.Topic("f"), QoS: 1}}}, e.Version)
				b[len(b)-1] |= 0xc0
				return sendAndExpectClosed(ctx, e, true, b, cite(e.Version, "MQTT-3-8.3-4", "MQTT-3.8.3-5"))
			},
		},
		{
			Name:          "unsubscribe/stops-delivery",
			Statements311: ids("MQTT-3.10.4-2", "MQTT-3.10.4-4"),
			Statements5:   ids("MQTT-3.10.4-2", "MQTT-3.10.4-4", "MQTT-2.2.1-6"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				if err := sub.Run(ctx, conformance.Send(&codec.Unsubscribe{PacketID: 42, Filters: []string{topic}}),
					conformance.Expect(&codec.Unsuback{PacketID: 42, ReasonCodes: unsubCodes(e, 0)}, conformance.IgnoreProps()).
						Cites(cite(e.Version, "MQTT-3.10.4-4", "MQTT-2.2.1-6"))); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("u")}); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-3.10.4-2"))
			},
		},
		{
			Name:          "unsubscribe/unknown-filter-acknowledged",
			Statements311: ids("MQTT-3.10.4-5"),
			Statements5:   ids("MQTT-3.10.4-5", "MQTT-3.11.3-2"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				want := &codec.Unsuback{PacketID: 43, ReasonCodes: unsubCodes(e, codec.ReasonNoSubscriptionExisted)}
				opts := []conformance.Option{conformance.IgnoreProps()}
				if e.Version == codec.V5 {
					opts = append(opts, conformance.IgnoreFields("ReasonCodes"), conformance.Satisfy(func(got codec.Packet) string {
						rc := got.(*codec.Unsuback).ReasonCodes
						if len(rc) != 1 || (rc[0] != 0 && rc[0] != codec.ReasonNoSubscriptionExisted) {
							return fmt.Sprintf("reason codes %v, want [0x00] or [0x11]", rc)
						}
						return ""
					}))
				}
				return p.Run(ctx, conformance.Send(&codec.Unsubscribe{PacketID: 43, Filters: []string{e.Topic("never")}}),
					conformance.Expect(want, opts...).Cites("MQTT-3.10.4-5"))
			},
		},
		{
			Name:          "unsubscribe/several-filters-one-unsuback",
			Statements311: ids("MQTT-3.10.4-6"),
			Statements5:   ids("MQTT-3.10.4-6", "MQTT-3.11.3-1"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				a, b := e.Topic("a"), e.Topic("b")
				if _, err := e.Subscribe(ctx, p, 1, codec.Properties{}, codec.Subscription{Filter: a}, codec.Subscription{Filter: b}); err != nil {
					return err
				}
				return p.Run(ctx, conformance.Send(&codec.Unsubscribe{PacketID: 44, Filters: []string{a, e.Topic("never"), b}}),
					conformance.Expect(&codec.Unsuback{PacketID: 44, ReasonCodes: unsubCodes(e, 0, codec.ReasonNoSubscriptionExisted, 0)}, conformance.IgnoreProps()).
						Cites(cite(e.Version, "MQTT-3.10.4-6", "MQTT-3.11.3-1")),
					conformance.ExpectNothing(100*time.Millisecond).Note("a single UNSUBACK"))
			},
		},
		{
			Name:          "unsubscribe/exact-filter-only",
			Statements311: ids("MQTT-3.10.4-1"),
			Statements5:   ids("MQTT-3.10.4-1"),
			Requires:      needWildcard,
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				wild := topic[:len(topic)-1] + "+"
				if _, err := e.Sub(ctx, sub, wild, 1); err != nil {
					return err
				}
				// Unsubscribing the literal topic leaves the wildcard subscription.
				if err := sub.Run(ctx, conformance.Send(&codec.Unsubscribe{PacketID: 45, Filters: []string{topic}}),
					conformance.Expect(&codec.Unsuback{PacketID: 45, ReasonCodes: unsubCodes(e, 0)}, conformance.IgnoreProps())); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("e")}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("e")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:          "unsubscribe/reserved-flags-close",
			Statements311: ids("MQTT-3.10.1-1", "MQTT-2.2.2-2"),
			Statements5:   ids("MQTT-3.10.1-1", "MQTT-4.13.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Unsubscribe{PacketID: 1, Filters: []string{e.Topic("f")}}, e.Version)
				b[0] = 0xa0
				return sendAndExpectClosed(ctx, e, true, b, "MQTT-3.10.1-1")
			},
		},
		{
			Name:          "unsubscribe/no-filter-close",
			Statements311: ids("MQTT-3.10.3-2", "MQTT-4.8.0-1"),
			Statements5:   ids("MQTT-3.10.3-2", "MQTT-4.13.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				b := []byte{0xa2, 0x02, 0x00, 0x01}
				if e.Version == codec.V5 {
					b = []byte{0xa2, 0x03, 0x00, 0x01, 0x00}
				}
				return sendAndExpectClosed(ctx, e, true, b, "MQTT-3.10.3-2")
			},
		},
	}
}

// unsubCodes returns codes on 5.0 and none on 3.1.1 (its UNSUBACK has no
// reason codes).
func unsubCodes(e *Env, codes ...codec.ReasonCode) []codec.ReasonCode {
	if e.Version == codec.V5 {
		return codes
	}
	return nil
}

// subscribeRefused sends a SUBSCRIBE for a filter the codec would refuse
// and accepts either a SUBACK failure code (0x80, or want on 5.0) or the
// connection closed.
func subscribeRefused(ctx context.Context, e *Env, p *conformance.Peer, filter string, want codec.ReasonCode) error {
	body := []byte{0x00, 0x07}
	if e.Version == codec.V5 {
		body = append(body, 0)
	}
	body = append(body, byte(len(filter)>>8), byte(len(filter)))
	body = append(body, filter...)
	body = append(body, 0)
	raw := append(appendVBI([]byte{0x82}, len(body)), body...)
	if err := p.SendBytes(ctx, raw); err != nil {
		return err
	}
	pkt, err := p.Next(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return failf(p, "", "SUBACK with a failure code, or the connection closed", "nothing")
		}
		return nil // closed
	}
	switch pkt := pkt.(type) {
	case *codec.Suback:
		if len(pkt.ReasonCodes) == 1 && pkt.ReasonCodes[0] >= 0x80 {
			return nil
		}
	case *codec.Disconnect:
		if pkt.ReasonCode >= 0x80 {
			return nil
		}
	}
	return failf(p, cite(e.Version, "MQTT-4.7.1-2", "MQTT-4.7.1-1"), fmt.Sprintf("SUBACK 0x80/0x%02x or the connection closed", byte(want)), pkt.String())
}
