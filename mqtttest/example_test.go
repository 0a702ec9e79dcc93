package mqtttest_test

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/mqtttest"
)

// reportTemperature stands for the code under test in your package: it
// publishes one reading at QoS 1.
func reportTemperature(ctx context.Context, c *client.Client5, room string, celsius float64) error {
	_, err := c.Publish(ctx, "home/"+room+"/temperature", []byte(strconv.FormatFloat(celsius, 'f', 1, 64)), client.AtLeastOnce)
	return err
}

// testReportTemperature is a test of reportTemperature as you would write
// it in your package, where it is func TestReportTemperature(t *testing.T).
// (Here mqtttest's own TestExampleUserTest runs it.) The code under test
// connects over TLS with the CA the broker generated; the test watches the
// topic over plain TCP.
func testReportTemperature(t *testing.T) {
	b := mqtttest.StartMosquitto(t) // stopped in t.Cleanup
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	connect := func(cfg client.Config) *client.Client5 {
		c, err := client.New5(client.Config5{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c.Disconnect(ctx, 0, nil)
		})
		return c
	}
	watcher := connect(client.Config{URL: b.URL(mqtttest.TCP), ClientID: "watcher"})
	readings, err := watcher.Subscribe(ctx, []string{"home/+/temperature"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}

	thermostat := connect(client.Config{URL: b.URL(mqtttest.TLS), ClientID: "thermostat", TLS: b.TLSConfig()})
	if err := reportTemperature(ctx, thermostat, "kitchen", 21.5); err != nil {
		t.Fatalf("reportTemperature: %v", err)
	}

	m, err := readings.Next(ctx)
	if err != nil {
		t.Fatalf("no reading arrived: %v", err)
	}
	if m.Topic != "home/kitchen/temperature" || string(m.Payload) != "21.5" {
		t.Errorf("got %s = %q, want home/kitchen/temperature = \"21.5\"", m.Topic, m.Payload)
	}
}

// Outside a test function (an Example, TestMain, a program) there is no
// testing.TB: Launch starts the broker and returns an error (matching
// ErrNotInstalled when mosquitto is missing), and Close stops it. In a test
// function, StartMosquitto does both, as testReportTemperature shows.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := mqtttest.Launch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	c, err := client.New5(client.Config5{Config: client.Config{URL: b.URL(mqtttest.WebSocket), ClientID: "example"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)
	readings, err := c.Subscribe(ctx, []string{"home/+/temperature"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	if err := reportTemperature(ctx, c, "hall", 19); err != nil {
		log.Fatal(err)
	}
	m, err := readings.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s\n", m.Topic, m.Payload)
	// Output: home/hall/temperature = 19.0
}
