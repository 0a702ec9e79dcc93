package session

import (
	"slices"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Outgoing publishes [§4.3]. A publish is encoded once, at the call, in
// its canonical form (full topic, no alias, DUP clear, packet identifier
// placeholder) into a buffer the session reuses. It waits in the queue until
// there is a connection, send quota [MQTT-4.9.0-1] and a free packet
// identifier; then it gets its identifier, is saved to the Store and sent.
// A QoS 1/2 message that cannot be sent at once is saved to the Store as
// queued when Publish accepts it (Store.PutQueued), so that a crash while
// offline loses nothing accepted; its record becomes an outbound one, under
// the same sequence number, when it is sent.
// Unacknowledged QoS 1/2 messages stay in send order until PUBACK / PUBCOMP
// (or a refusal) and are sent again, DUP set, after a reconnect that resumes
// the session [MQTT-4.4.0-1].

type flightState uint8

const (
	stateQueued    flightState = iota // not sent yet
	statePublished                    // PUBLISH sent, PUBACK or PUBREC due
	stateReleased                     // PUBREC received, PUBREL sent, PUBCOMP due
)

type flight struct {
	token      Token
	id         uint16
	qos        codec.QoS
	retain     bool
	state      flightState
	pkt        []byte // canonical PUBLISH
	idOff      int    // offset of the packet identifier in pkt
	seq        uint64 // acceptance order (QoS 1/2), the key of a queued record
	stored     bool   // has a queued record in the Store (Store.PutQueued)
	prev, next *flight
	resend     bool   // unacknowledged and not yet sent on this connection
	counted    bool   // holds one unit of this connection's send quota
	sentConn   uint64 // the connection (Session.connCount) it was last sent on as PUBLISH
	strikes    int    // server closes in a row with it as the oldest PUBLISH (Config.PoisonCloses)
	// oldID is, for a message of a lost session waiting in the queue to be
	// published again (Config.SessionLost), its identifier in the lost
	// session: reserved, and the key of its Store record, until it is sent
	// with a new one.
	oldID uint16
}

func (s *Session) newFlight() *flight {
	if n := len(s.pool); n > 0 {
		f := s.pool[n-1]
		s.pool = s.pool[:n-1]
		return f
	}
	return &flight{}
}

func (s *Session) recycle(f *flight) {
	pkt := f.pkt[:0]
	if cap(pkt) > 64<<10 {
		pkt = nil // do not keep large buffers around
	}
	*f = flight{pkt: pkt}
	s.pool = append(s.pool, f)
}

func (s *Session) linkFlight(f *flight) {
	f.prev, f.next = s.tail, nil
	if s.tail != nil {
		s.tail.next = f
	} else {
		s.head = f
	}
	s.tail = f
}

func (s *Session) unlinkFlight(f *flight) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		s.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		s.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

// idOffset returns where the packet identifier sits in an encoded QoS 1/2
// PUBLISH: after the fixed header and the topic name.
func idOffset(pkt []byte) int {
	h, err := codec.ParseHeader(pkt)
	if err != nil || len(pkt) < h.Len+2 {
		return 0
	}
	return h.Len + 2 + (int(pkt[h.Len])<<8 | int(pkt[h.Len+1]))
}

// Publish sends an application message. The session assigns the packet
// identifier (p.PacketID must be 0), manages topic aliases (p.Props.TopicAlias
// must be 0) and copies what it needs: p may be reused when Publish returns.
//
// A QoS 0 message is written at once when connected and returns token 0: it
// is done. Otherwise the message waits for the connection, send quota and a
// packet identifier, and its Token completes with EventPublished: on PUBACK
// (QoS 1), PUBCOMP (QoS 2), a refusal (a *ReasonError), or a failure (such
// as a *PoisonError, see Config.PoisonCloses, or ErrSessionLost with
// FailOnSessionLost). A message of a lost session published again keeps
// its Token (RepublishOnSessionLost).
//
// A QoS 1/2 message that has to wait (no connection, no send quota, no
// free identifier) is saved to the Store, when there is one, before Publish
// returns: the caller must run Store.Sync before it reports the message
// accepted, as it does before writing to the network.
//
// Errors, before anything is written: an invalid packet (*codec.Error),
// a QoS, retain or size the connected server refused in its CONNACK
// (*UnsupportedError, *TooLargeError), ErrQueueFull, and a store error.
func (s *Session) Publish(now time.Time, p *codec.Publish) (Token, error) {
	if p.PacketID != 0 || p.Dup {
		return 0, &ProtocolError{Reason: codec.ReasonProtocolError, Msg: "the session assigns packet identifiers and DUP; leave them zero"}
	}
	if p.Props.TopicAlias != 0 || p.Props.Present.Has(codec.PropTopicAlias) {
		return 0, &ProtocolError{Reason: codec.ReasonProtocolError, Msg: "the session manages topic aliases (Config.OutboundAliases); leave TopicAlias zero"}
	}
	if len(p.Props.SubscriptionIDs) > 0 {
		return 0, &ProtocolError{Reason: codec.ReasonProtocolError, Rule: "MQTT-3.3.4-6", Msg: "a client's PUBLISH must not carry a subscription identifier"}
	}
	if s.phase == phaseConnected {
		if err := s.checkPublish(p.QoS, p.Retain); err != nil {
			return 0, err
		}
	}
	if p.QoS == codec.AtMostOnce && s.phase == phaseConnected {
		if err := s.sendPublish(now, p); err != nil {
			return 0, err
		}
		return 0, nil
	}
	if len(s.queue)-s.qhead >= s.cfg.MaxQueued {
		return 0, ErrQueueFull
	}
	f := s.newFlight()
	q := *p
	if q.QoS > 0 {
		q.PacketID = 1 // placeholder, patched when sent
	}
	pkt, err := q.Append(f.pkt[:0], s.v)
	if err != nil {
		s.recycle(f)
		return 0, err
	}
	if max := s.info.MaximumPacket; max != 0 && s.phase == phaseConnected && len(pkt) > int(max) {
		f.pkt = pkt
		s.recycle(f)
		return 0, &TooLargeError{Size: len(pkt), Max: int(max)}
	}
	f.pkt = pkt
	f.qos, f.retain = p.QoS, p.Retain
	if f.qos > 0 {
		f.idOff = idOffset(pkt)
	}
	f.token = s.nextToken()
	tok := f.token
	if f.qos > 0 {
		s.seq++
		f.seq = s.seq
	}
	s.queue = append(s.queue, f)
	s.flush(now)
	if st := s.cfg.Store; st != nil && f.qos > 0 && f.token == tok && f.state == stateQueued {
		// Still waiting (flush stops at the first message it cannot send,
		// so f is the queue's last): make the acceptance durable.
		if err := st.PutQueued(QueuedRecord{Seq: f.seq, Packet: f.pkt}); err != nil {
			s.queue[len(s.queue)-1] = nil
			s.queue = s.queue[:len(s.queue)-1]
			if s.qhead == len(s.queue) {
				s.queue, s.qhead = s.queue[:0], 0
			}
			s.recycle(f)
			return 0, err
		}
		f.stored = true
	}
	return tok, nil
}

// checkPublish applies the server's CONNACK limits [MQTT-3.2.2-11]
// [MQTT-3.2.2-14].
func (s *Session) checkPublish(qos codec.QoS, retain bool) error {
	if qos > s.info.MaximumQoS {
		return &UnsupportedError{Feature: qos.String(), Detail: "the server's maximum QoS is " + itoa(int(s.info.MaximumQoS))}
	}
	if retain && !s.info.RetainAvailable {
		return &UnsupportedError{Feature: "retain", Detail: "the server does not support retained messages"}
	}
	return nil
}

// Cancel withdraws a publish that has not been sent yet and reports whether
// it did (a message of a lost session waiting to be published again was
// sent: it cannot be withdrawn); its token then completes with no event, and its place in the
// queue (MaxQueued, Inflight) is free at once. A message already sent
// keeps its packet identifier and quota until the server acknowledges it:
// it cannot be taken back.
func (s *Session) Cancel(t Token) bool {
	for i := s.qhead; i < len(s.queue); i++ {
		if f := s.queue[i]; f.token == t {
			if f.oldID != 0 {
				return false // sent in a lost session, waiting to be published again
			}
			s.queue = slices.Delete(s.queue, i, i+1)
			if s.qhead == len(s.queue) {
				s.queue, s.qhead = s.queue[:0], 0
			}
			s.forgetQueued(f)
			s.recycle(f)
			return true
		}
	}
	return false
}

// sendPublish writes a PUBLISH, using a topic alias when that is on. It
// copies p into a value of the session's, so that p does not escape.
func (s *Session) sendPublish(now time.Time, p *codec.Publish) error {
	q := s.outPub()
	if p != q {
		*q = *p
	}
	defer func() { *q = codec.Publish{} }()
	fresh := uint16(0) // an alias this PUBLISH sets up
	if s.aliasOut.max != 0 && q.Topic != "" {
		alias, known := s.aliasOut.lookup(q.Topic)
		q.Props.TopicAlias = alias
		if known {
			q.Topic = ""
		} else {
			fresh = alias
		}
	}
	err := s.send(now, q)
	if err != nil && fresh != 0 {
		s.aliasOut.forget(fresh) // not sent: the server never learned it
	}
	return err
}

// flush sends what the quota and identifiers allow: first the unacknowledged
// messages of a resumed session in their original order, then the queue.
//
// The limits of the current CONNACK apply to what is sent for the first
// time, never silently:
//
//   - A queued message (never sent) whose QoS is above the server's Maximum
//     QoS [MQTT-3.2.2-11], whose retain flag the server does not support, or
//     whose size is above its Maximum Packet Size is failed with the error
//     Publish would have returned (*UnsupportedError, *TooLargeError) in its
//     EventPublished; the rest of the queue goes on.
//   - A message sent on an earlier connection and unacknowledged in a
//     resumed session (session present) is resent at its QoS even when this
//     CONNACK lowered the Maximum QoS: the server holds its packet
//     identifier state and [MQTT-4.4.0-1] requires the resend.
//   - Such a message above the new Maximum Packet Size cannot be resent
//     [MQTT-3.2.2-15] (the server would close the connection, again at
//     every reconnect): it fails with a *TooLargeError; see failResend.
//   - Without session present the unacknowledged messages have already
//     failed with ErrSessionLost, or, by default, been put back at the front
//     of the queue as new messages (sessionLost); the queue is checked as
//     above.
//
// Every QoS 1 or 2 message thus completes or fails with a typed error in
// exactly one EventPublished.
func (s *Session) flush(now time.Time) {
	if s.phase != phaseConnected {
		return
	}
	waiting := false
	for f := s.head; f != nil; {
		if !f.resend {
			f = f.next
			continue
		}
		if max := s.info.MaximumPacket; max != 0 && f.state == statePublished && len(f.pkt) > int(max) {
			next := f.next
			s.failResend(f, &TooLargeError{Size: len(f.pkt), Max: int(max)})
			f = next
			continue
		}
		if s.quota <= 0 {
			waiting = true
			break
		}
		s.quota--
		f.resend, f.counted = false, true
		start := len(s.out)
		if f.state == stateReleased {
			s.sendAck(now, codec.TypePubrel, f.id, 0)
		} else {
			s.sendRaw(now, f.pkt)
			s.out[start] |= 0x08 // DUP [MQTT-3.3.1-1]
			f.sentConn = s.connCount
		}
		f = f.next
	}
	for s.qhead < len(s.queue) {
		f := s.queue[s.qhead]
		if err := s.checkPublish(f.qos, f.retain); err != nil {
			s.popQueue()
			s.failQueued(f, err)
			continue
		}
		if max := s.info.MaximumPacket; max != 0 && len(f.pkt) > int(max) {
			s.popQueue()
			s.failQueued(f, &TooLargeError{Size: len(f.pkt), Max: int(max)})
			continue
		}
		if f.qos == codec.AtMostOnce {
			s.popQueue()
			s.sendQueued(now, f)
			s.push(Event{Kind: EventPublished, Token: f.token})
			s.recycle(f)
			continue
		}
		if waiting || s.quota <= 0 {
			break
		}
		id, ok := s.ids.take()
		if !ok {
			if f.oldID == 0 {
				break
			}
			// A message of a lost session may use the identifier it
			// reserves: the server forgot it with the session.
			id = f.oldID
		}
		f.id = id
		f.pkt[f.idOff], f.pkt[f.idOff+1] = byte(id>>8), byte(id)
		if f.seq == 0 {
			s.seq++
			f.seq = s.seq
		}
		if st := s.cfg.Store; st != nil {
			if err := st.PutOutbound(OutboundRecord{ID: id, Seq: f.seq, Packet: f.pkt}); err != nil {
				if id != f.oldID {
					s.ids.free(id)
				}
				s.popQueue()
				s.failQueued(f, err)
				continue
			}
			// A queued record becomes this outbound one (written first: a
			// crash in between leaves both, and restore keeps the outbound).
			s.forgetQueued(f)
			// A message of a lost session: its record moves to the new
			// identifier (the new one is written first, so that a crash
			// in between leaves the message twice, never not at all).
			if f.oldID != 0 && f.oldID != id {
				if err := st.DeleteOutbound(f.oldID); err != nil {
					s.ids.free(id)
					s.storeFailed(now, err)
					return
				}
			}
		}
		if f.oldID != 0 {
			if f.oldID != id {
				s.ids.free(f.oldID)
			}
			f.oldID = 0
		}
		s.popQueue()
		f.state, f.counted, f.sentConn = statePublished, true, s.connCount
		s.quota--
		put(&s.flights, id, f)
		s.linkFlight(f)
		s.sendQueued(now, f)
	}
}

// failQueued fails a message taken from the queue before it was sent. A
// message of a lost session also gives up its old identifier and record.
func (s *Session) failQueued(f *flight, err error) {
	if f.oldID != 0 {
		s.ids.free(f.oldID)
		if st := s.cfg.Store; st != nil {
			st.DeleteOutbound(f.oldID) // a record left behind is published again after a restart: never a loss
		}
	}
	s.forgetQueued(f)
	s.push(Event{Kind: EventPublished, Token: f.token, Err: err})
	s.recycle(f)
}

// forgetQueued deletes the queued record of f, if it has one. An error is
// not reported: the record left behind is either shadowed by f's outbound
// one (restore keeps that) or makes a restarted process send f after all,
// never a loss; a Store that failed says so again at its next write or
// Sync.
func (s *Session) forgetQueued(f *flight) {
	if f.stored {
		f.stored = false
		s.cfg.Store.DeleteQueued(f.seq)
	}
}

func (s *Session) popQueue() {
	s.queue[s.qhead] = nil
	s.qhead++
	if s.qhead == len(s.queue) {
		s.queue, s.qhead = s.queue[:0], 0
	}
}

// sendQueued writes a queued message for the first time, with an alias when
// aliases are on.
func (s *Session) sendQueued(now time.Time, f *flight) {
	if s.aliasOut.max == 0 {
		s.sendRaw(now, f.pkt)
		return
	}
	q := s.outPub()
	if _, err := q.Decode(f.pkt, s.v); err != nil {
		*q = codec.Publish{}
		s.sendRaw(now, f.pkt)
		return
	}
	if err := s.sendPublish(now, q); err != nil {
		s.sendRaw(now, f.pkt)
	}
}

// finishFlight removes an unacknowledged message, frees its identifier and
// quota, deletes its record and queues its completion.
func (s *Session) finishFlight(f *flight, ev Event, store bool) {
	s.unlinkFlight(f)
	delete(s.flights, f.id)
	s.ids.free(f.id)
	if f.counted {
		s.quota++
	}
	if store && s.cfg.Store != nil {
		if err := s.cfg.Store.DeleteOutbound(f.id); err != nil && ev.Err == nil {
			ev.Err = err
		}
	}
	s.push(ev)
	s.recycle(f)
}

// failResend fails an unacknowledged PUBLISH of a resumed session that
// cannot be sent again on this connection (above the server's new Maximum
// Packet Size). The message may or may not have reached the server. A QoS 1
// identifier is free at once: the server treats a later PUBLISH with it as a
// new message [MQTT-4.3.2-3]. A QoS 2 identifier is not: the server may
// hold it at "PUBREC sent" and would take a new message with it for a
// duplicate of this one and drop it [MQTT-4.3.3-9], so it stays reserved
// (s.stale) until a CONNACK without session present says the server forgot.
// Its Store record is kept too, so that a restarted process reserves the
// identifier as well; it restores the message and resends it (DUP set)
// once the server's limit allows, or fails it again here.
func (s *Session) failResend(f *flight, err error) { s.failSent(f, err) }

// failSent fails a message sent and not acknowledged (see failResend, and
// strike for Config.PoisonCloses): a QoS 1 identifier and record are freed,
// a QoS 2 identifier stays reserved with its record.
func (s *Session) failSent(f *flight, err error) {
	id, qos := f.id, f.qos
	s.finishFlight(f, Event{Kind: EventPublished, Token: f.token, Err: err}, qos != codec.ExactlyOnce)
	if qos == codec.ExactlyOnce {
		s.ids.mark(id)
		s.stale = append(s.stale, id)
	}
}

func ackEvent(t Token, code codec.ReasonCode, props *codec.Properties, pt codec.Type) Event {
	ev := Event{Kind: EventPublished, Token: t, Code: code, Props: props}
	if code.Failed() {
		ev.Err = &ReasonError{Packet: pt, Code: code, Reason: cloneStr(props.ReasonString), User: cloneUser(props.User)}
	}
	return ev
}

// handlePuback completes a QoS 1 publish [§4.3.2]. A PUBACK for an
// identifier that is not in flight is ignored: the server may repeat one
// after a reconnect.
func (s *Session) handlePuback(now time.Time, p *codec.Puback) error {
	f := s.flights[p.PacketID]
	if f == nil {
		return nil
	}
	if f.qos != codec.AtLeastOnce {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "§4.3.3", "PUBACK for a QoS 2 message"))
	}
	s.finishFlight(f, ackEvent(f.token, p.ReasonCode, &p.Props, codec.TypePuback), true)
	s.flush(now)
	return nil
}

