package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

func publishChecks() []Check {
	var cs []Check
	for q := codec.QoS(0); q <= 2; q++ {
		cs = append(cs, Check{
			Name:          fmt.Sprintf("publish/qos%d-round-trip", q),
			Statements311: ids("MQTT-3.3.4-1", "MQTT-4.3.1-1", "MQTT-4.3.2-2", "MQTT-4.3.3-2", "MQTT-2.3.1-6"),
			Statements5:   ids("MQTT-3.3.4-1", "MQTT-4.3.1-1", "MQTT-4.3.2-4", "MQTT-4.3.3-8", "MQTT-4.3.3-11", "MQTT-2.2.1-5"),
			Requires:      needQoS(q),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, granted, err := pair(ctx, e, q)
				if err != nil {
					return err
				}
				if granted < q {
					return na("the broker granted QoS %d for a QoS %d subscription", granted, q)
				}
				payload := []byte("payload at qos " + strconv.Itoa(int(q)))
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: q, Payload: payload}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: q, Payload: payload}, conformance.IgnoreProps())
				return err
			},
		})
	}
	// The downgrade matrix: delivery QoS = min(published, granted).
	for pq := codec.QoS(0); pq <= 2; pq++ {
		for sq := codec.QoS(0); sq <= 2; sq++ {
			cs = append(cs, Check{
				Name:          fmt.Sprintf("subscribe/downgrade-pub%d-sub%d", pq, sq),
				Statements311: ids("MQTT-3.8.4-6"),
				Statements5:   ids("MQTT-3.8.4-8"),
				Requires:      needQoS(pq),
				Run: func(ctx context.Context, e *Env) error {
					sub, pub, topic, granted, err := pair(ctx, e, sq)
					if err != nil {
						return err
					}
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: pq, Payload: []byte("d")}); err != nil {
						return err
					}
					want := min(pq, granted)
					_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: want, Payload: []byte("d")}, conformance.IgnoreProps())
					return err
				},
			})
		}
	}
	cs = append(cs,
		Check{
			Name:          "publish/qos1-no-subscribers-acknowledged",
			Statements311: ids("MQTT-2.3.1-6", "MQTT-4.3.2-2"),
			Statements5:   ids("MQTT-2.2.1-5", "MQTT-4.3.2-4", "MQTT-3.4.2-1"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return e.Publish(ctx, p, &codec.Publish{Topic: e.Topic("nobody"), QoS: 1, PacketID: 0x1234, Payload: []byte("x")})
			},
		},
		Check{
			Name:          "publish/qos2-no-subscribers-acknowledged",
			Statements311: ids("MQTT-2.3.1-6", "MQTT-4.3.3-2"),
			Statements5:   ids("MQTT-2.2.1-5", "MQTT-4.3.3-8", "MQTT-3.5.2-1", "MQTT-4.3.3-11"),
			Requires:      needQoS(2),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return e.Publish(ctx, p, &codec.Publish{Topic: e.Topic("nobody"), QoS: 2, PacketID: 0xfffe, Payload: []byte("x")})
			},
		},
		Check{
			Name:          "publish/pubrel-unknown-id-completed",
			Statements311: ids("MQTT-4.3.3-2"),
			Statements5:   ids("MQTT-4.3.3-11", "MQTT-3.7.2-1"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return p.Run(ctx, conformance.Send(&codec.Pubrel{PacketID: 77}),
					conformance.Expect(&codec.Pubcomp{PacketID: 77}, conformance.IgnoreProps(),
						conformance.ReasonIn(codec.ReasonSuccess, codec.ReasonPacketIdentifierNotFound)).
						Cites(cite(e.Version, "MQTT-4.3.3-2", "MQTT-4.3.3-11")))
			},
		},
		Check{
			Name:          "publish/qos2-duplicate-delivered-once",
			Statements311: ids("MQTT-4.3.3-2", "MQTT-3.3.1-3"),
			Statements5:   ids("MQTT-4.3.3-10", "MQTT-3.3.1-3"),
			Requires:      needQoS(2),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, granted, err := pair(ctx, e, 2)
				if err != nil {
					return err
				}
				if granted < 1 {
					return na("the broker granted QoS 0")
				}
				first := &codec.Publish{Topic: topic, QoS: 2, PacketID: 9, Payload: []byte("once")}
				again := *first
				again.Dup = true
				err = pub.Run(ctx, conformance.Send(first), conformance.Expect(&codec.Pubrec{PacketID: 9}, conformance.IgnoreProps()),
					conformance.Send(&again), conformance.Expect(&codec.Pubrec{PacketID: 9}, conformance.IgnoreProps()).Note("the duplicate acknowledged again"),
					conformance.Send(&codec.Pubrel{PacketID: 9}), conformance.Expect(&codec.Pubcomp{PacketID: 9}, conformance.IgnoreProps()))
				if err != nil {
					return err
				}
				if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: min(2, granted), Payload: []byte("once")}, conformance.IgnoreProps()); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites(cite(e.Version, "MQTT-4.3.3-2", "MQTT-4.3.3-10")).Note("no second copy"))
			},
		},
		Check{
			Name:          "publish/dup-not-propagated",
			Statements311: ids("MQTT-3.3.1-3"),
			Statements5:   ids("MQTT-3.3.1-3"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Dup: true, Payload: []byte("dup")}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("dup")}, conformance.IgnoreProps(), conformance.IgnoreFields("QoS"))
				return err
			},
		},
		Check{
			Name:          "publish/payload-kept-byte-for-byte",
			Statements311: ids("MQTT-4.5.0-1"),
			Statements5:   ids("MQTT-4.5.0-1"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				payload := make([]byte, 1000)
				for i := range payload {
					payload[i] = byte(i * 7)
				}
				for _, pl := range [][]byte{payload, nil} {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: pl}); err != nil {
						return err
					}
					if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: pl}, conformance.IgnoreProps()); err != nil {
						return err
					}
				}
				return nil
			},
		},
		Check{
			Name:          "publish/order-kept",
			Statements311: ids("MQTT-4.6.0-5", "MQTT-4.6.0-6"),
			Statements5:   ids("MQTT-4.6.0-5", "MQTT-4.6.0-6"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				const n = 20
				for i := range n {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte(strconv.Itoa(i))}); err != nil {
						return err
					}
				}
				for i := range n {
					if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte(strconv.Itoa(i))},
						conformance.IgnoreProps()); err != nil {
						return err
					}
				}
				return nil
			},
		},
		Check{
			Name:          "publish/overlapping-subscriptions-max-qos",
			Statements311: ids("MQTT-3.3.5-1"),
			Statements5:   ids("MQTT-3.3.4-2"),
			Requires:      needWildcard,
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, granted, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				if granted < 1 {
					return na("the broker granted QoS 0")
				}
				if _, err := e.Sub(ctx, sub, topic[:len(topic)-1]+"+", 0); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("o")}); err != nil {
					return err
				}
				got, err := e.collect(ctx, sub, quiet)
				if err != nil {
					return err
				}
				for _, g := range got {
					if g.QoS == 1 {
						return nil
					}
				}
				return failf(sub, cite(e.Version, "MQTT-3.3.5-1", "MQTT-3.3.4-2"), "a copy at QoS 1, the maximum of the matching subscriptions", fmt.Sprint(got))
			},
		},
		Check{
			Name:          "packetid/reuse-after-acknowledgement",
			Statements311: ids("MQTT-4.3.2-2"),
			Statements5:   ids("MQTT-4.3.2-5", "MQTT-4.3.3-12"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				for i := range 2 {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, PacketID: 5, Payload: []byte{byte(i)}}); err != nil {
						return err
					}
				}
				for i := range 2 {
					if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}, conformance.IgnoreProps()); err != nil {
						return err
					}
				}
				return nil
			},
		},
		Check{
			Name:          "packetid/server-ids-distinct",
			Statements311: ids("MQTT-2.3.1-1", "MQTT-4.3.2-1"),
			Statements5:   ids("MQTT-2.2.1-4", "MQTT-4.3.2-1"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, granted, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				if granted < 1 {
					return na("the broker granted QoS 0")
				}
				const n = 8
				for i := range n {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}); err != nil {
						return err
					}
				}
				seen := map[uint16]bool{}
				var got []*codec.Publish
				for range n {
					pkt, err := sub.Next(ctx)
					if err != nil {
						return failf(sub, "", fmt.Sprintf("%d PUBLISH packets", n), err.Error())
					}
					p, ok := pkt.(*codec.Publish)
					if !ok {
						return failf(sub, "", "PUBLISH", pkt.String())
					}
					if seen[p.PacketID] {
						return failf(sub, cite(e.Version, "MQTT-2.3.1-1", "MQTT-2.2.1-4"), "unacknowledged messages with distinct packet ids", fmt.Sprintf("id %d twice", p.PacketID))
					}
					seen[p.PacketID] = true
					got = append(got, p)
				}
				for _, p := range got {
					if err := e.Ack(ctx, sub, p); err != nil {
						return err
					}
				}
				return nil
			},
		},
		Check{
			Name:          "packetid/independent-per-direction",
			Statements311: ids("MQTT-2.3.1-6", "MQTT-4.3.3-2"),
			Statements5:   ids("MQTT-2.2.1-5", "MQTT-4.3.3-8"),
			Requires:      needQoS(2),
			Run:           runIndependentIDs,
		},
		Check{
			Name:          "packetid/qos2-many-in-flight",
			Statements311: ids("MQTT-4.3.3-2", "MQTT-3.3.4-1"),
			Statements5:   ids("MQTT-4.3.3-8", "MQTT-4.9.0-1"),
			Requires:      needQoS(2),
			Run: func(ctx context.Context, e *Env) error {
				sub, p, topic, granted, err := pair(ctx, e, 2)
				if err != nil {
					return err
				}
				// 30 QoS 2 messages not released: more than Mosquitto's
				// default 20 in flight. On 5.0, up to Receive Maximum.
				n := 30
				if e.Version == codec.V5 {
					n = min(n, int(e.Caps.ReceiveMax))
				}
				for i := 1; i <= n; i++ {
					if err := p.Run(ctx, conformance.Send(&codec.Publish{Topic: topic, QoS: 2, PacketID: uint16(i), Payload: []byte{byte(i)}}),
						conformance.Expect(&codec.Pubrec{PacketID: uint16(i)}, conformance.IgnoreProps(), conformance.ReasonIn(0, 0x10)).
							Cites(cite(e.Version, "MQTT-4.3.3-2", "MQTT-4.3.3-8"))); err != nil {
						return err
					}
				}
				for i := 1; i <= n; i++ {
					if err := p.Run(ctx, conformance.Send(&codec.Pubrel{PacketID: uint16(i)}),
						conformance.Expect(&codec.Pubcomp{PacketID: uint16(i)}, conformance.IgnoreProps())); err != nil {
						return err
					}
				}
				// Every acknowledged message reaches the subscriber.
				for i := 1; i <= n; i++ {
					if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: min(2, granted), Payload: []byte{byte(i)}}, conformance.IgnoreProps()); err != nil {
						return err
					}
				}
				return nil
			},
		},
	)
	return cs
}

