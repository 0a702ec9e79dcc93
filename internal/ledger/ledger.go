// Package ledger builds CONFORMANCE.md, the ledger of the normative
// statements of MQTT 3.1.1 and 5.0: for each statement, whom it binds, the
// tests and `zmqtt conform` checks that cite it, the code that implements
// it, or a written reason why it cannot be tested from the client's side.
//
// Its inputs are the statement list (testdata/spec/mqtt-statements.tsv), the
// reasons (testdata/spec/untestable.tsv) and the citations in the
// repository's Go files: every MQTT-<section>-<n> is a statement id.
// Its test fails when a citation names no statement, when a statement that
// binds the client has neither a test nor a reason, when a reason is kept
// for a statement a test now cites, or when CONFORMANCE.md is not what the
// generator writes (`make ledger`).
//
// Ids are per version, and the same id can mean different things in 3.1.1
// and 5.0. A citation followed by a version in parentheses, as in
// "[MQTT-<section>-<n>] (3.1.1)", counts for that version only; one without
// counts for every version that has the id.
package ledger

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Paths of the inputs and the output, relative to the repository root.
const (
	StatementsFile = "testdata/spec/mqtt-statements.tsv"
	ReasonsFile    = "testdata/spec/untestable.tsv"
	OutputFile     = "CONFORMANCE.md"
)

// Entry is one statement with what covers it.
type Entry struct {
	Statement
	Tests  []Citation // Kind Test, one per test function, sorted by file and line
	Checks []Citation // Kind Check, one per check
	Code   []Citation // Kind Code, one per file and line
	Reason *Reason    // nil when the reasons file has none
}

// Covered reports whether the statement is checked: for one that binds the
// client, by a test of ours; for one that binds only the server, by a test
// or by a conform check (which checks a broker).
func (e Entry) Covered() bool {
	if e.BindsClient() {
		return len(e.Tests) > 0
	}
	return len(e.Tests)+len(e.Checks) > 0
}

// Status is "covered", "reason" or "uncovered".
func (e Entry) Status() string {
	switch {
	case e.Covered():
		return "covered"
	case e.Reason != nil:
		return "reason"
	}
	return "uncovered"
}

// Ledger is the statement list joined with the citations and reasons.
type Ledger struct {
	Entries []Entry    // in the order of the statement list
	Unknown []Citation // citations of ids the list does not hold (for their version)
}

// Build joins the statements with the citations and the reasons. A
// citation without a version counts for every version that has its id.
// Several citations of one statement by the same test function count once
// (the first line), and so do those of one check or one line of code.
func Build(stmts []Statement, reasons []Reason, cites []Citation) *Ledger {
	l := &Ledger{Entries: make([]Entry, len(stmts))}
	index := map[key]int{}
	versionsOf := map[string][]string{}
	for i, s := range stmts {
		l.Entries[i].Statement = s
		index[key{s.Version, s.ID}] = i
		versionsOf[s.ID] = append(versionsOf[s.ID], s.Version)
	}
	for _, r := range reasons {
		if i, ok := index[key{r.Version, r.ID}]; ok {
			r := r
			l.Entries[i].Reason = &r
		}
	}
	cites = slices.Clone(cites)
	sortCitations(cites)
	for _, c := range cites {
		vs := versionsOf[c.ID]
		if c.Version != "" {
			vs = nil
			if _, ok := index[key{c.Version, c.ID}]; ok {
				vs = []string{c.Version}
			}
		}
		if len(vs) == 0 {
			l.Unknown = append(l.Unknown, c)
			continue
		}
		for _, v := range vs {
			e := &l.Entries[index[key{v, c.ID}]]
			switch c.Kind {
			case Test:
				if !slices.ContainsFunc(e.Tests, func(o Citation) bool { return o.Func == c.Func && o.File == c.File }) {
					e.Tests = append(e.Tests, c)
				}
			case Check:
				if !slices.ContainsFunc(e.Checks, func(o Citation) bool { return o.Func == c.Func && o.File == c.File }) {
					e.Checks = append(e.Checks, c)
				}
			default:
				if !slices.ContainsFunc(e.Code, func(o Citation) bool { return o.File == c.File && o.Line == c.Line }) {
					e.Code = append(e.Code, c)
				}
			}
		}
	}
	return l
}

