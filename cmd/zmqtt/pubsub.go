package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zmqtt/zmqtt-go/client"
)

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("zmqtt "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return &usageError{msg: "help shown"}
		}
		return &usageError{msg: err.Error()}
	}
	return nil
}

func cmdPub(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	fs := newFlags("pub", stderr)
	var cf connFlags
	cf.register(fs)
	topic := fs.String("t", "", "topic to publish to (required)")
	msg := fs.String("m", "", "message payload")
	lines := fs.Bool("l", false, "publish each line of standard input as a message")
	file := fs.String("f", "", "publish the content of a file as the message")
	retain := fs.Bool("r", false, "retain the message")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *topic == "" {
		return &usageError{msg: "pub needs -t topic"}
	}
	if *lines && *file != "" {
		return &usageError{msg: "use -l or -f, not both"}
	}
	c, err := cf.dial(ctx, false, nil)
	if err != nil {
		return err
	}
	defer c.close()
	switch {
	case *lines:
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 256<<20)
		for sc.Scan() {
			if err := c.publish(ctx, *topic, sc.Bytes(), cf.qos, *retain); err != nil {
				return err
			}
		}
		return sc.Err()
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		return c.publish(ctx, *topic, b, cf.qos, *retain)
	}
	return c.publish(ctx, *topic, []byte(*msg), cf.qos, *retain)
}

// filters collects repeated -t flags.
type filters []string

func (f *filters) String() string     { return strings.Join(*f, ",") }
func (f *filters) Set(s string) error { *f = append(*f, s); return nil }

func cmdSub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sub", stderr)
	var cf connFlags
	cf.register(fs)
	var ts filters
	fs.Var(&ts, "t", "topic filter (repeat for more)")
	verbose := fs.Bool("v", false, "print the topic before the payload")
	count := fs.Int("C", 0, "exit after this many messages")
	wait := fs.Int("W", 0, "exit after this many seconds (an error if -C was not reached)")
	asJSON := fs.Bool("json", false, "print one JSON object per message")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(ts) == 0 {
		return &usageError{msg: "sub needs -t filter"}
	}
	if *wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*wait)*time.Second)
		defer cancel()
	}
	c, err := cf.dial(ctx, false, nil)
	if err != nil {
		return err
	}
	defer c.close()
	sub, err := c.subscribe(ctx, ts, cf.qos)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	n := 0
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil && *wait > 0 && *count == 0 {
				return nil // listened for -W seconds, as asked
			}
			return err
		}
		printMessage(w, m, *verbose, *asJSON)
		w.Flush()
		n++
		if *count > 0 && n >= *count {
			return nil
		}
	}
}

type jsonMessage struct {
	Topic         string            `json:"topic"`
	Payload       *string           `json:"payload,omitempty"`
	PayloadBase64 string            `json:"payload_base64,omitempty"`
	QoS           int               `json:"qos"`
	Retain        bool              `json:"retain"`
	ContentType   string            `json:"content_type,omitempty"`
	User          map[string]string `json:"user_properties,omitempty"`
}

func printMessage(w io.Writer, m client.Message, verbose, asJSON bool) {
	if !asJSON {
		if verbose {
			fmt.Fprintf(w, "%s %s\n", m.Topic, m.Payload)
		} else {
			fmt.Fprintf(w, "%s\n", m.Payload)
		}
		return
	}
	j := jsonMessage{Topic: m.Topic, QoS: int(m.QoS), Retain: m.Retain, ContentType: m.Properties.ContentType}
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		j.Payload = &s
	} else {
		j.PayloadBase64 = base64.StdEncoding.EncodeToString(m.Payload)
	}
	if len(m.Properties.User) > 0 {
		j.User = make(map[string]string)
		for _, u := range m.Properties.User {
			j.User[u.Key] = u.Value
		}
	}
	b, _ := json.Marshal(j)
	fmt.Fprintf(w, "%s\n", b)
}
