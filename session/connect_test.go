package session

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zmqtt/zmqtt-go/codec"
)

func TestConnectPacket(t *testing.T) {
	t.Run("§3.1.2/v311", func(t *testing.T) {
		h := newHarness(t, Config{Version: codec.V311, ClientID: "c1", CleanStart: true, KeepAlive: 30 * time.Second,
			Username: "u", Password: []byte("p"), Will: &codec.Will{Topic: "w", Payload: []byte("bye"), QoS: 1}})
		c, evs := h.connect(nil)
		want := &codec.Connect{CleanStart: true, KeepAlive: 30, ClientID: "c1", UsernameFlag: true, Username: "u",
			PasswordFlag: true, Password: []byte("p"), Will: &codec.Will{Topic: "w", Payload: []byte("bye"), QoS: 1}}
		if diff := cmp.Diff(want, c, packetOpts); diff != "" {
			t.Fatalf("CONNECT (-want +got):\n%s", diff)
		}
		wantKinds(t, evs, EventConnected)
	})
	t.Run("v5-properties", func(t *testing.T) {
		f := false
		h := newHarness(t, Config{Version: codec.V5, ClientID: "c1", ReceiveMaximum: 10, MaximumPacketSize: 4096,
			TopicAliasMaximum: 5, RequestResponseInfo: true, RequestProblemInfo: &f,
			User: []codec.UserProperty{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}})
		c, _ := h.connect(nil)
		p := c.Props
		if p.ReceiveMaximum != 10 || p.MaximumPacketSize != 4096 || p.TopicAliasMaximum != 5 ||
			p.RequestResponseInfo != 1 || !p.Has(codec.PropRequestProblemInformation) || p.RequestProblemInfo != 0 ||
			len(p.User) != 2 || p.User[1].Value != "2" {
			t.Fatalf("CONNECT properties %+v", p)
		}
		if !p.Has(codec.PropSessionExpiryInterval) || p.SessionExpiry != 0 {
			t.Fatalf("session expiry must always be sent on 5.0 (seed rule 7): %+v", p)
		}
	})
}

// TestConnackRefused: after a refusing CONNACK the server closes the
// connection [MQTT-3.2.2-5] (3.1.1) [MQTT-3.2.2-7] (5.0), and the session
// ends it too, whatever the server does next: a reason code of 0x80 or above
// means the connection is closed [MQTT-4.13.2-1].
func TestConnackRefused(t *testing.T) {
	t.Run("v311-return-code", func(t *testing.T) {
		h := newHarness(t, Config{Version: codec.V311, ClientID: "c", CleanStart: true})
		_, evs := h.connect(&codec.Connack{ReasonCode: codec.ReturnBadUserNameOrPassword})
		e := closedWith(t, evs, ErrRefused)
		var re *ReasonError
		if !errors.As(e.Err, &re) || re.Code != codec.ReasonBadUserNameOrPassword || re.ReturnCode != 4 || re.Retryable() {
			t.Fatalf("error %#v", e.Err)
		}
		if h.s.Connected() {
			t.Fatal("connected after a refusal")
		}
	})
	t.Run("v5-reason", func(t *testing.T) {
		h := newHarness(t, Config{})
		ack := &codec.Connack{ReasonCode: codec.ReasonServerBusy, Props: codec.Properties{ReasonString: "later", ServerReference: "other:1883"}}
		_, evs := h.connect(ack)
		var re *ReasonError
		if e := closedWith(t, evs, ErrRefused); !errors.As(e.Err, &re) || re.Code != codec.ReasonServerBusy ||
			re.Reason != "later" || re.ServerReference != "other:1883" || !re.Retryable() {
			t.Fatalf("error %#v", e.Err)
		}
	})
}

// TestConnackSessionPresentWithCleanStart: a server answers a clean start
// with Session Present 0 [MQTT-3.2.2-1] (3.1.1) [MQTT-3.2.2-2] (5.0). A
// client that has no session state and gets Session Present 1 closes the
// connection [MQTT-3.2.2-4] (5.0); on 3.1.1 it is a protocol violation,
// which closes it too [MQTT-4.8.0-1] (3.1.1).
func TestConnackSessionPresentWithCleanStart(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			h := newHarness(t, Config{Version: v, ClientID: "c", CleanStart: true})
			_, evs := h.connect(&codec.Connack{SessionPresent: true})
			e := closedWith(t, evs, ErrProtocol)
			if v == codec.V5 {
				h.expect(&codec.Disconnect{ReasonCode: codec.ReasonProtocolError})
			}
			_ = e
		})
	}
}

// TestAssignedClientIDReused: the client identifier names the session state
// on both sides [MQTT-3.1.3-2]: a client that connected without one resumes
// its session under the identifier the server assigned.
func TestAssignedClientIDReused(t *testing.T) {
	h := newHarness(t, Config{Version: codec.V5, CleanStart: true})
	c, evs := h.connect(&codec.Connack{Props: codec.Properties{AssignedClientID: "srv-42"}})
	if c.ClientID != "" {
		t.Fatalf("first CONNECT client id %q", c.ClientID)
	}
	if evs[0].Info.ClientID != "srv-42" {
		t.Fatalf("info %+v", evs[0].Info)
	}
	h.s.ConnectionLost(h.now, errors.New("reset"))
	h.events()
	c, _ = h.connect(nil)
	if c.ClientID != "srv-42" || c.CleanStart {
		t.Fatalf("reconnect CONNECT: client id %q clean %v; want the assigned id and no clean start", c.ClientID, c.CleanStart)
	}
}

