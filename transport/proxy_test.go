package transport_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/mqtttest"
	"github.com/zmqtt/zmqtt-go/transport"
)

// proxyCase is a way to reach a proxy: the kind of server and the scheme
// the client names it with.
type proxyCase struct {
	name   string
	kind   mqtttest.ProxyKind
	scheme string
}

var proxyCases = []proxyCase{
	{"http", mqtttest.HTTPProxy, "http"},
	{"https", mqtttest.HTTPSProxy, "https"},
	{"socks5", mqtttest.SOCKS5Proxy, "socks5"},
	{"socks5h", mqtttest.SOCKS5Proxy, "socks5h"},
}

// proxyURL is p's URL under the case's scheme.
func (pc proxyCase) proxyURL(p *mqtttest.Proxy) *url.URL {
	u := p.URL()
	u.Scheme = pc.scheme
	return u
}

// asLocalhost names the broker "localhost" instead of 127.0.0.1, so that a
// proxy that resolves the name can be told from one given an address.
func asLocalhost(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }

// proxyErr checks that err is a *ConnError with Op "proxy" around a
// *ProxyError of the given kind, and returns the *ProxyError.
func proxyErr(t *testing.T, err error, kind error) *transport.ProxyError {
	t.Helper()
	checkConnError(t, err, "proxy")
	var pe *transport.ProxyError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *ProxyError", err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	for _, other := range []error{transport.ErrProxyUnreachable, transport.ErrProxyAuth, transport.ErrProxyRefused} {
		if other != kind && errors.Is(err, other) {
			t.Fatalf("err = %v matches %v as well as %v", err, other, kind)
		}
	}
	return pe
}

// TestProxyEveryScheme carries an MQTT exchange with a private Mosquitto
// over TCP, TLS, WebSocket and WebSocket over TLS through each kind of
// proxy, with credentials, and checks from the proxy's records that the
// connection went through it and to which address: the broker's name for
// HTTP CONNECT and socks5h, the address this side resolved for socks5.
func TestProxyEveryScheme(t *testing.T) {
	b := brokertest.Start(t)
	payload := make([]byte, 2000)
	rand.Read(payload)
	for _, pc := range proxyCases {
		p := mqtttest.StartProxy(t, pc.kind, mqtttest.ProxyConfig{User: "alice", Password: "s3cret"})
		for _, l := range []brokertest.Listener{brokertest.MQTT, brokertest.MQTTS, brokertest.WS, brokertest.WSS} {
			t.Run(pc.name+"/"+string(l), func(t *testing.T) {
				ctx := testCtx(t)
				before := len(p.Requests())
				conn, err := transport.Dial(ctx, asLocalhost(b.URL(l)), &transport.Options{
					TLSConfig:      b.TLSConfig(),
					Proxy:          transport.ProxyURL(pc.proxyURL(p)),
					ProxyTLSConfig: p.TLSConfig(),
				})
				if err != nil {
					t.Fatalf("Dial through %s: %v", pc.name, err)
				}
				exchange(t, ctx, conn, codec.V5, payload)
				conn.Close()
				want := "localhost:" + strconv.Itoa(b.Port(l))
				if pc.scheme == "socks5" {
					want = b.Addr(l)
				}
				reqs := p.Requests()[before:]
				if len(reqs) != 1 || !reqs[0].OK || reqs[0].Target != want || reqs[0].User != "alice" {
					t.Fatalf("the proxy saw %+v, want one tunnel to %s for alice", reqs, want)
				}
			})
		}
	}
}

// TestProxyTLSNamesTheBroker: TLS inside a tunnel is verified against the
// broker's name, not the proxy's: the listener whose certificate names
// only wrong.example fails with a host name error for "localhost".
func TestProxyTLSNamesTheBroker(t *testing.T) {
	b := brokertest.Start(t)
	p := mqtttest.StartProxy(t, mqtttest.HTTPProxy, mqtttest.ProxyConfig{})
	for _, l := range []brokertest.Listener{brokertest.WrongName, brokertest.MQTTS} {
		conn, err := transport.Dial(testCtx(t), asLocalhost(b.URL(l)), &transport.Options{TLSConfig: b.TLSConfig(), Proxy: transport.ProxyURL(p.URL())})
		if l == brokertest.MQTTS {
			if err != nil {
				t.Fatalf("the valid certificate through the proxy: %v", err)
			}
			conn.Close()
			continue
		}
		var he x509.HostnameError
		if !errors.As(err, &he) || he.Host != "localhost" {
			t.Fatalf("err = %v, want a host name error for localhost", err)
		}
		checkConnError(t, err, "tls handshake")
	}
	if got := len(p.Tunnels()); got != 2 {
		t.Fatalf("%d tunnels, want 2", got)
	}
}

