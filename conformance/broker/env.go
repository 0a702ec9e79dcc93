// Package broker is a catalogue of conformance checks of an MQTT broker,
// written with the conformance kit, and a runner for it. The command
// `zmqtt conform` prints its results.
//
// Each Check names the normative statements it checks, the protocol
// versions it applies to, its level (a MUST or a SHOULD of the
// specification) and, where it needs a capability the broker may announce
// as absent in its CONNACK (Retain Available, Maximum QoS, Wildcard,
// Subscription Identifier and Shared Subscription Available, Topic Alias
// Maximum, Maximum Packet Size), a precondition: the check is then N/A.
// Checks open their own connections with unique client identifiers and
// topics under one random prefix per run, so they can run in parallel and
// leave nothing behind that another run could see (retained messages they
// set are cleared at the end). Each is bounded by its own timeout.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

// Caps are the capabilities the broker announced in the CONNACK of a probe
// connection, with the defaults of the specification for what it left out.
// On MQTT 3.1.1 nothing is announced and every field has its default.
type Caps struct {
	MaxQoS          codec.QoS // Maximum QoS: 2 unless announced
	Retain          bool      // Retain Available
	Wildcard        bool      // Wildcard Subscription Available
	SubIDs          bool      // Subscription Identifier Available
	Shared          bool      // Shared Subscription Available
	TopicAliasMax   uint16    // Topic Alias Maximum: 0 (none) unless announced
	ReceiveMax      uint16    // Receive Maximum: 65,535 unless announced
	MaxPacketSize   uint32    // Maximum Packet Size: 0 means no limit
	ServerKeepAlive uint16    // Server Keep Alive: 0 unless announced
	HasKeepAlive    bool      // Server Keep Alive was announced
	Connack         *codec.Connack
}

func capsFrom(ack *codec.Connack) Caps {
	c := Caps{MaxQoS: 2, Retain: true, Wildcard: true, SubIDs: true, Shared: true, ReceiveMax: 65535, Connack: ack}
	if ack == nil {
		return c
	}
	pr := &ack.Props
	if pr.Has(codec.PropMaximumQoS) {
		c.MaxQoS = codec.QoS(pr.MaximumQoS)
	}
	if pr.Has(codec.PropRetainAvailable) {
		c.Retain = pr.RetainAvailable == 1
	}
	if pr.Has(codec.PropWildcardSubscriptionAvailable) {
		c.Wildcard = pr.WildcardSubAvailable == 1
	}
	if pr.Has(codec.PropSubscriptionIdentifierAvailable) {
		c.SubIDs = pr.SubIDAvailable == 1
	}
	if pr.Has(codec.PropSharedSubscriptionAvailable) {
		c.Shared = pr.SharedSubAvailable == 1
	}
	if pr.Has(codec.PropReceiveMaximum) {
		c.ReceiveMax = pr.ReceiveMaximum
	}
	c.TopicAliasMax = pr.TopicAliasMaximum
	c.MaxPacketSize = pr.MaximumPacketSize
	if pr.Has(codec.PropServerKeepAlive) {
		c.ServerKeepAlive, c.HasKeepAlive = pr.ServerKeepAlive, true
	}
	return c
}

// Dialer opens a new connection to the broker under test.
type Dialer func(ctx context.Context) (net.Conn, error)

// Env is what a check gets: the version, the broker's capabilities, a
// dialer, and helpers that open connections and run the common flows.
// Connections opened through an Env are closed when the check ends.
type Env struct {
	Version codec.Version
	Caps    Caps
	dial    Dialer
	prefix  string // unique per run and check
	n       atomic.Int64

	mu    sync.Mutex
	peers []*conformance.Peer
}

// newPrefix returns 8 random hex digits.
func newPrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID returns a new client identifier unique to this run: 1 to 23
// characters of [0-9a-zA-Z], which every server must accept
// [MQTT-3.1.3-5].
func (e *Env) ID() string {
	id := "zc" + e.prefix + strconv.FormatInt(e.n.Add(1), 36)
	if len(id) > 23 {
		id = id[:23]
	}
	return id
}

// Topic returns a new topic name unique to this run, "zc/<run>/<n>/<tag>".
func (e *Env) Topic(tag string) string {
	return "zc/" + e.prefix + "/" + strconv.FormatInt(e.n.Add(1), 36) + "/" + tag
}

// Dial opens a raw connection, wrapped in a Peer the Env closes at the end
// of the check.
func (e *Env) Dial(ctx context.Context) (*conformance.Peer, error) {
	conn, err := e.dial(ctx)
	if err != nil {
		return nil, &conformance.Failure{Action: "dial", Want: "a connection", Got: err.Error(), Err: err}
	}
	p := conformance.NewPeer(conn, e.Version, codec.RoleServer)
	e.mu.Lock()
	e.peers = append(e.peers, p)
	e.mu.Unlock()
	return p, nil
}

