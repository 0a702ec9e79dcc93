package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Options tunes Dial. The zero value (or a nil *Options) dials with the
// system's certificate roots and the standard library's dialer.
type Options struct {
	// TLSConfig is used for mqtts, ssl, tls and wss URLs. It is cloned, and
	// its ServerName is set from the URL's host when empty, so the server
	// certificate is verified against the host dialled (and SNI names it).
	// nil means the system roots and no client certificate. Verification
	// is on unless the config itself sets InsecureSkipVerify.
	TLSConfig *tls.Config

	// Dialer, when set, opens the underlying stream connection instead of
	// a net.Dialer: for a proxy of another kind, a custom resolver or a
	// socket the caller prepared. network is "tcp" or "unix"; addr is
	// "host:port" or a path: the broker's, or the proxy's when Proxy chose
	// one. TLS and WebSocket are layered on what it returns.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

	// HTTPHeader is added to the WebSocket handshake request: an
	// Authorization header or a cookie that an ingress or a gateway in
	// front of the broker asks for, say. A "Host" entry replaces the Host
	// header (taken from the URL otherwise). The headers of the WebSocket
	// handshake itself (Connection, Upgrade, Sec-WebSocket-*) are set by
	// Dial and cannot be replaced here; use Subprotocols for the
	// subprotocol list. Ignored by the other schemes.
	HTTPHeader http.Header

	// Subprotocols are the WebSocket subprotocols offered, in order of
	// preference. "mqtt" is always offered, at the end when the list does
	// not name it, since an MQTT client must offer it ([MQTT-6.0.0-3]);
	// nil offers "mqtt" alone. Listing another name (such as "mqttv3.1",
	// which brokers of the MQTT 3.1 era asked for) lets a server that
	// selects it be used. The server must select one of the offered names:
	// otherwise Dial fails with ErrWebSocketSubprotocol. Ignored by the
	// other schemes.
	Subprotocols []string

	// Proxy, when set, chooses the proxy for each dial: it is given the
	// broker's URL (without user information) and returns the proxy's URL
	// (see ParseProxyURL for the schemes: http:// and https:// for HTTP
	// CONNECT, socks5:// and socks5h:// for SOCKS5), or nil to dial
	// directly. Use ProxyURL for a fixed proxy, ProxyFromEnvironment to
	// honour HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY.
	//
	// nil (the default) dials directly and does not read the environment:
	// broker traffic goes through a proxy only when asked to (the
	// environment variables are usually set for a process's HTTP traffic,
	// and MQTT tools such as mosquitto_pub ignore them).
	//
	// The proxy carries every scheme but unix://, always as a tunnel to
	// the broker's host and port: TLS (mqtts://, wss://) runs end to end
	// inside it, verified against the broker's name (SNI included), and a
	// WebSocket handshake runs inside it as well. Dialer, when set, is used
	// to reach the proxy. A failure of the proxy is a *ConnError with Op
	// "proxy" whose cause is a *ProxyError (ErrProxyUnreachable,
	// ErrProxyAuth, ErrProxyRefused); a proxy URL that cannot be used is a
	// *URLError.
	Proxy func(broker *url.URL) (*url.URL, error)

	// ProxyTLSConfig is used for the TLS connection to an https:// proxy
	// (not for the broker, whose TLS is TLSConfig's). It is cloned, and its
	// ServerName is set from the proxy's host when empty. nil means the
	// system roots.
	ProxyTLSConfig *tls.Config
}

// closeTimeout bounds the polite part of Close (a TLS close_notify, a
// WebSocket close handshake). When it passes the socket is closed anyway.
const closeTimeout = time.Second

