package session

import (
	"bytes"
	"hash/crc32"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Incoming publishes [§4.3]. Every QoS 1/2 message holds one unit of our
// Receive Maximum from its arrival until its PUBACK (QoS 1) or PUBCOMP
// (QoS 2) is sent [MQTT-4.9.0-2]; more than that many is a protocol error
// of the server (DISCONNECT 0x93). A message is acknowledged when the caller
// calls Ack: the client does so once the message sits in a subscription's
// queue (or when the application acknowledges it), so the acknowledgement
// is the backpressure. QoS 2 messages are delivered once, on their PUBLISH;
// a repeat with the same identifier before the PUBREL is answered (PUBREC,
// once acknowledged) but not delivered again [MQTT-4.3.3-10]. A QoS 1 repeat
// of a message still waiting for Ack is not delivered twice either.

type inState uint8

const (
	inDelivered inState = iota // delivered; Ack due
	inHeld                     // resumed session: waiting for a subscription; not acknowledged
	inAcked                    // Ack came while disconnected: PUBACK / PUBREC due on reconnect
	inReceived                 // QoS 2: PUBREC sent, PUBREL due
)

type inMsg struct {
	id    uint16
	qos   codec.QoS
	state inState
	epoch uint64
	conn  uint64 // the connection it arrived on (Session.connCount)
	// sum fingerprints a QoS 2 message's topic and payload (see
	// forgotten); hasSum is false for identifiers restored from a Store.
	sum    uint32
	hasSum bool
}

type heldMsg struct {
	id  uint16
	msg Message // owns its memory
}

type replyWait struct {
	corr  []byte
	token Token
}

func (s *Session) newInMsg() *inMsg {
	if n := len(s.inPool); n > 0 {
		m := s.inPool[n-1]
		s.inPool = s.inPool[:n-1]
		return m
	}
	return &inMsg{}
}

func (s *Session) freeInMsg(m *inMsg) {
	*m = inMsg{}
	s.inPool = append(s.inPool, m)
}

// ackID names one incoming message: its epoch (unique to it, see
// handlePublish) and its packet identifier.
func (s *Session) ackID(m *inMsg) AckID { return AckID(m.epoch<<16 | uint64(m.id)) }

// resolveAlias turns a topic alias into its topic [§3.3.2.3.4]: an alias
// of 0 or above our Topic Alias Maximum, or one without a mapping on this
// connection, is a protocol error (DISCONNECT 0x94).
func (s *Session) resolveAlias(p *codec.Publish) (string, *ProtocolError) {
	if !p.Props.Present.Has(codec.PropTopicAlias) {
		return p.Topic, nil
	}
	a := int(p.Props.TopicAlias)
	if a == 0 || a > int(s.cfg.TopicAliasMaximum) {
		return "", remoteErr(codec.ReasonTopicAliasInvalid, "MQTT-3.3.2-9", "topic alias "+itoa(a)+" is outside 1.."+itoa(int(s.cfg.TopicAliasMaximum)))
	}
	for len(s.aliasIn) < a {
		s.aliasIn = append(s.aliasIn, nil)
		s.aliasInN = append(s.aliasInN, false)
	}
	if p.Topic != "" {
		s.aliasIn[a-1] = append(s.aliasIn[a-1][:0], p.Topic...)
		s.aliasInN[a-1] = true
		return p.Topic, nil
	}
	if !s.aliasInN[a-1] {
		return "", remoteErr(codec.ReasonTopicAliasInvalid, "MQTT-3.3.2-12", "topic alias "+itoa(a)+" has no topic on this connection")
	}
	return unsafeString(s.aliasIn[a-1]), nil
}

func (s *Session) handlePublish(now time.Time, p *codec.Publish) error {
	topic, perr := s.resolveAlias(p)
	if perr != nil {
		return s.fail(now, perr)
	}
	msg := s.inMsg()
	targets := msg.Targets[:0]
	msg.Publish = *p
	msg.Topic = topic
	msg.Props.TopicAlias = 0
	msg.Props.Present &^= 1 << codec.PropTopicAlias
	msg.Targets, msg.Reply, msg.Ack, msg.Held = targets, 0, 0, false

	if p.QoS == codec.AtMostOnce {
		s.deliver(msg)
		return nil
	}
	if i := slices.Index(s.resumeAcks, p.PacketID); i >= 0 {
		// We sent a PUBACK on this connection for this identifier, for a
		// message that arrived on an earlier connection of the session.
		// The server may have resent that message (DUP) after the CONNACK,
		// before reading our PUBACK: the PUBACK answers the resend too, and
		// delivering it again would leave a second acknowledgement due,
		// which the server could take for one of a new message on the same
		// identifier. A PUBLISH without DUP is a new message: the server
		// had our PUBACK.
		s.resumeAcks = slices.Delete(s.resumeAcks, i, i+1)
		if p.Dup && p.QoS == codec.AtLeastOnce && s.inbound[p.PacketID] == nil {
			return nil
		}
	}
	if m := s.inbound[p.PacketID]; m != nil {
		if !forgotten(m, topic, p) {
			return s.duplicate(now, m, p)
		}
		// The server has forgotten the open exchange: release it as its
		// PUBREL would have, and take this PUBLISH as the new message it is.
		if err := s.release(now, m); err != nil {
			return err
		}
	}
	if len(s.inbound) >= int(s.cfg.ReceiveMaximum) {
		return s.fail(now, remoteErr(codec.ReasonReceiveMaximumExceeded, "MQTT-3.3.4-9",
			"more than "+itoa(int(s.cfg.ReceiveMaximum))+" unacknowledged QoS 1/2 messages"))
	}
	m := s.newInMsg()
	// Every message gets an epoch of its own, so that its AckID names this
	// delivery only: the server reuses a packet identifier as soon as it
	// has our PUBACK (or PUBCOMP), and an Ack of the earlier message (a
	// second Ack, or one of a message reported unrouted and acknowledged by
	// the session) must not acknowledge the new one before the application
	// has it.
	s.inEpoch++
	m.id, m.qos, m.epoch, m.conn = p.PacketID, p.QoS, s.inEpoch, s.connCount
	if p.QoS == codec.ExactlyOnce {
		m.sum, m.hasSum = fingerprint(topic, p.Payload), true
	}
	s.inbound[m.id] = m
	s.route(msg)
	switch {
	case len(msg.Targets) > 0 || msg.Reply != 0:
		m.state = inDelivered
		msg.Ack = s.ackID(m)
		s.push(Event{Kind: EventMessage, Message: msg})
	case s.holding:
		m.state = inHeld
		h := &heldMsg{id: m.id}
		h.msg.Publish = *msg.Publish.Clone()
		s.held = append(s.held, h)
		if s.holdDeadline.IsZero() {
			s.holdDeadline = now.Add(s.cfg.HoldTimeout)
		}
	default:
		m.state = inDelivered
		msg.Ack = s.ackID(m)
		s.push(Event{Kind: EventUnrouted, Message: msg})
		return s.ack(now, m)
	}
	return nil
}

// duplicate handles a PUBLISH whose identifier is already in use
// [MQTT-4.3.3-10]: never delivered twice; acknowledged again once the
// application acknowledged it.
func (s *Session) duplicate(now time.Time, m *inMsg, p *codec.Publish) error {
	if m.qos != p.QoS {
		return s.fail(now, remoteErr(codec.ReasonPacketIdentifierInUse, "MQTT-2.2.1-4",
			"packet identifier "+itoa(int(m.id))+" reused while its QoS "+itoa(int(m.qos))+" exchange is open"))
	}
	switch m.state {
	case inReceived:
		return s.sendAck(now, codec.TypePubrec, m.id, 0)
	case inAcked:
		return s.ack(now, m)
	}
	return nil // delivered or held: the first copy is still waiting for Ack
}

// forgotten reports whether a QoS 2 PUBLISH with the identifier of an
// exchange we hold at "PUBREC sent" is a new message rather than a
// re-delivery. The rule is [MQTT-4.3.3-10]: until the PUBREL, a PUBLISH with
// the same identifier is answered and not delivered again. A sender sets DUP
// on every re-delivery [MQTT-3.3.1-1], but a broker restarted from a stale
// save may resend with DUP clear (Mosquitto 2.0 after kill -9 does), so DUP
// alone decides nothing. What does decide is the content: a sender never
// reuses an identifier before PUBCOMP [MQTT-2.2.1-3], so a PUBLISH with
// DUP clear and a different topic or payload can only be a new message from
// a server that lost the exchange; dropping it would lose that message
// silently, and delivering it cannot duplicate the old one. The same topic
// and payload, or no fingerprint (an identifier restored from a Store),
// keep the rule.
func forgotten(m *inMsg, topic string, p *codec.Publish) bool {
	return !p.Dup && p.QoS == codec.ExactlyOnce && m.qos == codec.ExactlyOnce && m.state == inReceived &&
		m.hasSum && m.sum != fingerprint(topic, p.Payload)
}

// castagnoli is the CRC-32C table; the hash runs in hardware on amd64 and
// arm64, at several bytes per cycle.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// topicEnd separates the topic from the payload in a fingerprint.
var topicEnd = [1]byte{0}

// fingerprint is a checksum of a message's topic and payload, to tell a
// resent QoS 2 message from a new one (forgotten).
func fingerprint(topic string, payload []byte) uint32 {
	h := crc32.Update(0, castagnoli, unsafe.Slice(unsafe.StringData(topic), len(topic)))
	h = crc32.Update(h, castagnoli, topicEnd[:])
	return crc32.Update(h, castagnoli, payload)
}

// route fills msg.Targets, or msg.Reply for a waiting request.
func (s *Session) route(msg *Message) {
	if tok := s.matchReply(msg.Topic, msg.Props.CorrelationData, msg.Props.Has(codec.PropCorrelationData)); tok != 0 {
		msg.Reply = tok
		return
	}
	msg.Targets = s.router.route(msg.Topic, msg.Props.SubscriptionIDs, s.cfg.Routing, msg.Targets[:0])
}

// deliver routes and reports a QoS 0 message.
func (s *Session) deliver(msg *Message) {
	s.route(msg)
	if len(msg.Targets) > 0 || msg.Reply != 0 {
		s.push(Event{Kind: EventMessage, Message: msg})
		return
	}
	s.push(Event{Kind: EventUnrouted, Message: msg})
}

// Ack acknowledges an incoming QoS 1 or 2 message: PUBACK for QoS 1, PUBREC
// for QoS 2 (the PUBCOMP follows the server's PUBREL by itself). Acking a
// message twice, a message of an earlier session, or AckID 0 does nothing.
// While disconnected, the acknowledgement is sent after a reconnect that
// resumes the session. It returns a store error, if any.
func (s *Session) Ack(now time.Time, id AckID) error {
	if id == 0 {
		return nil
	}
	m := s.inbound[uint16(id)]
	if m == nil || m.epoch != uint64(id)>>16 || m.state != inDelivered {
		return nil
	}
	if s.phase != phaseConnected {
		m.state = inAcked
		return nil
	}
	return s.ack(now, m)
}

// ack sends the acknowledgement of an incoming message.
func (s *Session) ack(now time.Time, m *inMsg) error {
	if m.qos == codec.AtLeastOnce {
		if m.conn != s.connCount {
			s.resumeAcks = append(s.resumeAcks, m.id) // see handlePublish
		}
		delete(s.inbound, m.id)
		id := m.id
		s.freeInMsg(m)
		return s.sendAck(now, codec.TypePuback, id, 0)
	}
	if st := s.cfg.Store; st != nil {
		if err := st.PutInbound(m.id); err != nil {
			return s.storeFailed(now, err)
		}
	}
	m.state = inReceived
	return s.sendAck(now, codec.TypePubrec, m.id, 0)
}

// resumeInbound sends the acknowledgements that were held back while the
// connection was down, and opens the window in which messages of the
// resumed session wait for their subscription.
func (s *Session) resumeInbound(now time.Time) {
	for _, m := range s.inbound {
		if m.state == inAcked {
			if err := s.ack(now, m); err != nil {
				return
			}
		}
	}
	s.holding = true
	s.holdDeadline = time.Time{}
}

// handlePubrel completes an incoming QoS 2 message [MQTT-4.3.3-11]. A PUBREL
// for an identifier we do not know is answered with PUBCOMP, reason 0x92 on
// 5.0, never treated as fatal: the server may repeat it after a reconnect.
func (s *Session) handlePubrel(now time.Time, p *codec.Pubrel) error {
	m := s.inbound[p.PacketID]
	id := p.PacketID
	if m == nil || m.qos != codec.ExactlyOnce {
		var rc codec.ReasonCode
		if s.v == codec.V5 {
			rc = codec.ReasonPacketIdentifierNotFound
		}
		return s.sendAck(now, codec.TypePubcomp, id, rc)
	}
	if m.state != inReceived {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-4.3.3-9", "PUBREL before our PUBREC"))
	}
	if err := s.release(now, m); err != nil {
		return err
	}
	return s.sendAck(now, codec.TypePubcomp, id, 0)
}

// release ends an incoming QoS 2 exchange: the identifier is free again.
func (s *Session) release(now time.Time, m *inMsg) error {
	id := m.id
	delete(s.inbound, id)
	s.freeInMsg(m)
	if st := s.cfg.Store; st != nil {
		if err := st.DeleteInbound(id); err != nil {
			return s.storeFailed(now, err)
		}
	}
	return nil
}

// releaseHeld delivers the held messages that now have a subscription.
func (s *Session) releaseHeld() {
	k := 0
	for _, h := range s.held {
		m := s.inbound[h.id]
		if m == nil || m.state != inHeld {
			continue
		}
		s.route(&h.msg)
		if len(h.msg.Targets) > 0 || h.msg.Reply != 0 {
			m.state = inDelivered
			h.msg.Ack, h.msg.Held = s.ackID(m), true
			s.push(Event{Kind: EventMessage, Message: &h.msg})
			continue
		}
		s.held[k] = h
		k++
	}
	clear(s.held[k:])
	s.held = s.held[:k]
	if k == 0 {
		s.holdDeadline = time.Time{}
	}
}

// expireHeld ends the waiting window: held messages that still have no
// subscription are reported unrouted, with Held set and their Ack, which
// the caller gives once it has handed them on (nothing is acknowledged
// that nobody was given).
func (s *Session) expireHeld(now time.Time) {
	s.releaseHeld()
	for _, h := range s.held {
		m := s.inbound[h.id]
		if m == nil || m.state != inHeld {
			continue
		}
		m.state = inDelivered
		h.msg.Ack, h.msg.Held = s.ackID(m), true
		s.push(Event{Kind: EventUnrouted, Message: &h.msg})
	}
	s.held = s.held[:0]
	s.holding = false
	s.holdDeadline = time.Time{}
}

// ExpectReply registers a waiting request: the next message whose topic is
// topic and whose Correlation Data equals corr is delivered to this Token
// (Message.Reply) and to no subscription. A message without Correlation
// Data never matches. The registration ends with that message or with
// CancelReply.
func (s *Session) ExpectReply(topic string, corr []byte) Token {
	t := s.nextToken()
	l := s.replies[topic]
	if l == nil {
		l = &replyList{}
		put(&s.replies, strings.Clone(topic), l)
	}
	l.waits = append(l.waits, replyWait{corr: bytes.Clone(corr), token: t})
	return t
}

// replyList holds the requests waiting on one reply topic. The map holds a
// pointer so that removing a request never assigns to the map: the topic of
// an incoming reply is a view of the read buffer, and a map assignment
// stores the key it is given, which would then change under the map.
type replyList struct{ waits []replyWait }

// takeReply removes the i-th request waiting on topic.
func (s *Session) takeReply(topic string, l *replyList, i int) Token {
	t := l.waits[i].token
	l.waits = slices.Delete(l.waits, i, i+1)
	if len(l.waits) == 0 {
		delete(s.replies, topic)
	}
	return t
}

// CancelReply removes a registration of ExpectReply; it reports whether it
// was still waiting.
func (s *Session) CancelReply(topic string, t Token) bool {
	l := s.replies[topic]
	if l == nil {
		return false
	}
	for i, w := range l.waits {
		if w.token == t {
			s.takeReply(topic, l, i)
			return true
		}
	}
	return false
}

// matchReply finds and removes the request waiting for this reply.
func (s *Session) matchReply(topic string, corr []byte, hasCorr bool) Token {
	if !hasCorr || len(s.replies) == 0 {
		return 0
	}
	l := s.replies[topic]
	if l == nil {
		return 0
	}
	for i, w := range l.waits {
		if w.corr != nil && bytes.Equal(w.corr, corr) {
			return s.takeReply(topic, l, i)
		}
	}
	return 0
}

// unsafeString views b as a string without copying; b must not change while
// the string is in use (here: until the next input of the session).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
