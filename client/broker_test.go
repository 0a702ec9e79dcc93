package client_test

// Integration tests against a private Mosquitto (internal/brokertest): the
// client over TCP, TLS and WebSocket, both protocol versions, every QoS,
// retained messages, wills, shared subscriptions, persistent sessions and
// broker restarts.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/internal/faultproxy"
	"github.com/zmqtt/zmqtt-go/session/filestore"
	"github.com/zmqtt/zmqtt-go/transport"
)

func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fastReconnect retries quickly and forever: the tests bound themselves
// with their context.
var fastReconnect = client.ReconnectPolicy{InitialDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxAttempts: -1}

// endpoint is one way to reach the broker.
type endpoint struct {
	name string
	url  string
	tls  *tls.Config
}

func endpoints(b *brokertest.Broker) []endpoint {
	return []endpoint{
		{"tcp", b.URL(brokertest.MQTT), nil},
		{"tls", b.URL(brokertest.MQTTS), b.TLSConfig()},
		{"ws", b.URL(brokertest.WS), nil},
		{"wss", b.URL(brokertest.WSS), b.TLSConfig()},
	}
}

// versioned hides the two client types behind what the tests need.
type versioned interface {
	Publish(ctx context.Context, topic string, payload []byte, qos client.QoS, retain bool) error
	Subscribe(ctx context.Context, filters []string, qos client.QoS) (*client.Subscription, error)
	Disconnect(ctx context.Context) error
}

type v311 struct{ *client.Client }

func (c v311) Publish(ctx context.Context, topic string, payload []byte, qos client.QoS, retain bool) error {
	opts := []client.PublishOption{qos}
	if retain {
		opts = append(opts, client.Retain)
	}
	return c.Client.Publish(ctx, topic, payload, opts...)
}

func (c v311) Subscribe(ctx context.Context, filters []string, qos client.QoS) (*client.Subscription, error) {
	return c.Client.Subscribe(ctx, filters, qos)
}

type v5 struct{ *client.Client5 }

func (c v5) Publish(ctx context.Context, topic string, payload []byte, qos client.QoS, retain bool) error {
	opts := []client.PublishOption5{qos}
	if retain {
		opts = append(opts, client.Retain)
	}
	_, err := c.Client5.Publish(ctx, topic, payload, opts...)
	return err
}

func (c v5) Subscribe(ctx context.Context, filters []string, qos client.QoS) (*client.Subscription, error) {
	return c.Client5.Subscribe(ctx, filters, qos)
}

func (c v5) Disconnect(ctx context.Context) error { return c.Client5.Disconnect(ctx, 0, nil) }

// connect makes and connects a client of version v, disconnected at the
// end of the test.
func connect(t *testing.T, ctx context.Context, v codec.Version, cfg client.Config) versioned {
	t.Helper()
	if cfg.Reconnect == (client.ReconnectPolicy{}) {
		cfg.Reconnect = fastReconnect
	}
	var c versioned
	var err error
	if v == codec.V5 {
		var c5 *client.Client5
		c5, err = client.New5(client.Config5{Config: cfg, SessionExpiry: time.Hour})
		if err == nil {
			err = c5.Connect(ctx)
		}
		c = v5{c5}
	} else {
		var c3 *client.Client
		c3, err = client.New(cfg)
		if err == nil {
			err = c3.Connect(ctx)
		}
		c = v311{c3}
	}
	if err != nil {
		t.Fatalf("connect %s (%v): %v", cfg.ClientID, v, err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Disconnect(dctx)
	})
	return c
}