// Dial connects to the broker that rawURL names and returns a byte stream
// ready for MQTT. The schemes:
//
//	mqtt://host[:port], tcp://host[:port]        TCP, default port 1883
//	mqtts://, ssl://, tls://host[:port]           TLS over TCP, default port 8883
//	ws://host[:port][/path]                       WebSocket, default port 80
//	wss://host[:port][/path]                      WebSocket over TLS, default port 443
//	unix:///path/to/socket, unix://relative/path  Unix domain socket
//
// WebSocket connections offer the subprotocol "mqtt" (and
// Options.Subprotocols), send Options.HTTPHeader with the handshake, and
// send each Write as one binary message; reads see a plain byte stream
// whatever the peer's frame boundaries are. The URL path is kept as given
// ("/" when empty).
//
// With Options.Proxy, every scheme but unix:// runs through an HTTP
// CONNECT or SOCKS5 tunnel to the broker's host and port.
//
// ctx bounds the dial and every handshake; once Dial returns, the conn no
// longer depends on ctx.
//
// Errors: a *URLError for a URL that cannot be used, the broker's or the
// proxy's (wrapping ErrUnsupportedScheme for an unknown scheme); otherwise
// a *ConnError (which matches ErrConnectionLost) whose Op says which step
// failed ("dial", "proxy", "tls handshake", "websocket handshake") and
// whose cause is the error of that step: a *ProxyError for "proxy"; a certificate problem is reachable with errors.As as
// x509.HostnameError, x509.UnknownAuthorityError or
// x509.CertificateInvalidError, and a dial cut short by ctx unwraps to
// ctx.Err().
//
// Every error from the returned conn's methods is a *ConnError too.
func Dial(ctx context.Context, rawURL string, opts *Options) (net.Conn, error) {
	if opts == nil {
		opts = &Options{}
	}
	ep, err := parseEndpoint(rawURL)
	if err != nil {
		return nil, err
	}
	d, err := newStreamDialer(opts, ep)
	if err != nil {
		return nil, err
	}
	switch ep.kind {
	case kindTCP, kindUnix:
		network := "tcp"
		if ep.kind == kindUnix {
			network = "unix"
		}
		c, err := d.dial(ctx, network, ep.addr)
		if err != nil {
			return nil, dialError(ctx, ep.redacted, err)
		}
		return &conn{Conn: c, addr: ep.redacted}, nil
	case kindTLS:
		return dialTLS(ctx, d, ep.addr, ep.u.Hostname(), ep.redacted)
	default:
		return dialWebSocket(ctx, d, ep.u, ep.addr, ep.redacted)
	}
}

// dialError is the *ConnError of a stream that could not be opened: Op
// "proxy" with the *ProxyError when the proxy failed, "dial" otherwise.
func dialError(ctx context.Context, addr string, err error) *ConnError {
	var pe *ProxyError
	if errors.As(err, &pe) {
		return &ConnError{Op: "proxy", Addr: addr, Err: ctxCause(ctx, pe)}
	}
	return &ConnError{Op: "dial", Addr: addr, Err: ctxCause(ctx, err)}
}

// CheckURL reports whether Dial could use rawURL, without dialing: the
// scheme is one of Dial's, a network URL names a host and a port between 1
// and 65535 (or none, for the scheme's default), a unix URL names a path.
// It returns the *URLError Dial would return, or nil.
func CheckURL(rawURL string) error {
	_, err := parseEndpoint(rawURL)
	return err
}

// IsTLS reports whether rawURL is a scheme that runs over TLS (mqtts, ssl,
// tls, wss). It does not validate the rest of the URL.
func IsTLS(rawURL string) bool {
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return false
	}
	switch strings.ToLower(rawURL[:i]) {
	case "mqtts", "ssl", "tls", "wss":
		return true
	}
	return false
}

type endpointKind uint8

const (
	kindTCP endpointKind = iota
	kindTLS
	kindWS // ws and wss: the URL's scheme tells which
	kindUnix
)

// endpoint is a URL Dial can use, taken apart.
type endpoint struct {
	u        *url.URL
	kind     endpointKind
	addr     string // host:port, or the socket path
	redacted string // the URL without user information, for errors and logs
}

const wantSchemes = "want mqtt://, mqtts://, ws://, wss:// or unix://"

