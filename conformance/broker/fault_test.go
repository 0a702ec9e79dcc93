package broker_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance/broker"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// A faultProxy stands between the checks and a real Mosquitto and breaks
// the broker's behaviour in one way: it is the deliberately wrong broker
// that proves each check can fail. It frames and decodes every packet with
// the codec, lets the fault change, drop or add packets, and re-encodes
// them.
type faultProxy struct {
	t       *testing.T
	ln      net.Listener
	up      string
	version codec.Version
	f       *fault

	mu      sync.Mutex
	clients map[*proxyConn]bool
	wg      sync.WaitGroup
}

type proxyConn struct {
	p      *faultProxy
	client net.Conn
	broker net.Conn
	wmu    sync.Mutex // serialises writes to client

	// The fields below are written only by clientToBroker, under mu;
	// brokerToClient and another connection's fanout read them under mu.
	mu        sync.Mutex
	connectID string
	connected bool // a CONNECT went through
	fake      bool // the proxy answered the CONNECT itself: drop everything
}

// setFake marks the connection as answered by the proxy.
func (c *proxyConn) setFake() {
	c.mu.Lock()
	c.fake = true
	c.mu.Unlock()
}

// forwarding reports whether a CONNECT went through to the broker and the
// proxy has not faked the session; safe from any goroutine.
func (c *proxyConn) forwarding() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected && !c.fake
}

// clientID is the client identifier of the CONNECT that went through;
// safe from any goroutine.
func (c *proxyConn) clientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connectID
}

// fault says how the proxy misbehaves. Each hook returns the packets to
// send on (nil drops); a nil hook forwards unchanged.
type fault struct {
	name    string
	targets string // regexp of the checks this fault must make fail
	// toBroker changes a client packet on its way to the broker.
	toBroker func(c *proxyConn, pkt codec.Packet) []codec.Packet
	// toClient changes a broker packet on its way to the client.
	toClient func(c *proxyConn, pkt codec.Packet) []codec.Packet
	// swallow: client bytes that do not decode (or frame) are dropped
	// and the connection kept open; an undecodable or missing CONNECT is
	// answered with CONNACK 0 by the proxy.
	swallow bool
	// hideClose keeps the client's connection open when the broker
	// closes its side.
	hideClose bool
	// normalDisconnectAborts turns a client's normal DISCONNECT into an
	// abrupt close of the broker side (so the will is published).
	normalDisconnectAborts bool
}

func startProxy(t *testing.T, up string, v codec.Version, f *fault) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, up: up, version: v, f: f, clients: map[*proxyConn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.clients {
		c.client.Close()
		c.broker.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// accept runs until the listener is closed.
func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.up)
		if err != nil {
			conn.Close()
			continue
		}
		c := &proxyConn{p: p, client: conn, broker: up}
		p.mu.Lock()
		p.clients[c] = true
		p.mu.Unlock()
		p.wg.Add(2)
		go c.clientToBroker()
		go c.brokerToClient()
	}
}

func (c *proxyConn) writeClient(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.client.Write(b)
}

func (c *proxyConn) encode(pkts []codec.Packet) []byte {
	var out []byte
	for _, pkt := range pkts {
		b, err := pkt.Append(nil, c.p.version)
		if err != nil {
			continue // a fault made it unencodable: dropped
		}
		out = append(out, b...)
	}
	return out
}

// clientToBroker exits when the client's connection ends (or, for a
// swallowing fault after a framing error, when the proxy closes it).
func (c *proxyConn) clientToBroker() {
	defer c.p.wg.Done()
	defer c.broker.Close()
	f := c.p.f
	r := bufio.NewReader(c.client)
	dec := codec.Decoder{Version: c.p.version, From: codec.RoleClient}
	for {
		raw, err := readFrame(r)
		if err != nil {
			if errors.Is(err, errBadFrame) {
				if f.swallow {
					io.Copy(io.Discard, r) // stay open, deaf
					return
				}
				c.broker.Write(raw) // let the broker judge the bytes
				io.Copy(c.broker, r)
			}
			return
		}
		pkt, _, derr := dec.Decode(raw)
		if derr != nil {
			if f.swallow {
				if !c.connected && !c.fake {
					c.setFake()
					c.writeClient(c.encode([]codec.Packet{&codec.Connack{}}))
				}
				continue
			}
			c.broker.Write(raw)
			continue
		}
		if f.swallow && (c.fake || (!c.connected && pkt.Type() != codec.TypeConnect) || (c.connected && pkt.Type() == codec.TypeConnect)) {
			if !c.connected && !c.fake {
				c.setFake()
				c.writeClient(c.encode([]codec.Packet{&codec.Connack{}}))
			}
			continue
		}
		pkt = codec.Clone(pkt)
		if cp, ok := pkt.(*codec.Connect); ok {
			c.mu.Lock()
			c.connected, c.connectID = true, cp.ClientID
			c.mu.Unlock()
		}
		if d, ok := pkt.(*codec.Disconnect); ok && f.normalDisconnectAborts && d.ReasonCode == 0 {
			return // close the broker side without DISCONNECT
		}
		if pub, ok := pkt.(*codec.Publish); ok && fanout(f) {
			c.p.fanout(pub)
		}
		out := []codec.Packet{pkt}
		if f.toBroker != nil {
			out = f.toBroker(c, pkt)
		}
		if _, err := c.broker.Write(c.encode(out)); err != nil {
			return
		}
	}
}