func next(t *testing.T, ctx context.Context, s *client.Subscription) client.Message {
	t.Helper()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

// TestBrokerPubSubEveryQoS publishes and receives at QoS 0, 1 and 2 over
// each transport and version: the client needs nothing beyond the
// specification to work with a conformant server [MQTT-7.0.0-2] (3.1.1), and
// runs over ordered, lossless byte streams (TCP, TLS, WebSocket)
// [MQTT-7.1.2-1] (3.1.1) [MQTT-4.2.0-1] (5.0).
func TestBrokerPubSubEveryQoS(t *testing.T) {
	b := brokertest.Start(t)
	for _, ep := range endpoints(b) {
		for _, v := range []codec.Version{codec.V311, codec.V5} {
			t.Run(fmt.Sprintf("%s/%v", ep.name, v), func(t *testing.T) {
				ctx := deadline(t, 60*time.Second)
				id := fmt.Sprintf("%s-%d", ep.name, v)
				sub := connect(t, ctx, v, client.Config{URL: ep.url, TLS: ep.tls, ClientID: "sub-" + id})
				pub := connect(t, ctx, v, client.Config{URL: ep.url, TLS: ep.tls, ClientID: "pub-" + id})
				s, err := sub.Subscribe(ctx, []string{"qos/" + id + "/#"}, client.ExactlyOnce)
				if err != nil {
					t.Fatal(err)
				}
				for q := client.AtMostOnce; q <= client.ExactlyOnce; q++ {
					topic := fmt.Sprintf("qos/%s/%d", id, q)
					payload := bytes.Repeat([]byte{byte('a' + q)}, 100+int(q)*1000)
					if err := pub.Publish(ctx, topic, payload, q, false); err != nil {
						t.Fatalf("publish QoS %d: %v", q, err)
					}
					m := next(t, ctx, s)
					if m.Topic != topic || !bytes.Equal(m.Payload, payload) || m.QoS != q {
						t.Fatalf("got %q QoS %d with %d bytes, want %q QoS %d with %d", m.Topic, m.QoS, len(m.Payload), topic, q, len(payload))
					}
				}
			})
		}
	}
}

func TestBrokerRetained(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 60*time.Second)
			url := b.URL(brokertest.MQTT)
			topic := "retained/" + v.String()
			pub := connect(t, ctx, v, client.Config{URL: url, ClientID: "rpub-" + v.String()})
			if err := pub.Publish(ctx, topic, []byte("kept"), client.AtLeastOnce, true); err != nil {
				t.Fatal(err)
			}
			sub := connect(t, ctx, v, client.Config{URL: url, ClientID: "rsub-" + v.String()})
			s, err := sub.Subscribe(ctx, []string{topic}, client.AtLeastOnce)
			if err != nil {
				t.Fatal(err)
			}
			// [MQTT-3.3.1-6] (3.1.1) [MQTT-3.3.1-8] (3.1.1) [MQTT-3.3.1-9] (5.0):
			// a retained message is sent because of a new subscription,
			// with RETAIN set.
			if m := next(t, ctx, s); !m.Retain || string(m.Payload) != "kept" {
				t.Fatalf("retained message: %q retain %v", m.Payload, m.Retain)
			}
			// [MQTT-3.3.1-10] (3.1.1) [MQTT-3.3.1-6] (5.0): an empty retained
			// payload clears it; a later
			// subscriber gets nothing retained, so the first message it
			// sees is the live marker.
			if err := pub.Publish(ctx, topic, nil, client.AtLeastOnce, true); err != nil {
				t.Fatal(err)
			}
			if m := next(t, ctx, s); len(m.Payload) != 0 {
				t.Fatalf("the clearing message arrived as %q", m.Payload)
			}
			late, err := sub.Subscribe(ctx, []string{topic + "/x", topic}, client.AtLeastOnce)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, topic+"/x", []byte("live"), client.AtLeastOnce, false); err != nil {
				t.Fatal(err)
			}
			if m := next(t, ctx, late); string(m.Payload) != "live" || m.Retain {
				t.Fatalf("after clearing, the new subscription first got %q retain %v", m.Payload, m.Retain)
			}
		})
	}
}

// TestBrokerWill: a client that vanishes without DISCONNECT has its will
// published [MQTT-3.1.2-8]; one that disconnects normally does not.
func TestBrokerWill(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 60*time.Second)
			url := b.URL(brokertest.MQTT)
			topic := "will/" + v.String()
			watcher := connect(t, ctx, v, client.Config{URL: url, ClientID: "watch-" + v.String()})
			s, err := watcher.Subscribe(ctx, []string{topic}, client.AtLeastOnce)
			if err != nil {
				t.Fatal(err)
			}
			conns := make(chan net.Conn, 4)
			dial := func(ctx context.Context) (net.Conn, error) {
				c, err := transport.Dial(ctx, url, nil)
				if err == nil {
					conns <- c
				}
				return c, err
			}
			// A polite client first: its will must not be sent.
			polite := connect(t, ctx, v, client.Config{URL: url, ClientID: "polite-" + v.String(),
				Will: &client.Will{Topic: topic, Payload: []byte("polite died"), QoS: client.AtLeastOnce}})
			if err := polite.Disconnect(ctx); err != nil {
				t.Fatal(err)
			}
			connect(t, ctx, v, client.Config{URL: url, ClientID: "doomed-" + v.String(), Dial: dial,
				Reconnect: client.ReconnectPolicy{Disabled: true},
				Will:      &client.Will{Topic: topic, Payload: []byte("doomed died"), QoS: client.AtLeastOnce}})
			(<-conns).Close()
			if m := next(t, ctx, s); string(m.Payload) != "doomed died" {
				t.Fatalf("first will message: %q", m.Payload)
			}
		})
	}
}

