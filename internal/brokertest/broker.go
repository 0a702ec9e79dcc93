// Package brokertest runs a private Mosquitto broker for tests, benchmarks
// and the demo: a child process on 127.0.0.1 with free ports and a config
// file written to a temporary directory, never the system service.
//
// Every broker has a Unix socket listener (UnixURL) and seven TCP listeners,
// named by the Listener constants: plain
// MQTT, TLS, TLS requiring a client certificate, TLS with an expired server
// certificate, TLS with a certificate for another host name, WebSocket and
// WebSocket over TLS. The certificates are generated at start with
// crypto/x509 (see CAFile, ClientCertFile, TLSConfig). Config adds users
// (a password file in Mosquitto's PBKDF2-SHA512 format), an ACL and
// persistence that saves every change, for kill -9 tests.
//
// Start is for tests: it fails the test, with an install hint when
// mosquitto is missing, and stops the broker at cleanup. Launch is for
// programs (the demo) and returns errors instead.
//
// # NATS cluster
//
// StartNATSCluster (LaunchNATSCluster for programs) runs n nats-server
// nodes, each with JetStream, its own store and an MQTT listener, routed
// to each other. Measured with nats-server 2.9.10 and three nodes:
//
//   - A start takes 1 to 3.5 seconds. It returns when the JetStream meta
//     leader counts every node as a current peer and every node answers an
//     MQTT 3.1.1 CONNECT with CONNACK 0. The first CONNECT makes
//     nats-server create its MQTT streams ($MQTT_sess, $MQTT_msgs,
//     $MQTT_rmsgs); a CONNECT made before the meta leader knows every node
//     fails ("no suitable peers for placement") and the client sees its
//     connection closed without CONNACK.
//   - The streams have 3 replicas (min(n, 3)), set with mqtt {
//     stream_replicas }; consumers inherit it. Left to itself, nats-server
//     2.9 takes the number of addresses in the node's own routes list, 2
//     here, and a stream with 2 replicas stalls when one node dies ("has NO
//     quorum"). A QoS 1 subscription is a durable JetStream consumer.
//   - A QoS 1 subscriber on one node receives the QoS 1 messages published
//     on the other nodes, each once (200 of 200, no duplicate). A retained
//     message published on one node reaches a subscriber on another.
//   - Sessions are cluster-wide: a client with clean session false that
//     connects to another node with the same client ID gets session
//     present and the QoS 1 messages queued while it was away, also after
//     its first node was killed. A second connection with the same client
//     ID on another node takes over, and the first is closed at once.
//   - After Kill of one node, the two others keep quorum and keep working,
//     but every raft group (the meta group, each stream, each consumer)
//     whose leader was on the killed node first elects a new one. Until
//     then, 0 to 30 seconds (mostly 4 to 13), on the survivors a CONNECT
//     gets no CONNACK and is closed after 4 s, a QoS 1 SUBSCRIBE gets
//     SUBACK 0x80 after 4 s, and a QoS 1 PUBLISH gets no PUBACK and its
//     connection is closed after 4 s. A CONNECT sent while an earlier one
//     with the same client ID is pending is refused. Clients must retry
//     with a deadline. Connected subscribers on the survivors stay
//     connected and receive what is published once it gets through.
//   - Restart of the killed node, on the same ports and store, answers a
//     CONNECT again within 0.5 to 2 seconds. With two nodes killed, the
//     last one closes every CONNECT after 4 s without CONNACK; restarting
//     one of the two brings service back in about 10 seconds.
//   - nats-server 2.9 speaks MQTT 3.1.1 only: an MQTT 5.0 CONNECT gets
//     CONNACK 0x01 (unacceptable protocol version). QoS 2 is not
//     supported: a SUBSCRIBE at QoS 2 is granted QoS 1, and a PUBLISH at
//     QoS 2 closes the connection.
package brokertest

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Listener names one of the broker's listeners.
type Listener string

// The listeners of every broker. URL gives the URL of each.
const (
	MQTT      Listener = "mqtt"      // plain TCP
	MQTTS     Listener = "mqtts"     // TLS, client certificate optional
	MutualTLS Listener = "mtls"      // TLS, client certificate required
	Expired   Listener = "expired"   // TLS whose server certificate expired yesterday
	WrongName Listener = "wrongname" // TLS whose certificate names only wrong.example
	WS        Listener = "ws"        // WebSocket
	WSS       Listener = "wss"       // WebSocket over TLS
)