// TestProxyCredentials: a proxy that wants credentials and gets none, or
// wrong ones, fails the dial with ErrProxyAuth, which names the proxy
// without its credentials and opens no tunnel.
func TestProxyCredentials(t *testing.T) {
	b := brokertest.Start(t)
	for _, pc := range proxyCases[:3] {
		p := mqtttest.StartProxy(t, pc.kind, mqtttest.ProxyConfig{User: "alice", Password: "s3cret"})
		for _, user := range []*url.Userinfo{nil, url.UserPassword("alice", "Hunter2xyz"), url.UserPassword("mallory", "s3cret")} {
			name := "none"
			if user != nil {
				name = user.Username()
			}
			t.Run(pc.name+"/"+name, func(t *testing.T) {
				pu := pc.proxyURL(p)
				pu.User = user
				_, err := transport.Dial(testCtx(t), b.URL(brokertest.MQTT), &transport.Options{Proxy: transport.ProxyURL(pu), ProxyTLSConfig: p.TLSConfig()})
				pe := proxyErr(t, err, transport.ErrProxyAuth)
				if strings.Contains(err.Error(), "Hunter2xyz") || strings.Contains(err.Error(), "s3cret") || strings.Contains(pe.Proxy, "@") {
					t.Errorf("the error %q shows credentials", err)
				}
				if !strings.Contains(err.Error(), p.Addr()) || pe.Target != b.Addr(brokertest.MQTT) {
					t.Errorf("the error %q does not name the proxy %s and the target %s", err, p.Addr(), b.Addr(brokertest.MQTT))
				}
				if pc.kind != mqtttest.SOCKS5Proxy {
					if pe.StatusCode != http.StatusProxyAuthRequired {
						t.Errorf("StatusCode %d, want 407", pe.StatusCode)
					}
					if user == nil && !strings.Contains(err.Error(), "no credentials") {
						t.Errorf("the error %q does not say that no credentials were given", err)
					}
				}
			})
		}
		if n := len(p.Tunnels()); n != 0 {
			t.Fatalf("%s: %d tunnels opened without valid credentials", pc.name, n)
		}
		if n := len(p.Requests()); n != 3 {
			t.Fatalf("%s: the proxy saw %d requests, want 3: %+v", pc.name, n, p.Requests())
		}
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestProxyRefusedAndUnreachable: a broker the proxy cannot reach is
// ErrProxyRefused (with the HTTP status or the SOCKS5 reply); a proxy that
// cannot be reached, whose certificate is not trusted, or that never
// answers is ErrProxyUnreachable, with the cause.
func TestProxyRefusedAndUnreachable(t *testing.T) {
	dead := closedAddr(t)
	for _, pc := range proxyCases {
		t.Run("refused/"+pc.name, func(t *testing.T) {
			p := mqtttest.StartProxy(t, pc.kind, mqtttest.ProxyConfig{})
			_, err := transport.Dial(testCtx(t), "mqtt://"+dead, &transport.Options{Proxy: transport.ProxyURL(pc.proxyURL(p)), ProxyTLSConfig: p.TLSConfig()})
			pe := proxyErr(t, err, transport.ErrProxyRefused)
			want := "502 Bad Gateway"
			if pc.kind == mqtttest.SOCKS5Proxy {
				want = "connection refused"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error %q does not say %q", err, want)
			}
			if pc.kind != mqtttest.SOCKS5Proxy && pe.StatusCode != http.StatusBadGateway {
				t.Errorf("StatusCode %d, want 502", pe.StatusCode)
			}
			if reqs := p.Requests(); len(reqs) != 1 || reqs[0].OK || reqs[0].Target != dead {
				t.Errorf("the proxy saw %+v, want one refused request for %s", reqs, dead)
			}
		})
		t.Run("unreachable/"+pc.name, func(t *testing.T) {
			pu := &url.URL{Scheme: pc.scheme, Host: closedAddr(t)}
			_, err := transport.Dial(testCtx(t), "mqtt://127.0.0.1:1883", &transport.Options{Proxy: transport.ProxyURL(pu)})
			pe := proxyErr(t, err, transport.ErrProxyUnreachable)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("err = %v, want the refused dial as its cause", err)
			}
			if pe.Target != "127.0.0.1:1883" {
				t.Errorf("Target %q", pe.Target)
			}
		})
	}
	t.Run("untrusted-https-proxy", func(t *testing.T) {
		p := mqtttest.StartProxy(t, mqtttest.HTTPSProxy, mqtttest.ProxyConfig{})
		_, err := transport.Dial(testCtx(t), "mqtt://"+dead, &transport.Options{Proxy: transport.ProxyURL(p.URL())})
		proxyErr(t, err, transport.ErrProxyUnreachable)
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Errorf("err = %v, want an unknown authority error", err)
		}
		if len(p.Requests()) != 0 {
			t.Errorf("a CONNECT went to a proxy whose certificate failed")
		}
	})
	// A proxy that accepts and never answers: the dial ends with its
	// context, as a timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	held.Add(1)
	go func() {
		defer held.Done()
		var conns []net.Conn
		for {
			c, err := silent.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, scheme := range []string{"http", "socks5h"} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := transport.Dial(ctx, "mqtt://broker.example:1883", &transport.Options{Proxy: transport.ProxyURL(&url.URL{Scheme: scheme, Host: silent.Addr().String()})})
		cancel()
		proxyErr(t, err, transport.ErrProxyUnreachable)
		var ne net.Error
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: err = %v, want a timeout matching context.DeadlineExceeded", scheme, err)
		}
	}
	silent.Close()
	held.Wait()
}

