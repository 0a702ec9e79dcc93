package transport

import (
	"errors"
	"strconv"
)

// ErrConnectionLost is the kind of every error that ends or prevents a
// connection: a failed dial or handshake, and every error from Read, Write,
// Close and the deadline setters of a conn returned by this package. Match it
// with errors.Is; the concrete value is always a *ConnError that says which
// operation failed and wraps the cause.
var ErrConnectionLost = errors.New("zmqtt: connection lost")

// ErrUnsupportedScheme is the cause (reachable with errors.Is) of the
// *URLError that Dial returns for a URL whose scheme is not in the table of
// the package documentation.
var ErrUnsupportedScheme = errors.New("zmqtt: unsupported url scheme")

// ErrWebSocketSubprotocol is the cause of the *ConnError that Dial returns
// when a WebSocket server completes the handshake without selecting one of
// the subprotocols offered ("mqtt", plus Options.Subprotocols). Such a
// server is not an MQTT broker endpoint (or is misconfigured), so the
// connection is closed at once.
var ErrWebSocketSubprotocol = errors.New(`zmqtt: websocket server selected none of the offered subprotocols (MQTT needs "mqtt")`)

// The kinds of *ProxyError, matched with errors.Is. Each is also a
// connection error: the *ConnError around a *ProxyError matches
// ErrConnectionLost.
var (
	// ErrProxyUnreachable: the proxy could not be reached, its TLS
	// handshake failed (https:// proxies), or it closed the connection or
	// stayed silent before answering the tunnel request. A retry may help.
	ErrProxyUnreachable = errors.New("zmqtt: proxy unreachable")
	// ErrProxyAuth: the proxy wants credentials, or refused the ones in
	// the proxy URL (HTTP 407; a SOCKS5 proxy that accepts none of the
	// offered methods or fails the user/password check). A retry with the
	// same credentials cannot help: the client does not retry it.
	ErrProxyAuth = errors.New("zmqtt: proxy authentication failed")
	// ErrProxyRefused: the proxy answered the tunnel request with a
	// refusal: an HTTP status other than 2xx and 407 (403 by policy, 502
	// when it could not reach the broker, ...), or a SOCKS5 reply other
	// than success (connection refused, host unreachable, not allowed by
	// ruleset, ...). The broker may be down behind the proxy; a retry may
	// help.
	ErrProxyRefused = errors.New("zmqtt: proxy refused the tunnel")
)

// ConnError reports a failed network operation: Op is what failed ("dial",
// "proxy", "tls handshake", "websocket handshake", "read", "write", "close"
// or "set deadline"), Addr is the URL dialled (without user information) or
// "pipe", and Err is the cause as returned by the layer below.
//
// With Op "proxy" the cause is a *ProxyError, or the error of an
// Options.Proxy function.
//
// A *ConnError always matches ErrConnectionLost with errors.Is, and unwraps
// to its cause, so errors.Is(err, io.EOF), errors.Is(err,
// os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded) and
// errors.As(err, &x509.UnknownAuthorityError{}) see through it.
//
// A *ConnError is also a net.Error: Timeout reports whether the cause is a
// timeout (a deadline set on the conn, or a dial context deadline), so code
// written against net.Conn keeps working.
type ConnError struct {
	Op   string
	Addr string
	Err  error
}

// Error returns "zmqtt: <op> <addr>: <cause>".
func (e *ConnError) Error() string {
	s := "zmqtt: " + e.Op
	if e.Addr != "" {
		s += " " + e.Addr
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *ConnError) Unwrap() error { return e.Err }

// Is reports whether target is ErrConnectionLost. Other targets are matched
// by errors.Is through Unwrap.
func (e *ConnError) Is(target error) bool { return target == ErrConnectionLost }

// Timeout reports whether the cause is a timeout, as net.Error asks: a read
// or write deadline that expired (os.ErrDeadlineExceeded) or a context
// deadline (context.DeadlineExceeded).
func (e *ConnError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// Temporary reports what the cause reports, for code written against the
// deprecated net.Error.Temporary; it is false when the cause does not say.
func (e *ConnError) Temporary() bool {
	var t interface{ Temporary() bool }
	return errors.As(e.Err, &t) && t.Temporary()
}

// URLError reports a URL that Dial cannot use: it does not parse, its
// scheme is not supported (Err is ErrUnsupportedScheme), or it lacks a part
// the scheme needs (a host, a socket path). It is an argument error, not a
// connection error: it does not match ErrConnectionLost, and retrying the
// same URL cannot succeed.
type URLError struct {
	URL    string // the URL as given, with any user information removed
	Reason string // what is wrong, in a few words
	Err    error  // the cause, if any: ErrUnsupportedScheme or a *url.Error
}

// Error returns `zmqtt: bad url "<url>": <reason>`.
func (e *URLError) Error() string {
	return "zmqtt: bad url " + strconv.Quote(e.URL) + ": " + e.Reason
}

// Unwrap returns the cause, or nil.
func (e *URLError) Unwrap() error { return e.Err }

// ProxyError reports a tunnel through a proxy that could not be opened. It
// is the cause of a *ConnError with Op "proxy". Kind says what went wrong
// (ErrProxyUnreachable, ErrProxyAuth or ErrProxyRefused; errors.Is matches
// it) and Err is the cause: the dial or TLS error towards the proxy, the
// HTTP status line of a CONNECT refusal, the SOCKS5 failure. Neither Proxy
// nor the message shows the proxy's credentials.
type ProxyError struct {
	Proxy      string // the proxy URL, without user information
	Target     string // the broker's host:port the tunnel was asked for
	StatusCode int    // the HTTP status of a refused CONNECT; 0 otherwise
	Kind       error  // ErrProxyUnreachable, ErrProxyAuth or ErrProxyRefused
	Err        error  // the cause
}

// Error says which proxy failed for which broker address, and why.
func (e *ProxyError) Error() string {
	var s string
	switch e.Kind {
	case ErrProxyAuth:
		s = "zmqtt: proxy " + e.Proxy + " refused our credentials for a tunnel to " + e.Target
	case ErrProxyRefused:
		s = "zmqtt: proxy " + e.Proxy + " refused a tunnel to " + e.Target
	default:
		s = "zmqtt: proxy " + e.Proxy + " unreachable (tunnel to " + e.Target + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Kind and the cause, so that errors.Is matches either
// (context.DeadlineExceeded, an x509 error of an https:// proxy, ...).
func (e *ProxyError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}
