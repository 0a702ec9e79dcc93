package session

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// scriptAuth is an Authenticator that records the server's data and answers
// with a counter, so a test can check each round.
type scriptAuth struct {
	method  string
	rounds  [][]byte
	final   []byte
	failOn  string
	initial []byte
}

func (a *scriptAuth) Method() string { return a.method }
func (a *scriptAuth) Initial() ([]byte, error) {
	if a.failOn == "initial" {
		return nil, errors.New("no credentials")
	}
	return a.initial, nil
}
func (a *scriptAuth) Continue(d []byte) ([]byte, error) {
	if a.failOn == "continue" {
		return nil, errors.New("bad challenge")
	}
	a.rounds = append(a.rounds, bytes.Clone(d))
	return []byte{byte(len(a.rounds))}, nil
}
func (a *scriptAuth) Finish(d []byte) error {
	a.final = bytes.Clone(d)
	if a.failOn == "finish" {
		return errors.New("server signature mismatch")
	}
	return nil
}

func authPkt(code codec.ReasonCode, method string, data []byte) *codec.Auth {
	p := &codec.Auth{ReasonCode: code}
	p.Props.AuthMethod, p.Props.AuthData = method, data
	return p
}

// TestEnhancedAuthMultiRound: the client answers each AUTH of the server
// with an AUTH of reason 0x18 [MQTT-4.12.0-3] naming the method of the
// CONNECT [MQTT-4.12.0-5], and sends nothing else before the CONNACK
// [MQTT-3.1.2-30]; a re-authentication is an AUTH of reason 0x19 with that
// same method [MQTT-4.12.1-1]. Its AUTH packets hold the method and the
// data only, never a Reason String or User Property that could take them
// above the server's Maximum Packet Size [MQTT-3.15.2-2] [MQTT-3.15.2-3].
func TestEnhancedAuthMultiRound(t *testing.T) {
	a := &scriptAuth{method: "SCRAM-SHA-1", initial: []byte("client-first")}
	h := newHarness(t, Config{Authenticator: a})
	if err := h.s.Connect(h.now); err != nil {
		t.Fatal(err)
	}
	c := h.sent()[0].(*codec.Connect)
	if c.Props.AuthMethod != "SCRAM-SHA-1" || string(c.Props.AuthData) != "client-first" {
		t.Fatalf("CONNECT auth properties %+v", c.Props)
	}
	for i := 1; i <= 2; i++ {
		h.feed(authPkt(codec.ReasonContinueAuthentication, "SCRAM-SHA-1", []byte{0xA0 + byte(i)}))
		h.expect(authPkt(codec.ReasonContinueAuthentication, "SCRAM-SHA-1", []byte{byte(i)}))
	}
	ack := &codec.Connack{}
	ack.Props.AuthMethod, ack.Props.AuthData = "SCRAM-SHA-1", []byte("server-final")
	evs := h.feed(ack)
	wantKinds(t, evs, EventConnected)
	if len(a.rounds) != 2 || string(a.final) != "server-final" {
		t.Fatalf("authenticator saw rounds %x final %q", a.rounds, a.final)
	}
	t.Run("reauthenticate", func(t *testing.T) {
		tok, err := h.s.Reauthenticate(h.now)
		if err != nil {
			t.Fatal(err)
		}
		h.expect(authPkt(codec.ReasonReauthenticate, "SCRAM-SHA-1", []byte("client-first")))
		h.feed(authPkt(codec.ReasonContinueAuthentication, "SCRAM-SHA-1", []byte("c")))
		h.expect(authPkt(codec.ReasonContinueAuthentication, "SCRAM-SHA-1", []byte{3}))
		evs := h.feed(authPkt(codec.ReasonSuccess, "SCRAM-SHA-1", []byte("ok")))
		if len(evs) != 1 || evs[0].Kind != EventAuthenticated || evs[0].Token != tok || evs[0].Err != nil {
			t.Fatalf("events %+v", evs)
		}
	})
}