// fakeProxy accepts one connection, reads an HTTP request head and hands
// it to answer, which writes to the connection.
func fakeProxy(t *testing.T, answer func(c net.Conn, head string)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		answer(c, head.String())
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

// TestProxyCONNECTRequest checks the CONNECT request on the wire, and that
// bytes the proxy sent in the same segment as its answer are read first
// from the conn, not lost.
func TestProxyCONNECTRequest(t *testing.T) {
	heads := make(chan string, 1)
	addr := fakeProxy(t, func(c net.Conn, head string) {
		heads <- head
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\nVia: fake\r\n\r\nEARLY")
		io.WriteString(c, "+LATE")
		io.Copy(io.Discard, c) // until the client closes
	})
	ctx := testCtx(t)
	conn, err := transport.Dial(ctx, "mqtt://broker.example:1883", &transport.Options{
		Proxy: transport.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: url.UserPassword("bob", "pa:ss")}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := <-heads
	auth := "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("bob:pa:ss"))
	for _, want := range []string{"CONNECT broker.example:1883 HTTP/1.1\r\n", "Host: broker.example:1883\r\n", auth + "\r\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("the request\n%s\nlacks %q", head, want)
		}
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len("EARLY+LATE"))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "EARLY+LATE" {
		t.Fatalf("read %q, %v; want the bytes after the answer, EARLY+LATE", got, err)
	}
}

// TestProxyAnswers: a 2xx other than 200 opens the tunnel (RFC 9110,
// section 9.3.6); a 407 asking for a scheme other than Basic says so; a
// proxy that closes before answering is unreachable.
func TestProxyAnswers(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer string
		kind   error // nil: the tunnel opens
		say    string
	}{
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", nil, ""},
		{"negotiate", "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n", transport.ErrProxyAuth, "Negotiate authentication"},
		{"403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", transport.ErrProxyRefused, "403 Forbidden"},
		{"closed", "", transport.ErrProxyUnreachable, "EOF"},
		{"not-http", "SSH-2.0-OpenSSH\r\n\r\n", transport.ErrProxyUnreachable, "malformed HTTP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := fakeProxy(t, func(conn net.Conn, _ string) { io.WriteString(conn, c.answer) })
			conn, err := transport.Dial(testCtx(t), "mqtt://broker.example:1883", &transport.Options{Proxy: transport.ProxyURL(&url.URL{Scheme: "http", Host: addr})})
			if c.kind == nil {
				if err != nil {
					t.Fatalf("a 204 answer: %v", err)
				}
				conn.Close()
				return
			}
			proxyErr(t, err, c.kind)
			if !strings.Contains(err.Error(), c.say) {
				t.Errorf("the error %q does not say %q", err, c.say)
			}
		})
	}
}

// clearProxyEnv unsets every proxy variable for the test.
func clearProxyEnv(t *testing.T) {
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"} {
		t.Setenv(k, "")
		t.Setenv(strings.ToLower(k), "")
	}
}

