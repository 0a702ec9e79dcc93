package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

func connectChecks() []Check {
	return []Check{
		{
			Name:          "connect/accepted",
			Statements311: ids("MQTT-3.1.4-4", "MQTT-3.2.2-1", "MQTT-3.2.0-1"),
			Statements5:   ids("MQTT-3.1.4-5", "MQTT-3.2.2-2", "MQTT-3.2.0-1", "MQTT-3.2.2-1"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Dial(ctx)
				if err != nil {
					return err
				}
				return p.Run(ctx,
					conformance.Send(&codec.Connect{CleanStart: true, ClientID: e.ID(), KeepAlive: 60}),
					conformance.Expect(&codec.Connack{}, conformance.IgnoreProps()).
						Cites(cite(e.Version, "MQTT-3.2.2-1", "MQTT-3.2.2-2")),
				)
			},
		},
		{
			Name:          "connect/connack-before-other-packets",
			Statements311: ids("MQTT-3.2.0-1"),
			Statements5:   ids("MQTT-3.2.0-1"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Dial(ctx)
				if err != nil {
					return err
				}
				// CONNECT and SUBSCRIBE in one write: the SUBACK must follow the CONNACK.
				b := encode(&codec.Connect{CleanStart: true, ClientID: e.ID(), KeepAlive: 60}, e.Version)
				b = append(b, encode(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: e.Topic("x")}}}, e.Version)...)
				return p.Run(ctx, conformance.SendBytes(b),
					conformance.Expect(&codec.Connack{}, conformance.IgnoreProps()).Cites("MQTT-3.2.0-1"),
					conformance.Expect(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}}, conformance.IgnoreProps()))
			},
		},
		{
			Name:          "connect/new-persistent-session-not-present",
			Statements311: ids("MQTT-3.2.2-3"),
			Statements5:   ids("MQTT-3.1.2-6", "MQTT-3.2.2-3"),
			Run: func(ctx context.Context, e *Env) error {
				id := e.ID()
				defer endSession(e, id)
				p, ack, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				if ack.SessionPresent {
					return failf(p, cite(e.Version, "MQTT-3.2.2-3", "MQTT-3.2.2-3"), "Session Present 0 for a client id never seen", "Session Present 1")
				}
				return nil
			},
		},
		{
			Name:          "connect/session-present-on-resume",
			Statements311: ids("MQTT-3.2.2-2", "MQTT-3.1.2-4"),
			Statements5:   ids("MQTT-3.2.2-3", "MQTT-3.1.2-5", "MQTT-3.1.2-23"),
			Run: func(ctx context.Context, e *Env) error {
				id := e.ID()
				defer endSession(e, id)
				p, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				if err := p.Run(ctx, conformance.Send(&codec.Disconnect{}), conformance.ExpectClosed()); err != nil {
					return err
				}
				p2, ack, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				if !ack.SessionPresent {
					return failf(p2, cite(e.Version, "MQTT-3.2.2-2", "MQTT-3.2.2-3"), "Session Present 1 on resuming a kept session", "Session Present 0")
				}
				return nil
			},
		},
		{
			Name:          "connect/clean-start-discards-session",
			Statements311: ids("MQTT-3.1.2-6", "MQTT-3.2.2-1"),
			Statements5:   ids("MQTT-3.1.2-4", "MQTT-3.2.2-2"),
			Run: func(ctx context.Context, e *Env) error {
				id := e.ID()
				defer endSession(e, id)
				p, _, err := e.Connect(ctx, e.persistent(id, false))
				if err != nil {
					return err
				}
				topic := e.Topic("t")
				if _, err := e.Sub(ctx, p, topic, 1); err != nil {
					return err
				}
				if err := p.Run(ctx, conformance.Send(&codec.Disconnect{}), conformance.ExpectClosed()); err != nil {
					return err
				}
				p2, ack, err := e.Connect(ctx, e.persistent(id, true))
				if e.Version == codec.V311 {
					p2, ack, err = e.Connect(ctx, &codec.Connect{ClientID: id, CleanStart: true, KeepAlive: 60})
				}
				if err != nil {
					return err
				}
				if ack.SessionPresent {
					return failf(p2, cite(e.Version, "MQTT-3.2.2-1", "MQTT-3.2.2-2"), "Session Present 0 with clean start", "Session Present 1")
				}
				// The old subscription must be gone.
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: topic, QoS: 1, Payload: []byte("x")}); err != nil {
					return err
				}
				return p2.Run(ctx, conformance.ExpectNothing(quiet).Cites(cite(e.Version, "MQTT-3.1.2-6", "MQTT-3.1.2-4")).Note("the discarded subscription"))
			},
		},
		{
			Name:          "connect/second-connect-closes",
			Statements311: ids("MQTT-3.1.0-2"),
			Statements5:   ids("MQTT-3.1.0-2"),
			Run: func(ctx context.Context, e *Env) error {
				id := e.ID()
				return sendAndExpectClosed(ctx, e, true, encode(&codec.Connect{CleanStart: true, ClientID: id, KeepAlive: 60}, e.Version), "MQTT-3.1.0-2")
			},
		},
		{
			Name:          "connect/first-packet-not-connect",
			Statements311: ids("MQTT-3.1.4-1", "MQTT-4.8.0-1"),
			Statements5:   ids("MQTT-3.1.4-1", "MQTT-4.13.1-1"),
			Run: func(ctx context.Context, e *Env) error {
				return sendAndExpectClosed(ctx, e, false, []byte{0xc0, 0x00}, cite(e.Version, "MQTT-4.8.0-1", "MQTT-4.13.1-1"))
			},
		},
		{
			Name:          "connect/unsupported-protocol-level",
			Statements311: ids("MQTT-3.1.2-2"),
			Statements5:   ids("MQTT-3.1.2-2"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Connect{CleanStart: true, ClientID: e.ID(), KeepAlive: 60}, e.Version)
				b[8] = 99 // the protocol level, after 10 xx 00 04 M Q T T
				p, err := e.Dial(ctx)
				if err != nil {
					return err
				}
				if err := p.SendBytes(ctx, b); err != nil {
					return err
				}
				// 3.1.1: CONNACK return code 1, then close. 5.0: CONNACK
				// 0x84 (in either version's format) or nothing, then close.
				pkt, err := p.Next(ctx)
				if err == nil {
					ack, ok := pkt.(*codec.Connack)
					if !ok || (ack.ReasonCode != codec.ReturnUnacceptableProtocolVersion && ack.ReasonCode != codec.ReasonUnsupportedProtocolVersion) {
						return failf(p, "MQTT-3.1.2-2", "CONNACK refusing the protocol version", pkt.String())
					}
					return p.Run(ctx, conformance.ExpectClosed().Cites(cite(e.Version, "MQTT-3.2.2-5", "MQTT-3.2.2-7")))
				}
				var ce *codec.Error
				if errors.As(err, &ce) {
					// A 3.1.1 CONNACK 1 on a 5.0 connection does not decode as 5.0.
					if tr := p.Transcript(); len(tr) > 0 && bytes.Equal(tr[len(tr)-1].Raw, []byte{0x20, 0x02, 0x00, 0x01}) {
						return p.Run(ctx, conformance.ExpectClosed().Cites("MQTT-3.2.2-7"))
					}
					return failf(p, "MQTT-3.1.2-2", "CONNACK refusing the protocol version", err.Error())
				}
				if e.Version == codec.V311 {
					return failf(p, "MQTT-3.1.2-2", "CONNACK return code 1", err.Error())
				}
				return nil
			},
		},
		{
			Name:          "connect/wrong-protocol-name",
			Statements311: ids("MQTT-3.1.2-1"),
			Statements5:   ids("MQTT-3.1.2-1"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Connect{CleanStart: true, ClientID: e.ID(), KeepAlive: 60}, e.Version)
				copy(b[4:8], "MQTX")
				p, err := e.Dial(ctx)
				if err != nil {
					return err
				}
				if err := p.SendBytes(ctx, b); err != nil {
					return err
				}
				pkt, err := p.Next(ctx)
				if err == nil {
					if ack, ok := pkt.(*codec.Connack); ok && ack.ReasonCode == 0 {
						return failf(p, "MQTT-3.1.2-1", "the connection closed (or refused) for protocol name MQTX", pkt.String())
					}
				}
				return nil
			},
		},
		{
			Name:          "connect/reserved-flag",
			Statements311: ids("MQTT-3.1.2-3"),
			Statements5:   ids("MQTT-3.1.2-3"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Connect{CleanStart: true, ClientID: e.ID(), KeepAlive: 60}, e.Version)
				b[9] |= 0x01 // the reserved bit of the connect flags
				return expectRefusedConnect(ctx, e, b, "MQTT-3.1.2-3")
			},
		},
		{
			Name:          "connect/will-qos-without-will-flag",
			Statements311: ids("MQTT-3.1.2-13", "MQTT-3.1.4-1"),
			Statements5:   ids("MQTT-3.1.2-11", "MQTT-3.1.4-1"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Connect{CleanStart: true, ClientID: e.ID(), KeepAlive: 60}, e.Version)
				b[9] |= 0x08 // Will QoS 1, Will Flag 0
				return expectRefusedConnect(ctx, e, b, "MQTT-3.1.4-1")
			},
		},
		{
			Name:          "connect/will-qos-3",
			Statements311: ids("MQTT-3.1.2-14", "MQTT-3.1.4-1"),
			Statements5:   ids("MQTT-3.1.2-12", "MQTT-3.1.4-1"),
			Run: func(ctx context.Context, e *Env) error {
				b := encode(&codec.Connect{CleanStart: true, ClientID: e.ID(), KeepAlive: 60,
					Will: &codec.Will{Topic: e.Topic("w"), Payload: []byte("w")}}, e.Version)
				b[9] |= 0x18 // Will QoS 3
				return expectRefusedConnect(ctx, e, b, "MQTT-3.1.4-1")
			},
		},
		{
			Name:          "connect/password-without-user-name",
			Versions:      v311only,
			Statements311: ids("MQTT-3.1.2-22", "MQTT-3.1.4-1"),
			Run: func(ctx context.Context, e *Env) error {
				// Flags: clean session and password; payload: client id, password.
				id := e.ID()
				body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 60, 0, byte(len(id))}
				body = append(body, id...)
				body = append(body, 0, 2, 'p', 'w')
				b := append([]byte{0x10, byte(len(body))}, body...)
				return expectRefusedConnect(ctx, e, b, "MQTT-3.1.2-22")
			},
		},
		{
			Name:          "connect/client-id-23-alphanumeric",
			Statements311: ids("MQTT-3.1.3-5"),
			Statements5:   ids("MQTT-3.1.3-5"),
			Run: func(ctx context.Context, e *Env) error {
				id := (e.ID() + "0123456789abcdefghijklmnopq")[:23]
				_, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, ClientID: id, KeepAlive: 60})
				return err
			},
		},
		{
			Name:          "connect/empty-client-id-assigned",
			Statements311: ids("MQTT-3.1.3-6"),
			Statements5:   ids("MQTT-3.1.3-6", "MQTT-3.1.3-7", "MQTT-3.2.2-16"),
			Run: func(ctx context.Context, e *Env) error {
				var assigned []string
				for range 2 {
					p, ack, err := e.ConnectRaw(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60})
					if err != nil {
						return err
					}
					if e.Version == codec.V5 {
						id := ack.Props.AssignedClientID
						if id == "" {
							return failf(p, "MQTT-3.1.3-7", "an Assigned Client Identifier for an empty client id", ack.String())
						}
						for _, a := range assigned {
							if a == id {
								return failf(p, "MQTT-3.2.2-16", "a unique Assigned Client Identifier", "the same one twice: "+id)
							}
						}
						assigned = append(assigned, id)
					}
				}
				return nil
			},
		},
		{
			Name:          "connect/empty-client-id-persistent-refused",
			Versions:      v311only,
			Statements311: ids("MQTT-3.1.3-8", "MQTT-3.2.2-4", "MQTT-3.2.2-5"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Dial(ctx)
				if err != nil {
					return err
				}
				// The codec refuses to encode it: clean session 0, empty id.
				raw := []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 60, 0, 0}
				return p.Run(ctx,
					conformance.SendBytes(raw),
					conformance.Expect(&codec.Connack{ReasonCode: codec.ReturnIdentifierRejected}).Cites("MQTT-3.1.3-8", "MQTT-3.2.2-4"),
					conformance.ExpectClosed().Cites("MQTT-3.2.2-5"))
			},
		},
		{
			Name:          "connect/take-over",
			Statements311: ids("MQTT-3.1.4-2"),
			Statements5:   ids("MQTT-3.1.4-3", "MQTT-3.14.2-2"),
			Run: func(ctx context.Context, e *Env) error {
				id := e.ID()
				p1, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, ClientID: id, KeepAlive: 60})
				if err != nil {
					return err
				}
				if _, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, ClientID: id, KeepAlive: 60}); err != nil {
					return err
				}
				noExpiry := conformance.Satisfy(func(got codec.Packet) string {
					if d := got.(*codec.Disconnect); d.Props.Has(codec.PropSessionExpiryInterval) {
						return "a Session Expiry Interval in the server's DISCONNECT [MQTT-3.14.2-2]"
					}
					return ""
				})
				return p1.Run(ctx, conformance.ExpectClosed(errorDisconnect(), noExpiry).Cites(cite(e.Version, "MQTT-3.1.4-2", "MQTT-3.1.4-3")))
			},
		},
		{
			Name:        "connect/take-over-reason",
			Versions:    v5only,
			Level:       Should,
			Statements5: ids("MQTT-3.14.2-1"),
			Run: func(ctx context.Context, e *Env) error {
				id := e.ID()
				p1, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, ClientID: id, KeepAlive: 60})
				if err != nil {
					return err
				}
				if _, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, ClientID: id, KeepAlive: 60}); err != nil {
					return err
				}
				return p1.Run(ctx,
					conformance.Expect(&codec.Disconnect{ReasonCode: codec.ReasonSessionTakenOver}, conformance.IgnoreProps()).Cites("MQTT-3.14.2-1"),
					conformance.ExpectClosed())
			},
		},
		{
			Name:        "connect/response-information-only-when-requested",
			Versions:    v5only,
			Statements5: ids("MQTT-3.1.2-28"),
			Run: func(ctx context.Context, e *Env) error {
				p, ack, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60})
				if err != nil {
					return err
				}
				if ack.Props.Has(codec.PropResponseInformation) {
					return failf(p, "MQTT-3.1.2-28", "no Response Information without Request Response Information", ack.String())
				}
				return nil
			},
		},
		{
			Name:        "connect/connack-properties-valid",
			Versions:    v5only,
			Statements5: ids("MQTT-3.2.2-8", "MQTT-3.2.2-9"),
			Run: func(ctx context.Context, e *Env) error {
				p, ack, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60})
				if err != nil {
					return err
				}
				var bad []string
				pr := ack.Props
				if pr.Has(codec.PropMaximumQoS) && pr.MaximumQoS == 2 {
					bad = append(bad, "Maximum QoS 2 (only 0 or 1 may be sent) [MQTT-3.2.2-9]")
				}
				if pr.Has(codec.PropReceiveMaximum) && pr.ReceiveMaximum == 0 {
					bad = append(bad, "Receive Maximum 0")
				}
				if pr.Has(codec.PropMaximumPacketSize) && pr.MaximumPacketSize < 64 {
					bad = append(bad, fmt.Sprintf("Maximum Packet Size %d (too small to be usable)", pr.MaximumPacketSize))
				}
				if len(bad) > 0 {
					return failf(p, "MQTT-3.2.2-9", "usable CONNACK properties", strings.Join(bad, "; "))
				}
				return nil
			},
		},
	}
}

