package session

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// An MQTT 3.1.1 broker answers an MQTT 5.0 CONNECT with its own CONNACK,
// return code 0x01 (unacceptable protocol version) [MQTT-3.1.2-2]. That does
// not decode as 5.0; the session recognises it and ends the connection with
// a *ReasonError that says so and matches ErrUnsupportedVersion.
func TestV5ConnectToV311Broker(t *testing.T) {
	for _, split := range []bool{false, true} {
		h := newHarness(t, Config{})
		if err := h.s.Connect(h.now); err != nil {
			t.Fatal(err)
		}
		h.sent()
		b := []byte{0x20, 0x02, 0x00, 0x01}
		if split {
			if n, err := h.s.HandleBytes(h.now, b[:3]); n != 0 || err != nil {
				t.Fatalf("3 of 4 bytes: %d, %v", n, err)
			}
		}
		n, err := h.s.HandleBytes(h.now, b)
		if n != 4 || !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("HandleBytes: %d, %v", n, err)
		}
		e := closedWith(t, h.events(), ErrUnsupportedVersion)
		var re *ReasonError
		if !errors.As(e.Err, &re) || !errors.Is(e.Err, ErrRefused) || re.Retryable() ||
			re.Code != codec.ReasonUnsupportedProtocolVersion || re.ReturnCode != 0x01 {
			t.Fatalf("closed with %#v", e.Err)
		}
		if msg := e.Err.Error(); !strings.Contains(msg, "MQTT 3.1.1 CONNACK") || !strings.Contains(msg, "does not speak MQTT 5.0") {
			t.Fatalf("message %q does not say what happened", msg)
		}
		h.expectNothing() // no DISCONNECT: the broker does not speak 5.0
		if h.s.Connected() {
			t.Fatal("connected")
		}
	}
}

// A refused protocol version matches ErrUnsupportedVersion in both versions
// (5.0 reason 0x84, 3.1.1 return code 0x01) [MQTT-3.1.2-2]; other refusals
// do not.
func TestUnsupportedVersionRefusal(t *testing.T) {
	h := newHarness(t, Config{})
	_, evs := h.connect(&codec.Connack{ReasonCode: codec.ReasonUnsupportedProtocolVersion})
	e := closedWith(t, evs, ErrUnsupportedVersion)
	var re *ReasonError
	if !errors.As(e.Err, &re) || re.Retryable() || !errors.Is(e.Err, ErrRefused) || !strings.Contains(e.Err.Error(), "MQTT 5.0") {
		t.Fatalf("5.0 0x84: %v", e.Err)
	}

	h = newHarness(t, Config{Version: codec.V311, ClientID: "c", CleanStart: true})
	_, evs = h.connect(&codec.Connack{ReasonCode: codec.ReturnUnacceptableProtocolVersion})
	if e := closedWith(t, evs, ErrUnsupportedVersion); !errors.As(e.Err, &re) || re.ReturnCode != 0x01 || re.Retryable() {
		t.Fatalf("3.1.1 return code 1: %v", e.Err)
	}

	h = newHarness(t, Config{})
	_, evs = h.connect(&codec.Connack{ReasonCode: codec.ReasonNotAuthorized})
	if e := closedWith(t, evs, ErrRefused); errors.Is(e.Err, ErrUnsupportedVersion) {
		t.Fatalf("0x87 matches ErrUnsupportedVersion: %v", e.Err)
	}
}

// A broker that closes the connection without answering a 5.0 CONNECT may
// not speak 5.0: the error says so, but it is a lost connection (retryable),
// not ErrUnsupportedVersion.
func TestLostWhileConnectingHintsAtVersion(t *testing.T) {
	lose := func(h *harness) error {
		h.t.Helper()
		h.s.ConnectionLost(h.now, io.EOF)
		e := closedWith(h.t, h.events(), ErrConnectionLost)
		if !errors.Is(e.Err, io.EOF) || errors.Is(e.Err, ErrUnsupportedVersion) || errors.Is(e.Err, ErrRefused) {
			h.t.Fatalf("closed with %v", e.Err)
		}
		return e.Err
	}
	const hint = "may not speak MQTT 5.0"

	h := newHarness(t, Config{})
	h.s.Connect(h.now)
	if err := lose(h); !strings.Contains(err.Error(), hint) {
		t.Fatalf("5.0, nothing received: %q lacks the hint", err)
	}

	h = newHarness(t, Config{})
	h.s.Connect(h.now)
	h.s.ConnectionLost(h.now, errors.New("read: connection reset by peer"))
	if e := closedWith(t, h.events(), ErrConnectionLost); !strings.Contains(e.Err.Error(), hint) {
		t.Fatalf("5.0, reset: %q lacks the hint", e.Err)
	}

	// A cause that explains itself gets no hint.
	h = newHarness(t, Config{})
	h.s.Connect(h.now)
	h.s.ConnectionLost(h.now, errors.New("remote error: tls: certificate required"))
	if e := closedWith(t, h.events(), ErrConnectionLost); strings.Contains(e.Err.Error(), hint) {
		t.Fatalf("5.0, TLS alert: %q", e.Err)
	}

	h = newHarness(t, Config{Version: codec.V311, ClientID: "c"})
	h.s.Connect(h.now)
	if err := lose(h); strings.Contains(err.Error(), "MQTT 5.0") {
		t.Fatalf("3.1.1: %q", err)
	}

	// Something came: the broker speaks 5.0.
	h = newHarness(t, Config{Authenticator: &scriptAuth{method: "M", initial: []byte("a")}})
	h.s.Connect(h.now)
	h.sent()
	h.feed(authPkt(codec.ReasonContinueAuthentication, "M", []byte("c")))
	h.sent()
	if err := lose(h); strings.Contains(err.Error(), hint) {
		t.Fatalf("after an AUTH: %q", err)
	}

	h = connected(t, Config{}, nil)
	if err := lose(h); strings.Contains(err.Error(), hint) {
		t.Fatalf("connected: %q", err)
	}
}

// The Assigned Client Identifier answers an empty client identifier
// [MQTT-3.1.3-7] (5.0) [MQTT-3.2.2-16]. When the client sent its own, one in the
// CONNACK anyway is ignored: ConnInfo and the next CONNECT keep ours.
func TestAssignedClientIDIgnoredWhenOwn(t *testing.T) {
	h := newHarness(t, Config{ClientID: "mine"})
	_, evs := h.connect(&codec.Connack{Props: codec.Properties{AssignedClientID: "srv-1"}})
	if evs[0].Info.ClientID != "mine" || h.s.ClientID() != "mine" {
		t.Fatalf("info client id %q, session %q; want ours", evs[0].Info.ClientID, h.s.ClientID())
	}
	h.s.ConnectionLost(h.now, nil)
	h.events()
	if c, _ := h.connect(nil); c.ClientID != "mine" {
		t.Fatalf("reconnect with %q", c.ClientID)
	}

	// An identifier assigned once is ours from then on.
	h = newHarness(t, Config{CleanStart: true})
	h.connect(&codec.Connack{Props: codec.Properties{AssignedClientID: "srv-1"}})
	h.s.ConnectionLost(h.now, nil)
	h.events()
	c, evs := h.connect(&codec.Connack{Props: codec.Properties{AssignedClientID: "srv-2"}})
	if c.ClientID != "srv-1" || evs[0].Info.ClientID != "srv-1" || h.s.ClientID() != "srv-1" {
		t.Fatalf("CONNECT %q, info %q, session %q; want srv-1 throughout", c.ClientID, evs[0].Info.ClientID, h.s.ClientID())
	}
}
