package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/mqtttest"
)

// exampleBroker starts a private Mosquitto for the examples (package
// mqtttest) and returns its URL (in your code: "mqtt://broker.example:1883"
// or similar) and a function that stops it.
func exampleBroker() (string, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := mqtttest.Launch(ctx)
	if err != nil {
		log.Fatal(err) // says how to install mosquitto when it is missing
	}
	return b.URL(mqtttest.TCP), func() { b.Close() }
}

// Connect, subscribe, publish at QoS 1 and read the message back: the
// main flow of an MQTT 5.0 client.
func Example() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "example"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)

	sub, err := c.Subscribe(ctx, []string{"sensors/+/temperature"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	ack, err := c.Publish(ctx, "sensors/kitchen/temperature", []byte("21.5"), client.AtLeastOnce,
		client.ContentType("text/plain"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("PUBACK reason:", ack.Code)

	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s (%s, QoS %d)\n", m.Topic, m.Payload, m.Properties.ContentType, m.QoS)
	// Output:
	// PUBACK reason: success
	// sensors/kitchen/temperature = 21.5 (text/plain, QoS 1)
}

// An MQTT 3.1.1 client: the same calls, without the 5.0-only options
// (which do not compile on a *client.Client).
func ExampleNew() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New(client.Config{URL: url, ClientID: "example-311", KeepAlive: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx)
	sub, err := c.Subscribe(ctx, []string{"greetings"}, client.ExactlyOnce)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Publish(ctx, "greetings", []byte("hello"), client.ExactlyOnce, client.Retain); err != nil {
		log.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s (QoS %d)\n", m.Topic, m.Payload, m.QoS)
	// Output: greetings: hello (QoS 2)
}

// With ManualAck the broker gets the PUBACK only when the application
// calls Ack, after it has done its work: a crash before that and the
// broker sends the message again.
func ExampleMessage_Ack() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "worker"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)
	jobs, err := c.Subscribe(ctx, []string{"jobs"}, client.AtLeastOnce, client.ManualAck())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Publish(ctx, "jobs", []byte("resize image 42"), client.AtLeastOnce); err != nil {
		log.Fatal(err)
	}
	m, err := jobs.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("working on:", string(m.Payload))
	if err := m.Ack(ctx); err != nil { // the PUBACK leaves now
		log.Fatal(err)
	}
	fmt.Println("acknowledged")
	// Output:
	// working on: resize image 42
	// acknowledged
}

// A Subscription is also an iterator: range over it until the context
// ends or the client closes.
func ExampleSubscription_All() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "ranger"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)
	sub, err := c.Subscribe(ctx, []string{"count/#"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := c.Publish(ctx, fmt.Sprintf("count/%d", i), []byte(fmt.Sprint(i*i)), client.AtLeastOnce); err != nil {
			log.Fatal(err)
		}
	}
	n := 0
	for m, err := range sub.All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Topic, string(m.Payload))
		if n++; n == 3 {
			break
		}
	}
	res, err := sub.Close(ctx) // UNSUBSCRIBE
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("unsubscribed:", res.Codes)
	// Output:
	// count/1 1
	// count/2 4
	// count/3 9
	// unsubscribed: [success]
}
