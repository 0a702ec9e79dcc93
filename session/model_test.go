package session

// A model-based test of the session (DESIGN.md section 7): rapid drives a
// Session against a simulated broker, with the user's commands, the
// broker's packets, the network and the clock interleaved at random, and
// checks after every step what must hold whatever the interleaving:
//
//   - every packet the session writes decodes with the codec's server-side
//     decoder, and no packet is written without a connection;
//   - no packet identifier is in use twice [MQTT-2.2.1-3]: a new PUBLISH,
//     SUBSCRIBE or UNSUBSCRIBE never reuses an identifier whose flow is still
//     open from the broker's point of view;
//   - never more unacknowledged QoS 1/2 PUBLISH packets on a connection than
//     the server's Receive Maximum [MQTT-4.9.0-2], never a packet above the
//     server's Maximum Packet Size [MQTT-3.2.2-15], never a topic alias above
//     its Topic Alias Maximum or without its topic on the connection
//     [MQTT-3.3.2-9] [MQTT-3.3.2-12];
//   - the CONNACK's capabilities: no new PUBLISH above its Maximum QoS
//     [MQTT-3.2.2-11] or with retain when Retain Available is 0
//     [MQTT-3.2.2-14], no SUBSCRIBE with wildcards [§3.2.2.3.11], a
//     Subscription Identifier or a shared filter the server said it lacks;
//     Publish and Subscribe refuse them with *UnsupportedError, and a queued
//     publish that a later CONNACK rules out fails with it in EventPublished.
//     A message sent before and unacknowledged in a resumed session is still
//     resent at its QoS (the session's policy: the server holds its
//     identifier state); one above the new Maximum Packet Size fails with
//     *TooLargeError, and its identifier stays reserved when it was QoS 2;
//   - resends only after a CONNACK with session present, once per connection,
//     with DUP, in their original order, and no PUBLISH once its PUBREL is out
//     [MQTT-4.4.0-1] [MQTT-4.6.0-1] [MQTT-3.3.1-1] [MQTT-4.3.3-6];
//   - no QoS 1/2 message of the user's lost: each accepted publish completes
//     exactly once, on the broker's acknowledgement of that very message, or
//     with the broker's refusal; when the broker forgot the session, either
//     with ErrSessionLost (FailOnSessionLost) or, by default, on the
//     acknowledgement of its republished copy: a new PUBLISH (new
//     identifier, DUP clear), in the original order, ahead of the messages
//     queued after it [MQTT-3.2.2-5] (5.0); with a *PoisonError exactly when the
//     server ended the connection Config.PoisonCloses times in a row with
//     it as the oldest PUBLISH sent on the connection; at the end, with a
//     well-behaved broker, every token has completed, and every publish that
//     completed successfully reached the broker (at least once, across
//     session losses);
//   - no QoS 2 message of the broker delivered twice [MQTT-4.3.3-10], no
//     message acknowledged before the application had it (or it was reported
//     unrouted), every QoS 1/2 message delivered at least once unless the
//     broker forgot the session, and a message delivered only to a handle
//     whose subscription matches it;
//   - keep alive [MQTT-3.1.2-23] (3.1.1) [MQTT-3.1.2-20] (5.0): something sent within each
//     keep alive; a PINGREQ when nothing was received for the keep alive and
//     none is outstanding; the connection declared dead only when a PINGREQ
//     is outstanding and nothing at all came for the ping timeout since it
//     (or since the last packet, whichever is later); the CONNACK deadline;
//     Deadline is exactly the earliest of these, and in the future after
//     every input;
//   - never more QoS 1/2 PUBLISH packets in flight than Config.MaxInflight
//     allows (20 on 3.1.1 by default);
//   - events: exactly one EventClosed per connection, for a reason the step
//     allows, and no event for a token that is unknown or already complete;
//   - at the end, the session's subscriptions are all subscriptions the
//     broker has.
//
// The broker is correct but adversarial in its timing: it acknowledges out of
// order, sends stray acknowledgements for identifiers that are free, PUBREL
// for identifiers the client never saw, duplicates (3.1.1), resends after a
// reconnect, refuses messages and subscriptions, forgets or keeps the session
// at each reconnect, changes its Receive Maximum, Maximum Packet Size, Topic
// Alias Maximum, Maximum QoS, Retain, Wildcard, Subscription Identifier and
// Shared Subscription availability at each CONNACK, and echoes Subscription
// Identifiers [MQTT-3.3.4-3]. Connections end (Disconnect, ConnectionLost,
// server DISCONNECT, timeouts) at any step of any QoS flow in either
// direction, with the broker having read any prefix of what was written.
// Limits are small (packet identifiers, queue, receive maximum) so that the
// corner cases are reached in a few dozen steps.
//
// go test ./session -run TestModel -rapid.checks=10000 runs it longer.

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"pgregory.net/rapid"
)

func TestModel(t *testing.T) {
	// features counts the behaviours of modelFeatures over both versions
	// (some are rare in one run of one version); MODEL_COUNTS=1 logs the
	// counts.
	features := map[string]int{}
	runs := 0
	// A rare feature may be missed by one pass of random draws (about 1
	// pass in 15 missed "PINGREQ for a silent server"): up to three passes
	// run, each with fresh draws, until every feature was reached.
	missing := func() bool {
		for _, f := range modelFeatures {
			if features[f] == 0 {
				return true
			}
		}
		return false
	}
	for pass := 0; pass < 3 && (pass == 0 || (runs == 2*pass && missing())); pass++ {
		for _, v := range []codec.Version{codec.V311, codec.V5} {
			modelPass(t, v, features, &runs)
		}
	}
	for _, f := range modelFeatures {
		if os.Getenv("MODEL_COUNTS") != "" {
			t.Logf("%6d %s", features[f], f)
		}
		if runs >= 2 && features[f] == 0 {
			t.Errorf("the model never reached %q", f)
		}
	}
}

// modelPass runs one pass of the model for version v as a subtest.
func modelPass(t *testing.T, v codec.Version, features map[string]int, runs *int) {
	{
		t.Run(v.String(), func(t *testing.T) {
			*runs++
			// An action skips (t.Skip) when the state does not allow it,
			// which is how rapid draws another one. ran counts the actions
			// that went past their preconditions, so that a skip cannot
			// hide one that never runs.
			ran := map[string]int{}
			rapid.Check(t, func(rt *rapid.T) {
				m := newModel(rt, v)
				m.ran, m.features = ran, features
				for range modelRounds {
					rt.Repeat(m.actions())
				}
				m.settle()
			})
			for _, name := range sortedKeys(ran) {
				if os.Getenv("MODEL_COUNTS") != "" {
					t.Logf("%6d %s", ran[name], name)
				}
				if ran[name] == 0 {
					t.Errorf("action %q never ran past its preconditions", name)
				}
			}
		})
	}
}

var (
	modelTopics  = []string{"a/b", "a/c", "a", "b/c"}
	modelFilters = []string{"a/b", "a/+", "a/#", "#", "+", "+/c", "b/c"}
	// shared subscriptions (5.0 only): the router strips "$share/<group>/"
	modelShared = []string{"$share/g/a/+", "$share/g/b/c", "$share/h/#"}
)

// modelFeatures name behaviours of the session that the model checks and
// that the random runs must reach.
var modelFeatures = []string{
	"feature: republished after a lost session",
	"feature: republished after its PUBREC",
	"feature: poison message failed",
	"feature: PINGREQ for a silent server",
	"feature: PINGRESP timeout",
}

func (m *model) reached(feature string) {
	if m.features != nil {
		m.features[feature]++
	}
}

const (
	modelRounds  = 8 // rounds of Repeat per check, about 30 steps each
	brokerMaxID  = 6 // the broker's packet identifiers: few, so that they are reused
	settleRounds = 600
)

type mphase uint8

const (
	mIdle mphase = iota
	mConnecting
	mConnected
)

// outMsg is a publish of the user's.
type outMsg struct {
	n          int
	qos        codec.QoS
	retain     bool
	topic      string
	size       int // canonical encoding: full topic, no alias
	token      Token
	done       bool
	canceled   bool
	sent       bool   // a PUBLISH for it was written
	id         uint16 // its packet identifier, once sent (QoS 1/2)
	seq        int    // order of its first PUBLISH
	sentConn   int    // connection of its first PUBLISH
	resentConn int    // connection of its last resend
	pubrec     bool   // PUBREC with a success code arrived: in its PUBREL phase
	tooLarge   bool   // its resend failed: above the server's Maximum Packet Size
	republish  bool   // its session was lost: due again as a new message
	strikes    int    // server closes in a row as the oldest PUBLISH (Config.PoisonCloses)
	ok         bool   // completed on a successful acknowledgement
}

// idUse is an open flow of the client's, as the broker sees it.
//
// A QoS 2 publish that failed because it could not be resent (above the
// server's new Maximum Packet Size) leaves its identifier open with kind
// staleUse: the broker may still hold it at "PUBREC sent", so the client
// must not reuse it until a CONNACK without session present.
type idUse struct {
	kind   codec.Type // PUBLISH, SUBSCRIBE or UNSUBSCRIBE
	msg    int
	token  Token
	handle Handle
	filter string
}

const staleUse = codec.Type(0)

type tokInfo struct {
	kind EventKind // the event that completes it
	msg  int
	done bool
}

type gstate uint8

const (
	gAlive gstate = iota
	gUncertain
	gDead
)

// mgroup is one Subscribe call (always one filter here).
type mgroup struct {
	token  Token
	h      Handle
	filter string
	state  gstate
}

type delivery struct {
	bk    int
	ack   AckID
	acked bool
}

type mping struct {
	at    time.Time
	token Token
}

type wirePkt struct {
	p     codec.Packet
	topic string // PUBLISH: the topic, aliases resolved
}

// stepCtx is what one step (one input of the session) allows and requires.
type stepCtx struct {
	label          string
	completes      map[Token]codec.ReasonCode // EventPublished due, with this outcome
	lost           map[Token]bool             // EventPublished(ErrSessionLost) due
	poisoned       map[Token]int              // EventPublished(*PoisonError) due, with its Closes
	dropped        map[int]bool               // messages of a lost session that fail in this step
	serverClose    bool                       // the step ends the connection by the server's doing
	canceled       map[Token]bool             // EventSubscribed(ErrCanceled) allowed
	closeOK        func(error) string         // "" when this EventClosed is allowed
	closed         bool
	connack        bool
	feedBK         int // the broker message fed in this step
	heldMsgOK      bool
	heldUnroutedOK bool
	pubrecFed      uint16 // PUBREC with success fed: PUBREL due
	pubrelFed      uint16 // PUBREL fed: PUBCOMP due
	pubrelCode     codec.ReasonCode
	pubrelAny      bool // a resent PUBREL: 0x00 or 0x92 (the client may have completed it)
	connected      bool
	pong           Token
	pongRTT        time.Duration
	pingToken      Token
	connecting     bool
	suback         bool
	emitted        []codec.Packet
	deliv          map[int]int
	ackEmits       []int // broker messages acknowledged in this step
}

type model struct {
	ran      map[string]int // actions that ran past their preconditions, by name
	features map[string]int // modelFeatures reached
	last     string         // the last step, for messages of the invariants
	t        *rapid.T
	v        codec.Version
	s        *Session
	now      time.Time
	calm     bool // settling: the broker and the network behave

	phase       mphase
	conn        int
	wire        []wirePkt
	connectAt   time.Time
	lastSent    time.Time
	lastRecv    time.Time // the last complete packet fed
	keepAlive   time.Duration
	pingTimeout time.Duration // of this connection
	pings       []mping
	serverRM    int
	serverMax   int
	serverQoS   codec.QoS // Maximum QoS
	wildcards   bool      // Wildcard Subscription Available
	subIDsOK    bool      // Subscription Identifiers Available
	sharedOK    bool      // Shared Subscription Available
	retainOK    bool      // Retain Available
	aliasMax    int
	aliases     map[uint16]string
	quota       map[uint16]bool
	lastResend  int
	resumed     bool
	recThisConn map[int]bool

	open       map[uint16]*idUse
	epoch      int // the broker session the client last heard of (CONNACK)
	seq        int
	msgs       map[int]*outMsg
	nextMsg    int
	tokens     map[Token]*tokInfo
	groups     []*mgroup
	deliveries []*delivery

	b   brokerModel
	ctx stepCtx
}

