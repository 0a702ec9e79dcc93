package session

import (
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Timers. The session reads no clock: every input carries the current time,
// Deadline says when the session next needs HandleTimeout, and the caller
// runs one timer for it. The deadlines are: the CONNACK (and authentication)
// timeout while connecting; while connected, the keep alive (a PINGREQ when
// nothing was sent for the keep alive interval [MQTT-3.1.2-23]), the PINGRESP
// timeout of the oldest outstanding PINGREQ, and the end of the window in
// which messages of a resumed session wait for their subscription.

type ping struct {
	token  Token // 0 for a keep alive ping
	sentAt time.Time
}

// TimeoutError reports a protocol deadline that passed: no CONNACK in
// Config.ConnectTimeout, or no PINGRESP in Config.PingTimeout. It matches
// ErrTimeout and ErrConnectionLost.
type TimeoutError struct {
	Waiting string // "CONNACK" or "PINGRESP"
	After   time.Duration
}

// Error formats the error.
func (e *TimeoutError) Error() string {
	return "zmqtt: timeout: no " + e.Waiting + " after " + e.After.String()
}

// Is matches ErrTimeout and ErrConnectionLost.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == ErrConnectionLost
}

// Deadline returns when HandleTimeout must next be called; the zero time
// means no timer is needed.
func (s *Session) Deadline() time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	switch s.phase {
	case phaseConnecting:
		earliest(s.connectDeadline)
	case phaseConnected:
		if s.keepAlive > 0 {
			earliest(s.lastSent.Add(s.keepAlive))
		}
		if len(s.pings) > 0 {
			earliest(s.pings[0].sentAt.Add(s.cfg.PingTimeout))
		}
		if s.holding {
			earliest(s.holdDeadline)
		}
	}
	return d
}

// HandleTimeout applies every deadline that has passed at now. It is safe
// to call early or often: nothing happens before a deadline.
func (s *Session) HandleTimeout(now time.Time) {
	switch s.phase {
	case phaseConnecting:
		if !now.Before(s.connectDeadline) {
			s.close(now, &TimeoutError{Waiting: "CONNACK", After: s.cfg.ConnectTimeout})
		}
	case phaseConnected:
		if len(s.pings) > 0 && !now.Before(s.pings[0].sentAt.Add(s.cfg.PingTimeout)) {
			s.close(now, &TimeoutError{Waiting: "PINGRESP", After: s.cfg.PingTimeout})
			return
		}
		if s.holding && !s.holdDeadline.IsZero() && !now.Before(s.holdDeadline) {
			s.expireHeld(now)
		}
		if s.keepAlive > 0 && !now.Before(s.lastSent.Add(s.keepAlive)) {
			s.sendPing(now, 0)
		}
	}
}

// Ping sends a PINGREQ; its Token completes with EventPong carrying the
// round-trip time, or with the error that ends the connection first. It
// returns ErrNotConnected when there is no connection.
func (s *Session) Ping(now time.Time) (Token, error) {
	if s.phase != phaseConnected {
		return 0, ErrNotConnected
	}
	t := s.nextToken()
	s.sendPing(now, t)
	return t, nil
}

func (s *Session) sendPing(now time.Time, t Token) {
	s.out, _ = s.acks.pingreq.Append(s.out, s.v)
	s.lastSent = now
	s.pings = append(s.pings, ping{token: t, sentAt: now})
}

// handlePingresp answers the oldest outstanding PINGREQ; an unsolicited
// PINGRESP is ignored.
func (s *Session) handlePingresp(now time.Time) error {
	if len(s.pings) == 0 {
		return nil
	}
	p := s.pings[0]
	copy(s.pings, s.pings[1:])
	s.pings = s.pings[:len(s.pings)-1]
	if p.token != 0 {
		s.push(Event{Kind: EventPong, Token: p.token, RTT: now.Sub(p.sentAt)})
	}
	return nil
}

var _ = codec.TypePingreq