var listeners = []Listener{MQTT, MQTTS, MutualTLS, Expired, WrongName, WS, WSS}

// InstallHint is the advice given when mosquitto cannot be found.
const InstallHint = "mosquitto is not installed: install it with `sudo apt-get install -y mosquitto` " +
	"(Debian/Ubuntu; `make demo` and .ci/run do this), `brew install mosquitto` (macOS), " +
	"or put the mosquitto binary on PATH"

// ErrNotInstalled is returned by Launch when the mosquitto binary is missing.
var ErrNotInstalled = errors.New("brokertest: " + InstallHint)

// Config chooses the optional parts of a broker.
type Config struct {
	// Users maps user names to passwords. When non-empty, anonymous
	// clients are refused.
	Users map[string]string
	// ACL is the content of an ACL file (Mosquitto syntax); empty means
	// no ACL.
	ACL string
	// Persistence keeps sessions and messages on disk in the broker's
	// directory, saving on every change, so they survive kill -9.
	Persistence bool
	// Extra lines appended to the global section of the config file.
	Extra []string
	// Verbose logs every packet (log_type all) to the broker log.
	Verbose bool
}

// Broker is a running (or stopped) private Mosquitto.
type Broker struct {
	cfg   Config
	dir   string
	conf  string
	log   string
	bin   string
	ports map[Listener]int
	pki   *pki
	sock  string // Unix socket path, in a short directory of its own

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	ownDir bool
}

// Start starts a broker for tb and stops it when the test ends. It fails
// the test (with InstallHint when mosquitto is missing, with the end of
// the broker's log when it does not come up).
func Start(tb testing.TB, cfg ...Config) *Broker {
	tb.Helper()
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := launch(ctx, c, tb.TempDir())
	if err != nil {
		tb.Fatalf("brokertest: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("brokertest: end of the broker log:\n%s", b.LogTail(40))
		}
		if err := b.Close(); err != nil {
			tb.Errorf("brokertest: %v", err)
		}
	})
	return b
}

// Launch starts a broker in a new temporary directory, which Close
// removes. ctx bounds the start only.
func Launch(ctx context.Context, cfg Config) (*Broker, error) {
	dir, err := os.MkdirTemp("", "zmqtt-broker-")
	if err != nil {
		return nil, err
	}
	b, err := launch(ctx, cfg, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b.ownDir = true
	return b, nil
}

// Binary returns the path of the mosquitto binary, or ErrNotInstalled.
func Binary() (string, error) {
	return findBinary("mosquitto", ErrNotInstalled,
		"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
}

// findBinary looks name up on PATH, then at the given paths (sbin
// directories are often not on a user's PATH); it returns missing when
// none has it.
func findBinary(name string, missing error, paths ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", missing
}

func launch(ctx context.Context, cfg Config, dir string) (*Broker, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, dir: dir, bin: bin, ports: map[Listener]int{},
		conf: filepath.Join(dir, "mosquitto.conf"), log: filepath.Join(dir, "mosquitto.log")}
	if b.pki, err = newPKI(dir); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	// sun_path holds about 100 bytes: a test's TempDir can be longer.
	sockDir, err := os.MkdirTemp("", "zmqtt-sock-")
	if err != nil {
		return nil, err
	}
	b.sock = filepath.Join(sockDir, "mqtt.sock")
	// The free ports are found by listening on port 0 and closing the
	// listener; another process (a client's ephemeral port, a broker of a
	// parallel test) can take one before Mosquitto binds it. Mosquitto
	// then exits at once, and a new set of ports is tried.
	const attempts = 5
	for i := 1; ; i++ {
		if err := b.pickPorts(); err != nil {
			return nil, err
		}
		if err := b.writeConfig(); err != nil {
			return nil, err
		}
		err := b.start(ctx)
		if err == nil {
			return b, nil
		}
		if i == attempts || ctx.Err() != nil || !b.portClash() {
			return nil, err
		}
		os.Remove(b.log)
	}
}

// portClash reports whether the broker's log says a listener could not
// bind its port.
func (b *Broker) portClash() bool {
	data, _ := os.ReadFile(b.log)
	log := string(data)
	return strings.Contains(log, "Address already in use") ||
		strings.Contains(log, "Unable to create websockets listener")
}

func (b *Broker) pickPorts() error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, name := range listeners {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		b.ports[name] = l.Addr().(*net.TCPAddr).Port
	}
	return nil
}

