package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

// parseCommand parses args into s and the shared options f; on --help it
// prints the usage on standard output.
func parseCommand(s *optSet, f *common, args []string, e *env) error {
	err := s.parse(args)
	if f != nil {
		e.quiet = f.quiet
	}
	if errors.Is(err, errHelp) {
		s.usage(e.stdout)
		return err
	}
	if err != nil || f == nil {
		return err
	}
	return f.finish(s)
}

// cmdPub is mosquitto_pub: one message from -m, -f, -s or -n (repeated
// with --repeat), or one per line of standard input with -l.
func cmdPub(ctx context.Context, args []string, e *env) error {
	s := newOptSet("pub", "-t topic {-m message | -f file | -l | -s | -n} [options]",
		"Publish a message, as mosquitto_pub does.")
	var f common
	var topic, message, file string
	var lines, stdinFile, null, retain bool
	var repeat int
	var repeatDelay string
	s.str(&topic, "TOPIC", "topic to publish to", "-t", "--topic")
	mOpt := s.str(&message, "MESSAGE", "the message", "-m", "--message")
	s.str(&file, "FILE", "send the content of FILE as the message", "-f", "--file")
	s.flag(&lines, "send each line of standard input as a message (without its newline)", "-l", "--stdin-line")
	s.flag(&stdinFile, "send the whole of standard input as the message", "-s", "--stdin-file")
	s.flag(&null, "send a message with an empty payload", "-n", "--null-message")
	s.flag(&retain, "retain the message", "-r", "--retain")
	s.int(&repeat, "COUNT", "publish the message (-m, -f, -s, -n) COUNT times", 1, 1<<31-1, "--repeat")
	s.str(&repeatDelay, "SECONDS", "wait SECONDS (fractions allowed) between repeats", "--repeat-delay")
	f.register(s, "311")
	if err := parseCommand(s, &f, args, e); err != nil {
		return err
	}
	if topic == "" {
		topic = f.urlTopic
	}
	modes := 0
	for _, on := range []bool{s.given(mOpt), file != "", lines, stdinFile, null} {
		if on {
			modes++
		}
	}
	switch {
	case topic == "" && modes == 0:
		return usagef("pub needs -t topic and a message (-m, -f, -l, -s or -n)")
	case topic == "":
		return usagef("pub needs -t topic")
	case modes == 0:
		return usagef("pub needs a message: -m, -f, -l, -s or -n")
	case modes > 1:
		return usagef("use one of -m, -f, -l, -s and -n: only one kind of message at a time")
	}
	if err := codec.ValidateTopicName(topic); err != nil {
		return usagef("invalid publish topic %q: %v", topic, err)
	}
	var delay time.Duration
	if repeatDelay != "" {
		sec, err := parseSeconds(repeatDelay)
		if err != nil {
			return usagef("--repeat-delay: %v", err)
		}
		delay = time.Duration(sec * float64(time.Second))
	}
	repeat = max(repeat, 1)

	// The message is read before connecting, so that a missing file or an
	// empty standard input is reported without a connection.
	var payload []byte
	switch {
	case s.given(mOpt):
		payload = []byte(message)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		payload = b
	case stdinFile:
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return errors.New("standard input is empty (-s): use -n to send a message without payload")
		}
		payload = b
	}
	c, err := f.connect(ctx, e, dialOpts{})
	if err != nil {
		return err
	}
	defer c.close(false)
	pub := func(p []byte) error {
		err := c.publish(ctx, topic, p, f.qos, retain)
		if err != nil && ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	if lines {
		return readLines(e.stdin, pub)
	}
	for i := range repeat {
		if i > 0 && delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return errInterrupted
			}
		}
		if err := pub(payload); err != nil {
			return err
		}
	}
	return nil
}

