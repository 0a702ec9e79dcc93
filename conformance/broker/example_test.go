package broker_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
	"github.com/zmqtt/zmqtt-go/conformance/broker"
)

// tinyBroker serves one connection with the kit: CONNACK for CONNECT,
// PINGRESP for PINGREQ; it returns when the connection ends.
func tinyBroker(conn net.Conn) {
	p := conformance.NewPeer(conn, codec.V311, codec.RoleClient)
	defer p.Close()
	ctx := context.Background()
	for {
		pkt, err := p.Next(ctx)
		if err != nil {
			return
		}
		switch pkt.(type) {
		case *codec.Connect:
			p.Send(ctx, &codec.Connack{})
		case *codec.Pingreq:
			p.Send(ctx, &codec.Pingresp{})
		case *codec.Disconnect:
			return
		}
	}
}

// Run runs the catalogue, or the checks Only selects, against a broker
// reached through Dial: here a tiny in-memory broker that answers CONNECT
// and PINGREQ, closes the connection on a packet that does not decode
// (a SUBSCRIBE at QoS 3), and ignores the rest.
func ExampleRun() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(ctx context.Context) (net.Conn, error) {
		client, server := net.Pipe()
		go tinyBroker(server)
		return client, nil
	}
	results := broker.Run(ctx, broker.Config{
		Dial:    dial,
		Version: codec.V311,
		Only:    regexp.MustCompile(`^(connect/accepted|keepalive/pingresp|subscribe/qos3-close|unsubscribe/unknown-filter-acknowledged)$`),
		Timeout: time.Second, // the tiny broker never answers UNSUBSCRIBE: fail fast
	}, broker.Catalogue())
	for _, r := range results {
		fmt.Println(r.Status, r.Check.Name, r.Check.StatementsFor(codec.V311))
	}
	fmt.Println("a MUST failed:", broker.Failed(results))
	// Output:
	// PASS connect/accepted [MQTT-3.1.4-4 MQTT-3.2.2-1 MQTT-3.2.0-1]
	// PASS keepalive/pingresp [MQTT-3.12.4-1]
	// PASS subscribe/qos3-close [MQTT-3-8.3-4]
	// FAIL unsubscribe/unknown-filter-acknowledged [MQTT-3.10.4-5]
	// a MUST failed: true
}