func newModel(t *rapid.T, v codec.Version) *model {
	cfg := Config{
		Version:         v,
		ClientID:        "model",
		CleanStart:      rapid.Bool().Draw(t, "CleanStart"),
		KeepAlive:       time.Duration(rapid.IntRange(0, 4).Draw(t, "KeepAlive")) * time.Second,
		PingTimeout:     time.Duration(rapid.IntRange(0, 3).Draw(t, "PingTimeout")) * time.Second,
		ConnectTimeout:  time.Duration(rapid.IntRange(3, 12).Draw(t, "ConnectTimeout")) * time.Second,
		HoldTimeout:     time.Duration(rapid.IntRange(1, 6).Draw(t, "HoldTimeout")) * time.Second,
		MaxPacketID:     uint16(rapid.IntRange(4, 16).Draw(t, "MaxPacketID")),
		MaxQueued:       rapid.IntRange(1, 6).Draw(t, "MaxQueued"),
		OutboundAliases: v == codec.V5 && rapid.Bool().Draw(t, "OutboundAliases"),
		MaxInflight:     rapid.SampledFrom([]int{0, 0, 1, 2, 3}).Draw(t, "MaxInflight"),
		PoisonCloses:    rapid.SampledFrom([]int{0, 0, -1, 1, 2}).Draw(t, "PoisonCloses"),
		SessionLost:     rapid.SampledFrom([]SessionLostPolicy{RepublishOnSessionLost, RepublishOnSessionLost, FailOnSessionLost}).Draw(t, "SessionLost"),
	}
	if v == codec.V5 {
		cfg.SessionExpiry = 3600
		cfg.ReceiveMaximum = uint16(rapid.IntRange(1, 4).Draw(t, "ReceiveMaximum"))
		cfg.TopicAliasMaximum = uint16(rapid.IntRange(0, 2).Draw(t, "TopicAliasMaximum"))
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &model{
		t: t, v: v, s: s, now: epoch,
		open:   make(map[uint16]*idUse),
		msgs:   make(map[int]*outMsg),
		tokens: make(map[Token]*tokInfo),
		b:      newBrokerModel(),
	}
}

func (m *model) fail(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("%s: %s", m.ctx.label, fmt.Sprintf(format, args...))
}

func (m *model) actions() map[string]func(*rapid.T) {
	// Repeat picks an action name uniformly: several names for one action
	// weigh it.
	acts := map[string]func(*rapid.T){"": func(*rapid.T) { m.check() }}
	add := func(name string, weight int, f func(*rapid.T)) {
		if m.ran != nil {
			m.ran[name] += 0
		}
		counted := func(t *rapid.T) {
			f(t) // a skip does not return
			if m.ran != nil {
				m.ran[name]++
			}
		}
		for i := range weight {
			acts[fmt.Sprintf("%s%d", name, i)] = counted
		}
	}
	add("publish", 3, m.actPublish)
	add("subscribe", 1, m.actSubscribe)
	add("unsubscribe", 1, m.actUnsubscribe)
	add("ack", 2, m.actAck)
	add("reack", 1, m.actReack)
	add("ping", 1, m.actPing)
	add("cancel", 1, m.actCancel)
	add("disconnect", 1, m.actDisconnect)
	add("connect", 1, m.actConnect)
	add("handshake", 2, m.actHandshake)
	add("read", 4, m.actRead)
	add("connack", 2, m.actConnack)
	add("respond", 4, m.actRespond)
	add("bpublish", 3, m.actBrokerPublish)
	if m.v == codec.V311 {
		add("bdup", 1, m.actBrokerDup) // 5.0 forbids it [MQTT-4.4.0-1]
	}
	add("stray", 1, m.actStray)
	if m.v == codec.V5 {
		add("bdisconnect", 1, m.actBrokerDisconnect) // a server DISCONNECT is 5.0 only
	}
	add("lose", 1, m.actLose)
	add("tick", 2, m.actTick)
	add("early", 1, m.actEarly)
	return acts
}

// ---------------------------------------------------------------- steps

// begin starts a step: one input of the session.
func (m *model) begin(format string, args ...any) {
	m.ctx = stepCtx{
		label:     fmt.Sprintf("conn %d, t=%v: ", m.conn, m.now.Sub(epoch)) + fmt.Sprintf(format, args...),
		completes: make(map[Token]codec.ReasonCode),
		lost:      make(map[Token]bool),
		poisoned:  make(map[Token]int),
		dropped:   make(map[int]bool),
		canceled:  make(map[Token]bool),
		deliv:     make(map[int]int),
	}
	m.last = m.ctx.label
	m.t.Log(m.ctx.label)
}

// collect takes what the step produced: the bytes written (each packet must
// decode) and the events.
func (m *model) collect() {
	// A resend that failed as too large frees (QoS 1) or keeps reserved
	// (QoS 2) its identifier before what the step wrote: apply it first.
	// So does a message of a lost session that failed instead of going
	// again: it no longer holds its place in the order.
	for _, ev := range m.s.events[m.s.evHead:] {
		if ti := m.tokens[ev.Token]; ev.Kind == EventPublished && ev.Err != nil && ti != nil && ti.kind == EventPublished && !ti.done && m.msgs[ti.msg].republish {
			m.ctx.dropped[ti.msg] = true
		}
		var tl *TooLargeError
		if ev.Kind == EventPublished && errors.As(ev.Err, &tl) {
			if ti := m.tokens[ev.Token]; ti != nil && ti.kind == EventPublished && !ti.done && m.msgs[ti.msg].sent && !m.msgs[ti.msg].republish {
				m.resendTooLarge(m.msgs[ti.msg], tl)
			}
		}
	}
	out := m.s.AppendTransmit(nil)
	d := codec.Decoder{Version: m.v, From: codec.RoleClient}
	for len(out) > 0 {
		p, n, err := d.Decode(out)
		if err != nil {
			m.fail("the session wrote an invalid packet (% x): %v", out, err)
		}
		m.emitted(codec.Clone(p), n)
		out = out[n:]
	}
	for {
		ev, ok := m.s.NextEvent()
		if !ok {
			break
		}
		m.event(ev)
	}
}

// end checks what the step required.
func (m *model) end() {
	c := &m.ctx
	for tok, code := range c.completes {
		if !m.tokens[tok].done {
			m.fail("publish #%d (token %d) did not complete on its acknowledgement (reason 0x%02x)", m.tokens[tok].msg, tok, byte(code))
		}
	}
	for tok := range c.lost {
		if !m.tokens[tok].done {
			m.fail("publish #%d (token %d) did not fail with ErrSessionLost when the broker lost the session", m.tokens[tok].msg, tok)
		}
	}
	for tok, n := range c.poisoned {
		if !m.tokens[tok].done {
			m.fail("publish #%d (token %d) did not fail with a *PoisonError after %d server closes in a row", m.tokens[tok].msg, tok, n)
		}
	}
	if c.pubrecFed != 0 && m.phase != mIdle && !m.emittedHas(codec.TypePubrel, c.pubrecFed) {
		m.fail("no PUBREL %d after its PUBREC [MQTT-4.3.3-4]", c.pubrecFed)
	}
	if c.pubrelFed != 0 && m.phase != mIdle && !m.emittedHas(codec.TypePubcomp, c.pubrelFed) {
		m.fail("no PUBCOMP %d after a PUBREL [MQTT-4.3.3-11]", c.pubrelFed)
	}
	if c.pong != 0 && !m.tokens[c.pong].done {
		m.fail("PINGRESP did not complete ping token %d", c.pong)
	}
	if bk := c.feedBK; bk != 0 && m.phase != mIdle {
		bm := m.b.msgs[bk]
		if bm.qos == 0 && c.deliv[bk] != 1 {
			m.fail("QoS 0 message b%d delivered %d times", bk, c.deliv[bk])
		}
		if c.deliv[bk] > 1 {
			m.fail("message b%d delivered %d times by one PUBLISH", bk, c.deliv[bk])
		}
	}
	for _, bk := range c.ackEmits {
		bm := m.b.msgs[bk]
		if bm.delivered == 0 {
			m.fail("message b%d acknowledged but never delivered to the application: lost", bk)
		}
		if !bm.appAcked && !bm.unrouted {
			m.fail("message b%d acknowledged before the application acknowledged it", bk)
		}
	}
}

func (m *model) emittedHas(t codec.Type, id uint16) bool {
	for _, p := range m.ctx.emitted {
		if p.Type() == t && packetID(p) == id {
			return true
		}
	}
	return false
}

func (m *model) emittedCount(t codec.Type) int {
	n := 0
	for _, p := range m.ctx.emitted {
		if p.Type() == t {
			n++
		}
	}
	return n
}

func packetID(p codec.Packet) uint16 {
	switch p := p.(type) {
	case *codec.Publish:
		return p.PacketID
	case *codec.Puback:
		return p.PacketID
	case *codec.Pubrec:
		return p.PacketID
	case *codec.Pubrel:
		return p.PacketID
	case *codec.Pubcomp:
		return p.PacketID
	case *codec.Subscribe:
		return p.PacketID
	case *codec.Suback:
		return p.PacketID
	case *codec.Unsubscribe:
		return p.PacketID
	case *codec.Unsuback:
		return p.PacketID
	}
	return 0
}

func (m *model) pendingEvents() int { return len(m.s.events) - m.s.evHead }

// expectQuiet checks that a step wrote nothing and reported nothing.
func (m *model) expectQuiet(what string) {
	if n := m.s.PendingTransmit(); n != 0 {
		m.fail("%s wrote %d bytes", what, n)
	}
	if n := m.pendingEvents(); n != 0 {
		m.fail("%s queued %d events: %+v", what, n, m.s.events[m.s.evHead:])
	}
}

// ---------------------------------------------------------------- client output

func (m *model) emitted(p codec.Packet, size int) {
	m.ctx.emitted = append(m.ctx.emitted, p)
	if m.phase == mIdle {
		m.fail("the session wrote %v without a connection", p)
	}
	if m.phase == mConnecting {
		switch p.Type() {
		case codec.TypeConnect:
			if !m.ctx.connecting {
				m.fail("CONNECT outside Connect")
			}
		case codec.TypeDisconnect:
		default:
			m.fail("the session wrote %v before CONNACK", p)
		}
	}
	if m.phase == mConnected && m.serverMax > 0 && size > m.serverMax {
		m.fail("%v is %d bytes, above the server's Maximum Packet Size %d [MQTT-3.2.2-15]", p, size, m.serverMax)
	}
	sentBefore := m.lastSent
	m.lastSent = m.now
	w := wirePkt{p: p}
	switch p := p.(type) {
	case *codec.Connect:
	case *codec.Publish:
		w.topic = m.emitPublish(p)
	case *codec.Pubrel:
		m.emitPubrel(p)
	case *codec.Puback:
		m.emitInboundAck(p.PacketID, 1, p.ReasonCode)
	case *codec.Pubrec:
		m.emitInboundAck(p.PacketID, 2, p.ReasonCode)
	case *codec.Pubcomp:
		if m.ctx.pubrelFed != p.PacketID {
			m.fail("PUBCOMP %d without a PUBREL", p.PacketID)
		}
		want := m.ctx.pubrelCode
		if p.ReasonCode != want && !(m.ctx.pubrelAny && p.ReasonCode == codec.ReasonPacketIdentifierNotFound && m.v == codec.V5) {
			m.fail("PUBCOMP %d with reason 0x%02x, want 0x%02x", p.PacketID, byte(p.ReasonCode), byte(want))
		}
	case *codec.Subscribe:
		m.emitNewID(p.PacketID, p)
		op := m.s.subOps[p.PacketID]
		if op == nil || len(p.Subscriptions) != 1 {
			m.fail("SUBSCRIBE %d: no operation in the session, or %d filters", p.PacketID, len(p.Subscriptions))
		}
		m.open[p.PacketID] = &idUse{kind: codec.TypeSubscribe, token: op.token, handle: op.handle, filter: p.Subscriptions[0].Filter}
		if why := m.subscribeRefusal(p.Subscriptions[0].Filter, len(p.Props.SubscriptionIDs) > 0); why != "" {
			m.fail("SUBSCRIBE %q (identifiers %v): %s", p.Subscriptions[0].Filter, p.Props.SubscriptionIDs, why)
		}
	case *codec.Unsubscribe:
		m.emitNewID(p.PacketID, p)
		m.open[p.PacketID] = &idUse{kind: codec.TypeUnsubscribe, filter: strings.Join(p.Filters, ",")}
	case *codec.Pingreq:
		if m.ctx.pingToken == 0 && len(m.pings) == 0 && m.keepAlive > 0 && m.now.Before(sentBefore.Add(m.keepAlive)) {
			m.reached("feature: PINGREQ for a silent server")
		}
		m.pings = append(m.pings, mping{at: m.now, token: m.ctx.pingToken})
		m.ctx.pingToken = 0
	case *codec.Disconnect:
	default:
		m.fail("the session wrote %v", p)
	}
	m.wire = append(m.wire, w)
}

// emitNewID checks a new flow's packet identifier [MQTT-2.2.1-3].
func (m *model) emitNewID(id uint16, p codec.Packet) {
	if u := m.open[id]; u != nil {
		m.fail("%v uses packet identifier %d, still in use by an open %v flow [MQTT-2.2.1-3]", p, id, u.kind)
	}
	if id > m.s.cfg.MaxPacketID {
		m.fail("%v uses packet identifier %d above MaxPacketID %d", p, id, m.s.cfg.MaxPacketID)
	}
}

// subscribeRefusal says why the connected server's CONNACK rules out a
// SUBSCRIBE of filter (with an identifier or not), or "".
func (m *model) subscribeRefusal(filter string, withID bool) string {
	inner := filter
	_, rest, shared := codec.ParseShared(filter)
	if shared {
		inner = rest
	}
	switch {
	case !m.wildcards && strings.ContainsAny(inner, "+#"):
		return "the server has no wildcard subscriptions (Wildcard Subscription Available 0)"
	case withID && !m.subIDsOK:
		return "the server has no subscription identifiers (Subscription Identifiers Available 0)"
	case shared && !m.sharedOK:
		return "the server has no shared subscriptions (Shared Subscription Available 0)"
	}
	return ""
}

// emitPublish checks an outgoing PUBLISH and returns its topic.
func (m *model) emitPublish(p *codec.Publish) string {
	n, ok := payloadNumber(p.Payload, 'c')
	om := m.msgs[n]
	if !ok || om == nil {
		m.fail("PUBLISH of a message the user never published: %v", p)
	}
	topic := p.Topic
	if p.Props.Has(codec.PropTopicAlias) {
		a := p.Props.TopicAlias
		if a == 0 || int(a) > m.aliasMax {
			m.fail("PUBLISH with topic alias %d, the server allows 1..%d [MQTT-3.3.2-9]", a, m.aliasMax)
		}
		if topic != "" {
			m.aliases[a] = topic
		} else if topic = m.aliases[a]; topic == "" {
			m.fail("PUBLISH with topic alias %d that has no topic on this connection [MQTT-3.3.2-12]", a)
		}
	}
	// A new PUBLISH never goes above the server's Maximum QoS
	// [MQTT-3.2.2-11]; a message sent before, still unacknowledged in a
	// resumed session, is resent at its QoS whatever this CONNACK says: the
	// server holds its packet identifier state, and [MQTT-4.4.0-1] requires
	// the resend (the session's policy, see handleConnack).
	if p.QoS > m.serverQoS && !p.Dup {
		m.fail("PUBLISH #%d at QoS %d, the server's Maximum QoS is %d [MQTT-3.2.2-11]", n, p.QoS, m.serverQoS)
	}
	if topic != om.topic || p.QoS != om.qos || p.Retain != om.retain {
		m.fail("PUBLISH of #%d on %q QoS %d retain %v, published on %q QoS %d retain %v", n, topic, p.QoS, p.Retain, om.topic, om.qos, om.retain)
	}
	if p.Retain && !m.retainOK && !p.Dup {
		m.fail("PUBLISH #%d with retain, the server does not support retained messages [MQTT-3.2.2-14]", n)
	}
	if om.done {
		m.fail("PUBLISH of #%d after its completion", n)
	}
	if om.canceled {
		m.fail("PUBLISH of #%d after Cancel said it was withdrawn", n)
	}
	if p.QoS == 0 {
		if om.sent {
			m.fail("QoS 0 message #%d sent twice", n)
		}
		om.sent = true
		return topic
	}
	id := p.PacketID
	if !p.Dup {
		if om.sent && !om.republish {
			m.fail("PUBLISH #%d sent again without DUP [MQTT-3.3.1-1]", n)
		}
		if om.republish {
			m.reached("feature: republished after a lost session")
			if om.pubrec {
				m.reached("feature: republished after its PUBREC")
			}
		}
		// Messages of a lost session go again, in their original order,
		// ahead of the messages queued after them.
		for _, k := range sortedKeys(m.msgs) {
			o := m.msgs[k]
			if o == om || !o.republish || o.done || m.ctx.dropped[o.n] {
				continue
			}
			if !om.republish {
				m.fail("new PUBLISH #%d before #%d of the lost session was published again", n, o.n)
			}
			if o.n < om.n { // QoS 1/2 messages are first sent in the order of the calls
				m.fail("PUBLISH #%d of the lost session published again before #%d, out of the original order", n, o.n)
			}
		}
		m.emitNewID(id, p)
		m.open[id] = &idUse{kind: codec.TypePublish, msg: n, token: om.token}
		m.seq++
		om.sent, om.id, om.seq, om.sentConn = true, id, m.seq, m.conn
		om.republish, om.pubrec, om.resentConn = false, false, 0
	} else {
		u := m.open[id]
		switch {
		case !om.sent || om.id != id || u == nil || u.kind != codec.TypePublish || u.msg != n:
			m.fail("DUP PUBLISH %d of #%d that is not open with that identifier", id, n)
		case !m.resumed:
			m.fail("PUBLISH #%d resent on a connection whose CONNACK had no session present [MQTT-4.4.0-1]", n)
		case om.sentConn == m.conn || om.resentConn == m.conn:
			m.fail("PUBLISH #%d resent on the connection it was already sent on [MQTT-4.4.0-1]", n)
		case om.pubrec:
			m.fail("PUBLISH #%d resent after its PUBREC and PUBREL [MQTT-4.3.3-6]", n)
		case om.seq <= m.lastResend:
			m.fail("PUBLISH #%d resent out of the original order [MQTT-4.6.0-1]", n)
		}
		om.resentConn = m.conn
		m.lastResend = om.seq
	}
	m.quota[id] = true
	if m.serverRM > 0 && len(m.quota) > m.serverRM {
		m.fail("%d unacknowledged QoS 1/2 PUBLISH packets on this connection, server Receive Maximum %d [MQTT-4.9.0-2]", len(m.quota), m.serverRM)
	}
	if w := m.window(); len(m.quota) > w {
		m.fail("%d unacknowledged QoS 1/2 PUBLISH packets on this connection, window %d (MaxInflight %d)", len(m.quota), w, m.s.cfg.MaxInflight)
	}
	return topic
}

func (m *model) emitPubrel(p *codec.Pubrel) {
	u := m.open[p.PacketID]
	if u == nil || u.kind != codec.TypePublish || !m.msgs[u.msg].pubrec {
		m.fail("PUBREL %d for no message in its PUBREL phase [MQTT-4.3.3-4]", p.PacketID)
	}
	if p.ReasonCode != 0 {
		m.fail("PUBREL %d with reason 0x%02x for a known message", p.PacketID, byte(p.ReasonCode))
	}
	om := m.msgs[u.msg]
	if m.recThisConn[om.n] {
		return // the answer to a PUBREC of this connection
	}
	switch {
	case !m.resumed:
		m.fail("PUBREL %d resent on a connection whose CONNACK had no session present", p.PacketID)
	case om.resentConn == m.conn:
		m.fail("PUBREL %d resent twice on one connection [MQTT-4.4.0-1]", p.PacketID)
	case om.seq <= m.lastResend:
		m.fail("PUBREL %d resent out of the original order [MQTT-4.6.0-1]", p.PacketID)
	}
	om.resentConn = m.conn
	m.lastResend = om.seq
}

// emitInboundAck checks a PUBACK or PUBREC for a message of the broker's.
func (m *model) emitInboundAck(y uint16, qos codec.QoS, code codec.ReasonCode) {
	f := m.b.flows[y]
	bk := m.b.lastMsg[y]
	if (f == nil || f.qos != qos) && !(qos == 1 && m.b.tainted[y] > 0) {
		m.fail("QoS %d acknowledgement %d for no message of the broker's", qos, y)
	}
	if code != 0 {
		m.fail("acknowledgement %d with reason 0x%02x", y, byte(code))
	}
	m.ctx.ackEmits = append(m.ctx.ackEmits, bk)
}

// ---------------------------------------------------------------- events

func (m *model) event(ev Event) {
	switch ev.Kind {
	case EventConnected:
		if !m.ctx.connack || m.phase != mConnected {
			m.fail("EventConnected without an accepted CONNACK")
		}
		info := ev.Info
		rm := m.serverRM
		if rm == 0 {
			rm = 65535
		}
		m.ctx.connected = true
		if info.SessionPresent != m.resumed || int(info.ReceiveMaximum) != rm {
			m.fail("ConnInfo says session present %v receive maximum %d; CONNACK said %v %d", info.SessionPresent, info.ReceiveMaximum, m.resumed, rm)
		}
	case EventClosed:
		if m.phase == mIdle {
			m.fail("a second EventClosed for one connection (%v)", ev.Err)
		}
		why := "the step does not end the connection"
		if m.ctx.closeOK != nil {
			why = m.ctx.closeOK(ev.Err)
		}
		if why != "" {
			m.fail("EventClosed(%v): %s", ev.Err, why)
		}
		if m.phase == mConnected && !m.ctx.serverClose {
			if om := m.oldestSent(); om != nil {
				om.strikes = 0 // not the server's doing: the row is broken
			}
		}
		m.ctx.closed = true
		m.endConnection()
	case EventPublished:
		m.published(ev)
	case EventMessage, EventUnrouted:
		m.delivered(ev)
	case EventSubscribed:
		ti := m.tokens[ev.Token]
		if ti == nil || ti.kind != EventSubscribed || ti.done {
			m.fail("EventSubscribed for token %d that is not a pending subscription", ev.Token)
		}
		ti.done = true
		g := m.group(ev.Token)
		switch {
		case ev.Err == nil:
			if !m.ctx.suback || len(ev.Codes) != 1 || ev.Codes[0].Failed() {
				m.fail("EventSubscribed success outside a SUBACK (codes %v)", ev.Codes)
			}
		case errors.Is(ev.Err, ErrCanceled):
			if !m.ctx.canceled[ev.Token] {
				m.fail("EventSubscribed(ErrCanceled) outside an Unsubscribe of its filter")
			}
			g.state = gDead
		default:
			if !errors.Is(ev.Err, ErrRefused) && !errors.Is(ev.Err, ErrPacketIDsExhausted) && !errors.Is(ev.Err, ErrUnsupported) {
				m.fail("EventSubscribed with an untyped error %v", ev.Err)
			}
			g.state = gDead
		}
	case EventUnsubscribed:
		ti := m.tokens[ev.Token]
		if ti == nil || ti.kind != EventUnsubscribed || ti.done {
			m.fail("EventUnsubscribed for token %d that is not a pending unsubscription", ev.Token)
		}
		if ev.Err != nil && !errors.Is(ev.Err, ErrRefused) && !errors.Is(ev.Err, ErrPacketIDsExhausted) {
			m.fail("EventUnsubscribed with an untyped error %v", ev.Err)
		}
		ti.done = true
	case EventRestoreFailed:
		if !errors.Is(ev.Err, ErrRefused) && !errors.Is(ev.Err, ErrPacketIDsExhausted) && !errors.Is(ev.Err, ErrUnsupported) {
			m.fail("EventRestoreFailed with an untyped error %v", ev.Err)
		}
		for _, g := range m.groups {
			if g.h == ev.Handle && g.state == gAlive && m.tokens[g.token].done {
				g.state = gUncertain
			}
		}
	case EventPong:
		ti := m.tokens[ev.Token]
		if ti == nil || ti.kind != EventPong || ti.done {
			m.fail("EventPong for token %d that is not a pending ping", ev.Token)
		}
		ti.done = true
		if ev.Err == nil {
			if m.ctx.pong != ev.Token || ev.RTT != m.ctx.pongRTT {
				m.fail("EventPong(token %d, rtt %v) does not answer the PINGRESP (token %d, rtt %v)", ev.Token, ev.RTT, m.ctx.pong, m.ctx.pongRTT)
			}
		} else if m.ctx.closeOK == nil {
			m.fail("EventPong(%v) without the end of the connection", ev.Err)
		}
	default:
		m.fail("unexpected event %v", ev.Kind)
	}
}

func (m *model) published(ev Event) {
	ti := m.tokens[ev.Token]
	if ti == nil || ti.kind != EventPublished || ti.done {
		m.fail("EventPublished for token %d that is not a pending publish (err %v)", ev.Token, ev.Err)
	}
	ti.done = true
	om := m.msgs[ti.msg]
	om.done = true
	if code, ok := m.ctx.completes[ev.Token]; ok {
		var re *ReasonError
		switch {
		case !code.Failed() && ev.Err != nil:
			m.fail("publish #%d failed (%v) on a successful acknowledgement", om.n, ev.Err)
		case code.Failed() && (!errors.As(ev.Err, &re) || re.Code != code):
			m.fail("publish #%d refused with 0x%02x completed with %v", om.n, byte(code), ev.Err)
		}
		om.ok = !code.Failed()
		return
	}
	if closes, ok := m.ctx.poisoned[ev.Token]; ok {
		var pe *PoisonError
		if !errors.As(ev.Err, &pe) || !errors.Is(ev.Err, ErrPoisonMessage) || pe.Closes != closes || pe.Size != om.size {
			m.fail("publish #%d (%d bytes) after %d server closes completed with %v, want a *PoisonError", om.n, om.size, closes, ev.Err)
		}
		if u := m.open[om.id]; om.qos == 2 {
			u.kind = staleUse // the broker may hold it at "PUBREC sent"
		} else {
			delete(m.open, om.id)
		}
		delete(m.quota, om.id)
		m.reached("feature: poison message failed")
		return
	}
	var tl *TooLargeError
	switch {
	case m.ctx.lost[ev.Token]:
		if !errors.Is(ev.Err, ErrSessionLost) {
			m.fail("publish #%d completed with %v when the broker lost the session", om.n, ev.Err)
		}
	case ev.Err == nil && om.qos == 0:
		if !om.sent {
			m.fail("queued QoS 0 publish #%d completed without being sent", om.n)
		}
	case errors.Is(ev.Err, ErrUnsupported) && (!om.sent || om.republish):
		// A queued message above this CONNACK's limits fails with the
		// error Publish would have returned [MQTT-3.2.2-11] [MQTT-3.2.2-14].
		if om.qos <= m.serverQoS && !(om.retain && !m.retainOK) {
			m.fail("publish #%d: %v, server maximum QoS %d, retain available %v", om.n, ev.Err, m.serverQoS, m.retainOK)
		}
	case errors.As(ev.Err, &tl) && (!om.sent || om.republish):
		if m.serverMax == 0 || tl.Max != m.serverMax || tl.Size <= tl.Max {
			m.fail("publish #%d: %v, server maximum %d", om.n, ev.Err, m.serverMax)
		}
	case errors.As(ev.Err, &tl):
		if !om.tooLarge {
			m.fail("model bug: publish #%d: %v not seen by collect", om.n, ev.Err)
		}
	default:
		m.fail("publish #%d (QoS %d, sent %v) completed with %v when nothing completes it", om.n, om.qos, om.sent, ev.Err)
	}
}

// resendTooLarge checks the failure of a message sent on an earlier
// connection, due for a resend in this resumed session, and now above the
// server's Maximum Packet Size: it cannot be resent [MQTT-3.2.2-15].
func (m *model) resendTooLarge(om *outMsg, tl *TooLargeError) {
	om.tooLarge = true
	u := m.open[om.id]
	switch {
	case m.phase != mConnected || !m.resumed:
		m.fail("publish #%d: %v outside a resumed session", om.n, tl)
	case m.serverMax == 0 || tl.Max != m.serverMax || tl.Size != om.size || tl.Size <= tl.Max:
		m.fail("publish #%d of %d bytes: %v, server maximum %d", om.n, om.size, tl, m.serverMax)
	case om.pubrec || om.sentConn == m.conn || om.resentConn == m.conn:
		m.fail("publish #%d failed with %v after it was sent on this connection", om.n, tl)
	case u == nil || u.kind != codec.TypePublish || u.msg != om.n:
		m.fail("publish #%d failed with %v, but it is not open on identifier %d", om.n, tl, om.id)
	}
	if om.qos == 2 {
		u.kind = staleUse // the broker may hold it at "PUBREC sent"
	} else {
		delete(m.open, om.id)
	}
}

func (m *model) group(tok Token) *mgroup {
	for _, g := range m.groups {
		if g.token == tok {
			return g
		}
	}
	m.fail("no group for token %d", tok)
	return nil
}

func (m *model) delivered(ev Event) {
	msg := ev.Message
	bk, ok := payloadNumber(msg.Payload, 'b')
	bm := m.b.msgs[bk]
	if !ok || bm == nil {
		m.fail("%v of a message the broker never sent: %q", ev.Kind, msg.Payload)
	}
	if msg.Topic != bm.topic || msg.QoS != bm.qos || msg.Props.TopicAlias != 0 {
		m.fail("message b%d delivered on %q QoS %d alias %d, sent on %q QoS %d", bk, msg.Topic, msg.QoS, msg.Props.TopicAlias, bm.topic, bm.qos)
	}
	switch {
	case msg.Held && ev.Kind == EventMessage && !m.ctx.heldMsgOK,
		msg.Held && ev.Kind == EventUnrouted && !m.ctx.heldUnroutedOK,
		!msg.Held && m.ctx.feedBK != bk:
		m.fail("%v of b%d (held %v) in a step that does not deliver it", ev.Kind, bk, msg.Held)
	}
	m.ctx.deliv[bk]++
	bm.delivered++
	if bm.qos == 2 && bm.delivered > 1 {
		m.fail("QoS 2 message b%d delivered %d times [MQTT-4.3.3-10]", bk, bm.delivered)
	}
	if ev.Kind == EventMessage {
		if len(msg.Targets) != 1 || msg.Reply != 0 {
			m.fail("message b%d for targets %v reply %d, want one target", bk, msg.Targets, msg.Reply)
		}
		if !m.mayMatch(msg.Targets[0], msg.Topic) {
			m.fail("message b%d on %q delivered to handle %d, which has no subscription matching it", bk, msg.Topic, msg.Targets[0])
		}
	} else if f := m.mustMatch(msg.Topic); f != "" {
		m.fail("message b%d on %q reported unrouted; the subscription %s matches it", bk, msg.Topic, f)
	}
	if (msg.QoS == 0) != (msg.Ack == 0) {
		m.fail("message b%d QoS %d with AckID %d", bk, msg.QoS, msg.Ack)
	}
	if msg.QoS > 0 {
		d := &delivery{bk: bk, ack: msg.Ack}
		if ev.Kind == EventUnrouted {
			bm.unrouted = true
			// The session acknowledges an unrouted message itself, but
			// for a held one whose time ran out: its Ack is the caller's.
			d.acked = !msg.Held
		}
		m.deliveries = append(m.deliveries, d)
	}
}

// mayMatch reports whether handle h may have a subscription matching topic.
func (m *model) mayMatch(h Handle, topic string) bool {
	for _, g := range m.groups {
		if g.h == h && g.state != gDead && topicMatch(g.filter, topic) {
			return true
		}
	}
	return false
}

// mustMatch returns a filter that surely matches topic in the registry.
func (m *model) mustMatch(topic string) string {
	for _, g := range m.groups {
		if g.state == gAlive && topicMatch(g.filter, topic) {
			return fmt.Sprintf("%q of handle %d", g.filter, g.h)
		}
	}
	return ""
}

// topicMatch matches a topic filter against a topic name [§4.7].
func topicMatch(filter, topic string) bool {
	if _, rest, ok := codec.ParseShared(filter); ok {
		filter = rest
	}
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) || f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}

