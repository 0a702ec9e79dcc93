// Proxies for tests of proxy settings: StartProxy runs an HTTP
// CONNECT proxy (plain, or behind TLS for https:// proxy URLs) and a SOCKS5Proxy
// proxy (RFC 1928 CONNECT, with the no-authentication and user/password
// methods of RFC 1929), each in-process on 127.0.0.1 with a free port.
//
// A proxy records every tunnel request it gets (the target as asked, the
// user, the outcome), so that a test can prove its traffic went through it
// and to which broker address. It can also resolve names of its own
// (ProxyConfig.Hosts) that the machine's resolver does not know: a client that
// reaches a broker by such a name must have gone through the proxy.
//
// Start is for tests (it fails the test and closes the proxy at cleanup);
// New returns errors instead, for examples. Close ends every tunnel and
// waits for the proxy's goroutines.

package mqtttest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ProxyKind is the protocol a proxy speaks.
type ProxyKind string

// The kinds of proxy.
const (
	HTTPProxy   ProxyKind = "http"   // HTTP CONNECT
	HTTPSProxy  ProxyKind = "https"  // HTTP CONNECT over TLS (a certificate for 127.0.0.1, see TLSConfig)
	SOCKS5Proxy ProxyKind = "socks5" // SOCKS5 (a client may also name it socks5h://)
)

// ProxyConfig chooses what a proxy asks for and knows.
type ProxyConfig struct {
	// User and Password, when User is set, are the only credentials the
	// proxy accepts: an HTTP proxy answers 407 otherwise, a SOCKS5Proxy proxy
	// offers only the user/password method and fails a wrong pair.
	User, Password string
	// Hosts maps host names to IP addresses the proxy resolves itself,
	// before its system resolver.
	Hosts map[string]string
}

// ProxyRequest is one tunnel request a proxy received. It is recorded before
// the proxy answers, so a client that has its answer finds it in Requests.
type ProxyRequest struct {
	Target string // host:port as the client asked for it (a name or an address)
	User   string // the user name the client gave, if any
	OK     bool   // the tunnel was opened
	Reply  string // what the proxy answered: "200", "407", "502" for HTTP; "succeeded", "auth failed", "host unreachable", ... for SOCKS5Proxy
}

// Proxy is a running proxy.
type Proxy struct {
	kind ProxyKind
	cfg  ProxyConfig
	ln   net.Listener     // SOCKS5Proxy
	srv  *httptest.Server // HTTP and HTTPS
	ctx  context.Context
	stop context.CancelFunc

	mu     sync.Mutex
	reqs   []ProxyRequest
	active map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// Start starts a proxy of the given kind and closes it when the test ends.
func StartProxy(tb testing.TB, kind ProxyKind, cfg ProxyConfig) *Proxy {
	tb.Helper()
	p, err := NewProxy(kind, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// New starts a proxy of the given kind on 127.0.0.1.
func NewProxy(kind ProxyKind, cfg ProxyConfig) (*Proxy, error) {
	p := &Proxy{kind: kind, cfg: cfg, active: map[net.Conn]bool{}}
	p.ctx, p.stop = context.WithCancel(context.Background())
	switch kind {
	case HTTPProxy, HTTPSProxy:
		p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serveCONNECT))
		// Refused TLS handshakes are what some tests cause: not news.
		p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		if kind == HTTPSProxy {
			p.srv.StartTLS()
		} else {
			p.srv.Start()
		}
	case SOCKS5Proxy:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p.ln = ln
		p.wg.Add(1)
		go p.acceptSOCKS()
	default:
		return nil, fmt.Errorf("proxytest: unknown kind %q", kind)
	}
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string {
	if p.srv != nil {
		return p.srv.Listener.Addr().String()
	}
	return p.ln.Addr().String()
}

// URL is the proxy's URL, with the configured credentials when there are
// some. It is a new value each time: a test may change its scheme (socks5h)
// or its user information.
func (p *Proxy) URL() *url.URL {
	u := &url.URL{Scheme: string(p.kind), Host: p.Addr()}
	if p.cfg.User != "" {
		u.User = url.UserPassword(p.cfg.User, p.cfg.Password)
	}
	return u
}

// TLSConfig trusts an HTTPS proxy's certificate (for 127.0.0.1); nil for
// the other kinds.
func (p *Proxy) TLSConfig() *tls.Config {
	if p.kind != HTTPSProxy {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.srv.Certificate())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Requests returns the tunnel requests so far, in order.
func (p *Proxy) Requests() []ProxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxyRequest(nil), p.reqs...)
}

// Tunnels returns the targets of the tunnels opened so far, in order.
func (p *Proxy) Tunnels() []string {
	var out []string
	for _, r := range p.Requests() {
		if r.OK {
			out = append(out, r.Target)
		}
	}
	return out
}

// Close stops accepting, ends every tunnel and waits for the proxy's
// goroutines. Calling it again does nothing.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.stop()
	if p.srv != nil {
		p.srv.Close()
	} else {
		p.ln.Close()
	}
	p.mu.Lock()
	for c := range p.active {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) record(r ProxyRequest) {
	p.mu.Lock()
	p.reqs = append(p.reqs, r)
	p.mu.Unlock()
}

// track registers a connection that Close must end; false when the proxy
// is closing (the caller then closes it).
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.active[c] = true
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.active, c)
	p.mu.Unlock()
	c.Close()
}

