package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/transport"
)

// fuzzConfig holds the flags of `zmqtt fuzz`.
type fuzzConfig struct {
	url      string
	version  codec.Version
	duration time.Duration
	seed     uint64
	out      string
	timeout  time.Duration // how long an answer may take
	steps    int           // the most steps of one connection after CONNECT
	replay   string
	progress io.Writer // nil: no progress lines
	terminal bool      // progress rewrites one line
}

// The defaults of `zmqtt fuzz` and why:
//   - duration 1 minute: long enough to send tens of thousands of mutated
//     packets to a local broker, short enough for a first look;
//   - timeout 2 s: a local broker answers in microseconds; 2 s tolerates a
//     loaded machine without hiding a hang;
//   - 8 steps after CONNECT: enough to mix flows and mutants on one
//     connection, few enough that a reproducer stays readable;
//   - the seed from the clock, so that runs explore different inputs; it is
//     printed and kept in every reproducer;
//   - out ./zmqtt-fuzz, beside where the command runs.
const (
	defaultFuzzDuration = time.Minute
	defaultFuzzTimeout  = 2 * time.Second
	defaultFuzzSteps    = 8
	defaultFuzzOut      = "zmqtt-fuzz"
)

// cmdFuzz is `zmqtt fuzz`: it fuzzes a broker (or replays a finding) and
// returns a *findingsError when it found (or reproduced) something.
func cmdFuzz(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("zmqtt fuzz", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg fuzzConfig
	var ver string
	var seed int64
	fs.StringVar(&cfg.url, "url", "", "broker URL: mqtt://host:port (also mqtts://, ws://, wss://, unix://)")
	fs.StringVar(&ver, "V", "311", "protocol version: 311 or 5")
	fs.DurationVar(&cfg.duration, "duration", defaultFuzzDuration, "how long to fuzz")
	fs.Int64Var(&seed, "seed", -1, "seed of the generator (default: from the clock)")
	fs.StringVar(&cfg.out, "out", defaultFuzzOut, "directory for reproducers and summary.json")
	fs.DurationVar(&cfg.timeout, "timeout", defaultFuzzTimeout, "how long the broker may take to answer")
	fs.IntVar(&cfg.steps, "steps", defaultFuzzSteps, "the most steps of one connection after CONNECT")
	fs.StringVar(&cfg.replay, "replay", "", "play the reproducer FILE again instead of fuzzing")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: zmqtt fuzz --url mqtt://host:port [-V 311|5] [--duration D] [--seed N] [--out DIR]\n"+
			"       zmqtt fuzz --replay FILE [--url URL]\n\n"+
			"Sends valid flows and mutated packets to a broker and reports crashes, hangs and\n"+
			"protocol violations, each with a reproducer. Exit status 1 on a finding.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{msg: "fuzz: unexpected argument " + fs.Arg(0)}
	}
	switch ver {
	case "311", "3.1.1", "4":
		cfg.version = codec.V311
	case "5", "5.0":
		cfg.version = codec.V5
	default:
		return &usageError{msg: "fuzz: -V must be 311 or 5"}
	}
	if cfg.timeout <= 0 || cfg.steps <= 0 {
		return &usageError{msg: "fuzz: --timeout and --steps must be positive"}
	}
	if seed < 0 {
		seed = time.Now().UnixNano() & (1<<53 - 1)
	}
	cfg.seed = uint64(seed)
	if st, ok := stderr.(*os.File); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			cfg.terminal = true
		}
	}
	cfg.progress = stderr
	if cfg.replay != "" {
		return replayFinding(ctx, cfg, stdout)
	}
	if cfg.url == "" {
		return &usageError{msg: "fuzz: --url is required"}
	}
	if err := transport.CheckURL(cfg.url); err != nil {
		return &usageError{msg: "fuzz: " + err.Error()}
	}
	sum, err := runFuzz(ctx, cfg)
	if err != nil {
		return err
	}
	sum.print(stdout)
	if len(sum.Findings) > 0 {
		return &findingsError{n: len(sum.Findings), dir: cfg.out}
	}
	return nil
}

// findingsError ends `zmqtt fuzz` with status 1: the run found something.
type findingsError struct {
	n      int
	dir    string
	replay bool
}

func (e *findingsError) Error() string {
	if e.replay {
		return "fuzz: the finding reproduced"
	}
	return fmt.Sprintf("fuzz: %d finding(s); reproducers in %s", e.n, e.dir)
}

// Finding kinds.
const (
	kindCrash     = "crash"     // the broker refuses new connections (its process exited)
	kindHang      = "hang"      // no answer and no close within the timeout
	kindViolation = "violation" // bytes our strict decoder refuses, or a broken rule of the session
)

// step is one write of a connection, as a reproducer keeps it.
type step struct {
	Send  string `json:"send"`            // the bytes, in hex
	Note  string `json:"note"`            // what they are
	Await string `json:"await,omitempty"` // what the fuzzer waited for after them
	Class string `json:"class,omitempty"` // the mutation class, for a mutated packet
	Type  string `json:"type,omitempty"`  // the packet type that was mutated
}

