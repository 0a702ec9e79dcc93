package client_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// TestInteropWithPaho: a paho.golang client and ours exchange messages
// through Mosquitto at every QoS, both ways, with MQTT 5.0 properties.
func TestInteropWithPaho(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)

	received := make(chan *paho.Publish, 8)
	conn, err := net.Dial("tcp", b.Addr(brokertest.MQTT))
	if err != nil {
		t.Fatal(err)
	}
	pc := paho.NewClient(paho.ClientConfig{
		ClientID: "paho-peer",
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
			received <- r.Packet
			return true, nil
		}},
	})
	if _, err := pc.Connect(ctx, &paho.Connect{ClientID: "paho-peer", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		pc.Disconnect(&paho.Disconnect{})
		<-pc.Done()
	}()
	if _, err := pc.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "to-paho/#", QoS: 2}}}); err != nil {
		t.Fatal(err)
	}

	ours := connect(t, ctx, codec.V5, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "zmqtt-peer"}).(v5)
	s, err := ours.Subscribe(ctx, []string{"to-zmqtt/#"}, client.ExactlyOnce)
	if err != nil {
		t.Fatal(err)
	}
	for q := client.AtMostOnce; q <= client.ExactlyOnce; q++ {
		payload := fmt.Sprintf("from zmqtt at QoS %d", q)
		if _, err := ours.Client5.Publish(ctx, fmt.Sprintf("to-paho/%d", q), []byte(payload), q,
			client.ContentType("text/plain"), client.UserProperty("sender", "zmqtt")); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-received:
			if string(p.Payload) != payload || p.QoS != byte(q) || p.Properties.ContentType != "text/plain" || p.Properties.User.Get("sender") != "zmqtt" {
				t.Fatalf("paho received %q QoS %d props %+v", p.Payload, p.QoS, p.Properties)
			}
		case <-ctx.Done():
			t.Fatalf("paho did not receive the QoS %d message", q)
		}

		payload = fmt.Sprintf("from paho at QoS %d", q)
		pp := &paho.Publish{Topic: fmt.Sprintf("to-zmqtt/%d", q), QoS: byte(q), Payload: []byte(payload),
			Properties: &paho.PublishProperties{CorrelationData: []byte{9, 9}, User: paho.UserProperties{{Key: "sender", Value: "paho"}}}}
		if _, err := pc.Publish(ctx, pp); err != nil {
			t.Fatal(err)
		}
		m := next(t, ctx, s)
		if string(m.Payload) != payload || m.QoS != q || string(m.Properties.CorrelationData) != "\x09\x09" ||
			len(m.Properties.User) != 1 || m.Properties.User[0] != (codec.UserProperty{Key: "sender", Value: "paho"}) {
			t.Fatalf("zmqtt received %q QoS %d props %+v", m.Payload, m.QoS, m.Properties)
		}
	}
}