func payloadNumber(b []byte, prefix byte) (int, bool) {
	if len(b) < 2 || b[0] != prefix {
		return 0, false
	}
	end := 1
	for end < len(b) && b[end] >= '0' && b[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(string(b[1:end]))
	return n, err == nil
}

// endConnection applies the end of the network connection to both sides:
// the broker reads part of what was written, the rest is lost.
func (m *model) endConnection() {
	k := len(m.wire)
	if !m.calm && k > 0 {
		k = rapid.IntRange(0, k).Draw(m.t, "packets read before the connection ends")
	}
	for _, w := range m.wire[:k] {
		m.brokerRead(w)
	}
	m.wire = nil
	m.b.endConnection()
	m.phase = mIdle
	for id, u := range m.open {
		if u.kind == codec.TypeSubscribe || u.kind == codec.TypeUnsubscribe {
			delete(m.open, id) // SUBSCRIBE and UNSUBSCRIBE do not outlive a connection
		}
	}
	for _, p := range m.pings {
		if p.token != 0 && !m.tokens[p.token].done {
			m.fail("ping token %d not completed at the end of the connection", p.token)
		}
	}
	m.pings = nil
}

// ---------------------------------------------------------------- invariants

// check runs after every action.
func (m *model) check() {
	s := m.s
	m.ctx.label = "invariants after " + m.last
	want := map[mphase]phase{mIdle: phaseIdle, mConnecting: phaseConnecting, mConnected: phaseConnected}[m.phase]
	if s.phase != want {
		m.fail("session phase %s, model %s", phaseNames[s.phase], phaseNames[want])
	}
	if n := m.pendingEvents(); n != 0 || s.PendingTransmit() != 0 {
		m.fail("undrained output")
	}
	// Identifier accounting: every identifier in use belongs to a flight or
	// an operation, and the flights are the open publishes.
	// Messages of a lost session waiting to be published again keep their
	// old identifier (and its Store record) until then.
	repub := 0
	for _, f := range s.queue[s.qhead:] {
		if f.oldID != 0 {
			repub++
		}
	}
	mrepub := 0
	for _, om := range m.msgs {
		if om.republish && !om.done {
			mrepub++
		}
	}
	if repub != mrepub {
		m.fail("the session has %d messages of a lost session to publish again, the model %d", repub, mrepub)
	}
	if s.ids.n != len(s.flights)+len(s.subOps)+len(s.stale)+repub {
		m.fail("%d packet identifiers in use, %d flights, %d subscribe operations, %d stale and %d to publish again", s.ids.n, len(s.flights), len(s.subOps), len(s.stale), repub)
	}
	// Deadline is exactly the earliest deadline of the phase.
	if want, got := m.deadline(), s.Deadline(); !want.Equal(got) {
		m.fail("Deadline() %v, want %v", got.Sub(epoch), want.Sub(epoch))
	}
	stale := 0
	for id, u := range m.open {
		if u.kind == staleUse {
			stale++
			if !slices.Contains(s.stale, id) {
				m.fail("identifier %d of failed QoS 2 publish #%d is free in the session; the broker may still hold it", id, u.msg)
			}
		}
	}
	if stale != len(s.stale) {
		m.fail("the session reserves %d stale identifiers %v, the model %d", len(s.stale), s.stale, stale)
	}
	pubs := 0
	for id, u := range m.open {
		if u.kind == codec.TypePublish {
			pubs++
			if f := s.flights[id]; f == nil || f.token != u.token {
				m.fail("open publish #%d on identifier %d is not a flight of the session", u.msg, id)
			}
		}
	}
	if pubs != len(s.flights) {
		m.fail("the session has %d flights, the broker's view %d open publishes", len(s.flights), pubs)
	}
	// Incoming state is a subset of the broker's open messages, unless the
	// broker dropped the session and the client does not know yet.
	for id := range s.inbound {
		if m.epoch == m.b.epoch && m.b.flows[id] == nil && m.b.tainted[id] == 0 {
			m.fail("the session keeps incoming identifier %d that the broker has closed", id)
		}
	}
}

// ---------------------------------------------------------------- user actions

func (m *model) actPublish(t *rapid.T) {
	qos := codec.QoS(rapid.IntRange(0, 2).Draw(t, "qos"))
	topic := rapid.SampledFrom(modelTopics).Draw(t, "topic")
	big := rapid.IntRange(0, 9).Draw(t, "big") == 0
	retain := rapid.IntRange(0, 5).Draw(t, "retain") == 0
	m.nextMsg++
	n := m.nextMsg
	payload := "c" + strconv.Itoa(n)
	if big {
		payload += "/" + strings.Repeat("x", 60)
	}
	p := &codec.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload)}
	canon := *p
	if qos > 0 {
		canon.PacketID = 1
	}
	om := &outMsg{n: n, qos: qos, retain: retain, topic: topic, size: canon.Size(m.v)}
	m.msgs[n] = om
	m.begin("Publish(#%d %q QoS %d retain %v, %d bytes)", n, topic, qos, retain, om.size)
	tok, err := m.s.Publish(m.now, p)
	var tl *TooLargeError
	var ue *UnsupportedError
	switch {
	case errors.As(err, &ue):
		if m.phase != mConnected || qos <= m.serverQoS && !(retain && !m.retainOK) {
			m.fail("Publish: %v (server maximum QoS %d, retain available %v)", err, m.serverQoS, m.retainOK)
		}
		om.done = true
	case err == nil && tok == 0:
		if qos != 0 || m.phase != mConnected {
			m.fail("Publish returned token 0 for QoS %d in phase %v", qos, m.phase)
		}
	case err == nil:
		if qos == 0 && m.phase == mConnected {
			m.fail("QoS 0 publish while connected returned token %d", tok)
		}
		om.token = tok
		m.tokens[tok] = &tokInfo{kind: EventPublished, msg: n}
	case errors.Is(err, ErrQueueFull):
		if _, q := m.s.Inflight(); q < m.s.cfg.MaxQueued {
			m.fail("ErrQueueFull with %d queued of %d", q, m.s.cfg.MaxQueued)
		}
		// Withdrawn messages hold no place in the queue.
		waiting := 0
		for _, o := range m.msgs {
			if o != om && o.token != 0 && (!o.sent || o.republish) && !o.done {
				waiting++
			}
		}
		if waiting < m.s.cfg.MaxQueued {
			m.fail("ErrQueueFull with %d messages waiting to be sent of %d", waiting, m.s.cfg.MaxQueued)
		}
		om.done = true
	case errors.As(err, &tl):
		if m.phase != mConnected || m.serverMax == 0 || tl.Max != m.serverMax || tl.Size <= m.serverMax {
			m.fail("Publish: %v (server maximum %d)", err, m.serverMax)
		}
		om.done = true
	default:
		m.fail("Publish: %v", err)
	}
	m.collect()
	m.end()
	if err == nil && qos == 0 && m.phase == mConnected && !om.sent {
		m.fail("QoS 0 publish while connected was not sent")
	}
}

