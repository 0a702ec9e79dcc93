package client_test

// Per-filter subscription options and partial unsubscribe against a
// private Mosquitto (internal/brokertest), both protocol versions.

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// conn makes and connects a client of version v as a client.Conn,
// closed at the end of the test.
func conn(t *testing.T, ctx context.Context, v codec.Version, cfg client.Config) client.Conn {
	t.Helper()
	cfg.Reconnect = fastReconnect
	var c client.Conn
	var err error
	if v == codec.V5 {
		c, err = client.New5(client.Config5{Config: cfg})
	} else {
		c, err = client.New(cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect %s: %v", cfg.ClientID, err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(cctx)
	})
	return c
}

// TestBrokerPerFilterOptions5 subscribes with one SUBSCRIBE whose filters
// each carry their own options, and checks what Mosquitto does with each:
// No Local on one filter only [MQTT-3.8.3-3], QoS per filter, the delivery
// QoS being the minimum of the published and the granted one
// [MQTT-3.8.4-8], Retain Handling 2 sending no retained message
// [MQTT-3.3.1-11] where the default sends it with RETAIN set
// [MQTT-3.3.1-9], and Retain As Published on one filter, RETAIN cleared on
// the other [MQTT-3.3.1-12].
func TestBrokerPerFilterOptions5(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 30*time.Second)
	url := b.URL(brokertest.MQTT)
	pub := conn(t, ctx, codec.V5, client.Config{URL: url, ClientID: "pf-pub"})
	for _, topic := range []string{"pf/ret/x", "pf/rap/x"} {
		if err := pub.Send(ctx, topic, []byte("kept"), client.AtLeastOnce, client.Retain); err != nil {
			t.Fatal(err)
		}
	}
	me, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "pf-me", Reconnect: fastReconnect}})
	if err != nil {
		t.Fatal(err)
	}
	if err := me.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer me.Close(context.Background())
	sub, err := me.SubscribeFilters5(ctx, []client.Filter5{
		{Topic: "pf/own/#", QoS: client.AtLeastOnce, NoLocal: true},
		{Topic: "pf/echo/#", QoS: client.ExactlyOnce},
		{Topic: "pf/low/#", QoS: client.AtMostOnce},
		{Topic: "pf/ret/#", QoS: client.AtLeastOnce, RetainHandling: codec.DoNotSendRetained},
		{Topic: "pf/rap/#", QoS: client.AtLeastOnce, RetainAsPublished: true},
		{Topic: "pf/plain/#", QoS: client.AtLeastOnce},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sub.Granted(), []codec.ReasonCode{1, 2, 0, 1, 1, 1}; !slices.Equal(got, want) {
		t.Fatalf("SUBACK codes %v, want %v", got, want)
	}
	steps := []struct {
		by     client.Conn
		topic  string
		qos    client.QoS
		retain bool
	}{
		{me, "pf/own/mine", client.AtLeastOnce, false}, // No Local: not sent back
		{pub, "pf/own/theirs", client.AtLeastOnce, false},
		{me, "pf/echo/mine", client.ExactlyOnce, false}, // no No Local on this filter
		{pub, "pf/low/x", client.ExactlyOnce, false},
		{pub, "pf/rap/y", client.AtLeastOnce, true},
		{pub, "pf/plain/y", client.AtLeastOnce, true},
		{me, "pf/echo/end", client.AtLeastOnce, false},
	}
	for _, s := range steps {
		if err := s.by.Send(ctx, s.topic, []byte(s.topic), s.qos, retainIf(s.retain)); err != nil {
			t.Fatalf("publish %s: %v", s.topic, err)
		}
	}
	type got struct {
		qos    client.QoS
		retain bool
	}
	seen := map[string]got{}
	var order []string
	for m, err := range sub.All(ctx) {
		if err != nil {
			t.Fatalf("after %q: %v", order, err)
		}
		order = append(order, m.Topic)
		seen[m.Topic] = got{m.QoS, m.Retain}
		if m.Topic == "pf/echo/end" {
			break
		}
	}
	want := map[string]got{
		"pf/rap/x":      {client.AtLeastOnce, true}, // retained, sent at subscribe
		"pf/own/theirs": {client.AtLeastOnce, false},
		"pf/echo/mine":  {client.ExactlyOnce, false},
		"pf/low/x":      {client.AtMostOnce, false},
		"pf/rap/y":      {client.AtLeastOnce, true},
		"pf/plain/y":    {client.AtLeastOnce, false},
		"pf/echo/end":   {client.AtLeastOnce, false},
	}
	if len(seen) != len(want) || len(order) != len(want) {
		t.Fatalf("received %q; want each of %d topics once (no pf/own/mine, no pf/ret/x)", order, len(want))
	}
	for topic, w := range want {
		if g, ok := seen[topic]; !ok || g != w {
			t.Errorf("%s: got QoS %d retain %v (present %v), want QoS %d retain %v", topic, g.qos, g.retain, ok, w.qos, w.retain)
		}
	}
}

func retainIf(b bool) client.PublishOption {
	if b {
		return client.Retain
	}
	return nil
}

// TestBrokerSubscribeFilters311: per-filter QoS on 3.1.1, granted per
// filter, and the delivery QoS the minimum of published and granted
// [MQTT-3.8.4-6].
func TestBrokerSubscribeFilters311(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 30*time.Second)
	url := b.URL(brokertest.MQTT)
	me := conn(t, ctx, codec.V311, client.Config{URL: url, ClientID: "pf3-me"})
	sub, err := me.SubscribeFilters(ctx, []client.Filter{{Topic: "pf3/low"}, {Topic: "pf3/high", QoS: client.ExactlyOnce}, {Topic: "pf3/mid", QoS: client.AtLeastOnce}})
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.Granted(); !slices.Equal(got, []codec.ReasonCode{0, 2, 1}) {
		t.Fatalf("SUBACK codes %v", got)
	}
	for _, topic := range []string{"pf3/low", "pf3/high", "pf3/mid"} {
		if err := me.Send(ctx, topic, nil, client.ExactlyOnce); err != nil {
			t.Fatal(err)
		}
		m := next(t, ctx, sub)
		want := map[string]client.QoS{"pf3/low": 0, "pf3/high": 2, "pf3/mid": 1}[topic]
		if m.Topic != topic || m.QoS != want {
			t.Fatalf("got %s at QoS %d, want %s at QoS %d", m.Topic, m.QoS, topic, want)
		}
	}
}