// readLines calls fn with each line of r, without its "\n" (a "\r" stays,
// as mosquitto_pub -l keeps it); an empty line is an empty message, and a
// last line without a newline is a line all the same.
func readLines(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// subFlags are sub's own options.
type subFlags struct {
	topics, filterOut, unsub []string
	verbose, noEOL           bool
	noRetained, retainedOnly bool
	removeRetained, rap      bool
	exitAfterSub             bool
	pretty, asJSON           bool
	count, wait              int
	format                   string
	fOpt                     *opt
}

// cmdSub is mosquitto_sub: subscribe to the -t filters and print each
// message. It stops after -C messages, after -W seconds (status 27), at
// the first message that is not retained with --retained-only, after the
// SUBACK with -E, or at SIGINT/SIGTERM (status 0).
func cmdSub(ctx context.Context, args []string, e *env) error {
	s := newOptSet("sub", "-t filter [-t filter...] [options]",
		"Subscribe and print the messages, as mosquitto_sub does.")
	var f common
	var o subFlags
	s.list(&o.topics, "FILTER", "topic filter to subscribe to (repeat for more)", "-t", "--topic")
	s.list(&o.filterOut, "FILTER", "do not print messages whose topic matches FILTER (repeat for more)", "-T", "--filter-out")
	s.list(&o.unsub, "FILTER", "unsubscribe FILTER after subscribing, for a persistent session (-c) (repeat for more)", "-U", "--unsubscribe")
	s.int(&o.count, "COUNT", "exit after printing COUNT messages", 0, 1<<31-1, "-C")
	s.int(&o.wait, "SECONDS", "exit after SECONDS from the connection, with status 27", 0, 1<<31-1, "-W")
	s.flag(&o.exitAfterSub, "exit once subscribed (and unsubscribed: -U)", "-E")
	o.fOpt = s.str(&o.format, "FORMAT", "print each message in FORMAT (%t topic, %p payload, %q QoS, %j JSON...; see the README)", "-F")
	s.flag(&o.noEOL, "no newline after each message", "-N")
	s.flag(&o.noRetained, "do not print retained messages (on MQTT 5.0 the broker is asked not to send them)", "-R")
	s.flag(&o.retainedOnly, "print only retained messages; exit at the first that is not", "--retained-only")
	s.flag(&o.removeRetained, "clear each retained message received (publish an empty retained message)", "--remove-retained")
	s.flag(&o.rap, "MQTT 5.0: keep the retain flag of messages as published", "--retain-as-published")
	s.flag(&o.verbose, "print the topic before the payload", "-v", "--verbose")
	s.flag(&o.pretty, "indent the JSON of -F %j and %J", "--pretty")
	s.flag(&o.asJSON, "print one JSON object per message (zmqtt's own format, user properties as a list)", "--json")
	s.refuse("not implemented", 1, "--random-filter")
	f.register(s, "311")
	if err := parseCommand(s, &f, args, e); err != nil {
		return err
	}
	if f.urlTopic != "" {
		o.topics = append([]string{f.urlTopic}, o.topics...)
	}
	if len(o.topics) == 0 {
		return usagef("sub needs -t filter")
	}
	for _, list := range []struct {
		flag    string
		filters []string
	}{{"-t", o.topics}, {"-T", o.filterOut}, {"-U", o.unsub}} {
		for _, t := range list.filters {
			if err := codec.ValidateTopicFilter(t); err != nil {
				return usagef("invalid topic filter %q (%s): %v", t, list.flag, err)
			}
		}
	}
	if o.noRetained && o.retainedOnly {
		return usagef("-R and --retained-only together would print nothing")
	}
	if o.rap && f.version != codec.V5 {
		return usagef("--retain-as-published is an MQTT 5.0 option: add -V 5")
	}
	var pf *format
	if s.given(o.fOpt) {
		if o.asJSON {
			return usagef("use -F or --json, not both")
		}
		var err error
		if pf, err = parseFormat(o.format); err != nil {
			return err
		}
	}

	c, err := f.connect(ctx, e, dialOpts{subscribed: true})
	if err != nil {
		return err
	}
	withWill := false
	defer func() { c.close(withWill) }()
	// -W counts from the connection, as in mosquitto_sub.
	wctx := ctx
	if o.wait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeoutCause(ctx, time.Duration(o.wait)*time.Second, errTimedOut)
		defer cancel()
	}
	// stopped turns the error of a wait into the command's: an interrupt
	// or -W ends quietly (with the will, on 5.0, as mosquitto_sub does).
	stopped := func(err error) error {
		switch {
		case ctx.Err() != nil:
			withWill = true
			return errInterrupted
		case errors.Is(context.Cause(wctx), errTimedOut):
			withWill = true
			return fmt.Errorf("%w: -W %d s passed", errTimedOut, o.wait)
		}
		return err
	}
	sub, err := c.subscribe(wctx, o.topics, f.qos, subOpts{noRetained: o.noRetained, retainAsPublished: o.rap})
	if err != nil {
		return stopped(err)
	}
	if len(o.unsub) > 0 {
		if err := c.unsubscribe(wctx, o.unsub); err != nil {
			return stopped(err)
		}
	}
	if o.exitAfterSub {
		return nil
	}
	if e.tty && !f.quiet {
		fmt.Fprintf(e.stderr, "zmqtt: subscribed to %s on %s; waiting for messages (Ctrl-C to stop)\n",
			strings.Join(o.topics, ", "), redacted(f.brokerU))
	}
	p := printer{f: pf, verbose: o.verbose, eol: !o.noEOL, asJSON: o.asJSON, pretty: o.pretty,
		warn: func(msg string) {
			if !f.quiet {
				fmt.Fprintf(e.stderr, "zmqtt: %s\n", msg)
			}
		}}
	var buf bytes.Buffer
	printed := 0
	for {
		m, err := sub.Next(wctx)
		if err != nil {
			return stopped(err)
		}
		if o.retainedOnly && !m.Retain {
			return nil
		}
		if matchesAny(o.filterOut, m.Topic) {
			continue
		}
		if o.removeRetained && m.Retain {
			c.publishAsync(m.Topic, nil, 1, true)
		}
		if o.noRetained && m.Retain {
			continue
		}
		buf.Reset()
		p.print(&buf, &m, time.Now())
		if buf.Len() > 0 {
			e.out.write(buf.Bytes())
		}
		printed++
		if o.count > 0 && printed >= o.count {
			return nil
		}
	}
}