func (m *model) actSubscribe(t *rapid.T) {
	h := Handle(rapid.IntRange(1, 3).Draw(t, "handle"))
	filters := modelFilters
	var id uint32
	if m.v == codec.V5 {
		filters = append(slices.Clone(modelFilters), modelShared...)
		id = uint32(rapid.SampledFrom([]int{0, 0, 1, 2, 3}).Draw(t, "subscription identifier"))
	}
	f := rapid.SampledFrom(filters).Draw(t, "filter")
	qos := codec.QoS(rapid.IntRange(0, 2).Draw(t, "subscription qos"))
	m.begin("Subscribe(handle %d, %q QoS %d, identifier %d)", h, f, qos, id)
	m.ctx.heldMsgOK = true
	wasConnected := m.phase == mConnected
	why := m.subscribeRefusal(f, id != 0)
	tok, err := m.s.Subscribe(m.now, h, []codec.Subscription{{Filter: f, QoS: qos}}, SubscribeOptions{ID: id})
	switch {
	case err == nil:
		if wasConnected && why != "" {
			m.fail("Subscribe accepted: %s", why)
		}
		m.tokens[tok] = &tokInfo{kind: EventSubscribed}
		m.groups = append(m.groups, &mgroup{token: tok, h: h, filter: f})
	case errors.Is(err, ErrUnsupported):
		if !wasConnected || why == "" {
			m.fail("Subscribe: %v (wildcards %v, identifiers %v, shared %v)", err, m.wildcards, m.subIDsOK, m.sharedOK)
		}
	case errors.Is(err, ErrPacketIDsExhausted):
		if !wasConnected || m.s.ids.n != int(m.s.cfg.MaxPacketID) {
			m.fail("Subscribe: %v with %d of %d identifiers in use", err, m.s.ids.n, m.s.cfg.MaxPacketID)
		}
	default:
		m.fail("Subscribe: %v", err)
	}
	m.collect()
	m.end()
	if got := m.emittedCount(codec.TypeSubscribe); err == nil && wasConnected != (got == 1) || got > 1 {
		m.fail("Subscribe wrote %d SUBSCRIBE packets (connected %v)", got, wasConnected)
	}
}