// connRecord is the byte sequence of one connection.
type connRecord struct {
	Steps []step `json:"steps"`
}

// finding is one problem, with everything needed to play it again.
type finding struct {
	Kind        string       `json:"kind"`
	Detail      string       `json:"detail"`
	Received    string       `json:"received,omitempty"` // hex of the offending bytes of a violation
	URL         string       `json:"url"`
	Version     string       `json:"version"` // "311" or "5"
	Seed        uint64       `json:"seed"`
	Execution   int          `json:"execution"`
	Timeout     string       `json:"timeout"`
	Connections []connRecord `json:"connections"` // played in order, one at a time
	File        string       `json:"-"`
}

// summary is what a run did; it is printed and written as summary.json.
type summary struct {
	URL            string         `json:"url"`
	Version        string         `json:"version"`
	Seed           uint64         `json:"seed"`
	Duration       string         `json:"duration"`
	Executions     int            `json:"executions"`
	Connections    int            `json:"connections"`
	Packets        int            `json:"packets"`
	Mutated        int            `json:"mutated"`
	MutatedByType  map[string]int `json:"mutated_by_type"`
	MutatedByClass map[string]int `json:"mutated_by_class"`
	Closed         int            `json:"closed_by_broker"` // connections the broker ended after a mutant
	Findings       []findingRef   `json:"findings"`
	Stopped        string         `json:"stopped"` // why the run ended
}

type findingRef struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	File   string `json:"file"`
}

func verFlag(v codec.Version) string {
	if v == codec.V5 {
		return "5"
	}
	return "311"
}

func (s *summary) print(w io.Writer) {
	fmt.Fprintf(w, "zmqtt fuzz: %s, MQTT %s, seed %d, %s\n", s.URL, s.Version, s.Seed, s.Duration)
	fmt.Fprintf(w, "  executions  %d\n  connections %d\n  packets     %d (%d mutated, %d connections closed by the broker)\n",
		s.Executions, s.Connections, s.Packets, s.Mutated, s.Closed)
	keys := func(m map[string]int) []string {
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	var parts []string
	for _, k := range keys(s.MutatedByType) {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.MutatedByType[k]))
	}
	fmt.Fprintf(w, "  mutated by type:  %s\n", strings.Join(parts, ", "))
	parts = parts[:0]
	for _, k := range keys(s.MutatedByClass) {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.MutatedByClass[k]))
	}
	fmt.Fprintf(w, "  mutated by class: %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "  findings    %d\n", len(s.Findings))
	for _, f := range s.Findings {
		fmt.Fprintf(w, "    %-9s %s\n              %s\n", f.Kind, f.Detail, f.File)
	}
	fmt.Fprintf(w, "  stopped: %s\n", s.Stopped)
}

// execSeed derives the generator seed of execution i from the run's seed.
func execSeed(seed uint64, i int) uint64 {
	x := seed + uint64(i)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	return x
}

// keepConns is how many executions a crash reproducer keeps: the crash
// shows after the last one, but earlier ones may have prepared it.
const keepConns = 4