func (e *Env) closeAll() {
	e.mu.Lock()
	ps := e.peers
	e.peers = nil
	e.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
}

// Connect dials, sends c and expects a CONNACK with reason code 0. It
// returns the Peer and the CONNACK. A zero ClientID in c gets a fresh
// identifier unless c.Props marks nothing and the caller wants an empty
// one: use ConnectRaw for that.
func (e *Env) Connect(ctx context.Context, c *codec.Connect) (*conformance.Peer, *codec.Connack, error) {
	if c.ClientID == "" {
		c.ClientID = e.ID()
	}
	return e.ConnectRaw(ctx, c)
}

// ConnectRaw is Connect without filling in a client identifier.
func (e *Env) ConnectRaw(ctx context.Context, c *codec.Connect) (*conformance.Peer, *codec.Connack, error) {
	p, err := e.Dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	var ack *codec.Connack
	err = p.Run(ctx,
		conformance.Send(c),
		conformance.Expect(&codec.Connack{}, conformance.IgnoreProps(), conformance.IgnoreFields("SessionPresent"),
			capture(&ack)).Cites(cite(e.Version, "MQTT-3.1.4-4", "MQTT-3.1.4-5")),
	)
	if err != nil {
		return nil, nil, err
	}
	return p, ack, nil
}

// Client connects a new clean session with keep alive 60 s and a fresh
// client identifier.
func (e *Env) Client(ctx context.Context) (*conformance.Peer, error) {
	p, _, err := e.Connect(ctx, &codec.Connect{CleanStart: true, KeepAlive: 60})
	return p, err
}

// capture returns an Option that stores the received packet in *dst.
func capture[T codec.Packet](dst *T) conformance.Option {
	return conformance.Satisfy(func(got codec.Packet) string {
		if t, ok := got.(T); ok {
			*dst = t
		}
		return ""
	})
}

// cite picks the statement id of the check's version: v311 for 3.1.1, v5
// for 5.0.
func cite(v codec.Version, v311, v5 string) string {
	if v == codec.V5 {
		return v5
	}
	return v311
}

// Subscribe sends a SUBSCRIBE with packet identifier id and expects a
// SUBACK with the same identifier and one reason code per filter
// [MQTT-3.8.4-1] [MQTT-3.9.3-1]; it returns the codes.
func (e *Env) Subscribe(ctx context.Context, p *conformance.Peer, id uint16, props codec.Properties, subs ...codec.Subscription) ([]codec.ReasonCode, error) {
	if err := p.Run(ctx, conformance.Send(&codec.Subscribe{PacketID: id, Props: props, Subscriptions: subs})); err != nil {
		return nil, err
	}
	// The server may send PUBLISH packets of the new subscription before
	// its SUBACK (MQTT 3.1.1 section 3.8.4): they are deferred for the
	// next Receive.
	var held []codec.Packet
	defer func() {
		for _, h := range held {
			p.Defer(h)
		}
	}()
	st := []string{cite(e.Version, "MQTT-3.8.4-2", "MQTT-3.8.4-2"), cite(e.Version, "MQTT-3.8.4-5", "MQTT-3.8.4-6")}
	for {
		pkt, err := p.Next(ctx)
		if err != nil {
			return nil, failf(p, st[0], fmt.Sprintf("SUBACK{id=%d}", id), err.Error())
		}
		if _, ok := pkt.(*codec.Publish); ok {
			held = append(held, pkt)
			continue
		}
		ack, ok := pkt.(*codec.Suback)
		if !ok || ack.PacketID != id {
			return nil, failf(p, st[0], fmt.Sprintf("SUBACK{id=%d}", id), pkt.String())
		}
		if len(ack.ReasonCodes) != len(subs) {
			return nil, failf(p, st[1], fmt.Sprintf("%d reason codes", len(subs)), pkt.String())
		}
		return ack.ReasonCodes, nil
	}
}

// Sub subscribes to one filter at qos and fails unless the broker grants a
// QoS (any of 0..qos; a lower grant is allowed [MQTT-3.2.2-10]).
func (e *Env) Sub(ctx context.Context, p *conformance.Peer, filter string, qos codec.QoS) (codec.QoS, error) {
	codes, err := e.Subscribe(ctx, p, e.pid(), codec.Properties{}, codec.Subscription{Filter: filter, QoS: qos})
	if err != nil {
		return 0, err
	}
	if codes[0] > codec.ReasonCode(qos) {
		return 0, failf(p, cite(e.Version, "MQTT-3.9.3-2", "MQTT-3.8.4-7"), fmt.Sprintf("a granted QoS up to %d", qos), fmt.Sprintf("SUBACK code 0x%02x", byte(codes[0])))
	}
	return codec.QoS(codes[0]), nil
}

func (e *Env) pid() uint16 { return uint16(e.n.Add(1)%65000) + 1 }