func parseEndpoint(rawURL string) (*endpoint, error) {
	if !strings.Contains(rawURL, "://") {
		return nil, &URLError{URL: redactRaw(rawURL), Reason: "no scheme (" + wantSchemes + ")", Err: ErrUnsupportedScheme}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &URLError{URL: redactRaw(rawURL), Reason: "does not parse", Err: err}
	}
	ep := &endpoint{u: u, redacted: redact(u)}
	var defPort string
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		ep.kind, defPort = kindTCP, "1883"
	case "mqtts", "ssl", "tls":
		ep.kind, defPort = kindTLS, "8883"
	case "ws":
		ep.kind, defPort = kindWS, "80"
	case "wss":
		ep.kind, defPort = kindWS, "443"
	case "unix":
		ep.kind = kindUnix
		ep.addr = u.Host + u.Path
		if ep.addr == "" {
			return nil, &URLError{URL: ep.redacted, Reason: "no socket path"}
		}
		return ep, nil
	case "":
		return nil, &URLError{URL: ep.redacted, Reason: "no scheme (" + wantSchemes + ")", Err: ErrUnsupportedScheme}
	default:
		return nil, &URLError{URL: ep.redacted, Reason: "scheme " + u.Scheme + " is not supported (" + wantSchemes + ")", Err: ErrUnsupportedScheme}
	}
	if ep.addr, err = hostPort(u, defPort); err != nil {
		return nil, err
	}
	return ep, nil
}

func hostPort(u *url.URL, defPort string) (string, error) {
	host := u.Hostname()
	if host == "" {
		return "", &URLError{URL: redact(u), Reason: "no host"}
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return "", &URLError{URL: redact(u), Reason: "empty port"}
		}
		port = defPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", &URLError{URL: redact(u), Reason: "port " + port + " is not between 1 and 65535"}
	}
	return net.JoinHostPort(host, port), nil
}

// ctxCause prefers the context's error when the context ended the dial, so
// errors.Is(err, context.DeadlineExceeded) holds whatever the dialer said.
// A socket deadline set from the context's can fire a moment before the
// context's own timer: such a timeout counts as the context's too.
func ctxCause(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return errors.Join(ctxErr, err)
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		return errors.Join(context.DeadlineExceeded, err)
	}
	return err
}

func tlsConfig(opts *Options, host string) *tls.Config {
	var cfg *tls.Config
	if opts.TLSConfig != nil {
		cfg = opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

func dialTLS(ctx context.Context, d *streamDialer, hp, host, addr string) (net.Conn, error) {
	raw, err := d.dial(ctx, "tcp", hp)
	if err != nil {
		return nil, dialError(ctx, addr, err)
	}
	tc := tls.Client(raw, tlsConfig(d.opts, host))
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &ConnError{Op: "tls handshake", Addr: addr, Err: ctxCause(ctx, err)}
	}
	return &conn{Conn: tc, addr: addr, raw: raw}, nil
}

// mqttSubprotocol is the WebSocket subprotocol of MQTT ([MQTT-6.0.0-3]).
const mqttSubprotocol = "mqtt"

// subprotocols is the list a WebSocket dial offers: the caller's, with
// "mqtt" at the end when it is missing.
func subprotocols(opts *Options) []string {
	for _, p := range opts.Subprotocols {
		if p == mqttSubprotocol {
			return opts.Subprotocols
		}
	}
	n := len(opts.Subprotocols)
	return append(opts.Subprotocols[:n:n], mqttSubprotocol)
}

func dialWebSocket(ctx context.Context, d *streamDialer, u *url.URL, hp, addr string) (net.Conn, error) {
	// The HTTP transport dials through our dialer (and so through the
	// proxy, as a tunnel), so the raw socket is known: Close can cut it
	// when the close handshake does not finish.
	var (
		mu      sync.Mutex
		raw     net.Conn
		dialErr error
	)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := d.dial(ctx, "tcp", hp)
			mu.Lock()
			raw, dialErr = c, err
			mu.Unlock()
			return c, err
		},
		TLSClientConfig:   tlsConfig(d.opts, u.Hostname()),
		ForceAttemptHTTP2: false,
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	wsURL := *u
	wsURL.User = nil
	if strings.EqualFold(u.Scheme, "ws") {
		wsURL.Scheme = "http"
	} else {
		wsURL.Scheme = "https"
	}
	if wsURL.Path == "" {
		wsURL.Path = "/"
	}
	ws, resp, err := websocket.Dial(ctx, wsURL.String(), &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		HTTPHeader:   d.opts.HTTPHeader,
		Host:         d.opts.HTTPHeader.Get("Host"),
		Subprotocols: subprotocols(d.opts),
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		mu.Lock()
		r, derr := raw, dialErr
		mu.Unlock()
		switch {
		case derr != nil:
			return nil, dialError(ctx, addr, derr)
		case r == nil:
			return nil, &ConnError{Op: "dial", Addr: addr, Err: ctxCause(ctx, unwrapURLErr(err))}
		}
		return nil, &ConnError{Op: "websocket handshake", Addr: addr, Err: ctxCause(ctx, unwrapURLErr(err))}
	}
	// The library refuses a subprotocol we did not offer; none at all is
	// ours to refuse.
	if ws.Subprotocol() == "" {
		ws.CloseNow()
		return nil, &ConnError{Op: "websocket handshake", Addr: addr, Err: ErrWebSocketSubprotocol}
	}
	mu.Lock()
	r := raw
	mu.Unlock()
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	return &conn{Conn: nc, addr: addr, raw: r}, nil
}

