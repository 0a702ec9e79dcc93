package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
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
	// a net.Dialer: for a proxy, a custom resolver or a socket the caller
	// prepared. network is "tcp" or "unix"; addr is "host:port" or a path.
	// TLS and WebSocket are layered on what it returns.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

	// HTTPHeader is added to the WebSocket handshake request (for example
	// an Authorization header). Ignored by the other schemes.
	HTTPHeader http.Header
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
// WebSocket connections ask for the subprotocol "mqtt" and send each Write
// as one binary message; reads see a plain byte stream whatever the peer's
// frame boundaries are. The URL path is kept as given ("/" when empty).
//
// ctx bounds the dial and every handshake; once Dial returns, the conn no
// longer depends on ctx.
//
// Errors: a *URLError for a URL that cannot be used (wrapping
// ErrUnsupportedScheme for an unknown scheme); otherwise a *ConnError (which
// matches ErrConnectionLost) whose Op says which step failed ("dial", "tls
// handshake", "websocket handshake") and whose cause is the error of that
// step: a certificate problem is reachable with errors.As as
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
	switch ep.kind {
	case kindTCP, kindUnix:
		network := "tcp"
		if ep.kind == kindUnix {
			network = "unix"
		}
		c, err := dialStream(ctx, opts, network, ep.addr)
		if err != nil {
			return nil, &ConnError{Op: "dial", Addr: ep.redacted, Err: ctxCause(ctx, err)}
		}
		return &conn{Conn: c, addr: ep.redacted}, nil
	case kindTLS:
		return dialTLS(ctx, opts, ep.addr, ep.u.Hostname(), ep.redacted)
	default:
		return dialWebSocket(ctx, opts, ep.u, ep.addr, ep.redacted)
	}
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

func dialStream(ctx context.Context, opts *Options, network, addr string) (net.Conn, error) {
	if opts.Dialer != nil {
		c, err := opts.Dialer(ctx, network, addr)
		if err == nil && c == nil {
			err = errors.New("custom dialer returned no connection")
		}
		return c, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// ctxCause prefers the context's error when the context ended the dial, so
// errors.Is(err, context.DeadlineExceeded) holds whatever the dialer said.
func ctxCause(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return errors.Join(ctxErr, err)
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

func dialTLS(ctx context.Context, opts *Options, hp, host, addr string) (net.Conn, error) {
	raw, err := dialStream(ctx, opts, "tcp", hp)
	if err != nil {
		return nil, &ConnError{Op: "dial", Addr: addr, Err: ctxCause(ctx, err)}
	}
	tc := tls.Client(raw, tlsConfig(opts, host))
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &ConnError{Op: "tls handshake", Addr: addr, Err: ctxCause(ctx, err)}
	}
	return &conn{Conn: tc, addr: addr, raw: raw}, nil
}

func dialWebSocket(ctx context.Context, opts *Options, u *url.URL, hp, addr string) (net.Conn, error) {
	// The HTTP transport dials through our dialer, so the raw socket is
	// known: Close can cut it when the close handshake does not finish.
	var (
		mu  sync.Mutex
		raw net.Conn
	)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := dialStream(ctx, opts, "tcp", hp)
			if err == nil {
				mu.Lock()
				raw = c
				mu.Unlock()
			}
			return c, err
		},
		TLSClientConfig:   tlsConfig(opts, u.Hostname()),
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
		HTTPHeader:   opts.HTTPHeader,
		Subprotocols: []string{"mqtt"},
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		op := "websocket handshake"
		mu.Lock()
		if raw == nil {
			op = "dial"
		}
		mu.Unlock()
		return nil, &ConnError{Op: op, Addr: addr, Err: ctxCause(ctx, unwrapURLErr(err))}
	}
	if ws.Subprotocol() != "mqtt" {
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
