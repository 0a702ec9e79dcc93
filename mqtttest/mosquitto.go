package mqtttest

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
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/internal/childproc"
)

// Listener names one of a broker's listeners. URL, Addr and Port take one.
type Listener string

// The listeners every broker opens.
const (
	TCP          Listener = "mqtt"      // plain MQTT over TCP
	TLS          Listener = "mqtts"     // TLS, client certificate optional
	MutualTLS    Listener = "mtls"      // TLS, client certificate required
	WebSocket    Listener = "ws"        // MQTT over WebSocket
	WebSocketTLS Listener = "wss"       // MQTT over WebSocket over TLS
	Unix         Listener = "unix"      // Unix domain socket
	ExpiredTLS   Listener = "expired"   // TLS whose server certificate expired yesterday
	WrongHostTLS Listener = "wronghost" // TLS whose server certificate names only wrong.example
)

// tcpListeners are the listeners with a TCP port, in the order of the
// config file.
var tcpListeners = []Listener{TCP, TLS, MutualTLS, ExpiredTLS, WrongHostTLS, WebSocket, WebSocketTLS}

// InstallHint says how to install Mosquitto; it is part of the error when
// the binary cannot be found.
const InstallHint = "mosquitto is not installed: install it with `sudo apt-get install mosquitto` " +
	"(Debian, Ubuntu), `brew install mosquitto` (macOS), or put the mosquitto binary on PATH"

// ErrNotInstalled is the error, matched with errors.Is, of Binary, Launch
// and StartMosquitto when the mosquitto binary cannot be found.
var ErrNotInstalled = errors.New("mqtttest: " + InstallHint)

// startTimeout bounds StartMosquitto's start: Mosquitto opens its
// listeners in milliseconds, the rest is margin for a loaded machine.
const startTimeout = 30 * time.Second

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// Option chooses an optional part of a broker.
type Option func(*config)

type config struct {
	users       map[string]string
	acl         string
	persistence bool
	lines       []string
	verbose     bool
	binary      string
}

// WithUsers makes the broker require a user name and password: users maps
// each user name to its password (written to a password file in
// Mosquitto's PBKDF2-SHA512 format). Anonymous clients are refused. An
// empty map leaves anonymous access on.
func WithUsers(users map[string]string) Option {
	users = maps.Clone(users)
	return func(c *config) { c.users = users }
}

// WithACL gives the broker an access control list, in the syntax of
// Mosquitto's acl_file ("user alice\ntopic readwrite #\n"). Empty means no
// ACL: every client may use every topic.
func WithACL(acl string) Option {
	return func(c *config) { c.acl = acl }
}

// WithPersistence keeps sessions, subscriptions, queued and retained
// messages on disk in the broker's directory, saved on every change, so
// they survive Restart, Stop and even Kill. Without it a restarted broker
// starts empty.
func WithPersistence() Option {
	return func(c *config) { c.persistence = true }
}

// WithConfigLines appends lines to the global section of the broker's
// configuration file, for any Mosquitto option the kit does not set, such
// as "max_packet_size 2048" or "max_inflight_messages 10". The listeners
// are the kit's own and cannot be changed this way. A line Mosquitto does
// not accept makes the start fail with the broker's log in the error.
func WithConfigLines(lines ...string) Option {
	lines = slices.Clone(lines)
	return func(c *config) { c.lines = append(c.lines, lines...) }
}

// WithVerboseLog makes the broker log every packet it sends and receives
// (log_type all), for LogTail and for the log shown when a test fails.
func WithVerboseLog() Option {
	return func(c *config) { c.verbose = true }
}

// WithBinary runs the given mosquitto binary instead of looking for one:
// a path, or a name looked up on PATH. When it does not exist or is not
// executable, the start fails with an error matching ErrNotInstalled.
func WithBinary(path string) Option {
	return func(c *config) { c.binary = path }
}

// Broker is a private Mosquitto, running or stopped. Its methods are safe
// for concurrent use.
type Broker struct {
	cfg   config
	dir   string
	conf  string
	log   string
	bin   string
	ports map[Listener]int
	pki   *pki
	sock  string // Unix socket path, in a short directory of its own

	life   sync.Mutex // serialises Stop, Kill, Restart and Close
	closed bool       // under life

	mu     sync.Mutex
	proc   *childproc.Proc // the current process; nil before the first start
	ownDir bool
}

