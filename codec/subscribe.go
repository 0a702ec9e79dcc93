package codec

// Subscribe is the SUBSCRIBE packet [§3.8]: one or more topic filters
// with their options.
type Subscribe struct {
	PacketID      uint16
	Props         Properties // MQTT 5.0: at most one Subscription Identifier, and User Property
	Subscriptions []Subscription
}

// Subscription is one topic filter of a SUBSCRIBE with its options
// [§3.8.3.1]. NoLocal, RetainAsPublished and RetainHandling are MQTT 5.0
// options and must be zero on 3.1.1.
type Subscription struct {
	Filter            string
	QoS               QoS  // maximum QoS the client accepts
	NoLocal           bool // do not send the client's own messages back; not on a shared subscription
	RetainAsPublished bool // keep the RETAIN flag of forwarded messages
	RetainHandling    RetainHandling
}

// Suback is the SUBACK packet [§3.9]: one reason code per filter of the
// SUBSCRIBE, in the same order.
type Suback struct {
	PacketID    uint16
	Props       Properties // MQTT 5.0: Reason String and User Property
	ReasonCodes []ReasonCode
}

// Unsubscribe is the UNSUBSCRIBE packet [§3.10].
type Unsubscribe struct {
	PacketID uint16
	Props    Properties // MQTT 5.0: User Property
	Filters  []string
}

// Unsuback is the UNSUBACK packet [§3.11]. MQTT 3.1.1 carries no reason
// codes; 5.0 carries one per filter of the UNSUBSCRIBE.
type Unsuback struct {
	PacketID    uint16
	Props       Properties // MQTT 5.0: Reason String and User Property
	ReasonCodes []ReasonCode
}

// Type returns TypeSubscribe.
func (p *Subscribe) Type() Type { return TypeSubscribe }

// Type returns TypeSuback.
func (p *Suback) Type() Type { return TypeSuback }

// Type returns TypeUnsubscribe.
func (p *Unsubscribe) Type() Type { return TypeUnsubscribe }

// Type returns TypeUnsuback.
func (p *Unsuback) Type() Type { return TypeUnsuback }

// props5 returns the length of the property list for v5 and checks that
// 3.1.1 packets carry none.
func props5(props *Properties, v Version, t Type) (int, *Error) {
	if v == V5 {
		return props.propsSize(t, t)
	}
	if !props.Empty() {
		return 0, noProps(t)
	}
	return 0, nil
}

func propsLenSize(v Version, plen int) int {
	if v == V5 {
		return vbiLen(plen) + plen
	}
	return 0
}

// filterErr checks one topic filter of a SUBSCRIBE or UNSUBSCRIBE. Filters
// that are not well formed are a Malformed Packet; a broken shared
// subscription is a Protocol Error [MQTT-4.8.2-1].
func filterErr(f string, t Type, off int) *Error {
	terr := checkTopicFilter(f)
	if terr == nil {
		return nil
	}
	reason := ReasonMalformedPacket
	if terr.Rule == "MQTT-4.8.2-1" || terr.Rule == "MQTT-4.8.2-2" {
		reason = ReasonProtocolError
	}
	e := newErr(reason, t, off, terr.Rule, "topic filter: "+terr.Msg)
	e.Err = terr
	return e
}

func (s *Subscription) options() byte {
	o := byte(s.QoS) | byte(s.RetainHandling)<<4
	if s.NoLocal {
		o |= 0x04
	}
	if s.RetainAsPublished {
		o |= 0x08
	}
	return o
}

