package reqresp_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/mqtttest"
	"github.com/zmqtt/zmqtt-go/reqresp"
)

// A responder that upper-cases its requests and a requester that asks it
// once, over MQTT 5.0 request/response.
func Example() {
	// A private Mosquitto for the example (package mqtttest); in your code,
	// your broker's URL.
	bctx, bcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer bcancel()
	b, err := mqtttest.Launch(bctx)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	url := b.URL(mqtttest.TCP)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(id string) *client.Client5 {
		c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: id}})
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			log.Fatal(err)
		}
		return c
	}

	// The service side: answer every request on svc/upper.
	server := dial("upper-service")
	defer server.Disconnect(ctx, 0, nil)
	upper := func(_ context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
		return bytes.ToUpper(req.Payload), nil, nil
	}
	resp, err := reqresp.NewResponder(ctx, server, "svc/upper", upper, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- resp.Serve(serveCtx) }()
	defer func() { stopServing(); <-served }()

	// The calling side: one request, one reply.
	caller := dial("caller")
	defer caller.Disconnect(ctx, 0, nil)
	req := reqresp.NewRequester(caller, reqresp.Options{})
	defer req.Close(ctx)
	reply, err := req.Request(ctx, "svc/upper", []byte("hello, mqtt"), client.AtLeastOnce,
		client.ContentType("text/plain"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%s)\n", reply.Payload, reply.Properties.ContentType)
	// Output:
	// HELLO, MQTT (text/plain)
}