// dialTarget opens the proxy's side of a tunnel, resolving ProxyConfig.Hosts.
func (p *Proxy) dialTarget(target string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	if ip, ok := p.cfg.Hosts[host]; ok {
		target = net.JoinHostPort(ip, port)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

// enter counts a goroutine the server started (an HTTP handler) in wg;
// false when the proxy is closing.
func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// splice copies both ways between the client (tracked by the caller, and
// read through fromClient, the buffered reader that may already hold its
// first bytes) and the target until either side ends, then closes both.
func (p *Proxy) splice(client net.Conn, fromClient io.Reader, target net.Conn) {
	if !p.track(target) {
		p.untrack(client)
		target.Close()
		return
	}
	done := make(chan struct{}, 2)
	p.wg.Add(1)
	go func() { // exits when the client side ends or Close cuts it
		defer p.wg.Done()
		io.Copy(target, fromClient)
		done <- struct{}{}
	}()
	io.Copy(client, target)
	done <- struct{}{}
	<-done
	p.untrack(client)
	p.untrack(target)
	<-done
}

// serveCONNECT is the HTTP proxy: CONNECT only, Basic credentials when
// configured, 502 when the target cannot be reached.
func (p *Proxy) serveCONNECT(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	defer p.wg.Done()
	if r.Method != http.MethodConnect {
		http.Error(w, "this proxy only tunnels (CONNECT)", http.StatusMethodNotAllowed)
		return
	}
	req := ProxyRequest{Target: r.Host}
	// The Basic credentials of Proxy-Authorization, read with the
	// standard library's parser.
	user, pass, _ := (&http.Request{Header: http.Header{"Authorization": r.Header.Values("Proxy-Authorization")}}).BasicAuth()
	req.User = user
	if p.cfg.User != "" && (user != p.cfg.User || pass != p.cfg.Password) {
		req.Reply = "407"
		p.record(req)
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxytest"`)
		http.Error(w, "proxy credentials required", http.StatusProxyAuthRequired)
		return
	}
	target, err := p.dialTarget(r.Host)
	if err != nil {
		req.Reply = "502"
		p.record(req)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	c, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		target.Close()
		return
	}
	if !p.track(c) {
		c.Close()
		target.Close()
		return
	}
	req.OK, req.Reply = true, "200"
	p.record(req)
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		p.untrack(c)
		target.Close()
		return
	}
	// Bytes the client sent right after its request wait in brw.
	p.splice(c, brw.Reader, target)
}

func (p *Proxy) acceptSOCKS() {
	defer p.wg.Done() // exits when the listener is closed
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() { // exits when the tunnel ends or Close cuts it
			defer p.wg.Done()
			p.serveSOCKS(c)
		}()
	}
}

// The SOCKS5Proxy values used here (RFC 1928, RFC 1929).
const (
	socksVersion  = 5
	methodNone    = 0x00
	methodUser    = 0x02
	methodNoneFit = 0xff
	cmdConnect    = 0x01
	atypIPv4      = 0x01
	atypName      = 0x03
	atypIPv6      = 0x04
)

