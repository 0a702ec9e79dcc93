package broker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

// willClient connects a client with will w and a subscriber to w's topic
// at QoS 1; it returns both.
func willClient(ctx context.Context, e *Env, w *codec.Will, props codec.Properties) (withWill, sub *conformance.Peer, err error) {
	if sub, err = e.Client(ctx); err != nil {
		return
	}
	if _, err = e.Sub(ctx, sub, w.Topic, 1); err != nil {
		return
	}
	withWill, _, err = e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60, Will: w, Props: props})
	return
}

func willChecks() []Check {
	return []Check{
		{
			Name:          "will/published-on-abnormal-close",
			Statements311: ids("MQTT-3.1.2-8", "MQTT-3.1.2-16"),
			Statements5:   ids("MQTT-3.1.2-8", "MQTT-3.1.2-14"),
			Run: func(ctx context.Context, e *Env) error {
				w := &codec.Will{Topic: e.Topic("will"), QoS: 1, Payload: []byte("gone")}
				c, sub, err := willClient(ctx, e, w, codec.Properties{})
				if err != nil {
					return err
				}
				c.Close()
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: w.Topic, QoS: 1, Payload: []byte("gone")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:          "will/not-published-on-disconnect",
			Statements311: ids("MQTT-3.1.2-10", "MQTT-3.14.4-3"),
			Statements5:   ids("MQTT-3.1.2-10", "MQTT-3.14.4-3"),
			Run: func(ctx context.Context, e *Env) error {
				w := &codec.Will{Topic: e.Topic("will"), QoS: 1, Payload: []byte("gone")}
				c, sub, err := willClient(ctx, e, w, codec.Properties{})
				if err != nil {
					return err
				}
				if err := c.Run(ctx, conformance.Send(&codec.Disconnect{}), conformance.ExpectClosed()); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-3.14.4-3"))
			},
		},
		{
			Name:          "will/published-after-protocol-error",
			Statements311: ids("MQTT-3.1.2-8", "MQTT-3.14.1-1"),
			Statements5:   ids("MQTT-3.1.2-8", "MQTT-3.14.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				w := &codec.Will{Topic: e.Topic("will"), QoS: 1, Payload: []byte("bad")}
				c, sub, err := willClient(ctx, e, w, codec.Properties{})
				if err != nil {
					return err
				}
				// A DISCONNECT with reserved flags is not a normal disconnect.
				if err := c.Run(ctx, conformance.SendBytes([]byte{0xe1, 0x00}), conformance.ExpectClosed(errorDisconnect()).Cites("MQTT-3.14.1-1")); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: w.Topic, QoS: 1, Payload: []byte("bad")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:          "will/retained",
			Statements311: ids("MQTT-3.1.2-17"),
			Statements5:   ids("MQTT-3.1.2-15"),
			Requires:      needRetain,
			Run: func(ctx context.Context, e *Env) error {
				topic := e.Topic("will")
				defer clearRetained(e, topic)
				c, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60,
					Will: &codec.Will{Topic: topic, QoS: 1, Retain: true, Payload: []byte("kept")}})
				if err != nil {
					return err
				}
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				c.Close()
				// Wait until the will is out: a live subscriber sees it.
				if _, err := e.Sub(ctx, sub, topic, 1); err != nil {
					return err
				}
				late, err := e.Client(ctx)
				if err != nil {
					return err
				}
				got, err := e.collect(ctx, sub, time.Second)
				if err != nil {
					return err
				}
				if len(got) == 0 {
					return failf(sub, "MQTT-3.1.2-8", "the will", "nothing in 1 s")
				}
				if _, err := e.Sub(ctx, late, topic, 1); err != nil {
					return err
				}
				_, err = e.Receive(ctx, late, &codec.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("kept")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:        "will/properties-forwarded",
			Versions:    v5only,
			Statements5: ids("MQTT-3.1.3-10", "MQTT-3.3.2-4", "MQTT-3.3.2-15", "MQTT-3.3.2-16", "MQTT-3.3.2-20"),
			Run: func(ctx context.Context, e *Env) error {
				props := codec.Properties{PayloadFormat: 1, ContentType: "text/plain", ResponseTopic: e.Topic("resp"),
					CorrelationData: []byte{1, 2, 3}, User: []codec.UserProperty{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}, {Key: "b", Value: "3"}}}
				props.Mark(codec.PropPayloadFormatIndicator)
				w := &codec.Will{Topic: e.Topic("will"), QoS: 1, Payload: []byte("props"), Props: props}
				c, sub, err := willClient(ctx, e, w, codec.Properties{})
				if err != nil {
					return err
				}
				c.Close()
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: w.Topic, QoS: 1, Payload: []byte("props"), Props: props},
					conformance.IgnoreFields("Props.SubscriptionIDs", "Props.TopicAlias", "Props.MessageExpiry"))
				return err
			},
		},
		{
			Name:        "will/delay",
			Versions:    v5only,
			Statements5: ids("MQTT-3.1.2-8"),
			Run: func(ctx context.Context, e *Env) error {
				w := &codec.Will{Topic: e.Topic("will"), QoS: 1, Payload: []byte("late"), Props: codec.Properties{WillDelay: 1}}
				c, sub, err := willClient(ctx, e, w, codec.Properties{SessionExpiry: 10})
				if err != nil {
					return err
				}
				c.Close()
				if err := sub.Run(ctx, conformance.ExpectNothing(700*time.Millisecond).Cites("MQTT-3.1.2-8").Note("the will waits for its delay")); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: w.Topic, QoS: 1, Payload: []byte("late")}, conformance.IgnoreProps())
				return err
			},
		},
		{
			Name:        "will/delay-cancelled-by-reconnect",
			Versions:    v5only,
			Statements5: ids("MQTT-3.1.3-9"),
			Run: func(ctx context.Context, e *Env) error {
				sub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				id := e.ID()
				defer endSession(e, id)
				w := &codec.Will{Topic: e.Topic("will"), QoS: 1, Payload: []byte("no"), Props: codec.Properties{WillDelay: 2}}
				if _, err := e.Sub(ctx, sub, w.Topic, 1); err != nil {
					return err
				}
				c, _, err := e.Connect(ctx, &codec.Connect{ClientID: id, CleanStart: true, KeepAlive: 60, Will: w, Props: codec.Properties{SessionExpiry: 60}})
				if err != nil {
					return err
				}
				c.Close()
				if _, _, err := e.Connect(ctx, &codec.Connect{ClientID: id, KeepAlive: 60, Props: codec.Properties{SessionExpiry: 60}}); err != nil {
					return err
				}
				return sub.Run(ctx, conformance.ExpectNothing(2500*time.Millisecond).Cites("MQTT-3.1.3-9"))
			},
		},
		{
			Name:        "will/disconnect-with-will-message",
			Versions:    v5only,
			Statements5: ids("MQTT-3.1.2-8"),
			Run: func(ctx context.Context, e *Env) error {
				w := &codec.Will{Topic: e.Topic("will"), QoS: 1, Payload: []byte("asked")}
				c, sub, err := willClient(ctx, e, w, codec.Properties{})
				if err != nil {
					return err
				}
				if err := c.Run(ctx, conformance.Send(&codec.Disconnect{ReasonCode: codec.ReasonDisconnectWithWill}), conformance.ExpectClosed()); err != nil {
					return err
				}
				_, err = e.Receive(ctx, sub, &codec.Publish{Topic: w.Topic, QoS: 1, Payload: []byte("asked")}, conformance.IgnoreProps())
				return err
			},
		},
	}
}

