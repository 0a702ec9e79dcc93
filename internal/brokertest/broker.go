// Package brokertest holds the brokers of zmqtt-go's own tests, benchmarks
// and demo.
//
// Mosquitto comes from the public package mqtttest, which users have for
// their own tests; this package keeps the names the repository's tests were
// written against (Config, the MQTT/MQTTS/... listener names, UnixURL) as a
// thin layer over it. Start is for tests, Launch for programs (the demo);
// the package documentation of mqtttest says what a broker offers.
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
	"context"
	"testing"

	"github.com/zmqtt/zmqtt-go/mqtttest"
)

// Listener names one of a Mosquitto broker's listeners.
type Listener = mqtttest.Listener

// The listeners of every Mosquitto broker, under the names the tests use.
const (
	MQTT      = mqtttest.TCP          // plain TCP
	MQTTS     = mqtttest.TLS          // TLS, client certificate optional
	MutualTLS = mqtttest.MutualTLS    // TLS, client certificate required
	Expired   = mqtttest.ExpiredTLS   // TLS whose server certificate expired yesterday
	WrongName = mqtttest.WrongHostTLS // TLS whose certificate names only wrong.example
	WS        = mqtttest.WebSocket    // WebSocket
	WSS       = mqtttest.WebSocketTLS // WebSocket over TLS
)

// InstallHint is the advice given when mosquitto cannot be found.
const InstallHint = mqtttest.InstallHint

// ErrNotInstalled is returned by Launch when the mosquitto binary is missing.
var ErrNotInstalled = mqtttest.ErrNotInstalled

// Config chooses the optional parts of a broker; each field is one option
// of mqtttest.
type Config struct {
	// Users maps user names to passwords. When non-empty, anonymous
	// clients are refused (mqtttest.WithUsers).
	Users map[string]string
	// ACL is the content of an ACL file (Mosquitto syntax); empty means
	// no ACL (mqtttest.WithACL).
	ACL string
	// Persistence keeps sessions and messages on disk in the broker's
	// directory, saving on every change, so they survive kill -9
	// (mqtttest.WithPersistence).
	Persistence bool
	// Extra lines appended to the global section of the config file
	// (mqtttest.WithConfigLines).
	Extra []string
	// Verbose logs every packet (log_type all) to the broker log
	// (mqtttest.WithVerboseLog).
	Verbose bool
}

func (c Config) options() []mqtttest.Option {
	var opts []mqtttest.Option
	if len(c.Users) > 0 {
		opts = append(opts, mqtttest.WithUsers(c.Users))
	}
	if c.ACL != "" {
		opts = append(opts, mqtttest.WithACL(c.ACL))
	}
	if c.Persistence {
		opts = append(opts, mqtttest.WithPersistence())
	}
	if len(c.Extra) > 0 {
		opts = append(opts, mqtttest.WithConfigLines(c.Extra...))
	}
	if c.Verbose {
		opts = append(opts, mqtttest.WithVerboseLog())
	}
	return opts
}

// Broker is a running (or stopped) private Mosquitto: an mqtttest.Broker
// with the helpers the tests were written against.
type Broker struct {
	*mqtttest.Broker
}

// Start starts a broker for tb and stops it when the test ends, as
// mqtttest.StartMosquitto does: it fails the test with InstallHint when
// mosquitto is missing, with the end of the broker's log when it does not
// come up.
func Start(tb testing.TB, cfg ...Config) *Broker {
	tb.Helper()
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	return &Broker{mqtttest.StartMosquitto(tb, c.options()...)}
}

// Launch starts a broker in a new temporary directory, which Close
// removes, as mqtttest.Launch does. ctx bounds the start only.
func Launch(ctx context.Context, cfg Config) (*Broker, error) {
	b, err := mqtttest.Launch(ctx, cfg.options()...)
	if err != nil {
		return nil, err
	}
	return &Broker{b}, nil
}

// Binary returns the path of the mosquitto binary, or ErrNotInstalled.
func Binary() (string, error) { return mqtttest.Binary() }

// UnixURL returns the unix:// URL of the broker's Unix socket listener.
func (b *Broker) UnixURL() string { return b.URL(mqtttest.Unix) }
