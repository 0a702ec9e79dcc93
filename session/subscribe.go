package session

import (
	"cmp"
	"slices"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Subscriptions. The session keeps every subscription in its registry (the
// router) from the Subscribe call on, so that a message that races the
// SUBACK is delivered (seed rule 39), and it makes them again by itself
// after a reconnect that did not resume the session. A group is what one
// Subscribe call made: one handle, its filters and options, one SUBSCRIBE.

type groupState uint8

const (
	groupPending  groupState = iota // SUBSCRIBE not sent on this connection
	groupInflight                   // SUBSCRIBE sent, SUBACK due
	groupActive                     // SUBACK accepted
)

type subGroup struct {
	token   Token // the caller's token until its SUBACK is reported; 0 after
	handle  Handle
	subs    []codec.Subscription // owned
	entries []*entry             // parallel to subs
	subID   uint32
	user    []codec.UserProperty
	state   groupState
	restore bool   // made again after a reconnect: failures are EventRestoreFailed
	seq     uint64 // order of the Subscribe call among Subscribe and Unsubscribe calls
}

type opKind uint8

const (
	opSubscribe opKind = iota
	opUnsubscribe
)

type subOp struct {
	kind    opKind
	token   Token
	group   *subGroup
	entries []*entry // subscribe: the entries the SUBSCRIBE carried, in order
	filters []string // unsubscribe: the filters sent
	user    []codec.UserProperty
	handle  Handle
	seq     uint64 // unsubscribe: order of the call (see subGroup.seq)
}

// requeue puts an operation whose acknowledgement was lost with the
// connection back in line for the next one.
func (op *subOp) requeue(s *Session) {
	if op.kind == opSubscribe {
		if op.group.state == groupInflight {
			op.group.state = groupPending
		}
		return
	}
	s.unsubWait = append(s.unsubWait, op)
}

// SubscribeOptions are the MQTT 5.0 extras of a SUBSCRIBE.
type SubscribeOptions struct {
	// ID is the Subscription Identifier (1..268,435,455; 0 for none). The
	// server echoes it in the messages the subscription brings, and the
	// router uses it to find the subscription.
	ID   uint32
	User []codec.UserProperty
}

// Subscribe registers subscriptions for handle h and sends one SUBSCRIBE
// (at once when connected, else at the next connection). Its Token
// completes with EventSubscribed when the SUBACK arrives; filters the server
// refused are removed from the registry. After a reconnect that does not
// resume the session, the session subscribes again by itself.
//
// Errors, before anything is written: an invalid filter or option
// (*codec.Error or *codec.TopicError), MQTT 5.0 options on a 3.1.1 session
// or features the connected server does not support (*UnsupportedError), a
// packet above the server's maximum size (*TooLargeError), and
// ErrPacketIDsExhausted.
func (s *Session) Subscribe(now time.Time, h Handle, subs []codec.Subscription, opts SubscribeOptions) (Token, error) {
	if len(subs) == 0 {
		return 0, &ProtocolError{Reason: codec.ReasonProtocolError, Rule: "MQTT-3.8.3-2", Msg: "SUBSCRIBE needs at least one topic filter"}
	}
	if s.v == codec.V311 && (opts.ID != 0 || len(opts.User) > 0) {
		return 0, &UnsupportedError{Feature: "subscription identifiers and user properties", Detail: "they need MQTT 5.0"}
	}
	for _, sub := range subs {
		if s.v == codec.V311 && (sub.NoLocal || sub.RetainAsPublished || sub.RetainHandling != 0) {
			return 0, &UnsupportedError{Feature: "subscription options", Detail: "no local, retain as published and retain handling need MQTT 5.0"}
		}
	}
	probe := codec.Subscribe{PacketID: 1, Subscriptions: subs, Props: subProps(opts.ID, opts.User)}
	if _, err := probe.Append(nil, s.v); err != nil {
		return 0, err
	}
	if s.phase == phaseConnected {
		if err := s.checkSubscribe(subs, opts.ID); err != nil {
			return 0, err
		}
	}
	s.subSeq++
	g := &subGroup{handle: h, subID: opts.ID, user: cloneUser(opts.User), seq: s.subSeq}
	for _, sub := range subs {
		sub.Filter = cloneStr(sub.Filter)
		g.subs = append(g.subs, sub)
		e := &entry{handle: h, filter: sub.Filter, subID: opts.ID, group: g}
		s.router.add(e)
		s.filterRefs[sub.Filter]++
		g.entries = append(g.entries, e)
	}
	g.token = s.nextToken()
	s.groups = append(s.groups, g)
	if s.phase == phaseConnected {
		if err := s.sendGroup(now, g); err != nil {
			s.dropGroup(g)
			return 0, err
		}
	}
	if len(s.held) > 0 {
		s.releaseHeld()
	}
	return g.token, nil
}

func subProps(id uint32, user []codec.UserProperty) codec.Properties {
	var p codec.Properties
	if id != 0 {
		p.SubscriptionIDs = []uint32{id}
	}
	p.User = user
	return p
}

// checkSubscribe applies the server's CONNACK capabilities [MQTT-3.2.2-16]
// [MQTT-3.2.2-17] [MQTT-3.2.2-18].
func (s *Session) checkSubscribe(subs []codec.Subscription, id uint32) error {
	if id != 0 && !s.info.SubscriptionIDs {
		return &UnsupportedError{Feature: "subscription identifiers", Detail: "the server does not support them"}
	}
	for _, sub := range subs {
		_, inner, shared := codec.ParseShared(sub.Filter)
		if shared && !s.info.SharedSubs {
			return &UnsupportedError{Feature: "shared subscriptions", Detail: sub.Filter}
		}
		if !shared {
			inner = sub.Filter
		}
		if !s.info.WildcardSubs && (slices.Contains([]byte(inner), '+') || slices.Contains([]byte(inner), '#')) {
			return &UnsupportedError{Feature: "wildcard subscriptions", Detail: sub.Filter}
		}
	}
	return nil
}

// sendGroup writes the SUBSCRIBE of a group.
func (s *Session) sendGroup(now time.Time, g *subGroup) error {
	if err := s.checkSubscribe(g.subs, g.subID); err != nil {
		return err
	}
	id, ok := s.ids.take()
	if !ok {
		return ErrPacketIDsExhausted
	}
	p := codec.Subscribe{PacketID: id, Subscriptions: g.subs, Props: subProps(g.subID, g.user)}
	if err := s.send(now, &p); err != nil {
		s.ids.free(id)
		return err
	}
	s.subOps[id] = &subOp{kind: opSubscribe, token: g.token, group: g, entries: slices.Clone(g.entries), handle: g.handle}
	g.state = groupInflight
	return nil
}

// dropGroup removes a group and its entries from the registry.
func (s *Session) dropGroup(g *subGroup) {
	for _, e := range g.entries {
		s.unregister(e)
	}
	g.entries, g.subs = nil, nil
	if i := slices.Index(s.groups, g); i >= 0 {
		s.groups = slices.Delete(s.groups, i, i+1)
	}
}

func (s *Session) unregister(e *entry) {
	if !e.in {
		return
	}
	s.router.remove(e)
	if s.filterRefs[e.filter]--; s.filterRefs[e.filter] <= 0 {
		delete(s.filterRefs, e.filter)
	}
}

// restoreSubscriptions sends, after CONNACK, every SUBSCRIBE and UNSUBSCRIBE
// that waits for a connection, in the order of the calls that made them:
// an Unsubscribe and a later Subscribe of the same filter (or the other way
// round) must reach the server in that order, or the server ends up without
// a subscription the session routes, or with one it does not. Operations
// whose acknowledgement was lost with the connection wait here too, so the
// order does not depend on which of them were in flight.
func (s *Session) restoreSubscriptions(now time.Time) {
	var groups []*subGroup
	for _, g := range s.groups {
		if g.state == groupPending {
			groups = append(groups, g)
		}
	}
	slices.SortStableFunc(groups, func(a, b *subGroup) int { return cmp.Compare(a.seq, b.seq) })
	wait := s.unsubWait
	s.unsubWait = nil
	slices.SortStableFunc(wait, func(a, b *subOp) int { return cmp.Compare(a.seq, b.seq) })
	for len(groups) > 0 || len(wait) > 0 {
		if len(wait) == 0 || len(groups) > 0 && groups[0].seq < wait[0].seq {
			g := groups[0]
			groups = groups[1:]
			if err := s.sendGroup(now, g); err != nil {
				s.subscribeFailed(g, err)
			}
			continue
		}
		op := wait[0]
		wait = wait[1:]
		// A filter that is in the registry again was subscribed by a later
		// Subscribe, whose SUBSCRIBE is acknowledged or follows: the
		// unsubscription is superseded, and sending it now (it may be the
		// resend of one the server already applied) would end that
		// subscription on the server while the session routes it.
		op.filters = slices.DeleteFunc(op.filters, func(f string) bool { return s.filterRefs[f] > 0 })
		if len(op.filters) == 0 {
			s.push(Event{Kind: EventUnsubscribed, Token: op.token, Handle: op.handle})
			continue
		}
		if err := s.sendUnsubscribe(now, op); err != nil {
			s.push(Event{Kind: EventUnsubscribed, Token: op.token, Handle: op.handle, Err: err})
		}
	}
}

func (s *Session) subscribeFailed(g *subGroup, err error) {
	if g.token != 0 {
		s.push(Event{Kind: EventSubscribed, Token: g.token, Handle: g.handle, Err: err})
	} else {
		s.push(Event{Kind: EventRestoreFailed, Handle: g.handle, Err: err})
	}
	s.dropGroup(g)
}

// handleSuback applies a SUBACK [§3.9]: one reason code per filter, in
// order [MQTT-3.9.3-1]; refused filters leave the registry.
func (s *Session) handleSuback(now time.Time, p *codec.Suback) error {
	op := s.subOps[p.PacketID]
	if op == nil || op.kind != opSubscribe {
		return nil // not ours (a late answer to an operation of a lost connection)
	}
	if len(p.ReasonCodes) != len(op.entries) {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-3.9.3-1",
			"SUBACK has "+itoa(len(p.ReasonCodes))+" reason codes for "+itoa(len(op.entries))+" topic filters"))
	}
	delete(s.subOps, p.PacketID)
	s.ids.free(p.PacketID)
	g := op.group
	var first error
	for i, c := range p.ReasonCodes {
		if !c.Failed() {
			continue
		}
		e := op.entries[i]
		if first == nil {
			first = &ReasonError{Packet: codec.TypeSuback, Code: c, Filter: e.filter,
				Reason: cloneStr(p.Props.ReasonString), User: cloneUser(p.Props.User)}
		}
		s.unregister(e)
		if j := slices.Index(g.entries, e); j >= 0 {
			g.entries = slices.Delete(g.entries, j, j+1)
			g.subs = slices.Delete(g.subs, j, j+1)
		}
	}
	if g.state == groupInflight {
		g.state = groupActive
	}
	switch {
	case g.token != 0:
		s.push(Event{Kind: EventSubscribed, Token: g.token, Handle: g.handle, Codes: p.ReasonCodes, Err: first, Props: &p.Props})
		g.token = 0
	case first != nil:
		s.push(Event{Kind: EventRestoreFailed, Handle: g.handle, Err: first})
	}
	g.restore = false
	if len(g.entries) == 0 {
		s.dropGroup(g)
	}
	s.flush(now) // a publish may wait for the identifier freed here
	return nil
}