// TestBrokerSharedSubscription: each message of a shared subscription
// goes to exactly one member of the group [§4.8.2].
func TestBrokerSharedSubscription(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	url := b.URL(brokertest.MQTT)
	const n = 40
	got := make(chan string, 2*n)
	var wg sync.WaitGroup
	subCtx, stop := context.WithCancel(ctx)
	for i := range 2 {
		c := connect(t, ctx, codec.V5, client.Config{URL: url, ClientID: "member-" + strconv.Itoa(i)})
		s, err := c.Subscribe(ctx, []string{"$share/workers/jobs/+"}, client.AtLeastOnce)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m, err := range s.All(subCtx) {
				if err != nil {
					return
				}
				got <- fmt.Sprintf("%d:%s", i, m.Payload)
			}
		}()
	}
	pub := connect(t, ctx, codec.V5, client.Config{URL: url, ClientID: "dispatcher"})
	for i := range n {
		if err := pub.Publish(ctx, "jobs/"+strconv.Itoa(i%3), []byte(strconv.Itoa(i)), client.AtLeastOnce, false); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	members := map[byte]int{}
	for len(seen) < n {
		select {
		case s := <-got:
			members[s[0]]++
			seen[s[2:]]++
		case <-ctx.Done():
			t.Fatalf("got %d of %d jobs", len(seen), n)
		}
	}
	stop()
	wg.Wait()
	for job, c := range seen {
		if c != 1 {
			t.Errorf("job %s delivered %d times", job, c)
		}
	}
	if len(members) != 2 {
		t.Errorf("only members %v got jobs; Mosquitto's round robin should use both", members)
	}
}

// TestBrokerPersistentSessionResume: a subscriber process stops; messages
// sent meanwhile wait on the broker; a new process with the same client
// identifier and file store resumes the session and receives them all.
func TestBrokerPersistentSessionResume(t *testing.T) {
	b := brokertest.Start(t)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := deadline(t, 60*time.Second)
			url := b.URL(brokertest.MQTT)
			path := t.TempDir() + "/session.log"
			topic := "resume/" + v.String()
			open := func() *filestore.FileStore {
				st, err := filestore.Open(path, nil)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			cfg := client.Config{URL: url, ClientID: "resumer-" + v.String(), Persistent: true}
			cfg.Store = open()
			first := connect(t, ctx, v, cfg)
			if _, err := first.Subscribe(ctx, []string{topic}, client.ExactlyOnce); err != nil {
				t.Fatal(err)
			}
			if err := first.Disconnect(ctx); err != nil {
				t.Fatal(err)
			}
			pub := connect(t, ctx, v, client.Config{URL: url, ClientID: "offline-pub-" + v.String()})
			const n = 20
			for i := range n {
				q := client.QoS(1 + i%2)
				if err := pub.Publish(ctx, topic, []byte(strconv.Itoa(i)), q, false); err != nil {
					t.Fatal(err)
				}
			}
			cfg.Store = open()
			second := connect(t, ctx, v, cfg)
			s, err := second.Subscribe(ctx, []string{topic}, client.ExactlyOnce)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				m := next(t, ctx, s)
				if string(m.Payload) != strconv.Itoa(i) {
					t.Fatalf("message %d: got %q (messages must come in order)", i, m.Payload)
				}
			}
		})
	}
}

// TestBrokerRestartMidStream restarts the broker while messages flow at
// QoS 1 and 2: by SIGTERM, and by kill -9 with Mosquitto saving every
// change. A proxy between the clients and the broker witnesses what really
// crossed the wire, which tells the client's part from the broker's:
//
//   - every publish returns success (the publisher's session resends across
//     the restart until the broker acknowledges);
//   - every message the broker delivered to the subscriber reaches the
//     application, and at QoS 2 exactly once, unless the broker sent it
//     again as a new message (after completion, or under a new identifier);
//   - after SIGTERM nothing is lost at all.
//
// After kill -9, Mosquitto 2.0 can lose a message it had acknowledged: it
// sends PUBACK/PUBREC before it saves, and its saved in-flight QoS 2 state
// is not always current. The test counts those losses (published and
// acknowledged, never sent to the subscriber) and logs them; they are not
// the client's.
func TestBrokerRestartMidStream(t *testing.T) {
	for _, how := range []string{"sigterm", "kill-9"} {
		for _, q := range []client.QoS{client.AtLeastOnce, client.ExactlyOnce} {
			for _, v := range []codec.Version{codec.V311, codec.V5} {
				t.Run(fmt.Sprintf("%s/qos%d/%v", how, q, v), func(t *testing.T) {
					restartMidStream(t, how, q, v)
				})
			}
		}
	}
}

