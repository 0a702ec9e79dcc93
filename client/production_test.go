package client_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/internal/faultproxy"
	"github.com/zmqtt/zmqtt-go/transport"
)

// stateLog collects a client's state changes for a test.
type stateLog struct {
	mu         sync.Mutex
	reconnects int
	changes    chan client.StateChange
}

func newStateLog() *stateLog { return &stateLog{changes: make(chan client.StateChange, 1024)} }

func (l *stateLog) on(sc client.StateChange) {
	l.mu.Lock()
	if sc.State == client.StateReconnecting {
		l.reconnects++
	}
	l.mu.Unlock()
	select {
	case l.changes <- sc:
	default:
	}
}

func (l *stateLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reconnects
}

// waitForOther waits for the next change to state st on a server other
// than not, and returns when it was seen.
func (l *stateLog) waitForOther(t *testing.T, ctx context.Context, st client.State, not string) time.Time {
	t.Helper()
	for {
		select {
		case sc := <-l.changes:
			if sc.State == st && sc.Server != not {
				return time.Now()
			}
		case <-ctx.Done():
			t.Fatalf("no change to state %v on another server than %s: %v", st, not, ctx.Err())
		}
	}
}

// drain forgets the changes seen so far.
func (l *stateLog) drain() {
	for {
		select {
		case <-l.changes:
		default:
			return
		}
	}
}

// waitFor waits for the next change to state st.
func (l *stateLog) waitFor(t *testing.T, ctx context.Context, st client.State) client.StateChange {
	t.Helper()
	for {
		select {
		case sc := <-l.changes:
			if sc.State == st {
				return sc
			}
		case <-ctx.Done():
			t.Fatalf("no change to state %v: %v", st, ctx.Err())
		}
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestConnectErrorsSayWhy: Connect against a real broker that cannot be
// used returns the cause, not a bare context error.
func TestConnectErrorsSayWhy(t *testing.T) {
	b := brokertest.Start(t)
	cases := []struct {
		name  string
		cfg   client.Config
		check func(error) bool
	}{
		{"wrong-port", client.Config{URL: "mqtt://127.0.0.1:" + strconv.Itoa(freePort(t))},
			func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{"tls-to-plain-port", client.Config{URL: "mqtts://127.0.0.1:" + strconv.Itoa(b.Port(brokertest.MQTT)), TLS: b.TLSConfig()},
			func(err error) bool {
				var ce *transport.ConnError
				return errors.As(err, &ce) && ce.Op == "tls handshake"
			}},
		{"no-client-certificate", client.Config{URL: b.URL(brokertest.MutualTLS), TLS: b.TLSConfig()},
			func(err error) bool { return strings.Contains(err.Error(), "certificate") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := deadline(t, 30*time.Second)
			tc.cfg.ClientID = tc.name
			c, err := client.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			defer cancel()
			err = c.Connect(cctx)
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Connect: %v, want the context's error or a final one", err)
			}
			if !tc.check(err) {
				t.Fatalf("Connect: %q does not say why", err)
			}
			t.Logf("Connect: %v", err)
			<-c.Done()
		})
	}
}

// TestLivenessDetectsDeadLink: a black hole (packets dropped, nothing
// closed) or a half-open link (the far end stopped reading) is noticed
// within 1.5x the keep alive, whether the client was idle or busy sending.
func TestLivenessDetectsDeadLink(t *testing.T) {
	b := brokertest.Start(t)
	const ka = 2 * time.Second
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		for _, how := range []string{"blackhole", "half-open"} {
			for _, busy := range []bool{false, true} {
				name := v.String() + "/" + how + "/idle"
				if busy {
					name = v.String() + "/" + how + "/busy"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					ctx := deadline(t, 30*time.Second)
					proxy, err := faultproxy.Start(b.Addr(brokertest.MQTT))
					if err != nil {
						t.Fatal(err)
					}
					defer proxy.Close()
					log := newStateLog()
					c := connect(t, ctx, v, client.Config{URL: "mqtt://" + proxy.Addr(), ClientID: strings.ReplaceAll(name, "/", "-"),
						KeepAlive: ka, OnStateChange: log.on})
					stop := make(chan struct{})
					var wg sync.WaitGroup
					if busy {
						wg.Add(1)
						go func() {
							defer wg.Done()
							tick := time.NewTicker(20 * time.Millisecond)
							defer tick.Stop()
							for {
								select {
								case <-stop:
									return
								case <-tick.C:
									pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
									c.Publish(pctx, "live/"+name, []byte("x"), client.AtMostOnce, false)
									cancel()
								}
							}
						}()
					}
					// Let the connection run a little, so that the dead link does
					// not start right after a fresh exchange.
					time.Sleep(ka / 2)
					start := time.Now()
					if how == "blackhole" {
						proxy.BlackHoleAll()
					} else {
						proxy.StallAll()
					}
					log.waitFor(t, ctx, client.StateReconnecting)
					took := time.Since(start)
					close(stop)
					wg.Wait()
					t.Logf("%s noticed after %v (keep alive %v: %.2fx)", name, took.Round(time.Millisecond), ka, float64(took)/float64(ka))
					if limit := ka*3/2 + 250*time.Millisecond; took > limit {
						t.Fatalf("a dead link was noticed after %v, more than 1.5x the keep alive", took)
					}
				})
			}
		}
	}
}

