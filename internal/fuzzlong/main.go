// Command fuzzlong runs a fuzzing campaign: every fuzz target of a package
// at once, each for the same time, and prints per target the executions,
// the inputs that reached new coverage and the crashers. `make fuzz-long`
// runs it over ./fuzz.
//
// The Go fuzzer runs one target per process, so the targets run as
// parallel `go test -fuzz` processes (each with -parallel workers; 1 by
// default, so that N targets share the machine evenly). A target that finds
// a crasher stops there, as `go test -fuzz` does: the failing input is
// written to the package's testdata/fuzz/<Target>/ and this command lists
// it; committed there, the plain test run replays it from then on.
//
// Usage:
//
//	go run ./internal/fuzzlong [-time 10m] [-parallel 1] [-run REGEX] [-out DIR] [./fuzz]
//
// Exit status is 1 when a target found a crasher or failed to run. Go 1.26's
// fuzz coordinator can end a run that reached its time with "context
// deadline exceeded" and no input (golang/go#75804, fixed in Go 1.27):
// that is noted, not counted as a failure; `make fuzz-long` runs the
// targets on the newer supported Go release, which has the fix.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

func main() {
	fuzzTime := flag.Duration("time", 10*time.Minute, "how long each target runs (they run at the same time)")
	parallel := flag.Int("parallel", 1, "fuzzing workers per target")
	run := flag.String("run", "", "run only the targets whose name matches this regular expression")
	out := flag.String("out", "", "directory for each target's full log (default: none)")
	flag.Parse()
	pkg := "./fuzz"
	if flag.NArg() > 0 {
		pkg = flag.Arg(0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(campaign(ctx, os.Stdout, pkg, *run, *fuzzTime, *parallel, *out))
}

// result is what one target's run came to.
type result struct {
	target   string
	execs    int64
	newCov   int64 // inputs that reached new coverage in this run
	total    int64 // size of the corpus afterwards (seeds, cache and new)
	elapsed  time.Duration
	crashers []string // failing inputs written under testdata/fuzz
	err      error    // the run failed for another reason than a crasher
	// deadlineRace: the run ended at its time with "context deadline
	// exceeded" and wrote no input, the Go 1.26 fuzz coordinator's race at
	// the -fuzztime boundary (golang/go#75804, fixed in Go 1.27), not a
	// finding.
	deadlineRace bool
}

func campaign(ctx context.Context, w io.Writer, pkg, only string, d time.Duration, parallel int, outDir string) int {
	targets, err := listTargets(ctx, pkg, only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fuzzlong:", err)
		return 1
	}
	if len(targets) == 0 {
		fmt.Fprintln(os.Stderr, "fuzzlong: no fuzz target matches")
		return 1
	}
	// Build the test binary once, so that the first minutes of every
	// target are not spent compiling the same package 14 times.
	build := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-count=1", pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "fuzzlong: building", pkg, ":", err)
		return 1
	}
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "fuzzlong:", err)
			return 1
		}
	}
	fmt.Fprintf(w, "fuzzlong: %d targets of %s, %s each, %d worker(s) each, all at once\n", len(targets), pkg, d, parallel)
	results := make([]result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { results[i] = runTarget(ctx, pkg, t, d, parallel, outDir) })
	}
	wg.Wait()

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\telapsed\texecutions\texec/s\tnew coverage\tcorpus\tcrashers\t")
	status := 0
	var sumExec, sumNew int64
	for _, r := range results {
		rate := 0.0
		if r.elapsed > 0 {
			rate = float64(r.execs) / r.elapsed.Seconds()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%d\t%d\t%d\t\n", r.target, r.elapsed.Round(time.Second), r.execs, rate, r.newCov, r.total, len(r.crashers))
		sumExec += r.execs
		sumNew += r.newCov
		if len(r.crashers) > 0 || r.err != nil {
			status = 1
		}
	}
	fmt.Fprintf(tw, "all\t\t%d\t\t%d\t\t\t\n", sumExec, sumNew)
	tw.Flush()
	for _, r := range results {
		for _, c := range r.crashers {
			fmt.Fprintf(w, "crasher: %s %s\n", r.target, c)
		}
		if r.err != nil {
			fmt.Fprintf(w, "error: %s: %v\n", r.target, r.err)
		}
		if r.deadlineRace {
			fmt.Fprintf(w, "note: %s ran its full time and then reported \"context deadline exceeded\" without an input: the fuzz coordinator's race at -fuzztime (golang/go#75804, fixed in Go 1.27), not a finding\n", r.target)
		}
	}
	return status
}

func listTargets(ctx context.Context, pkg, only string) ([]string, error) {
	var re *regexp.Regexp
	if only != "" {
		var err error
		if re, err = regexp.Compile(only); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-list", "^Fuzz", pkg)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the fuzz targets of %s: %w", pkg, err)
	}
	var ts []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Fuzz") && (re == nil || re.MatchString(l)) {
			ts = append(ts, strings.TrimSpace(l))
		}
	}
	return ts, nil
}

func runTarget(ctx context.Context, pkg, target string, d time.Duration, parallel int, outDir string) result {
	r := result{target: target}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+target+"$",
		"-fuzztime", d.String(), "-parallel", strconv.Itoa(parallel), pkg)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	runErr := cmd.Run()
	if outDir != "" {
		_ = os.WriteFile(filepath.Join(outDir, target+".log"), log.Bytes(), 0o644)
	}
	parseLog(&r, log.Bytes())
	if runErr != nil && len(r.crashers) == 0 && r.elapsed >= d &&
		bytes.Contains(log.Bytes(), []byte("\n    context deadline exceeded\n")) {
		r.deadlineRace = true
		runErr = nil
	}
	if runErr != nil && len(r.crashers) == 0 {
		tail := log.Bytes()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		r.err = fmt.Errorf("%v\n%s", runErr, tail)
	}
	return r
}

// The Go fuzzer reports progress as
//
//	fuzz: elapsed: 3m0s, execs: 123456 (685/sec), new interesting: 12 (total: 345)
//
// and a crasher as "Failing input written to testdata/fuzz/FuzzX/<hash>".
var (
	progressRE = regexp.MustCompile(`fuzz: elapsed: (\S+), execs: (\d+) \(\d+/sec\)(?:, new interesting: (\d+) \(total: (\d+)\))?`)
	crasherRE  = regexp.MustCompile(`Failing input written to (\S+)`)
)

func parseLog(r *result, log []byte) {
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if m := progressRE.FindStringSubmatch(l); m != nil {
			if e, err := time.ParseDuration(m[1]); err == nil {
				r.elapsed = e
			}
			r.execs, _ = strconv.ParseInt(m[2], 10, 64)
			if m[3] != "" {
				r.newCov, _ = strconv.ParseInt(m[3], 10, 64)
				r.total, _ = strconv.ParseInt(m[4], 10, 64)
			}
		}
		if m := crasherRE.FindStringSubmatch(l); m != nil {
			r.crashers = append(r.crashers, m[1])
		}
	}
}