// TestProxyFromEnvironment checks which variable applies to which broker
// URL, NO_PROXY, the loopback rule, lower case, and bad values.
func TestProxyFromEnvironment(t *testing.T) {
	const hp, sp, ap = "http://hp.example:3128", "socks5h://sp.example:1080", "http://ap.example:8080"
	for _, c := range []struct {
		env    map[string]string
		broker string
		want   string // "" for direct
	}{
		{map[string]string{"HTTP_PROXY": hp}, "mqtt://broker.test:1883", hp},
		{map[string]string{"HTTP_PROXY": hp}, "tcp://broker.test", hp},
		{map[string]string{"HTTP_PROXY": hp}, "ws://broker.test/mqtt", hp},
		{map[string]string{"HTTP_PROXY": hp}, "mqtts://broker.test", ""},
		{map[string]string{"HTTP_PROXY": hp}, "wss://broker.test", ""},
		{map[string]string{"HTTPS_PROXY": sp}, "mqtts://broker.test", sp},
		{map[string]string{"HTTPS_PROXY": sp}, "ssl://broker.test", sp},
		{map[string]string{"HTTPS_PROXY": sp}, "tls://broker.test", sp},
		{map[string]string{"HTTPS_PROXY": sp}, "wss://broker.test", sp},
		{map[string]string{"HTTPS_PROXY": sp}, "mqtt://broker.test", ""},
		{map[string]string{"ALL_PROXY": ap}, "mqtt://broker.test", ap},
		{map[string]string{"ALL_PROXY": ap}, "wss://broker.test", ap},
		{map[string]string{"ALL_PROXY": ap, "HTTP_PROXY": hp}, "mqtt://broker.test", hp},
		{map[string]string{"ALL_PROXY": ap, "HTTP_PROXY": hp}, "mqtts://broker.test", ap},
		{map[string]string{"http_proxy": hp}, "mqtt://broker.test", hp},
		{map[string]string{"all_proxy": ap}, "mqtts://broker.test", ap},
		{map[string]string{"http_proxy": hp, "HTTP_PROXY": ap}, "mqtt://broker.test", hp},
		{map[string]string{"HTTP_PROXY": "hp.example:3128"}, "mqtt://broker.test", "http://hp.example:3128"},
		{map[string]string{"ALL_PROXY": ap, "NO_PROXY": "broker.test"}, "mqtt://broker.test", ""},
		{map[string]string{"ALL_PROXY": ap, "NO_PROXY": "broker.test"}, "mqtts://eu.broker.test", ""},
		{map[string]string{"ALL_PROXY": ap, "NO_PROXY": "other.test,.broker.test"}, "mqtt://broker.test", ap},
		{map[string]string{"ALL_PROXY": ap, "no_proxy": ".broker.test"}, "ws://eu.broker.test", ""},
		{map[string]string{"ALL_PROXY": ap, "NO_PROXY": "broker.test:8883"}, "mqtts://broker.test", ""},
		{map[string]string{"ALL_PROXY": ap, "NO_PROXY": "broker.test:8883"}, "mqtt://broker.test", ap},
		{map[string]string{"ALL_PROXY": ap, "NO_PROXY": "10.0.0.0/8"}, "mqtt://10.1.2.3", ""},
		{map[string]string{"ALL_PROXY": ap, "NO_PROXY": "*"}, "mqtt://broker.test", ""},
		{map[string]string{"ALL_PROXY": ap}, "mqtt://127.0.0.1:1883", ""},
		{map[string]string{"ALL_PROXY": ap}, "mqtt://localhost", ""},
		{map[string]string{"ALL_PROXY": ap}, "wss://[::1]:443", ""},
		{map[string]string{"ALL_PROXY": ap}, "unix:///tmp/mqtt.sock", ""},
		{map[string]string{"ALL_PROXY": ap, "REQUEST_METHOD": "GET"}, "mqtt://broker.test", ap},
		{map[string]string{}, "mqtt://broker.test", ""},
	} {
		clearProxyEnv(t)
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		u, err := url.Parse(c.broker)
		if err != nil {
			t.Fatal(err)
		}
		got, err := transport.ProxyFromEnvironment(u)
		if err != nil {
			t.Errorf("%v %s: %v", c.env, c.broker, err)
			continue
		}
		if gs := fmtURL(got); gs != c.want {
			t.Errorf("%v %s: proxy %q, want %q", c.env, c.broker, gs, c.want)
		}
	}
	for _, c := range []struct {
		env     map[string]string
		mention string
	}{
		{map[string]string{"HTTP_PROXY": "ftp://user:Hunter2xyz@hp.example"}, "HTTP_PROXY"},
		{map[string]string{"http_proxy": "http://hp.example:99999"}, "http_proxy"},
		{map[string]string{"ALL_PROXY": "http://%zz"}, "ALL_PROXY"},
		{map[string]string{"HTTP_PROXY": hp, "REQUEST_METHOD": "GET"}, "CGI"},
	} {
		clearProxyEnv(t)
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		_, err := transport.ProxyFromEnvironment(&url.URL{Scheme: "mqtt", Host: "broker.test"})
		var ue *transport.URLError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.mention) || strings.Contains(err.Error(), "Hunter2xyz") {
			t.Errorf("%v: err = %v, want a *URLError naming %s without the password", c.env, err, c.mention)
		}
	}
}

func fmtURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// TestProxyFromEnvironmentDial dials a private Mosquitto under a name only
// the proxies know (broker.proxy.test), so a dial that works went through
// a proxy, and one that bypasses the proxy reaches the broker only through
// the test's own resolver (Options.Dialer): HTTP_PROXY carries mqtt:// and
// ws://, HTTPS_PROXY mqtts:// and wss://, NO_PROXY sends them direct, and
// a loopback broker is always dialled direct.
func TestProxyFromEnvironmentDial(t *testing.T) {
	b := brokertest.Start(t)
	hosts := map[string]string{"broker.proxy.test": "127.0.0.1"}
	hp := mqtttest.StartProxy(t, mqtttest.HTTPProxy, mqtttest.ProxyConfig{Hosts: hosts})
	sp := mqtttest.StartProxy(t, mqtttest.SOCKS5Proxy, mqtttest.ProxyConfig{Hosts: hosts, User: "u", Password: "p"})
	spURL := sp.URL()
	spURL.Scheme = "socks5h"
	var mu sync.Mutex
	var direct []string
	opts := &transport.Options{
		TLSConfig: &tls.Config{RootCAs: b.TLSConfig().RootCAs, ServerName: "localhost"},
		Proxy:     transport.ProxyFromEnvironment,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			direct = append(direct, addr)
			mu.Unlock()
			if h, port, err := net.SplitHostPort(addr); err == nil && hosts[h] != "" {
				addr = net.JoinHostPort(hosts[h], port)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	named := func(l brokertest.Listener) string {
		return strings.Replace(b.URL(l), "127.0.0.1", "broker.proxy.test", 1)
	}
	dial := func(t *testing.T, url string) {
		t.Helper()
		ctx := testCtx(t)
		conn, err := transport.Dial(ctx, url, opts)
		if err != nil {
			t.Fatalf("Dial(%s): %v", url, err)
		}
		exchange(t, ctx, conn, codec.V311, []byte("through the environment's proxy"))
		conn.Close()
	}
	takeDirect := func() []string {
		mu.Lock()
		defer mu.Unlock()
		d := direct
		direct = nil
		return d
	}

	clearProxyEnv(t)
	t.Setenv("HTTP_PROXY", hp.URL().String())
	t.Setenv("https_proxy", spURL.String())
	for _, l := range []brokertest.Listener{brokertest.MQTT, brokertest.WS, brokertest.MQTTS, brokertest.WSS} {
		dial(t, named(l))
	}
	wantTarget := func(l brokertest.Listener) string { return "broker.proxy.test:" + strconv.Itoa(b.Port(l)) }
	if got, want := strings.Join(hp.Tunnels(), " "), wantTarget(brokertest.MQTT)+" "+wantTarget(brokertest.WS); got != want {
		t.Errorf("the HTTP proxy carried %q, want %q", got, want)
	}
	if got, want := strings.Join(sp.Tunnels(), " "), wantTarget(brokertest.MQTTS)+" "+wantTarget(brokertest.WSS); got != want {
		t.Errorf("the SOCKS5 proxy carried %q, want %q", got, want)
	}
	if got, want := strings.Join(takeDirect(), " "), strings.Join([]string{hp.Addr(), hp.Addr(), sp.Addr(), sp.Addr()}, " "); got != want {
		t.Errorf("the dialer opened %q, want the proxies %q", got, want)
	}

	t.Setenv("NO_PROXY", "proxy.test")
	dial(t, named(brokertest.MQTT))
	dial(t, named(brokertest.WSS))
	dial(t, b.URL(brokertest.MQTT)) // 127.0.0.1: direct whatever NO_PROXY says
	if got, want := strings.Join(takeDirect(), " "), wantTarget(brokertest.MQTT)+" "+wantTarget(brokertest.WSS)+" "+b.Addr(brokertest.MQTT); got != want {
		t.Errorf("with NO_PROXY the dialer opened %q, want the broker directly: %q", got, want)
	}
	if len(hp.Tunnels()) != 2 || len(sp.Tunnels()) != 2 {
		t.Errorf("a proxy carried a connection NO_PROXY excludes: %q %q", hp.Tunnels(), sp.Tunnels())
	}
}

// TestProxyDefaultIgnoresEnvironment: without Options.Proxy the
// environment is not read.
func TestProxyDefaultIgnoresEnvironment(t *testing.T) {
	b := brokertest.Start(t)
	p := mqtttest.StartProxy(t, mqtttest.HTTPProxy, mqtttest.ProxyConfig{})
	clearProxyEnv(t)
	t.Setenv("ALL_PROXY", p.URL().String())
	ctx := testCtx(t)
	// A name, not 127.0.0.1, so that the loopback rule cannot be what
	// keeps the dial direct; the test's dialer resolves it.
	url := strings.Replace(b.URL(brokertest.MQTT), "127.0.0.1", "broker.proxy.test", 1)
	conn, err := transport.Dial(ctx, url, &transport.Options{Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, strings.Replace(addr, "broker.proxy.test", "127.0.0.1", 1))
	}})
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, ctx, conn, codec.V5, []byte("direct"))
	conn.Close()
	if n := len(p.Requests()); n != 0 {
		t.Fatalf("the proxy of ALL_PROXY saw %d requests; the default must not read the environment", n)
	}
}

