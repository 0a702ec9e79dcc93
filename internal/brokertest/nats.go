package brokertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/internal/childproc"
)

// NATSInstallHint is the advice given when nats-server cannot be found.
const NATSInstallHint = "nats-server is not installed: install it with `sudo apt-get install -y nats-server` " +
	"(Debian/Ubuntu; .ci/run does this), `brew install nats-server` (macOS), " +
	"or put the nats-server binary (2.9 or later) on PATH"

// ErrNATSNotInstalled is returned by LaunchNATSCluster when the
// nats-server binary is missing.
var ErrNATSNotInstalled = errors.New("brokertest: " + NATSInstallHint)

// NATSCluster is a private cluster of nats-server processes, each with
// JetStream and an MQTT listener, all on 127.0.0.1 with free ports, its
// configuration, log and JetStream store in a temporary directory. Node i
// is named n<i>; the nodes are routed to each other as the cluster
// "zmqtt-test". The package documentation says what the cluster
// guarantees, as measured with nats-server 2.9.10.
type NATSCluster struct {
	bin    string
	dir    string
	ownDir bool
	nodes  []*natsNode
	probes atomic.Uint64 // numbers the client IDs of readiness probes
}

type natsNode struct {
	name  string
	dir   string // config and log
	conf  string
	log   string
	store string // JetStream store_dir

	client, cluster, http, mqtt int // ports

	mu   sync.Mutex
	proc *childproc.Proc // the current process; nil before the first start
}

// NATSBinary returns the path of the nats-server binary, or
// ErrNATSNotInstalled.
func NATSBinary() (string, error) {
	return childproc.Find("nats-server", ErrNATSNotInstalled,
		"/usr/sbin/nats-server", "/usr/local/bin/nats-server", "/opt/homebrew/bin/nats-server")
}

// StartNATSCluster starts a cluster of n nodes for tb and stops it when
// the test ends, logging the end of every node's log if the test failed.
// It fails the test (with NATSInstallHint when nats-server is missing).
func StartNATSCluster(tb testing.TB, n int) *NATSCluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := launchNATS(ctx, n, tb.TempDir())
	if err != nil {
		tb.Fatalf("brokertest: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			for i := range c.nodes {
				tb.Logf("brokertest: end of the log of NATS node %d:\n%s", i, c.LogTail(i, 40))
			}
		}
		if err := c.Close(); err != nil {
			tb.Errorf("brokertest: %v", err)
		}
	})
	return c
}

