package brokertest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/mqtttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConfigReachesMosquitto checks the layer over mqtttest: each field of
// Config becomes its option in the broker's configuration file, and the
// listener names and UnixURL are mqtttest's. (mqtttest's own tests check
// what the options do.)
func TestConfigReachesMosquitto(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{
		Users:       map[string]string{"alice": "wonderland"},
		ACL:         "user alice\ntopic readwrite #\n",
		Persistence: true,
		Extra:       []string{"max_inflight_messages 7"},
		Verbose:     true,
	})
	conf, err := os.ReadFile(filepath.Join(b.Dir(), "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"allow_anonymous false", "password_file ", "acl_file ", "persistence true",
		"max_inflight_messages 7", "log_type all"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if got, want := b.UnixURL(), b.URL(mqtttest.Unix); got != want || !strings.HasPrefix(got, "unix:///") {
		t.Errorf("UnixURL() = %q, URL(Unix) = %q", got, want)
	}
	for l, want := range map[brokertest.Listener]mqtttest.Listener{
		brokertest.MQTT: mqtttest.TCP, brokertest.MQTTS: mqtttest.TLS, brokertest.MutualTLS: mqtttest.MutualTLS,
		brokertest.Expired: mqtttest.ExpiredTLS, brokertest.WrongName: mqtttest.WrongHostTLS,
		brokertest.WS: mqtttest.WebSocket, brokertest.WSS: mqtttest.WebSocketTLS,
	} {
		if b.URL(l) == "" || b.URL(l) != b.URL(want) {
			t.Errorf("URL(%s) = %q, want mqtttest's %q", l, b.URL(l), b.URL(want))
		}
	}

	// A zero Config is a broker with none of the options.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	plain, err := brokertest.Launch(ctx, brokertest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dir := plain.Dir()
	conf, err = os.ReadFile(filepath.Join(dir, "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"allow_anonymous true", "persistence false", "log_type information"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("zero Config: config lacks %q", want)
		}
	}
	if err := plain.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left the directory of a Launch-ed broker: %v", err)
	}
}