func (m *model) actUnsubscribe(t *rapid.T) {
	h := Handle(rapid.IntRange(1, 3).Draw(t, "handle"))
	f := rapid.SampledFrom(modelFilters).Draw(t, "filter")
	m.begin("Unsubscribe(handle %d, %q)", h, f)
	for _, g := range m.groups {
		if g.h == h && g.filter == f && g.state != gDead && !m.tokens[g.token].done {
			m.ctx.canceled[g.token] = true
		}
	}
	wasConnected := m.phase == mConnected
	tok, err := m.s.Unsubscribe(m.now, h, []string{f}, nil)
	state := gDead
	switch {
	case err == nil:
		m.tokens[tok] = &tokInfo{kind: EventUnsubscribed}
	case errors.Is(err, ErrPacketIDsExhausted):
		if !wasConnected || m.s.ids.n != int(m.s.cfg.MaxPacketID) {
			m.fail("Unsubscribe: %v with %d of %d identifiers in use", err, m.s.ids.n, m.s.cfg.MaxPacketID)
		}
		state = gUncertain
	default:
		m.fail("Unsubscribe: %v", err)
	}
	for _, g := range m.groups {
		if g.h == h && g.filter == f && g.state != gDead {
			g.state = state
		}
	}
	m.collect()
	m.end()
}

func (m *model) actAck(t *rapid.T) {
	var open []*delivery
	for _, d := range m.deliveries {
		if !d.acked {
			open = append(open, d)
		}
	}
	if len(open) == 0 {
		t.Skip("nothing to acknowledge")
	}
	d := open[rapid.IntRange(0, len(open)-1).Draw(t, "delivery")]
	m.ack(d)
}

func (m *model) ack(d *delivery) {
	m.begin("Ack(b%d)", d.bk)
	d.acked = true
	m.b.msgs[d.bk].appAcked = true
	if err := m.s.Ack(m.now, d.ack); err != nil {
		m.fail("Ack: %v", err)
	}
	m.collect()
	m.end()
	if n := len(m.ctx.emitted); n > 1 {
		m.fail("Ack wrote %d packets", n)
	}
}

func (m *model) actReack(t *rapid.T) {
	var done []*delivery
	for _, d := range m.deliveries {
		if d.acked {
			done = append(done, d)
		}
	}
	if len(done) == 0 {
		t.Skip("nothing acknowledged yet")
	}
	d := done[rapid.IntRange(0, len(done)-1).Draw(t, "delivery")]
	m.begin("Ack(b%d) again", d.bk)
	if err := m.s.Ack(m.now, d.ack); err != nil {
		m.fail("Ack: %v", err)
	}
	m.expectQuiet("acknowledging a message twice (\"does nothing\")")
}

func (m *model) actPing(*rapid.T) {
	m.begin("Ping")
	tok, err := m.s.Ping(m.now)
	switch {
	case m.phase != mConnected:
		if !errors.Is(err, ErrNotConnected) {
			m.fail("Ping without a connection: %v", err)
		}
	case err != nil:
		m.fail("Ping: %v", err)
	default:
		m.tokens[tok] = &tokInfo{kind: EventPong}
		m.ctx.pingToken = tok
	}
	m.collect()
	m.end()
	if m.phase == mConnected && m.emittedCount(codec.TypePingreq) != 1 {
		m.fail("Ping did not write one PINGREQ")
	}
}

func (m *model) actCancel(t *rapid.T) {
	var cands []*outMsg
	for _, n := range sortedKeys(m.msgs) {
		if om := m.msgs[n]; om.token != 0 && !om.done {
			cands = append(cands, om)
		}
	}
	if len(cands) == 0 {
		t.Skip("no pending publish")
	}
	om := cands[rapid.IntRange(0, len(cands)-1).Draw(t, "publish")]
	m.begin("Cancel(#%d)", om.n)
	ok := m.s.Cancel(om.token)
	m.expectQuiet("Cancel")
	if ok != !om.sent {
		m.fail("Cancel of #%d (sent %v) returned %v", om.n, om.sent, ok)
	}
	if ok {
		om.done, om.canceled = true, true
		m.tokens[om.token].done = true
	}
}

func (m *model) actDisconnect(*rapid.T) {
	m.begin("Disconnect")
	m.ctx.closeOK = func(err error) string {
		if err != nil {
			return "Disconnect ends with a nil error"
		}
		return ""
	}
	idle := m.phase == mIdle
	err := m.s.Disconnect(m.now, 0, nil)
	if idle != errors.Is(err, ErrNotConnected) || !idle && err != nil {
		m.fail("Disconnect (idle %v): %v", idle, err)
	}
	m.collect()
	m.end()
	if !idle && (!m.ctx.closed || m.emittedCount(codec.TypeDisconnect) != 1) {
		m.fail("Disconnect did not write DISCONNECT and close")
	}
}

func (m *model) actConnect(*rapid.T) {
	m.begin("Connect")
	if m.phase != mIdle {
		if err := m.s.Connect(m.now); !errors.Is(err, ErrConnected) {
			m.fail("Connect while connected: %v", err)
		}
		m.expectQuiet("a refused Connect")
		return
	}
	m.conn++
	m.phase = mConnecting
	m.connectAt, m.lastSent = m.now, m.now
	m.ctx.connecting = true
	if err := m.s.Connect(m.now); err != nil {
		m.fail("Connect: %v", err)
	}
	m.collect()
	m.end()
	if len(m.ctx.emitted) != 1 || m.ctx.emitted[0].Type() != codec.TypeConnect {
		m.fail("Connect wrote %v", m.ctx.emitted)
	}
}

// actHandshake connects at once: Connect, the broker reads CONNECT and
// answers.
func (m *model) actHandshake(t *rapid.T) {
	if m.phase != mIdle {
		t.Skip("connected")
	}
	m.actConnect(t)
	m.last = "broker reads CONNECT"
	for _, w := range m.wire {
		m.brokerRead(w)
	}
	m.wire = nil
	m.connack(t)
}

// ---------------------------------------------------------------- network and clock

func (m *model) actLose(*rapid.T) {
	m.begin("ConnectionLost")
	m.ctx.closeOK = func(err error) string {
		var te *TimeoutError
		var re *ReasonError
		if !errors.Is(err, ErrConnectionLost) || errors.As(err, &te) || errors.As(err, &re) {
			return "ConnectionLost must report ErrConnectionLost"
		}
		return ""
	}
	idle := m.phase == mIdle
	m.ctx.serverClose = true
	m.strike()
	m.s.ConnectionLost(m.now, errors.New("connection reset"))
	m.collect()
	m.end()
	if idle == m.ctx.closed {
		m.fail("ConnectionLost (idle %v) closed %v", idle, m.ctx.closed)
	}
}

func (m *model) actTick(t *rapid.T) {
	d := time.Duration(rapid.IntRange(1, 4000).Draw(t, "ms")) * time.Millisecond
	to := m.now.Add(d)
	if dl := m.s.Deadline(); !dl.IsZero() && dl.Before(to) {
		to = dl
	}
	if to.After(m.now) {
		m.now = to
	}
	m.timeout()
}

