// Command zmqtt publishes, subscribes, sends requests, serves them and
// measures an MQTT broker. Its pub and sub are drop-ins for mosquitto_pub
// and mosquitto_sub in scripts: the same options with the same meaning,
// the same output (sub -v, -N, -F with mosquitto's format specifiers, -d's
// packet lines) and the same exit statuses. It is built on the zmqtt-go
// SDK.
//
//	zmqtt pub   -t topic {-m message | -f file | -l | -s | -n} [-q 1] [-r]
//	zmqtt sub   -t filter [-t filter...] [-v] [-C count] [-W seconds] [-F format] [--json]
//	zmqtt req   -t topic -m payload [-W seconds]            (MQTT 5.0)
//	zmqtt serve -t filter [-- command args...]              (MQTT 5.0)
//	zmqtt bench [-pubs N] [-subs N] [-count N] [-size B] [-q QoS]
//	zmqtt demo
//	zmqtt fuzz  --url mqtt://host:port [-V 311|5] [--duration D] [--seed N] [--out DIR]
//	zmqtt conform --url mqtt://host:port [-V 311|5] [--json] [--only REGEX]
//
// Connection options of every command: -h host, -p port, -L/--url URL,
// --unix path, -i id, -I id-prefix, -u user, -P password, -k keep alive,
// -V mqttv5|mqttv311|5|311, -c, -x session expiry, -d, -D command property
// value, --will-topic, --will-payload, --will-qos, --will-retain, --cafile,
// --cert, --key, --insecure, --tls-use-os-certs, --quiet. "zmqtt <command>
// --help" lists them all.
//
// Exit status, as mosquitto_pub and mosquitto_sub:
//
//	0     success; also after SIGINT (Ctrl-C) or SIGTERM, with nothing printed
//	1     an error, printed as one line on standard error starting "zmqtt: ";
//	      a usage error; --help (the usage goes to standard output)
//	27    sub, req: the -W time passed ("timed out" on standard error)
//	N     the broker refused the connection: N is the CONNACK return code
//	      (3.1.1: 1 to 5) or reason code (5.0: 128 and above)
//
// Where zmqtt differs from mosquitto 2.0.11 on purpose: a publish the
// broker refuses (a PUBACK or PUBREC reason code of 0x80 or more) exits 1
// (mosquitto_pub warns and exits 0); -D with -V 311 is refused, -D alone
// selects MQTT 5.0 (as mosquitto); -x on MQTT 3.1.1 is refused (mosquitto
// ignores it); -k 0 turns keep alive off (mosquitto requires 5 or more); a
// SUBACK that refuses a filter ends sub with status 1; values of -D are
// checked strictly. The -F differences are listed in format.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

const usage = `usage: zmqtt <command> [options]

commands:
  pub    publish a message (-m), a file (-f), standard input (-s), each line of it (-l) or nothing (-n)
  sub    print the messages of one or more topic filters
  req    send a request and print the reply (MQTT 5.0)
  serve  answer requests on a filter, by echo or with a command after -- (MQTT 5.0)
  bench  measure publish/subscribe throughput and latency
  demo   start a private Mosquitto and show the SDK at work
  fuzz   fuzz a broker with valid flows and mutated packets; --replay a finding
  conform  check a broker against the MQTT specification, one line per check

pub and sub take the options of mosquitto_pub and mosquitto_sub.
run "zmqtt <command> --help" for the options of a command.
`

// errTimedOut is the error of sub and req when their -W time passes:
// exit status 27, as mosquitto_sub and mosquitto_rr.
var errTimedOut = errors.New("timed out")

// statusTimedOut is the exit status of a -W timeout.
const statusTimedOut = 27

// env is what a command reads and writes.
type env struct {
	stdin  io.Reader
	stdout io.Writer // for the usage of --help
	out    *output   // standard output for messages and -d lines
	stderr io.Writer
	// tty: standard output and standard error are terminals, so a person
	// watches (sub then prints a progress line).
	tty bool
	// quiet is --quiet: errors are not printed.
	quiet bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the exit status. A cancelled ctx
// (SIGINT, SIGTERM) stops the command quietly with status 0.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, out: newOutput(stdout), stderr: stderr,
		tty: isTerminal(stdout) && isTerminal(stderr)}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	var err error
	switch args[0] {
	case "pub":
		err = cmdPub(ctx, args[1:], e)
	case "sub":
		err = cmdSub(ctx, args[1:], e)
	case "req":
		err = cmdReq(ctx, args[1:], e)
	case "serve":
		err = cmdServe(ctx, args[1:], e)
	case "bench":
		err = cmdBench(ctx, args[1:], e)
	case "demo":
		err = cmdDemo(ctx, args[1:], e)
	case "fuzz":
		err = cmdFuzz(ctx, args[1:], e.stdout, e.stderr)
	case "conform":
		err = cmdConform(ctx, args[1:], e.stdout, e.stderr)
	case "help", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usagef("unknown command %q (pub, sub, req, serve, bench or demo)", args[0])
	}
	return e.status(err)
}

// status reports err and returns the exit status for it.
func (e *env) status(err error) int {
	switch {
	case err == nil, errors.Is(err, errInterrupted):
		return 0
	case errors.Is(err, errHelp):
		return 1
	}
	var ue *usageError
	if errors.As(err, &ue) {
		// Printed even with --quiet, as mosquitto prints its usage errors.
		fmt.Fprintf(e.stderr, "zmqtt: %s\n", ue.msg)
		return 1
	}
	if !e.quiet {
		fmt.Fprintf(e.stderr, "zmqtt: %s\n", describe(err))
	}
	if errors.Is(err, errTimedOut) {
		return statusTimedOut
	}
	var re *client.ReasonError
	if errors.As(err, &re) && re.Packet == codec.TypeConnack {
		switch {
		case re.ReturnCode != 0:
			return int(re.ReturnCode)
		case re.Code != 0:
			return int(re.Code)
		}
	}
	return 1
}

// describe turns an error into one line a user can act on.
func describe(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "zmqtt: ")
	msg = strings.ReplaceAll(msg, "\n", " ")
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout: " + msg
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: is the broker running? (" + msg + ")"
	}
	return msg
}

// isTerminal reports whether w is a terminal (a character device): a
// person is watching, not a pipe or a file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
