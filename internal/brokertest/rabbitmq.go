package brokertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/internal/childproc"
)

// RabbitMQInstallHint is the advice given when rabbitmq-server cannot be
// found.
const RabbitMQInstallHint = "rabbitmq-server is not installed: install it with `sudo apt-get install -y rabbitmq-server` " +
	"(Debian/Ubuntu; .ci/run does this) or `brew install rabbitmq` (macOS); the MQTT plugin ships with it"

// ErrRabbitMQNotInstalled is returned by LaunchRabbitMQ when the
// rabbitmq-server script or epmd is missing.
var ErrRabbitMQNotInstalled = errors.New("brokertest: " + RabbitMQInstallHint)

// RabbitMQ is a private RabbitMQ node with the MQTT plugin: its own
// Erlang port mapper (epmd) on a free port, its own node name, Mnesia
// directory, logs, configuration and Erlang cookie (HOME) in a temporary
// directory, listening on 127.0.0.1 only (AMQP and MQTT on free ports, the
// Erlang distribution on a free port). It never talks to a system RabbitMQ
// or to the system epmd on 4369. Anonymous MQTT clients are allowed (as
// the default user guest, which RabbitMQ accepts on loopback).
//
// A start takes 10 to 25 seconds (RabbitMQ 3.10 waits for cluster peers
// of the MQTT plugin's Raft group before it elects itself): start one node
// per test binary.
type RabbitMQ struct {
	dir  string
	mqtt int
	amqp int

	ownDir bool
	mu     sync.Mutex
	epmd   *exec.Cmd
	node   *exec.Cmd
	done   chan struct{} // closed when the node's process has exited
	edone  chan struct{}
	log    string
}

// RabbitMQBinary returns the path of the rabbitmq-server script (the one
// that runs the node in the foreground as the calling user, not the
// /usr/sbin wrapper that switches to the rabbitmq user), or
// ErrRabbitMQNotInstalled.
func RabbitMQBinary() (string, error) {
	if p, err := exec.LookPath("rabbitmq-server"); err == nil && !strings.HasPrefix(p, "/usr/sbin/") {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server")
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && !fi.IsDir() {
			return m, nil
		}
	}
	for _, p := range []string{"/opt/homebrew/sbin/rabbitmq-server", "/usr/local/sbin/rabbitmq-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrRabbitMQNotInstalled
}

// StartRabbitMQ starts a node for tb and stops it when the test ends,
// logging the end of its log if the test failed. It fails the test with
// RabbitMQInstallHint when RabbitMQ is missing.
func StartRabbitMQ(tb testing.TB) *RabbitMQ {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := launchRabbitMQ(ctx, tb.TempDir())
	if err != nil {
		tb.Fatalf("brokertest: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("brokertest: end of the RabbitMQ log:\n%s", r.LogTail(40))
		}
		if err := r.Close(); err != nil {
			tb.Errorf("brokertest: %v", err)
		}
	})
	return r
}