// TestSlowConsumerKeepsConnection: a subscriber with a 2 s keep alive whose
// consumer stalls for 4 s while 100,000 QoS 0 and 20,000 QoS 1 messages
// arrive is never dropped: every packet from the broker is a sign of
// life, and a PINGRESP queued behind messages is not late.
func TestSlowConsumerKeepsConnection(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 120*time.Second)
			log := newStateLog()
			sub := connect(t, ctx, v, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "slow-sub-" + v.String(), KeepAlive: 2 * time.Second, OnStateChange: log.on})
			s, err := sub.Subscribe(ctx, []string{"slow/#"}, client.AtLeastOnce)
			if err != nil {
				t.Fatal(err)
			}
			pub := connect(t, ctx, v, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "slow-pub-" + v.String()})
			const n0, n1 = 100_000, 20_000
			payload := make([]byte, 64)
			var pubErr atomic.Value
			pubDone := make(chan struct{})
			go func() {
				defer close(pubDone)
				for i := 0; i < n0+n1; i++ {
					q := client.AtMostOnce
					if i%6 == 5 {
						q = client.AtLeastOnce
					}
					if err := pub.Publish(ctx, "slow/t", payload, q, false); err != nil {
						pubErr.Store(err)
						return
					}
				}
			}()
			time.Sleep(4 * time.Second) // the consumer stalls; the client must not
			got := 0
			for {
				select {
				case <-pubDone:
				default:
				}
				mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := s.Next(mctx)
				cancel()
				if err != nil {
					break
				}
				got++
			}
			<-pubDone
			if e := pubErr.Load(); e != nil {
				t.Fatalf("publisher: %v", e)
			}
			t.Logf("%v: %d of %d messages consumed after a 4 s stall, %d QoS 0 dropped by the queue, %d reconnects",
				v, got, n0+n1, s.Dropped(), log.count())
			if r := log.count(); r != 0 {
				t.Fatalf("the subscriber reconnected %d times while packets kept arriving", r)
			}
			if got != n0+n1 || s.Dropped() != 0 {
				t.Fatalf("%d of %d consumed, %d dropped", got, n0+n1, s.Dropped())
			}
		})
	}
}

// TestPoisonMessage: a 3.1.1 persistent client publishes a QoS 1 message
// larger than Mosquitto's max_packet_size, which the broker answers by
// closing the connection (3.1.1 has no way to say why). After PoisonCloses
// closes in a row the Publish fails with a *PoisonError, the message leaves
// the session, and the connection then stays up: the next publish goes
// through.
func TestPoisonMessage(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{Extra: []string{"max_packet_size 2048"}})
	ctx := deadline(t, 60*time.Second)
	log := newStateLog()
	c, err := client.New(client.Config{URL: b.URL(brokertest.MQTT), ClientID: "poison", Persistent: true, OnStateChange: log.on})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	start := time.Now()
	err = c.Publish(ctx, "poison/big", make([]byte, 4096), client.AtLeastOnce)
	var pe *client.PoisonError
	if !errors.As(err, &pe) || !errors.Is(err, client.ErrPoisonMessage) {
		t.Fatalf("publish of a message over the broker's limit: %v, want a *PoisonError", err)
	}
	took, reconnects := time.Since(start), log.count()
	t.Logf("poison message failed after %v and %d reconnects: %v", took.Round(time.Millisecond), reconnects, err)
	if reconnects > 4 {
		t.Fatalf("%d reconnects for one poison message", reconnects)
	}
	// The close that made it fail is followed by one more reconnect; from
	// then on the connection stays up.
	if err := c.Publish(ctx, "poison/small", []byte("ok"), client.AtLeastOnce); err != nil {
		t.Fatalf("publish after the poison message: %v", err)
	}
	settled := log.count()
	for i := 0; i < 20; i++ {
		if err := c.Publish(ctx, "poison/small", []byte("ok"), client.AtLeastOnce); err != nil {
			t.Fatalf("publish after the poison message: %v", err)
		}
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if r := log.count(); r != settled {
		t.Fatalf("the connection did not stay up after the poison message left: %d more reconnects", r-settled)
	}
	if c.State() != client.StateConnected {
		t.Fatalf("state %v", c.State())
	}
}

// TestQoS0FloodDelivered: one publisher floods 200,000 QoS 0 messages of
// 64 B through a private Mosquitto to a subscriber with default settings
// whose consumer only counts them. All 200,000 arrive: a full queue makes
// the client stop reading, so the burst waits in TCP and the broker
// instead of being dropped; the subscriber's memory stays bounded by its
// queue.
func TestQoS0FloodDelivered(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 120*time.Second)
			log := newStateLog()
			sub := connect(t, ctx, v, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "flood-sub-" + v.String(), OnStateChange: log.on})
			s, err := sub.Subscribe(ctx, []string{"flood/t"}, client.AtMostOnce)
			if err != nil {
				t.Fatal(err)
			}
			pub := connect(t, ctx, v, client.Config{URL: b.URL(brokertest.MQTT), ClientID: "flood-pub-" + v.String()})
			const n = 200_000
			payload := make([]byte, 64)
			start := time.Now()
			go func() {
				for i := 0; i < n; i++ {
					if pub.Publish(ctx, "flood/t", payload, client.AtMostOnce, false) != nil {
						return
					}
				}
			}()
			got := 0
			for got < n {
				mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := s.Next(mctx)
				cancel()
				if err != nil {
					break
				}
				got++
			}
			took := time.Since(start)
			t.Logf("%v: %d of %d QoS 0 messages delivered in %v (%.0f msg/s), %d dropped, %d reconnects",
				v, got, n, took.Round(time.Millisecond), float64(got)/took.Seconds(), s.Dropped(), log.count())
			if got != n || s.Dropped() != 0 {
				t.Fatalf("%d of %d delivered, %d dropped", got, n, s.Dropped())
			}
		})
	}
}