func TestParseProxyURL(t *testing.T) {
	for _, c := range []struct {
		raw, want string
		scheme    bool // wraps ErrUnsupportedScheme
	}{
		{"http://proxy.example:3128", "http://proxy.example:3128", false},
		{"HTTP://u:p@proxy.example", "http://u:p@proxy.example", false},
		{"https://proxy.example", "https://proxy.example", false},
		{"socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080", false},
		{"socks5h://[::1]", "socks5h://[::1]", false},
		{"proxy.example:3128", "http://proxy.example:3128", false},
		{"ftp://proxy.example", "", true},
		{"socks4://proxy.example", "", true},
		{"http://", "", false},
		{"http://proxy.example:0", "", false},
		{"http://u:Hunter2xyz@%zz", "", false},
	} {
		u, err := transport.ParseProxyURL(c.raw)
		if c.want != "" {
			if err != nil || u.String() != c.want {
				t.Errorf("ParseProxyURL(%q) = %v, %v; want %s", c.raw, u, err, c.want)
			}
			continue
		}
		var ue *transport.URLError
		if !errors.As(err, &ue) {
			t.Errorf("ParseProxyURL(%q) = %v, %v; want a *URLError", c.raw, u, err)
			continue
		}
		if errors.Is(err, transport.ErrUnsupportedScheme) != c.scheme {
			t.Errorf("ParseProxyURL(%q): %v matches ErrUnsupportedScheme: %v", c.raw, err, !c.scheme)
		}
		if strings.Contains(err.Error(), "Hunter2xyz") || !strings.Contains(err.Error(), "proxy") {
			t.Errorf("ParseProxyURL(%q): %q shows the password or does not say it is the proxy", c.raw, err)
		}
	}
	// A Proxy function's URL is checked the same way at Dial.
	_, err := transport.Dial(testCtx(t), "mqtt://broker.example", &transport.Options{Proxy: transport.ProxyURL(&url.URL{Scheme: "socks4", Host: "p:1080"})})
	if !errors.Is(err, transport.ErrUnsupportedScheme) || errors.Is(err, transport.ErrConnectionLost) {
		t.Errorf("Dial with a socks4 proxy: %v, want a *URLError for the scheme", err)
	}
	// A Proxy function's own error is a proxy ConnError.
	boom := errors.New("no route decided")
	_, err = transport.Dial(testCtx(t), "mqtt://broker.example", &transport.Options{Proxy: func(*url.URL) (*url.URL, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the Proxy function's error", err)
	}
	checkConnError(t, err, "proxy")
}

// handshake is what a WebSocket server saw of one upgrade request.
type handshake struct {
	host     string
	header   http.Header
	selected string
}

// wsRecorder serves WebSocket upgrades, selecting among protos, and
// reports each request it saw. Each connection writes "hello" and waits
// for the client to close.
func wsRecorder(t *testing.T, protos []string) (string, <-chan handshake) {
	t.Helper()
	seen := make(chan handshake, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: protos})
		if err != nil {
			return
		}
		defer c.CloseNow()
		seen <- handshake{host: r.Host, header: r.Header.Clone(), selected: c.Subprotocol()}
		c.Write(r.Context(), websocket.MessageBinary, []byte("hello"))
		c.Read(r.Context())
	}))
	t.Cleanup(srv.Close)
	return "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/mqtt", seen
}

