package client_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// TestBurst311DefaultMosquitto: 1,000 goroutines each publish a QoS 2 and
// a QoS 1 message on one 3.1.1 client through a Mosquitto with default
// settings (max_inflight_messages 20, which it enforces on QoS 2 by
// closing the connection): the client's outbound window keeps at most 20
// in flight, so every publish completes with no reconnect.
func TestBurst311DefaultMosquitto(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 90*time.Second)
	log := newStateLog()
	c := connect(t, ctx, codec.V311, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "burst", OnStateChange: log.on, MaxQueued: 4000})
	sub := connect(t, ctx, codec.V311, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "burst-sub"})
	s, err := sub.Subscribe(ctx, []string{"burst/#"}, client.ExactlyOnce)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, q := range []client.QoS{client.ExactlyOnce, client.AtLeastOnce} {
				if err := c.Publish(ctx, "burst/"+strconv.Itoa(int(q)), []byte(strconv.Itoa(i)), q, false); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	got := 0
	for got < 2*n {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.Next(mctx)
		cancel()
		if err != nil {
			break
		}
		got++
	}
	t.Logf("3.1.1 burst of %d QoS 2 + %d QoS 1 publishes: %d failed, %d reconnects, %v; subscriber got %d", n, n, failed.Load(), log.count(), took.Round(time.Millisecond), got)
	if failed.Load() != 0 {
		t.Fatalf("%d publishes failed, first: %v", failed.Load(), first.Load())
	}
	if log.count() != 0 {
		t.Fatalf("%d reconnects", log.count())
	}
	if got != 2*n {
		t.Fatalf("subscriber got %d of %d", got, 2*n)
	}
}

// TestCleanSessionBrokerKilled: a stream of 5,000 QoS 1 messages from a
// clean-session client; the broker (persistence off) is killed with kill -9
// mid-stream and restarted. With the default policy every Publish returns
// nil and every message is received at least once (the unfinished ones are
// published again on the new session). With FailOnSessionLost the
// unfinished ones fail with ErrSessionLost instead.
func TestCleanSessionBrokerKilled(t *testing.T) {
	for _, policy := range []client.SessionLostPolicy{client.RepublishOnSessionLost, client.FailOnSessionLost} {
		name := "republish"
		if policy == client.FailOnSessionLost {
			name = "fail"
		}
		t.Run(name, func(t *testing.T) {
			b := brokertest.Start(t)
			ctx := deadline(t, 120*time.Second)
			// The subscriber is persistent on a broker that forgets it at the
			// kill: it subscribes again when the session is lost.
			subLog, pubLog := newStateLog(), newStateLog()
			sub := connect(t, ctx, codec.V5, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "ks-sub-" + name, OnStateChange: subLog.on})
			s, err := sub.Subscribe(ctx, []string{"ks/t"}, client.AtLeastOnce)
			if err != nil {
				t.Fatal(err)
			}
			rcv := newReceiver()
			rctx, stopRcv := context.WithCancel(ctx)
			defer stopRcv()
			go rcv.run(rctx, s)
			pub := connect(t, ctx, codec.V5, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "ks-pub-" + name, SessionLost: policy, OnStateChange: pubLog.on})
			const n = 5000
			type res struct {
				i   int
				err error
			}
			results := make(chan res, n)
			var wg sync.WaitGroup
			// A window of 64 concurrent publishers keeps many in flight.
			sem := make(chan struct{}, 64)
			killAt := n / 3
			var issued atomic.Int64
			for i := 0; i < n; i++ {
				sem <- struct{}{}
				if i == killAt {
					subLog.drain()
					b.Kill()
					if err := b.Restart(ctx); err != nil {
						t.Fatal(err)
					}
					// Go on once the subscriber is back and subscribed again
					// (its PINGRESP follows the SUBACK), so that what is
					// published from here on has a subscriber to go to.
					subLog.waitFor(t, ctx, client.StateConnected)
					if _, err := sub.(v5).Ping(ctx); err != nil {
						t.Fatal(err)
					}
				}
				wg.Add(1)
				issued.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					err := pub.Publish(ctx, "ks/t", []byte(strconv.Itoa(i)), client.AtLeastOnce, false)
					results <- res{i, err}
				}()
			}
			wg.Wait()
			close(results)
			var acked []int
			var lost, other int
			var otherErr error
			for r := range results {
				switch {
				case r.err == nil:
					acked = append(acked, r.i)
				case errors.Is(r.err, client.ErrSessionLost):
					lost++
				default:
					other++
					otherErr = r.err
				}
			}
			// Messages the broker acknowledged before the kill but had not
			// yet sent on are the broker's loss, not ours, and so are those
			// in flight at the kill that were published again before the
			// subscriber was back: what was issued after the subscriber
			// was back is checked.
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var after []int
			for _, i := range acked {
				if i >= killAt {
					after = append(after, i)
				}
			}
			missing, dups := rcv.waitAll(wctx, after)
			t.Logf("%s: %d acknowledged, %d ErrSessionLost, %d other errors; of the %d acknowledged after the restart %d missing; %d duplicates received",
				name, len(acked), lost, other, len(after), len(missing), dups)
			if other > 0 {
				t.Fatalf("%d publishes failed otherwise, e.g. %v", other, otherErr)
			}
			if policy == client.RepublishOnSessionLost && lost > 0 {
				t.Fatalf("%d publishes failed with ErrSessionLost under the republish policy", lost)
			}
			if policy == client.FailOnSessionLost && lost == 0 {
				t.Fatal("no publish failed with ErrSessionLost under the fail policy: the kill did not catch any in flight")
			}
			if len(missing) > 0 {
				t.Fatalf("%d acknowledged messages never arrived, e.g. %v", len(missing), missing[:min(20, len(missing))])
			}
		})
	}
}

