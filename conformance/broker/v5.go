package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

func v5Checks() []Check {
	cs := []Check{
		// Topic aliases, client to server.
		{
			Name:        "alias/client-alias-resolved",
			Statements5: ids("MQTT-3.3.2-12"),
			Requires:    needAliases,
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("1"), Props: codec.Properties{TopicAlias: 1}}); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{QoS: 1, Payload: []byte("2"), Props: codec.Properties{TopicAlias: 1}}); err != nil {
					return err
				}
				for _, pl := range []string{"1", "2"} {
					if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte(pl)}, conformance.IgnoreProps()); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			Name:        "alias/above-maximum-refused",
			Statements5: ids("MQTT-3.2.2-17", "MQTT-4.13.1-1"),
			Requires: func(c Caps) string {
				if c.TopicAliasMax == 65535 {
					return "Topic Alias Maximum is 65535: no alias is above it"
				}
				return ""
			},
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Publish{Topic: e.Topic("a"), Payload: []byte("x"), Props: codec.Properties{TopicAlias: e.Caps.TopicAliasMax + 1}}, e.Version)
				return sendAndExpectClosed(ctx, e, true, b, "MQTT-3.2.2-17")
			},
		},
		{
			Name:        "alias/zero-refused",
			Statements5: ids("MQTT-3.3.2-8", "MQTT-4.13.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				topic := e.Topic("a")
				body := []byte{0, byte(len(topic))}
				body = append(body, topic...)
				body = append(body, 3, 0x23, 0, 0) // properties: Topic Alias 0
				return sendAndExpectClosed(ctx, e, true, append([]byte{0x30, byte(len(body))}, body...), "MQTT-3.3.2-8")
			},
		},
		{
			Name:        "alias/unknown-alias-refused",
			Statements5: ids("MQTT-3.3.2-7", "MQTT-4.13.1-1"),
			Requires:    needAliases,
			Run: func(ctx context.Context, e *Env) error {
				// Set alias 1 on one connection; a new connection does not have it.
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, p, &codec.Publish{Topic: e.Topic("a"), QoS: 1, Props: codec.Properties{TopicAlias: 1}}); err != nil {
					return err
				}
				b := encode(&codec.Publish{Payload: []byte("x"), Props: codec.Properties{TopicAlias: 1}}, e.Version)
				return sendAndExpectClosed(ctx, e, true, b, "MQTT-3.3.2-7")
			},
		},
		// Topic aliases, server to client.
		{
			Name:        "alias/none-when-client-maximum-0",
			Statements5: ids("MQTT-3.1.2-27"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				for i := range 3 {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}); err != nil {
						return err
					}
					if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}, conformance.IgnoreFields("Props"),
						conformance.Satisfy(func(got codec.Packet) string {
							if got.(*codec.Publish).Props.Has(codec.PropTopicAlias) {
								return "a Topic Alias to a client that allows none [MQTT-3.1.2-27]"
							}
							return ""
						})); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			Name:        "alias/within-client-maximum",
			Statements5: ids("MQTT-3.1.2-26", "MQTT-3.3.2-11"),
			Run: func(ctx context.Context, e *Env) error {
				sub, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60, Props: codec.Properties{TopicAliasMaximum: 2}})
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				base := e.Topic("al")
				if _, err := e.Sub(ctx, sub, base+"/+", 1); err != nil {
					return err
				}
				aliases := map[uint16]string{}
				for i := range 9 {
					topic := fmt.Sprintf("%s/%d", base, i%3)
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}); err != nil {
						return err
					}
					var got *codec.Publish
					if err := sub.Run(ctx, conformance.Expect(&codec.Publish{QoS: 1, Payload: []byte{byte(i)}}, conformance.IgnoreFields("Props", "Topic", "PacketID"), capture(&got))); err != nil {
						return err
					}
					if err := e.Ack(ctx, sub, got); err != nil {
						return err
					}
					name := got.Topic
					if a := got.Props.TopicAlias; got.Props.Has(codec.PropTopicAlias) {
						if a == 0 || a > 2 {
							return failf(sub, "MQTT-3.1.2-26", "Topic Alias 1 or 2", fmt.Sprint(a))
						}
						if name == "" {
							name = aliases[a]
						} else {
							aliases[a] = name
						}
					}
					if name != topic {
						return failf(sub, "MQTT-3.3.2-11", "topic "+topic, fmt.Sprintf("%q (alias %d)", name, got.Props.TopicAlias))
					}
				}
				return nil
			},
		},
		// Receive Maximum.
		{
			Name:        "recvmax/server-respects-client",
			Statements5: ids("MQTT-3.3.4-9", "MQTT-4.9.0-2"),
			Run: func(ctx context.Context, e *Env) error {
				sub, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60, Props: codec.Properties{ReceiveMaximum: 2}})
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				topic := e.Topic("rm")
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				for i := range 5 {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}); err != nil {
						return err
					}
				}
				var held []*codec.Publish
				for i := range 2 {
					var got *codec.Publish
					if err := sub.Run(ctx, conformance.Expect(&codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}, conformance.IgnoreProps(), conformance.IgnoreFields("PacketID"), capture(&got))); err != nil {
						return err
					}
					held = append(held, got)
				}
				if err := sub.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-3.3.4-9").Note("two unacknowledged, the quota is spent")); err != nil {
					return err
				}
				for _, h := range held {
					if err := e.Ack(ctx, sub, h); err != nil {
						return err
					}
				}
				for i := 2; i < 5; i++ {
					if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}, conformance.IgnoreProps()); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			Name:        "recvmax/other-packets-flow-at-quota-0",
			Statements5: ids("MQTT-3.3.4-10", "MQTT-4.9.0-3"),
			Run: func(ctx context.Context, e *Env) error {
				sub, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60, Props: codec.Properties{ReceiveMaximum: 1}})
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				topic := e.Topic("rm")
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				for i := range 2 {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}); err != nil {
						return err
					}
				}
				return sub.Run(ctx,
					conformance.Expect(&codec.Publish{Topic: topic, QoS: 1, Payload: []byte{0}}, conformance.IgnoreProps(), conformance.IgnoreFields("PacketID")),
					conformance.Send(&codec.Pingreq{}), conformance.Expect(&codec.Pingresp{}).Cites("MQTT-3.3.4-10"),
					conformance.Send(&codec.Subscribe{PacketID: 9, Subscriptions: []codec.Subscription{{Filter: e.Topic("other")}}}),
					conformance.Expect(&codec.Suback{PacketID: 9, ReasonCodes: []codec.ReasonCode{0}}, conformance.IgnoreProps()).Cites("MQTT-3.3.4-10"))
			},
		},
		{
			Name:        "recvmax/client-exceeding-disconnected",
			Level:       Should,
			Statements5: ids("MQTT-3.3.4-7", "§3.3.4"),
			Requires: func(c Caps) string {
				if c.ReceiveMax > 100 {
					return fmt.Sprintf("Receive Maximum %d: too many to exceed in a check", c.ReceiveMax)
				}
				return needQoS(2)(c)
			},
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				topic := e.Topic("over")
				n := int(e.Caps.ReceiveMax)
				for i := 1; i <= n; i++ {
					if err := p.Run(ctx, conformance.Send(&codec.Publish{Topic: topic, QoS: 2, PacketID: uint16(i)}),
						conformance.Expect(&codec.Pubrec{PacketID: uint16(i)}, conformance.IgnoreProps(), conformance.ReasonIn(0, 0x10))); err != nil {
						return err
					}
				}
				return p.Run(ctx, conformance.Send(&codec.Publish{Topic: topic, QoS: 2, PacketID: uint16(n + 1)}),
					conformance.Expect(&codec.Disconnect{ReasonCode: codec.ReasonReceiveMaximumExceeded}, conformance.IgnoreProps()).Cites("MQTT-3.3.4-7"),
					conformance.ExpectClosed())
			},
		},
		// Maximum Packet Size.
		{
			Name:        "maxpkt/client-maximum-honoured",
			Statements5: ids("MQTT-3.1.2-24", "MQTT-3.1.2-25"),
			Run: func(ctx context.Context, e *Env) error {
				sub, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60, Props: codec.Properties{MaximumPacketSize: 200}})
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				topic := e.Topic("mps")
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				big := make([]byte, 400)
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: big}); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("small")}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("small")}, conformance.IgnoreProps())
				if err != nil {
					var f *conformance.Failure
					if asFailure(err, &f) {
						f.Statements = append(f.Statements, "MQTT-3.1.2-24", "MQTT-3.1.2-25")
					}
				}
				return err
			},
		},
		{
			Name:        "maxpkt/server-maximum-enforced",
			Statements5: ids("MQTT-3.2.2-15", "MQTT-4.13.1-1"),
			Requires: func(c Caps) string {
				if c.MaxPacketSize == 0 || c.MaxPacketSize > 1<<20 {
					return "no Maximum Packet Size of at most 1 MiB announced"
				}
				return ""
			},
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Publish{Topic: e.Topic("big"), Payload: make([]byte, e.Caps.MaxPacketSize)}, e.Version)
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return p.Run(ctx, conformance.SendBytes(b), conformance.ExpectClosed(conformance.ReasonIn(codec.ReasonPacketTooLarge)).Cites("MQTT-3.2.2-15"))
			},
		},
		// Subscription identifiers.
		{
			Name:        "subid/echoed",
			Statements5: ids("MQTT-3.3.4-3"),
			Requires:    needSubIDs,
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 0)
				if err != nil {
					return err
				}
				if _, err := e.Subscribe(ctx, sub, 3, codec.Properties{SubscriptionIDs: []uint32{4242}}, codec.Subscription{Filter: topic + "/x", QoS: 1}); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic + "/x", QoS: 1, Payload: []byte("i")}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic + "/x", QoS: 1, Payload: []byte("i"), Props: codec.Properties{SubscriptionIDs: []uint32{4242}}},
					conformance.IgnoreFields("Props.TopicAlias", "Props.User"))
				return err
			},
		},
		{
			Name:        "subid/overlapping-subscriptions",
			Statements5: ids("MQTT-3.3.4-4", "MQTT-3.3.4-5"),
			Requires:    all(needSubIDs, needWildcard),
			Run: func(ctx context.Context, e *Env) error {
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				base := e.Topic("ov")
				if _, err := e.Subscribe(ctx, sub, 1, codec.Properties{SubscriptionIDs: []uint32{1}}, codec.Subscription{Filter: base + "/+", QoS: 1}); err != nil {
					return err
				}
				if _, err := e.Subscribe(ctx, sub, 2, codec.Properties{SubscriptionIDs: []uint32{2}}, codec.Subscription{Filter: base + "/#", QoS: 1}); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: base + "/a", QoS: 1, Payload: []byte("o")}); err != nil {
					return err
				}
				got, err := e.collect(ctx, sub, quiet)
				if err != nil {
					return err
				}
				var all []uint32
				for _, g := range got {
					if len(got) > 1 && len(g.Props.SubscriptionIDs) != 1 {
						return failf(sub, "MQTT-3.3.4-5", "each copy with its own identifier", fmt.Sprint(g.Props.SubscriptionIDs))
					}
					all = append(all, g.Props.SubscriptionIDs...)
				}
				slices.Sort(all)
				if !slices.Equal(all, []uint32{1, 2}) {
					return failf(sub, "MQTT-3.3.4-4", "identifiers 1 and 2 over the copies delivered", fmt.Sprintf("%v in %d copies", all, len(got)))
				}
				return nil
			},
		},
		{
			Name:        "subid/zero-refused",
			Statements5: ids("MQTT-4.13.1-1", "§3.8.2.1.2"),
			Run: func(ctx context.Context, e *Env) error {
				f := e.Topic("z")
				body := []byte{0, 1, 2, 0x0b, 0, 0, byte(len(f))}
				body = append(body, f...)
				body = append(body, 0)
				return sendAndExpectClosed(ctx, e, true, append([]byte{0x82, byte(len(body))}, body...), "MQTT-4.13.1-1")
			},
		},
		// No Local.
		{
			Name:        "nolocal/own-messages-not-sent",
			Statements5: ids("MQTT-3.8.3-3"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				other, err := e.Client(ctx)
				if err != nil {
					return err
				}
				topic := e.Topic("nl")
				if _, err := e.Subscribe(ctx, p, 1, codec.Properties{}, codec.Subscription{Filter: topic, QoS: 1, NoLocal: true}); err != nil {
					return err
				}
				if err := e.Publish(ctx, p, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("mine")}); err != nil {
					return err
				}
				if err := e.Publish(ctx, other, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("theirs")}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, p, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("theirs")}, conformance.IgnoreProps())
				if err != nil {
					var f *conformance.Failure
					if asFailure(err, &f) {
						f.Statements = append(f.Statements, "MQTT-3.8.3-3")
					}
				}
				return err
			},
		},
		{
			Name:        "nolocal/on-shared-subscription-refused",
			Statements5: ids("MQTT-3.8.3-4", "MQTT-4.13.1-1"),
			Requires:    needShared,
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "$share/g/" + e.Topic("s"), QoS: 1}}}, e.Version)
				b[len(b)-1] |= 0x04 // No Local; the codec refuses it on a shared filter
				return sendAndExpectClosed(ctx, e, true, b, "MQTT-3.8.3-4")
			},
		},
		// Shared subscriptions.
		{
			Name:        "shared/one-copy-per-group",
			Statements5: ids("MQTT-4.8.2-3", "§4.8.2"),
			Requires:    all(needShared, needQoS(1)),
			Run: func(ctx context.Context, e *Env) error {
				topic := e.Topic("sh")
				group := "g" + e.prefix
				var members []*conformance.Peer
				for range 2 {
					m, err := e.Client(ctx)
					if err != nil {
						return err
					}
					if _, err := e.Sub(ctx, m, "$share/"+group+"/"+topic, 1); err != nil {
						return err
					}
					members = append(members, m)
				}
				other, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, other, "$share/other"+group+"/"+topic, 1); err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				const n = 10
				for i := range n {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}}); err != nil {
						return err
					}
				}
				seen := map[byte]int{}
				for _, m := range members {
					got, err := e.collect(ctx, m, quiet)
					if err != nil {
						return err
					}
					for _, g := range got {
						seen[g.Payload[0]]++
					}
				}
				for i := range n {
					if seen[byte(i)] != 1 {
						return failf(members[0], "§4.8.2", "each message once within the group", fmt.Sprintf("message %d %d times", i, seen[byte(i)]))
					}
				}
				got, err := e.collect(ctx, other, quiet)
				if err != nil {
					return err
				}
				if len(got) != n {
					return failf(other, "§4.8.2", fmt.Sprintf("all %d messages in the second group", n), fmt.Sprint(len(got)))
				}
				return nil
			},
		},
		{
			Name:        "shared/no-retained-on-subscribe",
			Level:       Should,
			Statements5: ids("§4.8.2"),
			Requires:    all(needShared, needRetain),
			Run: func(ctx context.Context, e *Env) error {
				_, topic, err := retained(ctx, e, "r")
				defer clearRetained(e, topic)
				if err != nil {
					return err
				}
				m, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, m, "$share/g"+e.prefix+"/"+topic, 1); err != nil {
					return err
				}
				return m.Run(ctx, conformance.ExpectNothing(quiet).Cites("§4.8.2").Note("retained messages are not sent to a new shared subscription"))
			},
		},
		{
			Name:        "shared/invalid-share-name-refused",
			Statements5: ids("MQTT-4.8.2-2"),
			Requires:    needShared,
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return subscribeRefused(ctx, e, p, "$share/a+b/"+e.Topic("s"), codec.ReasonTopicFilterInvalid)
			},
		},
		{
			Name:        "shared/not-available-refused",
			Statements5: ids("§3.2.2.3.15"),
			Requires: func(c Caps) string {
				if c.Shared {
					return "Shared Subscription Available is 1"
				}
				return ""
			},
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return subscribeRefused(ctx, e, p, "$share/g/"+e.Topic("s"), codec.ReasonSharedSubscriptionsNotSupp)
			},
		},
		{
			Name:        "topic/wildcard-not-available-refused",
			Statements5: ids("MQTT-3.8.3-2"),
			Requires: func(c Caps) string {
				if c.Wildcard {
					return "Wildcard Subscription Available is 1"
				}
				return ""
			},
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return subscribeRefused(ctx, e, p, e.Topic("w")+"/#", codec.ReasonWildcardSubsNotSupported)
			},
		},
		{
			Name:        "subid/not-available-refused",
			Statements5: ids("§3.2.2.3.16"),
			Requires: func(c Caps) string {
				if c.SubIDs {
					return "Subscription Identifier Available is 1"
				}
				return ""
			},
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Subscribe{PacketID: 1, Props: codec.Properties{SubscriptionIDs: []uint32{1}}, Subscriptions: []codec.Subscription{{Filter: e.Topic("s")}}}, e.Version)
				return sendAndExpectClosed(ctx, e, true, b, "§3.2.2.3.16")
			},
		},
		{
			Name:        "qos/above-maximum-refused",
			Statements5: ids("MQTT-3.2.2-11", "MQTT-4.13.1-1"),
			Requires: func(c Caps) string {
				if c.MaxQoS == 2 {
					return "Maximum QoS is 2"
				}
				return ""
			},
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Publish{Topic: e.Topic("q"), QoS: e.Caps.MaxQoS + 1, PacketID: 1, Payload: []byte("x")}, e.Version)
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return p.Run(ctx, conformance.SendBytes(b), conformance.ExpectClosed(conformance.ReasonIn(codec.ReasonQoSNotSupported)).Cites("MQTT-3.2.2-11"))
			},
		},
		// Properties forwarded unchanged.
		{
			Name:        "props/request-response-forwarded",
			Statements5: ids("MQTT-3.3.2-15", "MQTT-3.3.2-16"),
			Run: func(ctx context.Context, e *Env) error {
				props := codec.Properties{ResponseTopic: e.Topic("reply"), CorrelationData: []byte{0, 1, 0xfe, 0xff}}
				return forwarded(ctx, e, props)
			},
		},
		{
			Name:        "props/user-properties-in-order",
			Statements5: ids("MQTT-3.3.2-17", "MQTT-3.3.2-18"),
			Run: func(ctx context.Context, e *Env) error {
				props := codec.Properties{User: []codec.UserProperty{{Key: "k", Value: "2"}, {Key: "a", Value: "1"}, {Key: "k", Value: "1"}, {Key: "", Value: ""}}}
				return forwarded(ctx, e, props)
			},
		},
		{
			Name:        "props/payload-format-and-content-type",
			Statements5: ids("MQTT-3.3.2-4", "MQTT-3.3.2-20"),
			Run: func(ctx context.Context, e *Env) error {
				props := codec.Properties{PayloadFormat: 1, ContentType: "application/json; charset=utf-8"}
				return forwarded(ctx, e, props)
			},
		},
		{
			Name:        "props/message-expiry-forwarded",
			Statements5: ids("MQTT-3.3.2-6"),
			Run: func(ctx context.Context, e *Env) error {
				sub, pub, topic, _, err := pair(ctx, e, 1)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("e"), Props: codec.Properties{MessageExpiry: 3600}}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("e")}, conformance.IgnoreProps(),
					conformance.Satisfy(func(got codec.Packet) string {
						pr := got.(*codec.Publish).Props
						if !pr.Has(codec.PropMessageExpiryInterval) || pr.MessageExpiry == 0 || pr.MessageExpiry > 3600 {
							return fmt.Sprintf("Message Expiry Interval %d (present %v), want 1..3600 [MQTT-3.3.2-6]", pr.MessageExpiry, pr.Has(codec.PropMessageExpiryInterval))
						}
						return ""
					}))
				return err
			},
		},
		{
			Name:        "props/problem-information-0-respected",
			Statements5: ids("MQTT-3.1.2-29"),
			Run: func(ctx context.Context, e *Env) error {
				c := &codec.Connect{CleanStart: true, KeepAlive: 60}
				c.Props.Mark(codec.PropRequestProblemInformation) // value 0
				p, _, err := e.Connect(ctx, c)
				if err != nil {
					return err
				}
				noReason := conformance.Satisfy(func(got codec.Packet) string {
					var pr codec.Properties
					switch got := got.(type) {
					case *codec.Suback:
						pr = got.Props
					case *codec.Unsuback:
						pr = got.Props
					case *codec.Puback:
						pr = got.Props
					}
					if pr.ReasonString != "" || len(pr.User) > 0 {
						return "a Reason String or User Property after Request Problem Information 0 [MQTT-3.1.2-29]"
					}
					return ""
				})
				return p.Run(ctx,
					conformance.Send(&codec.Publish{Topic: e.Topic("nobody"), QoS: 1, PacketID: 1}),
					conformance.Expect(&codec.Puback{PacketID: 1}, conformance.IgnoreProps(), conformance.ReasonIn(0, 0x10), noReason).Cites("MQTT-3.1.2-29"),
					conformance.Send(&codec.Unsubscribe{PacketID: 2, Filters: []string{e.Topic("never")}}),
					conformance.Expect(&codec.Unsuback{PacketID: 2}, conformance.IgnoreProps(), conformance.IgnoreFields("ReasonCodes"), noReason).Cites("MQTT-3.1.2-29"))
			},
		},
	}
	for i := range cs {
		cs[i].Versions = v5only
	}
	return cs
}

// forwarded publishes a message with props and expects them on the
// subscriber's copy, unchanged.
func forwarded(ctx context.Context, e *Env, props codec.Properties) error {
	sub, pub, topic, _, err := pair(ctx, e, 1)
	if err != nil {
		return err
	}
	if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("p"), Props: props}); err != nil {
		return err
	}
	_, err = e.Receive(ctx, sub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("p"), Props: props},
		conformance.IgnoreFields("Props.TopicAlias", "Props.SubscriptionIDs"))
	return err
}

func asFailure(err error, f **conformance.Failure) bool {
	for err != nil {
		if x, ok := err.(*conformance.Failure); ok {
			*f = x
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

var _ = strings.Join
var _ = time.Second