// brokerToClient exits when the broker's connection ends; it closes the
// client's unless the fault hides the close.
func (c *proxyConn) brokerToClient() {
	defer c.p.wg.Done()
	f := c.p.f
	r := codec.NewReader(c.broker, 1<<20)
	for {
		_, raw, err := r.Next()
		if err != nil {
			if !f.hideClose {
				c.client.Close()
			}
			return
		}
		pkt, _, derr := codec.Decode(raw, c.p.version)
		if derr != nil {
			c.writeClient(raw)
			continue
		}
		pkt = codec.Clone(pkt)
		out := []codec.Packet{pkt}
		if f.toClient != nil {
			out = f.toClient(c, pkt)
		}
		c.writeClient(c.encode(out))
	}
}

func fanout(f *fault) bool { return f.name == "fanout" }

// fanout sends a QoS 0 copy of pub to every client of the proxy, the
// sender included, whatever they subscribed to.
func (p *faultProxy) fanout(pub *codec.Publish) {
	cp := &codec.Publish{Topic: pub.Topic, Payload: pub.Payload}
	if cp.Topic == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.clients {
		if c.forwarding() {
			c.writeClient(c.encode([]codec.Packet{cp}))
		}
	}
}

func one(p codec.Packet) []codec.Packet { return []codec.Packet{p} }