func (b *Broker) writeConfig() error {
	var w strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	line("# written by zmqtt-go internal/brokertest")
	if os.Geteuid() == 0 {
		line("user root") // do not drop to the mosquitto user: it cannot read the temp dir
	}
	line("per_listener_settings false")
	line("log_dest file %s", b.log)
	if b.cfg.Verbose {
		line("log_type all")
	} else {
		line("log_type error")
		line("log_type warning")
		line("log_type notice")
		line("log_type information")
	}
	line("connection_messages true")
	line("set_tcp_nodelay true")
	line("max_queued_messages 100000")
	if len(b.cfg.Users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		if err := writePasswords(pw, b.cfg.Users); err != nil {
			return err
		}
		line("allow_anonymous false")
		line("password_file %s", pw)
	} else {
		line("allow_anonymous true")
	}
	if b.cfg.ACL != "" {
		acl := filepath.Join(b.dir, "acl")
		if err := os.WriteFile(acl, []byte(b.cfg.ACL), 0o600); err != nil {
			return err
		}
		line("acl_file %s", acl)
	}
	if b.cfg.Persistence {
		line("persistence true")
		line("persistence_location %s/", b.dir)
		line("autosave_on_changes true")
		line("autosave_interval 1")
	} else {
		line("persistence false")
	}
	for _, e := range b.cfg.Extra {
		line("%s", e)
	}
	p := b.pki
	tlsListener := func(name Listener, cert, key string, requireCert bool, ws bool) {
		line("")
		line("listener %d 127.0.0.1", b.ports[name])
		if ws {
			line("protocol websockets")
		}
		line("cafile %s", p.caFile)
		line("certfile %s", cert)
		line("keyfile %s", key)
		line("require_certificate %t", requireCert)
	}
	line("")
	line("listener %d 127.0.0.1", b.ports[MQTT])
	tlsListener(MQTTS, p.serverCert, p.serverKey, false, false)
	tlsListener(MutualTLS, p.serverCert, p.serverKey, true, false)
	tlsListener(Expired, p.expiredCert, p.expiredKey, false, false)
	tlsListener(WrongName, p.wrongNameCert, p.wrongNameKey, false, false)
	line("")
	line("listener %d 127.0.0.1", b.ports[WS])
	line("protocol websockets")
	tlsListener(WSS, p.serverCert, p.serverKey, false, true)
	line("")
	line("listener 0 %s", b.sock)
	return os.WriteFile(b.conf, []byte(w.String()), 0o600)
}

// writePasswords writes a Mosquitto 2.0 password file: one line per user,
// user:$7$<iterations>$<salt>$<hash>, where hash is PBKDF2 with
// HMAC-SHA512 over the password, base64 encoded.
func writePasswords(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var w bytes.Buffer
	const iter = 101
	for _, u := range names {
		salt := make([]byte, 12)
		rand.Read(salt)
		hash, err := pbkdf2.Key(sha512.New, users[u], salt, iter, sha512.Size)
		if err != nil {
			return err
		}
		fmt.Fprintf(&w, "%s:$7$%d$%s$%s\n", u, iter, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(hash))
	}
	return os.WriteFile(path, w.Bytes(), 0o600)
}

// start runs mosquitto and waits until every listener accepts.
func (b *Broker) start(ctx context.Context) error {
	logf, err := os.OpenFile(b.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", b.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, name := range listeners {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.ports[name]))
		for {
			var d net.Dialer
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			c, err := d.DialContext(dctx, "tcp", addr)
			cancel()
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				return fmt.Errorf("mosquitto exited during start (%v); its log:\n%s", cmd.ProcessState, b.LogTail(20))
			case <-ctx.Done():
				b.kill()
				return fmt.Errorf("mosquitto did not open listener %s (%s): %w; its log:\n%s", name, addr, ctx.Err(), b.LogTail(20))
			case <-tick.C:
			}
		}
	}
	for {
		c, err := net.Dial("unix", b.sock)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("mosquitto exited during start (%v); its log:\n%s", cmd.ProcessState, b.LogTail(20))
		case <-ctx.Done():
			b.kill()
			return fmt.Errorf("mosquitto did not open its unix socket %s: %w", b.sock, ctx.Err())
		case <-tick.C:
		}
	}
}

