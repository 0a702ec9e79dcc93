package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

type stepKind int

const (
	kindSend stepKind = iota + 1
	kindSendBytes
	kindExpect
	kindExpectBytes
	kindExpectClosed
	kindExpectNothing
)

// Step is one step of a script. Build steps with Send, SendBytes, Expect,
// ExpectBytes, ExpectClosed and ExpectNothing; Cites and Note return a
// copy with the statements it checks or a description added.
type Step struct {
	kind  stepKind
	pkt   codec.Packet
	raw   []byte
	opts  []Option
	d     time.Duration
	cites []string
	note  string
}

// Send writes pkt, encoded for the script's version. A packet the codec
// refuses to encode fails the step (use SendBytes for malformed input).
func Send(pkt codec.Packet) Step { return Step{kind: kindSend, pkt: pkt} }

// SendBytes writes b as it is: a malformed packet, several packets, or part
// of one.
func SendBytes(b []byte) Step { return Step{kind: kindSendBytes, raw: b} }

// Expect reads the next packet and compares it with want field by field.
// Every exported field counts, nested ones included, except
// Properties.Present (which says how the packet was encoded, not what it
// means); a nil and an empty slice are equal. opts relax or extend the
// comparison. The step fails when the connection ends, when the bytes do
// not decode, when the packet is of another type or when a field differs.
func Expect(want codec.Packet, opts ...Option) Step {
	return Step{kind: kindExpect, pkt: want, opts: opts}
}

// ExpectBytes reads the next packet and compares its bytes with want,
// byte for byte. Bytes that do not decode are compared too.
func ExpectBytes(want []byte) Step { return Step{kind: kindExpectBytes, raw: want} }

// ExpectClosed waits, until the context ends, for the other side to end
// the connection. A DISCONNECT before the end is allowed (MQTT 5.0 lets
// either side send one before closing); opts apply to it when it comes.
// Any other packet fails the step.
func ExpectClosed(opts ...Option) Step { return Step{kind: kindExpectClosed, opts: opts} }

// ExpectNothing waits d (at most until the context ends) and fails if a
// packet arrives or the connection ends meanwhile.
func ExpectNothing(d time.Duration) Step { return Step{kind: kindExpectNothing, d: d} }

// Cites returns a copy of s that checks the given normative statements,
// given as ids such as "MQTT-3.3.1-4".
func (s Step) Cites(ids ...string) Step {
	s.cites = append(slices.Clip(s.cites), ids...)
	return s
}

// Note returns a copy of s with a description, shown in its Failure.
func (s Step) Note(text string) Step {
	s.note = text
	return s
}

// String describes the step: "expect PUBACK{id=1}", "send CONNECT{...}".
func (s Step) String() string {
	var d string
	switch s.kind {
	case kindSend:
		d = "send " + s.pkt.String()
	case kindSendBytes:
		d = fmt.Sprintf("send bytes % x", clip(s.raw, 32))
	case kindExpect:
		d = "expect " + s.pkt.String()
	case kindExpectBytes:
		d = fmt.Sprintf("expect bytes % x", clip(s.raw, 32))
	case kindExpectClosed:
		d = "expect the connection closed"
	case kindExpectNothing:
		d = "expect nothing for " + s.d.String()
	default:
		d = "invalid step"
	}
	if s.note != "" {
		d += " (" + s.note + ")"
	}
	return d
}

// Failure is the error of a step that failed: which step, which
// statements, what was expected, what arrived, and the packets of the
// connection up to then.
type Failure struct {
	Step       int      // 1-based number of the step on its Peer, counted over every script run on it
	Action     string   // the step, as Step.String prints it
	Statements []string // the ids the step cites; may be empty
	Want       string   // what the step expected
	Got        string   // what happened instead
	Err        error    // the cause, when there is one: a *codec.Error, an I/O error, ctx.Err(), ErrClosed
	Transcript []Record // the packets sent and received on the connection, oldest first
}

// Error returns one line: statements, step, want and got.
func (f *Failure) Error() string {
	var b strings.Builder
	if len(f.Statements) > 0 {
		b.WriteString("[" + strings.Join(f.Statements, "] [") + "] ")
	}
	fmt.Fprintf(&b, "step %d, %s: want %s, got %s", f.Step, f.Action, f.Want, f.Got)
	return b.String()
}

