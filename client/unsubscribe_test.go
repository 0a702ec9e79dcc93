package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// unsubscriber is what the Unsubscribe tests need of either version.
type unsubscriber interface {
	versioned
	unsubscribe(ctx context.Context, filters ...string) (client.UnsubscribeResult, error)
}

func (c v311) unsubscribe(ctx context.Context, filters ...string) (client.UnsubscribeResult, error) {
	return c.Client.Unsubscribe(ctx, filters...)
}

func (c v5) unsubscribe(ctx context.Context, filters ...string) (client.UnsubscribeResult, error) {
	return c.Client5.Unsubscribe(ctx, filters, codec.UserProperty{Key: "why", Value: "test"})
}

// TestBrokerUnsubscribeFilters: Unsubscribe removes a subscription that a
// persistent session kept on the broker from an earlier connection, which
// no Subscription of the new client holds. The broker then stops queueing
// for it [MQTT-3.10.4-2]: a message published while the client is away is
// not waiting when it comes back. On 5.0 the UNSUBACK says 0x00 the first
// time and 0x11 (no subscription existed) the second [MQTT-3.11.3-1].
func TestBrokerUnsubscribeFilters(t *testing.T) {
	b := brokertest.Start(t)
	url := b.URL(brokertest.MQTT)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 30*time.Second)
			base := "unsub/" + v.String()
			cfg := client.Config{URL: url, ClientID: "unsubscriber-" + v.String(), Persistent: true}
			first := connect(t, ctx, v, cfg)
			if _, err := first.Subscribe(ctx, []string{base + "/#"}, client.AtLeastOnce); err != nil {
				t.Fatal(err)
			}
			if err := first.Disconnect(ctx); err != nil {
				t.Fatal(err)
			}

			second := connect(t, ctx, v, cfg).(unsubscriber)
			res, err := second.unsubscribe(ctx, base+"/#")
			if err != nil {
				t.Fatalf("Unsubscribe: %v", err)
			}
			if !slices.Equal(res.Filters, []string{base + "/#"}) {
				t.Errorf("Filters = %q", res.Filters)
			}
			if v == codec.V5 {
				if !slices.Equal(res.Codes, []codec.ReasonCode{codec.ReasonSuccess}) {
					t.Errorf("first UNSUBACK codes %v, want [0x00]", res.Codes)
				}
				res, err = second.unsubscribe(ctx, base+"/#")
				if err != nil || !slices.Equal(res.Codes, []codec.ReasonCode{codec.ReasonNoSubscriptionExisted}) {
					t.Errorf("second Unsubscribe: codes %v, err %v; want [0x11 no subscription existed]", res.Codes, err)
				}
			} else if len(res.Codes) != 0 {
				t.Errorf("3.1.1 UNSUBACK has no codes, got %v", res.Codes)
			}
			if err := second.Disconnect(ctx); err != nil {
				t.Fatal(err)
			}

			pub := connect(t, ctx, v, client.Config{URL: url, ClientID: "unsub-pub-" + v.String()})
			if err := pub.Publish(ctx, base+"/while-away", []byte("lost"), client.AtLeastOnce, false); err != nil {
				t.Fatal(err)
			}
			third := connect(t, ctx, v, cfg)
			s, err := third.Subscribe(ctx, []string{base + "/#"}, client.AtLeastOnce)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, base+"/marker", []byte("now"), client.AtLeastOnce, false); err != nil {
				t.Fatal(err)
			}
			if m := next(t, ctx, s); m.Topic != base+"/marker" {
				t.Errorf("first message on %s (%q): the broker kept the subscription", m.Topic, m.Payload)
			}
		})
	}
}

// TestBrokerUnsubscribeLeavesHeldFilters: a filter a live Subscription
// uses is not unsubscribed, so that subscription keeps receiving; an
// invalid filter and an empty list are refused before anything is sent.
func TestBrokerUnsubscribeLeavesHeldFilters(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 30*time.Second)
	c := connect(t, ctx, codec.V5, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "unsub-held"}).(unsubscriber)
	s, err := c.Subscribe(ctx, []string{"held/#"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.unsubscribe(ctx, "held/#")
	if err != nil || len(res.Codes) != 0 {
		t.Fatalf("Unsubscribe of a held filter: codes %v, err %v; want no packet and no error", res.Codes, err)
	}
	if err := c.Publish(ctx, "held/x", []byte("still here"), client.AtLeastOnce, false); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ctx, s); string(m.Payload) != "still here" {
		t.Errorf("got %q", m.Payload)
	}
	if _, err := c.unsubscribe(ctx, "bad/#/filter"); !errors.Is(err, client.ErrInvalidTopic) {
		t.Errorf("invalid filter: %v, want ErrInvalidTopic", err)
	}
	var pe *client.ProtocolError
	if _, err := c.(v5).Client5.Unsubscribe(ctx, nil); !errors.As(err, &pe) || pe.Rule != "MQTT-3.10.3-2" {
		t.Errorf("no filter: %v, want a *ProtocolError citing [MQTT-3.10.3-2]", err)
	}
}

// TestBrokerMessagePacketID: a QoS 1 or 2 message carries the packet
// identifier the broker sent it with (not 0 and not in use [MQTT-2.2.1-4],
// [MQTT-2.3.1-1]); a QoS 0 message carries 0, as it has none on the wire
// [MQTT-2.2.1-2].
func TestBrokerMessagePacketID(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 30*time.Second)
			c := connect(t, ctx, v, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "pid-" + v.String()})
			topic := fmt.Sprintf("pid/%v", v)
			// Manual acknowledgement keeps both identifiers in use at once.
			var s *client.Subscription
			var err error
			switch c := c.(type) {
			case v311:
				s, err = c.Client.Subscribe(ctx, []string{topic}, client.ExactlyOnce, client.ManualAck())
			case v5:
				s, err = c.Client5.Subscribe(ctx, []string{topic}, client.ExactlyOnce, client.ManualAck())
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []client.QoS{client.AtLeastOnce, client.ExactlyOnce, client.AtMostOnce} {
				if err := c.Publish(ctx, topic, []byte(q.String()), q, false); err != nil {
					t.Fatal(err)
				}
			}
			one, two, zero := next(t, ctx, s), next(t, ctx, s), next(t, ctx, s)
			if one.PacketID == 0 || two.PacketID == 0 || one.PacketID == two.PacketID {
				t.Errorf("QoS 1 and 2 packet ids %d and %d: want two different non-zero ids", one.PacketID, two.PacketID)
			}
			if zero.QoS != client.AtMostOnce || zero.PacketID != 0 {
				t.Errorf("QoS %d message with packet id %d, want QoS 0 with 0", zero.QoS, zero.PacketID)
			}
			for _, m := range []client.Message{one, two} {
				if err := m.Ack(ctx); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