func TestEnhancedAuthFailures(t *testing.T) {
	t.Run("MQTT-4.12.0-5/method-mismatch-in-auth", func(t *testing.T) {
		h := newHarness(t, Config{Authenticator: &scriptAuth{method: "A"}})
		h.s.Connect(h.now)
		h.sent()
		closedWith(t, h.feed(authPkt(codec.ReasonContinueAuthentication, "B", nil)), ErrProtocol)
	})
	t.Run("method-mismatch-in-connack", func(t *testing.T) {
		h := newHarness(t, Config{Authenticator: &scriptAuth{method: "A"}})
		ack := &codec.Connack{}
		ack.Props.AuthMethod = "B"
		_, evs := h.connect(ack)
		closedWith(t, evs, ErrProtocol)
	})
	t.Run("authenticator-refuses-server", func(t *testing.T) {
		h := newHarness(t, Config{Authenticator: &scriptAuth{method: "A", failOn: "finish"}})
		ack := &codec.Connack{}
		ack.Props.AuthMethod = "A"
		_, evs := h.connect(ack)
		closedWith(t, evs, ErrAuth)
	})
	t.Run("unsolicited-auth", func(t *testing.T) {
		h := connected(t, Config{}, nil)
		closedWith(t, h.feed(authPkt(codec.ReasonContinueAuthentication, "A", nil)), ErrProtocol)
	})
	t.Run("MQTT-4.12.0-7/no-auth-without-a-method", func(t *testing.T) {
		h := connected(t, Config{}, nil)
		if _, err := h.s.Reauthenticate(h.now); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Reauthenticate without an Authenticator: %v", err)
		}
		h.expectNothing()
	})
	// A failed re-authentication closes the connection [MQTT-4.12.1-2]: on
	// our side with DISCONNECT 0x80 (0x87 Not authorized is not a reason a
	// client may send), on the server's with its DISCONNECT.
	t.Run("MQTT-4.12.1-2/reauthentication-refused-by-client", func(t *testing.T) {
		a := &scriptAuth{method: "A"}
		h := connected(t, Config{Authenticator: a}, &codec.Connack{Props: codec.Properties{AuthMethod: "A"}})
		tok, err := h.s.Reauthenticate(h.now)
		if err != nil {
			t.Fatal(err)
		}
		h.sent()
		a.failOn = "continue"
		evs := h.feed(authPkt(codec.ReasonContinueAuthentication, "A", []byte("bad")))
		h.expect(&codec.Disconnect{ReasonCode: codec.ReasonUnspecifiedError})
		closedWith(t, evs, ErrAuth)
		if !slices.ContainsFunc(evs, func(e Event) bool { return e.Kind == EventAuthenticated && e.Token == tok && errors.Is(e.Err, ErrAuth) }) {
			t.Fatalf("events %+v: the re-authentication's token did not fail", evs)
		}
	})
	t.Run("MQTT-4.12.1-2/reauthentication-refused-by-server", func(t *testing.T) {
		a := &scriptAuth{method: "A"}
		h := connected(t, Config{Authenticator: a}, &codec.Connack{Props: codec.Properties{AuthMethod: "A"}})
		tok, err := h.s.Reauthenticate(h.now)
		if err != nil {
			t.Fatal(err)
		}
		h.sent()
		evs := h.feed(&codec.Disconnect{ReasonCode: codec.ReasonNotAuthorized})
		closedWith(t, evs, ErrConnectionLost)
		h.expectNothing()
		if !slices.ContainsFunc(evs, func(e Event) bool { return e.Kind == EventAuthenticated && e.Token == tok && e.Err != nil }) {
			t.Fatalf("events %+v: the re-authentication's token did not fail", evs)
		}
	})
	t.Run("no-auth-on-v311", func(t *testing.T) {
		h := connected(t, Config{Version: codec.V311}, nil)
		if _, err := h.s.Reauthenticate(h.now); !errors.Is(err, ErrUnsupported) {
			t.Fatal(err)
		}
	})
	t.Run("initial-data-error", func(t *testing.T) {
		h := newHarness(t, Config{Authenticator: &scriptAuth{method: "A", failOn: "initial"}})
		if err := h.s.Connect(h.now); !errors.Is(err, ErrAuth) {
			t.Fatal(err)
		}
	})
}
