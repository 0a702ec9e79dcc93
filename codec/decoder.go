package codec

// Decoder decodes packets without allocating: it keeps one value of each
// packet type and reuses it on every call (a flyweight). It also applies the
// rules that depend on who sent a packet, when From says so.
//
// The packet Decode returns, and every string and slice in it, is valid only
// until the next call of Decode and only while src is not modified. Use
// Clone to keep a packet longer. A Decoder is not safe for concurrent use.
type Decoder struct {
	// Version is the protocol version of the connection.
	Version Version
	// From is the role of the peer whose bytes are decoded: a client decodes
	// with From = RoleServer. RoleAny skips the direction rules.
	From Role

	// PUBLISH, the packet of the hot path, lives in the Decoder; the others
	// (PUBACK too: a subscriber never receives one) are allocated on their
	// first use and kept, so that an idle connection does not carry a value
	// of every packet type (4 KiB).
	publish Publish
	puback  *Puback
	connect *connectAndWill
	other   [TypeAuth + 1]Packet // by type; PUBLISH, PUBACK and CONNECT unused
}

type connectAndWill struct {
	c Connect
	w Will
}

// packet returns the Decoder's value for type t, allocating it the first
// time; nil for a type that does not exist.
func (d *Decoder) packet(t Type) Packet {
	switch t {
	case TypePublish:
		return &d.publish
	case TypePuback:
		return d.pubackValue()
	case TypeConnect:
		return &d.connectWill().c
	}
	if t > TypeAuth {
		return nil
	}
	if p := d.other[t]; p != nil {
		return p
	}
	var p Packet
	switch t {
	case TypeConnack:
		p = new(Connack)
	case TypePubrec:
		p = new(Pubrec)
	case TypePubrel:
		p = new(Pubrel)
	case TypePubcomp:
		p = new(Pubcomp)
	case TypeSubscribe:
		p = new(Subscribe)
	case TypeSuback:
		p = new(Suback)
	case TypeUnsubscribe:
		p = new(Unsubscribe)
	case TypeUnsuback:
		p = new(Unsuback)
	case TypePingreq:
		p = new(Pingreq)
	case TypePingresp:
		p = new(Pingresp)
	case TypeDisconnect:
		p = new(Disconnect)
	case TypeAuth:
		p = new(Auth)
	default:
		return nil
	}
	d.other[t] = p
	return p
}

// Trim lets go of the packet values the Decoder allocated on first use
// (every type but PUBLISH), so that a connection that has gone quiet holds
// only the PUBLISH value; the next packet of such a type allocates its
// value again. Packets Decode returned before are not changed: they stay
// valid for as long as they were (until the next Decode).
func (d *Decoder) Trim() {
	d.puback = nil
	d.connect = nil
	clear(d.other[:])
}

func (d *Decoder) pubackValue() *Puback {
	if d.puback == nil {
		d.puback = new(Puback)
	}
	return d.puback
}

func (d *Decoder) connectWill() *connectAndWill {
	if d.connect == nil {
		d.connect = new(connectAndWill)
	}
	return d.connect
}

// Decode decodes the packet at the start of src as codec.Decode does, into
// the Decoder's own packet values, and then checks that the sender's role may
// send it (see CheckSender). It does not allocate in steady state.
func (d *Decoder) Decode(src []byte) (Packet, int, error) {
	if !d.Version.Valid() {
		return nil, 0, badVersion(d.Version)
	}
	h, err := ParseHeader(src)
	if err != nil {
		return nil, 0, err
	}
	if d.From != RoleAny && !mayReceive(d.From, h.Type, d.Version) {
		return nil, 0, wrongDirection(h.Type, d.From, 0)
	}
	if len(src) < h.Size() {
		return nil, 0, ErrIncomplete
	}
	var p Packet
	var err2 error
	b := src[:h.Size()]
	switch h.Type {
	case TypePublish: // the hot path: no interface dispatch
		p, err2 = &d.publish, d.publish.decode(b, h, d.Version)
	case TypePuback:
		pa := d.pubackValue()
		p, err2 = pa, (*ack)(pa).decode(b, h, d.Version)
	case TypeConnect:
		cw := d.connectWill()
		p, err2 = &cw.c, cw.c.decodeInto(b, h, d.Version, &cw.w)
	default:
		p = d.packet(h.Type)
		err2 = decodeInto(p, b, h, d.Version)
	}
	if err2 != nil {
		return nil, 0, err2
	}
	if d.From != RoleAny {
		if err := checkSender(p, d.From, d.Version, h.Len); err != nil {
			return nil, 0, err
		}
	}
	return p, h.Size(), nil
}

