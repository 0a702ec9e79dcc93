package transport_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var idSeq atomic.Int64

// exchange runs CONNECT, SUBSCRIBE and a PUBLISH to itself at QoS 1 over
// conn with our codec, and checks that the message comes back intact.
func exchange(t *testing.T, ctx context.Context, conn net.Conn, v codec.Version, payload []byte) {
	t.Helper()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	id := fmt.Sprintf("zmqtt-transport-%d", idSeq.Add(1))
	topic := "zmqtt/transport/" + id
	r := codec.NewReader(conn, 1<<20)
	defer r.Release()
	send := func(p codec.Packet) {
		t.Helper()
		b, err := codec.Append(nil, p, v)
		if err != nil {
			t.Fatalf("encode %v: %v", p, err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatalf("write %v: %v", p, err)
		}
	}
	recv := func() codec.Packet {
		t.Helper()
		_, raw, err := r.Next()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		p, _, err := codec.Decode(raw, v)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		return codec.Clone(p)
	}
	send(&codec.Connect{CleanStart: true, KeepAlive: 30, ClientID: id})
	ca, ok := recv().(*codec.Connack)
	if !ok || ca.ReasonCode != codec.ReasonSuccess {
		t.Fatalf("CONNACK: %v", ca)
	}
	send(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: topic, QoS: codec.AtLeastOnce}}})
	sa, ok := recv().(*codec.Suback)
	if !ok || len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != codec.ReasonGrantedQoS1 {
		t.Fatalf("SUBACK: %v", sa)
	}
	send(&codec.Publish{Topic: topic, QoS: codec.AtLeastOnce, PacketID: 2, Payload: payload})
	var gotAck, gotMsg bool
	for !gotAck || !gotMsg {
		switch p := recv().(type) {
		case *codec.Puback:
			if p.PacketID != 2 {
				t.Fatalf("PUBACK for %d, want 2", p.PacketID)
			}
			gotAck = true
		case *codec.Publish:
			if p.Topic != topic || !bytes.Equal(p.Payload, payload) {
				t.Fatalf("PUBLISH came back as %q with %d bytes, want %q with %d", p.Topic, len(p.Payload), topic, len(payload))
			}
			send(&codec.Puback{PacketID: p.PacketID})
			gotMsg = true
		default:
			t.Fatalf("unexpected %v", p)
		}
	}
	send(&codec.Disconnect{})
	conn.SetDeadline(time.Time{})
}

// TestExchangeOverEveryTransport carries a real MQTT exchange with a
// private Mosquitto over each transport, for both versions.
func TestExchangeOverEveryTransport(t *testing.T) {
	b := brokertest.Start(t)
	payload := make([]byte, 3000)
	rand.Read(payload)
	cases := []struct {
		name string
		url  string
		tls  *tls.Config
	}{
		{"tcp", b.URL(brokertest.MQTT), nil},
		{"tcp-scheme", strings.Replace(b.URL(brokertest.MQTT), "mqtt://", "tcp://", 1), nil},
		{"tls", b.URL(brokertest.MQTTS), b.TLSConfig()},
		{"ssl-scheme", strings.Replace(b.URL(brokertest.MQTTS), "mqtts://", "ssl://", 1), b.TLSConfig()},
		{"tls-scheme", strings.Replace(b.URL(brokertest.MQTTS), "mqtts://", "tls://", 1), b.TLSConfig()},
		{"tls-localhost", strings.Replace(b.URL(brokertest.MQTTS), "127.0.0.1", "localhost", 1), b.TLSConfig()},
		{"mutual-tls", b.URL(brokertest.MutualTLS), b.ClientTLSConfig()},
		{"ws", b.URL(brokertest.WS), nil},
		{"wss", b.URL(brokertest.WSS), b.TLSConfig()},
		{"unix", b.UnixURL(), nil},
	}
	for _, c := range cases {
		for _, v := range []codec.Version{codec.V311, codec.V5} {
			t.Run(fmt.Sprintf("%s/%v", c.name, v), func(t *testing.T) {
				ctx := testCtx(t)
				conn, err := transport.Dial(ctx, c.url, &transport.Options{TLSConfig: c.tls})
				if err != nil {
					t.Fatalf("Dial(%s): %v", c.url, err)
				}
				defer conn.Close()
				exchange(t, ctx, conn, v, payload)
			})
		}
	}
}