// faults is the set of wrong brokers. Together with the checks that fail
// against Mosquitto itself, their targets cover the whole catalogue
// (TestEveryCheckCanFail checks that).
var faults = []*fault{
	{
		name: "swallow-malformed",
		targets: `^(malformed/.*|connect/(second-connect-closes|first-packet-not-connect|unsupported-protocol-level|wrong-protocol-name|reserved-flag|will-qos-.*|password-without-user-name)|` +
			`subscribe/(invalid-filter-refused|reserved-flags-close|no-filter-close|qos3-close|reserved-option-bits-close)|unsubscribe/(reserved-flags-close|no-filter-close)|` +
			`subid/zero-refused|alias/zero-refused|nolocal/on-shared-subscription-refused|shared/invalid-share-name-refused|will/published-after-protocol-error)$`,
		swallow: true,
	},
	{
		name:      "hide-close",
		targets:   `^(connect/take-over|keepalive/enforced-at-1.5x|alias/(above-maximum-refused|unknown-alias-refused))$`,
		hideClose: true,
	},
	{
		name: "rewrite-connect",
		targets: `^(connect/clean-start-discards-session|session/(clean-start-drops-queued|expiry-zero-ends-at-disconnect|expiry-elapses)|` +
			`will/(delay|delay-cancelled-by-reconnect|not-published-on-disconnect|properties-forwarded)|recvmax/(server-respects-client|other-packets-flow-at-quota-0)|maxpkt/client-maximum-honoured)$`,
		normalDisconnectAborts: true,
		toBroker: func(c *proxyConn, pkt codec.Packet) []codec.Packet {
			if cp, ok := pkt.(*codec.Connect); ok {
				cp.KeepAlive = 0
				if cp.ClientID != "" {
					cp.CleanStart = false
				}
				if c.p.version == codec.V5 {
					cp.Props = codec.Properties{SessionExpiry: 300}
					if cp.Will != nil {
						cp.Will.Props = codec.Properties{}
					}
				}
			}
			return one(pkt)
		},
	},
	{
		name: "rewrite-connack",
		targets: `^(connect/(accepted|connack-before-other-packets|new-persistent-session-not-present|session-present-on-resume|empty-client-id-assigned|empty-client-id-persistent-refused|client-id-23-alphanumeric|response-information-only-when-requested|connack-properties-valid)|` +
			`session/offline-qos[12]-queued|maxpkt/server-maximum-enforced)$`,
		toClient: func(c *proxyConn, pkt codec.Packet) []codec.Packet {
			ack, ok := pkt.(*codec.Connack)
			if !ok {
				return one(pkt)
			}
			switch {
			case ack.ReasonCode != 0:
				ack.ReasonCode = 0 // accept what the broker refused
			case c.clientID() == "" || len(c.clientID()) == 23:
				ack.ReasonCode = codec.ReturnIdentifierRejected // refuse what every broker must accept
				if c.p.version == codec.V5 {
					ack.ReasonCode = codec.ReasonClientIdentifierNotValid
				}
				ack.SessionPresent, ack.Props = false, codec.Properties{}
				return one(ack)
			default:
				ack.SessionPresent = !ack.SessionPresent
			}
			if c.p.version == codec.V5 {
				ack.Props = codec.Properties{ResponseInfo: "x", MaximumPacketSize: 10, ReceiveMaximum: 20}
			}
			return one(ack)
		},
	},
	{
		name:    "announce-limits",
		targets: `^(retain/not-available-refused|qos/above-maximum-refused|topic/wildcard-not-available-refused|subid/not-available-refused|shared/not-available-refused)$`,
		toClient: func(c *proxyConn, pkt codec.Packet) []codec.Packet {
			if ack, ok := pkt.(*codec.Connack); ok && c.p.version == codec.V5 {
				ack.Props = codec.Properties{MaximumQoS: 1}
				for _, id := range []codec.PropID{codec.PropMaximumQoS, codec.PropRetainAvailable, codec.PropWildcardSubscriptionAvailable,
					codec.PropSubscriptionIdentifierAvailable, codec.PropSharedSubscriptionAvailable} {
					ack.Props.Mark(id)
				}
			}
			return one(pkt)
		},
	},
	{
		name: "retain-flip",
		targets: `^(retain/(sent-to-new-subscription|wildcard-subscription-gets-retained|replaced|non-retained-publish-leaves-store|live-delivery-flag-cleared|resubscribe-sends-again|as-published-keeps-flag)|` +
			`will/(retained|published-on-abnormal-close))$`,
		toClient: func(c *proxyConn, pkt codec.Packet) []codec.Packet {
			if pub, ok := pkt.(*codec.Publish); ok {
				pub.Retain = !pub.Retain
			}
			return one(pkt)
		},
	},
	{
		name: "drop-deliveries",
		targets: `^(publish/(qos[012]-round-trip|dup-not-propagated|payload-kept-byte-for-byte|order-kept|overlapping-subscriptions-max-qos)|subscribe/(downgrade-.*|replaces-existing)|` +
			`packetid/(reuse-after-acknowledgement|server-ids-distinct|independent-per-direction|qos2-many-in-flight)|unsubscribe/exact-filter-only|` +
			`will/(disconnect-with-will-message)|session/(subscription-survives-reconnect|unacknowledged-resent-with-dup|pubrel-resent)|expiry/(offline-message-expires|reduced-when-forwarded)|` +
			`alias/(client-alias-resolved|within-client-maximum|none-when-client-maximum-0)|subid/(echoed|overlapping-subscriptions)|nolocal/own-messages-not-sent|shared/one-copy-per-group|` +
			`props/(request-response-forwarded|user-properties-in-order|payload-format-and-content-type|message-expiry-forwarded)|topic/(hash-matches-parent-and-children|plus-matches-one-level|plus-in-the-middle|case-sensitive|no-normalisation|empty-levels-distinct))$`,
		toClient: func(c *proxyConn, pkt codec.Packet) []codec.Packet {
			if _, ok := pkt.(*codec.Publish); ok {
				return nil
			}
			return one(pkt)
		},
	},
	{
		name: "ack-mutate",
		targets: `^(publish/(qos[12]-no-subscribers-acknowledged|pubrel-unknown-id-completed)|keepalive/(pingresp|traffic-keeps-alive)|subscribe/multiple-filters-one-code-each|` +
			`unsubscribe/(stops-delivery|unknown-filter-acknowledged|several-filters-one-unsuback)|props/problem-information-0-respected)$`,
		toClient: func(c *proxyConn, pkt codec.Packet) []codec.Packet {
			switch p := pkt.(type) {
			case *codec.Puback:
				p.PacketID++
			case *codec.Pubrec:
				p.PacketID++
			case *codec.Pubcomp:
				p.PacketID++
			case *codec.Suback:
				slices.Reverse(p.ReasonCodes)
				p.PacketID++
			case *codec.Unsuback:
				p.PacketID++
			case *codec.Pingresp:
				return nil
			}
			return one(pkt)
		},
	},
	{
		name:    "fanout",
		targets: `^(topic/dollar-not-matched-by-wildcards|publish/qos2-duplicate-delivered-once)$`,
	},
	{
		name: "mutate-publish-subscribe",
		targets: `^(retain/(cleared-by-empty-payload|handling-1-only-new-subscription|handling-2-none)|expiry/retained-message-expires|` +
			`shared/no-retained-on-subscribe)$`,
		toBroker: func(c *proxyConn, pkt codec.Packet) []codec.Packet {
			switch p := pkt.(type) {
			case *codec.Publish:
				p.Props.MessageExpiry = 0
				p.Props.Present = 0
				if p.Retain && len(p.Payload) == 0 {
					p.Retain = false // the retained message is never cleared
				}
			case *codec.Subscribe:
				for i := range p.Subscriptions {
					p.Subscriptions[i].RetainHandling = codec.SendRetained
				}
			}
			return one(pkt)
		},
	},
	{
		name:    "alias-inject",
		targets: `^(alias/(none-when-client-maximum-0|within-client-maximum))$`,
		toClient: func(c *proxyConn, pkt codec.Packet) []codec.Packet {
			if pub, ok := pkt.(*codec.Publish); ok && c.p.version == codec.V5 {
				pub.Props.TopicAlias = 3
			}
			return one(pkt)
		},
	},
}

