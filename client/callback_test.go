package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

type closer interface {
	Connect(ctx context.Context) error
	Disconnect(ctx context.Context) error
}

// TestDisconnectFromCallback: an OnStateChange callback that disconnects
// its client, as an application may on a state it will not live with, gets
// an answer. Disconnect waits for the callbacks queued before it, which
// the caller is one of: it used to wait for itself, for good, whatever its
// context. Now it returns once the client is closed; the state change that
// the close queued behind the running callback is delivered after that
// callback returns, and the callbacks' goroutine then exits (TestMain's
// goleak).
func TestDisconnectFromCallback(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 30*time.Second)
			self := make(chan closer, 1)
			events := make(chan string, 8)
			returned := make(chan error, 1)
			cfg := client.Config{URL: b.URL(brokertest.MQTT), ClientID: "cb-close-" + v.String(), OnStateChange: func(sc client.StateChange) {
				switch sc.State {
				case client.StateConnected:
					c := <-self
					dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					returned <- c.Disconnect(dctx)
					events <- "Disconnect returned"
				case client.StateClosed:
					events <- "closed"
				}
			}}
			var c closer
			if v == codec.V5 {
				c5, err := client.New5(client.Config5{Config: cfg})
				if err != nil {
					t.Fatal(err)
				}
				c = v5{c5}
			} else {
				c3, err := client.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				c = v311{c3}
			}
			self <- c
			if err := c.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			var order []string
			for len(order) < 2 {
				select {
				case e := <-events:
					order = append(order, e)
				case <-ctx.Done():
					t.Fatalf("events %v, then nothing: Disconnect called from OnStateChange did not return (%v)", order, ctx.Err())
				}
			}
			if order[0] != "Disconnect returned" || order[1] != "closed" {
				t.Errorf("events %v, want Disconnect returned, then closed", order)
			}
			if err := <-returned; err != nil {
				t.Errorf("Disconnect from the callback: %v, want nil (the DISCONNECT was written)", err)
			}
			// The client is closed for every caller.
			if err := c.Disconnect(ctx); err != nil {
				t.Errorf("second Disconnect: %v, want nil", err)
			}
		})
	}
}
