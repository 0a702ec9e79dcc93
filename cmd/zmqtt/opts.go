package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The command line is parsed the way mosquitto_pub and mosquitto_sub parse
// theirs, so that their command lines work unchanged: options are taken
// left to right, each with a fixed number of values (-D takes three, or four
// for a user-property), a value may begin with "-" (-m -5 publishes "-5"),
// and an argument that is not an option is an error. Long options also work
// with one dash (-cafile, as Go's flag package accepted in earlier versions
// of zmqtt) and as --name=value.

// usageError is an error of the command line. The command prints it as a
// one-line error and exits with status 1, as mosquitto_pub and
// mosquitto_sub do.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// errHelp reports that --help was given: the usage is printed on standard
// output and the status is 1, as mosquitto_pub --help does.
var errHelp = errors.New("help requested")

// opt is one option of a command.
type opt struct {
	names []string // "-t", "--topic"
	arg   string   // the value's name in the usage; "" for a switch
	help  string
	// nargs, when set, says how many values the option takes given what
	// follows it (for -D); otherwise one when arg is set, none when not.
	nargs func(rest []string) (int, error)
	set   func(vals []string) error
	// unsupported, when set, refuses the option with this reason.
	unsupported string
}

// optSet holds the options of one command.
type optSet struct {
	cmd      string // "pub"
	synopsis string
	summary  string
	opts     []*opt
	byName   map[string]*opt
	// allowRest accepts "--" followed by arguments (serve's command).
	allowRest bool
	restHelp  string
	rest      []string
	seen      map[*opt]bool
}

func newOptSet(cmd, synopsis, summary string) *optSet {
	return &optSet{cmd: cmd, synopsis: synopsis, summary: summary, byName: map[string]*opt{}, seen: map[*opt]bool{}}
}

// add registers o under each of its names, and each long name also with a
// single dash.
func (s *optSet) add(o *opt) *opt {
	s.opts = append(s.opts, o)
	for _, n := range o.names {
		s.byName[n] = o
		if long, ok := strings.CutPrefix(n, "--"); ok {
			if _, taken := s.byName["-"+long]; !taken {
				s.byName["-"+long] = o
			}
		}
	}
	return o
}

func (s *optSet) str(p *string, arg, help string, names ...string) *opt {
	return s.add(&opt{names: names, arg: arg, help: help, set: func(v []string) error { *p = v[0]; return nil }})
}

func (s *optSet) list(p *[]string, arg, help string, names ...string) *opt {
	return s.add(&opt{names: names, arg: arg, help: help, set: func(v []string) error { *p = append(*p, v[0]); return nil }})
}

func (s *optSet) flag(p *bool, help string, names ...string) *opt {
	return s.add(&opt{names: names, help: help, set: func([]string) error { *p = true; return nil }})
}

// int registers an integer option with the range [lo, hi].
func (s *optSet) int(p *int, arg, help string, lo, hi int64, names ...string) *opt {
	return s.add(&opt{names: names, arg: arg, help: help, set: func(v []string) error {
		n, err := parseInt(v[0], lo, hi)
		if err != nil {
			return usagef("%s: %v", names[0], err)
		}
		*p = int(n)
		return nil
	}})
}

// refuse registers options zmqtt does not support, with the reason.
func (s *optSet) refuse(reason string, nargs int, names ...string) {
	arg := ""
	if nargs > 0 {
		arg = "x"
	}
	for _, n := range names {
		s.add(&opt{names: []string{n}, arg: arg, unsupported: reason})
	}
}

// parseInt parses a decimal integer in [lo, hi].
func parseInt(s string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", s, lo, hi)
	}
	return n, nil
}

// parse applies args. It returns errHelp for --help and a *usageError for
// anything it cannot take.
func (s *optSet) parse(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" && s.allowRest {
			s.rest = args[i+1:]
			return nil
		}
		if a == "--help" || a == "-help" {
			return errHelp
		}
		name, val, inline := a, "", false
		if strings.HasPrefix(a, "--") {
			if k := strings.IndexByte(a, '='); k > 0 {
				name, val, inline = a[:k], a[k+1:], true
			}
		}
		o := s.byName[name]
		if o == nil {
			if strings.HasPrefix(a, "-") && len(a) > 1 {
				return usagef("unknown option %s", a)
			}
			return usagef("unexpected argument %q: every value belongs to an option (quote a message that has spaces)", a)
		}
		if o.unsupported != "" {
			return usagef("%s is not supported: %s", name, o.unsupported)
		}
		n := 0
		switch {
		case o.nargs != nil:
			var err error
			if n, err = o.nargs(args[i+1:]); err != nil {
				return err
			}
		case o.arg != "":
			n = 1
		}
		var vals []string
		switch {
		case inline && n != 1:
			return usagef("%s does not take the form %s=value", name, name)
		case inline:
			vals = []string{val}
		case i+n >= len(args) && n > 0:
			if n == 1 {
				return usagef("%s needs a value (%s)", name, o.arg)
			}
			return usagef("%s needs %d values (%s)", name, n, o.arg)
		default:
			vals = args[i+1 : i+1+n]
			i += n
		}
		if err := o.set(vals); err != nil {
			return err
		}
		s.seen[o] = true
	}
	return nil
}

// given reports whether the option o was on the command line.
func (s *optSet) given(o *opt) bool { return s.seen[o] }

// usage writes the command's usage: what mosquitto_pub --help prints, in
// zmqtt's words.
func (s *optSet) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: zmqtt %s %s\n\n%s\n\noptions:\n", s.cmd, s.synopsis, s.summary)
	width := 0
	left := make([]string, len(s.opts))
	for i, o := range s.opts {
		if o.unsupported != "" {
			continue
		}
		l := strings.Join(o.names, ", ")
		if o.arg != "" {
			l += " " + o.arg
		}
		left[i] = l
		width = max(width, len(l))
	}
	width = min(width, 30)
	for i, o := range s.opts {
		if o.unsupported != "" {
			continue
		}
		if len(left[i]) > width {
			fmt.Fprintf(w, "  %s\n  %*s  %s\n", left[i], width, "", o.help)
			continue
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, left[i], o.help)
	}
	if s.restHelp != "" {
		fmt.Fprintf(w, "  %-*s  %s\n", width, "-- command [args...]", s.restHelp)
	}
	var refused []string
	for _, o := range s.opts {
		if o.unsupported != "" {
			refused = append(refused, o.names[0])
		}
	}
	if len(refused) > 0 {
		fmt.Fprintf(w, "\nnot supported (refused with the reason): %s\n", strings.Join(refused, " "))
	}
}

// parseSeconds parses a number of seconds, fractions allowed.
func parseSeconds(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a number of seconds", s)
	}
	return f, nil
}
