// Package transport opens the byte streams MQTT runs over: TCP, TLS,
// WebSocket (plain and TLS), Unix domain sockets, and an in-memory Pipe.
//
// It sits beside the codec at the bottom of zmqtt-go and imports nothing of
// the SDK: what it returns is a plain net.Conn, so it can be used with any
// MQTT code, and the client can be given any net.Conn instead.
//
// Dial turns a URL into a connection (the schemes are listed on Dial). The
// context bounds the dial and the handshakes; Close is bounded too, so a
// peer that stopped reading cannot hold it. Every error of a dial, a
// handshake or a method of a returned conn is a *ConnError, which matches
// ErrConnectionLost with errors.Is and unwraps to the cause (io.EOF, a
// certificate error, os.ErrDeadlineExceeded, a context error).
//
// TLS verification is always on unless the caller's tls.Config turns it off;
// the server name is taken from the URL's host. A wrong host name, an
// unknown authority and an expired certificate fail the "tls handshake" step
// with the crypto/x509 error that says which.
//
// WebSocket uses github.com/coder/websocket with the subprotocol "mqtt" and
// binary messages; MQTT packets may span messages and a message may hold
// several packets, as the MQTT 5.0 specification (section 6) allows.
// Options.HTTPHeader adds headers to the handshake (an Authorization header
// or a cookie for a gateway in front of the broker) and
// Options.Subprotocols offers more subprotocols before "mqtt".
//
// # Proxies
//
// Options.Proxy sends a dial through an HTTP CONNECT proxy (http://, or
// https:// for TLS to the proxy) or a SOCKS5 proxy (socks5://, socks5h://,
// through golang.org/x/net/proxy), with the credentials of the proxy URL.
// Every scheme but unix:// goes through it as a tunnel to the broker's host
// and port; TLS and the WebSocket handshake run inside the tunnel, so the
// broker's certificate is verified against the broker's name. ProxyURL
// names one proxy; ProxyFromEnvironment reads HTTPS_PROXY (for the TLS
// schemes), HTTP_PROXY (for the others), ALL_PROXY and NO_PROXY. Without
// Options.Proxy nothing is read from the environment. A proxy's failure is
// a *ConnError with Op "proxy" around a *ProxyError that says whether the
// proxy was unreachable (ErrProxyUnreachable), refused the credentials
// (ErrProxyAuth) or refused the tunnel (ErrProxyRefused).
//
// The package starts goroutines only inside the WebSocket library, and none
// of them outlives Close.
package transport
