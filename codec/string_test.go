package codec_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zmqtt/zmqtt-go/codec"
)

// TestBOMKept: the bytes EF BB BF are U+FEFF (ZERO WIDTH NO-BREAK SPACE)
// wherever they stand in a string, and a packet receiver must neither skip
// nor strip them [MQTT-1.5.3-3] [MQTT-1.5.4-3]. The encoder writes them and
// the decoder returns them, at the start of a string and inside it, in the
// topic name and (5.0) in the content type and a user property.
func TestBOMKept(t *testing.T) {
	const bom = "\xef\xbb\xbf"
	for _, c := range []struct {
		v    codec.Version
		p    *codec.Publish
		boms int // byte order marks in the encoding
	}{
		{codec.V311, &codec.Publish{QoS: 1, PacketID: 3, Topic: bom + "a/" + bom, Payload: []byte(bom)}, 3},
		{codec.V5, &codec.Publish{Topic: bom + "a", Payload: []byte("x"), Props: codec.Properties{Present: present(codec.PropContentType, codec.PropUserProperty),
			ContentType: bom + "text/plain", User: []codec.UserProperty{{Key: bom, Value: "v" + bom}}}}, 4},
	} {
		t.Run(c.v.String(), func(t *testing.T) {
			b, err := codec.Append(nil, c.p, c.v)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(b, []byte(bom)); n != c.boms {
				t.Fatalf("the encoding % x holds %d byte order marks, want %d", b, n, c.boms)
			}
			got, n, err := codec.Decode(b, c.v)
			if err != nil || n != len(b) {
				t.Fatalf("Decode: n=%d of %d, %v", n, len(b), err)
			}
			if diff := cmp.Diff(c.p, got, pktCmp); diff != "" {
				t.Fatalf("decoded fields differ (-sent +decoded):\n%s", diff)
			}
			if topic := got.(*codec.Publish).Topic; !strings.HasPrefix(topic, bom) {
				t.Fatalf("topic %q lost its leading U+FEFF", topic)
			}
		})
	}
}