// handlePubrec moves a QoS 2 publish to its PUBREL step [MQTT-4.3.3-4], or
// ends it when the server refused it (reason 0x80 or above) [MQTT-4.3.3-9].
// A PUBREC for an unknown identifier is answered with PUBREL (reason 0x92 on
// 5.0), unless it is a refusal: a PUBREL follows only a successful PUBREC
// [MQTT-4.3.3-4], and after a failed one the exchange is over [MQTT-4.4.0-2],
// so it is ignored.
func (s *Session) handlePubrec(now time.Time, p *codec.Pubrec) error {
	f := s.flights[p.PacketID]
	if f == nil {
		if p.ReasonCode.Failed() {
			return nil
		}
		var rc codec.ReasonCode
		if s.v == codec.V5 {
			rc = codec.ReasonPacketIdentifierNotFound
		}
		return s.sendAck(now, codec.TypePubrel, p.PacketID, rc)
	}
	if f.qos != codec.ExactlyOnce {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "§4.3.2", "PUBREC for a QoS 1 message"))
	}
	if p.ReasonCode.Failed() {
		s.finishFlight(f, ackEvent(f.token, p.ReasonCode, &p.Props, codec.TypePubrec), true)
		s.flush(now)
		return nil
	}
	if f.state == statePublished {
		f.state = stateReleased
		if st := s.cfg.Store; st != nil {
			if err := st.ReleaseOutbound(f.id); err != nil {
				return s.storeFailed(now, err)
			}
		}
	}
	return s.sendAck(now, codec.TypePubrel, f.id, 0)
}

