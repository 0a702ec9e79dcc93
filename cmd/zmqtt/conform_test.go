package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// TestConform runs `zmqtt conform` against a private Mosquitto: a passing
// selection exits 0 with one PASS line per check and a summary; a
// selection with a check Mosquitto 2.0.11 fails (it answers a PINGREQ
// with reserved flags instead of closing) exits 1 with the FAIL line, the
// statement and the packets as evidence; --json prints one object a check.
func TestConform(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	b := brokertest.Start(t)
	url := b.URL(brokertest.MQTT)

	r := mustRun(ctx, t, nil, "conform", "--url", url, "-V", "5", "--only", "^publish/qos[01]-round-trip$")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "PASS MUST   publish/qos0-round-trip") ||
		!strings.Contains(lines[0], "MQTT-3.3.4-1") || !strings.HasPrefix(lines[2], "2 checks: 2 PASS, 0 FAIL, 0 N/A") {
		t.Errorf("unexpected output:\n%s", r.stdout)
	}

	r = runZ(ctx, t, nil, "conform", "--url", url, "-V", "311", "--only", "^malformed/pingreq-reserved-flags$")
	wantError(t, r, 1, "1 MUST check(s) failed")
	for _, want := range []string{"FAIL MUST   malformed/pingreq-reserved-flags", "[MQTT-2.2.2-1]", "-> bytes c1 00", "<- PINGRESP{}"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = mustRun(ctx, t, nil, "conform", "--url", url, "-V", "5", "--json", "--only", "^(retain/not-available-refused|keepalive/pingresp)$")
	var got []conformResult
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var c conformResult
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, c)
	}
	if len(got) != 2 || got[0].Check != "keepalive/pingresp" || got[0].Status != "PASS" ||
		got[1].Status != "N/A" || !strings.Contains(got[1].Reason, "Retain Available is 1") {
		t.Errorf("unexpected JSON results: %+v", got)
	}

	r = runZ(ctx, t, nil, "conform", "--url", url, "-V", "4.0")
	wantError(t, r, 1, "-V must be 311 or 5") // usage errors exit 1, as mosquitto_pub
}