func (m *model) timeout() {
	m.begin("HandleTimeout")
	m.ctx.heldUnroutedOK = true
	s := m.s
	m.ctx.closeOK = func(err error) string {
		var te *TimeoutError
		if !errors.As(err, &te) {
			return "HandleTimeout closes with a *TimeoutError"
		}
		switch te.Waiting {
		case "PINGRESP":
			if m.phase != mConnected || len(m.pings) == 0 || m.now.Before(m.deadAt()) {
				return "no PINGREQ overdue, or something received within the ping timeout"
			}
			m.reached("feature: PINGRESP timeout")
		case "CONNACK":
			if m.phase != mConnecting || m.now.Before(m.connectAt.Add(s.cfg.ConnectTimeout)) {
				return "no CONNACK overdue"
			}
		default:
			return "unknown timeout"
		}
		return ""
	}
	s.HandleTimeout(m.now)
	m.collect()
	m.end()
	// After HandleTimeout every deadline that passed has been applied.
	if d := s.Deadline(); !d.IsZero() && !d.After(m.now) {
		m.fail("deadline %v is not after now", d.Sub(epoch))
	}
	switch m.phase {
	case mConnecting:
		if !m.now.Before(m.connectAt.Add(s.cfg.ConnectTimeout)) {
			m.fail("still connecting after the connect timeout")
		}
	case mConnected:
		if m.keepAlive > 0 && !m.now.Before(m.lastSent.Add(m.keepAlive)) {
			m.fail("nothing sent for %v, keep alive %v, and no PINGREQ [MQTT-3.1.2-23] (3.1.1) [MQTT-3.1.2-20] (5.0)", m.now.Sub(m.lastSent), m.keepAlive)
		}
		if m.keepAlive > 0 && len(m.pings) == 0 && !m.now.Before(m.lastRecv.Add(m.keepAlive)) {
			m.fail("nothing received for %v, keep alive %v, and no PINGREQ", m.now.Sub(m.lastRecv), m.keepAlive)
		}
		if len(m.pings) > 0 && !m.now.Before(m.deadAt()) {
			m.fail("PINGREQ unanswered for %v and nothing received for %v, ping timeout %v, connection still up", m.now.Sub(m.pings[0].at), m.now.Sub(m.lastRecv), m.pingTimeout)
		}
	}
}

func (m *model) actEarly(*rapid.T) {
	if d := m.s.Deadline(); !d.IsZero() && !d.After(m.now) {
		m.timeout() // a deadline is due now: not early
		return
	}
	m.begin("HandleTimeout before the deadline")
	m.s.HandleTimeout(m.now)
	m.expectQuiet("HandleTimeout before the deadline")
}

// ---------------------------------------------------------------- the broker

type bstate uint8

const (
	bSent     bstate = iota // PUBLISH sent; PUBACK or PUBREC due
	bRecd                   // PUBREC read; PUBREL to send
	bReleased               // PUBREL sent; PUBCOMP due
)

type bflow struct {
	y     uint16
	msg   int
	qos   codec.QoS
	state bstate
}

// bmsg is a message of the broker's to the client.
type bmsg struct {
	n         int
	qos       codec.QoS
	topic     string
	delivered int
	lost      bool // the broker forgot it with the session
	done      bool // the client acknowledged it completely
	appAcked  bool
	unrouted  bool
}

// bitem is a packet the broker owes the client.
type bitem struct {
	kind   codec.Type
	id     uint16
	msg    int
	codes  []codec.ReasonCode
	reason codec.ReasonCode
}

type brokerModel struct {
	hasSession bool
	up         bool
	connackDue bool
	clean      bool
	closed     bool
	pending    []bitem
	aliasesIn  map[uint16]string
	aliasesOut map[string]uint16
	stray      map[uint16]int

	received map[int]int
	got2     map[int]bool
	released map[int]bool
	in2      map[uint16]int
	subs     map[string]bool
	subIDs   map[string]uint32 // the Subscription Identifier of each subscription, if any
	flows    map[uint16]*bflow
	lastMsg  map[uint16]int
	tainted  map[uint16]int // QoS 1 duplicates sent on one connection whose PUBACK may still come
	msgs     map[int]*bmsg
	next     int
	epoch    int // sessions the broker started; the client learns of a new one at CONNACK
}

func newBrokerModel() brokerModel {
	return brokerModel{
		received: make(map[int]int), got2: make(map[int]bool), released: make(map[int]bool),
		in2: make(map[uint16]int), subs: make(map[string]bool), subIDs: make(map[string]uint32), flows: make(map[uint16]*bflow),
		lastMsg: make(map[uint16]int), tainted: make(map[uint16]int), msgs: make(map[int]*bmsg),
	}
}

func (b *brokerModel) endConnection() {
	b.up, b.connackDue, b.closed = false, false, false
	b.pending = nil
	b.aliasesIn, b.aliasesOut, b.stray = nil, nil, nil
}

// forget drops the broker's session state.
func (b *brokerModel) forget() {
	for _, f := range b.flows {
		b.msgs[f.msg].lost = true
	}
	clear(b.flows)
	clear(b.tainted)
	clear(b.in2)
	clear(b.got2) // a message of the client's lost session may come again as a new one
	clear(b.subs)
	clear(b.subIDs)
	b.hasSession = false
	b.epoch++
}

// busy counts the broker's identifiers that are not free: its quota in use.
func (b *brokerModel) busy() int {
	n := 0
	for y := uint16(1); y <= brokerMaxID; y++ {
		if b.flows[y] != nil || b.tainted[y] > 0 || b.stray[y] > 0 {
			n++
		}
	}
	return n
}

func (m *model) clientRM() int {
	if m.v == codec.V5 {
		return int(m.s.cfg.ReceiveMaximum)
	}
	return brokerMaxID
}

// brokerRead applies one packet of the client's to the broker.
func (m *model) brokerRead(w wirePkt) {
	b := &m.b
	if b.closed {
		return
	}
	switch p := w.p.(type) {
	case *codec.Connect:
		b.clean = p.CleanStart
		if p.CleanStart {
			b.forget()
		}
		b.connackDue = true
	case *codec.Publish:
		n, _ := payloadNumber(p.Payload, 'c')
		switch p.QoS {
		case 0:
			b.received[n]++
		case 1:
			b.received[n]++
			b.pending = append(b.pending, bitem{kind: codec.TypePuback, id: p.PacketID, msg: n})
		case 2:
			if cur, ok := b.in2[p.PacketID]; ok {
				if cur != n || !p.Dup {
					m.fail("broker: PUBLISH %d of #%d (dup %v) while #%d waits for its PUBREL on that identifier", p.PacketID, n, p.Dup, cur)
				}
			} else {
				if b.got2[n] {
					m.fail("broker: QoS 2 message #%d received twice as a new message", n)
				}
				b.got2[n] = true
				b.received[n]++
				b.in2[p.PacketID] = n
			}
			b.pending = append(b.pending, bitem{kind: codec.TypePubrec, id: p.PacketID, msg: n})
		}
	case *codec.Pubrel:
		it := bitem{kind: codec.TypePubcomp, id: p.PacketID}
		if n, ok := b.in2[p.PacketID]; ok {
			b.released[n] = true
			delete(b.in2, p.PacketID)
			it.msg = n
		} else if m.v == codec.V5 {
			it.reason = codec.ReasonPacketIdentifierNotFound
		}
		b.pending = append(b.pending, it)
	case *codec.Puback:
		f := b.flows[p.PacketID]
		switch {
		case f != nil && f.qos == 1:
			delete(b.flows, p.PacketID)
			b.msgs[f.msg].done = true
		case b.tainted[p.PacketID] > 0:
			b.tainted[p.PacketID]-- // the acknowledgement of a duplicate
		default:
			m.fail("broker: PUBACK %d for no message of its own", p.PacketID)
		}
	case *codec.Pubrec:
		f := b.flows[p.PacketID]
		switch {
		case f == nil || f.qos != 2:
			m.fail("broker: PUBREC %d for no QoS 2 message of its own", p.PacketID)
		case f.state == bSent:
			f.state = bRecd
			b.pending = append(b.pending, bitem{kind: codec.TypePubrel, id: p.PacketID, msg: f.msg})
		}
	case *codec.Pubcomp:
		f := b.flows[p.PacketID]
		switch {
		case b.stray[p.PacketID] > 0:
			b.stray[p.PacketID]--
		case f != nil && f.qos == 2 && f.state == bReleased:
			delete(b.flows, p.PacketID)
			b.msgs[f.msg].done = true
		default:
			m.fail("broker: PUBCOMP %d without a PUBREL", p.PacketID)
		}
	case *codec.Subscribe:
		f := p.Subscriptions[0].Filter
		code := codec.ReasonCode(p.Subscriptions[0].QoS)
		if !m.calm && rapid.IntRange(0, 5).Draw(m.t, "refuse subscription") == 0 {
			code = codec.ReasonUnspecifiedError
			if m.v == codec.V5 {
				code = codec.ReasonNotAuthorized
			}
		}
		if !code.Failed() {
			b.subs[f] = true
			b.subIDs[f] = 0 // a SUBSCRIBE replaces the subscription [MQTT-3.8.4-3]
			if len(p.Props.SubscriptionIDs) > 0 {
				b.subIDs[f] = p.Props.SubscriptionIDs[0]
			}
		}
		b.pending = append(b.pending, bitem{kind: codec.TypeSuback, id: p.PacketID, codes: []codec.ReasonCode{code}})
	case *codec.Unsubscribe:
		it := bitem{kind: codec.TypeUnsuback, id: p.PacketID}
		for _, f := range p.Filters {
			code := codec.ReasonSuccess
			if !b.subs[f] {
				code = codec.ReasonNoSubscriptionExisted
			}
			if m.v == codec.V5 && !m.calm && rapid.IntRange(0, 7).Draw(m.t, "refuse unsubscription") == 0 {
				code = codec.ReasonNotAuthorized
			}
			if !code.Failed() {
				delete(b.subs, f)
				delete(b.subIDs, f)
			}
			if m.v == codec.V5 {
				it.codes = append(it.codes, code)
			}
		}
		b.pending = append(b.pending, it)
	case *codec.Pingreq:
		b.pending = append(b.pending, bitem{kind: codec.TypePingresp})
	case *codec.Disconnect:
		b.closed = true
	default:
		m.fail("broker: unexpected %v", p)
	}
}

func (m *model) actRead(t *rapid.T) {
	if len(m.wire) == 0 {
		t.Skip("nothing written")
	}
	k := rapid.IntRange(1, len(m.wire)).Draw(t, "packets to read")
	m.ctx.label = fmt.Sprintf("broker reads %d packets", k)
	m.last = m.ctx.label
	t.Log(m.ctx.label)
	for _, w := range m.wire[:k] {
		m.brokerRead(w)
	}
	m.wire = m.wire[k:]
}

// feed hands one packet of the broker's to the session: sometimes a strict
// prefix first, which must be taken as nothing.
func (m *model) feed(p codec.Packet) {
	buf, err := codec.Append(nil, p, m.v)
	if err != nil {
		m.fail("model bug: broker packet %v does not encode: %v", p, err)
	}
	if !m.calm && len(buf) > 1 && rapid.IntRange(0, 7).Draw(m.t, "split") == 0 {
		k := rapid.IntRange(1, len(buf)-1).Draw(m.t, "prefix")
		if n, err := m.s.HandleBytes(m.now, buf[:k]); n != 0 || err != nil {
			m.fail("HandleBytes of %d of %d bytes of %v: %d, %v", k, len(buf), p, n, err)
		}
		m.expectQuiet("a partial packet")
	}
	m.lastRecv = m.now // a complete packet: a sign of life
	n, err := m.s.HandleBytes(m.now, buf)
	var re *ReasonError
	if err != nil && !(p.Type() == codec.TypeConnack && errors.As(err, &re)) {
		m.fail("HandleBytes(%v): %v", p, err)
	}
	if n != len(buf) {
		m.fail("HandleBytes(%v) used %d of %d bytes", p, n, len(buf))
	}
	m.collect()
	m.end()
}

func (m *model) actConnack(t *rapid.T) {
	if !m.b.connackDue || m.b.closed {
		t.Skip("no CONNECT to answer")
	}
	m.connack(t)
}

