package codec

import (
	"math/bits"
	"strconv"
)

// PropID is an MQTT 5.0 property identifier [§2.2.2.2].
type PropID byte

// The 27 properties of MQTT 5.0, named as in the spec.
const (
	PropPayloadFormatIndicator          PropID = 0x01 // Byte: PUBLISH, Will
	PropMessageExpiryInterval           PropID = 0x02 // Four Byte Integer: PUBLISH, Will
	PropContentType                     PropID = 0x03 // UTF-8 string: PUBLISH, Will
	PropResponseTopic                   PropID = 0x08 // UTF-8 string: PUBLISH, Will
	PropCorrelationData                 PropID = 0x09 // Binary Data: PUBLISH, Will
	PropSubscriptionIdentifier          PropID = 0x0B // Variable Byte Integer: PUBLISH, SUBSCRIBE
	PropSessionExpiryInterval           PropID = 0x11 // Four Byte Integer: CONNECT, CONNACK, DISCONNECT
	PropAssignedClientIdentifier        PropID = 0x12 // UTF-8 string: CONNACK
	PropServerKeepAlive                 PropID = 0x13 // Two Byte Integer: CONNACK
	PropAuthenticationMethod            PropID = 0x15 // UTF-8 string: CONNECT, CONNACK, AUTH
	PropAuthenticationData              PropID = 0x16 // Binary Data: CONNECT, CONNACK, AUTH
	PropRequestProblemInformation       PropID = 0x17 // Byte: CONNECT
	PropWillDelayInterval               PropID = 0x18 // Four Byte Integer: Will
	PropRequestResponseInformation      PropID = 0x19 // Byte: CONNECT
	PropResponseInformation             PropID = 0x1A // UTF-8 string: CONNACK
	PropServerReference                 PropID = 0x1C // UTF-8 string: CONNACK, DISCONNECT
	PropReasonString                    PropID = 0x1F // UTF-8 string: CONNACK, PUBACK...PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH
	PropReceiveMaximum                  PropID = 0x21 // Two Byte Integer: CONNECT, CONNACK
	PropTopicAliasMaximum               PropID = 0x22 // Two Byte Integer: CONNECT, CONNACK
	PropTopicAlias                      PropID = 0x23 // Two Byte Integer: PUBLISH
	PropMaximumQoS                      PropID = 0x24 // Byte: CONNACK
	PropRetainAvailable                 PropID = 0x25 // Byte: CONNACK
	PropUserProperty                    PropID = 0x26 // UTF-8 string pair: every packet with properties
	PropMaximumPacketSize               PropID = 0x27 // Four Byte Integer: CONNECT, CONNACK
	PropWildcardSubscriptionAvailable   PropID = 0x28 // Byte: CONNACK
	PropSubscriptionIdentifierAvailable PropID = 0x29 // Byte: CONNACK
	PropSharedSubscriptionAvailable     PropID = 0x2A // Byte: CONNACK
)

type propKind byte

const (
	kindNone propKind = iota
	kindByte
	kindUint16
	kindUint32
	kindVBI
	kindString
	kindBinary
	kindPair
)

// ctxWill stands for the Will Properties of CONNECT in the allowed-packet
// masks; packet type 0 is reserved, so the bit is free.
const ctxWill Type = 0

type propInfo struct {
	kind    propKind
	allowed uint32 // bit t set: packet type t may carry it (bit 0: Will Properties)
	name    string
}

func types(ts ...Type) uint32 {
	var m uint32
	for _, t := range ts {
		m |= 1 << t
	}
	return m
}

