package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

// connFlags are the connection options every subcommand shares, named as
// mosquitto_pub and mosquitto_sub name them.
type connFlags struct {
	host      string
	port      int
	url       string
	id        string
	user      string
	pass      string
	keepalive int
	version   string
	cafile    string
	cert      string
	key       string
	insecure  bool
	qos       int
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.host, "h", "localhost", "broker host")
	fs.IntVar(&f.port, "p", 0, "broker port (default 1883, 8883 with TLS)")
	fs.StringVar(&f.url, "url", "", "broker URL: mqtt://, mqtts://, ws://, wss://, unix:// (overrides -h and -p)")
	fs.StringVar(&f.id, "i", "", "client identifier (default: assigned by the broker)")
	fs.StringVar(&f.user, "u", "", "user name")
	fs.StringVar(&f.pass, "P", "", "password")
	fs.IntVar(&f.keepalive, "k", 60, "keep alive in seconds (0 turns it off)")
	fs.StringVar(&f.version, "V", "311", "protocol version: 311 or 5")
	fs.StringVar(&f.cafile, "cafile", "", "PEM file of the certificate authorities to trust (turns TLS on)")
	fs.StringVar(&f.cert, "cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&f.key, "key", "", "PEM private key of -cert")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the broker's certificate (testing only)")
	fs.IntVar(&f.qos, "q", 0, "QoS: 0, 1 or 2")
}

// brokerURL builds the URL from -url or -h/-p.
func (f *connFlags) brokerURL() (string, error) {
	if f.url != "" {
		if _, err := url.Parse(f.url); err != nil {
			return "", fmt.Errorf("bad -url: %w", err)
		}
		return f.url, nil
	}
	scheme, port := "mqtt", 1883
	if f.cafile != "" || f.cert != "" || f.insecure {
		scheme, port = "mqtts", 8883
	}
	if f.port != 0 {
		port = f.port
	}
	return scheme + "://" + net.JoinHostPort(f.host, strconv.Itoa(port)), nil
}

func (f *connFlags) tlsConfig() (*tls.Config, error) {
	if f.cafile == "" && f.cert == "" && !f.insecure {
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

// conn is a connected client of either version, as the subcommands need it.
type conn struct {
	v3 *client.Client
	v5 *client.Client5
}

func (f *connFlags) config() (client.Config, error) {
	u, err := f.brokerURL()
	if err != nil {
		return client.Config{}, err
	}
	t, err := f.tlsConfig()
	if err != nil {
		return client.Config{}, err
	}
	ka := time.Duration(f.keepalive) * time.Second
	if f.keepalive == 0 {
		ka = client.NoKeepAlive
	}
	cfg := client.Config{URL: u, ClientID: f.id, KeepAlive: ka, Username: f.user, TLS: t,
		Reconnect: client.ReconnectPolicy{MaxAttempts: 1}}
	if f.pass != "" {
		cfg.Password = []byte(f.pass)
	}
	if f.qos < 0 || f.qos > 2 {
		return client.Config{}, fmt.Errorf("-q must be 0, 1 or 2")
	}
	return cfg, nil
}

func (f *connFlags) dial(ctx context.Context, v5only bool, cfg5 func(*client.Config5)) (*conn, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	switch f.version {
	case "5", "5.0":
		c5 := client.Config5{Config: cfg}
		if cfg5 != nil {
			cfg5(&c5)
		}
		c, err := client.New5(c5)
		if err != nil {
			return nil, err
		}
		if err := c.Connect(ctx); err != nil {
			return nil, err
		}
		return &conn{v5: c}, nil
	case "311", "3.1.1":
		if v5only {
			return nil, errors.New("this command needs MQTT 5.0: use -V 5")
		}
		c, err := client.New(cfg)
		if err != nil {
			return nil, err
		}
		if err := c.Connect(ctx); err != nil {
			return nil, err
		}
		return &conn{v3: c}, nil
	}
	return nil, fmt.Errorf("-V must be 311 or 5, not %q", f.version)
}

func (c *conn) publish(ctx context.Context, topic string, payload []byte, qos int, retain bool) error {
	if c.v5 != nil {
		opts := []client.PublishOption5{client.QoS(qos)}
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

func (c *conn) subscribe(ctx context.Context, filters []string, qos int) (*client.Subscription, error) {
	if c.v5 != nil {
		return c.v5.Subscribe(ctx, filters, client.QoS(qos))
	}
	return c.v3.Subscribe(ctx, filters, client.QoS(qos))
}

func (c *conn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.v5 != nil {
		c.v5.Disconnect(ctx, codec.ReasonNormalDisconnection, nil)
		return
	}
	c.v3.Disconnect(ctx)
}
