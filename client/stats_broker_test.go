package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// TestBrokerStats: a client subscribed to its own topics publishes n
// messages at each QoS through a private Mosquitto and reads them back;
// Stats then counts exactly those messages, their bytes and every
// acknowledgement of the QoS 1 and QoS 2 flows in both directions.
func TestBrokerStats(t *testing.T) {
	b := brokertest.Start(t)
	const n = 25
	payload := []byte("stats-payload-0123456789")
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 60*time.Second)
			id := fmt.Sprintf("stats-%d", v)
			c := connect(t, ctx, v, client.Config{URL: b.URL(brokertest.MQTT), ClientID: id})
			sc := c.(interface {
				Stats() client.Stats
				Ping(ctx2 context.Context) (time.Duration, error)
			})
			s, err := c.Subscribe(ctx, []string{id + "/#"}, client.ExactlyOnce)
			if err != nil {
				t.Fatal(err)
			}
			var wantBytes [3]uint64
			for q := client.AtMostOnce; q <= client.ExactlyOnce; q++ {
				topic := fmt.Sprintf("%s/%d", id, q)
				pk := codec.Publish{Topic: topic, QoS: codec.QoS(q), Payload: payload}
				if q > 0 {
					pk.PacketID = 1 // the size does not depend on its value
				}
				wantBytes[q] = n * uint64(pk.Size(v))
				for i := 0; i < n; i++ {
					if err := c.Publish(ctx, topic, payload, q, false); err != nil {
						t.Fatalf("publish QoS %d: %v", q, err)
					}
					if m := next(t, ctx, s); m.Topic != topic || m.QoS != q {
						t.Fatalf("got %q QoS %d, want %q QoS %d", m.Topic, m.QoS, topic, q)
					}
				}
			}
			// The broker answers in order: when a PINGRESP came, the PUBREL
			// of the last QoS 2 message came before it. Our PUBCOMP and the
			// gauges may wait for the end of that turn of the client's
			// loop, which is over when the loop takes its next input: the
			// second Ping.
			for range 2 {
				if _, err := sc.Ping(ctx); err != nil {
					t.Fatal(err)
				}
			}
			st := sc.Stats()
			for q := 0; q < 3; q++ {
				if st.Sent.Messages[q] != n || st.Received.Messages[q] != n {
					t.Errorf("QoS %d: sent %d received %d, want %d each", q, st.Sent.Messages[q], st.Received.Messages[q], n)
				}
				if st.Sent.MessageBytes[q] != wantBytes[q] || st.Received.MessageBytes[q] != wantBytes[q] {
					t.Errorf("QoS %d: %d bytes sent, %d received, want %d each", q, st.Sent.MessageBytes[q], st.Received.MessageBytes[q], wantBytes[q])
				}
			}
			for _, c := range []struct {
				name      string
				got, want uint64
			}{
				{"CONNECT sent", st.Sent.Packets[codec.TypeConnect], 1},
				{"SUBSCRIBE sent", st.Sent.Packets[codec.TypeSubscribe], 1},
				{"PINGREQ sent", st.Sent.Packets[codec.TypePingreq], 2},
				{"CONNACK received", st.Received.Packets[codec.TypeConnack], 1},
				{"SUBACK received", st.Received.Packets[codec.TypeSuback], 1},
				{"PINGRESP received", st.Received.Packets[codec.TypePingresp], 2},
				// Our QoS 1 and 2 publishes.
				{"PUBACK received", st.Received.Packets[codec.TypePuback], n},
				{"PUBREC received", st.Received.Packets[codec.TypePubrec], n},
				{"PUBREL sent", st.Sent.Packets[codec.TypePubrel], n},
				{"PUBCOMP received", st.Received.Packets[codec.TypePubcomp], n},
				// The broker's QoS 1 and 2 deliveries.
				{"PUBACK sent", st.Sent.Packets[codec.TypePuback], n},
				{"PUBREC sent", st.Sent.Packets[codec.TypePubrec], n},
				{"PUBREL received", st.Received.Packets[codec.TypePubrel], n},
				{"PUBCOMP sent", st.Sent.Packets[codec.TypePubcomp], n},
				{"Delivered", st.Delivered, 3 * n},
				{"Connects", st.Connects, 1},
				{"Reconnects", st.Reconnects, 0},
				{"ConnectionsLost", st.ConnectionsLost, 0},
				{"Dropped", st.Dropped, 0},
				{"Unrouted", st.Unrouted, 0},
				{"duplicates", st.Sent.Duplicates + st.Received.Duplicates, 0},
				{"latency count", st.PublishLatency.Count, 2 * n},
			} {
				if c.got != c.want {
					t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
				}
			}
			if st.InflightOut != 0 || st.InflightIn != 0 || st.Queued != 0 || st.QueuedSubscriptions != 0 {
				t.Errorf("gauges after the exchange: %+v", st)
			}
			l := st.PublishLatency
			if l.Min <= 0 || l.Max < l.Min || l.Mean() < l.Min || l.Mean() > l.Max || l.Last < l.Min || l.Last > l.Max {
				t.Errorf("latency min %v mean %v max %v last %v", l.Min, l.Mean(), l.Max, l.Last)
			}
			if st.Uptime <= 0 || st.ConnectedTotal < st.Uptime {
				t.Errorf("uptime %v, total %v", st.Uptime, st.ConnectedTotal)
			}
			t.Logf("%v: %d packets and %d bytes sent, %d packets and %d bytes received; publish latency min %v mean %v p99 <= %v max %v",
				v, packets(st.Sent), st.Sent.Bytes, packets(st.Received), st.Received.Bytes, l.Min, l.Mean(), l.Quantile(0.99), l.Max)
		})
	}
}

func packets(tr client.Traffic) uint64 {
	var n uint64
	for _, v := range tr.Packets {
		n += v
	}
	return n
}
