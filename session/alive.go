package session

import "time"

// NoteAlive tells the session that the connection showed a sign of life at
// now without a packet the session has seen: bytes that arrived but that
// the caller holds back (a client that stopped reading while a consumer is
// slow). It counts as a packet received for the liveness rule (see
// keepalive.go), so the pause is not blamed on the server. It does nothing
// without a connection.
func (s *Session) NoteAlive(now time.Time) {
	if s.phase == phaseConnected && now.After(s.lastRecv) {
		s.lastRecv = now
	}
}