func (p *Subscribe) remaining(v Version) (rem, plen int, err *Error) {
	t := TypeSubscribe
	if p.PacketID == 0 {
		return 0, 0, encErr(ReasonProtocolError, t, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if len(p.Subscriptions) == 0 {
		return 0, 0, encErr(ReasonProtocolError, t, "MQTT-3.8.3-2", "a SUBSCRIBE needs at least one topic filter")
	}
	if plen, err = props5(&p.Props, v, t); err != nil {
		return 0, 0, err
	}
	rem = 2 + propsLenSize(v, plen)
	for i := range p.Subscriptions {
		s := &p.Subscriptions[i]
		if err = filterErr(s.Filter, t, -1); err != nil {
			return 0, 0, err
		}
		if !s.QoS.Valid() {
			if v == V5 {
				return 0, 0, encErr(ReasonProtocolError, t, "§3.8.3.1", "maximum QoS must be 0, 1 or 2")
			}
			return 0, 0, encErr(ReasonMalformedPacket, t, "MQTT-3.8.3-4", "QoS must be 0, 1 or 2")
		}
		if v == V311 && (s.NoLocal || s.RetainAsPublished || s.RetainHandling != 0) {
			return 0, 0, encErr(ReasonProtocolError, t, "", "subscription options require MQTT 5.0")
		}
		if s.RetainHandling >= retainHandlingInvalid {
			return 0, 0, encErr(ReasonProtocolError, t, "§3.8.3.1", "retain handling 3")
		}
		if s.NoLocal {
			if _, _, shared := ParseShared(s.Filter); shared {
				return 0, 0, encErr(ReasonProtocolError, t, "MQTT-3.8.3-4", "no local on a shared subscription")
			}
		}
		rem += 3 + len(s.Filter)
	}
	if rem > MaxRemainingLength {
		return 0, 0, tooLarge(t)
	}
	return rem, plen, nil
}

// Size returns the encoded size of p for version v.
func (p *Subscribe) Size(v Version) int {
	plen, _ := props5(&p.Props, v, TypeSubscribe)
	rem := 2 + propsLenSize(v, plen)
	for i := range p.Subscriptions {
		rem += 3 + len(p.Subscriptions[i].Filter)
	}
	return headerSize(rem)
}

// Append validates p and appends its encoding to dst.
func (p *Subscribe) Append(dst []byte, v Version) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	rem, plen, err := p.remaining(v)
	if err != nil {
		return dst, err
	}
	dst = grow(dst, headerSize(rem))
	dst = appendHeader(dst, byte(TypeSubscribe)<<4|0x02, rem)
	dst = appendUint16(dst, p.PacketID)
	if v == V5 {
		dst = p.Props.appendProps(dst, plen)
	}
	for i := range p.Subscriptions {
		s := &p.Subscriptions[i]
		dst = append(appendString(dst, s.Filter), s.options())
	}
	return dst, nil
}

// Decode decodes a whole SUBSCRIBE packet from the start of src.
func (p *Subscribe) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

// decodeIDProps reads the packet identifier and, on 5.0, the properties that
// start SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.
func decodeIDProps(b []byte, h Header, v Version, props *Properties) (id uint16, off int, err error) {
	t := h.Type
	props.reset()
	off, end := h.Len, len(b)
	var ok bool
	if id, off, ok = readUint16(b, off, end); !ok {
		return 0, off, short(t, off, "packet identifier")
	}
	if id == 0 {
		return 0, off, protocolErr(t, h.Len, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if v == V5 {
		if off, err = props.decodeProps(b, off, end, t, t); err != nil {
			return 0, off, err
		}
	}
	return id, off, nil
}

func (p *Subscribe) decode(b []byte, h Header, v Version) error {
	t := TypeSubscribe
	id, off, err := decodeIDProps(b, h, v, &p.Props)
	if err != nil {
		return err
	}
	p.PacketID = id
	p.Subscriptions = p.Subscriptions[:0]
	end := len(b)
	if off == end {
		return protocolErr(t, off, "MQTT-3.8.3-2", "a SUBSCRIBE needs at least one topic filter")
	}
	for off < end {
		start := off
		f, next, ok := readBytes(b, off, end)
		if !ok {
			return short(t, off, "topic filter")
		}
		if next == end {
			return short(t, next, "subscription options")
		}
		filter := bstr(f)
		if err := filterErr(filter, t, start); err != nil {
			return err
		}
		o := b[next]
		s := Subscription{Filter: filter, QoS: QoS(o & 3)}
		if v == V311 {
			if s.QoS == 3 {
				return malformed(t, next, "MQTT-3.8.3-4", "QoS 3")
			}
			if o&0xFC != 0 {
				return malformed(t, next, "MQTT-3.8.3-4", "reserved subscription option bits are set")
			}
		} else {
			if o&0xC0 != 0 {
				return malformed(t, next, "MQTT-3.8.3-5", "reserved subscription option bits are set")
			}
			if s.QoS == 3 {
				return protocolErr(t, next, "§3.8.3.1", "maximum QoS 3")
			}
			s.NoLocal = o&0x04 != 0
			s.RetainAsPublished = o&0x08 != 0
			s.RetainHandling = RetainHandling(o >> 4 & 3)
			if s.RetainHandling == retainHandlingInvalid {
				return protocolErr(t, next, "§3.8.3.1", "retain handling 3")
			}
			if s.NoLocal {
				if _, _, shared := ParseShared(filter); shared {
					return protocolErr(t, next, "MQTT-3.8.3-4", "no local on a shared subscription")
				}
			}
		}
		p.Subscriptions = append(p.Subscriptions, s)
		off = next + 1
	}
	return nil
}

// Clone returns a deep copy of p.
func (p *Subscribe) Clone() *Subscribe {
	c := *p
	c.Props = p.Props.Clone()
	if p.Subscriptions != nil {
		c.Subscriptions = make([]Subscription, len(p.Subscriptions))
		for i, s := range p.Subscriptions {
			s.Filter = cloneString(s.Filter)
			c.Subscriptions[i] = s
		}
	}
	return &c
}

// codesPacket is the shared logic of SUBACK and UNSUBACK.
func codesRemaining(id uint16, props *Properties, codes []ReasonCode, v Version, t Type) (rem, plen int, err *Error) {
	if id == 0 {
		return 0, 0, encErr(ReasonProtocolError, t, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if plen, err = props5(props, v, t); err != nil {
		return 0, 0, err
	}
	if t == TypeUnsuback && v == V311 {
		if len(codes) != 0 {
			return 0, 0, encErr(ReasonProtocolError, t, "", "UNSUBACK reason codes require MQTT 5.0")
		}
		return 2, 0, nil
	}
	if len(codes) == 0 {
		return 0, 0, encErr(ReasonProtocolError, t, codesRule(t), t.String()+" needs at least one reason code")
	}
	for _, c := range codes {
		if !ValidReason(t, v, c) {
			return 0, 0, encErr(ReasonProtocolError, t, codesRule(t), "reason code "+hexByte(byte(c))+" is not allowed in "+t.String())
		}
	}
	rem = 2 + propsLenSize(v, plen) + len(codes)
	if rem > MaxRemainingLength {
		return 0, 0, tooLarge(t)
	}
	return rem, plen, nil
}

func codesRule(t Type) string {
	if t == TypeSuback {
		return "MQTT-3.9.3-2"
	}
	return "MQTT-3.11.3-2"
}

func codesSize(props *Properties, codes []ReasonCode, v Version, t Type) int {
	plen, _ := props5(props, v, t)
	return headerSize(2 + propsLenSize(v, plen) + len(codes))
}

func appendCodes(dst []byte, id uint16, props *Properties, codes []ReasonCode, v Version, t Type) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	rem, plen, err := codesRemaining(id, props, codes, v, t)
	if err != nil {
		return dst, err
	}
	dst = grow(dst, headerSize(rem))
	dst = appendHeader(dst, byte(t)<<4, rem)
	dst = appendUint16(dst, id)
	if v == V5 {
		dst = props.appendProps(dst, plen)
	}
	for _, c := range codes {
		dst = append(dst, byte(c))
	}
	return dst, nil
}

func decodeCodes(b []byte, h Header, v Version, id *uint16, props *Properties, codes *[]ReasonCode) error {
	t := h.Type
	pid, off, err := decodeIDProps(b, h, v, props)
	if err != nil {
		return err
	}
	*id = pid
	*codes = (*codes)[:0]
	end := len(b)
	if t == TypeUnsuback && v == V311 {
		return endCheck(t, off, end)
	}
	if off == end {
		return protocolErr(t, off, codesRule(t), t.String()+" needs at least one reason code")
	}
	for ; off < end; off++ {
		c := ReasonCode(b[off])
		if !ValidReason(t, v, c) {
			return protocolErr(t, off, codesRule(t), "reason code "+hexByte(b[off])+" is not allowed in "+t.String())
		}
		*codes = append(*codes, c)
	}
	return nil
}

// Size returns the encoded size of p for version v.
func (p *Suback) Size(v Version) int { return codesSize(&p.Props, p.ReasonCodes, v, TypeSuback) }

// Append validates p and appends its encoding to dst.
func (p *Suback) Append(dst []byte, v Version) ([]byte, error) {
	return appendCodes(dst, p.PacketID, &p.Props, p.ReasonCodes, v, TypeSuback)
}

// Decode decodes a whole SUBACK packet from the start of src.
func (p *Suback) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

func (p *Suback) decode(b []byte, h Header, v Version) error {
	return decodeCodes(b, h, v, &p.PacketID, &p.Props, &p.ReasonCodes)
}

// Clone returns a deep copy of p.
func (p *Suback) Clone() *Suback {
	c := *p
	c.Props = p.Props.Clone()
	if p.ReasonCodes != nil {
		c.ReasonCodes = append([]ReasonCode(nil), p.ReasonCodes...)
	}
	return &c
}

// Size returns the encoded size of p for version v.
func (p *Unsuback) Size(v Version) int {
	return codesSize(&p.Props, p.ReasonCodes, v, TypeUnsuback)
}

// Append validates p and appends its encoding to dst.
func (p *Unsuback) Append(dst []byte, v Version) ([]byte, error) {
	return appendCodes(dst, p.PacketID, &p.Props, p.ReasonCodes, v, TypeUnsuback)
}

// Decode decodes a whole UNSUBACK packet from the start of src.
func (p *Unsuback) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

func (p *Unsuback) decode(b []byte, h Header, v Version) error {
	return decodeCodes(b, h, v, &p.PacketID, &p.Props, &p.ReasonCodes)
}

// Clone returns a deep copy of p.
func (p *Unsuback) Clone() *Unsuback {
	c := *p
	c.Props = p.Props.Clone()
	if p.ReasonCodes != nil {
		c.ReasonCodes = append([]ReasonCode(nil), p.ReasonCodes...)
	}
	return &c
}

func (p *Unsubscribe) remaining(v Version) (rem, plen int, err *Error) {
	t := TypeUnsubscribe
	if p.PacketID == 0 {
		return 0, 0, encErr(ReasonProtocolError, t, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if len(p.Filters) == 0 {
		return 0, 0, encErr(ReasonProtocolError, t, "MQTT-3.10.3-2", "an UNSUBSCRIBE needs at least one topic filter")
	}
	if plen, err = props5(&p.Props, v, t); err != nil {
		return 0, 0, err
	}
	rem = 2 + propsLenSize(v, plen)
	for _, f := range p.Filters {
		if err = filterErr(f, t, -1); err != nil {
			return 0, 0, err
		}
		rem += 2 + len(f)
	}
	if rem > MaxRemainingLength {
		return 0, 0, tooLarge(t)
	}
	return rem, plen, nil
}

// Size returns the encoded size of p for version v.
func (p *Unsubscribe) Size(v Version) int {
	plen, _ := props5(&p.Props, v, TypeUnsubscribe)
	rem := 2 + propsLenSize(v, plen)
	for _, f := range p.Filters {
		rem += 2 + len(f)
	}
	return headerSize(rem)
}

// Append validates p and appends its encoding to dst.
func (p *Unsubscribe) Append(dst []byte, v Version) ([]byte, error) {
	if !v.Valid() {
		return dst, badVersion(v)
	}
	rem, plen, err := p.remaining(v)
	if err != nil {
		return dst, err
	}
	dst = grow(dst, headerSize(rem))
	dst = appendHeader(dst, byte(TypeUnsubscribe)<<4|0x02, rem)
	dst = appendUint16(dst, p.PacketID)
	if v == V5 {
		dst = p.Props.appendProps(dst, plen)
	}
	for _, f := range p.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

// Decode decodes a whole UNSUBSCRIBE packet from the start of src.
func (p *Unsubscribe) Decode(src []byte, v Version) (int, error) { return decodeAs(p, src, v) }

func (p *Unsubscribe) decode(b []byte, h Header, v Version) error {
	t := TypeUnsubscribe
	id, off, err := decodeIDProps(b, h, v, &p.Props)
	if err != nil {
		return err
	}
	p.PacketID = id
	p.Filters = p.Filters[:0]
	end := len(b)
	if off == end {
		return protocolErr(t, off, "MQTT-3.10.3-2", "an UNSUBSCRIBE needs at least one topic filter")
	}
	for off < end {
		f, next, ok := readBytes(b, off, end)
		if !ok {
			return short(t, off, "topic filter")
		}
		filter := bstr(f)
		if err := filterErr(filter, t, off); err != nil {
			return err
		}
		p.Filters = append(p.Filters, filter)
		off = next
	}
	return nil
}

// Clone returns a deep copy of p.
func (p *Unsubscribe) Clone() *Unsubscribe {
	c := *p
	c.Props = p.Props.Clone()
	if p.Filters != nil {
		c.Filters = make([]string, len(p.Filters))
		for i, f := range p.Filters {
			c.Filters[i] = cloneString(f)
		}
	}
	return &c
}