// TestBrokerPartialUnsubscribe removes one filter of a two-filter
// subscription, on each version: the broker stops sending its messages
// [MQTT-3.10.4-2] (none reaches OnUnrouted either) while the other filter
// keeps delivering; on 5.0 the UNSUBACK's code comes back, the UNSUBSCRIBE
// carrying a User Property. Removing the last filter ends the
// subscription.
func TestBrokerPartialUnsubscribe(t *testing.T) {
	b := brokertest.Start(t)
	url := b.URL(brokertest.MQTT)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 30*time.Second)
			base := "pu/" + v.String()
			var unrouted atomic.Int64
			me := conn(t, ctx, v, client.Config{URL: url, ClientID: "pu-me-" + v.String(),
				OnUnrouted: func(client.Message) { unrouted.Add(1) }})
			pub := conn(t, ctx, v, client.Config{URL: url, ClientID: "pu-pub-" + v.String()})
			sub, err := me.SubscribeFilters(ctx, []client.Filter{{Topic: base + "/a", QoS: 1}, {Topic: base + "/b", QoS: 1}})
			if err != nil {
				t.Fatal(err)
			}
			var res client.UnsubscribeResult
			if v == codec.V5 {
				res, err = sub.Unsubscribe5(ctx, []string{base + "/a"}, codec.UserProperty{Key: "reason", Value: "test"})
			} else {
				res, err = sub.Unsubscribe(ctx, base+"/a")
			}
			if err != nil {
				t.Fatalf("Unsubscribe: %v", err)
			}
			wantCodes := []codec.ReasonCode{}
			if v == codec.V5 {
				wantCodes = []codec.ReasonCode{codec.ReasonSuccess}
			}
			if !slices.Equal(res.Sent, []string{base + "/a"}) || !slices.Equal(res.Codes, wantCodes) {
				t.Fatalf("result %+v; want %s sent, codes %v", res, base+"/a", wantCodes)
			}
			for _, topic := range []string{base + "/a", base + "/b", base + "/a", base + "/b"} {
				if err := pub.Send(ctx, topic, []byte(topic), client.AtLeastOnce); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if m := next(t, ctx, sub); m.Topic != base+"/b" {
					t.Fatalf("got %s after unsubscribing it", m.Topic)
				}
			}
			// A round trip through the broker orders us after anything it
			// could still send for the removed filter.
			if err := pub.Send(ctx, base+"/b", []byte("fence"), client.AtLeastOnce); err != nil {
				t.Fatal(err)
			}
			if m := next(t, ctx, sub); string(m.Payload) != "fence" {
				t.Fatalf("got %s %q, want the fence", m.Topic, m.Payload)
			}
			if n := unrouted.Load(); n != 0 {
				t.Fatalf("%d messages of the removed filter reached the client", n)
			}
			if _, err := sub.Unsubscribe(ctx, base+"/b"); err != nil {
				t.Fatal(err)
			}
			if _, err := sub.Next(ctx); !errors.Is(err, client.ErrSubscriptionClosed) {
				t.Fatalf("Next after the last filter left: %v", err)
			}
		})
	}
}