// handlePubcomp completes a QoS 2 publish [§4.3.3]. A PUBCOMP for an
// identifier that is not in flight is ignored.
func (s *Session) handlePubcomp(now time.Time, p *codec.Pubcomp) error {
	f := s.flights[p.PacketID]
	if f == nil {
		return nil
	}
	if f.state != stateReleased {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "§4.3.3", "PUBCOMP before PUBREC"))
	}
	ev := Event{Kind: EventPublished, Token: f.token, Code: p.ReasonCode, Props: &p.Props}
	s.finishFlight(f, ev, true)
	s.flush(now)
	return nil
}

// storeFailed ends the connection when the Store cannot record a change: the
// session must not acknowledge or send what it could not persist.
func (s *Session) storeFailed(now time.Time, err error) error {
	perr := &ProtocolError{Reason: codec.ReasonImplementationSpecificError, Msg: "session store failed", Err: err}
	if s.phase != phaseIdle && s.v == codec.V5 {
		d := codec.Disconnect{ReasonCode: codec.ReasonImplementationSpecificError}
		s.out, _ = d.Append(s.out, s.v)
	}
	s.close(now, perr)
	return perr
}

// sendWindow returns the most QoS 1 and 2 PUBLISH packets unacknowledged at
// once on this connection (Config.MaxInflight): the server's Receive Maximum
// on 5.0 [MQTT-4.9.0-2], 20 on 3.1.1; a set MaxInflight replaces the 3.1.1
// default and caps the 5.0 value.
func (s *Session) sendWindow() int {
	w := int(s.info.ReceiveMaximum)
	if s.v == codec.V311 {
		w = defaultMaxInflight311
	}
	if m := s.cfg.MaxInflight; m > 0 && (s.v == codec.V311 || m < w) {
		w = m
	}
	return w
}

// closedByServer reports whether a connection ended with err ended by the
// server's doing: the transport was lost (ConnectionLost) or the server sent
// DISCONNECT.
func closedByServer(err error) bool {
	switch e := err.(type) {
	case *lostError:
		return true
	case *ReasonError:
		return e.Packet == codec.TypeDisconnect
	}
	return false
}

// strike applies Config.PoisonCloses at the end of a connection that reached
// CONNACK. The oldest message (re)sent as PUBLISH on it and still waiting
// for PUBACK or PUBREC gets a strike when the server ended the connection,
// and fails with a *PoisonError at the limit; any other end breaks its row.
func (s *Session) strike(byServer bool) {
	if s.cfg.PoisonCloses < 0 {
		return
	}
	var f *flight
	for g := s.head; g != nil; g = g.next {
		if g.state == statePublished && g.sentConn == s.connCount {
			f = g
			break
		}
	}
	if f == nil {
		return
	}
	if !byServer {
		f.strikes = 0
		return
	}
	f.strikes++
	if f.strikes >= s.cfg.PoisonCloses {
		s.failSent(f, &PoisonError{Closes: f.strikes, Size: len(f.pkt)})
	}
}
