package brokertest_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// mqtt311 is a raw MQTT 3.1.1 connection whose methods return errors, so
// that it can be used from goroutines.
type mqtt311 struct {
	conn net.Conn
	r    *codec.Reader
}

// connect311 dials addr and sends CONNECT; it returns the connection and
// the CONNACK. The connection's deadline is ctx's.
func connect311(ctx context.Context, addr, id string, clean bool) (*mqtt311, *codec.Connack, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c := &mqtt311{conn: conn, r: codec.NewReader(conn, 1<<20)}
	if err := c.send(&codec.Connect{CleanStart: clean, KeepAlive: 60, ClientID: id}); err != nil {
		conn.Close()
		return nil, nil, err
	}
	p, err := c.recv()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("waiting for CONNACK: %w", err)
	}
	ca, ok := p.(*codec.Connack)
	if !ok {
		conn.Close()
		return nil, nil, fmt.Errorf("got %T, want CONNACK", p)
	}
	if ca.ReasonCode != codec.ReasonSuccess {
		conn.Close()
		return nil, ca, fmt.Errorf("CONNACK %v", ca.ReasonCode)
	}
	return c, ca, nil
}

// mustConnect311 polls until a CONNECT to addr succeeds or ctx ends: after
// a node is killed, the survivors may stall until their streams have new
// leaders. An attempt waits 6 s, longer than nats-server's 4 s JetStream
// timeout: a CONNECT sent while the previous one with the same client ID
// is pending is refused ("in the process of connecting").
func mustConnect311(t *testing.T, ctx context.Context, addr, id string, clean bool) (*mqtt311, *codec.Connack) {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 6*time.Second)
		c, ca, err := connect311(actx, addr, id, clean)
		cancel()
		if err == nil {
			if dl, ok := ctx.Deadline(); ok {
				c.conn.SetDeadline(dl)
			}
			t.Cleanup(func() { c.conn.Close() })
			return c, ca
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CONNECT %s to %s: %v (%v)", id, addr, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *mqtt311) send(p codec.Packet) error {
	b, err := codec.Append(nil, p, codec.V311)
	if err != nil {
		return err
	}
	_, err = c.conn.Write(b)
	return err
}

func (c *mqtt311) recv() (codec.Packet, error) {
	_, raw, err := c.r.Next()
	if err != nil {
		return nil, err
	}
	p, _, err := codec.Decode(raw, codec.V311)
	if err != nil {
		return nil, err
	}
	return codec.Clone(p), nil
}

// subscribe sends SUBSCRIBE and waits for the SUBACK, returning its codes.
func (c *mqtt311) subscribe(filter string, qos codec.QoS) ([]codec.ReasonCode, error) {
	if err := c.send(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: filter, QoS: qos}}}); err != nil {
		return nil, err
	}
	p, err := c.recv()
	if err != nil {
		return nil, err
	}
	sa, ok := p.(*codec.Suback)
	if !ok {
		return nil, fmt.Errorf("got %T, want SUBACK", p)
	}
	return sa.ReasonCodes, nil
}

// publishQoS1 publishes n messages "<prefix><k>" on topic, pipelined, and
// waits for all PUBACKs.
func (c *mqtt311) publishQoS1(topic, prefix string, n int) error {
	for k := range n {
		p := &codec.Publish{Topic: topic, QoS: codec.AtLeastOnce, PacketID: uint16(k + 1), Payload: fmt.Appendf(nil, "%s%d", prefix, k)}
		if err := c.send(p); err != nil {
			return err
		}
	}
	acked := make(map[uint16]bool)
	for len(acked) < n {
		p, err := c.recv()
		if err != nil {
			return fmt.Errorf("after %d PUBACKs: %w", len(acked), err)
		}
		ack, ok := p.(*codec.Puback)
		if !ok {
			return fmt.Errorf("got %T, want PUBACK", p)
		}
		acked[ack.PacketID] = true
	}
	return nil
}

// receive reads PUBLISH packets, PUBACKing those at QoS 1, until it has n
// distinct payloads starting with prefix; it returns the count of each
// such payload and ignores the others.
func (c *mqtt311) receive(prefix string, n int) (map[string]int, error) {
	got := make(map[string]int)
	for len(got) < n {
		p, err := c.recv()
		if err != nil {
			return got, fmt.Errorf("after %d messages: %w", len(got), err)
		}
		pub, ok := p.(*codec.Publish)
		if !ok {
			continue
		}
		if strings.HasPrefix(string(pub.Payload), prefix) {
			got[string(pub.Payload)]++
		}
		if pub.QoS == codec.AtLeastOnce {
			if err := c.send(&codec.Puback{PacketID: pub.PacketID}); err != nil {
				return got, err
			}
		}
	}
	return got, nil
}

// publishRetry publishes n QoS 1 messages "<prefix><k>" on topic from a
// new connection to addr, and starts again on a new connection until all
// are acknowledged: right after a node is killed, nats-server closes a
// publisher's connection when the messages stream has no leader for 4 s.
func publishRetry(t *testing.T, ctx context.Context, addr, id, topic, prefix string, n int) {
	t.Helper()
	for {
		pub, _ := mustConnect311(t, ctx, addr, id, true)
		err := pub.publishQoS1(topic, prefix, n)
		pub.conn.Close()
		if err == nil {
			return
		}
		t.Logf("publishing on %s: %v; again", addr, err)
		if ctx.Err() != nil {
			t.Fatalf("publishing on %s: %v", addr, ctx.Err())
		}
	}
}

