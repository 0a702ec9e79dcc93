// Package mqtttest runs a private Mosquitto broker for the tests of your own
// MQTT code. Your code talks to a real broker over real sockets, with any
// client library, instead of to a mock: a test starts a broker, points the
// code under test at one of its URLs and checks what arrives.
//
//	func TestReportTemperature(t *testing.T) {
//		b := mqtttest.StartMosquitto(t) // stopped when the test ends
//		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
//		defer cancel()
//		c, err := client.New5(client.Config5{Config: client.Config{URL: b.URL(mqtttest.TCP), ClientID: "t"}})
//		...
//	}
//
// StartMosquitto is for test functions: it fails the test when the broker
// cannot start and stops it in tb.Cleanup. Launch is for code without a
// testing.TB (an Example, TestMain, a program): it returns an error, and
// Close stops the broker.
//
// # Never the system broker
//
// The broker is a child process of the test with a configuration file of
// its own in a temporary directory. It listens on 127.0.0.1 only, on free
// ports chosen at start (never 1883 or 8883), so tests can run in parallel
// with each other and beside a Mosquitto service that is already running:
// neither sees the other. Its log, certificates and persistence file are
// in the same temporary directory, its Unix socket in a short directory of
// its own (a socket path holds about 100 bytes). On Linux the kernel kills
// the broker when the test process dies without running its cleanup (a
// test binary killed on timeout, say).
//
// # Listeners
//
// Every broker opens all of its listeners; URL and Addr name them:
//
//	TCP           mqtt://127.0.0.1:port
//	TLS           mqtts://127.0.0.1:port        client certificate optional
//	MutualTLS     mqtts://127.0.0.1:port        client certificate required (ClientTLSConfig)
//	WebSocket     ws://127.0.0.1:port/mqtt
//	WebSocketTLS  wss://127.0.0.1:port/mqtt
//	Unix          unix:///tmp/mqtttest-sock-.../mqtt.sock
//	ExpiredTLS    mqtts://127.0.0.1:port        server certificate expired yesterday
//	WrongHostTLS  mqtts://127.0.0.1:port        server certificate names only wrong.example
//
// The last two are there to test that your code refuses a bad server
// certificate. The certificates are generated for each broker (ECDSA P-256,
// from a CA of their own): nothing is checked in and nothing expires
// between runs. TLSConfig trusts that CA; ClientTLSConfig adds the client
// certificate that MutualTLS accepts; CAFile, ClientCertFile and
// ClientKeyFile give the same as PEM files for other tools.
//
// # Defaults
//
// Without options the broker allows anonymous clients (WithUsers turns that
// off) and keeps nothing on disk (WithPersistence turns that on), so every
// test starts from an empty broker. Beyond Mosquitto's own defaults it sets:
//
//   - per_listener_settings false: users, ACL and WithConfigLines apply to
//     every listener alike.
//   - max_queued_messages 100000 (Mosquitto's default is 1000): an offline
//     persistent session then keeps every message of a burst test, so a
//     loss the test sees is not the broker's queue limit.
//   - set_tcp_nodelay true: small packets go out at once rather than
//     waiting for Nagle's algorithm, which keeps round trips of a test short.
//   - log_type error, warning, notice and information, connection_messages
//     true: LogTail shows connects, disconnects and refusals. When a test
//     fails, StartMosquitto logs the last 40 lines of the broker's log.
//
// StartMosquitto waits up to 30 seconds for the listeners to accept (they
// take milliseconds; the margin is for a loaded CI machine), and less when
// the test's context ends first. Stop and the cleanup send SIGTERM, which
// lets Mosquitto save its state, and SIGKILL after 10 seconds.
//
// # Installing Mosquitto
//
// The package runs the mosquitto binary (2.0 or later) and does not bundle
// it. Install it with
//
//	sudo apt-get install mosquitto    # Debian, Ubuntu
//	brew install mosquitto            # macOS
//
// or put the binary on PATH, or name it with WithBinary. The package looks
// on PATH and then in /usr/sbin, /usr/local/sbin and /opt/homebrew/sbin,
// which are often not on a user's PATH. A Debian install also starts a
// system service on port 1883; the brokers of this package never use it.
// When the binary is missing, StartMosquitto fails the test with a message
// that says how to install it; it never skips the test silently. The
// package runs on Linux and macOS (it stops the broker with Unix signals).
package mqtttest
