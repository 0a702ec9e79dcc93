package session

import (
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Timers. The session reads no clock: every input carries the current time,
// Deadline says when the session next needs HandleTimeout, and the caller
// runs one timer for it. The deadlines are: the CONNACK (and authentication)
// timeout while connecting; while connected, the keep alive and liveness
// deadlines below, and the end of the window in which messages of a resumed
// session wait for their subscription.
//
// # Liveness
//
// The session keeps two times per connection: lastSent, when it last queued
// bytes, and lastRecv, when it last received a complete packet of any type
// (the CONNACK included). With ka the keep alive in force (the server's
// Server Keep Alive when it sent one [MQTT-3.2.2-21], else ours):
//
//   - A PINGREQ is sent when nothing was sent for ka (now >= lastSent+ka),
//     so that the client sends something within each keep alive whatever
//     else happens [MQTT-3.1.2-23] [MQTT-3.1.2-20]; and when nothing was
//     received for ka (now >= lastRecv+ka) and no PINGREQ is outstanding,
//     so that a silent server is probed even while the client is busy
//     sending.
//   - The connection is declared dead (a *TimeoutError waiting for
//     "PINGRESP") only when a PINGREQ is outstanding and nothing at all was
//     received for the ping timeout since max(the oldest outstanding
//     PINGREQ's send time, lastRecv). Any packet received is a sign of life:
//     a PINGRESP that waits behind thousands of PUBLISH packets does not end
//     a connection that keeps delivering. The PINGREQ stays outstanding; its
//     PINGRESP, however late, still answers it.
//   - The ping timeout is Config.PingTimeout when set; by default half the
//     keep alive in force, at least 500 ms, computed at each CONNACK; 30 s
//     without keep alive (for Ping).
//
// So a dead link (a black hole, a half-open connection) is noticed at most
// 1.5 keep alive intervals after the last packet received with the default
// ping timeout, whatever the client was doing; the server's own rule is the
// same 1.5 times [MQTT-3.1.2-24].

const (
	minPingTimeout       = 500 * time.Millisecond
	noKeepAlivePingLimit = 30 * time.Second
)

type ping struct {
	token  Token // 0 for a keep alive ping
	sentAt time.Time
}

// TimeoutError reports a protocol deadline that passed: no CONNACK in
// Config.ConnectTimeout, or nothing at all received for the ping timeout
// while a PINGREQ was outstanding (see Config.PingTimeout). It matches
// ErrTimeout and ErrConnectionLost.
type TimeoutError struct {
	Waiting string // "CONNACK" or "PINGRESP"
	After   time.Duration
}

// Error formats the error.
func (e *TimeoutError) Error() string {
	if e.Waiting == "PINGRESP" {
		return "zmqtt: timeout: no PINGRESP and nothing else from the server for " + e.After.String()
	}
	return "zmqtt: timeout: no " + e.Waiting + " after " + e.After.String()
}

// Is matches ErrTimeout and ErrConnectionLost.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == ErrConnectionLost
}

// pingTimeoutFor returns the ping timeout of a connection whose keep alive
// in force is ka.
func (c *Config) pingTimeoutFor(ka time.Duration) time.Duration {
	switch {
	case c.PingTimeout > 0:
		return c.PingTimeout
	case ka > 0:
		return max(ka/2, minPingTimeout)
	}
	return noKeepAlivePingLimit
}

// deadAt returns when the connection is declared dead: the ping timeout
// after the later of the oldest outstanding PINGREQ and the last packet
// received. Only meaningful with a PINGREQ outstanding.
func (s *Session) deadAt() time.Time {
	t := s.pings[0].sentAt
	if s.lastRecv.After(t) {
		t = s.lastRecv
	}
	return t.Add(s.pingTimeout)
}

// Deadline returns when HandleTimeout must next be called; the zero time
// means no timer is needed. It never fails.
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
			if len(s.pings) == 0 {
				earliest(s.lastRecv.Add(s.keepAlive))
			}
		}
		if len(s.pings) > 0 {
			earliest(s.deadAt())
		}
		if s.holding {
			earliest(s.holdDeadline)
		}
	}
	return d
}

// HandleTimeout applies every deadline that has passed at now. It is safe
// to call early or often: nothing happens before a deadline. Its outcomes
// are events (EventClosed with a *TimeoutError) and bytes to send.
func (s *Session) HandleTimeout(now time.Time) {
	switch s.phase {
	case phaseConnecting:
		if !now.Before(s.connectDeadline) {
			s.close(now, &TimeoutError{Waiting: "CONNACK", After: s.cfg.ConnectTimeout})
		}
	case phaseConnected:
		if len(s.pings) > 0 && !now.Before(s.deadAt()) {
			s.close(now, &TimeoutError{Waiting: "PINGRESP", After: s.pingTimeout})
			return
		}
		if s.holding && !s.holdDeadline.IsZero() && !now.Before(s.holdDeadline) {
			s.expireHeld(now)
		}
		if s.keepAlive > 0 && (!now.Before(s.lastSent.Add(s.keepAlive)) ||
			len(s.pings) == 0 && !now.Before(s.lastRecv.Add(s.keepAlive))) {
			s.sendPing(now, 0)
		}
	}
}

// Ping sends a PINGREQ; its Token completes with EventPong carrying the
// round-trip time, or with the error that ends the connection first (a
// *TimeoutError when nothing at all came from the server for the ping
// timeout, see Config.PingTimeout). It returns ErrNotConnected when there
// is no connection.
func (s *Session) Ping(now time.Time) (Token, error) {
	if s.phase != phaseConnected {
		return 0, ErrNotConnected
	}
	t := s.nextToken()
	s.sendPing(now, t)
	return t, nil
}

func (s *Session) sendPing(now time.Time, t Token) {
	s.out, _ = (&codec.Pingreq{}).Append(s.out, s.v)
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
