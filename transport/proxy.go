package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/proxy"
)

// The proxy schemes and their default ports, as net/http has them.
var proxyPorts = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}

const wantProxySchemes = "want http://, https://, socks5:// or socks5h://"

// ParseProxyURL parses and checks a proxy URL:
//
//	http://[user:pass@]host[:port]     HTTP CONNECT, default port 80
//	https://[user:pass@]host[:port]    HTTP CONNECT over TLS to the proxy, default port 443
//	socks5://[user:pass@]host[:port]   SOCKS5; this client resolves the broker's name, default port 1080
//	socks5h://[user:pass@]host[:port]  SOCKS5; the proxy resolves the broker's name
//
// A value without a scheme ("proxy.corp:3128") is taken as http://, as
// net/http and curl take the proxy environment variables. The user
// information, when present, is sent as Basic credentials
// (Proxy-Authorization) or as SOCKS5 user/password.
//
// Errors: a *URLError (without the credentials in it) for a URL that does
// not parse, has no host or a bad port, or has another scheme (then it
// wraps ErrUnsupportedScheme).
func ParseProxyURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// "host:port" parses with "host" as its scheme: try it as http.
		if u2, err2 := url.Parse("http://" + raw); err2 == nil && u2.Host != "" && !strings.Contains(raw, "://") {
			u, err = u2, nil
		}
	}
	if err != nil {
		return nil, &URLError{URL: redactRaw(raw), Reason: "proxy URL does not parse", Err: err}
	}
	scheme := strings.ToLower(u.Scheme)
	def, ok := proxyPorts[scheme]
	if !ok {
		return nil, &URLError{URL: redact(u), Reason: "proxy scheme " + u.Scheme + " is not supported (" + wantProxySchemes + ")", Err: ErrUnsupportedScheme}
	}
	if _, err := hostPort(u, def); err != nil {
		var ue *URLError
		if errors.As(err, &ue) {
			ue.Reason = "proxy URL: " + ue.Reason
		}
		return nil, err
	}
	u.Scheme = scheme
	return u, nil
}

// ProxyURL returns an Options.Proxy function that sends every dial through
// the proxy u (unix:// URLs excepted: Dial never proxies those), whatever
// the environment says. u is checked at each dial as ParseProxyURL checks
// it.
func ProxyURL(u *url.URL) func(broker *url.URL) (*url.URL, error) {
	return func(*url.URL) (*url.URL, error) { return u, nil }
}

// ProxyFromEnvironment is an Options.Proxy function that takes the proxy
// from the environment, the way curl and net/http do, for MQTT's schemes:
//
//   - mqtts://, ssl://, tls://, wss:// (TLS to the broker) use HTTPS_PROXY;
//     mqtt://, tcp://, ws:// use HTTP_PROXY. Either falls back to
//     ALL_PROXY when unset. The schemes map by whether the broker
//     connection is encrypted, as an https:// or http:// request's does; in
//     every case the proxy is asked for a tunnel (CONNECT or SOCKS5), never
//     for a forwarded HTTP request.
//   - NO_PROXY lists hosts (or domains, IP prefixes, CIDR ranges, with an
//     optional port; "*" for all) that are dialled directly, with the rules
//     of golang.org/x/net/http/httpproxy, which net/http uses too.
//   - localhost and loopback addresses are always dialled directly, as
//     net/http does.
//   - unix:// URLs are never proxied.
//
// Each variable is also read in lower case; the lower-case one wins when
// both are set, as in net/http. A value without a scheme is an http://
// proxy. The environment is read at each dial (net/http reads it once), so a
// long-running client follows a change at its next reconnect. In a CGI
// process (REQUEST_METHOD set), HTTP_PROXY is refused with an error, as
// net/http refuses it: a request header can set it there.
//
// It returns nil, nil when the broker is to be dialled directly, and a
// *URLError when the variable that applies holds a URL ParseProxyURL
// refuses: a typo in the environment is reported, not silently bypassed.
func ProxyFromEnvironment(broker *url.URL) (*url.URL, error) {
	if broker == nil || strings.EqualFold(broker.Scheme, "unix") {
		return nil, nil
	}
	ep, err := parseEndpoint(broker.String())
	if err != nil {
		return nil, err
	}
	secure := ep.kind == kindTLS || strings.EqualFold(broker.Scheme, "wss")
	cfg := httpproxy.FromEnvironment()
	all, allName := getEnvAny("all_proxy", "ALL_PROXY")
	raw, name := getEnvAny("http_proxy", "HTTP_PROXY")
	probe := "http"
	if secure {
		raw, name = getEnvAny("https_proxy", "HTTPS_PROXY")
		probe = "https"
	}
	if raw == "" {
		raw, name = all, allName
		// HTTP_PROXY is the variable a CGI request header can inject;
		// ALL_PROXY is not.
		cfg.CGI = false
	}
	if raw == "" {
		return nil, nil
	}
	pu, err := ParseProxyURL(raw)
	if err != nil {
		var ue *URLError
		if errors.As(err, &ue) {
			ue.Reason = "environment variable " + name + ": " + ue.Reason
		}
		return nil, err
	}
	// httpproxy applies NO_PROXY and the loopback rule; it is given the
	// proxy already checked and a URL of the scheme the variable is for.
	cfg.HTTPProxy, cfg.HTTPSProxy = pu.String(), pu.String()
	target, err := cfg.ProxyFunc()(&url.URL{Scheme: probe, Host: ep.addr})
	if err != nil {
		return nil, &URLError{URL: redact(pu), Reason: "environment variable " + name +
			" is not used in a CGI process (REQUEST_METHOD is set), where a request header can set it; set ALL_PROXY or Options.Proxy instead", Err: err}
	}
	if target == nil {
		return nil, nil
	}
	return pu, nil
}