func (m *model) connack(t *rapid.T) {
	b := &m.b
	b.connackDue = false
	ack := &codec.Connack{}
	if !m.calm && rapid.IntRange(0, 11).Draw(t, "refuse connection") == 0 {
		ack.ReasonCode = codec.ReasonServerUnavailable
		if m.v == codec.V311 {
			ack.ReasonCode = codec.ReturnServerUnavailable
		}
		m.begin("CONNACK refused")
		m.ctx.closeOK = func(err error) string {
			var re *ReasonError
			if !errors.As(err, &re) || re.Packet != codec.TypeConnack {
				return "a refused CONNACK closes with its *ReasonError"
			}
			return ""
		}
		m.feed(ack)
		if !m.ctx.closed {
			m.fail("refused CONNACK did not close the connection")
		}
		return
	}
	present := false
	if !b.clean && b.hasSession {
		present = m.calm || rapid.Bool().Draw(t, "broker keeps the session")
	}
	ack.SessionPresent = present
	m.serverRM, m.serverMax, m.aliasMax = 0, 0, 0
	m.serverQoS, m.wildcards = 2, true
	m.subIDsOK, m.sharedOK, m.retainOK = m.v == codec.V5, true, true
	m.keepAlive = m.s.cfg.KeepAlive
	if m.v == codec.V5 && !m.calm {
		if rm := rapid.IntRange(0, 4).Draw(t, "server receive maximum"); rm > 0 {
			ack.Props.ReceiveMaximum = uint16(rm)
			m.serverRM = rm
		}
		if mx := rapid.SampledFrom([]int{0, 0, 40, 64, 128}).Draw(t, "server maximum packet size"); mx > 0 {
			ack.Props.MaximumPacketSize = uint32(mx)
			m.serverMax = mx
		}
		m.aliasMax = rapid.IntRange(0, 2).Draw(t, "server topic alias maximum")
		ack.Props.TopicAliasMaximum = uint16(m.aliasMax)
		if q := rapid.SampledFrom([]int{2, 2, 2, 1, 0}).Draw(t, "server maximum QoS"); q < 2 {
			ack.Props.MaximumQoS = byte(q)
			ack.Props.Mark(codec.PropMaximumQoS)
			m.serverQoS = codec.QoS(q)
		}
		if rapid.IntRange(0, 4).Draw(t, "no wildcard subscriptions") == 0 {
			ack.Props.WildcardSubAvailable = 0
			ack.Props.Mark(codec.PropWildcardSubscriptionAvailable)
			m.wildcards = false
		}
		if rapid.IntRange(0, 4).Draw(t, "no subscription identifiers") == 0 {
			ack.Props.SubIDAvailable = 0
			ack.Props.Mark(codec.PropSubscriptionIdentifierAvailable)
			m.subIDsOK = false
		}
		if rapid.IntRange(0, 4).Draw(t, "no shared subscriptions") == 0 {
			ack.Props.SharedSubAvailable = 0
			ack.Props.Mark(codec.PropSharedSubscriptionAvailable)
			m.sharedOK = false
		}
		if rapid.IntRange(0, 5).Draw(t, "no retain") == 0 {
			ack.Props.RetainAvailable = 0
			ack.Props.Mark(codec.PropRetainAvailable)
			m.retainOK = false
		}
		if ka := rapid.IntRange(-1, 3).Draw(t, "server keep alive"); ka >= 0 {
			ack.Props.ServerKeepAlive = uint16(ka)
			ack.Props.Mark(codec.PropServerKeepAlive)
			m.keepAlive = time.Duration(ka) * time.Second
		}
	}
	m.begin("CONNACK session present %v, receive maximum %d, maximum packet %d, alias maximum %d, keep alive %v, maximum QoS %d, wildcards %v, identifiers %v, shared %v, retain %v",
		present, m.serverRM, m.serverMax, m.aliasMax, m.keepAlive, m.serverQoS, m.wildcards, m.subIDsOK, m.sharedOK, m.retainOK)
	switch {
	case m.s.cfg.PingTimeout > 0:
		m.pingTimeout = m.s.cfg.PingTimeout
	case m.keepAlive > 0:
		m.pingTimeout = max(m.keepAlive/2, 500*time.Millisecond)
	default:
		m.pingTimeout = 30 * time.Second
	}
	if !present {
		// The broker starts a new session: everything open is gone. The
		// client fails its unfinished publishes or publishes them again.
		b.forget()
		for _, id := range sortedKeys(m.open) {
			if u := m.open[id]; u.kind == codec.TypePublish {
				if m.s.cfg.SessionLost == FailOnSessionLost {
					m.ctx.lost[u.token] = true
				} else {
					m.msgs[u.msg].republish = true
				}
			}
		}
		clear(m.open)
	}
	b.hasSession, b.up = true, true
	m.epoch = b.epoch
	m.phase = mConnected
	m.resumed = present
	m.quota = make(map[uint16]bool)
	m.aliases = make(map[uint16]string)
	m.recThisConn = make(map[int]bool)
	m.lastResend = 0
	m.ctx.connack = true
	m.feed(ack)
	if !m.ctx.connected {
		m.fail("an accepted CONNACK did not report EventConnected")
	}
	if present {
		// [MQTT-4.4.0-1]: the broker resends what the client has not
		// acknowledged.
		for _, y := range sortedKeys(b.flows) {
			if f := b.flows[y]; f.state == bSent {
				b.pending = append(b.pending, bitem{kind: codec.TypePublish, id: y, msg: f.msg})
			} else {
				b.pending = append(b.pending, bitem{kind: codec.TypePubrel, id: y, msg: f.msg})
			}
		}
	}
}

func (m *model) actRespond(t *rapid.T) {
	if len(m.b.pending) == 0 || !m.b.up {
		t.Skip("nothing to answer")
	}
	i := rapid.IntRange(0, len(m.b.pending)-1).Draw(t, "pending packet")
	it := m.b.pending[i]
	m.b.pending = slices.Delete(m.b.pending, i, i+1)
	m.respond(it)
}

// respond sends a packet the broker owes: acknowledgements in any order,
// PUBREL, resends.
func (m *model) respond(it bitem) {
	b := &m.b
	draw := func(label string, codes ...codec.ReasonCode) codec.ReasonCode {
		if m.calm || m.v == codec.V311 {
			return 0
		}
		return rapid.SampledFrom(codes).Draw(m.t, label)
	}
	switch it.kind {
	case codec.TypePuback:
		code := draw("PUBACK reason", 0, 0, 0, codec.ReasonNoMatchingSubscribers, codec.ReasonQuotaExceeded, codec.ReasonNotAuthorized)
		m.begin("PUBACK %d (#%d) reason 0x%02x", it.id, it.msg, byte(code))
		m.expectAck(it.id, it.msg, 1, code)
		m.feed(&codec.Puback{PacketID: it.id, ReasonCode: code})
	case codec.TypePubrec:
		code := draw("PUBREC reason", 0, 0, 0, codec.ReasonNoMatchingSubscribers, codec.ReasonNotAuthorized)
		m.begin("PUBREC %d (#%d) reason 0x%02x", it.id, it.msg, byte(code))
		if code.Failed() {
			delete(b.in2, it.id) // [MQTT-4.3.3-9]: the identifier is free again
			m.expectAck(it.id, it.msg, 2, code)
		} else if u := m.open[it.id]; u != nil && u.kind == codec.TypePublish && u.msg == it.msg {
			m.msgs[it.msg].pubrec = true
			m.recThisConn[it.msg] = true
			m.ctx.pubrecFed = it.id
		}
		m.feed(&codec.Pubrec{PacketID: it.id, ReasonCode: code})
	case codec.TypePubcomp:
		m.begin("PUBCOMP %d reason 0x%02x", it.id, byte(it.reason))
		if u := m.open[it.id]; u != nil && u.kind == codec.TypePublish && m.msgs[u.msg].pubrec {
			m.expectAck(it.id, u.msg, 2, 0)
		}
		m.feed(&codec.Pubcomp{PacketID: it.id, ReasonCode: it.reason})
	case codec.TypeSuback:
		m.begin("SUBACK %d %v", it.id, it.codes)
		if u := m.open[it.id]; u == nil || u.kind != codec.TypeSubscribe {
			m.fail("model bug: SUBACK %d for no SUBSCRIBE", it.id)
		}
		delete(m.open, it.id)
		m.ctx.suback = true
		m.feed(&codec.Suback{PacketID: it.id, ReasonCodes: it.codes})
	case codec.TypeUnsuback:
		m.begin("UNSUBACK %d %v", it.id, it.codes)
		if u := m.open[it.id]; u == nil || u.kind != codec.TypeUnsubscribe {
			m.fail("model bug: UNSUBACK %d for no UNSUBSCRIBE", it.id)
		}
		delete(m.open, it.id)
		m.feed(&codec.Unsuback{PacketID: it.id, ReasonCodes: it.codes})
	case codec.TypePingresp:
		m.begin("PINGRESP")
		if len(m.pings) > 0 {
			if p := m.pings[0]; p.token != 0 {
				m.ctx.pong, m.ctx.pongRTT = p.token, m.now.Sub(p.at)
			}
			m.pings = m.pings[1:]
		}
		m.feed(&codec.Pingresp{})
	case codec.TypePubrel:
		f := b.flows[it.id]
		if f == nil || f.msg != it.msg || f.state == bSent {
			return // overtaken
		}
		m.begin("PUBREL %d (b%d)", it.id, it.msg)
		m.ctx.pubrelFed = it.id
		m.ctx.pubrelAny = f.state == bReleased // a resend: the client may have completed it
		f.state = bReleased
		m.feed(&codec.Pubrel{PacketID: it.id})
	case codec.TypePublish:
		f := b.flows[it.id]
		if f == nil || f.msg != it.msg || f.state != bSent {
			return // overtaken
		}
		m.sendBrokerPublish(f, true)
	default:
		m.fail("model bug: pending %v", it.kind)
	}
}

// expectAck sets up the completion an acknowledgement of the broker's must
// bring: the open publish on that identifier, which must be the message the
// broker acknowledges.
func (m *model) expectAck(id uint16, msg int, qos codec.QoS, code codec.ReasonCode) {
	u := m.open[id]
	if u == nil || u.kind != codec.TypePublish {
		return // a stray acknowledgement: ignored
	}
	if u.msg != msg && msg != 0 {
		m.fail("identifier %d is open for #%d, the broker acknowledges #%d: reused while open [MQTT-2.2.1-3]", id, u.msg, msg)
	}
	if m.msgs[u.msg].qos != qos {
		m.fail("model bug: QoS %d acknowledgement for #%d of QoS %d", qos, u.msg, m.msgs[u.msg].qos)
	}
	m.ctx.completes[u.token] = code
	delete(m.open, id)
	delete(m.quota, id)
}

func (m *model) actBrokerPublish(t *rapid.T) {
	b := &m.b
	if !b.up {
		t.Skip("not connected")
	}
	qos := codec.QoS(rapid.IntRange(0, 2).Draw(t, "broker qos"))
	var y uint16
	if qos > 0 {
		if b.busy() >= m.clientRM() {
			t.Skip("the client's receive maximum is reached")
		}
		var free []uint16
		for id := uint16(1); id <= brokerMaxID; id++ {
			if b.flows[id] == nil && b.tainted[id] == 0 && b.stray[id] == 0 {
				free = append(free, id)
			}
		}
		y = rapid.SampledFrom(free).Draw(t, "broker packet identifier")
	}
	topics := modelTopics
	var matching []string
	for _, tp := range modelTopics {
		for _, f := range sortedKeys(b.subs) {
			if topicMatch(f, tp) {
				matching = append(matching, tp)
				break
			}
		}
	}
	if len(matching) > 0 && rapid.Bool().Draw(t, "subscribed topic") {
		topics = matching
	}
	b.next++
	bm := &bmsg{n: b.next, qos: qos, topic: rapid.SampledFrom(topics).Draw(t, "broker topic")}
	b.msgs[bm.n] = bm
	f := &bflow{y: y, msg: bm.n, qos: qos}
	if qos > 0 {
		b.flows[y] = f
		b.lastMsg[y] = bm.n
	}
	m.sendBrokerPublish(f, false)
}

func (m *model) sendBrokerPublish(f *bflow, dup bool) {
	b := &m.b
	bm := b.msgs[f.msg]
	p := &codec.Publish{Topic: bm.topic, QoS: f.qos, PacketID: f.y, Dup: dup, Payload: []byte("b" + strconv.Itoa(bm.n))}
	// The identifiers of every matching subscription that has one
	// [MQTT-3.3.4-3] [MQTT-3.3.4-4].
	for _, sf := range sortedKeys(b.subs) {
		if id := b.subIDs[sf]; id != 0 && topicMatch(sf, bm.topic) && !slices.Contains(p.Props.SubscriptionIDs, id) {
			p.Props.SubscriptionIDs = append(p.Props.SubscriptionIDs, id)
		}
	}
	if max := int(m.s.cfg.TopicAliasMaximum); max > 0 && !m.calm {
		if a := rapid.IntRange(0, max).Draw(m.t, "broker topic alias"); a > 0 {
			if b.aliasesOut == nil {
				b.aliasesOut = make(map[string]uint16)
			}
			p.Props.TopicAlias = uint16(a)
			if b.aliasesOut[bm.topic] == uint16(a) && rapid.Bool().Draw(m.t, "alias only") {
				p.Topic = ""
			} else {
				for tp, x := range b.aliasesOut {
					if x == uint16(a) {
						delete(b.aliasesOut, tp)
					}
				}
				b.aliasesOut[bm.topic] = uint16(a)
			}
		}
	}
	m.begin("broker PUBLISH b%d %q QoS %d id %d dup %v alias %d", bm.n, bm.topic, f.qos, f.y, dup, p.Props.TopicAlias)
	m.ctx.feedBK = bm.n
	m.feed(p)
}

