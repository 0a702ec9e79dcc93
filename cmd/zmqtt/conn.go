package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/transport"
)

// common holds the options every command shares, named as mosquitto_pub
// and mosquitto_sub name them.
type common struct {
	host       string
	port       int
	url        string
	unix       string
	id         string
	idPrefix   string
	user       string
	pass       string
	keepalive  int
	versionArg string
	qos        int
	persistent bool // -c
	expiryArg  string
	debug      bool
	quiet      bool
	props      propSpec
	willTopic  string
	willMsg    string
	willQoS    int
	willRetain bool
	cafile     string
	cert       string
	key        string
	insecure   bool
	osCerts    bool

	// Set by finish.
	version  codec.Version
	expiry   uint32 // the Session Expiry Interval of CONNECT (5.0)
	urlTopic string // the topic in the path of an mqtt:// or mqtts:// URL
	brokerU  string // the URL the client dials
	passSet  bool   // -P was given, an empty password included

	pOpt, vOpt, xOpt, willMsgOpt, willQoSOpt, willRetainOpt, passOpt *opt
}

// register adds the shared options to s; defVersion is the version when
// -V is not given.
func (f *common) register(s *optSet, defVersion string) {
	f.versionArg = defVersion
	f.keepalive = 60
	s.str(&f.host, "HOST", "broker host (default localhost)", "-h", "--host")
	f.pOpt = s.int(&f.port, "PORT", "broker port (default 1883, 8883 with TLS)", 1, 65535, "-p", "--port")
	s.str(&f.url, "URL", "broker URL: mqtt://, mqtts://, ws://, wss:// or unix:///path; in an mqtt:// or mqtts:// URL user:password@ gives the credentials and a path the topic, as mosquitto's -L does", "-L", "--url")
	s.str(&f.unix, "PATH", "connect through this Unix socket", "--unix")
	s.str(&f.id, "ID", "client identifier (default: none, the broker assigns one)", "-i", "--id")
	s.str(&f.idPrefix, "PREFIX", "client identifier: PREFIX followed by the process id", "-I", "--id-prefix")
	s.str(&f.user, "USER", "user name", "-u", "--username")
	f.passOpt = s.str(&f.pass, "PASSWORD", "password", "-P", "--pw")
	s.int(&f.keepalive, "SECONDS", "keep alive; 0 turns it off (default 60)", 0, 65535, "-k", "--keepalive")
	f.vOpt = s.str(&f.versionArg, "VERSION", "MQTT version: mqttv5 or 5, mqttv311 or 311 (default "+defVersion+"; -D selects 5)", "-V", "--protocol-version")
	s.int(&f.qos, "QOS", "quality of service: 0, 1 or 2 (default 0)", 0, 2, "-q", "--qos")
	s.flag(&f.persistent, "persistent session: clean session off (needs -i); on MQTT 5.0 the session never expires unless -x", "-c", "--disable-clean-session")
	f.xOpt = s.str(&f.expiryArg, "SECONDS", "MQTT 5.0 session expiry interval: 0 to 4294967294, or -1 (never); default 0, or -1 with -c", "-x")
	s.flag(&f.debug, "print every packet sent and received, as mosquitto's -d does", "-d", "--debug")
	s.add(&opt{names: []string{"-D", "--property"}, arg: "COMMAND NAME VALUE",
		help:  "MQTT 5.0 property on a packet: COMMAND is connect, publish, subscribe, unsubscribe, disconnect or will (-D publish user-property key value)",
		nargs: f.props.nargs, set: f.props.set})
	s.str(&f.willTopic, "TOPIC", "will: the topic the broker publishes on if the connection ends abnormally", "--will-topic")
	f.willMsgOpt = s.str(&f.willMsg, "PAYLOAD", "will: its payload (default empty)", "--will-payload")
	f.willQoSOpt = s.int(&f.willQoS, "QOS", "will: its QoS (default 0)", 0, 2, "--will-qos")
	f.willRetainOpt = s.flag(&f.willRetain, "will: retain it", "--will-retain")
	s.str(&f.cafile, "FILE", "PEM file of the certificate authorities to trust (turns TLS on)", "--cafile")
	s.str(&f.cert, "FILE", "PEM client certificate for mutual TLS", "--cert")
	s.str(&f.key, "FILE", "PEM private key of --cert", "--key")
	s.flag(&f.insecure, "do not verify the broker's certificate (testing only)", "--insecure")
	s.flag(&f.osCerts, "TLS with the system's certificate authorities", "--tls-use-os-certs")
	s.flag(&f.quiet, "do not print errors (the exit status still tells)", "--quiet")
	var nodelay bool
	s.flag(&nodelay, "accepted for mosquitto's sake: Go's TCP connections never delay small packets", "--nodelay")
	s.refuse("Go's crypto/tls has no TLS-PSK", 1, "--psk", "--psk-identity")
	s.refuse("use --cafile (a PEM file may hold several certificates)", 1, "--capath")
	s.refuse("Go's crypto/tls chooses the cipher suites and TLS version", 1, "--ciphers", "--tls-version")
	s.refuse("OpenSSL engines do not exist in Go's crypto/tls", 1, "--tls-engine", "--keyform", "--tls-engine-kpass-sha1")
	s.refuse("not implemented", 1, "--tls-alpn", "--proxy", "-A")
	s.refuse("DNS SRV lookups are not implemented", 0, "-S")
}

