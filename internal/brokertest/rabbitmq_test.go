package brokertest_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// TestRabbitMQ starts a private node, checks that it speaks MQTT 3.1.1 on
// its own port with its own data directory, and that Close stops it.
func TestRabbitMQ(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	r, err := brokertest.LaunchRabbitMQ(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := r.Dir()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := conformance.Run(ctx, conn, codec.V311,
		conformance.Send(&codec.Connect{CleanStart: true, ClientID: "rabbit-test", KeepAlive: 30}),
		conformance.Expect(&codec.Connack{}).Cites("MQTT-3.2.2-1"),
		conformance.Send(&codec.Pingreq{}),
		conformance.Expect(&codec.Pingresp{}).Cites("MQTT-3.12.4-1"),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.URL(), "mqtt://127.0.0.1:") || strings.HasSuffix(r.URL(), ":1883") {
		t.Errorf("URL %s is not a private loopback port", r.URL())
	}
	if _, err := os.Stat(filepath.Join(dir, "mnesia")); err != nil {
		t.Errorf("no private Mnesia directory: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left behind (%v)", dir, err)
	}
}