// LaunchNATSCluster starts a cluster of n nodes in a new temporary
// directory, which Close removes. ctx bounds the start only.
func LaunchNATSCluster(ctx context.Context, n int) (*NATSCluster, error) {
	dir, err := os.MkdirTemp("", "zmqtt-nats-")
	if err != nil {
		return nil, err
	}
	c, err := launchNATS(ctx, n, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.ownDir = true
	return c, nil
}

func launchNATS(ctx context.Context, n int, dir string) (*NATSCluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("a NATS cluster needs at least one node, not %d", n)
	}
	bin, err := NATSBinary()
	if err != nil {
		return nil, err
	}
	c := &NATSCluster{bin: bin, dir: dir}
	for i := range n {
		nd := &natsNode{name: "n" + strconv.Itoa(i), dir: filepath.Join(dir, "n"+strconv.Itoa(i))}
		nd.conf = filepath.Join(nd.dir, "nats.conf")
		nd.log = filepath.Join(nd.dir, "nats.log")
		nd.store = filepath.Join(nd.dir, "store")
		if err := os.MkdirAll(nd.store, 0o700); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	// As for Mosquitto, a free port can be taken by another process before
	// nats-server binds it; the node then exits at once with "address
	// already in use" and the whole cluster is tried again on new ports.
	const attempts = 5
	for try := 1; ; try++ {
		if err := c.pickPorts(); err != nil {
			return nil, err
		}
		for _, nd := range c.nodes {
			if err := c.writeConfig(nd); err != nil {
				return nil, err
			}
		}
		err := c.startAll(ctx)
		if err == nil {
			return c, nil
		}
		clash := c.portClash()
		for _, nd := range c.nodes {
			nd.kill()
		}
		if try == attempts || ctx.Err() != nil || !clash {
			return nil, err
		}
		for _, nd := range c.nodes {
			os.Remove(nd.log)
			os.RemoveAll(nd.store)
			os.MkdirAll(nd.store, 0o700)
		}
	}
}

func (c *NATSCluster) pickPorts() error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	free := func() (int, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	for _, nd := range c.nodes {
		for _, p := range []*int{&nd.client, &nd.cluster, &nd.http, &nd.mqtt} {
			var err error
			if *p, err = free(); err != nil {
				return err
			}
		}
	}
	return nil
}

// portClash reports whether a node's log says it could not bind a port.
func (c *NATSCluster) portClash() bool {
	for _, nd := range c.nodes {
		data, _ := os.ReadFile(nd.log)
		if bytes.Contains(data, []byte("address already in use")) {
			return true
		}
	}
	return false
}

// natsConfig is the configuration of every node. A single node has no
// cluster block: JetStream then runs standalone.
const natsConfig = `# written by zmqtt-go internal/brokertest
server_name: %[1]s
listen: 127.0.0.1:%[2]d
http: 127.0.0.1:%[3]d
jetstream {
  store_dir: %[4]q
  max_memory_store: 256MB
  max_file_store: 1GB
}
mqtt {
  listen: 127.0.0.1:%[5]d
  stream_replicas: %[6]d
}
`

const natsClusterConfig = `cluster {
  name: zmqtt-test
  listen: 127.0.0.1:%d
  routes: [
%s  ]
}
`

func (c *NATSCluster) writeConfig(nd *natsNode) error {
	var w strings.Builder
	fmt.Fprintf(&w, natsConfig, nd.name, nd.client, nd.http, nd.store, nd.mqtt, min(len(c.nodes), 3))
	if len(c.nodes) > 1 {
		var routes strings.Builder
		for _, o := range c.nodes {
			if o != nd {
				fmt.Fprintf(&routes, "    nats-route://127.0.0.1:%d\n", o.cluster)
			}
		}
		fmt.Fprintf(&w, natsClusterConfig, nd.cluster, routes.String())
	}
	return os.WriteFile(nd.conf, []byte(w.String()), 0o600)
}

// startAll starts every node, then waits until all are ready.
func (c *NATSCluster) startAll(ctx context.Context) error {
	for i, nd := range c.nodes {
		if err := nd.start(c.bin); err != nil {
			return fmt.Errorf("NATS node %d: %w", i, err)
		}
	}
	// The first MQTT CONNECT makes node 0 create the MQTT streams; a
	// CONNECT on another node meanwhile can wait 4 s for a stream leader
	// and fail. Then each node's first CONNECT creates its own consumer
	// of the retained messages stream, about half a second: the other
	// nodes are probed at once.
	// Until the meta leader has heard from every node, creating a stream
	// with 3 replicas fails with "no suitable peers for placement".
	if len(c.nodes) > 1 {
		if err := c.waitMeta(ctx); err != nil {
			return err
		}
	}
	if err := c.waitReady(ctx, 0); err != nil {
		return err
	}
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i := 1; i < len(c.nodes); i++ {
		wg.Go(func() { errs[i] = c.waitReady(ctx, i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (nd *natsNode) start(bin string) error {
	p, err := childproc.Start(bin, nd.log, "-c", nd.conf)
	if err != nil {
		return err
	}
	nd.mu.Lock()
	nd.proc = p
	nd.mu.Unlock()
	return nil
}

// current returns the node's current process, nil before the first start.
func (nd *natsNode) current() *childproc.Proc {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.proc
}

func (nd *natsNode) running() bool {
	p := nd.current()
	return p != nil && p.Running()
}

func (nd *natsNode) kill() {
	if p := nd.current(); p != nil {
		p.Kill()
	}
}

// stop sends SIGTERM (nats-server shuts down at once) and waits, killing
// the node after 10 seconds.
func (nd *natsNode) stop() error {
	if p := nd.current(); p != nil && !p.Stop(10*time.Second) {
		return fmt.Errorf("NATS node %s ignored SIGTERM for 10s and was killed", nd.name)
	}
	return nil
}

// waitReady polls node i until its /healthz is ok, it has a route to every
// other running node and it answers an MQTT CONNECT with CONNACK 0.
func (c *NATSCluster) waitReady(ctx context.Context, i int) error {
	nd := c.nodes[i]
	done := nd.current().Done()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer hc.CloseIdleConnections()
	wantRoutes := 0
	for j, o := range c.nodes {
		if j != i && o.running() {
			wantRoutes++
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	stage := "monitoring endpoint"
	var last error
	for {
		err := func() error {
			// Only the server's own JetStream (contact with a meta
			// leader): the full check also wants every stream and
			// consumer replica current, which can take minutes after a
			// restart while another node is down.
			stage = "/healthz"
			if err := natsGet(ctx, hc, nd.http, "/healthz?js-server-only=true", func(body []byte) error {
				var h struct{ Status, Error string }
				if err := json.Unmarshal(body, &h); err != nil {
					return err
				}
				if h.Status != "ok" {
					return fmt.Errorf("%s: %s", h.Status, h.Error)
				}
				return nil
			}); err != nil {
				return err
			}
			stage = "routes"
			if err := natsGet(ctx, hc, nd.http, "/routez", func(body []byte) error {
				var r struct {
					NumRoutes int `json:"num_routes"`
				}
				if err := json.Unmarshal(body, &r); err != nil {
					return err
				}
				if r.NumRoutes < wantRoutes {
					return fmt.Errorf("%d routes of %d", r.NumRoutes, wantRoutes)
				}
				return nil
			}); err != nil {
				return err
			}
			stage = "MQTT CONNECT"
			id := fmt.Sprintf("brokertest-probe-%s-%d", nd.name, c.probes.Add(1))
			return probeMQTT(ctx, c.Addr(i), id)
		}()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-done:
			return fmt.Errorf("NATS node %d exited during start (%v); its log:\n%s", i, nd.processState(), c.LogTail(i, 20))
		case <-ctx.Done():
			return fmt.Errorf("NATS node %d not ready (%s: %v): %w; its log:\n%s", i, stage, last, ctx.Err(), c.LogTail(i, 20))
		case <-tick.C:
		}
	}
}

// waitMeta polls /jsz until a node is the JetStream meta leader and
// reports every other node as a current peer.
func (c *NATSCluster) waitMeta(ctx context.Context) error {
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer hc.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := errors.New("no meta leader")
	for {
		for i, nd := range c.nodes {
			if !nd.running() {
				return fmt.Errorf("NATS node %d exited during start; its log:\n%s", i, c.LogTail(i, 20))
			}
			err := natsGet(ctx, hc, nd.http, "/jsz", func(body []byte) error {
				var j struct {
					Meta *struct {
						Leader   string
						Size     int `json:"cluster_size"`
						Replicas []struct {
							Name    string
							Current bool
						}
					} `json:"meta_cluster"`
				}
				if err := json.Unmarshal(body, &j); err != nil {
					return err
				}
				if j.Meta == nil || j.Meta.Leader != nd.name {
					return errNotLeader
				}
				current := 0
				for _, r := range j.Meta.Replicas {
					if r.Current {
						current++
					}
				}
				if j.Meta.Size != len(c.nodes) || current != len(c.nodes)-1 {
					return fmt.Errorf("meta leader %s: cluster size %d, %d current peers", nd.name, j.Meta.Size, current)
				}
				return nil
			})
			if err == nil {
				return nil
			}
			if !errors.Is(err, errNotLeader) {
				last = err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("NATS cluster: JetStream not ready (%v): %w; the log of node 0:\n%s", last, ctx.Err(), c.LogTail(0, 20))
		case <-tick.C:
		}
	}
}

var errNotLeader = errors.New("not the meta leader")

func (nd *natsNode) processState() *os.ProcessState { return nd.current().State() }

// natsGet fetches a monitoring endpoint and passes its body to check.
func natsGet(ctx context.Context, hc *http.Client, port int, path string, check func([]byte) error) error {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	return check(body)
}

// probeMQTT sends a minimal MQTT 3.1.1 CONNECT (clean session, keep alive
// 60 s, client ID id) and expects CONNACK with return code 0, then
// disconnects.
func probeMQTT(ctx context.Context, addr, id string) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(pctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	dl, _ := pctx.Deadline()
	conn.SetDeadline(dl)
	// Variable header: protocol name "MQTT", level 4, flags 0x02 (clean
	// session), keep alive 60; payload: the client ID.
	body := []byte{0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 60, byte(len(id) >> 8), byte(len(id))}
	body = append(body, id...)
	pkt := append([]byte{0x10, byte(len(body))}, body...) // len(body) < 128
	if _, err := conn.Write(pkt); err != nil {
		return err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return fmt.Errorf("reading CONNACK: %w", err)
	}
	if !bytes.Equal(ack, []byte{0x20, 0x02, 0x00, 0x00}) {
		return fmt.Errorf("CONNACK % x, want 20 02 00 00", ack)
	}
	conn.Write([]byte{0xe0, 0x00}) // DISCONNECT
	return nil
}

// Len returns the number of nodes.
func (c *NATSCluster) Len() int { return len(c.nodes) }

// Addr returns "127.0.0.1:port" of node i's MQTT listener.
func (c *NATSCluster) Addr(i int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.nodes[i].mqtt))
}

// URL returns the mqtt:// URL of node i's MQTT listener.
func (c *NATSCluster) URL(i int) string { return "mqtt://" + c.Addr(i) }

// PID returns the process ID of node i, or 0 while it is not running.
func (c *NATSCluster) PID(i int) int {
	if p := c.nodes[i].current(); p != nil && p.Running() {
		return p.PID()
	}
	return 0
}

// URLs returns the MQTT URLs of all nodes, in node order.
func (c *NATSCluster) URLs() []string {
	us := make([]string, len(c.nodes))
	for i := range c.nodes {
		us[i] = c.URL(i)
	}
	return us
}

// NATSURL returns the nats:// URL of node i's NATS client listener.
func (c *NATSCluster) NATSURL(i int) string {
	return "nats://127.0.0.1:" + strconv.Itoa(c.nodes[i].client)
}

// MonitorURL returns the http:// URL of node i's monitoring endpoint
// (/healthz, /jsz, /routez, ...).
func (c *NATSCluster) MonitorURL(i int) string {
	return "http://127.0.0.1:" + strconv.Itoa(c.nodes[i].http)
}

// Dir returns node i's directory (nats.conf, nats.log and the JetStream
// store).
func (c *NATSCluster) Dir(i int) string { return c.nodes[i].dir }

// Kill stops node i with SIGKILL, as a crash would, and waits for it to
// exit. Its ports and store stay for Restart.
func (c *NATSCluster) Kill(i int) { c.nodes[i].kill() }

// Running reports whether node i's process is alive.
func (c *NATSCluster) Running(i int) bool { return c.nodes[i].running() }

// Restart starts node i again, after Kill (a running node is stopped
// first), on the same ports with the same configuration and store, and
// waits until it is healthy, routed to the other running nodes and
// answers an MQTT CONNECT. ctx bounds the wait.
func (c *NATSCluster) Restart(ctx context.Context, i int) error {
	nd := c.nodes[i]
	if err := nd.stop(); err != nil {
		return err
	}
	if err := nd.start(c.bin); err != nil {
		return fmt.Errorf("NATS node %d: %w", i, err)
	}
	if err := c.waitReady(ctx, i); err != nil {
		nd.kill()
		return err
	}
	return nil
}

// LogTail returns the last n lines of node i's log.
func (c *NATSCluster) LogTail(i, n int) string {
	data, err := os.ReadFile(c.nodes[i].log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		// Once a second per lost route, and at every readiness poll.
		if !strings.Contains(l, "Error trying to connect to route") && !strings.Contains(l, "Healthcheck failed") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close stops every node (SIGTERM, then SIGKILL after 10 seconds) and,
// for a cluster from LaunchNATSCluster, removes its directory. It returns
// an error if a node had to be killed.
func (c *NATSCluster) Close() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, nd := range c.nodes {
		wg.Go(func() { errs[i] = nd.stop() })
	}
	wg.Wait()
	if c.ownDir {
		os.RemoveAll(c.dir)
	}
	return errors.Join(errs...)
}
