package client_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/internal/faultproxy"
)

// TestFaultAtEveryQoSStep breaks the publisher's connection at each step
// of the QoS 1 and QoS 2 flows — a reset, a cut in the middle of the
// packet, a black hole that only keep alive can detect — and checks that
// Publish still succeeds after the reconnect and that the subscriber gets
// the message: at least once for QoS 1, exactly once for QoS 2.
func TestFaultAtEveryQoSStep(t *testing.T) {
	b := brokertest.Start(t)
	steps := []struct {
		qos client.QoS
		dir faultproxy.Direction
		typ codec.Type
	}{
		{client.AtLeastOnce, faultproxy.ToBroker, codec.TypePublish},
		{client.AtLeastOnce, faultproxy.ToClient, codec.TypePuback},
		{client.ExactlyOnce, faultproxy.ToBroker, codec.TypePublish},
		{client.ExactlyOnce, faultproxy.ToClient, codec.TypePubrec},
		{client.ExactlyOnce, faultproxy.ToBroker, codec.TypePubrel},
		{client.ExactlyOnce, faultproxy.ToClient, codec.TypePubcomp},
	}
	actions := []struct {
		name string
		act  faultproxy.Action
	}{{"reset", faultproxy.Reset}, {"cut", faultproxy.Cut}, {"blackhole", faultproxy.BlackHole}}
	n := 0
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		for _, st := range steps {
			for _, a := range actions {
				if a.act == faultproxy.BlackHole && v == codec.V311 {
					continue // keep alive detection takes real seconds: once is enough
				}
				n++
				id := n
				t.Run(fmt.Sprintf("%v/qos%d/%s-%v/%s", v, st.qos, st.dir, st.typ, a.name), func(t *testing.T) {
					t.Parallel()
					ctx := deadline(t, 60*time.Second)
					proxy, err := faultproxy.Start(b.Addr(brokertest.MQTT))
					if err != nil {
						t.Fatal(err)
					}
					defer proxy.Close()
					var fired atomic.Bool
					proxy.SetRule(func(dir faultproxy.Direction, typ codec.Type, conn int) faultproxy.Action {
						if conn == 1 && dir == st.dir && typ == st.typ && fired.CompareAndSwap(false, true) {
							return a.act
						}
						return faultproxy.Forward
					})
					topic := "fault/" + strconv.Itoa(id)
					sub := connect(t, ctx, v, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "fsub-" + strconv.Itoa(id)})
					s, err := sub.Subscribe(ctx, []string{topic}, client.ExactlyOnce)
					if err != nil {
						t.Fatal(err)
					}
					pub := connect(t, ctx, v, client.Config{URL: "mqtt://" + proxy.Addr(), ClientID: "fpub-" + strconv.Itoa(id),
						Persistent: true, KeepAlive: time.Second})
					if err := pub.Publish(ctx, topic, []byte("precious"), st.qos, false); err != nil {
						t.Fatalf("Publish across the fault: %v", err)
					}
					if !fired.Load() {
						t.Fatal("the fault never happened")
					}
					if proxy.Connections() < 2 {
						t.Fatalf("%d connections: the client did not reconnect", proxy.Connections())
					}
					if err := pub.Publish(ctx, topic, []byte("end"), client.ExactlyOnce, false); err != nil {
						t.Fatal(err)
					}
					copies := 0
					for {
						m := next(t, ctx, s)
						if string(m.Payload) == "end" {
							break
						}
						copies++
					}
					if copies == 0 {
						t.Fatal("the message was lost")
					}
					if st.qos == client.ExactlyOnce && copies != 1 {
						t.Fatalf("QoS 2 message delivered %d times", copies)
					}
				})
			}
		}
	}
}

// TestLatency: with 30 ms added each way, a burst of QoS 1 and 2 publishes
// all arrive, in order.
func TestLatency(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	proxy, err := faultproxy.Start(b.Addr(brokertest.MQTT))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.SetLatency(30 * time.Millisecond)
	c := connect(t, ctx, codec.V5, client.Config{URL: "mqtt://" + proxy.Addr(), ClientID: "slow"}).(v5)
	s, err := c.Subscribe(ctx, []string{"slow/#"}, client.ExactlyOnce)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.Client5.Publish(ctx, "slow/"+strconv.Itoa(i), []byte(strconv.Itoa(i)), client.QoS(1+i%2))
			errs <- err
		}()
	}
	got := map[string]bool{}
	for range n {
		got[string(next(t, ctx, s).Payload)] = true
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != n {
		t.Fatalf("%d distinct messages, want %d", len(got), n)
	}
	if rtt, err := c.Ping(ctx); err != nil || rtt < 60*time.Millisecond {
		t.Fatalf("Ping through 30 ms each way = %v, %v; want at least 60 ms", rtt, err)
	}
}