// runFuzz fuzzes the broker at cfg.url until cfg.duration passes, ctx ends
// or the broker stops accepting connections. It writes a reproducer per
// finding and summary.json into cfg.out. The error is for what stops the
// run from starting (the broker cannot be reached, out cannot be written).
func runFuzz(ctx context.Context, cfg fuzzConfig) (*summary, error) {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	sum := &summary{URL: cfg.url, Version: verFlag(cfg.version), Seed: cfg.seed,
		MutatedByType: map[string]int{}, MutatedByClass: map[string]int{}, Findings: []findingRef{}}
	// The broker must be up before we start: a refused first probe is a
	// setup problem, not a finding.
	if r := probe(ctx, cfg); r.err != nil {
		return nil, fmt.Errorf("fuzz: the broker at %s does not answer a CONNECT: %w", cfg.url, r.err)
	}
	sum.Connections++
	deadline := start.Add(cfg.duration)
	var recent []connRecord
	seenHang := map[string]bool{}
	lastProgress := time.Time{}
	report := func(f *finding) error {
		f.URL, f.Version, f.Seed, f.Timeout = cfg.url, verFlag(cfg.version), cfg.seed, cfg.timeout.String()
		name := fmt.Sprintf("%s-%d-%d.json", f.Kind, cfg.seed, f.Execution)
		f.File = filepath.Join(cfg.out, name)
		b, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.File, append(b, '\n'), 0o644); err != nil {
			return err
		}
		sum.Findings = append(sum.Findings, findingRef{f.Kind, f.Detail, f.File})
		return nil
	}
	stopped := "the duration passed"
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			stopped = "interrupted"
			break
		}
		if !time.Now().Before(deadline) {
			break
		}
		ex := newExecution(cfg, i)
		res := ex.run(ctx)
		sum.Executions++
		sum.Connections++
		sum.Packets += ex.packets
		for _, m := range ex.mutants {
			sum.Mutated++
			sum.MutatedByType[m.Type.String()]++
			sum.MutatedByClass[m.Class.String()]++
		}
		if res.closedByBroker {
			sum.Closed++
		}
		recent = append(recent, ex.rec)
		if len(recent) > keepConns {
			recent = recent[1:]
		}
		if res.kind != "" && ctx.Err() == nil {
			// One reproducer per distinct hang or violation message: a
			// broker that breaks a rule breaks it on every connection.
			key := res.kind + "\x00" + res.detail
			if !seenHang[key] {
				seenHang[key] = true
				if err := report(&finding{Kind: res.kind, Detail: res.detail, Received: res.received,
					Execution: i, Connections: []connRecord{ex.rec}}); err != nil {
					return nil, err
				}
			}
		}
		// Is the broker still there?
		pr := probe(ctx, cfg)
		sum.Connections++
		if ctx.Err() != nil {
			stopped = "interrupted"
			break
		}
		if pr.err != nil {
			kind, detail := kindCrash, "the broker refuses new connections after this sequence: "+pr.err.Error()
			if pr.hung {
				kind, detail = kindHang, "the broker accepts connections but does not answer CONNECT after this sequence"
			}
			if err := report(&finding{Kind: kind, Detail: detail, Execution: i,
				Connections: slices.Clone(recent)}); err != nil {
				return nil, err
			}
			if !pr.hung {
				stopped = "the broker went away"
				break
			}
		}
		if cfg.progress != nil && time.Since(lastProgress) >= time.Second {
			lastProgress = time.Now()
			line := fmt.Sprintf("executions %d  connections %d  mutated %d  findings %d",
				sum.Executions, sum.Connections, sum.Mutated, len(sum.Findings))
			if cfg.terminal {
				fmt.Fprintf(cfg.progress, "\r%s ", line)
			} else if sum.Executions == 1 || time.Since(start) >= 10*time.Second && sum.Executions%50 == 0 {
				fmt.Fprintln(cfg.progress, line)
			}
		}
	}
	if cfg.terminal && cfg.progress != nil {
		fmt.Fprintln(cfg.progress)
	}
	sum.Stopped = stopped
	sum.Duration = time.Since(start).Round(time.Millisecond).String()
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.out, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return sum, nil
}

// replayFinding plays a reproducer again: each connection's bytes in order,
// waiting after each write for what the fuzzer waited for, then the
// liveness probe. It prints what happened and returns a *findingsError when
// the finding reproduced (same kind).
func replayFinding(ctx context.Context, cfg fuzzConfig, stdout io.Writer) error {
	data, err := os.ReadFile(cfg.replay)
	if err != nil {
		return err
	}
	var f finding
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("fuzz: %s is not a reproducer: %w", cfg.replay, err)
	}
	if len(f.Connections) == 0 {
		return fmt.Errorf("fuzz: %s holds no connection", cfg.replay)
	}
	if cfg.url == "" {
		cfg.url = f.URL
	}
	cfg.version = codec.V311
	if f.Version == "5" {
		cfg.version = codec.V5
	}
	if d, err := time.ParseDuration(f.Timeout); err == nil && d > 0 {
		cfg.timeout = d
	}
	fmt.Fprintf(stdout, "replaying %s (%s, seed %d, execution %d) against %s\n", cfg.replay, f.Kind, f.Seed, f.Execution, cfg.url)
	got, detail := "", ""
	for i, rec := range f.Connections {
		steps := make([][]byte, len(rec.Steps))
		for j, s := range rec.Steps {
			if steps[j], err = hex.DecodeString(s.Send); err != nil {
				return fmt.Errorf("fuzz: %s: connection %d step %d: %w", cfg.replay, i, j, err)
			}
		}
		res := replayConn(ctx, cfg, rec, steps)
		fmt.Fprintf(stdout, "  connection %d: %d steps: %s\n", i+1, len(steps), res.describe())
		if res.kind != "" && got == "" {
			got, detail = res.kind, res.detail
		}
		if res.dialErr != nil {
			got, detail = kindCrash, "the broker refuses connections: "+res.dialErr.Error()
			break
		}
	}
	if got == "" {
		if pr := probe(ctx, cfg); pr.err != nil {
			got, detail = kindCrash, "the broker refuses new connections: "+pr.err.Error()
			if pr.hung {
				got, detail = kindHang, "the broker does not answer CONNECT"
			}
		}
	}
	if got == "" {
		fmt.Fprintln(stdout, "not reproduced: the broker behaved")
		return nil
	}
	fmt.Fprintf(stdout, "reproduced: %s: %s\n", got, detail)
	if got != f.Kind {
		fmt.Fprintf(stdout, "(the reproducer recorded a %s)\n", f.Kind)
	}
	return &findingsError{n: 1, replay: true}
}

// quoteNote shortens a note for a step.
func quoteNote(s string) string {
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