func (b *Broker) kill() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Kill stops the broker with SIGKILL, as a crash would: no state is saved
// beyond what persistence has already written. The ports stay reserved for
// Restart.
func (b *Broker) Kill() {
	b.kill()
}

// Stop stops the broker with SIGTERM (Mosquitto saves its state) and waits
// for it to exit, killing it after 10 seconds. It returns an error if the
// broker had to be killed.
func (b *Broker) Stop() error {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		b.kill()
		return errors.New("mosquitto ignored SIGTERM for 10s and was killed")
	}
}

// Restart starts the broker again, after Kill or Stop, on the same ports
// with the same configuration and directory. ctx bounds the start.
func (b *Broker) Restart(ctx context.Context) error {
	if err := b.Stop(); err != nil {
		return err
	}
	return b.start(ctx)
}

// PID returns the process id of the running broker, or 0 when it is not
// running.
func (b *Broker) PID() int {
	if !b.Running() {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd.Process.Pid
}

// Running reports whether the broker process is alive.
func (b *Broker) Running() bool {
	b.mu.Lock()
	done := b.done
	b.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Close stops the broker (SIGTERM, then SIGKILL) and, for a broker from
// Launch, removes its directory.
func (b *Broker) Close() error {
	err := b.Stop()
	os.RemoveAll(filepath.Dir(b.sock))
	if b.ownDir {
		os.RemoveAll(b.dir)
	}
	return err
}

// Port returns the TCP port of a listener.
func (b *Broker) Port(l Listener) int { return b.ports[l] }

// Addr returns "127.0.0.1:port" of a listener.
func (b *Broker) Addr(l Listener) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.ports[l]))
}

// URL returns the URL that reaches a listener, for transport.Dial: mqtt://
// for MQTT, mqtts:// for the four TLS listeners, ws:// and wss://. The host
// is 127.0.0.1, which the valid server certificate names.
func (b *Broker) URL(l Listener) string {
	scheme := "mqtts"
	switch l {
	case MQTT:
		scheme = "mqtt"
	case WS:
		scheme = "ws"
	case WSS:
		scheme = "wss"
	}
	u := scheme + "://" + b.Addr(l)
	if l == WS || l == WSS {
		u += "/mqtt"
	}
	return u
}

// UnixURL returns the unix:// URL of the broker's Unix socket listener.
func (b *Broker) UnixURL() string { return "unix://" + b.sock }

// TLSConfig returns a client config that trusts the broker's CA (and so
// its valid certificates) and presents no client certificate.
func (b *Broker) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: b.pki.roots, MinVersion: tls.VersionTLS12}
}

// ClientTLSConfig is TLSConfig plus the client certificate that the
// MutualTLS listener accepts.
func (b *Broker) ClientTLSConfig() *tls.Config {
	c := b.TLSConfig()
	c.Certificates = []tls.Certificate{b.pki.clientPair}
	return c
}

// UntrustedClientTLSConfig is TLSConfig plus a client certificate issued
// by another CA, which the MutualTLS listener refuses.
func (b *Broker) UntrustedClientTLSConfig() *tls.Config {
	c := b.TLSConfig()
	c.Certificates = []tls.Certificate{b.pki.untrustedPair}
	return c
}

// CAFile returns the path of the CA certificate (PEM).
func (b *Broker) CAFile() string { return b.pki.caFile }

// ClientCertFile returns the path of the client certificate (PEM).
func (b *Broker) ClientCertFile() string { return b.pki.clientCert }

// ClientKeyFile returns the path of the client certificate's key (PEM).
func (b *Broker) ClientKeyFile() string { return b.pki.clientKey }

// Dir returns the broker's directory (config, log, certificates,
// persistence).
func (b *Broker) Dir() string { return b.dir }

// LogTail returns the last n lines of the broker's log.
func (b *Broker) LogTail(n int) string {
	data, err := os.ReadFile(b.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.Contains(l, "Saving in-memory database") { // one per change with Persistence
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