// finish checks the shared options once parsed, and works out the version,
// the session expiry and the URL.
func (f *common) finish(s *optSet) error {
	switch strings.ToLower(f.versionArg) {
	case "mqttv5", "5", "5.0":
		f.version = codec.V5
	case "mqttv311", "311", "3.1.1":
		f.version = codec.V311
	case "mqttv31", "31", "3.1":
		return usagef("-V %s: MQTT 3.1 is not supported: use 311 or 5", f.versionArg)
	default:
		return usagef("-V %s: unknown protocol version: use mqttv5 (5) or mqttv311 (311)", f.versionArg)
	}
	if f.props.any {
		if s.given(f.vOpt) && f.version == codec.V311 {
			return usagef("-D sets MQTT 5.0 properties, which MQTT 3.1.1 does not have: drop -V %s", f.versionArg)
		}
		f.version = codec.V5 // as mosquitto: -D makes the client an MQTT 5.0 client
	}
	if err := f.props.check(); err != nil {
		return err
	}
	f.passSet = s.given(f.passOpt)
	if f.id != "" && f.idPrefix != "" {
		return usagef("use -i or -I, not both")
	}
	if f.idPrefix != "" {
		f.id = f.idPrefix + strconv.Itoa(os.Getpid())
	}
	if f.persistent && f.id == "" {
		return usagef("-c needs a client identifier (-i): the broker keeps the session under it")
	}
	if s.given(f.xOpt) {
		if f.version != codec.V5 {
			return usagef("-x is a session expiry interval of MQTT 5.0: add -V 5 (on 3.1.1, -c keeps the session until the broker drops it)")
		}
		if f.props.props[pcConnect].Has(codec.PropSessionExpiryInterval) {
			return usagef("use -x or -D connect session-expiry-interval, not both")
		}
		switch f.expiryArg {
		case "-1", "∞":
			f.expiry = maxU32
		default:
			n, err := parseInt(f.expiryArg, 0, maxU32)
			if err != nil {
				return usagef("-x: %v, or -1 for a session that never expires", err)
			}
			f.expiry = uint32(n)
		}
	} else if p := &f.props.props[pcConnect]; p.Has(codec.PropSessionExpiryInterval) {
		f.expiry = p.SessionExpiry
	} else if f.persistent {
		f.expiry = maxU32
	}
	if f.expiry == maxU32 && f.id == "" {
		return usagef("a session that never expires needs a client identifier (-i)")
	}
	if f.willTopic == "" {
		switch {
		case s.given(f.willMsgOpt):
			return usagef("--will-payload needs --will-topic")
		case s.given(f.willQoSOpt):
			return usagef("--will-qos needs --will-topic")
		case s.given(f.willRetainOpt):
			return usagef("--will-retain needs --will-topic")
		case f.props.given[pcWill]:
			return usagef("-D will needs --will-topic")
		}
	} else if err := codec.ValidateTopicName(f.willTopic); err != nil {
		return usagef("--will-topic %q: %v", f.willTopic, err)
	}
	return f.brokerURL()
}

