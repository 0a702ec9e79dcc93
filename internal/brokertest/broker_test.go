package brokertest_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *codec.Reader
}

func dialRaw(t *testing.T, ctx context.Context, addr string) *rawClient {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, r: codec.NewReader(conn, 1<<20)}
}

func (c *rawClient) send(p codec.Packet) {
	c.t.Helper()
	b, err := codec.Append(nil, p, codec.V5)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) recv() codec.Packet {
	c.t.Helper()
	_, raw, err := c.r.Next()
	if err != nil {
		c.t.Fatal(err)
	}
	p, _, err := codec.Decode(raw, codec.V5)
	if err != nil {
		c.t.Fatal(err)
	}
	return codec.Clone(p)
}

// TestUsersACLAndPersistence checks the optional parts: the password file
// (Mosquitto's PBKDF2 format, written by us), the ACL, and persistence
// that keeps a retained message across kill -9 and a restart on the same
// ports.
func TestUsersACLAndPersistence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := brokertest.Start(t, brokertest.Config{
		Users:       map[string]string{"alice": "wonderland", "bob": "builder"},
		ACL:         "user alice\ntopic readwrite #\n\nuser bob\ntopic read public/#\n",
		Persistence: true,
	})
	connect := func(user, pass string) (*rawClient, codec.ReasonCode) {
		c := dialRaw(t, ctx, b.Addr(brokertest.MQTT))
		c.send(&codec.Connect{CleanStart: true, ClientID: "c-" + user, Username: user, Password: []byte(pass)})
		ca := c.recv().(*codec.Connack)
		return c, ca.ReasonCode
	}
	// Mosquitto 2.0 answers a wrong password with "not authorized".
	if _, rc := connect("alice", "wrong"); rc != codec.ReasonBadUserNameOrPassword && rc != codec.ReasonNotAuthorized {
		t.Fatalf("wrong password: CONNACK %v, want a refusal", rc)
	}
	if _, rc := connect("mallory", "x"); rc != codec.ReasonBadUserNameOrPassword && rc != codec.ReasonNotAuthorized {
		t.Fatalf("unknown user: CONNACK %v", rc)
	}
	alice, rc := connect("alice", "wonderland")
	if rc != codec.ReasonSuccess {
		t.Fatalf("alice: CONNACK %v", rc)
	}
	alice.send(&codec.Publish{Topic: "public/news", QoS: codec.AtLeastOnce, PacketID: 1, Retain: true, Payload: []byte("kept")})
	if ack := alice.recv().(*codec.Puback); ack.PacketID != 1 {
		t.Fatalf("PUBACK %v", ack)
	}
	bob, rc := connect("bob", "builder")
	if rc != codec.ReasonSuccess {
		t.Fatalf("bob: CONNACK %v", rc)
	}
	// Bob may read public/# but not write it: the broker answers "not
	// authorized" for his QoS 1 publish.
	bob.send(&codec.Publish{Topic: "public/news", QoS: codec.AtLeastOnce, PacketID: 1, Payload: []byte("spoof")})
	if ack := bob.recv().(*codec.Puback); ack.ReasonCode != codec.ReasonNotAuthorized && ack.ReasonCode != codec.ReasonNoMatchingSubscribers {
		t.Fatalf("bob's publish: PUBACK %v", ack.ReasonCode)
	}

	port := b.Port(brokertest.MQTT)
	b.Kill()
	if b.Running() {
		t.Fatal("running after Kill")
	}
	if err := b.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Port(brokertest.MQTT) != port {
		t.Fatalf("restarted on port %d, was %d", b.Port(brokertest.MQTT), port)
	}
	bob, rc = connect("bob", "builder")
	if rc != codec.ReasonSuccess {
		t.Fatalf("bob after restart: CONNACK %v", rc)
	}
	bob.send(&codec.Subscribe{PacketID: 2, Subscriptions: []codec.Subscription{{Filter: "public/#", QoS: codec.AtLeastOnce}}})
	var gotSuback, gotRetained bool
	for !gotSuback || !gotRetained {
		switch p := bob.recv().(type) {
		case *codec.Suback:
			gotSuback = true
		case *codec.Publish:
			if !p.Retain || !bytes.Equal(p.Payload, []byte("kept")) {
				t.Fatalf("after kill -9 and restart: %v", p)
			}
			if p.QoS > 0 {
				bob.send(&codec.Puback{PacketID: p.PacketID})
			}
			gotRetained = true
		}
	}
}

func TestConfigFileAndCertificates(t *testing.T) {
	b := brokertest.Start(t)
	conf, err := os.ReadFile(b.Dir() + "/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"allow_anonymous true", "protocol websockets", "require_certificate true", "127.0.0.1"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if strings.Contains(string(conf), "1883") {
		t.Errorf("config mentions the standard port 1883:\n%s", conf)
	}
	for _, f := range []string{b.CAFile(), b.ClientCertFile(), b.ClientKeyFile()} {
		if data, err := os.ReadFile(f); err != nil || !bytes.HasPrefix(data, []byte("-----BEGIN")) {
			t.Errorf("%s: not a PEM file (%v)", f, err)
		}
	}
	if u := b.URL(brokertest.WSS); !strings.HasPrefix(u, "wss://127.0.0.1:") {
		t.Errorf("URL(WSS) = %q", u)
	}
}

// TestExtraMaxPacketSize checks that Config.Extra carries a global option:
// with max_packet_size 2048, Mosquitto 2.0 announces the limit in CONNACK
// (MQTT 5.0) and disconnects a client that sends a larger packet with
// reason 0x95 (packet too large).
func TestExtraMaxPacketSize(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := brokertest.Start(t, brokertest.Config{Extra: []string{"max_packet_size 2048"}})
	c := dialRaw(t, ctx, b.Addr(brokertest.MQTT))
	c.send(&codec.Connect{CleanStart: true, ClientID: "max-packet"})
	if ca := c.recv().(*codec.Connack); ca.ReasonCode != codec.ReasonSuccess || ca.Props.MaximumPacketSize != 2048 {
		t.Fatalf("CONNACK %v, maximum packet size %d; want 2048", ca.ReasonCode, ca.Props.MaximumPacketSize)
	}
	c.send(&codec.Publish{Topic: "size", QoS: codec.AtLeastOnce, PacketID: 1, Payload: make([]byte, 1000)})
	if ack, ok := c.recv().(*codec.Puback); !ok || ack.PacketID != 1 {
		t.Fatalf("small publish: %v", ack)
	}
	c.send(&codec.Publish{Topic: "size", QoS: codec.AtLeastOnce, PacketID: 2, Payload: make([]byte, 3000)})
	if d, ok := c.recv().(*codec.Disconnect); !ok || d.ReasonCode != codec.ReasonPacketTooLarge {
		t.Fatalf("oversized publish: got %v, want DISCONNECT 0x95", d)
	}
}
