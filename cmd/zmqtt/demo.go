package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/reqresp"
	"github.com/zmqtt/zmqtt-go/transport"
)

// cmdDemo starts a private Mosquitto, as the tests do, and walks through the
// SDK: publish/subscribe at each QoS, a retained message, a will and a
// request/response round trip. It stops the broker at the end.
func cmdDemo(ctx context.Context, args []string, e *env) error {
	opts := newOptSet("demo", "", "Start a private Mosquitto and walk through the SDK: publish/subscribe at each QoS, a retained message, a will, request/response.")
	if err := parseCommand(opts, nil, args, e); err != nil {
		return err
	}
	stdout := e.stdout
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	b, err := brokertest.Launch(ctx, brokertest.Config{})
	if err != nil {
		return err
	}
	defer b.Close()
	url := b.URL("mqtt")
	say("started a private Mosquitto at %s", url)

	newClient := func(id string, dial func(context.Context) (net.Conn, error), will *client.Will) (*client.Client5, error) {
		c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: id, Dial: dial, Will: will}})
		if err != nil {
			return nil, err
		}
		return c, c.Connect(ctx)
	}
	sub, err := newClient("demo-sub", nil, nil)
	if err != nil {
		return err
	}
	defer sub.Disconnect(context.Background(), 0, nil)
	pub, err := newClient("demo-pub", nil, nil)
	if err != nil {
		return err
	}
	defer pub.Disconnect(context.Background(), 0, nil)

	// 1. Publish and subscribe at each QoS.
	s, err := sub.Subscribe(ctx, []string{"demo/qos/+"}, client.ExactlyOnce)
	if err != nil {
		return err
	}
	for q := client.AtMostOnce; q <= client.ExactlyOnce; q++ {
		topic := fmt.Sprintf("demo/qos/%d", q)
		if _, err := pub.Publish(ctx, topic, []byte("hello at "+q.String()), q); err != nil {
			return err
		}
		m, err := s.Next(ctx)
		if err != nil {
			return err
		}
		say("%-7s published and received on %s: %q", q.String()+":", m.Topic, m.Payload)
	}

	// 2. A retained message reaches a subscriber that comes later.
	if _, err := pub.Publish(ctx, "demo/retained", []byte("kept by the broker"), client.AtLeastOnce, client.Retain); err != nil {
		return err
	}
	rs, err := sub.Subscribe(ctx, []string{"demo/retained"})
	if err != nil {
		return err
	}
	m, err := rs.Next(ctx)
	if err != nil {
		return err
	}
	say("retained: a new subscription received %q (retain flag %v)", m.Payload, m.Retain)

	// 3. A will: the broker publishes it when a client vanishes without
	// DISCONNECT. The dialer keeps the connection so the demo can cut it.
	ws, err := sub.Subscribe(ctx, []string{"demo/will"}, client.AtLeastOnce)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var raw net.Conn
	dial := func(ctx context.Context) (net.Conn, error) {
		c, err := transport.Dial(ctx, url, nil)
		mu.Lock()
		raw = c
		mu.Unlock()
		return c, err
	}
	doomed, err := newClient("demo-doomed", dial, &client.Will{Topic: "demo/will", Payload: []byte("demo-doomed is gone"), QoS: client.AtLeastOnce})
	if err != nil {
		return err
	}
	mu.Lock()
	raw.Close() // no DISCONNECT: the broker sends the will
	mu.Unlock()
	m, err = ws.Next(ctx)
	if err != nil {
		return err
	}
	say("will: after an abrupt disconnect the broker published %q", m.Payload)
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	doomed.Disconnect(dctx, 0, nil)
	dcancel()

	// 4. Request/response (MQTT 5.0).
	resp, err := reqresp.NewResponder(ctx, pub, "demo/upper", func(_ context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
		return bytes.ToUpper(req.Payload), nil, nil
	})
	if err != nil {
		return err
	}
	sctx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- resp.Serve(sctx) }()
	r := reqresp.NewRequester(sub, reqresp.Options{})
	reply, err := r.Request(ctx, "demo/upper", []byte("make me loud"))
	if err != nil {
		stopServe()
		return err
	}
	say("request/response: asked %q, the responder answered %q on %s", "make me loud", reply.Payload, r.ReplyTopic())
	stopServe()
	<-served
	r.Close(ctx)
	resp.Close(ctx)
	say("stopping the broker; done")
	return nil
}