// actBrokerDup sends a duplicate on the same connection, which MQTT 3.1.1
// allows (5.0 forbids it [MQTT-4.4.0-1]). A QoS 1 duplicate may come back
// as a second message, so its identifier stays busy until it is answered.
func (m *model) actBrokerDup(t *rapid.T) {
	b := &m.b
	if !b.up {
		t.Skip("not connected")
	}
	var cands []uint16
	for _, y := range sortedKeys(b.flows) {
		if b.flows[y].state == bSent {
			cands = append(cands, y)
		}
	}
	if len(cands) == 0 {
		t.Skip("no unacknowledged message")
	}
	f := b.flows[rapid.SampledFrom(cands).Draw(t, "duplicate")]
	if f.qos == 1 {
		b.tainted[f.y]++
	}
	m.sendBrokerPublish(f, true)
}

// actStray sends acknowledgements nothing asked for: PUBACK or PUBCOMP for
// a free identifier of the client's (ignored), PUBREL for one of the
// broker's the client never saw (answered with PUBCOMP), SUBACK or UNSUBACK
// for a free identifier, PINGRESP with no PINGREQ.
func (m *model) actStray(t *rapid.T) {
	b := &m.b
	if !b.up {
		t.Skip("not connected")
	}
	kind := rapid.IntRange(0, 3).Draw(t, "stray kind")
	switch kind {
	case 0, 1:
		var free []uint16
		for id := uint16(1); id <= m.s.cfg.MaxPacketID; id++ {
			if m.open[id] == nil {
				free = append(free, id)
			}
		}
		if len(free) == 0 {
			t.Skip("no free identifier")
		}
		id := rapid.SampledFrom(free).Draw(t, "stray identifier")
		var p codec.Packet
		switch rapid.IntRange(0, 3).Draw(t, "stray packet") {
		case 0:
			p = &codec.Puback{PacketID: id}
		case 1:
			p = &codec.Pubcomp{PacketID: id}
		case 2:
			p = &codec.Suback{PacketID: id, ReasonCodes: []codec.ReasonCode{0}}
		default:
			p = &codec.Unsuback{PacketID: id}
			if m.v == codec.V5 {
				p = &codec.Unsuback{PacketID: id, ReasonCodes: []codec.ReasonCode{0}}
			}
		}
		m.begin("stray %v", p)
		m.feed(p)
		if len(m.ctx.emitted) != 0 {
			m.fail("a stray acknowledgement was answered with %v", m.ctx.emitted)
		}
	case 2:
		var free []uint16
		for y := uint16(1); y <= brokerMaxID; y++ {
			if b.flows[y] == nil && b.tainted[y] == 0 {
				free = append(free, y)
			}
		}
		if len(free) == 0 {
			t.Skip("no free identifier")
		}
		y := rapid.SampledFrom(free).Draw(t, "stray PUBREL identifier")
		if b.stray == nil {
			b.stray = make(map[uint16]int)
		}
		b.stray[y]++
		m.begin("stray PUBREL %d", y)
		m.ctx.pubrelFed = y
		if m.v == codec.V5 {
			m.ctx.pubrelCode = codec.ReasonPacketIdentifierNotFound
		}
		m.feed(&codec.Pubrel{PacketID: y})
	default:
		if len(m.pings) > 0 {
			t.Skip("a PINGREQ is outstanding")
		}
		m.begin("unsolicited PINGRESP")
		m.feed(&codec.Pingresp{})
		if len(m.ctx.emitted) != 0 {
			m.fail("an unsolicited PINGRESP was answered with %v", m.ctx.emitted)
		}
	}
}

func (m *model) actBrokerDisconnect(t *rapid.T) {
	if !m.b.up {
		t.Skip("not connected")
	}
	code := rapid.SampledFrom([]codec.ReasonCode{codec.ReasonServerShuttingDown, codec.ReasonAdministrativeAction}).Draw(t, "disconnect reason")
	m.begin("server DISCONNECT 0x%02x", byte(code))
	m.ctx.closeOK = func(err error) string {
		var re *ReasonError
		if !errors.As(err, &re) || re.Packet != codec.TypeDisconnect || re.Code != code {
			return "a server DISCONNECT closes with its *ReasonError"
		}
		return ""
	}
	m.ctx.serverClose = true
	m.strike()
	m.feed(&codec.Disconnect{ReasonCode: code})
	if !m.ctx.closed || len(m.ctx.emitted) != 0 {
		m.fail("server DISCONNECT: closed %v, wrote %v", m.ctx.closed, m.ctx.emitted)
	}
}

// ---------------------------------------------------------------- the end

// settle lets a well-behaved broker, network and application run until
// nothing is left to do, then checks that nothing was lost or left hanging.
func (m *model) settle() {
	m.calm = true
	m.ctx.label = "settling"
	m.t.Log("settling")
	// Stuck: only keep alive traffic for longer than any timer of the
	// session's (hold, ping) could need.
	patience := m.s.cfg.HoldTimeout + m.s.cfg.PingTimeout + m.s.cfg.ConnectTimeout + 10*time.Second
	same, last, since := 0, "", m.now
	for range settleRounds {
		if m.quiet() {
			break
		}
		if d := m.signature(); d == last {
			same++
		} else {
			same, last, since = 0, d, m.now
		}
		if same > 16 && m.now.Sub(since) > patience {
			m.fail("stuck with a well-behaved broker: %s", m.describe())
		}
		switch {
		case m.phase == mIdle:
			m.actConnect(m.t)
		case len(m.wire) > 0:
			for _, w := range m.wire {
				m.brokerRead(w)
			}
			m.wire = nil
		case m.b.connackDue:
			m.connack(m.t)
		case len(m.b.pending) > 0 && m.b.up:
			it := m.b.pending[0]
			m.b.pending = m.b.pending[1:]
			m.respond(it)
		case m.nextUnacked() != nil:
			m.ack(m.nextUnacked())
		default:
			d := m.s.Deadline()
			if d.IsZero() {
				m.fail("stuck: nothing to do and no deadline, but not quiescent: %s", m.describe())
			}
			m.now = d
			m.timeout()
		}
		m.check()
	}
	if !m.quiet() {
		m.fail("not quiescent after %d rounds of a well-behaved broker: %s", settleRounds, m.describe())
	}
	// Nothing lost.
	for _, n := range sortedKeys(m.b.msgs) {
		if bm := m.b.msgs[n]; bm.qos > 0 && !bm.lost && bm.delivered == 0 {
			m.fail("QoS %d message b%d never delivered and its session was not lost", bm.qos, n)
		}
	}
	// At least once: a publish that completed on a successful
	// acknowledgement reached the broker, across session losses.
	for _, n := range sortedKeys(m.msgs) {
		if om := m.msgs[n]; om.ok && m.b.received[n] == 0 {
			m.fail("publish #%d completed successfully but the broker never received it", n)
		}
	}
	// The session's subscriptions are subscriptions of the broker's.
	for _, f := range sortedKeys(m.s.filterRefs) {
		if !m.b.subs[f] {
			m.fail("the session routes %q, which the broker does not have (it has %v): messages for it never come", f, sortedKeys(m.b.subs))
		}
	}
	// Identifiers of failed QoS 2 resends stay reserved while the broker
	// keeps the session (see failResend); nothing else may be left.
	if u, q := m.s.Inflight(); u != 0 || q != 0 || m.s.ids.n != len(m.s.stale) || len(m.s.inbound) != 0 {
		m.fail("quiescent session holds %d flights, %d queued, %d identifiers (%d stale), %d incoming", u, q, m.s.ids.n, len(m.s.stale), len(m.s.inbound))
	}
}

// signature sums up the state apart from keep alive traffic.
func (m *model) signature() string {
	n := 0
	for _, w := range m.wire {
		if w.p.Type() != codec.TypePingreq {
			n++
		}
	}
	for _, it := range m.b.pending {
		if it.kind != codec.TypePingresp {
			n++
		}
	}
	u := 0
	if m.nextUnacked() != nil {
		u = 1
	}
	return fmt.Sprintf("%d %d %v %v %s", n, u, m.phase, m.b.connackDue, m.describe())
}

func (m *model) nextUnacked() *delivery {
	for _, d := range m.deliveries {
		if !d.acked {
			return d
		}
	}
	return nil
}

func (m *model) quiet() bool {
	return m.phase == mConnected && len(m.wire) == 0 && !m.b.connackDue && len(m.b.pending) == 0 &&
		m.nextUnacked() == nil && m.describe() == ""
}

// describe lists what is still open.
func (m *model) describe() string {
	var open []string
	for _, tok := range sortedKeys(m.tokens) {
		if ti := m.tokens[tok]; !ti.done {
			open = append(open, fmt.Sprintf("%v token %d (#%d)", ti.kind, tok, ti.msg))
		}
	}
	for _, y := range sortedKeys(m.b.flows) {
		f := m.b.flows[y]
		open = append(open, fmt.Sprintf("broker flow %d (b%d QoS %d state %d)", y, f.msg, f.qos, f.state))
	}
	if len(m.s.held) > 0 {
		open = append(open, fmt.Sprintf("%d held messages", len(m.s.held)))
	}
	return strings.Join(open, ", ")
}

func sortedKeys[K interface {
	~int | ~uint16 | ~uint64 | ~string
}, V any](mp map[K]V) []K {
	keys := make([]K, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// window is the most QoS 1/2 PUBLISH packets in flight on this connection:
// the server's Receive Maximum on 5.0, 20 on 3.1.1, capped (5.0) or set
// (3.1.1) by Config.MaxInflight.
func (m *model) window() int {
	w := m.serverRM
	if w == 0 {
		w = 65535
	}
	if m.v == codec.V311 {
		w = 20
	}
	if mi := m.s.cfg.MaxInflight; mi > 0 && (m.v == codec.V311 || mi < w) {
		w = mi
	}
	return w
}

// deadAt is when the connection is dead with a PINGREQ outstanding: the
// ping timeout after the later of the oldest PINGREQ and the last packet.
func (m *model) deadAt() time.Time {
	t := m.pings[0].at
	if m.lastRecv.After(t) {
		t = m.lastRecv
	}
	return t.Add(m.pingTimeout)
}

// deadline is the session's next deadline as the model sees it.
func (m *model) deadline() time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	switch m.phase {
	case mConnecting:
		earliest(m.connectAt.Add(m.s.cfg.ConnectTimeout))
	case mConnected:
		if m.keepAlive > 0 {
			earliest(m.lastSent.Add(m.keepAlive))
			if len(m.pings) == 0 {
				earliest(m.lastRecv.Add(m.keepAlive))
			}
		}
		if len(m.pings) > 0 {
			earliest(m.deadAt())
		}
		if m.s.holding { // the hold window is the router's business, not modelled here
			earliest(m.s.holdDeadline)
		}
	}
	return d
}

// oldestSent is the message Config.PoisonCloses would blame for the end of
// this connection: the oldest open publish (re)sent as PUBLISH on it and
// still waiting for PUBACK or PUBREC.
func (m *model) oldestSent() *outMsg {
	var best *outMsg
	for _, u := range m.open {
		if u.kind != codec.TypePublish {
			continue
		}
		om := m.msgs[u.msg]
		if om.pubrec || (om.sentConn != m.conn && om.resentConn != m.conn) {
			continue
		}
		if best == nil || om.seq < best.seq {
			best = om
		}
	}
	return best
}

// strike applies a server close of a connection that reached CONNACK.
func (m *model) strike() {
	limit := m.s.cfg.PoisonCloses
	if m.phase != mConnected || limit < 0 {
		return
	}
	om := m.oldestSent()
	if om == nil {
		return
	}
	om.strikes++
	if om.strikes >= limit {
		m.ctx.poisoned[om.token] = om.strikes
	}
}