// TestWebSocketLargePacketToBroker sends a 64 KiB PUBLISH over WebSocket
// to Mosquitto and gets it back.
func TestWebSocketLargePacketToBroker(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	payload := make([]byte, 64<<10)
	rand.Read(payload)
	conn, err := transport.Dial(ctx, b.URL(brokertest.WS), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exchange(t, ctx, conn, codec.V5, payload)
}

func TestTLSFailures(t *testing.T) {
	b := brokertest.Start(t)
	t.Run("expired", func(t *testing.T) {
		_, err := transport.Dial(testCtx(t), b.URL(brokertest.Expired), &transport.Options{TLSConfig: b.TLSConfig()})
		var ce x509.CertificateInvalidError
		if !errors.As(err, &ce) || ce.Reason != x509.Expired {
			t.Fatalf("err = %v, want an expired-certificate error", err)
		}
		checkConnError(t, err, "tls handshake")
		if !strings.Contains(err.Error(), "expired") {
			t.Errorf("message %q does not say the certificate expired", err)
		}
	})
	t.Run("wrong-name", func(t *testing.T) {
		_, err := transport.Dial(testCtx(t), b.URL(brokertest.WrongName), &transport.Options{TLSConfig: b.TLSConfig()})
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("err = %v, want a host name error", err)
		}
		checkConnError(t, err, "tls handshake")
		if !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("message %q does not name the host", err)
		}
	})
	t.Run("unknown-authority", func(t *testing.T) {
		// No TLSConfig: system roots, which do not know the test CA.
		_, err := transport.Dial(testCtx(t), b.URL(brokertest.MQTTS), nil)
		var ue x509.UnknownAuthorityError
		if !errors.As(err, &ue) {
			t.Fatalf("err = %v, want an unknown authority error", err)
		}
		checkConnError(t, err, "tls handshake")
	})
	t.Run("insecure-accepts-expired", func(t *testing.T) {
		ctx := testCtx(t)
		conn, err := transport.Dial(ctx, b.URL(brokertest.Expired), &transport.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
		if err != nil {
			t.Fatalf("InsecureSkipVerify: %v", err)
		}
		defer conn.Close()
		exchange(t, ctx, conn, codec.V5, []byte("insecure"))
	})
	// The broker checks the client certificate after the client's side of
	// a TLS 1.3 handshake is done, so a refusal may show at Dial or at the
	// first read: either way it is a connection-lost error.
	for name, conf := range map[string]*tls.Config{
		"mutual-without-certificate":        b.TLSConfig(),
		"mutual-with-untrusted-certificate": b.UntrustedClientTLSConfig(),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			conn, err := transport.Dial(ctx, b.URL(brokertest.MutualTLS), &transport.Options{TLSConfig: conf})
			if err == nil {
				defer conn.Close()
				c, _ := codec.Append(nil, &codec.Connect{CleanStart: true, ClientID: "refused"}, codec.V5)
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err = conn.Write(c); err == nil {
					_, err = conn.Read(make([]byte, 16))
				}
			}
			if !errors.Is(err, transport.ErrConnectionLost) {
				t.Fatalf("err = %v, want ErrConnectionLost", err)
			}
			var ce *transport.ConnError
			if !errors.As(err, &ce) || ce.Timeout() {
				t.Fatalf("err = %v: want a refusal, not a timeout", err)
			}
		})
	}
}

func checkConnError(t *testing.T, err error, op string) {
	t.Helper()
	if !errors.Is(err, transport.ErrConnectionLost) {
		t.Errorf("%v does not match ErrConnectionLost", err)
	}
	var ce *transport.ConnError
	if !errors.As(err, &ce) || ce.Op != op {
		t.Errorf("%v: want a *ConnError with Op %q", err, op)
	}
}

func TestURLErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, c := range []struct {
		url     string
		scheme  bool // wraps ErrUnsupportedScheme
		mention string
	}{
		{"http://127.0.0.1:1", true, "http"},
		{"127.0.0.1:1883", true, ""},
		{"mqtt://", false, "no host"},
		{"mqtts://:8883", false, "no host"},
		{"unix://", false, "no socket path"},
		{"mqtt://user:secret@%zz", false, "parse"},
		{"quic://user:secret@host", true, "quic"},
	} {
		_, err := transport.Dial(ctx, c.url, nil)
		var ue *transport.URLError
		if !errors.As(err, &ue) {
			t.Errorf("%q: err = %v, want *URLError", c.url, err)
			continue
		}
		if errors.Is(err, transport.ErrConnectionLost) {
			t.Errorf("%q: a URL error must not match ErrConnectionLost", c.url)
		}
		if got := errors.Is(err, transport.ErrUnsupportedScheme); got != c.scheme {
			t.Errorf("%q: errors.Is(ErrUnsupportedScheme) = %v", c.url, got)
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%q: %q does not mention %q", c.url, err, c.mention)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error %q shows the password", c.url, err)
		}
	}
}