// brokerURL works out the URL to dial from --url, --unix or -h and -p.
func (f *common) brokerURL() error {
	tlsOn := f.cafile != "" || f.cert != "" || f.insecure || f.osCerts
	switch {
	case f.unix != "" && f.url != "":
		return usagef("use --unix or --url, not both")
	case f.unix != "":
		f.brokerU = "unix://" + f.unix
		return nil
	case f.url == "":
		scheme, port := "mqtt", 1883
		if tlsOn {
			scheme, port = "mqtts", 8883
		}
		if f.port != 0 {
			port = f.port
		}
		host := f.host
		if host == "" {
			host = "localhost"
		}
		f.brokerU = scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
		return nil
	}
	u, err := url.Parse(f.url)
	if err != nil {
		return usagef("--url: %v", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "mqtts", "tcp", "ssl", "tls":
		// As mosquitto's -L: the path names the topic.
		if t := strings.TrimPrefix(u.Path, "/"); t != "" {
			f.urlTopic = t
		}
		u.Path, u.RawPath = "", ""
	}
	if err := transport.CheckURL(u.String()); err != nil {
		return usagef("--url: %v", err)
	}
	f.brokerU = u.String()
	return nil
}

func (f *common) tlsConfig() (*tls.Config, error) {
	if f.cafile == "" && f.cert == "" && f.key == "" && !f.insecure && !f.osCerts {
		return nil, nil
	}
	conf := &tls.Config{InsecureSkipVerify: f.insecure}
	if f.cafile != "" {
		pem, err := os.ReadFile(f.cafile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", f.cafile)
		}
		conf.RootCAs = pool
	}
	if f.cert != "" || f.key != "" {
		c, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{c}
	}
	return conf, nil
}

// errFirstAttempt ends Connect when the first connection attempt failed.
var errFirstAttempt = errors.New("the first connection attempt failed")

// errInterrupted is the error of a command stopped by SIGINT or SIGTERM:
// status 0, nothing printed, as mosquitto_sub.
var errInterrupted = errors.New("interrupted")

// conn is a connected client of either version, as the commands need it.
type conn struct {
	v3 *client.Client
	v5 *client.Client5
	f  *common
}

// dialOpts are what a command adds to the shared options.
type dialOpts struct {
	v5only     bool // req and serve
	subscribed bool // -d prints mosquitto_sub's "Subscribed" lines
}

// connect connects once: a failed first attempt is the command's error,
// as in mosquitto_pub and mosquitto_sub, which exit on it (its CONNACK
// reason code becomes the exit status). Once connected, the client
// reconnects after a lost connection with the SDK's default policy, as
// mosquitto_sub does, and a persistent session (-c) resumes.
func (f *common) connect(ctx context.Context, e *env, o dialOpts) (*conn, error) {
	if o.v5only && f.version != codec.V5 {
		return nil, usagef("this command needs MQTT 5.0: use -V 5")
	}
	tlsConf, err := f.tlsConfig()
	if err != nil {
		return nil, err
	}
	ka := time.Duration(f.keepalive) * time.Second
	if f.keepalive == 0 {
		ka = client.NoKeepAlive
	}
	cfg := client.Config{URL: f.brokerU, ClientID: f.id, KeepAlive: ka, Username: f.user, TLS: tlsConf,
		Persistent: f.persistent}
	if f.passSet {
		cfg.Password = []byte(f.pass)
	}
	if f.willTopic != "" {
		cfg.Will = &client.Will{Topic: f.willTopic, Payload: []byte(f.willMsg), QoS: client.QoS(f.willQoS), Retain: f.willRetain}
	}
	if f.debug {
		tr := newTracer(e.out, f.version, f.id, o.subscribed)
		u, opts := f.brokerU, &transport.Options{TLSConfig: tlsConf}
		cfg.Dial = func(ctx context.Context) (net.Conn, error) {
			nc, err := transport.Dial(ctx, u, opts)
			if err != nil {
				return nil, err
			}
			return tr.wrap(nc), nil
		}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	connected := make(chan struct{})
	cfg.OnStateChange = func(sc client.StateChange) {
		switch sc.State {
		case client.StateConnected:
			select {
			case <-connected:
			default:
				close(connected)
			}
		case client.StateReconnecting:
			select {
			case <-connected:
			default:
				cancel(errFirstAttempt)
			}
		}
	}
	c := &conn{f: f}
	if f.version == codec.V5 {
		c.v5, err = client.New5(f.config5(cfg))
		if err == nil {
			err = c.v5.Connect(cctx)
		}
	} else {
		c.v3, err = client.New(cfg)
		if err == nil {
			err = c.v3.Connect(cctx)
		}
	}
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, errInterrupted
	}
	var ce *client.ConnectError
	if errors.As(err, &ce) && ce.Last != nil && errors.Is(context.Cause(cctx), errFirstAttempt) {
		return nil, ce.Last
	}
	return nil, err
}

// config5 adds the MQTT 5.0 options: session expiry, -D connect and -D
// will.
func (f *common) config5(cfg client.Config) client.Config5 {
	p := &f.props.props[pcConnect]
	c := client.Config5{Config: cfg, SessionExpiry: time.Duration(f.expiry) * time.Second,
		ReceiveMaximum: p.ReceiveMaximum, MaximumPacketSize: p.MaximumPacketSize,
		TopicAliasMaximum: p.TopicAliasMaximum, RequestResponseInfo: p.RequestResponseInfo == 1,
		User: p.User, WillProperties: f.props.props[pcWill]}
	if p.Has(codec.PropRequestProblemInformation) {
		v := p.RequestProblemInfo == 1
		c.RequestProblemInfo = &v
	}
	if p.Has(codec.PropAuthenticationMethod) {
		c.Authenticator = oneShotAuth{method: p.AuthMethod, data: p.AuthData}
	}
	// -D publish topic-alias: the session chooses the aliases (up to the
	// broker's Topic Alias Maximum); the number given is not used as is.
	c.OutboundTopicAliases = f.props.props[pcPublish].Has(codec.PropTopicAlias)
	return c
}

// publishProps returns the -D publish properties for a Publish: the topic
// alias is left to the session.
func (f *common) publishProps() codec.Properties {
	p := f.props.props[pcPublish]
	p.TopicAlias = 0
	p.Present &^= 1 << codec.PropTopicAlias
	return p
}

func (c *conn) publish(ctx context.Context, topic string, payload []byte, qos int, retain bool) error {
	if c.v5 != nil {
		opts := []client.PublishOption5{client.WithProperties(c.f.publishProps()), client.QoS(qos)}
		if retain {
			opts = append(opts, client.Retain)
		}
		_, err := c.v5.Publish(ctx, topic, payload, opts...)
		return err
	}
	opts := []client.PublishOption{client.QoS(qos)}
	if retain {
		opts = append(opts, client.Retain)
	}
	return c.v3.Publish(ctx, topic, payload, opts...)
}

// publishAsync publishes without waiting; close waits for it.
func (c *conn) publishAsync(topic string, payload []byte, qos int, retain bool) {
	if c.v5 != nil {
		opts := []client.PublishOption5{client.QoS(qos)}
		if retain {
			opts = append(opts, client.Retain)
		}
		c.v5.PublishAsync(topic, payload, opts...)
		return
	}
	opts := []client.PublishOption{client.QoS(qos)}
	if retain {
		opts = append(opts, client.Retain)
	}
	c.v3.PublishAsync(topic, payload, opts...)
}

// subOpts are sub's subscription options beyond the QoS.
type subOpts struct {
	noRetained        bool // -R: on 5.0, Retain Handling 2 (send none at subscribe)
	retainAsPublished bool
}

func (c *conn) subscribe(ctx context.Context, filters []string, qos int, so subOpts) (*client.Subscription, error) {
	if c.v5 != nil {
		opts := []client.SubscribeOption5{client.QoS(qos)}
		if so.noRetained {
			opts = append(opts, client.RetainHandling(codec.DoNotSendRetained))
		}
		if so.retainAsPublished {
			opts = append(opts, client.RetainAsPublished())
		}
		p := &c.f.props.props[pcSubscribe]
		if len(p.SubscriptionIDs) > 0 {
			opts = append(opts, client.SubscriptionID(p.SubscriptionIDs[0]))
		}
		for _, u := range p.User {
			opts = append(opts, client.UserProperty(u.Key, u.Value))
		}
		return c.v5.Subscribe(ctx, filters, opts...)
	}
	return c.v3.Subscribe(ctx, filters, client.QoS(qos))
}

func (c *conn) unsubscribe(ctx context.Context, filters []string) error {
	if c.v5 != nil {
		_, err := c.v5.Unsubscribe(ctx, filters, c.f.props.props[pcUnsubscribe].User...)
		return err
	}
	_, err := c.v3.Unsubscribe(ctx, filters...)
	return err
}

// close disconnects, waiting up to 5 s for what is in flight. withWill
// (MQTT 5.0) sends reason 0x04, Disconnect with Will Message, so that the
// broker publishes the will: what mosquitto_sub does when it is
// interrupted or its -W time is up.
func (c *conn) close(withWill bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.v5 != nil {
		reason := codec.ReasonNormalDisconnection
		if withWill && c.f.willTopic != "" {
			reason = codec.ReasonDisconnectWithWill
		}
		var props *codec.Properties
		if c.f.props.given[pcDisconnect] {
			p := c.f.props.props[pcDisconnect]
			props = &p
		}
		c.v5.Disconnect(ctx, reason, props)
		return
	}
	c.v3.Disconnect(ctx)
}
