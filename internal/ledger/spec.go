package ledger

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The two versions of MQTT whose statements the ledger lists, in the order
// CONFORMANCE.md shows them.
const (
	V311 = "3.1.1"
	V5   = "5.0"
)

// Versions lists the versions of the statement list, oldest first.
var Versions = []string{V311, V5}

// The parties a statement binds, as the binds column of the statement list
// spells them.
const (
	BindsClient = "client"
	BindsServer = "server"
	BindsBoth   = "both"
	BindsRole   = "sender/receiver"
)

// bindsOrder is the order of the summary rows of each version.
var bindsOrder = []string{BindsClient, BindsBoth, BindsRole, BindsServer}

// Statement is one normative statement of Appendix B of a specification.
type Statement struct {
	Version string // V311 or V5
	ID      string // as Appendix B spells it, MQTT-<section>-<n>
	Section string // the section of the body that holds it, e.g. "3.3.1"
	Binds   string // BindsClient, BindsServer, BindsBoth or BindsRole
	Topic   string // a short label, not the specification's words
}

// BindsClient reports whether the statement binds the client: it binds the
// client alone, both sides, or whichever side plays a role (sender,
// receiver) that the client plays too.
func (s Statement) BindsClient() bool { return s.Binds != BindsServer }

// key identifies a statement: ids are per version.
type key struct{ version, id string }

// LoadStatements reads the statement list: tab-separated, a header row
// "version id section binds topic", lines starting with '#' ignored. name
// is used in error messages. It returns an error naming the line when a row
// does not have five columns, names an unknown version or binds value, or
// repeats a (version, id) pair.
func LoadStatements(r io.Reader, name string) ([]Statement, error) {
	var out []Statement
	seen := map[key]int{}
	err := readTSV(r, name, []string{"version", "id", "section", "binds", "topic"}, func(line int, f []string) error {
		s := Statement{Version: f[0], ID: f[1], Section: f[2], Binds: f[3], Topic: f[4]}
		if !slices.Contains(Versions, s.Version) {
			return fmt.Errorf("unknown version %q", s.Version)
		}
		if !slices.Contains(bindsOrder, s.Binds) {
			return fmt.Errorf("unknown binds value %q", s.Binds)
		}
		if !idRE.MatchString(s.ID) || idRE.FindString(s.ID) != s.ID {
			return fmt.Errorf("id %q is not of the form MQTT-x.y.z-n", s.ID)
		}
		k := key{s.Version, s.ID}
		if prev, ok := seen[k]; ok {
			return fmt.Errorf("%s %s repeats line %d", s.Version, s.ID, prev)
		}
		seen[k] = line
		out = append(out, s)
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%s: no statements", name)
	}
	return out, err
}

// Reason says why a statement cannot be tested from the client's side.
type Reason struct {
	Version string
	ID      string
	Text    string
	Line    int // line in the reasons file, for messages
}

// LoadReasons reads the reasons file: tab-separated, a header row
// "version id reason", lines starting with '#' ignored. It returns an error
// naming the line when a row does not have three columns, has an empty
// reason, names a statement that stmts does not hold for that version, or
// repeats one.
func LoadReasons(r io.Reader, name string, stmts []Statement) ([]Reason, error) {
	known := map[key]bool{}
	for _, s := range stmts {
		known[key{s.Version, s.ID}] = true
	}
	var out []Reason
	seen := map[key]int{}
	err := readTSV(r, name, []string{"version", "id", "reason"}, func(line int, f []string) error {
		k := key{f[0], f[1]}
		if !known[k] {
			return fmt.Errorf("%s %s is not a statement of the list", f[0], f[1])
		}
		if strings.TrimSpace(f[2]) == "" {
			return fmt.Errorf("%s %s: empty reason", f[0], f[1])
		}
		if prev, ok := seen[k]; ok {
			return fmt.Errorf("%s %s repeats line %d", f[0], f[1], prev)
		}
		seen[k] = line
		out = append(out, Reason{Version: f[0], ID: f[1], Text: strings.TrimSpace(f[2]), Line: line})
		return nil
	})
	return out, err
}

// readTSV calls row for each data row of a tab-separated file whose first
// non-comment line must equal header. Errors carry name:line.
func readTSV(r io.Reader, name string, header []string, row func(line int, fields []string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line, sawHeader := 0, false
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if !sawHeader {
			if !slices.Equal(f, header) {
				return fmt.Errorf("%s:%d: header is %q, want %q", name, line, f, header)
			}
			sawHeader = true
			continue
		}
		if len(f) != len(header) {
			return fmt.Errorf("%s:%d: %d columns, want %d (%s)", name, line, len(f), len(header), strings.Join(header, ", "))
		}
		if err := row(line, f); err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !sawHeader {
		return fmt.Errorf("%s: no header row", name)
	}
	return nil
}