func TestDialRefusedAndContext(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = transport.Dial(testCtx(t), "mqtt://"+addr, nil)
	checkConnError(t, err, "dial")

	// A listener that accepts and never answers: the handshakes wait
	// until the context ends.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for _, scheme := range []string{"mqtts", "ws", "wss"} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := transport.Dial(ctx, scheme+"://"+silent.Addr().String(), nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want context.DeadlineExceeded", scheme, err)
		}
		if !errors.Is(err, transport.ErrConnectionLost) {
			t.Errorf("%s: err = %v, want ErrConnectionLost", scheme, err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: err = %v is not a net.Error timeout", scheme, err)
		}
	}
	silent.Close()
	for c := range accepted {
		c.Close()
	}
}

func TestCustomDialer(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	var calls []string
	opts := &transport.Options{
		TLSConfig: b.TLSConfig(),
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			calls = append(calls, network+" "+addr)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	for _, u := range []string{b.URL(brokertest.MQTT), b.URL(brokertest.MQTTS), b.URL(brokertest.WSS), b.UnixURL()} {
		conn, err := transport.Dial(ctx, u, opts)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		exchange(t, ctx, conn, codec.V5, []byte("via a custom dialer"))
		conn.Close()
	}
	want := []string{"tcp " + b.Addr(brokertest.MQTT), "tcp " + b.Addr(brokertest.MQTTS), "tcp " + b.Addr(brokertest.WSS), "unix " + strings.TrimPrefix(b.UnixURL(), "unix://")}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("dialer calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	// A dialer's error is the cause of a dial ConnError.
	boom := errors.New("proxy refused")
	_, err := transport.Dial(ctx, b.URL(brokertest.MQTT), &transport.Options{Dialer: func(context.Context, string, string) (net.Conn, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the dialer's error", err)
	}
	checkConnError(t, err, "dial")
}

// wsServer serves one WebSocket connection with handler, accepting the
// subprotocols given.
func wsServer(t *testing.T, protos []string, handler func(ctx context.Context, c *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: protos})
		if err != nil {
			return
		}
		defer c.CloseNow()
		handler(r.Context(), c)
	}))
	t.Cleanup(srv.Close)
	return "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/mqtt"
}