// getEnvAny returns the first of names that is set and non-empty, and its
// name.
func getEnvAny(names ...string) (string, string) {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v, n
		}
	}
	return "", ""
}

// streamDialer opens the byte stream of one Dial: directly, through
// Options.Dialer, or through a proxy reached with either.
type streamDialer struct {
	opts  *Options
	proxy *url.URL // nil: direct
}

// newStreamDialer asks Options.Proxy for the proxy of the broker ep.
func newStreamDialer(opts *Options, ep *endpoint) (*streamDialer, error) {
	d := &streamDialer{opts: opts}
	if opts.Proxy == nil || ep.kind == kindUnix {
		return d, nil
	}
	b := *ep.u
	b.User = nil
	pu, err := opts.Proxy(&b)
	if err != nil {
		var ue *URLError
		var ce *ConnError
		if errors.As(err, &ue) || errors.As(err, &ce) {
			return nil, err
		}
		return nil, &ConnError{Op: "proxy", Addr: ep.redacted, Err: err}
	}
	if pu == nil {
		return d, nil
	}
	if d.proxy, err = ParseProxyURL(pu.String()); err != nil {
		return nil, err
	}
	return d, nil
}

// direct opens a stream without a proxy.
func (d *streamDialer) direct(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.opts.Dialer != nil {
		c, err := d.opts.Dialer(ctx, network, addr)
		if err == nil && c == nil {
			err = errors.New("custom dialer returned no connection")
		}
		return c, err
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// dial opens a stream to addr, through the proxy when there is one. A
// failure of the proxy is a *ProxyError.
func (d *streamDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.proxy == nil || network != "tcp" {
		return d.direct(ctx, network, addr)
	}
	switch d.proxy.Scheme {
	case "socks5", "socks5h":
		return d.dialSOCKS(ctx, addr)
	default:
		return d.dialCONNECT(ctx, addr)
	}
}

func (d *streamDialer) proxyError(kind error, target string, status int, err error) *ProxyError {
	return &ProxyError{Proxy: redact(d.proxy), Target: target, StatusCode: status, Kind: kind, Err: err}
}

// proxyAddr is the proxy's host:port.
func (d *streamDialer) proxyAddr() string {
	a, _ := hostPort(d.proxy, proxyPorts[d.proxy.Scheme])
	return a
}

// dialCONNECT opens a tunnel with an HTTP CONNECT request (RFC 9110,
// section 9.3.6), over TLS for an https:// proxy.
func (d *streamDialer) dialCONNECT(ctx context.Context, target string) (net.Conn, error) {
	c, err := d.direct(ctx, "tcp", d.proxyAddr())
	if err != nil {
		return nil, d.proxyError(ErrProxyUnreachable, target, 0, err)
	}
	// The context bounds the whole exchange: a deadline on the socket,
	// and an immediate one when ctx ends first.
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	fail := func(kind error, status int, err error) (net.Conn, error) {
		stop()
		c.Close()
		return nil, d.proxyError(kind, target, status, ctxCause(ctx, err))
	}
	if d.proxy.Scheme == "https" {
		var cfg *tls.Config
		if d.opts.ProxyTLSConfig != nil {
			cfg = d.opts.ProxyTLSConfig.Clone()
		} else {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = d.proxy.Hostname()
		}
		// HTTP/1.1 only: CONNECT over HTTP/2 is a different protocol.
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(ErrProxyUnreachable, 0, err)
		}
		c = tc
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: http.Header{},
	}
	if u := d.proxy.User; u != nil {
		pass, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	if err := req.Write(c); err != nil {
		return fail(ErrProxyUnreachable, 0, err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(ErrProxyUnreachable, 0, err)
	}
	// Any 2xx opens the tunnel (RFC 9110, section 9.3.6); the body of a
	// refusal is not read.
	switch code := resp.StatusCode; {
	case code == http.StatusProxyAuthRequired:
		return fail(ErrProxyAuth, code, errors.New(resp.Status+proxyAuthHint(resp, d.proxy.User != nil)))
	case code < 200 || code > 299:
		return fail(ErrProxyRefused, code, errors.New(resp.Status))
	}
	if !stop() {
		// ctx ended while the answer came: the deadline is in the past.
		return fail(ErrProxyUnreachable, 0, ctx.Err())
	}
	c.SetDeadline(time.Time{})
	if n := br.Buffered(); n > 0 {
		// The broker's first bytes came in the same read as the answer.
		early, _ := br.Peek(n)
		return &prefixConn{Conn: c, early: append([]byte(nil), early...)}, nil
	}
	return c, nil
}

// proxyAuthHint says what a 407 means for the caller.
func proxyAuthHint(resp *http.Response, sent bool) string {
	asked := resp.Header.Get("Proxy-Authenticate")
	switch {
	case asked != "" && !strings.HasPrefix(strings.ToLower(asked), "basic"):
		scheme, _, _ := strings.Cut(asked, " ")
		return " (the proxy asks for " + scheme + " authentication; only Basic is supported)"
	case !sent:
		return " (no credentials in the proxy URL)"
	}
	return ""
}

// prefixConn returns bytes read past the proxy's answer before the rest.
type prefixConn struct {
	net.Conn
	early []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// socksForward is the dialer golang.org/x/net/proxy uses to reach a SOCKS5
// proxy: Options.Dialer or a net.Dialer. It remembers its own failure, so
// that "could not reach the proxy" can be told from "the proxy said no".
type socksForward struct {
	d      *streamDialer
	failed error
}

func (f *socksForward) Dial(network, addr string) (net.Conn, error) {
	return f.DialContext(context.Background(), network, addr)
}

func (f *socksForward) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := f.d.direct(ctx, network, addr)
	f.failed = err
	return c, err
}

// dialSOCKS opens a tunnel through a SOCKS5 proxy with golang.org/x/net/proxy.
// With socks5:// the broker's name is resolved here and the proxy is given
// each address in turn until one connects; with socks5h:// the proxy gets
// the name.
func (d *streamDialer) dialSOCKS(ctx context.Context, target string) (net.Conn, error) {
	var auth *proxy.Auth
	if u := d.proxy.User; u != nil {
		pass, _ := u.Password()
		auth = &proxy.Auth{User: u.Username(), Password: pass}
	}
	targets := []string{target}
	if d.proxy.Scheme == "socks5" {
		host, port, _ := net.SplitHostPort(target)
		if net.ParseIP(host) == nil {
			ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
			if err != nil {
				// Nothing reached the proxy: this is the broker's name
				// failing to resolve here (socks5h:// would let the proxy
				// resolve it).
				return nil, ctxCause(ctx, err)
			}
			targets = targets[:0]
			for _, ip := range ips {
				targets = append(targets, net.JoinHostPort(ip.String(), port))
			}
		}
	}
	var first error
	for _, t := range targets {
		c, err := d.socksOnce(ctx, auth, t)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		var pe *ProxyError
		if ctx.Err() != nil || errors.As(err, &pe) && pe.Kind != ErrProxyRefused {
			break // another address of the broker cannot help
		}
	}
	return nil, first
}

func (d *streamDialer) socksOnce(ctx context.Context, auth *proxy.Auth, target string) (net.Conn, error) {
	fwd := &socksForward{d: d}
	pd, err := proxy.SOCKS5("tcp", d.proxyAddr(), auth, fwd)
	if err != nil {
		return nil, d.proxyError(ErrProxyUnreachable, target, 0, err)
	}
	c, err := pd.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
	if err == nil {
		return c, nil
	}
	cause := err
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		cause = oe.Err // the OpError repeats the addresses we name
	}
	kind := ErrProxyUnreachable
	// golang.org/x/net/proxy reports the SOCKS5 failures as plain
	// errors; their texts are stable, and the tests pin each one.
	switch msg := cause.Error(); {
	case fwd.failed != nil:
		cause = fwd.failed
	case strings.Contains(msg, "authentication"), strings.Contains(msg, "username/password"):
		kind = ErrProxyAuth
	case strings.HasPrefix(msg, "unknown error "):
		kind = ErrProxyRefused
		cause = errors.New(strings.TrimPrefix(msg, "unknown error "))
	}
	return nil, d.proxyError(kind, target, 0, ctxCause(ctx, cause))
}