var (
	clientSends = types(TypeConnect, TypePublish, TypePuback, TypePubrec, TypePubrel, TypePubcomp,
		TypeSubscribe, TypeUnsubscribe, TypePingreq, TypeDisconnect, TypeAuth)
	serverSends = types(TypeConnack, TypePublish, TypePuback, TypePubrec, TypePubrel, TypePubcomp,
		TypeSuback, TypeUnsuback, TypePingresp, TypeDisconnect, TypeAuth)
	authClientReasons = makeReasonSet(ReasonContinueAuthentication, ReasonReauthenticate)
	authServerReasons = makeReasonSet(ReasonSuccess, ReasonContinueAuthentication)
)

// mayReceive reports whether a peer of role from may send packet type t:
// the directions of the packet type table [§2.1.2]. On MQTT 3.1.1 only
// the client sends DISCONNECT (3.1.1 section 3.14).
func mayReceive(from Role, t Type, v Version) bool {
	if from == RoleClient {
		return clientSends&(1<<t) != 0
	}
	if t == TypeDisconnect && v == V311 {
		return false
	}
	return serverSends&(1<<t) != 0
}

func wrongDirection(t Type, from Role, off int) *Error {
	return newErr(ReasonProtocolError, t, off, "§2.1.2", "a "+from.String()+" does not send "+t.String())
}

// CheckSender reports whether a packet may be sent by a peer of the given
// role on version v: the direction of each packet type [§2.1.2], no
// Subscription Identifier in a client's PUBLISH [MQTT-3.3.4-6], the
// DISCONNECT reason codes of each side [§3.14.2.1], no Session Expiry
// Interval in a server's DISCONNECT [MQTT-3.14.2-2], and the AUTH reason
// codes of each side [§3.15.2.1]. The error is an *Error with
// ReasonProtocolError and Offset -1. RoleAny accepts every packet.
func CheckSender(p Packet, from Role, v Version) error {
	if from == RoleAny {
		return nil
	}
	if !mayReceive(from, p.Type(), v) {
		return wrongDirection(p.Type(), from, -1)
	}
	if err := checkSender(p, from, v, -1); err != nil {
		return err
	}
	return nil
}

func checkSender(p Packet, from Role, v Version, off int) *Error {
	if v != V5 {
		return nil
	}
	switch p := p.(type) {
	case *Publish:
		if from == RoleClient && len(p.Props.SubscriptionIDs) > 0 {
			return newErr(ReasonProtocolError, TypePublish, off, "MQTT-3.3.4-6", "a client's PUBLISH carries a subscription identifier")
		}
	case *Disconnect:
		if from == RoleClient && !disconnectClientReasons.has(p.ReasonCode) {
			return newErr(ReasonProtocolError, TypeDisconnect, off, "MQTT-3.14.2-1", "reason code "+hexByte(byte(p.ReasonCode))+" is the server's")
		}
		if from == RoleServer {
			if !disconnectServerReasons.has(p.ReasonCode) {
				return newErr(ReasonProtocolError, TypeDisconnect, off, "MQTT-3.14.2-1", "reason code "+hexByte(byte(p.ReasonCode))+" is the client's")
			}
			if p.Props.Has(PropSessionExpiryInterval) {
				return newErr(ReasonProtocolError, TypeDisconnect, off, "MQTT-3.14.2-2", "a server's DISCONNECT carries a session expiry interval")
			}
		}
	case *Auth:
		set := &authServerReasons
		if from == RoleClient {
			set = &authClientReasons
		}
		if !set.has(p.ReasonCode) {
			return newErr(ReasonProtocolError, TypeAuth, off, "MQTT-3.15.2-1", "a "+from.String()+" does not send AUTH with reason code "+hexByte(byte(p.ReasonCode)))
		}
	}
	return nil
}