// unwrapURLErr removes net/http's *url.Error layer, which would repeat the
// URL that ConnError already names.
func unwrapURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact returns u without user information, for error messages.
func redact(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = nil
	return c.String()
}

func redactRaw(s string) string {
	// An unparsable URL may still hold "user:pass@": drop everything
	// between "//" and the last "@" of the authority.
	if i := strings.Index(s, "//"); i >= 0 {
		rest := s[i+2:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			return s[:i+2] + rest[at+1:]
		}
	}
	return s
}

// conn wraps every connection Dial returns, so that each error of the
// net.Conn methods is a *ConnError. The success path adds no allocation.
type conn struct {
	net.Conn
	addr string
	raw  net.Conn // the socket under TLS or WebSocket, to bound Close; nil for plain sockets

	closeOnce sync.Once
	closeErr  error
}

func (c *conn) wrap(op string, err error) error {
	return &ConnError{Op: op, Addr: c.addr, Err: err}
}

// Read reads from the connection; errors (io.EOF included) are *ConnError.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		err = c.wrap("read", err)
	}
	return n, err
}

// Write writes to the connection; errors are *ConnError.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		err = c.wrap("write", err)
	}
	return n, err
}

// Close closes the connection. A TLS close_notify or WebSocket close
// handshake gets closeTimeout; after that the socket is closed regardless,
// so Close never hangs on a peer that stopped reading. Closing twice
// returns the first result.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		if c.raw != nil {
			// The polite close fails when the peer is already gone;
			// that is not an error of Close: the socket is closed.
			t := time.AfterFunc(closeTimeout, func() { c.raw.Close() })
			c.Conn.Close()
			t.Stop()
			if err := c.raw.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				c.closeErr = c.wrap("close", err)
			}
			return
		}
		if err := c.Conn.Close(); err != nil {
			c.closeErr = c.wrap("close", err)
		}
	})
	return c.closeErr
}

// SetDeadline sets both deadlines; see net.Conn. On a WebSocket connection
// an expired deadline during a blocked call closes the connection (the
// WebSocket library cannot interrupt a frame half read).
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetDeadline(t); err != nil {
		return c.wrap("set deadline", err)
	}
	return nil
}

// SetReadDeadline sets the read deadline; see net.Conn.
func (c *conn) SetReadDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return c.wrap("set deadline", err)
	}
	return nil
}

// SetWriteDeadline sets the write deadline; see net.Conn.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return c.wrap("set deadline", err)
	}
	return nil
}
