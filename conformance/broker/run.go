package broker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

// Level says how binding a check's statements are.
type Level int

const (
	Must   Level = iota // a MUST of the specification: a failure makes `zmqtt conform` exit non-zero
	Should              // a SHOULD, or a behaviour users expect where the specification leaves room
)

func (l Level) String() string {
	if l == Should {
		return "SHOULD"
	}
	return "MUST"
}

// Check is one broker check of the catalogue.
type Check struct {
	Name          string          // unique, "area/what", e.g. "publish/qos1-puback"
	Statements311 []string        // the normative statement ids it checks on MQTT 3.1.1 ("§x.y.z" for a rule without an id)
	Statements5   []string        // the same on MQTT 5.0
	Versions      []codec.Version // the versions it applies to; empty means both
	Level         Level
	// Requires says, from the broker's announced capabilities, why the
	// check does not apply ("" when it does).
	Requires func(c Caps) string
	// Timeout bounds the check; 0 means DefaultTimeout.
	Timeout time.Duration
	// Run runs the check; it returns nil (PASS), a *conformance.Failure
	// or another error (FAIL), or a *NotApplicable (N/A).
	Run func(ctx context.Context, e *Env) error
}

// DefaultTimeout bounds a check that sets no Timeout: 10 s, far more than
// a local broker needs for a handful of round trips, so that a FAIL means
// the packet did not come, not that the broker was slow.
const DefaultTimeout = 10 * time.Second

// StatementsFor returns the statement ids the check cites on version v.
func (c *Check) StatementsFor(v codec.Version) []string {
	if v == codec.V5 {
		return c.Statements5
	}
	return c.Statements311
}

// AppliesTo reports whether the check runs on version v.
func (c *Check) AppliesTo(v codec.Version) bool {
	return len(c.Versions) == 0 || slices.Contains(c.Versions, v)
}

// Status is the outcome of a check.
type Status int

const (
	Pass Status = iota
	Fail
	NA // the broker does not offer the capability, as it announced
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	}
	return "N/A"
}

// Result is the outcome of one check.
type Result struct {
	Check    *Check
	Status   Status
	Err      error // the failure, or the *NotApplicable; nil on PASS
	Duration time.Duration
}

// Config says how to run the catalogue.
type Config struct {
	Dial     Dialer
	Version  codec.Version  // codec.V311 or codec.V5
	Only     *regexp.Regexp // when set, only checks whose name matches run
	Parallel int            // checks run at once; 0 means 8
	// Timeout overrides every check's own timeout when not zero.
	Timeout time.Duration
}

// Run probes the broker (one CONNECT, whose CONNACK gives the
// capabilities), then runs every check of cat that applies to the version
// and matches Only, at most Parallel at a time, and returns their results
// in catalogue order. When the probe gets no successful CONNACK, the check
// "connect/accepted" fails with the evidence and every other check is N/A.
// ctx bounds the whole run; a check also ends at its own timeout.
func Run(ctx context.Context, cfg Config, cat []Check) []Result {
	var sel []*Check
	for i := range cat {
		c := &cat[i]
		if c.AppliesTo(cfg.Version) && (cfg.Only == nil || cfg.Only.MatchString(c.Name)) {
			sel = append(sel, c)
		}
	}
	caps, probeErr := probe(ctx, cfg)
	results := make([]Result, len(sel))
	par := cfg.Parallel
	if par <= 0 {
		par = 8
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, c := range sel {
		if probeErr != nil {
			results[i] = Result{Check: c, Status: NA, Err: na("the broker accepts no MQTT %s connection: %v", versionName(cfg.Version), probeErr)}
			if c.Name == "connect/accepted" {
				results[i] = Result{Check: c, Status: Fail, Err: probeErr}
			}
			continue
		}
		if c.Requires != nil {
			if why := c.Requires(caps); why != "" {
				results[i] = Result{Check: c, Status: NA, Err: na("%s", why)}
				continue
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = runOne(ctx, cfg, caps, c)
		}()
	}
	wg.Wait()
	return results
}

func runOne(ctx context.Context, cfg Config, caps Caps, c *Check) (r Result) {
	r.Check = c
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if cfg.Timeout > 0 {
		timeout = cfg.Timeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	e := &Env{Version: cfg.Version, Caps: caps, dial: cfg.Dial, prefix: newPrefix()}
	start := time.Now()
	defer func() {
		e.closeAll()
		r.Duration = time.Since(start)
		if p := recover(); p != nil {
			r.Status, r.Err = Fail, fmt.Errorf("the check panicked: %v", p)
		}
	}()
	err := c.Run(cctx, e)
	switch {
	case err == nil:
		r.Status = Pass
	case isNA(err):
		r.Status, r.Err = NA, err
	default:
		r.Status, r.Err = Fail, err
	}
	return r
}

func versionName(v codec.Version) string {
	if v == codec.V5 {
		return "5.0"
	}
	return "3.1.1"
}

// probe connects once with a clean session and returns the capabilities
// the CONNACK announces.
func probe(ctx context.Context, cfg Config) (Caps, error) {
	pctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	e := &Env{Version: cfg.Version, dial: cfg.Dial, prefix: newPrefix()}
	defer e.closeAll()
	p, ack, err := e.Connect(pctx, &codec.Connect{CleanStart: true, KeepAlive: 60})
	if err != nil {
		return Caps{}, err
	}
	if ack.ReasonCode != 0 {
		return Caps{}, failf(p, "", "CONNACK 0", ack.String())
	}
	p.Run(pctx, conformance.Send(&codec.Disconnect{}))
	return capsFrom(ack), nil
}

// Failed reports whether a MUST check failed.
func Failed(rs []Result) bool {
	return slices.ContainsFunc(rs, func(r Result) bool { return r.Status == Fail && r.Check.Level == Must })
}

// Evidence returns the packets of a failure's transcript, one a line, or
// "" when err carries none.
func Evidence(err error) string {
	var f *conformance.Failure
	if errors.As(err, &f) {
		return f.Evidence()
	}
	return ""
}