// StartMosquitto starts a broker for the test tb and stops it in
// tb.Cleanup. It fails the test with tb.Fatalf when the broker cannot
// start: with InstallHint when mosquitto is missing, with the end of the
// broker's log when Mosquitto refuses its configuration or does not open
// its listeners within 30 seconds. When the test has failed, the cleanup
// logs the last 40 lines of the broker's log.
func StartMosquitto(tb testing.TB, opts ...Option) *Broker {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	b, err := launch(ctx, opts, tb.TempDir())
	if err != nil {
		tb.Fatalf("%v", err)
		return nil // a testing.TB whose Fatalf returns
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("mqtttest: end of the broker log:\n%s", b.LogTail(40))
		}
		if err := b.Close(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return b
}

// Launch starts a broker in a new temporary directory, for code that has
// no testing.TB: an Example, TestMain, a program. ctx bounds the start
// only. The caller must call Close, which stops the broker and removes the
// directory. The error matches ErrNotInstalled when mosquitto is missing;
// otherwise it says why the broker did not start, with the end of its log.
func Launch(ctx context.Context, opts ...Option) (*Broker, error) {
	dir, err := os.MkdirTemp("", "mqtttest-")
	if err != nil {
		return nil, fmt.Errorf("mqtttest: %w", err)
	}
	b, err := launch(ctx, opts, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b.ownDir = true
	return b, nil
}

// Binary returns the path of the mosquitto binary: the one on PATH, else
// the first of /usr/sbin/mosquitto, /usr/local/sbin/mosquitto and
// /opt/homebrew/sbin/mosquitto that exists (sbin directories are often not
// on a user's PATH). It returns ErrNotInstalled when there is none.
func Binary() (string, error) {
	return childproc.Find("mosquitto", ErrNotInstalled,
		"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
}

func launch(ctx context.Context, opts []Option, dir string) (*Broker, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	bin, err := Binary()
	if cfg.binary != "" {
		if bin, err = exec.LookPath(cfg.binary); err != nil {
			var ee *exec.Error
			if errors.As(err, &ee) && strings.ContainsRune(cfg.binary, filepath.Separator) {
				err = ee.Err // "stat /path: no such file or directory" names the path once
			}
			err = fmt.Errorf("%w (WithBinary: %v)", ErrNotInstalled, err)
		}
	}
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, dir: dir, bin: bin, ports: map[Listener]int{},
		conf: filepath.Join(dir, "mosquitto.conf"), log: filepath.Join(dir, "mosquitto.log")}
	if b.pki, err = newPKI(dir); err != nil {
		return nil, fmt.Errorf("mqtttest: generating certificates: %w", err)
	}
	// sun_path holds about 100 bytes: a test's TempDir can be longer.
	sockDir, err := os.MkdirTemp("", "mqtttest-sock-")
	if err != nil {
		return nil, fmt.Errorf("mqtttest: %w", err)
	}
	b.sock = filepath.Join(sockDir, "mqtt.sock")
	// The free ports are found by listening on port 0 and closing the
	// listener; another process (a client's ephemeral port, a broker of a
	// parallel test) can take one before Mosquitto binds it. Mosquitto
	// then exits at once, and a new set of ports is tried.
	const attempts = 5
	for i := 1; ; i++ {
		err := b.pickPorts()
		if err == nil {
			err = b.writeConfig()
		}
		if err == nil {
			err = b.start(ctx)
		}
		if err == nil {
			return b, nil
		}
		if i == attempts || ctx.Err() != nil || !b.portClash() {
			os.RemoveAll(sockDir)
			return nil, fmt.Errorf("mqtttest: %w", err)
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
	for _, name := range tcpListeners {
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
	line("# written by github.com/zmqtt/zmqtt-go/mqtttest")
	if os.Geteuid() == 0 {
		line("user root") // do not drop to the mosquitto user: it cannot read the temp dir
	}
	line("per_listener_settings false")
	line("log_dest file %s", b.log)
	if b.cfg.verbose {
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
	if len(b.cfg.users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		if err := writePasswords(pw, b.cfg.users); err != nil {
			return err
		}
		line("allow_anonymous false")
		line("password_file %s", pw)
	} else {
		line("allow_anonymous true")
	}
	if b.cfg.acl != "" {
		acl := filepath.Join(b.dir, "acl")
		if err := os.WriteFile(acl, []byte(b.cfg.acl), 0o600); err != nil {
			return err
		}
		line("acl_file %s", acl)
	}
	if b.cfg.persistence {
		line("persistence true")
		line("persistence_location %s/", b.dir)
		line("autosave_on_changes true")
		line("autosave_interval 1")
	} else {
		line("persistence false")
	}
	for _, e := range b.cfg.lines {
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
	line("listener %d 127.0.0.1", b.ports[TCP])
	tlsListener(TLS, p.serverCert, p.serverKey, false, false)
	tlsListener(MutualTLS, p.serverCert, p.serverKey, true, false)
	tlsListener(ExpiredTLS, p.expiredCert, p.expiredKey, false, false)
	tlsListener(WrongHostTLS, p.wrongNameCert, p.wrongNameKey, false, false)
	line("")
	line("listener %d 127.0.0.1", b.ports[WebSocket])
	line("protocol websockets")
	tlsListener(WebSocketTLS, p.serverCert, p.serverKey, false, true)
	line("")
	line("listener 0 %s", b.sock)
	return os.WriteFile(b.conf, []byte(w.String()), 0o600)
}

// writePasswords writes a Mosquitto 2.0 password file: one line per user,
// user:$7$<iterations>$<salt>$<hash>, where hash is PBKDF2 with
// HMAC-SHA512 over the password, base64 encoded.
func writePasswords(path string, users map[string]string) error {
	var w bytes.Buffer
	const iter = 101
	for _, u := range slices.Sorted(maps.Keys(users)) {
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
	p, err := childproc.Start(b.bin, b.log, "-c", b.conf)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.proc = p
	b.mu.Unlock()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	wait := func(network, addr, what string) error {
		for {
			var d net.Dialer
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			c, err := d.DialContext(dctx, network, addr)
			cancel()
			if err == nil {
				c.Close()
				return nil
			}
			select {
			case <-p.Done():
				return fmt.Errorf("mosquitto exited during start (%v); its log:\n%s", p.State(), b.LogTail(20))
			case <-ctx.Done():
				b.kill()
				return fmt.Errorf("mosquitto did not open %s (%s): %w; its log:\n%s", what, addr, ctx.Err(), b.LogTail(20))
			case <-tick.C:
			}
		}
	}
	for _, name := range tcpListeners {
		if err := wait("tcp", b.Addr(name), "listener "+string(name)); err != nil {
			return err
		}
	}
	return wait("unix", b.sock, "its Unix socket")
}

// current returns the current process, nil before the first start.
func (b *Broker) current() *childproc.Proc {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.proc
}

func (b *Broker) kill() {
	if p := b.current(); p != nil {
		p.Kill()
	}
}

// Kill stops the broker with SIGKILL, as a crash would, and waits for it
// to exit: nothing is saved beyond what WithPersistence has already
// written. Restart brings it back on the same ports. Killing a stopped
// broker does nothing.
func (b *Broker) Kill() {
	b.life.Lock()
	defer b.life.Unlock()
	b.kill()
}

// Stop stops the broker with SIGTERM, which lets Mosquitto save its state
// and close its connections, and waits for it to exit. It kills the broker
// and returns an error when it has not exited after 10 seconds. Stopping a
// stopped broker does nothing and returns nil.
func (b *Broker) Stop() error {
	b.life.Lock()
	defer b.life.Unlock()
	return b.stop()
}

func (b *Broker) stop() error {
	if p := b.current(); p != nil && !p.Stop(stopGrace) {
		return fmt.Errorf("mqtttest: mosquitto ignored SIGTERM for %v and was killed", stopGrace)
	}
	return nil
}

// Restart stops the broker if it is running (as Stop does) and starts it
// again on the same ports, with the same configuration, certificates and
// directory; what WithPersistence saved is still there. Clients see their
// connections closed and can reconnect to the same URLs. ctx bounds the
// start. It returns an error when the broker was closed, when the stop
// failed, or when the broker did not come up again (another process may
// have taken one of its ports meanwhile); the error includes the end of
// the broker's log.
func (b *Broker) Restart(ctx context.Context) error {
	b.life.Lock()
	defer b.life.Unlock()
	if b.closed {
		return errors.New("mqtttest: Restart of a closed broker")
	}
	if err := b.stop(); err != nil {
		return err
	}
	if err := b.start(ctx); err != nil {
		return fmt.Errorf("mqtttest: restart: %w", err)
	}
	return nil
}

// Close stops the broker as Stop does and removes its Unix socket
// directory and, for a broker from Launch, its directory. A closed broker
// cannot be restarted. Close returns Stop's error; closing twice returns
// nil.
func (b *Broker) Close() error {
	b.life.Lock()
	defer b.life.Unlock()
	err := b.stop()
	if !b.closed {
		b.closed = true
		os.RemoveAll(filepath.Dir(b.sock))
		if b.ownDir {
			os.RemoveAll(b.dir)
		}
	}
	return err
}

// Running reports whether the broker process is alive.
func (b *Broker) Running() bool {
	p := b.current()
	return p != nil && p.Running()
}

// PID returns the process id of the running broker, or 0 when it is not
// running.
func (b *Broker) PID() int {
	if p := b.current(); p != nil && p.Running() {
		return p.PID()
	}
	return 0
}

// Port returns the TCP port of a listener; 0 for Unix and for a name that
// is not a listener.
func (b *Broker) Port(l Listener) int { return b.ports[l] }

// Addr returns the address of a listener: "127.0.0.1:port" for the TCP
// listeners, the socket path for Unix, "" for a name that is not a
// listener.
func (b *Broker) Addr(l Listener) string {
	if l == Unix {
		return b.sock
	}
	p, ok := b.ports[l]
	if !ok {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// URL returns the URL that reaches a listener, as client.Config.URL and
// transport.Dial take it: mqtt:// for TCP, mqtts:// for the four TLS
// listeners, ws:// and wss:// with the path /mqtt, unix:// with the socket
// path. The host is 127.0.0.1, which the valid server certificate names
// (as it does ::1 and localhost). It returns "" for a name that is not a
// listener.
func (b *Broker) URL(l Listener) string {
	var scheme, path string
	switch l {
	case TCP:
		scheme = "mqtt"
	case TLS, MutualTLS, ExpiredTLS, WrongHostTLS:
		scheme = "mqtts"
	case WebSocket:
		scheme, path = "ws", "/mqtt"
	case WebSocketTLS:
		scheme, path = "wss", "/mqtt"
	case Unix:
		return "unix://" + b.sock
	default:
		return ""
	}
	return scheme + "://" + b.Addr(l) + path
}

// TLSConfig returns a new client TLS configuration that trusts the
// broker's CA, and so the certificate of the TLS, WebSocketTLS and
// MutualTLS listeners, and presents no client certificate.
func (b *Broker) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: b.pki.roots, MinVersion: tls.VersionTLS12}
}

// ClientTLSConfig returns TLSConfig plus the client certificate that the
// MutualTLS listener accepts.
func (b *Broker) ClientTLSConfig() *tls.Config {
	c := b.TLSConfig()
	c.Certificates = []tls.Certificate{b.pki.clientPair}
	return c
}

// UntrustedClientTLSConfig returns TLSConfig plus a client certificate
// issued by another CA, which the MutualTLS listener refuses: for testing
// how your code reports a refused certificate.
func (b *Broker) UntrustedClientTLSConfig() *tls.Config {
	c := b.TLSConfig()
	c.Certificates = []tls.Certificate{b.pki.untrustedPair}
	return c
}

// CAFile returns the path of the broker's CA certificate (PEM), for
// clients configured with files (mosquitto_sub --cafile, say).
func (b *Broker) CAFile() string { return b.pki.caFile }

// ClientCertFile returns the path of the client certificate that
// MutualTLS accepts (PEM).
func (b *Broker) ClientCertFile() string { return b.pki.clientCert }

// ClientKeyFile returns the path of the client certificate's private key
// (PEM).
func (b *Broker) ClientKeyFile() string { return b.pki.clientKey }

// Dir returns the broker's directory: configuration file (mosquitto.conf),
// log (mosquitto.log), certificates and persistence file.
func (b *Broker) Dir() string { return b.dir }

// LogTail returns the last n lines of the broker's log, without the line
// Mosquitto writes at every save when WithPersistence is on. It returns a
// note instead when the log cannot be read.
func (b *Broker) LogTail(n int) string {
	data, err := os.ReadFile(b.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.Contains(l, "Saving in-memory database") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