// TestNATSClusterRoutesQoS1 checks that a QoS 1 subscriber with a
// persistent session on node 0 receives, once each, the QoS 1 messages
// published on nodes 1 and 2.
func TestNATSClusterRoutesQoS1(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	c := brokertest.StartNATSCluster(t, 3)
	t.Logf("3-node NATS cluster ready in %v: %v", time.Since(start).Round(time.Millisecond), c.URLs())
	for i, u := range c.URLs() {
		if !strings.HasPrefix(u, "mqtt://127.0.0.1:") || u != c.URL(i) || !c.Running(i) {
			t.Fatalf("node %d: URL %q, running %v", i, u, c.Running(i))
		}
	}

	sub, _ := mustConnect311(t, ctx, c.Addr(0), "sub-n0", false)
	codes, err := sub.subscribe("zmqtt/route/#", codec.AtLeastOnce)
	if err != nil || len(codes) != 1 || codes[0] != codec.ReasonGrantedQoS1 {
		t.Fatalf("SUBACK %v, %v; want granted QoS 1", codes, err)
	}

	const each = 100
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, node := range []int{1, 2} {
		pub, _ := mustConnect311(t, ctx, c.Addr(node), fmt.Sprintf("pub-n%d", node), true)
		wg.Go(func() {
			if err := pub.publishQoS1(fmt.Sprintf("zmqtt/route/n%d", node), fmt.Sprintf("n%d-", node), each); err != nil {
				errs <- fmt.Errorf("publisher on node %d: %w", node, err)
			}
		})
	}
	got, err := sub.receive("n", 2*each)
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, node := range []int{1, 2} {
		for k := range each {
			if m := fmt.Sprintf("n%d-%d", node, k); got[m] != 1 {
				t.Errorf("%s received %d times", m, got[m])
			}
		}
	}
	// Anything beyond the 200 (a duplicate) would come now.
	sub.send(&codec.Pingreq{})
	for {
		p, err := sub.recv()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.(*codec.Pingresp); ok {
			break
		}
		t.Errorf("after the 200 messages: %v", p)
	}
}

// TestNATSClusterKillRestart kills node 0 with SIGKILL and checks that
// nodes 1 and 2 still accept MQTT clients and route between them, and
// that node 0 answers again after Restart, on the same port.
func TestNATSClusterKillRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := brokertest.StartNATSCluster(t, 3)
	url0 := c.URL(0)

	c.Kill(0)
	if c.Running(0) {
		t.Fatal("node 0 running after Kill")
	}
	killed := time.Now()
	sub, _ := mustConnect311(t, ctx, c.Addr(1), "sub-n1", false)
	// The subscription is a JetStream consumer of the messages stream:
	// while that stream elects a new leader, SUBACK says 0x80 after 4 s.
	for {
		codes, err := sub.subscribe("zmqtt/kill/#", codec.AtLeastOnce)
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) == 1 && codes[0] == codec.ReasonGrantedQoS1 {
			break
		}
		t.Logf("SUBACK %v; again", codes)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	publishRetry(t, ctx, c.Addr(2), "pub-n2", "zmqtt/kill/n2", "n2-", 10)
	t.Logf("node 0 killed: subscribed on node 1 and published on node 2 after %v", time.Since(killed).Round(time.Millisecond))
	if got, err := sub.receive("n2-", 10); err != nil {
		t.Fatalf("subscriber on node 1 after kill: %v (%v)", err, got)
	}

	restart := time.Now()
	if err := c.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("node 0 restarted in %v", time.Since(restart).Round(time.Millisecond))
	if !c.Running(0) || c.URL(0) != url0 {
		t.Fatalf("after Restart: running %v, URL %s (was %s)", c.Running(0), c.URL(0), url0)
	}
	publishRetry(t, ctx, c.Addr(0), "pub-n0", "zmqtt/kill/n0", "n0-", 10)
	if got, err := sub.receive("n0-", 10); err != nil {
		t.Fatalf("subscriber on node 1, from restarted node 0: %v (%v)", err, got)
	}
}

// TestNATSClusterSessionMovesAfterKill checks that sessions are
// cluster-wide: a client with clean session false, whose node is killed
// while it is away, resumes its session on another node and gets the
// QoS 1 message queued meanwhile.
func TestNATSClusterSessionMovesAfterKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := brokertest.StartNATSCluster(t, 3)

	sub, _ := mustConnect311(t, ctx, c.Addr(0), "roamer", false)
	if codes, err := sub.subscribe("zmqtt/roam", codec.AtLeastOnce); err != nil || len(codes) != 1 || codes[0] != codec.ReasonGrantedQoS1 {
		t.Fatalf("SUBACK %v, %v", codes, err)
	}
	sub.send(&codec.Disconnect{})
	sub.conn.Close()

	pub, _ := mustConnect311(t, ctx, c.Addr(1), "pub-n1", true)
	if err := pub.publishQoS1("zmqtt/roam", "queued-", 1); err != nil {
		t.Fatal(err)
	}
	c.Kill(0)
	sub, ca := mustConnect311(t, ctx, c.Addr(2), "roamer", false)
	if !ca.SessionPresent {
		t.Fatal("session not present on node 2 after node 0 was killed")
	}
	if got, err := sub.receive("queued-", 1); err != nil || got["queued-0"] != 1 {
		t.Fatalf("queued message: %v, %v", got, err)
	}
}
