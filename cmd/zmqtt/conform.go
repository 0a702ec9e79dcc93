package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance/broker"
	"github.com/zmqtt/zmqtt-go/transport"
)

// conformResult is one line of `zmqtt conform --json`.
type conformResult struct {
	Check      string   `json:"check"`
	Status     string   `json:"status"` // PASS, FAIL or N/A
	Level      string   `json:"level"`  // MUST or SHOULD
	Statements []string `json:"statements"`
	Millis     int64    `json:"ms"`
	Reason     string   `json:"reason,omitempty"`   // the failure, or why N/A
	Evidence   []string `json:"evidence,omitempty"` // packets sent (->) and received (<-)
}

// cmdConform runs the broker catalogue of conformance/broker against a
// broker and prints one line per check. It returns an error (exit status
// 1) when a MUST check failed.
func cmdConform(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "mqtt://localhost:1883", "broker URL (mqtt://, mqtts://, ws://, wss://, unix://)")
	version := fs.String("V", "5", "protocol version: 311 or 5")
	asJSON := fs.Bool("json", false, "print one JSON object per check")
	only := fs.String("only", "", "run only the checks whose name matches this regular expression")
	parallel := fs.Int("parallel", 8, "checks run at once")
	timeout := fs.Duration("timeout", 0, "override every check's own timeout (0: each check's own, 10 s by default)")
	insecure := fs.Bool("insecure", false, "do not verify the broker's TLS certificate")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: zmqtt conform --url mqtt://host:port [-V 311|5] [--json] [--only REGEX]")
		fmt.Fprintln(stderr, "Runs the broker conformance checks and prints PASS, FAIL or N/A per check; exit status 1 when a MUST check fails.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return &usageError{msg: err.Error()}
	}
	cfg := broker.Config{Parallel: *parallel, Timeout: *timeout}
	switch *version {
	case "311", "3.1.1", "4":
		cfg.Version = codec.V311
	case "5", "5.0":
		cfg.Version = codec.V5
	default:
		return &usageError{msg: "-V must be 311 or 5, not " + *version}
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return &usageError{msg: "--only: " + err.Error()}
		}
		cfg.Only = re
	}
	if err := transport.CheckURL(*url); err != nil {
		return &usageError{msg: err.Error()}
	}
	opts := &transport.Options{}
	if *insecure {
		opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	u := *url
	cfg.Dial = func(ctx context.Context) (net.Conn, error) { return transport.Dial(ctx, u, opts) }

	start := time.Now()
	results := broker.Run(ctx, cfg, broker.Catalogue())
	counts := map[broker.Status]int{}
	enc := json.NewEncoder(stdout)
	for _, r := range results {
		counts[r.Status]++
		st := r.Check.StatementsFor(cfg.Version)
		if *asJSON {
			line := conformResult{Check: r.Check.Name, Status: r.Status.String(), Level: r.Check.Level.String(),
				Statements: st, Millis: r.Duration.Milliseconds()}
			if r.Err != nil {
				line.Reason = r.Err.Error()
				if ev := broker.Evidence(r.Err); ev != "" {
					line.Evidence = strings.Split(strings.TrimRight(ev, "\n"), "\n")
				}
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%-4s %-6s %-52s %s\n", r.Status, r.Check.Level, r.Check.Name, strings.Join(st, " "))
		if r.Err != nil {
			fmt.Fprintf(stdout, "       %s\n", r.Err)
			if r.Status == broker.Fail {
				for _, l := range strings.Split(strings.TrimRight(broker.Evidence(r.Err), "\n"), "\n") {
					if l != "" {
						fmt.Fprintf(stdout, "         %s\n", l)
					}
				}
			}
		}
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%d checks: %d PASS, %d FAIL, %d N/A in %.1fs\n", len(results),
			counts[broker.Pass], counts[broker.Fail], counts[broker.NA], time.Since(start).Seconds())
	}
	if broker.Failed(results) {
		n := 0
		for _, r := range results {
			if r.Status == broker.Fail && r.Check.Level == broker.Must {
				n++
			}
		}
		return fmt.Errorf("%d MUST check(s) failed", n)
	}
	return nil
}