func sessionChecks() []Check {
	// offline subscribes a persistent session to a topic and disconnects.
	offline := func(ctx context.Context, e *Env, q codec.QoS) (id, topic string, err error) {
		id, topic = e.ID(), e.Topic("s")
		p, _, err := e.Connect(ctx, e.persistent(id, true))
		if err != nil {
			return
		}
		if _, err = e.Sub(ctx, p, topic, q); err != nil {
			return
		}
		err = p.Run(ctx, conformance.Send(&codec.Disconnect{}), conformance.ExpectClosed())
		return
	}
	var cs []Check
	for _, q := range []codec.QoS{1, 2} {
		cs = append(cs, Check{
			Name:          "session/offline-qos" + strconv.Itoa(int(q)) + "-queued",
			Statements311: ids("MQTT-3.1.2-5", "MQTT-3.1.2-4", "MQTT-4.6.0-6"),
			Statements5:   ids("MQTT-3.1.2-23", "MQTT-3.1.2-5", "MQTT-4.6.0-5"),
			Requires:      needQoS(q),
			Run: func(ctx context.Context, e *Env) error {
				id, topic, err := offline(ctx, e, q)
				defer endSession(e, id)
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				for i := range 3 {
					if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: q, Payload: []byte{byte('0' + i)}}); err != nil {
						return err
					}
				}
				p, ack, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				if !ack.SessionPresent {
					return failf(p, cite(e.Version, "MQTT-3.2.2-2", "MQTT-3.2.2-3"), "Session Present 1", ack.String())
				}
				for i := range 3 {
					if _, err := e.Receive(ctx, p, &codec.Publish{Topic: topic, Payload: []byte{byte('0' + i)}}, conformance.IgnoreProps(), conformance.IgnoreFields("QoS")); err != nil {
						return err
					}
				}
				return nil
			},
		})
	}
	cs = append(cs,
		Check{
			Name:          "session/subscription-survives-reconnect",
			Statements311: ids("MQTT-3.1.2-4", "MQTT-4.1.0-1"),
			Statements5:   ids("MQTT-3.1.2-5", "MQTT-4.1.0-1"),
			Run: func(ctx context.Context, e *Env) error {
				id, topic, err := offline(ctx, e, 1)
				defer endSession(e, id)
				if err != nil {
					return err
				}
				p, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("s")}); err != nil {
					return err
				}
				_, err = e.Receive(ctx, p, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("s")}, conformance.IgnoreProps())
				return err
			},
		},
		Check{
			Name:          "session/unacknowledged-resent-with-dup",
			Statements311: ids("MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-2.3.1-4"),
			Statements5:   ids("MQTT-4.4.0-1", "MQTT-3.3.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				id, topic, err := offline(ctx, e, 1)
				defer endSession(e, id)
				if err != nil {
					return err
				}
				p, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("again")}); err != nil {
					return err
				}
				var first *codec.Publish
				if err := p.Run(ctx, conformance.Expect(&codec.Publish{Topic: topic, QoS: 1, Payload: []byte("again")},
					conformance.IgnoreProps(), conformance.IgnoreFields("PacketID"), capture(&first))); err != nil {
					return err
				}
				p.Close() // no PUBACK
				p2, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				_, err = e.Receive(ctx, p2, &codec.Publish{Topic: topic, QoS: 1, Dup: true, Payload: []byte("again")},
					conformance.IgnoreProps(), conformance.Satisfy(func(got codec.Packet) string {
						if id := got.(*codec.Publish).PacketID; e.Version == codec.V311 && id != first.PacketID {
							return "packet id " + strconv.Itoa(int(id)) + ", want the original " + strconv.Itoa(int(first.PacketID)) + " [MQTT-2.3.1-4]"
						}
						return ""
					}))
				return err
			},
		},
		Check{
			Name:          "session/pubrel-resent",
			Statements311: ids("MQTT-4.4.0-1"),
			Statements5:   ids("MQTT-4.4.0-1"),
			Requires:      needQoS(2),
			Run: func(ctx context.Context, e *Env) error {
				id, topic, err := offline(ctx, e, 2)
				defer endSession(e, id)
				if err != nil {
					return err
				}
				p, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 2, Payload: []byte("rel")}); err != nil {
					return err
				}
				var got *codec.Publish
				if err := p.Run(ctx, conformance.Expect(&codec.Publish{Topic: topic, QoS: 2, Payload: []byte("rel")},
					conformance.IgnoreProps(), conformance.IgnoreFields("PacketID", "QoS"), capture(&got))); err != nil {
					return err
				}
				if got.QoS != 2 {
					return na("the broker granted QoS %d", got.QoS)
				}
				if err := p.Run(ctx, conformance.Send(&codec.Pubrec{PacketID: got.PacketID}), conformance.Expect(&codec.Pubrel{PacketID: got.PacketID}, conformance.IgnoreProps())); err != nil {
					return err
				}
				p.Close() // no PUBCOMP
				p2, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				return p2.Run(ctx, conformance.Expect(&codec.Pubrel{PacketID: got.PacketID}, conformance.IgnoreProps()).Cites("MQTT-4.4.0-1"),
					conformance.Send(&codec.Pubcomp{PacketID: got.PacketID}))
			},
		},
		Check{
			Name:          "session/clean-start-drops-queued",
			Statements311: ids("MQTT-3.1.2-6"),
			Statements5:   ids("MQTT-3.1.2-4"),
			Run: func(ctx context.Context, e *Env) error {
				id, topic, err := offline(ctx, e, 1)
				defer endSession(e, id)
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("q")}); err != nil {
					return err
				}
				p, _, err := e.Connect(ctx, &codec.Connect{ClientID: id, CleanStart: true, KeepAlive: 60})
				if err != nil {
					return err
				}
				return p.Run(ctx, conformance.ExpectNothing(quiet).Cites(cite(e.Version, "MQTT-3.1.2-6", "MQTT-3.1.2-4")))
			},
		},
		Check{
			Name:        "session/expiry-zero-ends-at-disconnect",
			Versions:    v5only,
			Statements5: ids("MQTT-3.1.2-23", "MQTT-4.1.0-2", "MQTT-3.2.2-3"),
			Run: func(ctx context.Context, e *Env) error {
				id := e.ID()
				defer endSession(e, id)
				p, _, err := e.Connect(ctx, &codec.Connect{ClientID: id, KeepAlive: 60})
				if err != nil {
					return err
				}
				if err := p.Run(ctx, conformance.Send(&codec.Disconnect{}), conformance.ExpectClosed()); err != nil {
					return err
				}
				p2, ack, err := e.Connect(ctx, &codec.Connect{ClientID: id, KeepAlive: 60})
				if err != nil {
					return err
				}
				if ack.SessionPresent {
					return failf(p2, "MQTT-3.2.2-3", "Session Present 0: Session Expiry 0 ended the session", "Session Present 1")
				}
				return nil
			},
		},
		Check{
			Name:        "session/expiry-elapses",
			Versions:    v5only,
			Statements5: ids("MQTT-4.1.0-2", "MQTT-3.2.2-3"),
			Timeout:     15 * time.Second,
			Run: func(ctx context.Context, e *Env) error {
				id := e.ID()
				defer endSession(e, id)
				p, _, err := e.Connect(ctx, &codec.Connect{ClientID: id, CleanStart: true, KeepAlive: 60, Props: codec.Properties{SessionExpiry: 1}})
				if err != nil {
					return err
				}
				if err := p.Run(ctx, conformance.Send(&codec.Disconnect{}), conformance.ExpectClosed()); err != nil {
					return err
				}
				wait, err := e.Client(ctx)
				if err != nil {
					return err
				}
				// The session must be gone 1 s after the disconnect; wait 2.5 s.
				if err := wait.Run(ctx, conformance.ExpectNothing(2500*time.Millisecond)); err != nil {
					return err
				}
				p2, ack, err := e.Connect(ctx, &codec.Connect{ClientID: id, KeepAlive: 60})
				if err != nil {
					return err
				}
				if ack.SessionPresent {
					return failf(p2, "MQTT-4.1.0-2", "Session Present 0 after the Session Expiry Interval of 1 s passed", "Session Present 1")
				}
				return nil
			},
		},
		Check{
			Name:        "expiry/offline-message-expires",
			Versions:    v5only,
			Statements5: ids("MQTT-3.3.2-5"),
			Timeout:     15 * time.Second,
			Run: func(ctx context.Context, e *Env) error {
				id, topic, err := offline(ctx, e, 1)
				defer endSession(e, id)
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("old"), Props: codec.Properties{MessageExpiry: 1}}); err != nil {
					return err
				}
				if err := pub.Run(ctx, conformance.ExpectNothing(2100*time.Millisecond)); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("new")}); err != nil {
					return err
				}
				p, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				_, err = e.Receive(ctx, p, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("new")}, conformance.IgnoreProps())
				if err != nil {
					var f *conformance.Failure
					if errors.As(err, &f) {
						f.Statements = append(f.Statements, "MQTT-3.3.2-5")
					}
				}
				return err
			},
		},
		Check{
			Name:        "expiry/reduced-when-forwarded",
			Versions:    v5only,
			Statements5: ids("MQTT-3.3.2-6"),
			Timeout:     15 * time.Second,
			Run: func(ctx context.Context, e *Env) error {
				id, topic, err := offline(ctx, e, 1)
				defer endSession(e, id)
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("x"), Props: codec.Properties{MessageExpiry: 60}}); err != nil {
					return err
				}
				if err := pub.Run(ctx, conformance.ExpectNothing(1100*time.Millisecond)); err != nil {
					return err
				}
				p, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				_, err = e.Receive(ctx, p, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("x")}, conformance.IgnoreProps(),
					conformance.Satisfy(func(got codec.Packet) string {
						pr := got.(*codec.Publish).Props
						if !pr.Has(codec.PropMessageExpiryInterval) || pr.MessageExpiry >= 60 || pr.MessageExpiry == 0 {
							return "Message Expiry Interval " + strconv.Itoa(int(pr.MessageExpiry)) + ", want 1..59 after a 1 s wait [MQTT-3.3.2-6]"
						}
						return ""
					}))
				return err
			},
		},
	)
	return cs
}
