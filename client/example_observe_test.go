package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

// Stats counts what went over the connection: here three QoS 1 messages a
// client publishes to a topic it subscribes to itself.
func ExampleClient5_Stats() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "example-stats"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)
	sub, err := c.Subscribe(ctx, []string{"stats/example"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		if _, err := c.Publish(ctx, "stats/example", []byte("21.5"), client.AtLeastOnce); err != nil {
			log.Fatal(err)
		}
		if _, err := sub.Next(ctx); err != nil {
			log.Fatal(err)
		}
	}

	s := c.Stats()
	fmt.Println("QoS 1 messages sent:", s.Sent.Messages[1], "received:", s.Received.Messages[1])
	fmt.Println("PUBACKs received:", s.Received.Packets[codec.TypePuback])
	fmt.Println("delivered:", s.Delivered, "connects:", s.Connects)
	fmt.Println("publish latencies recorded:", s.PublishLatency.Count, "all under 10 s:", s.PublishLatency.Max < 10*time.Second)
	// Output:
	// QoS 1 messages sent: 3 received: 3
	// PUBACKs received: 3
	// delivered: 3 connects: 1
	// publish latencies recorded: 3 all under 10 s: true
}

// An Observer that carries W3C trace context in MQTT 5.0 user properties,
// as a tracing adapter would: OnPublish adds a traceparent to each outgoing
// message and returns the span it started, OnPublishDone ends it, and the
// receiver finds the traceparent among the message's user properties.
func ExampleObserver() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	type span struct{ name, traceparent string }
	obs := &client.Observer{
		OnPublish: func(ctx context.Context, p *client.PublishStart) any {
			s := &span{name: "publish " + p.Topic, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
			if err := p.SetUserProperty("traceparent", s.traceparent); err != nil {
				log.Print(err) // MQTT 3.1.1 has no user properties
			}
			return s
		},
		OnPublishDone: func(d client.PublishDone) {
			fmt.Printf("span %q ended: err=%v, reason %v\n", d.Value.(*span).name, d.Err, d.Code)
		},
	}
	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "example-traced", Observer: obs}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)
	sub, err := c.Subscribe(ctx, []string{"orders/+"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Publish(ctx, "orders/42", []byte(`{"qty":1}`), client.AtLeastOnce); err != nil {
		log.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range m.Properties.User {
		fmt.Printf("%s carries %s=%s\n", m.Topic, u.Key, u.Value)
	}
	// Output:
	// span "publish orders/42" ended: err=<nil>, reason success
	// orders/42 carries traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}
