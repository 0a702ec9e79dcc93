package transport_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/mqtttest"
	"github.com/zmqtt/zmqtt-go/transport"
)

// Dial a broker over TLS and speak MQTT with the codec directly: a CONNECT
// and its CONNACK. (The broker here is a private Mosquitto from package
// mqtttest, with a CA of its own; with a public broker, leave TLSConfig nil
// to use the system roots.)
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := mqtttest.Launch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	conn, err := transport.Dial(ctx, b.URL(mqtttest.TLS), &transport.Options{TLSConfig: b.TLSConfig()})
	if err != nil {
		log.Fatal(err) // a *transport.ConnError: which step failed, and why
	}
	defer conn.Close()
	pkt, _ := codec.Append(nil, &codec.Connect{CleanStart: true, ClientID: "example", KeepAlive: 30}, codec.V5)
	if _, err := conn.Write(pkt); err != nil {
		log.Fatal(err)
	}
	r := codec.NewReader(conn, 1<<16)
	defer r.Release()
	_, raw, err := r.Next()
	if err != nil {
		log.Fatal(err)
	}
	p, _, err := codec.Decode(raw, codec.V5)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("CONNACK:", p.(*codec.Connack).ReasonCode)
	// Output: CONNACK: success
}

// Pipe gives two connected in-memory ends, buffered like a socket: a
// write returns before the other end reads.
func ExamplePipe() {
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	pkt, _ := codec.Append(nil, &codec.Pingreq{}, codec.V311)
	a.Write(pkt)
	buf := make([]byte, 8)
	n, _ := b.Read(buf)
	p, _, _ := codec.Decode(buf[:n], codec.V311)
	fmt.Println(p.Type())
	// Output: PINGREQ
}
