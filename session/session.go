package session

import (
	"errors"
	"io"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

type phase uint8

const (
	phaseIdle       phase = iota // no network connection
	phaseConnecting              // CONNECT sent; CONNACK (and AUTH) expected
	phaseConnected               // CONNACK accepted
)

var phaseNames = [...]string{"idle", "connecting", "connected"}

// Session is the MQTT protocol state of one client identity across network
// connections. See the package documentation for how to drive it.
type Session struct {
	cfg    Config
	v      codec.Version
	phase  phase
	dec    codec.Decoder
	out    []byte
	events []Event
	evHead int
	token  Token

	clientID        string
	everConnected   bool
	cleanSent       bool
	info            *ConnInfo // the last CONNACK's; never changed once set (EventConnected hands it out); noInfo before
	connCount       uint64
	keepAlive       time.Duration
	pingTimeout     time.Duration // of this connection (Config.pingTimeoutFor)
	lastSent        time.Time
	lastRecv        time.Time // the last complete packet received
	gotPacket       bool      // a packet arrived on this connection
	connectDeadline time.Time
	pings           []ping

	ids     idAlloc
	flights map[uint16]*flight
	head    *flight // unacknowledged QoS 1/2 messages, in send order
	tail    *flight
	queue   []*flight // publishes waiting for the connection, quota or an id
	qhead   int
	quota   int
	seq     uint64
	pool    []*flight
	stale   []uint16 // QoS 2 identifiers the server may still hold (failResend)

	inbound      map[uint16]*inMsg
	inEpoch      uint64
	inPool       []*inMsg
	held         []*heldMsg
	holding      bool      // resumed session: unrouted QoS 1/2 messages wait
	resumeAcks   []uint16  // QoS 1 identifiers PUBACKed on this connection for messages of an earlier one
	holdDeadline time.Time // when the held messages stop waiting

	router     router
	groups     []*subGroup
	subOps     map[uint16]*subOp
	filterRefs map[string]int
	unsubWait  []*subOp // unsubscriptions waiting for a connection
	subSeq     uint64   // counts Subscribe and Unsubscribe calls (their order)
	replies    map[string]*replyList

	aliasIn  [][]byte
	aliasInN []bool
	aliasOut aliasTable

	auth authState

	// msg is the incoming message handed out with EventMessage and
	// EventUnrouted; pubOut the PUBLISH sendPublish encodes and sendQueued
	// decodes into. Both are made at first use and kept: a session that
	// never receives (or never publishes) does not carry them (704 bytes,
	// which moved the Session from the 2,688-byte allocation class to the
	// 2,048-byte one).
	msg    *Message
	pubOut *codec.Publish
}

// inMsg returns s.msg, making it on first use.
func (s *Session) inMsg() *Message {
	if s.msg == nil {
		s.msg = new(Message)
	}
	return s.msg
}

// outPub returns s.pubOut, making it on first use.
func (s *Session) outPub() *codec.Publish {
	if s.pubOut == nil {
		s.pubOut = new(codec.Publish)
	}
	return s.pubOut
}

// noInfo is a session's ConnInfo before its first CONNACK; never written.
var noInfo ConnInfo

// New returns a Session for cfg, restoring the state saved in cfg.Store.
// It returns a *ConfigError (ErrInvalidConfig) for a bad configuration and
// the Store's error when its state cannot be loaded.
func New(cfg Config) (*Session, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	s := &Session{
		cfg:        cfg,
		v:          cfg.Version,
		clientID:   cfg.ClientID,
		info:       &noInfo,
		ids:        newIDAlloc(cfg.MaxPacketID),
		inbound:    make(map[uint16]*inMsg),
		subOps:     make(map[uint16]*subOp),
		filterRefs: make(map[string]int),
		router:     newRouter(cfg.StrippedPrefixes),
	}
	if cfg.Store != nil {
		if err := s.restore(cfg.Store); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// restore rebuilds the outgoing and incoming state from a store.
func (s *Session) restore(st Store) error {
	state, err := st.Load()
	if err != nil {
		return err
	}
	for _, r := range state.Outbound {
		var p codec.Publish
		if _, err := p.Decode(r.Packet, s.v); err != nil || p.QoS == 0 || r.ID == 0 || r.ID > s.cfg.MaxPacketID {
			return &storeError{msg: "saved message " + itoa(int(r.ID)) + " does not decode as a QoS 1/2 PUBLISH of this version", err: err}
		}
		if s.flights[r.ID] != nil {
			return &storeError{msg: "packet identifier " + itoa(int(r.ID)) + " saved twice"}
		}
		f := s.newFlight()
		f.token = s.nextToken()
		f.qos = p.QoS
		f.id = r.ID
		f.pkt = append(f.pkt[:0], r.Packet...)
		f.idOff = idOffset(f.pkt)
		f.state = statePublished
		if r.Released {
			f.state = stateReleased
		}
		f.resend = true
		s.seq = max(s.seq, r.Seq)
		f.seq = r.Seq
		s.ids.mark(r.ID)
		put(&s.flights, r.ID, f)
		s.linkFlight(f)
	}
	// Queued messages follow, in acceptance order. One whose Seq has an
	// outbound record was sent just before a crash that kept both records.
	var sent map[uint64]bool
	if len(state.Queued) > 0 {
		sent = make(map[uint64]bool, len(state.Outbound))
		for _, r := range state.Outbound {
			sent[r.Seq] = true
		}
	}
	for _, r := range state.Queued {
		s.seq = max(s.seq, r.Seq)
		if sent[r.Seq] {
			if err := st.DeleteQueued(r.Seq); err != nil {
				return err
			}
			continue
		}
		var p codec.Publish
		if _, err := p.Decode(r.Packet, s.v); err != nil || p.QoS == 0 || r.Seq == 0 {
			return &storeError{msg: "queued message " + itoa(int(r.Seq)) + " does not decode as a QoS 1/2 PUBLISH of this version", err: err}
		}
		f := s.newFlight()
		f.token = s.nextToken()
		f.qos, f.retain = p.QoS, p.Retain
		f.pkt = append(f.pkt[:0], r.Packet...)
		f.idOff = idOffset(f.pkt)
		f.seq, f.stored = r.Seq, true
		s.queue = append(s.queue, f)
	}
	for _, id := range state.Inbound {
		m := s.newInMsg()
		m.id, m.qos, m.epoch, m.state = id, codec.ExactlyOnce, s.inEpoch, inReceived
		s.inbound[id] = m
	}
	if state.NextID != 0 && state.NextID <= s.cfg.MaxPacketID {
		s.ids.next = state.NextID
	}
	return nil
}

type storeError struct {
	msg string
	err error
}

func (e *storeError) Error() string {
	s := "zmqtt: session store is corrupt: " + e.msg
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}
func (e *storeError) Unwrap() error        { return e.err }
func (e *storeError) Is(target error) bool { return target == ErrStoreCorrupt }

func (s *Session) nextToken() Token {
	s.token++
	return s.token
}

// Version returns the protocol version of the session.
func (s *Session) Version() codec.Version { return s.v }

// Trim lets go of memory the session keeps for reuse and a quiet
// connection does not need: the decoder's values of packet types other
// than PUBLISH. Call it when the connection has been idle for a while;
// the next packet of such a type allocates its value again.
func (s *Session) Trim() { s.dec.Trim() }

// Connected reports whether a connection is established (CONNACK accepted).
func (s *Session) Connected() bool { return s.phase == phaseConnected }

// Info returns what the last successful CONNACK said, and false when the
// session is not connected.
func (s *Session) Info() (ConnInfo, bool) {
	return *s.info, s.phase == phaseConnected
}

// ClientID returns the client identifier the next CONNECT will carry: the
// configured one, or the one the server assigned.
func (s *Session) ClientID() string { return s.clientID }

// Inflight returns the number of unacknowledged outgoing QoS 1 and 2
// messages and the number waiting in the queue (messages of a lost session
// waiting to be published again included).
func (s *Session) Inflight() (unacked, queued int) {
	return len(s.flights), len(s.queue) - s.qhead
}

// Inbound returns the number of incoming QoS 1 and 2 messages whose flow
// is not complete: waiting for Ack, held for their subscription, or, for
// QoS 2, acknowledged with PUBREC and waiting for the server's PUBREL.
// These are the messages that count against our Receive Maximum.
func (s *Session) Inbound() int { return len(s.inbound) }

// AppendTransmit appends the bytes the session wants written to the network
// to dst and forgets them. Write them in order, after making the Store
// durable (Store.Sync) when there is one.
func (s *Session) AppendTransmit(dst []byte) []byte {
	dst = append(dst, s.out...)
	s.out = s.out[:0]
	return dst
}

// PendingTransmit returns the number of bytes AppendTransmit would return.
func (s *Session) PendingTransmit() int { return len(s.out) }

// NextEvent returns the next output event, and false when there is none.
// Drain events after every input.
func (s *Session) NextEvent() (Event, bool) {
	if s.evHead == len(s.events) {
		return Event{}, false
	}
	e := s.events[s.evHead]
	s.events[s.evHead] = Event{}
	s.evHead++
	if s.evHead == len(s.events) {
		s.events, s.evHead = s.events[:0], 0
	}
	return e, true
}

func (s *Session) push(e Event) { s.events = append(s.events, e) }

// send validates and encodes p into the transmit buffer, refusing a packet
// above the server's Maximum Packet Size. It resets the keep alive timer.
func (s *Session) send(now time.Time, p codec.Packet) error {
	if max := s.info.MaximumPacket; max != 0 && s.phase == phaseConnected {
		if n := p.Size(s.v); n > int(max) {
			return &TooLargeError{Size: n, Max: int(max)}
		}
	}
	out, err := p.Append(s.out, s.v)
	if err != nil {
		return err
	}
	s.out = out
	s.lastSent = now
	return nil
}

// sendAck sends a PUBACK, PUBREC, PUBREL or PUBCOMP (t) for id with reason
// code rc (0 on 3.1.1). The four have the same fields, so one value is
// converted to the other. The value stays on the stack: its methods are
// called on the concrete types, not through codec.Packet as send does.
func (s *Session) sendAck(now time.Time, t codec.Type, id uint16, rc codec.ReasonCode) error {
	p := codec.Puback{PacketID: id, ReasonCode: rc}
	if max := s.info.MaximumPacket; max != 0 && s.phase == phaseConnected {
		if n := p.Size(s.v); n > int(max) { // the four have the same size
			return &TooLargeError{Size: n, Max: int(max)}
		}
	}
	var out []byte
	var err error
	switch t {
	case codec.TypePuback:
		out, err = p.Append(s.out, s.v)
	case codec.TypePubrec:
		out, err = (*codec.Pubrec)(&p).Append(s.out, s.v)
	case codec.TypePubrel:
		out, err = (*codec.Pubrel)(&p).Append(s.out, s.v)
	default:
		out, err = (*codec.Pubcomp)(&p).Append(s.out, s.v)
	}
	if err != nil {
		return err
	}
	s.out = out
	s.lastSent = now
	return nil
}

// sendRaw appends already encoded bytes.
func (s *Session) sendRaw(now time.Time, b []byte) {
	s.out = append(s.out, b...)
	s.lastSent = now
}

// Connect starts a new network connection: it queues the CONNECT packet.
// Call it after the transport is connected, write the transmit bytes, and
// feed the server's bytes to HandleBytes. It returns ErrConnected when a
// connection is already in use, and the Authenticator's error.
func (s *Session) Connect(now time.Time) error {
	if s.phase != phaseIdle {
		return ErrConnected
	}
	s.out = s.out[:0]
	var authData []byte
	if a := s.cfg.Authenticator; a != nil {
		d, err := a.Initial()
		if err != nil {
			return &authError{stage: "initial data", err: err}
		}
		authData = d
		s.auth = authState{active: true, connecting: true}
	}
	s.cleanSent = s.cfg.CleanStart && (s.v == codec.V311 || !s.everConnected)
	p := s.connectPacket(authData)
	p.CleanStart = s.cleanSent
	out, err := p.Append(s.out, s.v)
	if err != nil {
		return err
	}
	s.out = out
	s.lastSent = now
	s.lastRecv = now
	s.gotPacket = false
	s.phase = phaseConnecting
	s.connectDeadline = now.Add(s.cfg.ConnectTimeout)
	s.dec = codec.Decoder{Version: s.v, From: codec.RoleServer}
	s.aliasIn = s.aliasIn[:0]
	s.aliasInN = s.aliasInN[:0]
	s.aliasOut.reset(0)
	return nil
}

// connectPacket builds the CONNECT of the configuration.
func (s *Session) connectPacket(authData []byte) *codec.Connect {
	c := &s.cfg
	p := &codec.Connect{
		CleanStart:   c.CleanStart,
		KeepAlive:    uint16(c.KeepAlive / time.Second),
		ClientID:     s.clientID,
		Will:         c.Will,
		Username:     c.Username,
		UsernameFlag: c.UsernameFlag,
		Password:     c.Password,
		PasswordFlag: c.PasswordFlag,
	}
	if c.Version == codec.V5 {
		pr := &p.Props
		pr.SessionExpiry = c.SessionExpiry
		pr.Mark(codec.PropSessionExpiryInterval) // always sent, 0 included (seed rule 7)
		if c.ReceiveMaximum != 65535 {
			pr.ReceiveMaximum = c.ReceiveMaximum
		}
		pr.MaximumPacketSize = c.MaximumPacketSize
		pr.TopicAliasMaximum = c.TopicAliasMaximum
		if c.RequestResponseInfo {
			pr.RequestResponseInfo = 1
		}
		if c.RequestProblemInfo != nil {
			pr.Mark(codec.PropRequestProblemInformation)
			if *c.RequestProblemInfo {
				pr.RequestProblemInfo = 1
			}
		}
		pr.User = c.User
		if c.Authenticator != nil {
			pr.AuthMethod = c.Authenticator.Method()
			pr.AuthData = authData
		}
	}
	return p
}

// HandleBytes consumes at most one whole packet from the start of src and
// returns the number of bytes it used: 0 when src holds less than a packet.
// Call it again with the rest; drain the events in between, because they
// borrow from src. A malformed packet or a broken rule ends the connection
// (an EventClosed and, on 5.0, a DISCONNECT to write) and is returned too.
func (s *Session) HandleBytes(now time.Time, src []byte) (int, error) {
	if s.phase == phaseIdle {
		return 0, ErrNotConnected
	}
	max := codec.MaxPacketSize
	if m := s.cfg.MaximumPacketSize; m != 0 {
		max = int(m)
	}
	_, n, err := codec.Frame(src, max)
	if errors.Is(err, codec.ErrIncomplete) {
		return 0, nil
	}
	if err == nil && n == 4 && s.phase == phaseConnecting && s.v == codec.V5 && isV311VersionRefusal(src[:n]) {
		s.lastRecv, s.gotPacket = now, true
		e := &ReasonError{Packet: codec.TypeConnack, Code: codec.ReasonUnsupportedProtocolVersion,
			ReturnCode: codec.ReturnUnacceptableProtocolVersion,
			Note:       "the broker answered with an MQTT 3.1.1 CONNACK (return code 0x01, unacceptable protocol version): it does not speak MQTT 5.0; connect with MQTT 3.1.1"}
		s.close(now, e)
		return n, e
	}
	if err == nil {
		var p codec.Packet
		p, n, err = s.dec.Decode(src[:n])
		if err == nil {
			return n, s.handle(now, p)
		}
	}
	var ce *codec.Error
	reason := codec.ReasonMalformedPacket
	if errors.As(err, &ce) {
		reason = ce.Reason
	}
	perr := &ProtocolError{Remote: true, Reason: reason, Msg: "bad packet from the server", Err: err}
	s.fail(now, perr)
	return 0, perr
}

// isV311VersionRefusal reports whether b is the CONNACK an MQTT 3.1.1 server
// sends to a CONNECT of a protocol level it does not support [MQTT-3.1.2-2]:
// remaining length 2, Session Present 0, return code 0x01. As MQTT 5.0 it
// does not decode (no property length, reason 0x01 is not a CONNACK code).
func isV311VersionRefusal(b []byte) bool {
	return len(b) == 4 && b[0] == 0x20 && b[1] == 0x02 && b[2] == 0x00 && b[3] == byte(codec.ReturnUnacceptableProtocolVersion)
}

// HandlePacket is HandleBytes for a caller that decodes packets itself. The
// packet's strings and slices must stay valid until the next input.
func (s *Session) HandlePacket(now time.Time, p codec.Packet) error {
	if s.phase == phaseIdle {
		return ErrNotConnected
	}
	if err := codec.CheckSender(p, codec.RoleServer, s.v); err != nil {
		var ce *codec.Error
		errors.As(err, &ce)
		perr := &ProtocolError{Remote: true, Reason: codec.ReasonProtocolError, Msg: "packet a server must not send", Err: err}
		if ce != nil {
			perr.Reason = ce.Reason
		}
		s.fail(now, perr)
		return perr
	}
	return s.handle(now, p)
}

// handle dispatches one decoded packet by phase (each phase accepts a
// fixed set of packet types, rustls/h11 style).
func (s *Session) handle(now time.Time, p codec.Packet) error {
	s.lastRecv, s.gotPacket = now, true // any packet is a sign of life (see keepalive.go)
	if s.phase == phaseConnecting {
		switch p := p.(type) {
		case *codec.Connack:
			return s.handleConnack(now, p)
		case *codec.Auth:
			return s.handleAuth(now, p)
		case *codec.Disconnect:
			return s.handleDisconnect(now, p)
		}
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-3.2.0-1", "the first packet from the server is "+p.Type().String()+", not CONNACK"))
	}
	switch p := p.(type) {
	case *codec.Publish:
		return s.handlePublish(now, p)
	case *codec.Puback:
		return s.handlePuback(now, p)
	case *codec.Pubrec:
		return s.handlePubrec(now, p)
	case *codec.Pubrel:
		return s.handlePubrel(now, p)
	case *codec.Pubcomp:
		return s.handlePubcomp(now, p)
	case *codec.Suback:
		return s.handleSuback(now, p)
	case *codec.Unsuback:
		return s.handleUnsuback(now, p)
	case *codec.Pingresp:
		return s.handlePingresp(now)
	case *codec.Disconnect:
		return s.handleDisconnect(now, p)
	case *codec.Auth:
		return s.handleAuth(now, p)
	case *codec.Connack:
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-3.2.0-2", "a second CONNACK"))
	}
	return s.fail(now, remoteErr(codec.ReasonProtocolError, "§2.1.2", "unexpected "+p.Type().String()))
}

// handleConnack completes the connection [§3.2].
func (s *Session) handleConnack(now time.Time, p *codec.Connack) error {
	if s.v == codec.V311 && p.ReasonCode != 0 || s.v == codec.V5 && p.ReasonCode.Failed() {
		e := &ReasonError{Packet: codec.TypeConnack, Code: p.ReasonCode, Reason: cloneStr(p.Props.ReasonString),
			User: cloneUser(p.Props.User), ServerReference: cloneStr(p.Props.ServerReference)}
		if s.v == codec.V311 {
			e.ReturnCode, e.Code = p.ReasonCode, codec.ReasonFromReturnCode(p.ReasonCode)
		}
		if e.Code == codec.ReasonUnsupportedProtocolVersion {
			e.Note = "the broker does not speak MQTT " + s.v.String()
		}
		s.close(now, e)
		return e
	}
	if s.cleanSent && p.SessionPresent {
		rule := "MQTT-3.2.2-2"
		if s.v == codec.V311 {
			rule = "MQTT-3.2.2-1"
		}
		return s.fail(now, remoteErr(codec.ReasonProtocolError, rule, "session present in answer to a clean start"))
	}
	if err := s.finishConnectAuth(now, p); err != nil {
		return err
	}
	s.connCount++
	pr := &p.Props
	info := ConnInfo{
		Version:          s.v,
		SessionPresent:   p.SessionPresent,
		ClientID:         s.clientID,
		KeepAlive:        uint16(s.cfg.KeepAlive / time.Second),
		SessionExpiry:    s.cfg.SessionExpiry,
		ReceiveMaximum:   65535,
		MaximumQoS:       codec.ExactlyOnce,
		RetainAvailable:  true,
		MaximumPacket:    pr.MaximumPacketSize,
		TopicAliasMax:    pr.TopicAliasMaximum,
		WildcardSubs:     true,
		SubscriptionIDs:  s.v == codec.V5,
		SharedSubs:       true,
		ResponseInfo:     cloneStr(pr.ResponseInfo),
		ServerReference:  cloneStr(pr.ServerReference),
		AuthMethod:       cloneStr(pr.AuthMethod),
		Props:            pr.Clone(),
		ConnectedAt:      now,
		ConnectionNumber: s.connCount,
	}
	// The Assigned Client Identifier answers an empty client identifier
	// [MQTT-3.1.3-7] [MQTT-3.2.2-16]; when we sent one of our own, a server
	// that sends one anyway is ignored: the identifier is ours to choose,
	// and the next CONNECT carries it again.
	if pr.AssignedClientID != "" && s.clientID == "" {
		s.clientID = cloneStr(pr.AssignedClientID)
		info.ClientID = s.clientID
	}
	s.keepAlive = s.cfg.KeepAlive
	if pr.Has(codec.PropServerKeepAlive) {
		info.KeepAlive = pr.ServerKeepAlive
		s.keepAlive = time.Duration(pr.ServerKeepAlive) * time.Second
	}
	s.pingTimeout = s.cfg.pingTimeoutFor(s.keepAlive)
	if pr.Has(codec.PropSessionExpiryInterval) {
		info.SessionExpiry = pr.SessionExpiry
	}
	if pr.Has(codec.PropReceiveMaximum) {
		info.ReceiveMaximum = pr.ReceiveMaximum
	}
	if pr.Has(codec.PropMaximumQoS) {
		info.MaximumQoS = codec.QoS(pr.MaximumQoS)
	}
	if pr.Has(codec.PropRetainAvailable) {
		info.RetainAvailable = pr.RetainAvailable == 1
	}
	if pr.Has(codec.PropWildcardSubscriptionAvailable) {
		info.WildcardSubs = pr.WildcardSubAvailable == 1
	}
	if pr.Has(codec.PropSubscriptionIdentifierAvailable) {
		info.SubscriptionIDs = pr.SubIDAvailable == 1
	}
	if pr.Has(codec.PropSharedSubscriptionAvailable) {
		info.SharedSubs = pr.SharedSubAvailable == 1
	}
	s.info = &info
	s.quota = s.sendWindow()
	if s.cfg.OutboundAliases {
		s.aliasOut.reset(info.TopicAliasMax)
	}
	s.phase = phaseConnected
	s.everConnected = true
	s.push(Event{Kind: EventConnected, Info: s.info})
	if !p.SessionPresent {
		s.sessionLost(now)
	} else {
		s.resumeInbound(now)
	}
	s.restoreSubscriptions(now)
	for f := s.head; f != nil; f = f.next {
		f.resend, f.counted = true, false
	}
	s.flush(now)
	return nil
}

// sessionLost applies a CONNACK without session present: the server has no
// state of ours [MQTT-3.2.2-5], so its identifiers are free again, incoming
// QoS 2 state is dropped, and every subscription must be made again. The
// unacknowledged messages (the server may never have received them) are
// published again (republish) or failed with ErrSessionLost, as
// Config.SessionLost says.
func (s *Session) sessionLost(now time.Time) {
	if s.cfg.SessionLost == RepublishOnSessionLost && s.head != nil {
		s.republish(now)
		return
	}
	for f := s.head; f != nil; {
		next := f.next
		s.finishFlight(f, Event{Kind: EventPublished, Token: f.token, Err: ErrSessionLost}, false)
		f = next
	}
	for _, id := range s.stale {
		s.ids.free(id)
	}
	s.stale = s.stale[:0]
	s.dropInbound()
	if st := s.cfg.Store; st != nil {
		if err := st.Reset(); err != nil {
			s.storeFailed(now, err)
		}
	}
	s.forgetSubscriptions()
}

// republish puts the unacknowledged messages of a lost session at the front
// of the queue, in their original order, to be sent again as new messages
// (RepublishOnSessionLost). Each keeps its token, its old identifier
// (reserved) and its Store record under that identifier, rewritten as not
// released, until flush sends it with a new identifier; a restart before
// then restores it. The Store is changed record by record rather than
// Reset, so that a crash part way leaves every message recorded.
func (s *Session) republish(now time.Time) {
	st := s.cfg.Store
	var storeErr error
	var rep []*flight
	for f := s.head; f != nil; {
		next := f.next
		s.unlinkFlight(f)
		delete(s.flights, f.id)
		if f.counted {
			s.quota++
		}
		if f.state == stateReleased && st != nil && storeErr == nil {
			storeErr = st.PutOutbound(OutboundRecord{ID: f.id, Seq: f.seq, Packet: f.pkt})
		}
		f.oldID, f.id = f.id, 0
		f.state, f.resend, f.counted = stateQueued, false, false
		rep = append(rep, f)
		f = next
	}
	s.queue = append(rep, s.queue[s.qhead:]...)
	s.qhead = 0
	for _, id := range s.stale {
		s.ids.free(id)
		if st != nil && storeErr == nil {
			storeErr = st.DeleteOutbound(id)
		}
	}
	s.stale = s.stale[:0]
	for id, m := range s.inbound {
		if m.state == inReceived && st != nil && storeErr == nil {
			storeErr = st.DeleteInbound(id)
		}
	}
	s.dropInbound()
	if storeErr != nil {
		s.storeFailed(now, storeErr)
	}
	s.forgetSubscriptions()
}

// forgetSubscriptions marks every subscription for a new SUBSCRIBE and ends
// the unsubscriptions waiting for a connection: the server has none of them.
func (s *Session) forgetSubscriptions() {
	for _, g := range s.groups {
		if g.state == groupActive {
			g.state = groupPending
			g.restore = true
		}
	}
	for _, op := range s.unsubWait {
		s.push(Event{Kind: EventUnsubscribed, Token: op.token})
	}
	s.unsubWait = s.unsubWait[:0]
}

// dropInbound forgets every incoming QoS 1/2 state; acknowledgements of
// messages delivered before become no-ops.
func (s *Session) dropInbound() {
	for id, m := range s.inbound {
		delete(s.inbound, id)
		s.freeInMsg(m)
	}
	s.held = s.held[:0]
	s.inEpoch++
}

// ConnectionLost tells the session that the network connection ended (read
// EOF or reset, write error). It queues EventClosed with an error that wraps
// cause and ErrConnectionLost, unless the session already reported the end
// of this connection. When the server closed or reset the connection
// (cause nil, io.EOF, io.ErrUnexpectedEOF or a reset) while connecting on
// MQTT 5.0 before any packet came, the error's message adds that the broker
// may not speak MQTT 5.0 (some close the connection instead of answering);
// it still matches only ErrConnectionLost (and cause). A connection lost after its CONNACK counts
// as the server's doing for Config.PoisonCloses.
func (s *Session) ConnectionLost(now time.Time, cause error) {
	if s.phase == phaseIdle {
		return
	}
	e := &lostError{cause: cause}
	if s.phase == phaseConnecting && s.v == codec.V5 && !s.gotPacket && closedUnanswered(cause) {
		e.hint = "the broker closed the connection without answering the CONNECT: it may not speak MQTT 5.0"
	}
	s.close(now, e)
}

// closedUnanswered reports whether cause says the peer closed or reset the
// connection, rather than, say, a TLS alert that explains itself.
func closedUnanswered(cause error) bool {
	return cause == nil || errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF) ||
		strings.Contains(cause.Error(), "connection reset")
}

type lostError struct {
	cause error
	hint  string
}

func (e *lostError) Error() string {
	s := ErrConnectionLost.Error()
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	if e.hint != "" {
		s += " (" + e.hint + ")"
	}
	return s
}
func (e *lostError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrConnectionLost}
	}
	return []error{ErrConnectionLost, e.cause}
}