// LaunchRabbitMQ starts a node in a new temporary directory, which Close
// removes; for a TestMain that shares one node among the tests of a
// binary. ctx bounds the start only.
func LaunchRabbitMQ(ctx context.Context) (*RabbitMQ, error) {
	dir, err := os.MkdirTemp("", "zmqtt-rabbitmq-")
	if err != nil {
		return nil, err
	}
	r, err := launchRabbitMQ(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r.ownDir = true
	return r, nil
}

func launchRabbitMQ(ctx context.Context, dir string) (*RabbitMQ, error) {
	bin, err := RabbitMQBinary()
	if err != nil {
		return nil, err
	}
	epmdBin, err := exec.LookPath("epmd")
	if err != nil {
		return nil, fmt.Errorf("%w (epmd, from the Erlang runtime, is missing)", ErrRabbitMQNotInstalled)
	}
	for _, d := range []string{"mnesia", "log", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	epmdPort, dist := ports[0], ports[1]
	r := &RabbitMQ{dir: dir, amqp: ports[2], mqtt: ports[3], log: filepath.Join(dir, "node.log")}
	conf := fmt.Sprintf(`# written by zmqtt-go internal/brokertest
listeners.tcp.default = 127.0.0.1:%d
mqtt.listeners.tcp.default = 127.0.0.1:%d
mqtt.allow_anonymous = true
loopback_users.guest = true
log.console = false
log.file.level = info
`, r.amqp, r.mqtt)
	files := map[string]string{
		"rabbitmq.conf":     conf,
		"enabled_plugins":   "[rabbitmq_mqtt].\n",
		"rabbitmq-env.conf": "# empty: the system's /etc/rabbitmq/rabbitmq-env.conf is not read\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}

	// A private epmd, in the foreground so that it is our child and is
	// stopped by its process id.
	elog, err := os.Create(filepath.Join(dir, "epmd.log"))
	if err != nil {
		return nil, err
	}
	epmd := exec.Command(epmdBin, "-port", strconv.Itoa(epmdPort))
	epmd.Env = append(os.Environ(), "ERL_EPMD_ADDRESS=127.0.0.1")
	epmd.Stdout, epmd.Stderr = elog, elog
	epmd.SysProcAttr = childproc.GroupAttr()
	if err := epmd.Start(); err != nil {
		elog.Close()
		return nil, fmt.Errorf("starting epmd: %w", err)
	}
	r.epmd, r.edone = epmd, make(chan struct{})
	go func() { epmd.Wait(); elog.Close(); close(r.edone) }()

	nlog, err := os.Create(r.log)
	if err != nil {
		r.Close()
		return nil, err
	}
	node := exec.Command(bin)
	node.Dir = dir
	node.Env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"), // the Erlang cookie goes there
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME=zmqtt"+strconv.Itoa(os.Getpid())+"x"+strconv.Itoa(r.mqtt)+"@localhost",
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(dir, "plugins-expand"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "node.pid"),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		// Our epmd is running: the node must not start (or look for) one
		// of its own; and the distribution listens on loopback only.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
	)
	node.Stdout, node.Stderr = nlog, nlog
	node.SysProcAttr = childproc.GroupAttr()
	if err := node.Start(); err != nil {
		nlog.Close()
		r.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	r.mu.Lock()
	r.node, r.done = node, make(chan struct{})
	r.mu.Unlock()
	go func() { node.Wait(); nlog.Close(); close(r.done) }()

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for n := 0; ; n++ {
		if last = probeMQTT(ctx, r.Addr(), "brokertest-probe-"+strconv.Itoa(n)); last == nil {
			return r, nil
		}
		select {
		case <-r.done:
			err := fmt.Errorf("RabbitMQ exited during start; its output:\n%s", r.LogTail(30))
			r.Close()
			return nil, err
		case <-ctx.Done():
			err := fmt.Errorf("RabbitMQ not ready (%v): %w; its output:\n%s", last, ctx.Err(), r.LogTail(30))
			r.Close()
			return nil, err
		case <-tick.C:
		}
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Addr returns "127.0.0.1:port" of the MQTT listener.
func (r *RabbitMQ) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.mqtt)) }

// URL returns the mqtt:// URL of the MQTT listener.
func (r *RabbitMQ) URL() string { return "mqtt://" + r.Addr() }

// Dir returns the node's directory (configuration, Mnesia, logs).
func (r *RabbitMQ) Dir() string { return r.dir }

// LogTail returns the last n lines of the node's log file (or of its
// standard output when the log file does not exist yet).
func (r *RabbitMQ) LogTail(n int) string {
	matches, _ := filepath.Glob(filepath.Join(r.dir, "log", "*.log"))
	path := r.log
	for _, m := range matches {
		if !strings.HasSuffix(m, "_upgrade.log") {
			path = m
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close stops the node (SIGTERM to its process group: the start script
// stops the Erlang VM; SIGKILL after 20 seconds), then its epmd, and for
// a node from LaunchRabbitMQ removes its directory. It returns an error
// if the node had to be killed.
func (r *RabbitMQ) Close() error {
	var err error
	r.mu.Lock()
	node, done := r.node, r.done
	r.node = nil
	r.mu.Unlock()
	if node != nil {
		pgid := node.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(20 * time.Second)
		select {
		case <-done:
		case <-t.C:
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
			err = errors.New("RabbitMQ ignored SIGTERM for 20s and was killed")
		}
		t.Stop()
		// The VM's helpers (erl_child_setup, inet_gethost) are in the
		// group too; they exit with the VM, and a SIGKILL makes sure.
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if r.epmd != nil {
		syscall.Kill(-r.epmd.Process.Pid, syscall.SIGKILL)
		<-r.edone
		r.epmd = nil
	}
	if r.ownDir {
		os.RemoveAll(r.dir)
	}
	return err
}
