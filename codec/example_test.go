package codec_test

import (
	"errors"
	"fmt"

	"github.com/zmqtt/zmqtt-go/codec"
)

// Encode a PUBLISH into a buffer and decode it back.
func ExampleAppend() {
	buf, err := codec.Append(nil, &codec.Publish{Topic: "sensors/kitchen", QoS: codec.AtLeastOnce, PacketID: 7,
		Payload: []byte("21.5")}, codec.V5)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", buf)
	p, n, err := codec.Decode(buf, codec.V5)
	if err != nil {
		fmt.Println(err)
		return
	}
	pub := p.(*codec.Publish)
	fmt.Println(n, pub.Topic, pub.PacketID, string(pub.Payload))
	// Output:
	// 32 18 00 0f 73 65 6e 73 6f 72 73 2f 6b 69 74 63 68 65 6e 00 07 00 32 31 2e 35
	// 26 sensors/kitchen 7 21.5
}

// Malformed input gives a typed error with the MQTT 5.0 reason code, the
// packet type, the offset and the rule; a partial packet asks for more.
func ExampleDecode_errors() {
	_, _, err := codec.Decode([]byte{0x30, 0x05, 0x00}, codec.V5)
	fmt.Println(errors.Is(err, codec.ErrIncomplete))

	// A PUBLISH whose QoS bits are 3 [MQTT-3.3.1-4].
	_, _, err = codec.Decode([]byte{0x36, 0x03, 0x00, 0x01, 't'}, codec.V5)
	var e *codec.Error
	if errors.As(err, &e) {
		fmt.Println(e.Reason, e.Type, errors.Is(err, codec.ErrMalformed))
	}
	// Output:
	// true
	// malformed packet PUBLISH true
}

// Topic filters: matching, wildcards and shared subscriptions.
func ExampleMatchTopic() {
	fmt.Println(codec.MatchTopic("sensors/+/temperature", "sensors/kitchen/temperature"))
	fmt.Println(codec.MatchTopic("sensors/#", "sensors"))
	fmt.Println(codec.MatchTopic("#", "$SYS/uptime")) // [MQTT-4.7.2-1]
	group, filter, ok := codec.ParseShared("$share/workers/jobs/#")
	fmt.Println(group, filter, ok)
	fmt.Println(codec.ValidateTopicName("a/+/b"))
	// Output:
	// true
	// true
	// false
	// workers jobs/# true
	// zmqtt: invalid topic name "a/+/b": wildcards are not allowed in a topic name [MQTT-3.3.2-2]
}