// redacted is a URL without its password, for messages.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

func matchesAny(filters []string, topic string) bool {
	for _, f := range filters {
		if codec.MatchTopic(f, topic) {
			return true
		}
	}
	return false
}

// printer prints a message as sub's options say.
type printer struct {
	f       *format
	verbose bool
	eol     bool
	asJSON  bool
	pretty  bool
	warn    func(string)
}

// print appends one message. Without -F, as mosquitto_sub: the payload
// (nothing at all for an empty one), or with -v the topic, a space and the
// payload ("topic (null)" for an empty one).
func (p *printer) print(b *bytes.Buffer, m *client.Message, now time.Time) {
	switch {
	case p.f != nil:
		p.f.print(b, m, &fmtEnv{now: now, pretty: p.pretty, warn: p.warn})
	case p.asJSON:
		printJSON(b, m)
	case p.verbose && len(m.Payload) == 0:
		if !p.eol {
			return
		}
		b.WriteString(m.Topic)
		b.WriteString(" (null)")
	case p.verbose:
		b.WriteString(m.Topic)
		b.WriteByte(' ')
		b.Write(m.Payload)
	case len(m.Payload) == 0:
		return
	default:
		b.Write(m.Payload)
	}
	if p.eol {
		b.WriteByte('\n')
	}
}

// jsonMessage is one line of sub --json. User properties are a list of
// key/value objects, in order and with repeated keys kept (jq's
// from_entries turns them into an object when the keys are unique).
type jsonMessage struct {
	Topic         string     `json:"topic"`
	Payload       *string    `json:"payload,omitempty"`
	PayloadBase64 string     `json:"payload_base64,omitempty"`
	QoS           int        `json:"qos"`
	Retain        bool       `json:"retain"`
	ContentType   string     `json:"content_type,omitempty"`
	User          []jsonUser `json:"user_properties,omitempty"`
}

type jsonUser struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func printJSON(b *bytes.Buffer, m *client.Message) {
	j := jsonMessage{Topic: m.Topic, QoS: int(m.QoS), Retain: m.Retain, ContentType: m.Properties.ContentType}
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		j.Payload = &s
	} else {
		j.PayloadBase64 = base64.StdEncoding.EncodeToString(m.Payload)
	}
	for _, u := range m.Properties.User {
		j.User = append(j.User, jsonUser{u.Key, u.Value})
	}
	out, _ := json.Marshal(j)
	b.Write(out)
}
