package client

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/transport"
)

// ackingPeer is a broker for allocation tests: it answers CONNECT with
// CONNACK and each QoS 1 PUBLISH with PUBACK, decoding and encoding into
// reused values, so that it allocates nothing per packet itself.
func ackingPeer(t testing.TB, v codec.Version, conn net.Conn) {
	r := codec.NewReader(conn, 0)
	defer r.Release()
	d := codec.Decoder{Version: v, From: codec.RoleClient}
	var ack codec.Puback
	var out []byte
	for {
		_, b, err := r.Next()
		if err != nil {
			return
		}
		pk, _, err := d.Decode(b)
		if err != nil {
			t.Errorf("peer: %v", err)
			return
		}
		out = out[:0]
		switch pk := pk.(type) {
		case *codec.Connect:
			out, _ = codec.Append(out, &codec.Connack{}, v)
		case *codec.Publish:
			if pk.QoS == codec.AtLeastOnce {
				ack.PacketID = pk.PacketID
				out, _ = codec.Append(out, &ack, v)
			}
		}
		if len(out) > 0 {
			if _, err := conn.Write(out); err != nil {
				return
			}
		}
	}
}

// TestAllocsPublish: in steady state a QoS 0 publish and a QoS 1 publish
// (PUBACK included) allocate nothing in the client, on either version.
// Counted over every goroutine, the peer's included; run without -race
// (make test runs ^TestAllocs separately).
//
// A PublishAsync allocates once, its handle and the copy of its message
// together (for a message up to 192 bytes), when its handle is looked at
// after it ended: 100 calls, then Drain, then each handle's Err.
func TestAllocsPublish(t *testing.T) {
	allocsPublish(t, nil, func(codec.Version) float64 { return 1.1 })
}

// TestAllocsPublishObserved: with an Observer that sees every packet, sets
// a traceparent user property on each MQTT 5.0 publish and sees each
// publish end, a publish still allocates nothing in steady state. A
// PublishAsync makes one more allocation on MQTT 5.0 there: its message
// keeps its own copy of the user properties OnPublish set.
func TestAllocsPublishObserved(t *testing.T) {
	var packets, dones atomic.Int64
	span := new(int)
	allocsPublish(t, &Observer{
		OnPacket: func(d Direction, p PacketInfo) { packets.Add(1) },
		OnPublish: func(ctx context.Context, p *PublishStart) any {
			if p.Version == codec.V5 {
				if err := p.SetUserProperty("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"); err != nil {
					t.Error(err)
				}
			}
			return span
		},
		OnPublishDone: func(d PublishDone) {
			if d.Value != span || d.Err != nil {
				t.Errorf("OnPublishDone %+v", d)
			}
			dones.Add(1)
		},
	}, func(v codec.Version) float64 {
		if v == codec.V5 {
			return 2.1
		}
		return 1.1
	})
	// Two versions, two QoS levels, 1000 runs plus the warm-up each.
	if n := dones.Load(); n < 4*1000 {
		t.Errorf("OnPublishDone ran %d times", n)
	}
	if n := packets.Load(); n < dones.Load() {
		t.Errorf("OnPacket ran %d times for %d publishes", n, dones.Load())
	}
}

// allocsPublish measures Publish and PublishAsync on both versions; async
// bounds the allocations per PublishAsync call.
func allocsPublish(t *testing.T, obs *Observer, async func(codec.Version) float64) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race; make test runs this test without it")
	}
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			peerDone := make(chan struct{})
			dial := func(context.Context) (net.Conn, error) {
				c, s := transport.Pipe()
				go func() {
					defer close(peerDone)
					ackingPeer(t, v, s)
				}()
				return c, nil
			}
			cfg := Config{ClientID: "allocs", Dial: dial, KeepAlive: time.Hour, Observer: obs}
			payload := []byte("payload")
			var publish func(qos QoS) error
			var publishAsync func(qos QoS) *Publishing
			var drain func() error
			var stop func()
			if v == codec.V5 {
				c, err := New5(Config5{Config: cfg})
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Connect(ctx); err != nil {
					t.Fatal(err)
				}
				publish = func(qos QoS) error { _, err := c.Publish(ctx, "allocs/topic", payload, qos); return err }
				publishAsync = func(qos QoS) *Publishing { return c.PublishAsync("allocs/topic", payload, qos) }
				drain = func() error { return c.Drain(ctx) }
				stop = func() { c.Disconnect(ctx, 0, nil) }
			} else {
				c, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Connect(ctx); err != nil {
					t.Fatal(err)
				}
				publish = func(qos QoS) error { return c.Publish(ctx, "allocs/topic", payload, qos) }
				publishAsync = func(qos QoS) *Publishing { return c.PublishAsync("allocs/topic", payload, qos) }
				drain = func() error { return c.Drain(ctx) }
				stop = func() { c.Disconnect(ctx) }
			}
			defer func() {
				stop()
				<-peerDone
			}()
			for _, qos := range []QoS{AtMostOnce, AtLeastOnce} {
				var err error
				n := testing.AllocsPerRun(1000, func() {
					if e := publish(qos); e != nil && err == nil {
						err = e
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					t.Errorf("%v publish: %.2f allocations per call, want 0", qos, n)
				}
			}
			hs := make([]*Publishing, 100)
			for _, qos := range []QoS{AtMostOnce, AtLeastOnce} {
				var err error
				n := testing.AllocsPerRun(50, func() {
					for i := range hs {
						hs[i] = publishAsync(qos)
					}
					if e := drain(); e != nil && err == nil {
						err = e
					}
					for _, h := range hs {
						if e := h.Err(); e != nil && err == nil {
							err = e
						}
					}
				}) / float64(len(hs))
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%v PublishAsync: %.2f allocations per call", qos, n)
				if limit := async(v); n > limit {
					t.Errorf("%v PublishAsync: %.2f allocations per call, want at most %.1f", qos, n, limit)
				}
			}
		})
	}
}