// TestWebSocketFraming: packets span frames, and frames hold several
// packets; the reader sees one byte stream either way [MQTT-6.0.0-2]. The
// server accepts only the mqtt subprotocol, which the client offers
// [MQTT-6.0.0-3].
func TestWebSocketFraming(t *testing.T) {
	big := &codec.Publish{Topic: "big", QoS: codec.AtLeastOnce, PacketID: 7, Payload: make([]byte, 64<<10)}
	rand.Read(big.Payload)
	bigBytes, _ := codec.Append(nil, big, codec.V5)
	var small []byte
	for i := range 100 {
		small, _ = codec.Append(small, &codec.Publish{Topic: fmt.Sprintf("small/%d", i), Payload: []byte{byte(i)}}, codec.V5)
	}
	received := make(chan []byte, 1)
	url := wsServer(t, []string{"mqtt"}, func(ctx context.Context, c *websocket.Conn) {
		// The 64 KiB packet in 1,000-byte messages, then 100 packets in one.
		for off := 0; off < len(bigBytes); off += 1000 {
			if err := c.Write(ctx, websocket.MessageBinary, bigBytes[off:min(off+1000, len(bigBytes))]); err != nil {
				return
			}
		}
		if err := c.Write(ctx, websocket.MessageBinary, small); err != nil {
			return
		}
		// Then read what the client sends, however it is framed.
		var got []byte
		for len(got) < len(bigBytes)+len(small) {
			_, m, err := c.Read(ctx)
			if err != nil {
				break
			}
			got = append(got, m...)
		}
		received <- got
		c.Close(websocket.StatusNormalClosure, "")
	})
	ctx := testCtx(t)
	conn, err := transport.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := codec.NewReader(conn, 1<<20)
	defer r.Release()
	_, raw, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, bigBytes) {
		t.Fatalf("the 64 KiB packet came out as %d bytes, different", len(raw))
	}
	for i := range 100 {
		_, raw, err := r.Next()
		if err != nil {
			t.Fatalf("small packet %d: %v", i, err)
		}
		p, _, err := codec.Decode(raw, codec.V5)
		if err != nil {
			t.Fatal(err)
		}
		if pub := p.(*codec.Publish); pub.Topic != fmt.Sprintf("small/%d", i) || pub.Payload[0] != byte(i) {
			t.Fatalf("small packet %d is %v", i, pub)
		}
	}
	// The client's side: a 64 KiB packet written in pieces and the small
	// packets in one write.
	for off := 0; off < len(bigBytes); off += 4096 {
		if _, err := conn.Write(bigBytes[off:min(off+4096, len(bigBytes))]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Write(small); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-received:
		if !bytes.Equal(got, append(append([]byte(nil), bigBytes...), small...)) {
			t.Fatalf("the server received %d bytes, not the %d written", len(got), len(bigBytes)+len(small))
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	// The server closed: the client reads EOF as a connection-lost error.
	_, _, err = r.Next()
	if !errors.Is(err, io.EOF) || !errors.Is(err, transport.ErrConnectionLost) {
		t.Fatalf("after the server closed: %v, want a ConnError wrapping io.EOF", err)
	}
}

// TestWebSocketBinaryFramesOnly: what the client writes goes in binary
// frames, and a text frame from the server ends the connection with a
// connection-lost error rather than being read as MQTT bytes
// [MQTT-6.0.0-1].
func TestWebSocketBinaryFramesOnly(t *testing.T) {
	types := make(chan websocket.MessageType, 1)
	url := wsServer(t, []string{"mqtt"}, func(ctx context.Context, c *websocket.Conn) {
		typ, _, err := c.Read(ctx)
		if err != nil {
			return
		}
		types <- typ
		c.Write(ctx, websocket.MessageText, []byte{0xd0, 0x00}) // a PINGRESP, in a text frame
		c.Read(ctx)
	})
	ctx := testCtx(t)
	conn, err := transport.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{0xc0, 0x00}); err != nil { // PINGREQ
		t.Fatal(err)
	}
	select {
	case typ := <-types:
		if typ != websocket.MessageBinary {
			t.Fatalf("the client wrote a %v frame, want binary", typ)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(make([]byte, 16))
	if err == nil || !errors.Is(err, transport.ErrConnectionLost) {
		t.Fatalf("read of a text frame: %d bytes, err %v; want a connection-lost error", n, err)
	}
}

// TestWebSocketWithoutMQTTSubprotocol: a server that does not select the
// mqtt subprotocol is refused [MQTT-6.0.0-3].
func TestWebSocketWithoutMQTTSubprotocol(t *testing.T) {
	url := wsServer(t, nil, func(ctx context.Context, c *websocket.Conn) { c.Read(ctx) })
	_, err := transport.Dial(testCtx(t), url, nil)
	if !errors.Is(err, transport.ErrWebSocketSubprotocol) {
		t.Fatalf("err = %v, want ErrWebSocketSubprotocol", err)
	}
	checkConnError(t, err, "websocket handshake")
}

// TestCloseFromEitherSide: a conn closed by the broker reads EOF; a conn
// closed locally fails its next call; Close twice is harmless.
func TestCloseFromEitherSide(t *testing.T) {
	b := brokertest.Start(t)
	for _, l := range []brokertest.Listener{brokertest.MQTT, brokertest.MQTTS, brokertest.WS, brokertest.WSS} {
		t.Run(string(l), func(t *testing.T) {
			ctx := testCtx(t)
			conn, err := transport.Dial(ctx, b.URL(l), &transport.Options{TLSConfig: b.TLSConfig()})
			if err != nil {
				t.Fatal(err)
			}
			// A CONNECT with a bad protocol level: Mosquitto closes.
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn.Write([]byte{0x10, 0x0a, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x09, 0x02, 0x00, 0x3c, 0x00, 0x00})
			var rerr error
			buf := make([]byte, 64)
			for rerr == nil {
				_, rerr = conn.Read(buf)
			}
			if !errors.Is(rerr, transport.ErrConnectionLost) {
				t.Fatalf("read after the broker closed: %v", rerr)
			}
			if err := conn.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			conn.Close()
			if _, err := conn.Write([]byte{0xc0, 0}); !errors.Is(err, transport.ErrConnectionLost) {
				t.Fatalf("write after Close: %v", err)
			}
		})
	}
}