// Unsubscribe removes handle h's subscriptions to filters from the registry
// at once, and sends an UNSUBSCRIBE for the filters no other handle still
// uses (at once when connected, else at the next connection). Its Token
// completes with EventUnsubscribed: when the UNSUBACK arrives, or at once
// when no packet is needed. Errors, before anything is written: an invalid
// filter, user properties on 3.1.1, ErrPacketIDsExhausted, *TooLargeError.
func (s *Session) Unsubscribe(now time.Time, h Handle, filters []string, user []codec.UserProperty) (Token, error) {
	if len(filters) == 0 {
		return 0, &ProtocolError{Reason: codec.ReasonProtocolError, Rule: "MQTT-3.10.3-2", Msg: "UNSUBSCRIBE needs at least one topic filter"}
	}
	if s.v == codec.V311 && len(user) > 0 {
		return 0, &UnsupportedError{Feature: "user properties", Detail: "they need MQTT 5.0"}
	}
	probe := codec.Unsubscribe{PacketID: 1, Filters: filters, Props: codec.Properties{User: user}}
	if _, err := probe.Append(nil, s.v); err != nil {
		return 0, err
	}
	var send []string
	for _, f := range filters {
		for _, g := range slices.Clone(s.groups) {
			if g.handle != h {
				continue
			}
			for j := 0; j < len(g.entries); j++ {
				if g.entries[j].filter == f {
					s.unregister(g.entries[j])
					g.entries = slices.Delete(g.entries, j, j+1)
					g.subs = slices.Delete(g.subs, j, j+1)
					j--
				}
			}
			if len(g.entries) == 0 {
				if g.token != 0 {
					// The subscription never got its SUBACK reported.
					s.push(Event{Kind: EventSubscribed, Token: g.token, Handle: g.handle, Err: ErrCanceled})
					g.token = 0
				}
				s.dropGroup(g)
			}
		}
		// The server has one subscription per filter for the whole session
		// [MQTT-3.8.4-3]: it is unsubscribed only when no handle still uses
		// the filter. A filter this handle never had is unsubscribed too
		// (the server may hold it from an earlier run), unless another
		// handle uses it: that would end its subscription on the server
		// while the session still routes it.
		if s.filterRefs[f] == 0 {
			if !slices.Contains(send, f) {
				send = append(send, cloneStr(f))
			}
		}
	}
	t := s.nextToken()
	if len(send) == 0 {
		s.push(Event{Kind: EventUnsubscribed, Token: t, Handle: h})
		return t, nil
	}
	s.subSeq++
	op := &subOp{kind: opUnsubscribe, token: t, filters: send, user: cloneUser(user), handle: h, seq: s.subSeq}
	if s.phase != phaseConnected {
		s.unsubWait = append(s.unsubWait, op)
		return t, nil
	}
	if err := s.sendUnsubscribe(now, op); err != nil {
		return 0, err
	}
	return t, nil
}

