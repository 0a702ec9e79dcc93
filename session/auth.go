package session

import (
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Enhanced authentication [§4.12]: the exchange of AUTH packets before
// CONNACK, driven by the configured Authenticator, and re-authentication
// after it (AUTH with reason 0x19). Every AUTH and the CONNACK must name the
// same method as the CONNECT; anything else is a protocol error.

type authState struct {
	active     bool  // an exchange is in progress
	connecting bool  // the exchange belongs to the CONNECT
	token      Token // the token of a re-authentication
}

// authError reports a failure of the Authenticator or of the exchange. It
// matches ErrAuth.
type authError struct {
	stage string
	err   error
}

func (e *authError) Error() string {
	s := "zmqtt: authentication failed: " + e.stage
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}
func (e *authError) Unwrap() error        { return e.err }
func (e *authError) Is(target error) bool { return target == ErrAuth }

// finishConnectAuth checks the authentication part of a successful CONNACK.
func (s *Session) finishConnectAuth(now time.Time, p *codec.Connack) error {
	a := s.cfg.Authenticator
	if a == nil {
		if p.Props.Has(codec.PropAuthenticationMethod) {
			return s.fail(now, remoteErr(codec.ReasonProtocolError, "§3.2.2-?", "CONNACK names an authentication method the client did not use"))
		}
		return nil
	}
	if p.Props.AuthMethod != a.Method() {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-4.12.0-5", "CONNACK names authentication method "+p.Props.AuthMethod+", not "+a.Method()))
	}
	if err := a.Finish(p.Props.AuthData); err != nil {
		e := &authError{stage: "final server data", err: err}
		s.abortAuth(now, e)
		return e
	}
	s.auth = authState{}
	return nil
}

// abortAuth ends the connection after an authentication failure on our side.
func (s *Session) abortAuth(now time.Time, err error) {
	if s.v == codec.V5 && s.phase == phaseConnected {
		d := codec.Disconnect{ReasonCode: codec.ReasonNotAuthorized}
		if codec.CheckSender(&d, codec.RoleClient, s.v) != nil {
			d.ReasonCode = codec.ReasonUnspecifiedError
		}
		s.out, _ = d.Append(s.out, s.v)
	}
	s.close(now, err)
}

// handleAuth continues an exchange [§3.15].
func (s *Session) handleAuth(now time.Time, p *codec.Auth) error {
	a := s.cfg.Authenticator
	if a == nil || !s.auth.active {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-4.12.0-2", "AUTH without an authentication exchange in progress"))
	}
	if p.Props.AuthMethod != a.Method() {
		return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-4.12.0-5", "AUTH names authentication method "+p.Props.AuthMethod+", not "+a.Method()))
	}
	switch p.ReasonCode {
	case codec.ReasonContinueAuthentication:
		data, err := a.Continue(p.Props.AuthData)
		if err != nil {
			e := &authError{stage: "continue", err: err}
			s.abortAuth(now, e)
			return e
		}
		reply := codec.Auth{ReasonCode: codec.ReasonContinueAuthentication}
		reply.Props.AuthMethod, reply.Props.AuthData = a.Method(), data
		return s.send(now, &reply)
	case codec.ReasonSuccess:
		if s.auth.connecting {
			return s.fail(now, remoteErr(codec.ReasonProtocolError, "§4.12.0-?", "AUTH success before CONNACK"))
		}
		t := s.auth.token
		if err := a.Finish(p.Props.AuthData); err != nil {
			e := &authError{stage: "final server data of re-authentication", err: err}
			s.auth = authState{}
			s.push(Event{Kind: EventAuthenticated, Token: t, Err: e})
			s.abortAuth(now, e)
			return e
		}
		s.auth = authState{}
		s.push(Event{Kind: EventAuthenticated, Token: t})
		return nil
	}
	return s.fail(now, remoteErr(codec.ReasonProtocolError, "MQTT-3.15.2-1", "AUTH with reason code "+p.ReasonCode.String()+" from the server"))
}

// Reauthenticate starts a re-authentication (AUTH, reason 0x19) with the
// configured Authenticator's Initial data; its Token completes with
// EventAuthenticated. The server ends the connection if it refuses.
// Errors: *UnsupportedError on 3.1.1 or without an Authenticator,
// ErrNotConnected, an exchange already in progress, the Authenticator's.
func (s *Session) Reauthenticate(now time.Time) (Token, error) {
	a := s.cfg.Authenticator
	if s.v != codec.V5 || a == nil {
		return 0, &UnsupportedError{Feature: "re-authentication", Detail: "it needs MQTT 5.0 and an Authenticator"}
	}
	if s.phase != phaseConnected {
		return 0, ErrNotConnected
	}
	if s.auth.active {
		return 0, &authError{stage: "a re-authentication is already in progress"}
	}
	data, err := a.Initial()
	if err != nil {
		return 0, &authError{stage: "initial data", err: err}
	}
	p := codec.Auth{ReasonCode: codec.ReasonReauthenticate}
	p.Props.AuthMethod, p.Props.AuthData = a.Method(), data
	if err := s.send(now, &p); err != nil {
		return 0, err
	}
	t := s.nextToken()
	s.auth = authState{active: true, token: t}
	return t, nil
}
