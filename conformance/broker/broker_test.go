package broker_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance/broker"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

var update = flag.Bool("update", false, "rewrite the conformance table in README.md")

// rabbit is one RabbitMQ node for the whole test binary (it takes 10 to
// 25 seconds to start), launched by the first test that needs it and
// stopped by TestMain.
var rabbit struct {
	once sync.Once
	r    *brokertest.RabbitMQ
	err  error
}

func rabbitMQ(t *testing.T) *brokertest.RabbitMQ {
	t.Helper()
	rabbit.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		rabbit.r, rabbit.err = brokertest.LaunchRabbitMQ(ctx)
	})
	if rabbit.err != nil {
		t.Fatalf("RabbitMQ: %v", rabbit.err)
	}
	return rabbit.r
}

func TestMain(m *testing.M) {
	code := m.Run()
	if rabbit.r != nil {
		if err := rabbit.r.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func dialer(addr string) broker.Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// expected is, per broker and version, the exact set of checks that fail.
// A change of the set, either way, fails the test: a check cannot quietly
// stop checking, and a broker upgrade that fixes or breaks something is
// noticed. The comments say what the broker does.
var expected = map[string][]string{
	"mosquitto 2.0.11 / 3.1.1": {
		"keepalive/enforced-at-1.5x",       // checks keep alive on a coarse timer: closes after 2 to 5 s for 1 s
		"packetid/qos2-many-in-flight",     // acknowledges the 21st..30th unreleased QoS 2 PUBLISH, then drops them
		"malformed/publish-qos0-dup",       // accepts DUP on QoS 0
		"malformed/pingreq-reserved-flags", // answers a PINGREQ with flags 0001
		"malformed/client-sends-suback",    // ignores a SUBACK from a client
		"malformed/client-sends-pingresp",  // ignores a PINGRESP from a client
	},
	"mosquitto 2.0.11 / 5.0": {
		"connect/take-over-reason",                    // closes the old connection without DISCONNECT 0x8E
		"keepalive/enforced-at-1.5x",                  // as on 3.1.1
		"recvmax/client-exceeding-disconnected",       // answers PUBREC 0x97 instead of DISCONNECT 0x93
		"nolocal/on-shared-subscription-refused",      // grants it
		"shared/no-retained-on-subscribe",             // sends retained messages to a new shared subscription
		"malformed/non-minimal-remaining-length",      // accepts a two-byte encoding of 0
		"malformed/publish-qos0-dup",                  // as on 3.1.1
		"malformed/pingreq-reserved-flags",            // as on 3.1.1
		"malformed/client-sends-suback",               // as on 3.1.1
		"malformed/client-sends-pingresp",             // as on 3.1.1
		"malformed/subscription-id-in-client-publish", // ignores it
	},
	"NATS 2.9.10 / 3.1.1": {
		// QoS 2: a QoS 2 SUBSCRIBE is granted QoS 1 (allowed), a QoS 2
		// PUBLISH or a PUBREL closes the connection.
		"packetid/qos2-many-in-flight",
		"publish/pubrel-unknown-id-completed",
		"publish/qos2-duplicate-delivered-once",
		"publish/qos2-no-subscribers-acknowledged",
		"session/offline-qos2-queued",
		"session/pubrel-resent",
		"subscribe/downgrade-pub2-sub0",
		"subscribe/downgrade-pub2-sub1",
		"subscribe/downgrade-pub2-sub2",
		"session/unacknowledged-resent-with-dup", // no resend on reconnect (JetStream redelivers after its ack wait)
		"topic/dollar-not-matched-by-wildcards",  // "+/t" matches "$zc.../t"
		"topic/no-normalisation",                 // closes the connection on a topic with a space
		"will/published-after-protocol-error",    // no will after a DISCONNECT with reserved flags
		"malformed/pingreq-reserved-flags",       // answers it
		"malformed/publish-qos0-dup",             // accepts it
		"malformed/topic-invalid-utf8",           // accepts ill-formed UTF-8
		"malformed/topic-null-character",         // accepts U+0000
		"malformed/topic-surrogate",              // accepts an encoded surrogate
	},
	"RabbitMQ 3.10.8 / 3.1.1": {
		// QoS 2 PUBLISH answered with PUBACK; PUBREL ignored.
		"packetid/qos2-many-in-flight",
		"publish/pubrel-unknown-id-completed",
		"publish/qos2-duplicate-delivered-once",
		"publish/qos2-no-subscribers-acknowledged",
		"session/offline-qos2-queued",
		"session/pubrel-resent",
		"subscribe/downgrade-pub2-sub0",
		"subscribe/downgrade-pub2-sub1",
		"subscribe/downgrade-pub2-sub2",
		"connect/session-present-on-resume",          // Session Present 0 on resuming a kept session
		"connect/second-connect-closes",              // answers a second CONNECT with CONNACK
		"connect/unsupported-protocol-level",         // closes without CONNACK 1
		"connect/reserved-flag",                      // accepts the CONNECT
		"connect/will-qos-3",                         // accepts the CONNECT
		"connect/will-qos-without-will-flag",         // accepts the CONNECT
		"keepalive/enforced-at-1.5x",                 // does not close within 1.5 keep alives
		"publish/dup-not-propagated",                 // forwards DUP 1
		"retain/wildcard-subscription-gets-retained", // retained messages only for exact filters
		"subscribe/invalid-filter-refused",           // grants "x/#/y"
		"subscribe/replaces-existing",                // a second subscription instead of a replacement
		"subscribe/no-filter-close",
		"subscribe/reserved-option-bits-close",
		"unsubscribe/no-filter-close",
		"topic/dollar-not-matched-by-wildcards",
		"will/published-after-protocol-error",
		"malformed/client-sends-connack", // malformed and misdirected packets do not close the connection
		"malformed/client-sends-pingresp",
		"malformed/client-sends-suback",
		"malformed/connect-client-id-invalid-utf8",
		"malformed/pingreq-reserved-flags",
		"malformed/publish-empty-topic",
		"malformed/publish-packet-id-0",
		"malformed/publish-qos0-dup",
		"malformed/publish-wildcard-topic",
		"malformed/pubrel-reserved-flags",
		"malformed/remaining-length-over-4-bytes",
		"malformed/reserved-packet-type-0",
		"malformed/reserved-packet-type-15",
		"malformed/topic-invalid-utf8",
		"malformed/topic-null-character",
		"malformed/topic-surrogate",
	},
	// RabbitMQ 3.10 closes a 5.0 CONNECT without CONNACK (0x84 expected):
	// every other check is N/A.
	"RabbitMQ 3.10.8 / 5.0": {"connect/accepted"},
}

type run struct {
	name    string
	version codec.Version
	start   func(t *testing.T) string // returns host:port
}

var runs = []run{
	{"mosquitto 2.0.11 / 3.1.1", codec.V311, func(t *testing.T) string { return brokertest.Start(t).Addr(brokertest.MQTT) }},
	{"mosquitto 2.0.11 / 5.0", codec.V5, func(t *testing.T) string { return brokertest.Start(t).Addr(brokertest.MQTT) }},
	{"NATS 2.9.10 / 3.1.1", codec.V311, func(t *testing.T) string { return brokertest.StartNATSCluster(t, 1).Addr(0) }},
	{"RabbitMQ 3.10.8 / 3.1.1", codec.V311, func(t *testing.T) string { return rabbitMQ(t).Addr() }},
	{"RabbitMQ 3.10.8 / 5.0", codec.V5, func(t *testing.T) string { return rabbitMQ(t).Addr() }},
}

// TestRealBrokers runs the catalogue against each private broker and
// compares the failing checks with the expected set; then checks that
// README.md shows the table of the results.
func TestRealBrokers(t *testing.T) {
	var rows []string
	for _, r := range runs {
		t.Run(strings.NewReplacer(" ", "", "/", "_").Replace(r.name), func(t *testing.T) {
			addr := r.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			results := broker.Run(ctx, broker.Config{Dial: dialer(addr), Version: r.version, Parallel: 8}, broker.Catalogue())
			elapsed := time.Since(start)
			var failed []string
			counts := map[broker.Status]int{}
			for _, res := range results {
				counts[res.Status]++
				if res.Status == broker.Fail {
					failed = append(failed, res.Check.Name)
				}
			}
			want := append([]string(nil), expected[r.name]...)
			sort.Strings(want)
			sort.Strings(failed)
			if !slices.Equal(failed, want) {
				for _, res := range results {
					if res.Status == broker.Fail && !slices.Contains(want, res.Check.Name) {
						t.Errorf("%s failed unexpectedly: %v\n%s", res.Check.Name, res.Err, broker.Evidence(res.Err))
					}
				}
				for _, name := range want {
					if !slices.Contains(failed, name) {
						t.Errorf("%s was expected to fail and did not", name)
					}
				}
				t.Logf("failing now: %q", failed)
			}
			if elapsed > 60*time.Second {
				t.Errorf("the catalogue took %v against %s, over the 60 s budget", elapsed, r.name)
			}
			t.Logf("%s: %d checks, %d PASS, %d FAIL, %d N/A in %v", r.name, len(results), counts[broker.Pass], counts[broker.Fail], counts[broker.NA], elapsed.Round(100*time.Millisecond))
			rows = append(rows, fmt.Sprintf("| %s | %d | %d | %d | %d |", strings.Replace(r.name, " / ", " | ", 1), len(results), counts[broker.Pass], counts[broker.Fail], counts[broker.NA]))
		})
	}
	if t.Failed() || len(rows) != len(runs) {
		return
	}
	table := "| broker | MQTT | checks | PASS | FAIL | N/A |\n|---|---|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	checkReadme(t, table)
}

const (
	tableStart = "<!-- conform-table:start (written by go test ./conformance/broker -run TestRealBrokers -update) -->\n"
	tableEnd   = "<!-- conform-table:end -->"
)

func checkReadme(t *testing.T, table string) {
	t.Helper()
	path := "../../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i, j := strings.Index(s, tableStart), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no conformance table between %q and %q", tableStart, tableEnd)
	}
	cur := s[i+len(tableStart) : j]
	if cur == table {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(s[:i+len(tableStart)]+table+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's conformance table is out of date (run with -update); want:\n%s", table)
}