// TestWebSocketHeadersAndSubprotocols: the configured headers reach the
// server (Host included), "mqtt" is always offered [MQTT-6.0.0-3] and
// added last to a list without it, and the server may select any offered
// name; all of it through a proxy too.
func TestWebSocketHeadersAndSubprotocols(t *testing.T) {
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer t0ken")
	hdr.Set("Cookie", "session=abc")
	hdr.Set("X-Tenant", "blue")
	withHost := hdr.Clone()
	withHost.Set("Host", "ingress.example")
	for _, c := range []struct {
		name     string
		server   []string // what the server accepts
		opts     transport.Options
		offered  string // the Sec-WebSocket-Protocol request header
		selected string
		host     string // "" for the URL's
		proxy    bool
	}{
		{name: "default", server: []string{"mqtt"}, offered: "mqtt", selected: "mqtt"},
		{name: "headers", server: []string{"mqtt"}, opts: transport.Options{HTTPHeader: hdr}, offered: "mqtt", selected: "mqtt"},
		{name: "host", server: []string{"mqtt"}, opts: transport.Options{HTTPHeader: withHost}, offered: "mqtt", selected: "mqtt", host: "ingress.example"},
		{name: "mqtt-added", server: []string{"mqttv3.1"}, opts: transport.Options{Subprotocols: []string{"mqttv3.1"}}, offered: "mqttv3.1,mqtt", selected: "mqttv3.1"},
		{name: "mqtt-kept-in-place", server: []string{"mqtt", "x-custom"}, opts: transport.Options{Subprotocols: []string{"mqtt", "x-custom"}}, offered: "mqtt,x-custom", selected: "mqtt"},
		{name: "server-prefers-mqtt", server: []string{"mqtt"}, opts: transport.Options{Subprotocols: []string{"mqttv3.1"}}, offered: "mqttv3.1,mqtt", selected: "mqtt"},
		{name: "proxied", server: []string{"mqtt"}, opts: transport.Options{HTTPHeader: hdr}, offered: "mqtt", selected: "mqtt", proxy: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			url, seen := wsRecorder(t, c.server)
			opts := c.opts
			var p *mqtttest.Proxy
			if c.proxy {
				p = mqtttest.StartProxy(t, mqtttest.HTTPProxy, mqtttest.ProxyConfig{})
				opts.Proxy = transport.ProxyURL(p.URL())
			}
			ctx := testCtx(t)
			conn, err := transport.Dial(ctx, url, &opts)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var h handshake
			select {
			case h = <-seen:
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			if got := strings.Join(h.header.Values("Sec-WebSocket-Protocol"), ","); got != c.offered {
				t.Errorf("offered %q, want %q", got, c.offered)
			}
			if h.selected != c.selected {
				t.Errorf("the server selected %q, want %q", h.selected, c.selected)
			}
			for k := range opts.HTTPHeader {
				if k == "Host" {
					continue
				}
				if got, want := h.header.Get(k), opts.HTTPHeader.Get(k); got != want {
					t.Errorf("header %s arrived as %q, want %q", k, got, want)
				}
			}
			wantHost := c.host
			if wantHost == "" {
				wantHost = strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/mqtt")
			}
			if h.host != wantHost {
				t.Errorf("Host %q, want %q", h.host, wantHost)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			got := make([]byte, 5)
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != "hello" {
				t.Fatalf("read %q, %v", got, err)
			}
			if p != nil && len(p.Tunnels()) != 1 {
				t.Errorf("the proxy carried %q, want the one connection", p.Tunnels())
			}
		})
	}
}
