package session

import (
	"strings"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// TestIDOffsetEveryTopicLength checks that the packet identifier is patched
// where [MQTT-3.3.2-1] puts it, right after the topic name, for topic
// lengths whose bits overlap the header length (a precedence slip once put
// it inside the topic for a 13-byte topic).
func TestIDOffsetEveryTopicLength(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		for n := 1; n < 300; n++ {
			p := &codec.Publish{Topic: strings.Repeat("t", n), QoS: codec.AtLeastOnce, PacketID: 0x1234, Payload: []byte("x")}
			pkt, err := p.Append(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			off := idOffset(pkt)
			if got := uint16(pkt[off])<<8 | uint16(pkt[off+1]); got != 0x1234 {
				t.Fatalf("%v topic length %d: offset %d reads %#x, want 0x1234", v, n, off, got)
			}
		}
	}
}
