package client_test

// Proxies and WebSocket options against a private Mosquitto: each kind of
// proxy (mqtttest.StartProxy, on loopback) for each scheme, credentials,
// failover through a proxy, the environment, and WebSocket headers and
// subprotocols through a gateway that checks them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/mqtttest"
	"github.com/zmqtt/zmqtt-go/session"
	"github.com/zmqtt/zmqtt-go/transport"
)

// roundTrip subscribes with sub, publishes with pub at QoS 1 and checks
// that the message arrives intact.
func roundTrip(t *testing.T, ctx context.Context, sub, pub versioned, topic string) {
	t.Helper()
	s, err := sub.Subscribe(ctx, []string{topic}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte(topic), 50)
	if err := pub.Publish(ctx, topic, payload, client.AtLeastOnce, false); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ctx, s); m.Topic != topic || !bytes.Equal(m.Payload, payload) {
		t.Fatalf("got %q with %d bytes, want %q with %d", m.Topic, len(m.Payload), topic, len(payload))
	}
}

// TestProxyPubSubEveryScheme: a subscriber and a publisher, both through
// the same proxy, over TCP, TLS, WebSocket and WebSocket over TLS, for
// each kind of proxy and both versions. The proxy's records show each
// client's connection and the broker address it asked for.
func TestProxyPubSubEveryScheme(t *testing.T) {
	b := brokertest.Start(t)
	for _, pk := range []struct {
		name   string
		kind   mqtttest.ProxyKind
		scheme string
	}{
		{"http", mqtttest.HTTPProxy, "http"},
		{"https", mqtttest.HTTPSProxy, "https"},
		{"socks5", mqtttest.SOCKS5Proxy, "socks5"},
		{"socks5h", mqtttest.SOCKS5Proxy, "socks5h"},
	} {
		p := mqtttest.StartProxy(t, pk.kind, mqtttest.ProxyConfig{User: "alice", Password: "s3cret"})
		pu := p.URL()
		pu.Scheme = pk.scheme
		for _, ep := range endpoints(b) {
			for _, v := range []codec.Version{codec.V311, codec.V5} {
				t.Run(fmt.Sprintf("%s/%s/%v", pk.name, ep.name, v), func(t *testing.T) {
					ctx := deadline(t, 30*time.Second)
					// By name, so that the proxy is seen resolving it
					// (http, https, socks5h) or being given the address
					// this side resolved (socks5).
					u, _ := url.Parse(strings.Replace(ep.url, "127.0.0.1", "localhost", 1))
					want := "localhost:" + u.Port()
					if pk.scheme == "socks5" {
						want = "127.0.0.1:" + u.Port()
					}
					id := fmt.Sprintf("proxy-%s-%s-%d", pk.name, ep.name, v)
					cfg := client.Config{URL: u.String(), TLS: ep.tls, Proxy: pu.String(), ProxyTLS: p.TLSConfig()}
					before := len(p.Requests())
					cfg.ClientID = "sub-" + id
					sub := connect(t, ctx, v, cfg)
					cfg.ClientID = "pub-" + id
					pub := connect(t, ctx, v, cfg)
					roundTrip(t, ctx, sub, pub, "proxied/"+id)
					reqs := p.Requests()[before:]
					if len(reqs) != 2 {
						t.Fatalf("the proxy saw %+v, want the two clients' tunnels", reqs)
					}
					for _, r := range reqs {
						if !r.OK || r.Target != want || r.User != "alice" {
							t.Fatalf("the proxy saw %+v, want tunnels to %s for alice", reqs, want)
						}
					}
				})
			}
		}
	}
}