// socksReplies names the reply codes the proxy sends.
var socksReplies = map[byte]string{0: "succeeded", 1: "general failure", 4: "host unreachable", 5: "connection refused", 7: "command not supported", 8: "address type not supported"}

func (p *Proxy) serveSOCKS(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	tunnel := false
	defer func() {
		if !tunnel {
			p.untrack(c)
		}
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	req, ok := p.socksHandshake(c, r)
	if !ok {
		return
	}
	target, err := p.dialTarget(req.Target)
	if err != nil {
		code := byte(4)
		if errors.Is(err, syscall.ECONNREFUSED) {
			code = 5
		}
		req.Reply = socksReplies[code]
		p.record(req)
		c.Write([]byte{socksVersion, code, 0, atypIPv4, 0, 0, 0, 0, 0, 0})
		return
	}
	bound := target.LocalAddr().(*net.TCPAddr)
	reply := []byte{socksVersion, 0, 0, atypIPv4}
	reply = append(reply, bound.IP.To4()...)
	reply = binary.BigEndian.AppendUint16(reply, uint16(bound.Port))
	req.OK, req.Reply = true, socksReplies[0]
	p.record(req)
	if _, err := c.Write(reply); err != nil {
		target.Close()
		return
	}
	c.SetDeadline(time.Time{})
	tunnel = true
	p.splice(c, r, target)
}

// socksHandshake reads the method selection, the user/password check and
// the CONNECT request; it answers every failure itself.
func (p *Proxy) socksHandshake(c net.Conn, r *bufio.Reader) (ProxyRequest, bool) {
	var req ProxyRequest
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(r, hdr); err != nil || hdr[0] != socksVersion {
		return req, false
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return req, false
	}
	want := byte(methodNone)
	if p.cfg.User != "" {
		want = methodUser
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		p.record(ProxyRequest{Reply: "no acceptable method"})
		c.Write([]byte{socksVersion, methodNoneFit})
		return req, false
	}
	if _, err := c.Write([]byte{socksVersion, want}); err != nil {
		return req, false
	}
	if want == methodUser {
		// RFC 1929: VER=1, ULEN, UNAME, PLEN, PASSWD.
		user, pass, ok := readUserPass(r)
		if !ok {
			return req, false
		}
		req.User = user
		if user != p.cfg.User || pass != p.cfg.Password {
			req.Reply = "auth failed"
			p.record(req)
			c.Write([]byte{1, 1})
			return req, false
		}
		if _, err := c.Write([]byte{1, 0}); err != nil {
			return req, false
		}
	}
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil || head[0] != socksVersion {
		return req, false
	}
	var host string
	switch head[3] {
	case atypIPv4, atypIPv6:
		ip := make([]byte, 4)
		if head[3] == atypIPv6 {
			ip = make([]byte, 16)
		}
		if _, err := io.ReadFull(r, ip); err != nil {
			return req, false
		}
		host = net.IP(ip).String()
	case atypName:
		n, err := r.ReadByte()
		if err != nil {
			return req, false
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(r, name); err != nil {
			return req, false
		}
		host = string(name)
	default:
		c.Write([]byte{socksVersion, 8, 0, atypIPv4, 0, 0, 0, 0, 0, 0})
		return req, false
	}
	port := make([]byte, 2)
	if _, err := io.ReadFull(r, port); err != nil {
		return req, false
	}
	req.Target = net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port))))
	if head[1] != cmdConnect {
		req.Reply = socksReplies[7]
		p.record(req)
		c.Write([]byte{socksVersion, 7, 0, atypIPv4, 0, 0, 0, 0, 0, 0})
		return req, false
	}
	return req, true
}

func readUserPass(r *bufio.Reader) (string, string, bool) {
	ver, err := r.ReadByte()
	if err != nil || ver != 1 {
		return "", "", false
	}
	field := func() (string, bool) {
		n, err := r.ReadByte()
		if err != nil {
			return "", false
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return string(b), err == nil
	}
	user, ok := field()
	if !ok {
		return "", "", false
	}
	pass, ok := field()
	return user, pass, ok
}
