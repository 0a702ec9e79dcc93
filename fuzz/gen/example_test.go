package gen_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/eclipse/paho.golang/packets"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/fuzz/gen"
)

// Generate a valid packet from a seed, mutate one of its fields, and see
// what the codec says.
func ExampleGen_Mutate() {
	g := gen.New(7)
	b, err := g.Bytes(codec.V5, codec.TypePublish)
	if err != nil {
		panic(err)
	}
	m, _ := g.Mutate(b, codec.V5, gen.QoS3)
	_, _, err = codec.Decode(m.Bytes, codec.V5)
	fmt.Println(m.Class, "->", err)
	// Output: qos3 -> zmqtt: malformed packet: PUBLISH at byte 0: QoS 3 is not allowed [MQTT-3.3.1-4]
}

// Differential fuzzing: feed the same generated and mutated packets to
// another decoder (here paho.golang's) and to ours, and count where they
// disagree. In a testing.F target, take the Gen from gen.FromBytes(data)
// and fail on a disagreement that is not a known, accepted difference.
func Example_differential() {
	theirs := func(b []byte) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		_, err = packets.ReadPacket(bytes.NewReader(b))
		return err
	}
	g := gen.New(1)
	agree, onlyOurs, onlyTheirs := 0, 0, 0
	for range 500 {
		b, err := g.Bytes(codec.V5, g.Type(codec.V5))
		if err != nil {
			panic(err)
		}
		m := g.MutateAny(b, codec.V5)
		_, n, ours := codec.Decode(m.Bytes, codec.V5)
		if errors.Is(ours, codec.ErrIncomplete) || ours == nil && n != len(m.Bytes) {
			continue // a stream decoder waits for more bytes, or has more packets to read
		}
		if claimed(m.Bytes) > len(m.Bytes) {
			// paho.golang allocates whatever the fixed header claims, five
			// bytes of remaining length included (gigabytes): keep those
			// away from it.
			continue
		}
		switch their := theirs(m.Bytes); {
		case (ours == nil) == (their == nil):
			agree++
		case ours == nil:
			onlyOurs++ // we accept what they refuse
		default:
			onlyTheirs++ // they accept what we refuse
		}
	}
	fmt.Printf("agree %d, only ours accepts %d, only theirs accepts %d\n", agree, onlyOurs, onlyTheirs)
	// Output: agree 91, only ours accepts 0, only theirs accepts 187
}

// claimed returns the packet size the fixed header of b claims, reading up
// to five bytes of remaining length as a lenient decoder would.
func claimed(b []byte) int {
	rem, mul := 0, 1
	for i := 1; i < len(b) && i <= 5; i++ {
		rem += int(b[i]&0x7F) * mul
		if b[i]&0x80 == 0 {
			return i + 1 + rem
		}
		mul <<= 7
	}
	return 1 << 40
}
