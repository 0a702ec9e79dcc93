// Package session is the MQTT 3.1.1 and 5.0 protocol state of one client
// identity, as a deterministic state machine: no I/O, no goroutines, no
// clock and no randomness of its own. It imports only codec.
//
// # Driving a Session
//
// Inputs are the server's bytes, the caller's commands and the current
// time; outputs are bytes to write, events, and the next deadline:
//
//	s, _ := session.New(session.Config{Version: codec.V5, ClientID: "c1", KeepAlive: time.Minute})
//	conn := dial()
//	s.Connect(time.Now())
//	for {
//		conn.Write(s.AppendTransmit(buf[:0]))         // bytes to send
//		for ev, ok := s.NextEvent(); ok; ev, ok = s.NextEvent() {
//			handle(ev)                              // deliveries, completions, errors
//		}
//		// wait for bytes, a command, or s.Deadline()
//		n, err := s.HandleBytes(time.Now(), in)       // one packet at a time
//		s.HandleTimeout(time.Now())                   // when the deadline passes
//	}
//
// After every input, write the transmit bytes and drain every event before
// the next input: events and the messages they carry borrow from the input
// and from the session until then. The client package does exactly this on
// one goroutine; a caller with an event loop of its own can do the same.
//
// # Phases
//
// A Session is idle, connecting or connected, and accepts only the packets
// of its phase:
//
//	idle --Connect--> connecting --CONNACK ok--> connected
//	                    |  ^ AUTH (continue)       | PUBLISH, PUBACK..PUBCOMP, SUBACK,
//	                    |  +-----------------------| UNSUBACK, PINGRESP, AUTH, DISCONNECT
//	                    v                          v
//	idle <--CONNACK refused, DISCONNECT, protocol error, timeout, ConnectionLost, Disconnect
//
// Every way back to idle queues exactly one EventClosed. The state that
// outlives a connection (unacknowledged messages in both directions,
// subscriptions, the assigned client identifier) stays for the next Connect.
//
// # What it owns
//
// Packet identifiers; the QoS 1 and 2 flows in both directions with their
// duplicate rules; resending after a reconnect that resumes the session
// [MQTT-4.4.0-1], and publishing again (or failing, see Config.SessionLost)
// what a new session lost; failing a message the server keeps closing the
// connection over (Config.PoisonCloses); Receive Maximum both ways
// [§4.9] and an outbound window on 3.1.1 (Config.MaxInflight); Maximum
// Packet Size both ways;
// topic aliases both ways; Maximum QoS, Retain Available, wildcard, shared
// and subscription identifier availability from CONNACK (refused before a
// byte is written); Server Keep Alive, keep alive and liveness deadlines
// (see keepalive.go: a dead link is noticed within 1.5 keep alive
// intervals, a busy one is never dropped); the assigned client identifier
// (taken only when we sent none); recognising an MQTT 3.1.1 broker's answer
// to an MQTT 5.0 CONNECT (ErrUnsupportedVersion); enhanced authentication and
// re-authentication; the subscription registry and the router (see Config's
// Routing); and persistence through a Store.
//
// A Session is not safe for concurrent use: one goroutine owns it.
package session
