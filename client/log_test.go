package client_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsHideSecrets: at debug level the client logs its connection and
// messages, but never a password (from the config or the URL), a payload,
// or a will payload; neither do the String methods of the packets.
func TestLogsHideSecrets(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{Users: map[string]string{"alice": "s3cret-pass"}})
	ctx := deadline(t, 60*time.Second)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	url := "mqtt://alice:s3cret-pass@" + b.Addr(brokertest.MQTT) // credentials from the URL
	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "logged", Logger: logger,
		Will: &client.Will{Topic: "wills/logged", Payload: []byte("will-secret-payload")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect with the URL's credentials: %v", err)
	}
	s, err := c.Subscribe(ctx, []string{"logged/#", "nobody/#"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "logged/x", []byte("payload-secret"), client.AtLeastOnce); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ctx, s); string(m.Payload) != "payload-secret" {
		t.Fatalf("got %q", m.Payload)
	}
	if err := c.Disconnect(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "connected") || !strings.Contains(out, b.Addr(brokertest.MQTT)) {
		t.Fatalf("the log does not show the connection:\n%s", out)
	}
	for _, secret := range []string{"s3cret-pass", "payload-secret", "will-secret-payload"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q:\n%s", secret, out)
		}
	}

	// A wrong password from the URL is refused, and not retried.
	bad, err := client.New5(client.Config5{Config: client.Config{URL: "mqtt://alice:wrong@" + b.Addr(brokertest.MQTT), ClientID: "bad"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Connect(ctx); err == nil || client.SafeToRetry(err) {
		t.Fatalf("wrong password: %v (SafeToRetry %v)", err, client.SafeToRetry(err))
	}

	for _, p := range []codec.Packet{
		&codec.Connect{ClientID: "x", Username: "alice", Password: []byte("s3cret-pass"),
			Will: &codec.Will{Topic: "w", Payload: []byte("will-secret-payload")}},
		&codec.Publish{Topic: "t", Payload: []byte("payload-secret")},
		&codec.Auth{Props: codec.Properties{AuthData: []byte("s3cret-pass")}},
	} {
		s := p.(interface{ String() string }).String()
		for _, secret := range []string{"s3cret-pass", "payload-secret", "will-secret-payload"} {
			if strings.Contains(s, secret) {
				t.Errorf("%T.String() shows %q: %s", p, secret, s)
			}
		}
	}
}