func TestConnInfoDefaultsAndLimits(t *testing.T) {
	h := newHarness(t, Config{KeepAlive: time.Minute})
	_, evs := h.connect(&codec.Connack{Props: codec.Properties{
		ServerKeepAlive: 20, Present: 1<<codec.PropServerKeepAlive | 1<<codec.PropMaximumQoS | 1<<codec.PropRetainAvailable,
		ReceiveMaximum: 7, MaximumPacketSize: 1000, TopicAliasMaximum: 3, MaximumQoS: 1, RetainAvailable: 0,
		ResponseInfo: "resp/"}})
	info := evs[0].Info
	want := ConnInfo{Version: codec.V5, ClientID: "test-client", KeepAlive: 20, ReceiveMaximum: 7, MaximumQoS: 1,
		RetainAvailable: false, MaximumPacket: 1000, TopicAliasMax: 3, WildcardSubs: true, SubscriptionIDs: true,
		SharedSubs: true, ResponseInfo: "resp/", ConnectedAt: epoch, ConnectionNumber: 1}
	if diff := cmp.Diff(want, *info, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Props" }, cmp.Ignore())); diff != "" {
		t.Fatalf("info (-want +got):\n%s", diff)
	}
}

func TestConnectTimeout(t *testing.T) {
	h := newHarness(t, Config{ConnectTimeout: 5 * time.Second})
	if err := h.s.Connect(h.now); err != nil {
		t.Fatal(err)
	}
	h.sent()
	if d := h.s.Deadline(); !d.Equal(h.now.Add(5 * time.Second)) {
		t.Fatalf("deadline %v", d)
	}
	if evs := h.advance(4 * time.Second); len(evs) != 0 {
		t.Fatalf("early events %v", evs)
	}
	evs := h.advance(time.Second)
	e := closedWith(t, evs, ErrTimeout)
	if !errors.Is(e.Err, ErrConnectionLost) {
		t.Fatalf("a CONNACK timeout must also be a lost connection: %v", e.Err)
	}
}

func TestFirstPacketMustBeConnack(t *testing.T) {
	h := newHarness(t, Config{})
	h.s.Connect(h.now)
	h.sent()
	evs := h.feed(&codec.Pingresp{})
	if e := closedWith(t, evs, ErrProtocol); protoReason(t, e.Err) != codec.ReasonProtocolError {
		t.Fatal(e.Err)
	}
	h.expect(&codec.Disconnect{ReasonCode: codec.ReasonProtocolError})
}

// TestConfigValidation: a configuration the protocol does not allow is
// refused by New, among them an empty client identifier without clean
// session [MQTT-3.1.3-7] (3.1.1) and a password without a user name
// [MQTT-3.1.2-22] (3.1.1) on 3.1.1.
func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no-version":                 {},
		"v311-empty-id":              {Version: codec.V311},
		"v311-password-without-user": {Version: codec.V311, ClientID: "c", Password: []byte("x")},
		"v5-option-on-v311":          {Version: codec.V311, ClientID: "c", SessionExpiry: 10},
		"keepalive-too-long":         {Version: codec.V5, KeepAlive: 70000 * time.Second},
		"keepalive-subsecond":        {Version: codec.V5, KeepAlive: time.Millisecond},
		"bad-will-topic":             {Version: codec.V5, Will: &codec.Will{Topic: "a/#"}},
		"bad-prefix":                 {Version: codec.V5, StrippedPrefixes: []string{"a/b"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// TestConnectIsFirst: whatever waits when the connection comes up
// (publishes, a subscription, a ping), the first packet on it is CONNECT
// [MQTT-3.1.0-1], and nothing else goes out before the CONNACK. With an
// authentication method (5.0) only AUTH packets go out before it
// [MQTT-3.1.2-30].
func TestConnectIsFirst(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		for _, withAuth := range []bool{false, true} {
			if withAuth && v == codec.V311 {
				continue
			}
			name := v.String()
			if withAuth {
				name += "/auth"
			}
			t.Run(name, func(t *testing.T) {
				cfg := Config{Version: v, ClientID: "c", KeepAlive: 10 * time.Second}
				if withAuth {
					cfg.Authenticator = &scriptAuth{method: "M"}
				}
				h := newHarness(t, cfg)
				mustPublish(t, h, pub("a", 0, "zero"))
				mustPublish(t, h, pub("a", 1, "one"))
				if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "f"}}, SubscribeOptions{}); err != nil {
					t.Fatal(err)
				}
				if err := h.s.Connect(h.now); err != nil {
					t.Fatal(err)
				}
				if p := h.sent(); len(p) != 1 || p[0].Type() != codec.TypeConnect {
					t.Fatalf("on a new connection the session sent %v, want CONNECT alone", p)
				}
				// More to send while waiting for the CONNACK, and time passing.
				mustPublish(t, h, pub("a", 0, "late"))
				if _, err := h.s.Ping(h.now); err == nil {
					t.Fatal("Ping before the CONNACK was accepted")
				}
				h.advance(2 * time.Second)
				h.expectNothing()
				if withAuth {
					h.feed(authPkt(codec.ReasonContinueAuthentication, "M", []byte("challenge")))
					h.expect(authPkt(codec.ReasonContinueAuthentication, "M", []byte{1}))
				}
				ack := &codec.Connack{}
				if withAuth {
					ack.Props.AuthMethod = "M"
				}
				wantKinds(t, h.feed(ack), EventConnected, EventPublished, EventPublished) // the two QoS 0
				var types []codec.Type
				for _, p := range h.sent() {
					types = append(types, p.Type())
				}
				// The subscription goes first, then the messages in order.
				want := []codec.Type{codec.TypeSubscribe, codec.TypePublish, codec.TypePublish, codec.TypePublish}
				if !cmp.Equal(types, want) {
					t.Fatalf("after the CONNACK the session sent %v, want %v", types, want)
				}
			})
		}
	}
}