// expectRefusedConnect sends a CONNECT that breaks a rule and expects the
// connection closed, allowing a refusing CONNACK (not 0) first.
func expectRefusedConnect(ctx context.Context, e *Env, raw []byte, id string) error {
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	p, err := e.Dial(ctx)
	if err != nil {
		return err
	}
	if err := p.SendBytes(ctx, raw); err != nil {
		return err
	}
	return expectClosedAfterRefusal(ctx, p, id)
}

func expectClosedAfterRefusal(ctx context.Context, p *conformance.Peer, id string) error {
	for {
		pkt, err := p.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return failf(p, id, "the connection closed", "still open at the deadline")
			}
			return nil // closed (or bytes we cannot read, after which we close anyway)
		}
		switch pkt := pkt.(type) {
		case *codec.Connack:
			if pkt.ReasonCode == 0 {
				return failf(p, id, "the CONNECT refused", pkt.String())
			}
		case *codec.Disconnect:
		default:
			return failf(p, id, "the connection closed", pkt.String())
		}
	}
}

func keepAliveChecks() []Check {
	return []Check{
		{
			Name:          "keepalive/pingresp",
			Statements311: ids("MQTT-3.12.4-1"),
			Statements5:   ids("MQTT-3.12.4-1"),
			Run: func(ctx context.Context, e *Env) error {
				p, err := e.Client(ctx)
				if err != nil {
					return err
				}
				return p.Run(ctx, conformance.Send(&codec.Pingreq{}), conformance.Expect(&codec.Pingresp{}).Cites("MQTT-3.12.4-1"))
			},
		},
		{
			Name:          "keepalive/enforced-at-1.5x",
			Statements311: ids("MQTT-3.1.2-24"),
			Statements5:   ids("MQTT-3.1.2-22", "MQTT-3.2.2-22"),
			Timeout:       15 * time.Second,
			Run: func(ctx context.Context, e *Env) error {
				// Three silent connections at once, so that a broker that
				// checks keep alive on a coarse timer is caught whatever
				// its phase; each must be closed within 1.5 keep alives
				// (plus half a second for scheduling), none before one.
				errs := make(chan error, 3)
				for range 3 {
					go func() { errs <- keepAliveOnce(ctx, e) }()
				}
				var first error
				for range 3 {
					if err := <-errs; err != nil && (first == nil || isNA(first)) {
						first = err
					}
				}
				return first
			},
		},
		{
			Name:          "keepalive/traffic-keeps-alive",
			Statements311: ids("MQTT-3.1.2-24"),
			Statements5:   ids("MQTT-3.1.2-22"),
			Timeout:       15 * time.Second,
			Run: func(ctx context.Context, e *Env) error {
				p, ack, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 1})
				if err != nil {
					return err
				}
				if ack.Props.Has(codec.PropServerKeepAlive) && ack.Props.ServerKeepAlive != 1 {
					return na("Server Keep Alive %d replaces ours", ack.Props.ServerKeepAlive)
				}
				for range 6 { // 3 s: twice the 1.5 s limit, with a PINGREQ every half keep alive
					if err := p.Run(ctx, conformance.ExpectNothing(500*time.Millisecond), conformance.Send(&codec.Pingreq{}),
						conformance.Expect(&codec.Pingresp{}).Cites("MQTT-3.12.4-1")); err != nil {
						return err
					}
				}
				return nil
			},
		},
	}
}

func keepAliveOnce(ctx context.Context, e *Env) error {
	start := time.Now()
	p, ack, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 1})
	if err != nil {
		return err
	}
	ka := time.Second
	if ack.Props.Has(codec.PropServerKeepAlive) {
		ka = time.Duration(ack.Props.ServerKeepAlive) * time.Second
		if ka == 0 || ka > 5*time.Second {
			return na("Server Keep Alive %v replaces ours; too long to wait for", ka)
		}
	}
	id := cite(e.Version, "MQTT-3.1.2-24", "MQTT-3.1.2-22")
	if err := p.Run(ctx, conformance.ExpectNothing(ka*9/10-time.Since(start)).Note("closed before the keep alive ran out").Cites(id)); err != nil {
		return err
	}
	dctx, cancel := context.WithDeadline(ctx, start.Add(ka*3/2+500*time.Millisecond))
	defer cancel()
	return p.Run(dctx, conformance.ExpectClosed(errorDisconnect()).Cites(id))
}
