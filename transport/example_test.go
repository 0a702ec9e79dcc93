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
// and its CONNACK. (The broker here is a private Mosquitto with a test CA;
// with a public broker, leave TLSConfig nil to use the system roots.)
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

// Dial a broker through a SOCKS5 proxy with credentials. For HTTP CONNECT
// the proxy URL is http://user:pass@host:port; to take the proxy from
// HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY, set Proxy to
// transport.ProxyFromEnvironment. (The broker and the proxy here are
// private ones on 127.0.0.1.)
func ExampleDial_proxy() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := mqtttest.Launch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	p, err := mqtttest.NewProxy(mqtttest.SOCKS5Proxy, mqtttest.ProxyConfig{User: "alice", Password: "secret"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	proxyURL, err := transport.ParseProxyURL("socks5h://alice:secret@" + p.Addr())
	if err != nil {
		log.Fatal(err) // a *transport.URLError
	}
	conn, err := transport.Dial(ctx, b.URL(mqtttest.TLS), &transport.Options{
		TLSConfig: b.TLSConfig(), // TLS runs end to end, inside the tunnel
		Proxy:     transport.ProxyURL(proxyURL),
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, transport.ErrProxyAuth), ErrProxyRefused, ErrProxyUnreachable
	}
	defer conn.Close()
	pkt, _ := codec.Append(nil, &codec.Connect{CleanStart: true, ClientID: "example-proxy", KeepAlive: 30}, codec.V5)
	if _, err := conn.Write(pkt); err != nil {
		log.Fatal(err)
	}
	r := codec.NewReader(conn, 1<<16)
	defer r.Release()
	_, raw, err := r.Next()
	if err != nil {
		log.Fatal(err)
	}
	p2, _, err := codec.Decode(raw, codec.V5)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("CONNACK:", p2.(*codec.Connack).ReasonCode)
	fmt.Println("tunnels through the proxy:", len(p.Tunnels()))
	// Output:
	// CONNACK: success
	// tunnels through the proxy: 1
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
