package client

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
	"github.com/zmqtt/zmqtt-go/transport"
)

// BenchmarkPublishObserve measures a Publish through the in-memory pipe to
// ackingPeer (QoS 1: PUBACK included), so that the client's own cost shows
// without a broker's: with no Observer (obs=none), with an Observer that
// counts every packet, sets a traceparent user property and records every
// publish's end (obs=observer), and with a Logger at Debug whose text goes
// to io.Discard (obs=debug: the packet trace is formatted and dropped).
func BenchmarkPublishObserve(b *testing.B) {
	var packets, dones atomic.Uint64
	span := new(int)
	observer := &Observer{
		OnPacket: func(d Direction, p PacketInfo) { packets.Add(1) },
		OnPublish: func(ctx context.Context, p *PublishStart) any {
			p.SetUserProperty("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			return span
		},
		OnPublishDone: func(d PublishDone) { dones.Add(1) },
	}
	debug := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		for _, qos := range []QoS{AtMostOnce, AtLeastOnce} {
			for _, obs := range []string{"none", "observer", "debug"} {
				b.Run("v="+v.String()+"/qos="+string('0'+byte(qos))+"/obs="+obs, func(b *testing.B) {
					cfg := Config{ClientID: "bench", KeepAlive: time.Hour}
					switch obs {
					case "observer":
						cfg.Observer = observer
					case "debug":
						cfg.Logger = debug
					}
					publishBench(b, v, qos, cfg)
				})
			}
		}
	}
}

func publishBench(b *testing.B, v codec.Version, qos QoS, cfg Config) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	peerDone := make(chan struct{})
	cfg.Dial = func(context.Context) (net.Conn, error) {
		c, s := transport.Pipe()
		go func() {
			defer close(peerDone)
			ackingPeer(b, v, s)
		}()
		return c, nil
	}
	payload := make([]byte, 64)
	var publish func() error
	var stop func()
	if v == codec.V5 {
		c, err := New5(Config5{Config: cfg})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		publish = func() error { _, err := c.Publish(ctx, "bench/observe/topic", payload, qos); return err }
		stop = func() { c.Disconnect(ctx, 0, nil) }
	} else {
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		publish = func() error { return c.Publish(ctx, "bench/observe/topic", payload, qos) }
		stop = func() { c.Disconnect(ctx) }
	}
	defer func() {
		stop()
		<-peerDone
	}()
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		if err := publish(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStats measures a Stats call (on a client that is not connected:
// the cost does not depend on the traffic).
func BenchmarkStats(b *testing.B) {
	c, err := New5(Config5{Config: Config{ClientID: "stats", Dial: func(context.Context) (net.Conn, error) {
		c, _ := transport.Pipe()
		return c, nil
	}}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Disconnect(context.Background(), 0, nil)
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		n += c.Stats().Sent.Bytes
	}
	_ = n
}

// BenchmarkObserveCost measures what the client's loop does per message
// for Stats and the Observer, without goroutines or I/O, so that the
// figure is not lost in the scheduling noise of an end-to-end publish.
// side=publish is the publisher's side of a QoS 1 message: the publish
// tracked for PublishLatency, its PUBLISH counted as sent, its PUBACK as
// received, its end recorded; side=receive is a subscriber's QoS 0
// message: its PUBLISH counted as received and its delivery. Both publish
// the counts to the shared atomics once per message (the worst case: one
// message per turn of the loop). obs=none is the cost every client pays;
// obs=observer adds an Observer that counts packets and publish ends and
// reads the message's user properties; obs=debug a Logger at Debug whose
// text goes to io.Discard.
func BenchmarkObserveCost(b *testing.B) {
	pub, _ := codec.Append(nil, &codec.Publish{Topic: "bench/observe/sensor-0042", QoS: 1, PacketID: 7,
		Payload: make([]byte, 64)}, codec.V5)
	puback, _ := codec.Append(nil, &codec.Puback{PacketID: 7}, codec.V5)
	pub0, _ := codec.Append(nil, &codec.Publish{Topic: "bench/observe/sensor-0042", Payload: make([]byte, 64)}, codec.V5)
	var packets, dones, msgs atomic.Uint64
	observer := &Observer{
		OnPacket:      func(d Direction, p PacketInfo) { packets.Add(1) },
		OnPublishDone: func(d PublishDone) { dones.Add(1) },
		OnMessage: func(m MessageInfo) {
			if len(m.Properties.User) == 0 {
				msgs.Add(1)
			}
		},
	}
	debug := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, side := range []string{"publish", "receive"} {
		for _, obs := range []string{"none", "observer", "debug"} {
			b.Run("side="+side+"/obs="+obs, func(b *testing.B) {
				cfg := Config{}
				switch obs {
				case "observer":
					cfg.Observer = observer
				case "debug":
					cfg.Logger = debug
				}
				c := &core{v: codec.V5, log: slog.New(slog.DiscardHandler), pubs: make(map[session.Token]pubTrack)}
				if cfg.Logger != nil {
					c.log = cfg.Logger
				}
				c.o.init(&cfg)
				m := Message{Topic: "bench/observe/sensor-0042", Payload: make([]byte, 64)}
				var tok session.Token
				// The loop reads the clock anyway to hand a publish to the
				// session and when it reads bytes: the added cost takes
				// those times as given.
				now := time.Now()
				c.stats.born = now
				c.readAt = 1 // read at born
				b.ReportAllocs()
				for b.Loop() {
					if side == "publish" {
						tok++
						var t pubTrack
						if c.o.pubHooks {
							// startPublish, on the caller's goroutine, reads
							// the clock for OnPublishDone's Duration.
							t = pubTrack{start: time.Now(), topic: m.Topic, qos: AtLeastOnce, observed: true}
						}
						c.tookPublish(now, tok, nil, codec.AtLeastOnce, &t)
						c.observePackets(PacketSent, pub, c.traceMode())
						c.observePackets(PacketReceived, puback, c.traceMode())
						c.publishEvent(&session.Event{Kind: session.EventPublished, Token: tok})
					} else {
						c.observePackets(PacketReceived, pub0, c.traceMode())
						c.stats.add(cDelivered, 1)
						if c.o.onMessage != nil {
							c.observeMessage(&m, false)
						}
					}
					c.stats.publish()
				}
			})
		}
	}
}