// runIndependentIDs: a client subscribed to a topic at QoS 2 publishes
// QoS 2 with packet id 1 and leaves it unreleased; another client then
// publishes to that topic, so the broker sends the first client a PUBLISH
// with an id of its own (often 1 too). Both flows must complete: the ids
// of the two directions are independent.
func runIndependentIDs(ctx context.Context, e *Env) error {
	p, err := e.Client(ctx)
	if err != nil {
		return err
	}
	other, err := e.Client(ctx)
	if err != nil {
		return err
	}
	topic := e.Topic("self")
	granted, err := e.Sub(ctx, p, topic, 2)
	if err != nil {
		return err
	}
	if granted < 2 {
		return na("the broker granted QoS %d", granted)
	}
	idc := cite(e.Version, "MQTT-2.3.1-6", "MQTT-2.2.1-5")
	if err := p.Run(ctx, conformance.Send(&codec.Publish{Topic: e.Topic("elsewhere"), QoS: 2, PacketID: 1, Payload: []byte("mine")}),
		conformance.Expect(&codec.Pubrec{PacketID: 1}, conformance.IgnoreProps(), conformance.ReasonIn(0, 0x10)).Cites(idc)); err != nil {
		return err
	}
	if err := e.Publish(ctx, other, &codec.Publish{Topic: topic, QoS: 2, Payload: []byte("theirs")}); err != nil {
		return err
	}
	var got *codec.Publish
	if err := p.Run(ctx, conformance.Expect(&codec.Publish{Topic: topic, QoS: 2, Payload: []byte("theirs")}, conformance.IgnoreProps(),
		conformance.IgnoreFields("PacketID"), capture(&got)).Cites(idc)); err != nil {
		return err
	}
	// Release ours first, then acknowledge theirs: each flow keeps its id.
	if err := p.Run(ctx, conformance.Send(&codec.Pubrel{PacketID: 1}),
		conformance.Expect(&codec.Pubcomp{PacketID: 1}, conformance.IgnoreProps()).Cites(idc)); err != nil {
		return err
	}
	if err := e.Ack(ctx, p, got); err != nil {
		return err
	}
	return p.Run(ctx, conformance.ExpectNothing(100*time.Millisecond).Note("nothing more"))
}
