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
// when a WebSocket server completes the handshake without accepting the
// subprotocol "mqtt". Such a server is not an MQTT broker endpoint (or is
// misconfigured), so the connection is closed at once.
var ErrWebSocketSubprotocol = errors.New(`zmqtt: websocket server did not accept subprotocol "mqtt"`)

// ConnError reports a failed network operation: Op is what failed ("dial",
// "tls handshake", "websocket handshake", "read", "write", "close" or
// "set deadline"), Addr is the URL dialled (without user information) or
// "pipe", and Err is the cause as returned by the layer below.
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
