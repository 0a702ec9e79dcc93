// Command zmqtt publishes, subscribes, sends requests, serves them and
// measures an MQTT broker, with the flags of mosquitto_pub and
// mosquitto_sub. It is built on the zmqtt-go SDK.
//
//	zmqtt pub   -t topic -m message [-q 1] [-r] [-l | -f file]
//	zmqtt sub   -t filter [-t filter...] [-v] [-C count] [-W seconds] [--json]
//	zmqtt req   -t topic -m payload [-W seconds]            (MQTT 5.0)
//	zmqtt serve -t filter [-- command args...]              (MQTT 5.0)
//	zmqtt bench [-pubs N] [-subs N] [-count N] [-size B] [-q QoS]
//	zmqtt demo
//
// Connection flags: -h host, -p port, --url URL, -i client id, -u user,
// -P password, -k keep alive, -V 311|5, --cafile, --cert, --key,
// --insecure. Exit status 0 on success; otherwise a one-line error on
// standard error and status 1 (2 for a usage error).
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
)

const usage = `usage: zmqtt <command> [flags]

commands:
  pub    publish a message (-m), each line of standard input (-l), or a file (-f)
  sub    print the messages of one or more topic filters
  req    send a request and print the reply (MQTT 5.0)
  serve  answer requests on a filter, by echo or with a command after -- (MQTT 5.0)
  bench  measure publish/subscribe throughput and latency
  demo   start a private Mosquitto and show the SDK at work

run "zmqtt <command> -help" for the flags of a command.
`

// usageError marks errors of the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "pub":
		err = cmdPub(ctx, args[1:], stdin, stderr)
	case "sub":
		err = cmdSub(ctx, args[1:], stdout, stderr)
	case "req":
		err = cmdReq(ctx, args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "conform":
		err = cmdConform(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = &usageError{msg: "unknown command " + args[0]}
	}
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "zmqtt: %s\n", ue.msg)
		return 2
	}
	fmt.Fprintf(stderr, "zmqtt: %s\n", describe(err))
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
