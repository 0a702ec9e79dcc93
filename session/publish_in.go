package session

import (
	"bytes"
	"time"
	"unsafe"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Incoming publishes [MQTT-4.3]. Every QoS 1/2 message holds one unit of our
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

func (s *Session) ackID(m *inMsg) AckID { return AckID(m.epoch<<16 | uint64(m.id)) }

// resolveAlias turns a topic alias into its topic [MQTT-3.3.2.3.4]: an alias
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
	msg := &s.msg
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
	if m := s.inbound[p.PacketID]; m != nil {
		return s.duplicate(now, m, p)
	}
	if len(s.inbound) >= int(s.cfg.ReceiveMaximum) {
		return s.fail(now, remoteErr(codec.ReasonReceiveMaximumExceeded, "MQTT-3.3.4-9",
			"more than "+itoa(int(s.cfg.ReceiveMaximum))+" unacknowledged QoS 1/2 messages"))
	}
	m := s.newInMsg()
	m.id, m.qos, m.epoch = p.PacketID, p.QoS, s.inEpoch
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
		s.acks.pubrec = codec.Pubrec{PacketID: m.id}
		return s.send(now, &s.acks.pubrec)
	case inAcked:
		return s.ack(now, m)
	}
	return nil // delivered or held: the first copy is still waiting for Ack
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
		delete(s.inbound, m.id)
		s.acks.puback = codec.Puback{PacketID: m.id}
		s.freeInMsg(m)
		return s.send(now, &s.acks.puback)
	}
	if st := s.cfg.Store; st != nil {
		if err := st.PutInbound(m.id); err != nil {
			return s.storeFailed(now, err)
		}
	}
	m.state = inReceived
	s.acks.pubrec = codec.Pubrec{PacketID: m.id}
	return s.send(now, &s.acks.pubrec)
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
	s.acks.pubcomp = codec.Pubcomp{PacketID: p.PacketID}
	if m == nil || m.qos != codec.ExactlyOnce {
		if s.v == codec.V5 {
			s.acks.pubcomp.ReasonCode = codec.ReasonPacketIdentifierNotFound
		}
		return s.send(now, &s.acks.pubcomp)
	}
	if m.state != inReceived {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-4.3.3-9", "PUBREL before our PUBREC"))
	}
	delete(s.inbound, m.id)
	s.freeInMsg(m)
	if st := s.cfg.Store; st != nil {
		if err := st.DeleteInbound(p.PacketID); err != nil {
			return s.storeFailed(now, err)
		}
	}
	return s.send(now, &s.acks.pubcomp)
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
// subscription are reported unrouted and acknowledged.
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
		if err := s.ack(now, m); err != nil {
			break
		}
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
	s.replies[topic] = append(s.replies[topic], replyWait{corr: bytes.Clone(corr), token: t})
	return t
}

// CancelReply removes a registration of ExpectReply; it reports whether it
// was still waiting.
func (s *Session) CancelReply(topic string, t Token) bool {
	list := s.replies[topic]
	for i, w := range list {
		if w.token == t {
			list = append(list[:i], list[i+1:]...)
			if len(list) == 0 {
				delete(s.replies, topic)
			} else {
				s.replies[topic] = list
			}
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
	list := s.replies[topic]
	for i, w := range list {
		if w.corr != nil && bytes.Equal(w.corr, corr) {
			list = append(list[:i], list[i+1:]...)
			if len(list) == 0 {
				delete(s.replies, topic)
			} else {
				s.replies[topic] = list
			}
			return w.token
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