// fail ends the connection because of a protocol error: on 5.0 a DISCONNECT
// with the error's reason code is queued first [§4.13.1].
func (s *Session) fail(now time.Time, perr *ProtocolError) error {
	if s.phase == phaseIdle {
		return perr
	}
	if s.v == codec.V5 {
		d := codec.Disconnect{ReasonCode: perr.Reason}
		if !codec.ValidReason(codec.TypeDisconnect, s.v, d.ReasonCode) {
			d.ReasonCode = codec.ReasonProtocolError
		}
		s.out, _ = d.Append(s.out, s.v)
	}
	s.close(now, perr)
	return perr
}

// close ends the current connection: per-connection state is reset and
// EventClosed is queued. Session state (unacknowledged messages,
// subscriptions, incoming QoS 2 state) stays for the next connection.
func (s *Session) close(now time.Time, err error) {
	if s.phase == phaseIdle {
		return
	}
	if s.phase == phaseConnected {
		s.strike(closedByServer(err))
	}
	s.phase = phaseIdle
	// Pending pings and re-authentications fail with the reason of the end;
	// a normal Disconnect (err nil) fails them with ErrClosed, so that a nil
	// error never looks like a PINGRESP or a successful AUTH that did not come.
	opErr := err
	if opErr == nil {
		opErr = ErrClosed
	}
	for _, p := range s.pings {
		if p.token != 0 {
			s.push(Event{Kind: EventPong, Token: p.token, Err: opErr})
		}
	}
	s.pings = s.pings[:0]
	s.resumeAcks = s.resumeAcks[:0]
	for _, h := range s.held {
		if m := s.inbound[h.id]; m != nil && m.state == inHeld {
			delete(s.inbound, h.id)
			s.freeInMsg(m)
		}
	}
	s.held = s.held[:0]
	for id, op := range s.subOps {
		delete(s.subOps, id)
		s.ids.free(id)
		op.requeue(s)
	}
	for f := s.head; f != nil; f = f.next {
		f.counted = false
	}
	if s.auth.active && !s.auth.connecting && s.auth.token != 0 {
		s.push(Event{Kind: EventAuthenticated, Token: s.auth.token, Err: opErr})
	}
	s.auth = authState{}
	s.aliasOut.reset(0)
	s.push(Event{Kind: EventClosed, Err: err})
}