var propTable = [...]propInfo{
	PropPayloadFormatIndicator:          {kindByte, types(TypePublish, ctxWill), "payload format indicator"},
	PropMessageExpiryInterval:           {kindUint32, types(TypePublish, ctxWill), "message expiry interval"},
	PropContentType:                     {kindString, types(TypePublish, ctxWill), "content type"},
	PropResponseTopic:                   {kindString, types(TypePublish, ctxWill), "response topic"},
	PropCorrelationData:                 {kindBinary, types(TypePublish, ctxWill), "correlation data"},
	PropSubscriptionIdentifier:          {kindVBI, types(TypePublish, TypeSubscribe), "subscription identifier"},
	PropSessionExpiryInterval:           {kindUint32, types(TypeConnect, TypeConnack, TypeDisconnect), "session expiry interval"},
	PropAssignedClientIdentifier:        {kindString, types(TypeConnack), "assigned client identifier"},
	PropServerKeepAlive:                 {kindUint16, types(TypeConnack), "server keep alive"},
	PropAuthenticationMethod:            {kindString, types(TypeConnect, TypeConnack, TypeAuth), "authentication method"},
	PropAuthenticationData:              {kindBinary, types(TypeConnect, TypeConnack, TypeAuth), "authentication data"},
	PropRequestProblemInformation:       {kindByte, types(TypeConnect), "request problem information"},
	PropWillDelayInterval:               {kindUint32, types(ctxWill), "will delay interval"},
	PropRequestResponseInformation:      {kindByte, types(TypeConnect), "request response information"},
	PropResponseInformation:             {kindString, types(TypeConnack), "response information"},
	PropServerReference:                 {kindString, types(TypeConnack, TypeDisconnect), "server reference"},
	PropReasonString:                    {kindString, types(TypeConnack, TypePuback, TypePubrec, TypePubrel, TypePubcomp, TypeSuback, TypeUnsuback, TypeDisconnect, TypeAuth), "reason string"},
	PropReceiveMaximum:                  {kindUint16, types(TypeConnect, TypeConnack), "receive maximum"},
	PropTopicAliasMaximum:               {kindUint16, types(TypeConnect, TypeConnack), "topic alias maximum"},
	PropTopicAlias:                      {kindUint16, types(TypePublish), "topic alias"},
	PropMaximumQoS:                      {kindByte, types(TypeConnack), "maximum QoS"},
	PropRetainAvailable:                 {kindByte, types(TypeConnack), "retain available"},
	PropUserProperty:                    {kindPair, types(ctxWill, TypeConnect, TypeConnack, TypePublish, TypePuback, TypePubrec, TypePubrel, TypePubcomp, TypeSubscribe, TypeSuback, TypeUnsubscribe, TypeUnsuback, TypeDisconnect, TypeAuth), "user property"},
	PropMaximumPacketSize:               {kindUint32, types(TypeConnect, TypeConnack), "maximum packet size"},
	PropWildcardSubscriptionAvailable:   {kindByte, types(TypeConnack), "wildcard subscription available"},
	PropSubscriptionIdentifierAvailable: {kindByte, types(TypeConnack), "subscription identifier available"},
	PropSharedSubscriptionAvailable:     {kindByte, types(TypeConnack), "shared subscription available"},
}

// allowedMask[t] is the set of properties packet type t may carry
// (index 0: the Will Properties).
var allowedMask [16]PropSet

func init() {
	for id, info := range propTable {
		if info.kind == kindNone {
			continue
		}
		for t := Type(0); t < 16; t++ {
			if info.allowed&(1<<t) != 0 {
				allowedMask[t] |= 1 << id
			}
		}
	}
}

// String returns the spec's name of the property in lower case, such as
// "topic alias", or "property 0xNN" for an unknown identifier.
func (id PropID) String() string {
	if int(id) < len(propTable) && propTable[id].kind != kindNone {
		return propTable[id].name
	}
	return "property 0x" + strconv.FormatUint(uint64(id), 16)
}

// PropSet is a set of property identifiers: bit n stands for PropID n.
type PropSet uint64

// Has reports whether id is in the set.
func (s PropSet) Has(id PropID) bool { return id < 64 && s&(1<<id) != 0 }

// UserProperty is one name/value pair of the User Property (0x26). A packet
// may carry many; their order is kept and repeats are allowed [MQTT-3.3.2-18].
type UserProperty struct {
	Key   string
	Value string
}