// TestEveryCheckCanFail runs, for each wrong broker, the checks it targets
// and asserts that every one of them fails; then asserts that each check
// of the catalogue fails against some wrong broker or against Mosquitto
// itself. A transparent proxy first shows that the proxy alone changes
// nothing.
func TestEveryCheckCanFail(t *testing.T) {
	mq := brokertest.Start(t)
	up := mq.Addr(brokertest.MQTT)
	cat := broker.Catalogue()
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		name := map[codec.Version]string{codec.V311: "3.1.1", codec.V5: "5.0"}[v]
		want := expected["mosquitto 2.0.11 / "+name]
		t.Run("transparent-"+name, func(t *testing.T) {
			p := startProxy(t, up, v, &fault{name: "transparent"})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for _, r := range broker.Run(ctx, broker.Config{Dial: dialer(p.ln.Addr().String()), Version: v}, cat) {
				if (r.Status == broker.Fail) != slices.Contains(want, r.Check.Name) {
					t.Errorf("through the transparent proxy %s is %v (%v)", r.Check.Name, r.Status, r.Err)
				}
			}
		})
		covered := map[string]bool{}
		for _, n := range want {
			covered[n] = true
		}
		var mu sync.Mutex
		t.Run("faults-"+name, func(t *testing.T) {
			for _, f := range faults {
				t.Run(f.name, func(t *testing.T) {
					t.Parallel()
					p := startProxy(t, up, v, f)
					ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
					defer cancel()
					re := regexp.MustCompile(f.targets)
					rs := broker.Run(ctx, broker.Config{Dial: dialer(p.ln.Addr().String()), Version: v, Only: re, Parallel: 16, Timeout: 5 * time.Second}, cat)
					for _, r := range rs {
						switch r.Status {
						case broker.Fail:
							mu.Lock()
							covered[r.Check.Name] = true
							mu.Unlock()
						case broker.NA:
							// Not applicable under this fault on this version.
						default:
							t.Errorf("%s passed against the %s broker", r.Check.Name, f.name)
						}
					}
				})
			}
		})
		for _, c := range cat {
			if c.AppliesTo(v) && !covered[c.Name] {
				t.Errorf("%s (%s) fails against no wrong broker: nothing shows it can fail", c.Name, name)
			}
		}
	}
}

var errBadFrame = errors.New("bad fixed header")

// readFrame reads one packet's bytes without judging them, except for a
// Remaining Length of more than 4 bytes (errBadFrame, with the bytes read).
func readFrame(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	raw := []byte{first}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		raw = append(raw, b)
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return raw, errBadFrame
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(raw, body...), nil
}