// TestProxyCredentialsRefusedIsFinal: refused proxy credentials end
// Connect at once with transport.ErrProxyAuth, though the policy retries
// forever: the same credentials would be refused again.
func TestProxyCredentialsRefusedIsFinal(t *testing.T) {
	b := brokertest.Start(t)
	for _, kind := range []mqtttest.ProxyKind{mqtttest.HTTPProxy, mqtttest.SOCKS5Proxy} {
		t.Run(string(kind), func(t *testing.T) {
			p := mqtttest.StartProxy(t, kind, mqtttest.ProxyConfig{User: "alice", Password: "s3cret"})
			pu := p.URL()
			pu.User = url.UserPassword("alice", "Hunter2xyz")
			c, err := client.New5(client.Config5{Config: client.Config{
				URL: b.URL(brokertest.MQTT), ClientID: "proxy-auth-" + string(kind), Proxy: pu.String(), Reconnect: fastReconnect,
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Disconnect(context.Background(), 0, nil)
			err = c.Connect(deadline(t, 20*time.Second))
			if !errors.Is(err, transport.ErrProxyAuth) || !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Connect: %v, want ErrClosed with transport.ErrProxyAuth", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Connect waited for its deadline: %v", err)
			}
			if strings.Contains(err.Error(), "Hunter2xyz") {
				t.Fatalf("the error %q shows the proxy password", err)
			}
			if n := len(p.Requests()); n != 1 {
				t.Fatalf("the proxy saw %d attempts, want 1: %+v", n, p.Requests())
			}
		})
	}
}

// TestProxyFailover: the first server of the list is down behind the
// proxy (502, a refusal worth retrying); the client moves to the next one
// through the same proxy and works there.
func TestProxyFailover(t *testing.T) {
	b := brokertest.Start(t)
	p := mqtttest.StartProxy(t, mqtttest.HTTPProxy, mqtttest.ProxyConfig{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	ctx := deadline(t, 30*time.Second)
	var states []string
	var mu sync.Mutex
	c := connect(t, ctx, codec.V5, client.Config{
		URL: "mqtt://" + dead, Servers: []string{b.URL(brokertest.WS)}, ClientID: "proxy-failover",
		Proxy: p.URL().String(),
		OnStateChange: func(s client.StateChange) {
			mu.Lock()
			states = append(states, s.State.String()+" "+s.Server)
			mu.Unlock()
		},
	})
	roundTrip(t, ctx, c, c, "proxied/failover")
	reqs := p.Requests()
	if len(reqs) != 2 || reqs[0].Target != dead || reqs[0].Reply != "502" || reqs[1].Target != b.Addr(brokertest.WS) || !reqs[1].OK {
		t.Fatalf("the proxy saw %+v, want a 502 for %s, then a tunnel to %s", reqs, dead, b.Addr(brokertest.WS))
	}
	mu.Lock()
	defer mu.Unlock()
	if last := states[len(states)-1]; !strings.HasPrefix(last, client.StateConnected.String()) || !strings.HasSuffix(last, b.URL(brokertest.WS)) {
		t.Fatalf("states %q: want the last one connected to %s", states, b.URL(brokertest.WS))
	}
}

// TestProxyEnvironment: with ProxyFunc set to
// transport.ProxyFromEnvironment the client uses HTTP_PROXY for a broker
// whose name only the proxy knows, and dials directly what NO_PROXY
// names; by default it ignores the environment.
func TestProxyEnvironment(t *testing.T) {
	b := brokertest.Start(t)
	hosts := map[string]string{"broker.proxy.test": "127.0.0.1"}
	p := mqtttest.StartProxy(t, mqtttest.HTTPProxy, mqtttest.ProxyConfig{Hosts: hosts})
	named := strings.Replace(b.URL(brokertest.MQTT), "127.0.0.1", "broker.proxy.test", 1)
	var mu sync.Mutex
	var direct []string
	// The test's own resolver for direct dials (the machine's does not
	// know broker.proxy.test).
	netDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		direct = append(direct, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, strings.Replace(addr, "broker.proxy.test", "127.0.0.1", 1))
	}
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"} {
		t.Setenv(k, "")
		t.Setenv(strings.ToLower(k), "")
	}
	t.Setenv("HTTP_PROXY", p.URL().String())
	wantTarget := "broker.proxy.test:" + strconv.Itoa(b.Port(brokertest.MQTT))

	t.Run("from-environment", func(t *testing.T) {
		ctx := deadline(t, 30*time.Second)
		c := connect(t, ctx, codec.V311, client.Config{URL: named, ClientID: "proxy-env", ProxyFunc: transport.ProxyFromEnvironment, NetDial: netDial})
		roundTrip(t, ctx, c, c, "proxied/env")
		if got := p.Tunnels(); len(got) != 1 || got[0] != wantTarget {
			t.Fatalf("tunnels %q, want one to %s", got, wantTarget)
		}
	})
	t.Run("default-ignores-environment", func(t *testing.T) {
		ctx := deadline(t, 30*time.Second)
		c := connect(t, ctx, codec.V5, client.Config{URL: named, ClientID: "proxy-env-default", NetDial: netDial})
		roundTrip(t, ctx, c, c, "proxied/env-default")
	})
	t.Run("no-proxy", func(t *testing.T) {
		t.Setenv("NO_PROXY", "localhost,.proxy.test")
		ctx := deadline(t, 30*time.Second)
		c := connect(t, ctx, codec.V5, client.Config{URL: named, ClientID: "proxy-env-bypass", ProxyFunc: transport.ProxyFromEnvironment, NetDial: netDial})
		roundTrip(t, ctx, c, c, "proxied/env-bypass")
	})
	if n := len(p.Requests()); n != 1 {
		t.Fatalf("the proxy saw %d requests, want only the first subtest's: %+v", n, p.Requests())
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(direct, " "), p.Addr()+" "+wantTarget+" "+wantTarget; got != want {
		t.Fatalf("NetDial opened %q, want %q (the proxy, then the broker twice)", got, want)
	}
}

// wsGateway is a WebSocket front for the broker's TCP listener that
// refuses a handshake without the Authorization header it wants (401),
// selects among the subprotocols it supports, and reports each accepted
// handshake's headers.
func wsGateway(t *testing.T, broker, wantAuth string, protos []string) (string, <-chan http.Header) {
	t.Helper()
	seen := make(chan http.Header, 8)
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // a hijacked handler is not waited for by srv.Close
		defer wg.Done()
		if r.Header.Get("Authorization") != wantAuth {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: protos})
		if err != nil {
			return
		}
		seen <- r.Header.Clone()
		up, err := net.Dial("tcp", broker)
		if err != nil {
			ws.CloseNow()
			return
		}
		nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
		wg.Add(1)
		go func() { // ends when the broker side closes, or the client's does
			defer wg.Done()
			io.Copy(nc, up)
			nc.Close()
		}()
		io.Copy(up, nc)
		up.Close()
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/mqtt", seen
}

// TestWebSocketHeaderAndSubprotocols: a gateway that wants an
// Authorization header refuses the client without it and carries MQTT
// with it; the configured subprotocol is offered before "mqtt"
// [MQTT-6.0.0-3] and the gateway may select it.
func TestWebSocketHeaderAndSubprotocols(t *testing.T) {
	b := brokertest.Start(t)
	url, seen := wsGateway(t, b.Addr(brokertest.MQTT), "Bearer t0ken", []string{"mqttv3.1"})

	c, err := client.New(client.Config{URL: url, ClientID: "ws-no-header", Reconnect: client.ReconnectPolicy{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Connect(deadline(t, 20*time.Second))
	if !errors.Is(err, transport.ErrConnectionLost) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Connect without the header: %v, want the gateway's 401", err)
	}
	c.Disconnect(context.Background())

	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer t0ken")
	hdr.Set("Cookie", "tenant=blue")
	ctx := deadline(t, 30*time.Second)
	cl := connect(t, ctx, codec.V311, client.Config{URL: url, ClientID: "ws-header", WebSocketHeader: hdr, WebSocketSubprotocols: []string{"mqttv3.1"}})
	roundTrip(t, ctx, cl, cl, "ws/header")
	select {
	case h := <-seen:
		if h.Get("Cookie") != "tenant=blue" {
			t.Errorf("Cookie %q did not arrive", h.Get("Cookie"))
		}
		if got := strings.Join(h.Values("Sec-WebSocket-Protocol"), ","); got != "mqttv3.1,mqtt" {
			t.Errorf("offered %q, want \"mqttv3.1,mqtt\"", got)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

// TestProxyConfigErrors: New refuses proxy and WebSocket settings it
// cannot use, with a *ConfigError naming the field and no password.
func TestProxyConfigErrors(t *testing.T) {
	dial := func(context.Context) (net.Conn, error) { return nil, errors.New("unused") }
	for _, c := range []struct {
		cfg   client.Config
		field string
	}{
		{client.Config{URL: "mqtt://h", Proxy: "ftp://u:Hunter2xyz@p"}, "Proxy"},
		{client.Config{URL: "mqtt://h", Proxy: "http://"}, "Proxy"},
		{client.Config{URL: "mqtt://h", Proxy: "http://p:3128", ProxyFunc: transport.ProxyFromEnvironment}, "Proxy"},
		{client.Config{URL: "mqtt://h", Dial: dial, Proxy: "http://p:3128"}, "Proxy"},
		{client.Config{URL: "mqtt://h", Dial: dial, ProxyFunc: transport.ProxyFromEnvironment}, "Proxy"},
		{client.Config{URL: "ws://h", Dial: dial, WebSocketHeader: http.Header{"Authorization": {"x"}}}, "WebSocketHeader"},
		{client.Config{URL: "ws://h", Dial: dial, WebSocketSubprotocols: []string{"mqttv3.1"}}, "WebSocketSubprotocols"},
	} {
		_, err := client.New(c.cfg)
		var ce *client.ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field || !errors.Is(err, session.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want a ConfigError for %s", c.cfg, err, c.field)
		}
		if err != nil && strings.Contains(err.Error(), "Hunter2xyz") {
			t.Errorf("the error %q shows the proxy password", err)
		}
	}
	c, err := client.New(client.Config{URL: "mqtt://h", Proxy: "socks5h://u:p@127.0.0.1:1080"})
	if err != nil {
		t.Fatalf("a good proxy URL: %v", err)
	}
	c.Disconnect(context.Background())
}
