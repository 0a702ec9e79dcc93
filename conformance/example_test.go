package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

// Run plays a script as a fake broker in front of a client under test;
// here the "client" is a second script on the other end of a pipe that
// gets the PUBACK's packet identifier wrong, so the broker's script fails
// and says where.
func ExampleRun() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	brokerSide, clientSide := net.Pipe()

	go conformance.Run(ctx, clientSide, codec.V5,
		conformance.Send(&codec.Connect{CleanStart: true, ClientID: "c1", KeepAlive: 30}),
		conformance.Expect(&codec.Connack{}),
		conformance.Expect(&codec.Publish{Topic: "t", QoS: 1, PacketID: 7, Payload: []byte("hi")}),
		conformance.Send(&codec.Puback{PacketID: 8}), // wrong: must echo 7
		conformance.ExpectClosed(),
	)

	err := conformance.Run(ctx, brokerSide, codec.V5,
		conformance.Expect(&codec.Connect{CleanStart: true, ClientID: "c1", KeepAlive: 30}).Cites("MQTT-3.1.0-1"),
		conformance.Send(&codec.Connack{}),
		conformance.Send(&codec.Publish{Topic: "t", QoS: 1, PacketID: 7, Payload: []byte("hi")}),
		conformance.Expect(&codec.Puback{PacketID: 7}).Cites("MQTT-2.2.1-5"),
	)
	var f *conformance.Failure
	if errors.As(err, &f) {
		fmt.Println("step", f.Step, f.Statements)
		fmt.Println("want", f.Want)
		fmt.Println("got ", f.Got)
		fmt.Print(f.Evidence())
	}
	// Output:
	// step 4 [MQTT-2.2.1-5]
	// want PUBACK{id=7}
	// got  PUBACK{id=8} (PacketID: want 7, got 8)
	// <- CONNECT{client-id="c1" clean-start=true keep-alive=30}
	// -> CONNACK{session-present=false reason=0x00}
	// -> PUBLISH{topic="t" qos=1 id=7 payload=<2 bytes>}
	// <- PUBACK{id=8}
}
