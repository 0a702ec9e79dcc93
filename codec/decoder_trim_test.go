package codec_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zmqtt/zmqtt-go/codec"
)

// TestDecoderTrim: after Trim the Decoder decodes every packet type as
// before, a packet it returned before Trim keeps its fields, and the next
// packet of a trimmed type gets a value of its own.
func TestDecoderTrim(t *testing.T) {
	pkts := []codec.Packet{
		&codec.Connack{SessionPresent: true, Props: codec.Properties{ReasonString: "hello"}},
		&codec.Puback{PacketID: 3, ReasonCode: 0x10},
		&codec.Suback{PacketID: 4, ReasonCodes: []codec.ReasonCode{1}},
		&codec.Publish{Topic: "a/b", Payload: []byte("x"), QoS: 1, PacketID: 5},
		&codec.Pingresp{},
	}
	d := codec.Decoder{Version: codec.V5, From: codec.RoleServer}
	for round := range 3 {
		for _, p := range pkts {
			b, err := codec.Append(nil, p, codec.V5)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := codec.Decode(b, codec.V5)
			if err != nil {
				t.Fatal(err)
			}
			got, n, err := d.Decode(b)
			if err != nil || n != len(b) {
				t.Fatalf("round %d: Decode(%T) = %d, %v", round, want, n, err)
			}
			d.Trim()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round %d: %T changed by Trim (-want +got):\n%s", round, want, diff)
			}
			again, _, err := d.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			switch want.(type) {
			case *codec.Publish, *codec.Pingresp: // the Decoder's own; a value without fields
				continue
			}
			if again == got {
				t.Errorf("round %d: %T: the value after Trim is the one Decode returned before", round, want)
			}
		}
	}
}