// Unwrap returns the cause.
func (f *Failure) Unwrap() error { return f.Err }

// Evidence returns the transcript, one packet a line, "->" for sent and
// "<-" for received.
func (f *Failure) Evidence() string {
	var b strings.Builder
	for _, r := range f.Transcript {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Run plays steps on conn as one side of a connection speaking version v,
// with no direction rules on what the other side sends (codec.RoleAny),
// and closes conn when it returns. It returns nil when every step passed,
// or the *Failure of the first step that failed; ctx bounds every step.
func Run(ctx context.Context, conn net.Conn, v codec.Version, steps ...Step) error {
	p := NewPeer(conn, v, codec.RoleAny)
	defer p.Close()
	return p.Run(ctx, steps...)
}

// Run plays steps on the Peer's connection, in order, and returns the
// *Failure of the first that fails, or nil. The connection stays open.
func (p *Peer) Run(ctx context.Context, steps ...Step) error {
	for _, s := range steps {
		p.mu.Lock()
		p.steps++
		n := p.steps
		p.mu.Unlock()
		if f := p.step(ctx, s); f != nil {
			f.Step, f.Action, f.Statements = n, s.String(), s.cites
			f.Transcript = p.Transcript()
			return f
		}
	}
	return nil
}

func (p *Peer) step(ctx context.Context, s Step) *Failure {
	switch s.kind {
	case kindSend, kindSendBytes:
		var err error
		if s.kind == kindSend {
			err = p.Send(ctx, s.pkt)
		} else {
			err = p.SendBytes(ctx, s.raw)
		}
		if err != nil {
			return &Failure{Want: "the packet written", Got: "error: " + err.Error(), Err: err}
		}
		return nil
	case kindExpect, kindExpectBytes:
		ev, _, err := p.next(ctx, time.Time{})
		want := "a packet"
		if s.kind == kindExpect {
			want = s.pkt.String()
		} else {
			want = fmt.Sprintf("% x", s.raw)
		}
		if err != nil {
			return &Failure{Want: want, Got: "nothing before the deadline (" + err.Error() + ")", Err: err}
		}
		if ev.end {
			return &Failure{Want: want, Got: "the connection closed (" + ev.err.Error() + ")", Err: ev.err}
		}
		if s.kind == kindExpectBytes {
			if !bytes.Equal(ev.raw, s.raw) {
				return &Failure{Want: want, Got: fmt.Sprintf("% x", ev.raw)}
			}
			return nil
		}
		if ev.err != nil {
			return &Failure{Want: want, Got: fmt.Sprintf("bytes that do not decode: %v (% x)", ev.err, clip(ev.raw, 32)), Err: ev.err}
		}
		if diffs := Diff(s.pkt, ev.pkt, s.opts...); len(diffs) > 0 {
			return &Failure{Want: want, Got: ev.pkt.String() + " (" + strings.Join(diffs, "; ") + ")"}
		}
		return nil
	case kindExpectClosed:
		for {
			ev, _, err := p.next(ctx, time.Time{})
			if err != nil {
				return &Failure{Want: "the connection closed", Got: "still open at the deadline (" + err.Error() + ")", Err: err}
			}
			if ev.end {
				return nil
			}
			if ev.err != nil {
				return &Failure{Want: "the connection closed", Got: fmt.Sprintf("bytes that do not decode: %v", ev.err), Err: ev.err}
			}
			d, ok := ev.pkt.(*codec.Disconnect)
			if !ok {
				return &Failure{Want: "the connection closed", Got: ev.pkt.String()}
			}
			if diffs := Diff(d, d, s.opts...); len(diffs) > 0 {
				return &Failure{Want: "the connection closed", Got: d.String() + " (" + strings.Join(diffs, "; ") + ")"}
			}
		}
	case kindExpectNothing:
		ev, ok, err := p.next(ctx, time.Now().Add(s.d))
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return &Failure{Want: "nothing", Got: "error: " + err.Error(), Err: err}
		}
		if !ok {
			return nil // the wait ended (at d or at the context's deadline) in silence
		}
		if ev.end {
			return &Failure{Want: "nothing for " + s.d.String(), Got: "the connection closed (" + ev.err.Error() + ")", Err: ev.err}
		}
		if ev.err != nil {
			return &Failure{Want: "nothing for " + s.d.String(), Got: fmt.Sprintf("bytes that do not decode: %v", ev.err), Err: ev.err}
		}
		return &Failure{Want: "nothing for " + s.d.String(), Got: ev.pkt.String()}
	}
	return &Failure{Want: "a valid step", Got: "a zero Step"}
}

// Option changes how Expect compares a packet.
type Option struct {
	ignore []string
	check  func(got codec.Packet) string
}

// IgnoreFields leaves fields out of the comparison, named by their path
// from the packet: "PacketID", "Props.ReasonString", "Props" (every
// property), "Subscriptions" (and all below).
func IgnoreFields(paths ...string) Option { return Option{ignore: paths} }

// IgnoreProps leaves every property out of the comparison.
func IgnoreProps() Option { return IgnoreFields("Props") }

// Satisfy adds a check of the received packet: fn returns "" when it is
// fine, or what is wrong.
func Satisfy(fn func(got codec.Packet) string) Option { return Option{check: fn} }

// ReasonIn accepts any of codes as the packet's ReasonCode field (for
// CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT, AUTH) instead of
// the one in the expected packet.
func ReasonIn(codes ...codec.ReasonCode) Option {
	return Option{ignore: []string{"ReasonCode"}, check: func(got codec.Packet) string {
		f := reflect.ValueOf(got).Elem().FieldByName("ReasonCode")
		if !f.IsValid() {
			return "the packet has no reason code"
		}
		rc := codec.ReasonCode(f.Uint())
		if slices.Contains(codes, rc) {
			return ""
		}
		return fmt.Sprintf("reason code 0x%02x, want one of %s", byte(rc), hexCodes(codes))
	}}
}

func hexCodes(codes []codec.ReasonCode) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = fmt.Sprintf("0x%02x", byte(c))
	}
	return "{" + strings.Join(s, ", ") + "}"
}