func restartMidStream(t *testing.T, how string, q client.QoS, v codec.Version) {
	b := brokertest.Start(t, brokertest.Config{Persistence: true})
	ctx := deadline(t, 120*time.Second)
	proxy, err := faultproxy.Start(b.Addr(brokertest.MQTT))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// The witness: what the broker sent to the subscriber, and which of
	// those it sent again in a way no client can recognise as a resend: after
	// the subscriber completed the exchange (PUBACK, PUBCOMP), or under
	// another packet identifier — a broker that forgot the exchange.
	var wireMu sync.Mutex
	wire := map[string]int{}
	resentAfterDone := map[string]int{}
	completed := map[string]bool{}
	idPayload := map[uint16]string{}
	payloadID := map[string]uint16{}
	proxy.SetObserver(func(dir faultproxy.Direction, _ int, pkt []byte) {
		p, _, err := codec.Decode(pkt, v)
		if err != nil {
			return
		}
		wireMu.Lock()
		defer wireMu.Unlock()
		switch p := p.(type) {
		case *codec.Publish:
			if dir == faultproxy.ToClient {
				payload := string(p.Payload)
				if wire[payload] > 0 && (completed[payload] || payloadID[payload] != p.PacketID) {
					resentAfterDone[payload]++
				}
				wire[payload]++
				idPayload[p.PacketID], payloadID[payload] = payload, p.PacketID
			}
		case *codec.Puback: // only the subscriber sends these to the broker
			if dir == faultproxy.ToBroker {
				completed[idPayload[p.PacketID]] = true
			}
		case *codec.Pubcomp:
			if dir == faultproxy.ToBroker {
				completed[idPayload[p.PacketID]] = true
			}
		}
	})
	url := "mqtt://" + proxy.Addr()
	// The subscriber completed an exchange when it handed its PUBACK or
	// PUBCOMP to the connection, whether or not the proxy could pass it on:
	// a broker killed before it read the packet, and restored from an
	// older save, sends the message again, and the protocol makes that a
	// new message.
	sent := &client.Observer{OnPacket: func(d client.Direction, pi client.PacketInfo) {
		if d == client.PacketSent && (pi.Type == codec.TypePuback || pi.Type == codec.TypePubcomp) {
			wireMu.Lock()
			completed[idPayload[pi.PacketID]] = true
			wireMu.Unlock()
		}
	}}
	sub := connect(t, ctx, v, client.Config{URL: url, ClientID: "stream-sub", Persistent: true, Observer: sent})
	s, err := sub.Subscribe(ctx, []string{"stream/#"}, q)
	if err != nil {
		t.Fatal(err)
	}
	pub := connect(t, ctx, v, client.Config{URL: url, ClientID: "stream-pub", Persistent: true})

	const workers, each = 4, 40
	const total = workers * each
	pubErr := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				payload := fmt.Sprintf("%d-%d", w, i)
				if err := pub.Publish(ctx, "stream/"+strconv.Itoa(w), []byte(payload), q, false); err != nil {
					pubErr <- fmt.Errorf("publish %s: %w", payload, err)
					return
				}
			}
			pubErr <- nil
		}()
	}
	// The subscriber reads until the end marker, which the publisher sends
	// after every other publish has been acknowledged; Mosquitto keeps one
	// queue per client, so by then it has sent all it still has.
	app := map[string]int{}
	restarted, ended := false, false
	for !ended {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d messages: %v", len(app), err)
		}
		p := string(m.Payload)
		if p == "end" {
			ended = true
			continue
		}
		app[p]++
		if !restarted && len(app) == total/3 {
			restarted = true
			if how == "sigterm" {
				if err := b.Stop(); err != nil {
					t.Fatal(err)
				}
			} else {
				b.Kill()
			}
			if err := b.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			go func() {
				for range workers {
					if err := <-pubErr; err != nil {
						pubErr <- err
						return
					}
				}
				if err := pub.Publish(ctx, "stream/end", []byte("end"), q, false); err != nil {
					pubErr <- err
					return
				}
				close(pubErr)
			}()
		}
	}
	if err, open := <-pubErr; open && err != nil {
		t.Fatal(err)
	}
	wireMu.Lock()
	defer wireMu.Unlock()
	var clientLost, brokerLost []string
	dups, brokerDups := 0, 0
	for w := range workers {
		for i := range each {
			p := fmt.Sprintf("%d-%d", w, i)
			switch {
			case app[p] == 0 && wire[p] > 0:
				clientLost = append(clientLost, p)
			case app[p] == 0:
				brokerLost = append(brokerLost, p)
			}
			if extra := app[p] - 1 - resentAfterDone[p]; extra > 0 {
				dups += extra
			}
			brokerDups += resentAfterDone[p]
		}
	}
	t.Logf("%d of %d delivered; sent again by the broker as a new message: %d; lost by the broker: %v", len(app), total, brokerDups, brokerLost)
	if len(clientLost) > 0 {
		t.Errorf("the broker sent %v to the subscriber but the application never got them", clientLost)
	}
	if how == "sigterm" && len(brokerLost) > 0 {
		t.Errorf("after SIGTERM %v were lost", brokerLost)
	}
	if q == client.ExactlyOnce && dups != 0 {
		t.Errorf("QoS 2: the client delivered %d duplicates to the application", dups)
	}
}

