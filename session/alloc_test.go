//go:build !race

package session

import (
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// TestAllocsHotPaths: the steady-state targets, 0 allocations for an
// incoming QoS 0 PUBLISH through the router and for an outgoing QoS 1
// publish with its PUBACK.
func TestAllocsHotPaths(t *testing.T) {
	s, in, puback := benchSession(t)
	if n := testing.AllocsPerRun(500, func() { incomingQoS0(t, s, in, epoch) }); n != 0 {
		t.Errorf("incoming QoS 0: %v allocations", n)
	}
	p := &codec.Publish{Topic: "sensors/kitchen/temp", QoS: 1, Payload: []byte("21.5")}
	buf := make([]byte, 0, 256)
	outgoingQoS1(t, s, p, puback, buf, epoch) // warm the flight pool
	if n := testing.AllocsPerRun(500, func() { buf = outgoingQoS1(t, s, p, puback, buf, epoch) }); n != 0 {
		t.Errorf("outgoing QoS 1 with PUBACK: %v allocations", n)
	}
}