// Properties holds the MQTT 5.0 properties of one packet (or of a Will). The
// same struct serves every packet type; Append refuses a property the packet
// type does not allow, as Decode does.
//
// Presence. A property with a zero value is ambiguous, so a property is
// encoded when its field is not zero (a non-empty string or byte slice) or
// when its bit is set in Present; use Mark to send a zero value, such as a
// Message Expiry Interval of 0. Decode sets the bit of every property it
// finds, so decoding and encoding again gives back the same properties. User
// and SubscriptionIDs are encoded once per element.
//
// Decoded strings and byte slices alias the decoded buffer (see the package
// documentation); Clone makes an independent copy.
type Properties struct {
	// Present has the bit of each property that is present even with a zero
	// value. Decode sets it for every property found.
	Present PropSet

	PayloadFormat        byte           // 0x01: 0 unspecified bytes, 1 UTF-8 data
	MessageExpiry        uint32         // 0x02: seconds
	ContentType          string         // 0x03
	ResponseTopic        string         // 0x08: a topic name, no wildcards
	CorrelationData      []byte         // 0x09
	SubscriptionIDs      []uint32       // 0x0B: several in PUBLISH, at most one in SUBSCRIBE; 1..268,435,455
	SessionExpiry        uint32         // 0x11: seconds
	AssignedClientID     string         // 0x12
	ServerKeepAlive      uint16         // 0x13: seconds
	AuthMethod           string         // 0x15
	AuthData             []byte         // 0x16
	RequestProblemInfo   byte           // 0x17: 0 or 1; absent means 1
	WillDelay            uint32         // 0x18: seconds
	RequestResponseInfo  byte           // 0x19: 0 or 1
	ResponseInfo         string         // 0x1A
	ServerReference      string         // 0x1C
	ReasonString         string         // 0x1F
	ReceiveMaximum       uint16         // 0x21: not 0; absent means 65,535
	TopicAliasMaximum    uint16         // 0x22
	TopicAlias           uint16         // 0x23: not 0
	MaximumQoS           byte           // 0x24: 0 or 1; absent means 2
	RetainAvailable      byte           // 0x25: 0 or 1; absent means 1
	User                 []UserProperty // 0x26: in order, repeats allowed
	MaximumPacketSize    uint32         // 0x27: not 0; absent means no limit
	WildcardSubAvailable byte           // 0x28: 0 or 1; absent means 1
	SubIDAvailable       byte           // 0x29: 0 or 1; absent means 1
	SharedSubAvailable   byte           // 0x2A: 0 or 1; absent means 1
}

// Mark records that property id is present, so that it is encoded even when
// its value is zero. Marking User or SubscriptionIDs has no effect on
// encoding: those are present when they have elements.
func (p *Properties) Mark(id PropID) {
	if id < 64 {
		p.Present |= 1 << id
	}
}

// Has reports whether property id is present: its bit is set in Present or
// its field holds a value that is not zero.
func (p *Properties) Has(id PropID) bool { return p.mask().Has(id) }

// Empty reports whether no property is present.
func (p *Properties) Empty() bool { return p.mask() == 0 }

// mask computes the set of properties that are present.
func (p *Properties) mask() PropSet {
	m := p.Present &^ (1<<PropUserProperty | 1<<PropSubscriptionIdentifier)
	if p.PayloadFormat != 0 {
		m |= 1 << PropPayloadFormatIndicator
	}
	if p.MessageExpiry != 0 {
		m |= 1 << PropMessageExpiryInterval
	}
	if p.ContentType != "" {
		m |= 1 << PropContentType
	}
	if p.ResponseTopic != "" {
		m |= 1 << PropResponseTopic
	}
	if len(p.CorrelationData) != 0 {
		m |= 1 << PropCorrelationData
	}
	if len(p.SubscriptionIDs) != 0 {
		m |= 1 << PropSubscriptionIdentifier
	}
	if p.SessionExpiry != 0 {
		m |= 1 << PropSessionExpiryInterval
	}
	if p.AssignedClientID != "" {
		m |= 1 << PropAssignedClientIdentifier
	}
	if p.ServerKeepAlive != 0 {
		m |= 1 << PropServerKeepAlive
	}
	if p.AuthMethod != "" {
		m |= 1 << PropAuthenticationMethod
	}
	if len(p.AuthData) != 0 {
		m |= 1 << PropAuthenticationData
	}
	if p.RequestProblemInfo|p.RequestResponseInfo|p.MaximumQoS|p.RetainAvailable|
		p.WildcardSubAvailable|p.SubIDAvailable|p.SharedSubAvailable != 0 {
		m |= p.byteMask()
	}
	if p.WillDelay != 0 {
		m |= 1 << PropWillDelayInterval
	}
	if p.ResponseInfo != "" {
		m |= 1 << PropResponseInformation
	}
	if p.ServerReference != "" {
		m |= 1 << PropServerReference
	}
	if p.ReasonString != "" {
		m |= 1 << PropReasonString
	}
	if p.ReceiveMaximum|p.TopicAliasMaximum|p.TopicAlias != 0 {
		if p.ReceiveMaximum != 0 {
			m |= 1 << PropReceiveMaximum
		}
		if p.TopicAliasMaximum != 0 {
			m |= 1 << PropTopicAliasMaximum
		}
		if p.TopicAlias != 0 {
			m |= 1 << PropTopicAlias
		}
	}
	if len(p.User) != 0 {
		m |= 1 << PropUserProperty
	}
	if p.MaximumPacketSize != 0 {
		m |= 1 << PropMaximumPacketSize
	}
	return m
}