// TestGracefulShutdown: 1,000 publishes in flight when Disconnect is
// called: it drains first, so none fails with ErrClosed.
func TestGracefulShutdown(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 60*time.Second)
			c := connect(t, ctx, v, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "graceful-" + v.String()})
			const n = 1000
			errs := make(chan error, n)
			var started sync.WaitGroup
			for i := 0; i < n; i++ {
				started.Add(1)
				go func() {
					started.Done()
					q := client.AtLeastOnce
					if i%2 == 1 {
						q = client.ExactlyOnce
					}
					errs <- c.Publish(ctx, "graceful/t", []byte(strconv.Itoa(i)), q, false)
				}()
			}
			started.Wait()
			if err := c.Disconnect(ctx); err != nil {
				t.Fatalf("Disconnect: %v", err)
			}
			closed, other := 0, 0
			for i := 0; i < n; i++ {
				err := <-errs
				switch {
				case errors.Is(err, client.ErrClosed):
					closed++
				case err != nil:
					other++
				}
			}
			t.Logf("%v: %d publishes racing Disconnect: %d ErrClosed, %d other errors", v, n, closed, other)
			if closed != 0 || other != 0 {
				t.Fatalf("%d ErrClosed, %d other errors", closed, other)
			}
		})
	}
}

// TestPublishAsyncOffline: PublishAsync never blocks, also while the broker
// is away; what it accepted goes out when the broker is back, and Drain
// returns when all of it is complete.
func TestPublishAsyncOffline(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{Persistence: true})
	ctx := deadline(t, 60*time.Second)
	sub := connect(t, ctx, codec.V5, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "async-sub", Persistent: true})
	s, err := sub.Subscribe(ctx, []string{"async/t"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver()
	rctx, stopRcv := context.WithCancel(ctx)
	defer stopRcv()
	go rcv.run(rctx, s)
	log := newStateLog()
	c, err := client.New5(client.Config5{Config: client.Config{URL: b.URL(brokertest.MQTT), ClientID: "async-pub", Persistent: true,
		Reconnect: fastReconnect, OnStateChange: log.on}, SessionExpiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background(), 0, nil)
	const n = 500
	var hs []*client.Publishing
	var want []int
	for i := 0; i < n; i++ {
		if i == n/2 {
			if err := b.Stop(); err != nil {
				t.Fatal(err)
			}
			log.waitFor(t, ctx, client.StateReconnecting)
		}
		start := time.Now()
		hs = append(hs, c.PublishAsync("async/t", []byte(strconv.Itoa(i)), client.AtLeastOnce))
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("PublishAsync blocked for %v", d)
		}
		want = append(want, i)
	}
	if err := b.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for i, h := range hs {
		select {
		case <-h.Done():
		default:
			t.Fatalf("publish %d not done after Drain", i)
		}
		if err := h.Err(); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	missing, dups := rcv.waitAll(wctx, want)
	t.Logf("PublishAsync across an outage: %d accepted, %d missing, %d duplicates", n, len(missing), dups)
	if len(missing) > 0 {
		t.Fatalf("%d missing, e.g. %v", len(missing), missing[:min(20, len(missing))])
	}
}
