package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

// One SUBSCRIBE in which each filter has its own options: this client
// hears what others say on chat/, but not its own messages, while it does
// get its own messages back on echo/.
func ExampleClient5_SubscribeFilters5() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "chatter"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)
	sub, err := c.SubscribeFilters5(ctx, []client.Filter5{
		{Topic: "chat/#", QoS: client.AtLeastOnce, NoLocal: true},
		{Topic: "echo/#", QoS: client.AtMostOnce, RetainHandling: codec.DoNotSendRetained},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("granted QoS: %d\n", sub.Granted())
	for _, topic := range []string{"chat/room1", "echo/room1"} {
		if _, err := c.Publish(ctx, topic, []byte("hello"), client.AtLeastOnce); err != nil {
			log.Fatal(err)
		}
	}
	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("heard back:", m.Topic)
	// Output:
	// granted QoS: [1 0]
	// heard back: echo/room1
}

// Per-filter QoS on MQTT 3.1.1: one SUBSCRIBE, a granted QoS per filter.
func ExampleClient_SubscribeFilters() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New(client.Config{URL: url, ClientID: "meter"})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx)
	sub, err := c.SubscribeFilters(ctx, []client.Filter{
		{Topic: "meter/+/reading", QoS: client.AtMostOnce}, // frequent, losing one is fine
		{Topic: "meter/+/alarm", QoS: client.ExactlyOnce},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Publish(ctx, "meter/7/alarm", []byte("overload"), client.ExactlyOnce); err != nil {
		log.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s granted QoS %d\n", sub.Filters(), sub.Granted())
	fmt.Printf("%s: %s at QoS %d\n", m.Topic, m.Payload, m.QoS)
	// Output:
	// [meter/+/reading meter/+/alarm] granted QoS [0 2]
	// meter/7/alarm: overload at QoS 2
}

// Unsubscribe drops some filters of a subscription and keeps the others.
func ExampleSubscription_Unsubscribe() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New(client.Config{URL: url, ClientID: "watcher"})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx)
	sub, err := c.Subscribe(ctx, []string{"door/front", "door/back"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := sub.Unsubscribe(ctx, "door/back"); err != nil {
		log.Fatal(err)
	}
	for _, door := range []string{"door/back", "door/front"} {
		if err := c.Publish(ctx, door, []byte("open"), client.AtLeastOnce); err != nil {
			log.Fatal(err)
		}
	}
	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("still watching:", sub.Filters())
	fmt.Println(m.Topic, string(m.Payload))
	// Output:
	// still watching: [door/front]
	// door/front open
}

// Unsubscribe5 carries User Properties on the UNSUBSCRIBE and returns the
// UNSUBACK's reason code of each filter.
func ExampleSubscription_Unsubscribe5() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "tenant-7"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)
	sub, err := c.Subscribe(ctx, []string{"orders/#", "invoices/#", "audit/#"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	res, err := sub.Unsubscribe5(ctx, []string{"invoices/#", "audit/#"},
		codec.UserProperty{Key: "reason", Value: "plan downgraded"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Sent, res.Codes)
	fmt.Println("left:", sub.Filters())
	// Output:
	// [invoices/# audit/#] [success success]
	// left: [orders/#]
}

// A Router gives each topic filter its handler. Its Filters are what to
// subscribe to (here home/#, which covers the others); with ManualAck, a
// message is acknowledged once its handler has returned.
func ExampleRouter() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "home"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)

	serveCtx, done := context.WithCancel(ctx)
	var r client.Router
	r.Handle("home/+/temperature", func(ctx context.Context, m client.Message) error {
		fmt.Printf("temperature in %s: %s\n", strings.Split(m.Topic, "/")[1], m.Payload)
		return nil
	})
	r.Handle("home/#", func(ctx context.Context, m client.Message) error {
		fmt.Println("other:", m.Topic)
		return nil
	})
	r.Handle("home/stop", func(ctx context.Context, m client.Message) error {
		done() // the most specific filter wins over home/#
		return nil
	})
	sub, err := c.Subscribe(ctx, r.Filters(), client.AtLeastOnce, client.ManualAck())
	if err != nil {
		log.Fatal(err)
	}
	for _, topic := range []string{"home/kitchen/temperature", "home/door", "home/stop"} {
		if _, err := c.Publish(ctx, topic, []byte("21.5"), client.AtLeastOnce); err != nil {
			log.Fatal(err)
		}
	}
	err = r.Serve(serveCtx, sub)
	fmt.Println("served until:", err)
	// Output:
	// temperature in kitchen: 21.5
	// other: home/door
	// served until: context canceled
}

// Merge reads several subscriptions, here of a 3.1.1 and a 5.0 client,
// in one loop.
func ExampleMerge() {
	url, stop := exampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	old, err := client.New(client.Config{URL: url, ClientID: "legacy"})
	if err != nil {
		log.Fatal(err)
	}
	c5, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "modern"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range []client.Conn{old, c5} {
		if err := c.Connect(ctx); err != nil {
			log.Fatal(err)
		}
		defer c.Close(ctx)
	}
	a, err := old.Subscribe(ctx, []string{"legacy/in"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	b, err := c5.Subscribe(ctx, []string{"modern/in"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	if err := old.Publish(ctx, "modern/in", []byte("from 3.1.1"), client.AtLeastOnce); err != nil {
		log.Fatal(err)
	}
	if _, err := c5.Publish(ctx, "legacy/in", []byte("from 5.0"), client.AtLeastOnce); err != nil {
		log.Fatal(err)
	}
	got := map[string]string{}
	for m, err := range client.Merge(ctx, a, b) {
		if err != nil {
			log.Fatal(err)
		}
		got[m.Topic] = string(m.Payload)
		if len(got) == 2 {
			break
		}
	}
	fmt.Println(got)
	// Output: map[legacy/in:from 5.0 modern/in:from 3.1.1]
}

// relay is written once for both protocol versions: it takes a client.Conn.
func relay(ctx context.Context, c client.Conn, from, to string) error {
	sub, err := c.SubscribeFilters(ctx, []client.Filter{{Topic: from, QoS: client.AtLeastOnce}}, client.ManualAck())
	if err != nil {
		return err
	}
	for m, err := range sub.All(ctx) {
		if err != nil {
			return err
		}
		if err := c.Send(ctx, to, m.Payload, client.AtLeastOnce); err != nil {
			return err
		}
		m.Ack(ctx) // after the copy is safe with the broker
	}
	return nil
}

// fakeConn is a mock of client.Conn: its subscriptions are Feeds the test
// fills, and it records what is sent. Embedding the interface leaves the
// methods the code under test does not call unimplemented.
type fakeConn struct {
	client.Conn
	subscribed chan *client.Feed // each subscription made
	mu         sync.Mutex
	sent       []string
	acks       []string
}

func (f *fakeConn) SubscribeFilters(ctx context.Context, filters []client.Filter, opts ...client.SubscribeOption) (*client.Subscription, error) {
	feed := client.NewFeed(client.FeedConfig{Filters: []string{filters[0].Topic}, ManualAck: true,
		OnAck: func(m client.Message) {
			f.mu.Lock()
			f.acks = append(f.acks, string(m.Payload))
			f.mu.Unlock()
		}})
	f.subscribed <- feed
	return feed.Subscription(), nil
}

func (f *fakeConn) Send(ctx context.Context, topic string, payload []byte, opts ...client.PublishOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, topic+" "+string(payload))
	return nil
}

// Version-agnostic code runs on *client.Client and *client.Client5 alike
// (both are a client.Conn), and a mock with Feeds tests it without a
// broker: here relay copies each message, then acknowledges it.
func ExampleConn() {
	ctx := context.Background()
	mock := &fakeConn{subscribed: make(chan *client.Feed, 1)}
	done := make(chan error, 1)
	go func() { done <- relay(ctx, mock, "in", "out") }()
	feed := <-mock.subscribed
	for _, p := range []string{"one", "two"} {
		feed.Push(ctx, client.Message{Topic: "in", Payload: []byte(p), QoS: client.AtLeastOnce})
	}
	feed.End(errors.New("broker gone"))
	fmt.Println("relay ended:", <-done)
	fmt.Println("sent:", mock.sent)
	fmt.Println("acknowledged:", mock.acks)
	// Output:
	// relay ended: broker gone
	// sent: [out one out two]
	// acknowledged: [one two]
}

// A Feed fills a Subscription without a broker, for tests of code that
// reads subscriptions: here a Router.
func ExampleNewFeed() {
	var r client.Router
	r.Handle("sensors/+", func(ctx context.Context, m client.Message) error {
		fmt.Println("sensor", m.Topic, string(m.Payload))
		return nil
	})
	r.OnError = func(m client.Message, err error) { fmt.Println(m.Topic+":", err) }
	feed := client.NewFeed(client.FeedConfig{Filters: []string{"#"}})
	ctx := context.Background()
	feed.Push(ctx, client.Message{Topic: "sensors/1", Payload: []byte("on")})
	feed.Push(ctx, client.Message{Topic: "lights/1", Payload: []byte("off")})
	feed.End(nil)
	fmt.Println("Serve:", r.Serve(ctx, feed.Subscription()))
	// Output:
	// sensor sensors/1 on
	// lights/1: zmqtt: no handler for the topic
	// Serve: zmqtt: subscription closed
}