// byteMask is the part of mask for the CONNECT and CONNACK byte properties,
// which a PUBLISH never carries.
func (p *Properties) byteMask() PropSet {
	var m PropSet
	if p.RequestProblemInfo != 0 {
		m |= 1 << PropRequestProblemInformation
	}
	if p.RequestResponseInfo != 0 {
		m |= 1 << PropRequestResponseInformation
	}
	if p.MaximumQoS != 0 {
		m |= 1 << PropMaximumQoS
	}
	if p.RetainAvailable != 0 {
		m |= 1 << PropRetainAvailable
	}
	if p.WildcardSubAvailable != 0 {
		m |= 1 << PropWildcardSubscriptionAvailable
	}
	if p.SubIDAvailable != 0 {
		m |= 1 << PropSubscriptionIdentifierAvailable
	}
	if p.SharedSubAvailable != 0 {
		m |= 1 << PropSharedSubscriptionAvailable
	}
	return m
}

// reset clears p for a new decode, keeping the capacity of its slices so that
// a reused Properties decodes without allocating.
func (p *Properties) reset() {
	user, ids := p.User[:0], p.SubscriptionIDs[:0]
	*p = Properties{User: user, SubscriptionIDs: ids}
}

// Clone returns a deep copy of p that shares no memory with it or with a
// decoded buffer.
func (p *Properties) Clone() Properties {
	c := *p
	c.ContentType = cloneString(p.ContentType)
	c.ResponseTopic = cloneString(p.ResponseTopic)
	c.CorrelationData = cloneBytes(p.CorrelationData)
	c.AssignedClientID = cloneString(p.AssignedClientID)
	c.AuthMethod = cloneString(p.AuthMethod)
	c.AuthData = cloneBytes(p.AuthData)
	c.ResponseInfo = cloneString(p.ResponseInfo)
	c.ServerReference = cloneString(p.ServerReference)
	c.ReasonString = cloneString(p.ReasonString)
	if p.SubscriptionIDs != nil {
		c.SubscriptionIDs = append([]uint32(nil), p.SubscriptionIDs...)
	}
	if p.User != nil {
		c.User = make([]UserProperty, len(p.User))
		for i, u := range p.User {
			c.User[i] = UserProperty{cloneString(u.Key), cloneString(u.Value)}
		}
	}
	return c
}