// Diff compares got with want as Expect does and returns one line per
// difference ("Props.MessageExpiry: want 10, got 9"), or nil when they
// match.
func Diff(want, got codec.Packet, opts ...Option) []string {
	if want == nil || got == nil {
		if want == got {
			return nil
		}
		return []string{fmt.Sprintf("want %v, got %v", want, got)}
	}
	if want.Type() != got.Type() {
		return []string{fmt.Sprintf("packet type: want %v, got %v", want.Type(), got.Type())}
	}
	var ignore []string
	for _, o := range opts {
		ignore = append(ignore, o.ignore...)
	}
	var out []string
	diffValue(&out, ignore, "", reflect.ValueOf(want).Elem(), reflect.ValueOf(got).Elem())
	for _, o := range opts {
		if o.check != nil {
			if msg := o.check(got); msg != "" {
				out = append(out, msg)
			}
		}
	}
	return out
}

func ignored(ignore []string, path string) bool {
	for _, p := range ignore {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

var (
	propsType   = reflect.TypeFor[codec.Properties]()
	propSetType = reflect.TypeFor[codec.PropSet]()
)

func diffValue(out *[]string, ignore []string, path string, w, g reflect.Value) {
	if path != "" && ignored(ignore, path) {
		return
	}
	switch w.Kind() {
	case reflect.Struct:
		for i := range w.NumField() {
			f := w.Type().Field(i)
			if !f.IsExported() || (w.Type() == propsType && f.Type == propSetType) {
				continue
			}
			diffValue(out, ignore, join(path, f.Name), w.Field(i), g.Field(i))
		}
	case reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, nilness(w), nilness(g)))
			}
			return
		}
		diffValue(out, ignore, path, w.Elem(), g.Elem())
	case reflect.Slice:
		if w.Type().Elem() == reflect.TypeFor[byte]() {
			if !bytes.Equal(w.Bytes(), g.Bytes()) {
				*out = append(*out, fmt.Sprintf("%s: want %q, got %q", path, clip(w.Bytes(), 64), clip(g.Bytes(), 64)))
			}
			return
		}
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: want %d elements %v, got %d %v", path, w.Len(), w.Interface(), g.Len(), g.Interface()))
			return
		}
		for i := range w.Len() {
			diffValue(out, ignore, path+"["+strconv.Itoa(i)+"]", w.Index(i), g.Index(i))
		}
	default:
		if !w.Equal(g) {
			*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w.Interface(), g.Interface()))
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func nilness(v reflect.Value) string {
	if v.IsNil() {
		return "none"
	}
	return fmt.Sprint(v.Interface())
}