// handleDisconnect applies the server's DISCONNECT [§3.14].
func (s *Session) handleDisconnect(now time.Time, p *codec.Disconnect) error {
	e := &ReasonError{Packet: codec.TypeDisconnect, Code: p.ReasonCode, Reason: cloneStr(p.Props.ReasonString),
		User: cloneUser(p.Props.User), ServerReference: cloneStr(p.Props.ServerReference)}
	s.close(now, e)
	return nil
}

// Disconnect ends the connection normally: it queues a DISCONNECT (with
// reason code and properties on 5.0; reason 0x04 keeps the will) and then
// EventClosed with a nil error. The Reason String and User Properties are
// left out when they would make the DISCONNECT larger than the server's
// Maximum Packet Size, as the specification requires; the reason code is
// always sent. Unacknowledged messages and subscriptions stay in the session
// (and its Store) for a later Connect. It returns ErrNotConnected when there
// is no connection, and the codec's error for properties a client may not
// send.
func (s *Session) Disconnect(now time.Time, reason codec.ReasonCode, props *codec.Properties) error {
	if s.phase == phaseIdle {
		return ErrNotConnected
	}
	d := codec.Disconnect{ReasonCode: reason}
	if props != nil {
		if s.v == codec.V5 && props.Has(codec.PropSessionExpiryInterval) && s.cfg.SessionExpiry == 0 && props.SessionExpiry != 0 {
			return &ProtocolError{Reason: codec.ReasonProtocolError, Rule: "MQTT-3.14.2-2",
				Msg: "the session expiry interval cannot be raised from 0 at DISCONNECT"}
		}
		d.Props = *props
	}
	// [MQTT-3.14.2-3] [MQTT-3.14.2-4]: these two are the properties to drop.
	if max := s.info.MaximumPacket; max != 0 && s.v == codec.V5 && s.phase == phaseConnected && d.Size(s.v) > int(max) {
		d.Props.ReasonString, d.Props.User = "", nil
		d.Props.Present &^= 1<<codec.PropReasonString | 1<<codec.PropUserProperty
	}
	if err := codec.CheckSender(&d, codec.RoleClient, s.v); err != nil {
		return err
	}
	out, err := d.Append(s.out, s.v)
	if err != nil {
		return err
	}
	s.out = out
	s.close(now, nil)
	return nil
}

func cloneStr(s string) string {
	if s == "" {
		return ""
	}
	return string([]byte(s))
}

func cloneUser(u []codec.UserProperty) []codec.UserProperty {
	if len(u) == 0 {
		return nil
	}
	c := make([]codec.UserProperty, len(u))
	for i, p := range u {
		c[i] = codec.UserProperty{Key: cloneStr(p.Key), Value: cloneStr(p.Value)}
	}
	return c
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// put sets (*m)[k] = v, making the map on first use: the maps of what a
// session has never done (publishing, requests) stay nil.
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V)
	}
	(*m)[k] = v
}