// Problems returns what makes the ledger fail, one message per problem,
// each naming the file and line to fix: citations of ids that are not
// statements (of the version given), statements that bind the client with
// neither a test nor a reason, and reasons kept for statements a test or
// check now covers.
func (l *Ledger) Problems() []string {
	var out []string
	for _, c := range l.Unknown {
		if c.Version != "" {
			out = append(out, fmt.Sprintf("%s: %s (%s) is not a normative statement of MQTT %s (see %s)", c.Pos(), c.ID, c.Version, c.Version, StatementsFile))
		} else {
			out = append(out, fmt.Sprintf("%s: %s is not a normative statement of MQTT 3.1.1 or 5.0 (see %s)", c.Pos(), c.ID, StatementsFile))
		}
	}
	for _, e := range l.Entries {
		switch {
		case e.Covered() && e.Reason != nil:
			by := e.Tests
			if len(by) == 0 {
				by = e.Checks
			}
			out = append(out, fmt.Sprintf("%s:%d: stale reason: %s %s is cited by %s (%s); delete the reason", ReasonsFile, e.Reason.Line, e.Version, e.ID, by[0].Func, by[0].Pos()))
		case e.BindsClient() && !e.Covered() && e.Reason == nil:
			out = append(out, fmt.Sprintf("%s %s (%s, %s: %s) binds the client but no test cites it: add a test citing it, or a reason to %s", e.Version, e.ID, e.Section, e.Binds, e.Topic, ReasonsFile))
		}
	}
	return out
}

// Count is one row of the summary: statements of a version that bind one
// party, by status.
type Count struct {
	Version, Binds                      string
	Statements, Covered, Reason, Absent int
}

// Summary counts the statements by version, binds and status, in the order
// of Versions and client, both, sender/receiver, server.
func (l *Ledger) Summary() []Count {
	m := map[key]*Count{}
	for _, e := range l.Entries {
		k := key{e.Version, e.Binds}
		c := m[k]
		if c == nil {
			c = &Count{Version: e.Version, Binds: e.Binds}
			m[k] = c
		}
		c.Statements++
		switch e.Status() {
		case "covered":
			c.Covered++
		case "reason":
			c.Reason++
		default:
			c.Absent++
		}
	}
	var out []Count
	for _, v := range Versions {
		for _, b := range bindsOrder {
			if c := m[key{v, b}]; c != nil {
				out = append(out, *c)
			}
		}
	}
	return out
}

// Module is the module path of the repository the ledger is kept for.
const Module = "github.com/zmqtt/zmqtt-go"

// FindRoot returns the repository root: dir or its nearest parent holding
// a go.mod of Module. It returns an error when there is none.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && modulePath(b) == Module {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("ledger: no go.mod of %s in %s or its parents", Module, dir)
		}
	}
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// Generate reads the statement list, the reasons and the citations of the
// repository at root and returns the ledger and the text of CONFORMANCE.md.
// It returns an error when an input cannot be read or is malformed (see
// LoadStatements, LoadReasons and Scan).
func Generate(root string) (*Ledger, []byte, error) {
	stmts, err := loadFile(root, StatementsFile, func(f *os.File) ([]Statement, error) {
		return LoadStatements(f, StatementsFile)
	})
	if err != nil {
		return nil, nil, err
	}
	reasons, err := loadFile(root, ReasonsFile, func(f *os.File) ([]Reason, error) {
		return LoadReasons(f, ReasonsFile, stmts)
	})
	if err != nil {
		return nil, nil, err
	}
	cites, err := Scan(root)
	if err != nil {
		return nil, nil, err
	}
	l := Build(stmts, reasons, cites)
	return l, l.Markdown(), nil
}

func loadFile[T any](root, name string, load func(*os.File) (T, error)) (T, error) {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return load(f)
}
