package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

var (
	v5only   = []codec.Version{codec.V5}
	v311only = []codec.Version{codec.V311}
)

// closeTimeout bounds the checks that expect the broker to close the
// connection at once (malformed input, protocol errors): a broker closes
// within milliseconds or not at all, and a broker that never closes must
// not cost the run the default 10 s per check.
const closeTimeout = 3 * time.Second

// quiet is how long a check listens to be sure that something does not
// arrive: long against a local broker's sub-millisecond routing, short
// enough for a run of the whole catalogue to stay well under a minute.
const quiet = 400 * time.Millisecond

// Requirement helpers for Check.Requires.
func needRetain(c Caps) string {
	if !c.Retain {
		return "Retain Available is 0"
	}
	return ""
}

func needQoS(q codec.QoS) func(Caps) string {
	return func(c Caps) string {
		if c.MaxQoS < q {
			return fmt.Sprintf("Maximum QoS is %d", c.MaxQoS)
		}
		return ""
	}
}

func needWildcard(c Caps) string {
	if !c.Wildcard {
		return "Wildcard Subscription Available is 0"
	}
	return ""
}

func needSubIDs(c Caps) string {
	if !c.SubIDs {
		return "Subscription Identifier Available is 0"
	}
	return ""
}

func needShared(c Caps) string {
	if !c.Shared {
		return "Shared Subscription Available is 0"
	}
	return ""
}

func needAliases(c Caps) string {
	if c.TopicAliasMax == 0 {
		return "Topic Alias Maximum is 0 (not announced)"
	}
	return ""
}

func all(fs ...func(Caps) string) func(Caps) string {
	return func(c Caps) string {
		for _, f := range fs {
			if why := f(c); why != "" {
				return why
			}
		}
		return ""
	}
}

// sendAndExpectClosed connects a clean session (unless raw is meant to be
// the first packet), sends raw and expects the broker to close the
// connection, with or without a DISCONNECT (whose reason code, on 5.0,
// must be an error: 0x80 or above [MQTT-4.13.2-1]).
func sendAndExpectClosed(ctx context.Context, e *Env, connectFirst bool, raw []byte, ids ...string) error {
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	var p *conformance.Peer
	var err error
	if connectFirst {
		p, err = e.Client(ctx)
	} else {
		p, err = e.Dial(ctx)
	}
	if err != nil {
		return err
	}
	return p.Run(ctx, conformance.SendBytes(raw), conformance.ExpectClosed(errorDisconnect()).Cites(ids...))
}

// errorDisconnect accepts a DISCONNECT whose reason code is an error.
func errorDisconnect() conformance.Option {
	return conformance.Satisfy(func(got codec.Packet) string {
		if d, ok := got.(*codec.Disconnect); ok && d.ReasonCode < 0x80 {
			return fmt.Sprintf("DISCONNECT reason 0x%02x is not an error code [MQTT-4.13.2-1]", byte(d.ReasonCode))
		}
		return ""
	})
}

// encode encodes p for v, for checks that alter the bytes.
func encode(p codec.Packet, v codec.Version) []byte {
	b, err := p.Append(nil, v)
	if err != nil {
		panic(fmt.Sprintf("broker: encoding a check's packet %v: %v", p, err))
	}
	return b
}

// rawPublish builds a PUBLISH by hand: first byte, topic bytes, packet id
// (when qos > 0), an empty property block on 5.0, payload.
func rawPublish(v codec.Version, first byte, topic []byte, id uint16, payload []byte) []byte {
	var body []byte
	body = append(body, byte(len(topic)>>8), byte(len(topic)))
	body = append(body, topic...)
	if first&0x06 != 0 {
		body = append(body, byte(id>>8), byte(id))
	}
	if v == codec.V5 {
		body = append(body, 0)
	}
	body = append(body, payload...)
	return append(appendVBI([]byte{first}, len(body)), body...)
}

func appendVBI(b []byte, n int) []byte {
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

// pair connects a subscriber on a fresh topic at subQoS and a publisher,
// and returns both with the topic.
func pair(ctx context.Context, e *Env, subQoS codec.QoS) (sub, pub *conformance.Peer, topic string, granted codec.QoS, err error) {
	if sub, err = e.Client(ctx); err != nil {
		return
	}
	if pub, err = e.Client(ctx); err != nil {
		return
	}
	topic = e.Topic("t")
	granted, err = e.Sub(ctx, sub, topic, subQoS)
	return
}

// clearRetained removes a retained message a check set, on a new
// connection, ignoring errors (the check's result is already decided).
func clearRetained(e *Env, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p, err := e.Client(ctx)
	if err != nil {
		return
	}
	for _, t := range topics {
		e.Publish(ctx, p, &codec.Publish{Topic: t, Retain: true, QoS: 1})
	}
	p.Run(ctx, conformance.Send(&codec.Disconnect{}))
}

// endSession removes a persistent session a check made: clean start and,
// on 5.0, Session Expiry 0.
func endSession(e *Env, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, ClientID: id, KeepAlive: 60})
	if err != nil {
		return
	}
	p.Run(ctx, conformance.Send(&codec.Disconnect{}))
}

// persistent returns a CONNECT that keeps its session: Clean Session 0 on
// 3.1.1, Clean Start 0 with a Session Expiry of 5 minutes on 5.0.
func (e *Env) persistent(id string, cleanStart bool) *codec.Connect {
	c := &codec.Connect{ClientID: id, KeepAlive: 60, CleanStart: cleanStart}
	if e.Version == codec.V5 {
		c.Props.SessionExpiry = 300
	} else {
		c.CleanStart = false
	}
	return c
}

// collect reads PUBLISH packets from p for d, acknowledging each, and
// returns them. Any other packet is a failure.
func (e *Env) collect(ctx context.Context, p *conformance.Peer, d time.Duration) ([]*codec.Publish, error) {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var out []*codec.Publish
	for {
		pkt, err := p.Next(cctx)
		if err != nil {
			if cctx.Err() != nil && ctx.Err() == nil {
				return out, nil
			}
			return out, failf(p, "", "PUBLISH packets", err.Error())
		}
		pub, ok := pkt.(*codec.Publish)
		if !ok {
			return out, failf(p, "", "PUBLISH packets", pkt.String())
		}
		out = append(out, pub)
		if err := e.Ack(ctx, p, pub); err != nil {
			return out, err
		}
	}
}