// TestBrokerProperties sends MQTT 5.0 publish properties end to end and
// reads the broker's limits from CONNACK.
func TestBrokerProperties(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	url := b.URL(brokertest.MQTT)
	sub, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: "props-sub"}, RequestResponseInfo: true,
		User: []codec.UserProperty{{Key: "app", Value: "tests"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(ctx, 0, nil)
	info, err := sub.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.MaximumQoS != codec.ExactlyOnce || !info.RetainAvailable {
		t.Errorf("Mosquitto's CONNACK limits read as %+v", info)
	}
	s, err := sub.Subscribe(ctx, []string{"props/+"}, client.AtLeastOnce, client.SubscriptionID(42))
	if err != nil {
		t.Fatal(err)
	}
	pub := connect(t, ctx, codec.V5, client.Config{URL: url, ClientID: "props-pub"}).(v5)
	ack, err := pub.Client5.Publish(ctx, "props/a", []byte(`{"n":1}`), client.AtLeastOnce,
		client.ContentType("application/json"), client.ResponseTopic("props/reply"),
		client.CorrelationData([]byte{1, 2, 3}), client.MessageExpiry(60), client.PayloadUTF8(),
		client.UserProperty("k", "v1"), client.UserProperty("k", "v2"), client.UserProperty("other", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != codec.ReasonSuccess {
		t.Errorf("PUBACK reason %v", ack.Code)
	}
	m := next(t, ctx, s)
	p := m.Properties
	if p.ContentType != "application/json" || p.ResponseTopic != "props/reply" || !bytes.Equal(p.CorrelationData, []byte{1, 2, 3}) || p.PayloadFormat != 1 {
		t.Errorf("properties arrived as %+v", p)
	}
	if p.MessageExpiry == 0 || p.MessageExpiry > 60 {
		t.Errorf("message expiry %d, want 1..60", p.MessageExpiry)
	}
	want := []codec.UserProperty{{Key: "k", Value: "v1"}, {Key: "k", Value: "v2"}, {Key: "other", Value: "x"}}
	if fmt.Sprint(p.User) != fmt.Sprint(want) {
		t.Errorf("user properties %v, want %v in order with repeats", p.User, want)
	}
	if len(p.SubscriptionIDs) != 1 || p.SubscriptionIDs[0] != 42 {
		t.Errorf("subscription identifiers %v, want [42]", p.SubscriptionIDs)
	}
	// No subscriber: Mosquitto says so in the PUBACK (0x10).
	ack, err = pub.Client5.Publish(ctx, "nobody/listens", []byte("x"), client.AtLeastOnce)
	if err != nil || ack.Code != codec.ReasonNoMatchingSubscribers {
		t.Errorf("publish to nobody: %v, %v; want reason 0x10", ack.Code, err)
	}
	rtt, err := pub.Ping(ctx)
	if err != nil || rtt <= 0 {
		t.Errorf("Ping = %v, %v", rtt, err)
	}
}