func cloneString(s string) string {
	if s == "" {
		return ""
	}
	return string(append([]byte(nil), s...))
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// propsSize validates the properties for packet type t (ctxWill for a Will)
// and returns the length of the encoded property list, without the Property
// Length in front of it.
func (p *Properties) propsSize(t, pt Type) (int, *Error) {
	return p.propsSizeMask(p.mask(), t, pt)
}

// propsSizeMask is propsSize for a mask the caller has computed.
func (p *Properties) propsSizeMask(m PropSet, t, pt Type) (int, *Error) {
	if m == 0 {
		return 0, nil
	}
	if bad := m &^ allowedMask[t]; bad != 0 {
		id := PropID(bits.TrailingZeros64(uint64(bad)))
		return 0, encErr(ReasonMalformedPacket, pt, "§2.2.2.2", id.String()+" is not allowed in "+ctxName(t))
	}
	n := 0
	for mm := m; mm != 0; mm &= mm - 1 {
		id := PropID(bits.TrailingZeros64(uint64(mm)))
		switch propTable[id].kind {
		case kindByte:
			n += 2
		case kindUint16:
			n += 3
		case kindUint32:
			n += 5
		case kindVBI: // subscription identifiers
			if t == TypeSubscribe && len(p.SubscriptionIDs) > 1 {
				return 0, encErr(ReasonProtocolError, pt, "§3.8.2.1.2", "more than one subscription identifier")
			}
			for _, sid := range p.SubscriptionIDs {
				if sid == 0 || sid > MaxSubscriptionID {
					return 0, encErr(ReasonProtocolError, pt, "§3.8.2.1.2", "subscription identifier out of range 1..268435455")
				}
				n += 1 + vbiLen(int(sid))
			}
		case kindString:
			s := p.stringProp(id)
			if len(s) > maxString {
				return 0, encErr(ReasonMalformedPacket, pt, "§1.5.4", id.String()+" is longer than 65535 bytes")
			}
			if !validUTF8String(s) {
				return 0, encErr(ReasonMalformedPacket, pt, "MQTT-1.5.4-1", id.String()+" is not valid UTF-8 or contains U+0000")
			}
			n += 3 + len(s)
		case kindBinary:
			b := p.binaryProp(id)
			if len(b) > maxString {
				return 0, encErr(ReasonMalformedPacket, pt, "§1.5.6", id.String()+" is longer than 65535 bytes")
			}
			n += 3 + len(b)
		case kindPair:
			for _, u := range p.User {
				if len(u.Key) > maxString || len(u.Value) > maxString {
					return 0, encErr(ReasonMalformedPacket, pt, "§1.5.7", "user property is longer than 65535 bytes")
				}
				if !validUTF8String(u.Key) || !validUTF8String(u.Value) {
					return 0, encErr(ReasonMalformedPacket, pt, "MQTT-1.5.7-1", "user property is not valid UTF-8 or contains U+0000")
				}
				n += 5 + len(u.Key) + len(u.Value)
			}
		}
	}
	if err := p.checkValues(m, t, pt, nil, 0); err != nil {
		return 0, err
	}
	return n, nil
}

// checkValues applies the range rules of the properties, the same for
// encoding (list nil: the error's offset is -1) and decoding (list is the
// property list, at byte base of the packet: the offset is that of the
// property that breaks the rule).
func (p *Properties) checkValues(m PropSet, t, pt Type, list []byte, base int) *Error {
	if m&valueRules == 0 {
		return nil
	}
	at := func(id PropID) int {
		if list == nil {
			return -1
		}
		return base + propOffset(list, id)
	}
	fail := func(id PropID, rule, msg string) *Error {
		return newErr(ReasonProtocolError, pt, at(id), rule, msg)
	}
	if m.Has(PropPayloadFormatIndicator) && p.PayloadFormat > 1 {
		return fail(PropPayloadFormatIndicator, "§3.3.2.3.2", "payload format indicator must be 0 or 1")
	}
	if m.Has(PropRequestProblemInformation) && p.RequestProblemInfo > 1 {
		return fail(PropRequestProblemInformation, "§3.1.2.11.7", "request problem information must be 0 or 1")
	}
	if m.Has(PropRequestResponseInformation) && p.RequestResponseInfo > 1 {
		return fail(PropRequestResponseInformation, "§3.1.2.11.6", "request response information must be 0 or 1")
	}
	if m.Has(PropMaximumQoS) && p.MaximumQoS > 1 {
		return fail(PropMaximumQoS, "§3.2.2.3.4", "maximum QoS must be 0 or 1")
	}
	if m.Has(PropRetainAvailable) && p.RetainAvailable > 1 {
		return fail(PropRetainAvailable, "§3.2.2.3.5", "retain available must be 0 or 1")
	}
	if m.Has(PropWildcardSubscriptionAvailable) && p.WildcardSubAvailable > 1 {
		return fail(PropWildcardSubscriptionAvailable, "§3.2.2.3.11", "wildcard subscription available must be 0 or 1")
	}
	if m.Has(PropSubscriptionIdentifierAvailable) && p.SubIDAvailable > 1 {
		return fail(PropSubscriptionIdentifierAvailable, "§3.2.2.3.12", "subscription identifier available must be 0 or 1")
	}
	if m.Has(PropSharedSubscriptionAvailable) && p.SharedSubAvailable > 1 {
		return fail(PropSharedSubscriptionAvailable, "§3.2.2.3.13", "shared subscription available must be 0 or 1")
	}
	if m.Has(PropReceiveMaximum) && p.ReceiveMaximum == 0 {
		return fail(PropReceiveMaximum, "§3.1.2.11.3", "receive maximum must not be 0")
	}
	if m.Has(PropMaximumPacketSize) && p.MaximumPacketSize == 0 {
		return fail(PropMaximumPacketSize, "§3.1.2.11.4", "maximum packet size must not be 0")
	}
	if m.Has(PropTopicAlias) && p.TopicAlias == 0 {
		return fail(PropTopicAlias, "MQTT-3.3.2-8", "topic alias must not be 0")
	}
	if t == TypeConnect && m.Has(PropAuthenticationData) && !m.Has(PropAuthenticationMethod) {
		return fail(PropAuthenticationData, "§3.1.2.11.10", "authentication data without an authentication method")
	}
	if m.Has(PropResponseTopic) {
		if err := checkTopicName(p.ResponseTopic); err != nil {
			e := newErr(topicNameReason, pt, at(PropResponseTopic), "MQTT-3.3.2-14", "response topic: "+err.Msg)
			e.Err = err
			return e
		}
	}
	return nil
}

// propOffset returns the offset in list (a well-formed property list,
// without its length) of the first property id. It serves error messages
// only, so it walks the list again rather than making the decoder note
// where each property starts.
func propOffset(list []byte, id PropID) int {
	off := 0
	for off < len(list) {
		cur := PropID(list[off])
		if cur == id {
			return off
		}
		off++
		if int(cur) >= len(propTable) {
			break
		}
		switch propTable[cur].kind {
		case kindByte:
			off++
		case kindUint16:
			off += 2
		case kindUint32:
			off += 4
		case kindVBI:
			for off < len(list) && list[off]&0x80 != 0 {
				off++
			}
			off++
		case kindString, kindBinary:
			if off+2 > len(list) {
				return len(list)
			}
			off += 2 + (int(list[off])<<8 | int(list[off+1]))
		case kindPair:
			for range 2 {
				if off+2 > len(list) {
					return len(list)
				}
				off += 2 + (int(list[off])<<8 | int(list[off+1]))
			}
		default:
			return len(list)
		}
	}
	return min(off, len(list))
}

// valueRules holds the properties checkValues has a rule for.
const valueRules = PropSet(1<<PropPayloadFormatIndicator | 1<<PropRequestProblemInformation |
	1<<PropRequestResponseInformation | 1<<PropMaximumQoS | 1<<PropRetainAvailable |
	1<<PropWildcardSubscriptionAvailable | 1<<PropSubscriptionIdentifierAvailable |
	1<<PropSharedSubscriptionAvailable | 1<<PropReceiveMaximum | 1<<PropMaximumPacketSize |
	1<<PropTopicAlias | 1<<PropAuthenticationData | 1<<PropResponseTopic)

func ctxName(t Type) string {
	if t == ctxWill {
		return "will properties"
	}
	return t.String()
}

func (p *Properties) stringProp(id PropID) string {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropAssignedClientIdentifier:
		return p.AssignedClientID
	case PropAuthenticationMethod:
		return p.AuthMethod
	case PropResponseInformation:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return ""
}

func (p *Properties) binaryProp(id PropID) []byte {
	switch id {
	case PropCorrelationData:
		return p.CorrelationData
	case PropAuthenticationData:
		return p.AuthData
	}
	return nil
}

// appendProps appends the Property Length and the properties; size must be
// the value propsSize returned. Properties are written in identifier order,
// user properties in their own order.
func (p *Properties) appendProps(dst []byte, size int) []byte {
	if size == 0 {
		return append(dst, 0)
	}
	return p.appendPropsMask(dst, size, p.mask())
}

// appendPropsMask is appendProps for a mask the caller has computed.
func (p *Properties) appendPropsMask(dst []byte, size int, m PropSet) []byte {
	dst = appendVBI(dst, size)
	for ; m != 0; m &= m - 1 {
		id := PropID(bits.TrailingZeros64(uint64(m)))
		switch id {
		case PropPayloadFormatIndicator:
			dst = append(dst, byte(id), p.PayloadFormat)
		case PropMessageExpiryInterval:
			dst = appendUint32(append(dst, byte(id)), p.MessageExpiry)
		case PropSubscriptionIdentifier:
			for _, sid := range p.SubscriptionIDs {
				dst = appendVBI(append(dst, byte(id)), int(sid))
			}
		case PropSessionExpiryInterval:
			dst = appendUint32(append(dst, byte(id)), p.SessionExpiry)
		case PropServerKeepAlive:
			dst = appendUint16(append(dst, byte(id)), p.ServerKeepAlive)
		case PropRequestProblemInformation:
			dst = append(dst, byte(id), p.RequestProblemInfo)
		case PropWillDelayInterval:
			dst = appendUint32(append(dst, byte(id)), p.WillDelay)
		case PropRequestResponseInformation:
			dst = append(dst, byte(id), p.RequestResponseInfo)
		case PropReceiveMaximum:
			dst = appendUint16(append(dst, byte(id)), p.ReceiveMaximum)
		case PropTopicAliasMaximum:
			dst = appendUint16(append(dst, byte(id)), p.TopicAliasMaximum)
		case PropTopicAlias:
			dst = appendUint16(append(dst, byte(id)), p.TopicAlias)
		case PropMaximumQoS:
			dst = append(dst, byte(id), p.MaximumQoS)
		case PropRetainAvailable:
			dst = append(dst, byte(id), p.RetainAvailable)
		case PropUserProperty:
			for _, u := range p.User {
				dst = appendString(appendString(append(dst, byte(id)), u.Key), u.Value)
			}
		case PropMaximumPacketSize:
			dst = appendUint32(append(dst, byte(id)), p.MaximumPacketSize)
		case PropWildcardSubscriptionAvailable:
			dst = append(dst, byte(id), p.WildcardSubAvailable)
		case PropSubscriptionIdentifierAvailable:
			dst = append(dst, byte(id), p.SubIDAvailable)
		case PropSharedSubscriptionAvailable:
			dst = append(dst, byte(id), p.SharedSubAvailable)
		case PropCorrelationData, PropAuthenticationData:
			dst = appendBinary(append(dst, byte(id)), p.binaryProp(id))
		default: // the string properties
			dst = appendString(append(dst, byte(id)), p.stringProp(id))
		}
	}
	return dst
}

// decodeProps reads a Property Length and the properties after it from
// b[off:end] for packet type t (ctxWill for a Will), reporting errors against
// packet type pt. It returns the offset after the properties. One switch on
// the identifier reads each value in place: this is the hot path of every
// MQTT 5.0 PUBLISH.
func (p *Properties) decodeProps(b []byte, off, end int, t, pt Type) (int, error) {
	if off < end && b[off] == 0 { // no properties: the common case
		p.Present = 0
		return off + 1, nil
	}
	n, next, res := readVBI(b, off, end)
	switch res {
	case vbiOK:
	case vbiNotMinimal:
		return off, malformed(pt, off, "MQTT-1.5.5-1", "property length is not minimally encoded")
	default:
		return off, malformed(pt, off, "§2.2.2.1", "property length runs past the packet")
	}
	off = next
	if n > end-off {
		return off, malformed(pt, off, "§2.2.2.1", "property length runs past the packet")
	}
	end = off + n
	listStart := off
	var seen PropSet
	allowed := allowedMask[t]
	for off < end {
		start := off
		id := PropID(b[off])
		off++
		bit := PropSet(1) << (id & 63)
		if id >= 64 || allowed&bit == 0 {
			if id >= 0x80 || int(id) >= len(propTable) || propTable[id].kind == kindNone {
				return start, malformed(pt, start, "§2.2.2.2", "unknown property identifier")
			}
			return start, malformed(pt, start, "§2.2.2.2", id.String()+" is not allowed in "+ctxName(t))
		}
		if seen&bit != 0 && id != PropUserProperty && !(id == PropSubscriptionIdentifier && t == TypePublish) {
			return start, protocolErr(pt, start, "§2.2.2.2", id.String()+" is included more than once")
		}
		seen |= bit
		rest := end - off
		switch id {
		case PropUserProperty:
			if rest < 4 {
				return start, runsPast(pt, start, id)
			}
			kl := int(b[off])<<8 | int(b[off+1])
			if rest < 4+kl {
				return start, runsPast(pt, start, id)
			}
			k := b[off+2 : off+2+kl : off+2+kl]
			off += 2 + kl
			vl := int(b[off])<<8 | int(b[off+1])
			if end-off < 2+vl {
				return start, runsPast(pt, start, id)
			}
			v := b[off+2 : off+2+vl : off+2+vl]
			off += 2 + vl
			if !validUTF8(k) || !validUTF8(v) {
				return start, malformed(pt, start, "MQTT-1.5.7-1", "user property is not valid UTF-8 or contains U+0000")
			}
			p.User = append(p.User, UserProperty{bstr(k), bstr(v)})
		case PropMessageExpiryInterval, PropSessionExpiryInterval, PropWillDelayInterval, PropMaximumPacketSize:
			if rest < 4 {
				return start, runsPast(pt, start, id)
			}
			v := uint32(b[off])<<24 | uint32(b[off+1])<<16 | uint32(b[off+2])<<8 | uint32(b[off+3])
			off += 4
			switch id {
			case PropMessageExpiryInterval:
				p.MessageExpiry = v
			case PropSessionExpiryInterval:
				p.SessionExpiry = v
			case PropWillDelayInterval:
				p.WillDelay = v
			default:
				p.MaximumPacketSize = v
			}
		case PropTopicAlias, PropReceiveMaximum, PropTopicAliasMaximum, PropServerKeepAlive:
			if rest < 2 {
				return start, runsPast(pt, start, id)
			}
			v := uint16(b[off])<<8 | uint16(b[off+1])
			off += 2
			switch id {
			case PropTopicAlias:
				p.TopicAlias = v
			case PropReceiveMaximum:
				p.ReceiveMaximum = v
			case PropTopicAliasMaximum:
				p.TopicAliasMaximum = v
			default:
				p.ServerKeepAlive = v
			}
		case PropSubscriptionIdentifier:
			v, next, res := readVBI(b, off, end)
			switch res {
			case vbiOK:
			case vbiNotMinimal:
				return start, malformed(pt, off, "MQTT-1.5.5-1", "subscription identifier is not minimally encoded")
			default:
				return start, runsPast(pt, start, id)
			}
			if v == 0 {
				rule := "§3.3.2.3.8"
				if t == TypeSubscribe {
					rule = "§3.8.2.1.2"
				}
				return start, protocolErr(pt, start, rule, "subscription identifier is 0")
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
			off = next
		case PropCorrelationData, PropAuthenticationData:
			v, next, ok := readBytes(b, off, end)
			if !ok {
				return start, runsPast(pt, start, id)
			}
			off = next
			if id == PropCorrelationData {
				p.CorrelationData = v
			} else {
				p.AuthData = v
			}
		default:
			switch propTable[id].kind {
			case kindByte:
				if rest < 1 {
					return start, runsPast(pt, start, id)
				}
				c := b[off]
				off++
				switch id {
				case PropPayloadFormatIndicator:
					p.PayloadFormat = c
				case PropRequestProblemInformation:
					p.RequestProblemInfo = c
				case PropRequestResponseInformation:
					p.RequestResponseInfo = c
				case PropMaximumQoS:
					p.MaximumQoS = c
				case PropRetainAvailable:
					p.RetainAvailable = c
				case PropWildcardSubscriptionAvailable:
					p.WildcardSubAvailable = c
				case PropSubscriptionIdentifierAvailable:
					p.SubIDAvailable = c
				case PropSharedSubscriptionAvailable:
					p.SharedSubAvailable = c
				}
			case kindString:
				s, next, ok := readBytes(b, off, end)
				if !ok {
					return start, runsPast(pt, start, id)
				}
				off = next
				if !validUTF8(s) {
					return start, malformed(pt, start, "MQTT-1.5.4-1", id.String()+" is not valid UTF-8 or contains U+0000")
				}
				str := bstr(s)
				switch id {
				case PropContentType:
					p.ContentType = str
				case PropResponseTopic:
					p.ResponseTopic = str
				case PropAssignedClientIdentifier:
					p.AssignedClientID = str
				case PropAuthenticationMethod:
					p.AuthMethod = str
				case PropResponseInformation:
					p.ResponseInfo = str
				case PropServerReference:
					p.ServerReference = str
				case PropReasonString:
					p.ReasonString = str
				}
			}
		}
	}
	p.Present = seen
	if seen&valueRules != 0 {
		if err := p.checkValues(seen, t, pt, b[listStart:end], listStart); err != nil {
			return err.Offset, err
		}
	}
	return off, nil
}

func runsPast(pt Type, off int, id PropID) *Error {
	return malformed(pt, off, "§2.2.2.2", id.String()+" runs past the property length")
}