func (s *Session) sendUnsubscribe(now time.Time, op *subOp) error {
	id, ok := s.ids.take()
	if !ok {
		return ErrPacketIDsExhausted
	}
	p := codec.Unsubscribe{PacketID: id, Filters: op.filters, Props: codec.Properties{User: op.user}}
	if err := s.send(now, &p); err != nil {
		s.ids.free(id)
		return err
	}
	s.subOps[id] = op
	return nil
}

// handleUnsuback completes an UNSUBSCRIBE [§3.11]; on 5.0 with one
// reason code per filter [MQTT-3.11.3-1]. 0x11 (no subscription existed)
// is not a failure.
func (s *Session) handleUnsuback(now time.Time, p *codec.Unsuback) error {
	op := s.subOps[p.PacketID]
	if op == nil || op.kind != opUnsubscribe {
		return nil
	}
	if s.v == codec.V5 && len(p.ReasonCodes) != len(op.filters) {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-3.11.3-1",
			"UNSUBACK has "+itoa(len(p.ReasonCodes))+" reason codes for "+itoa(len(op.filters))+" topic filters"))
	}
	delete(s.subOps, p.PacketID)
	s.ids.free(p.PacketID)
	var first error
	for i, c := range p.ReasonCodes {
		if c.Failed() && first == nil {
			first = &ReasonError{Packet: codec.TypeUnsuback, Code: c, Filter: op.filters[i],
				Reason: cloneStr(p.Props.ReasonString), User: cloneUser(p.Props.User)}
		}
	}
	s.push(Event{Kind: EventUnsubscribed, Token: op.token, Handle: op.handle, Codes: p.ReasonCodes, Filters: op.filters, Err: first, Props: &p.Props})
	s.flush(now) // a publish may wait for the identifier freed here
	return nil
}