// Publish sends pub and completes its QoS flow as the sender: PUBACK, or
// PUBREC, PUBREL, PUBCOMP, each with pub's packet identifier and a
// success code (0x00, or 0x10 no matching subscribers on 5.0). A zero
// packet identifier at QoS 1 or 2 gets a fresh one.
func (e *Env) Publish(ctx context.Context, p *conformance.Peer, pub *codec.Publish) error {
	if pub.QoS > 0 && pub.PacketID == 0 {
		pub.PacketID = e.pid()
	}
	okCodes := conformance.ReasonIn(codec.ReasonSuccess, codec.ReasonNoMatchingSubscribers)
	switch pub.QoS {
	case 0:
		return p.Run(ctx, conformance.Send(pub))
	case 1:
		return p.Run(ctx, conformance.Send(pub),
			conformance.Expect(&codec.Puback{PacketID: pub.PacketID}, conformance.IgnoreProps(), okCodes).
				Cites(cite(e.Version, "MQTT-2.3.1-6", "MQTT-2.2.1-5"), cite(e.Version, "MQTT-4.3.2-2", "MQTT-4.3.2-4")))
	default:
		return p.Run(ctx, conformance.Send(pub),
			conformance.Expect(&codec.Pubrec{PacketID: pub.PacketID}, conformance.IgnoreProps(), okCodes).
				Cites(cite(e.Version, "MQTT-2.3.1-6", "MQTT-2.2.1-5"), cite(e.Version, "MQTT-4.3.3-2", "MQTT-4.3.3-8")),
			conformance.Send(&codec.Pubrel{PacketID: pub.PacketID}),
			conformance.Expect(&codec.Pubcomp{PacketID: pub.PacketID}, conformance.IgnoreProps()).
				Cites(cite(e.Version, "MQTT-4.3.3-2", "MQTT-4.3.3-11")))
	}
}

// Receive expects a PUBLISH equal to want (packet identifier aside; with
// opts, which may relax more) and acknowledges it as its QoS asks. It
// returns the PUBLISH received.
func (e *Env) Receive(ctx context.Context, p *conformance.Peer, want *codec.Publish, opts ...conformance.Option) (*codec.Publish, error) {
	var got *codec.Publish
	opts = append([]conformance.Option{conformance.IgnoreFields("PacketID"), capture(&got)}, opts...)
	if err := p.Run(ctx, conformance.Expect(want, opts...).Cites(cite(e.Version, "MQTT-3.3.2-3", "MQTT-3.3.2-3"))); err != nil {
		return nil, err
	}
	return got, e.Ack(ctx, p, got)
}

// Ack completes the receiver's side of the QoS flow of got.
func (e *Env) Ack(ctx context.Context, p *conformance.Peer, got *codec.Publish) error {
	switch got.QoS {
	case 1:
		return p.Run(ctx, conformance.Send(&codec.Puback{PacketID: got.PacketID}))
	case 2:
		if err := p.Run(ctx, conformance.Send(&codec.Pubrec{PacketID: got.PacketID})); err != nil {
			return err
		}
		// The broker may send further PUBLISH packets before the PUBREL:
		// they are deferred for the next Receive.
		var held []codec.Packet
		defer func() {
			for _, h := range held {
				p.Defer(h)
			}
		}()
		for {
			pkt, err := p.Next(ctx)
			if err != nil {
				return failf(p, cite(e.Version, "MQTT-4.3.3-1", "MQTT-4.3.3-4"), fmt.Sprintf("PUBREL{id=%d}", got.PacketID), err.Error())
			}
			if rel, ok := pkt.(*codec.Pubrel); ok && rel.PacketID == got.PacketID {
				return p.Run(ctx, conformance.Send(&codec.Pubcomp{PacketID: got.PacketID}))
			}
			if _, ok := pkt.(*codec.Publish); !ok {
				return failf(p, cite(e.Version, "MQTT-4.3.3-1", "MQTT-4.3.3-4"), fmt.Sprintf("PUBREL{id=%d}", got.PacketID), pkt.String())
			}
			held = append(held, pkt)
		}
	}
	return nil
}

// failf returns a *conformance.Failure for a condition a check tests
// outside a step, with the transcript of p (p may be nil).
func failf(p *conformance.Peer, statement, want, got string) error {
	f := &conformance.Failure{Action: "check", Want: want, Got: got}
	if statement != "" {
		f.Statements = []string{statement}
	}
	if p != nil {
		f.Transcript = p.Transcript()
	}
	return f
}

// NotApplicable is the error of a check that found, while running, that
// the broker does not offer what it checks (a granted QoS lower than
// needed, say). The runner reports it as N/A with the reason.
type NotApplicable struct{ Reason string }

func (n *NotApplicable) Error() string { return "not applicable: " + n.Reason }

func na(format string, args ...any) error {
	return &NotApplicable{Reason: fmt.Sprintf(format, args...)}
}

var errNA *NotApplicable

func isNA(err error) bool { return errors.As(err, &errNA) }
