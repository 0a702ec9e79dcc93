package codec_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/zmqtt/zmqtt-go/codec"
)

// This file runs the packet vectors of Eclipse Mosquitto (see
// testdata/mosquitto/README.md) through the codec. Every test case of the
// corpus ends in exactly one verdict:
//
//   - accepted: mosquitto keeps the connection open, and every packet the
//     case sends decodes whole, re-encodes and decodes again to the same
//     fields;
//   - rejected: mosquitto closes the connection, and the codec refuses at
//     least one packet the case sends;
//   - listed: the case is in testdata/mosquitto/deviations.tsv, whose
//     entries are checked to be still needed and to match the case.

const mosqDir = "../testdata/mosquitto"

// The categories of deviations.tsv.
const (
	// devState: the rejection depends on connection state that a codec
	// cannot see; the session layer checks it.
	devState = "state"
	// devPolicy: mosquitto refuses what the specification allows or leaves
	// to the receiver.
	devPolicy = "policy"
	// devCodecBug: a codec bug, listed only until it is fixed. The reason
	// starts with "The codec refuses" or "The codec accepts", which must
	// stay true: when the verdict flips, the bug is fixed and the entry has
	// to go or change category.
	devCodecBug = "codec-bug"
	// devLenient: mosquitto keeps the connection open after a packet that
	// the specification forbids, and the codec refuses it as the
	// specification says.
	devLenient = "lenient"
	// devUnsupported: mosquitto accepts MQTT 3.1 (protocol level 3), which
	// the codec does not speak; the codec must refuse it as an unsupported
	// protocol version.
	devUnsupported = "unsupported"
)

type mosqMsg struct {
	Type    string `json:"type"`
	Payload string `json:"payload"`
}

type mosqJSONTest struct {
	Name             string    `json:"name"`
	Ver              *int      `json:"ver"`
	Connect          *bool     `json:"connect"`
	Connack          *bool     `json:"connack"`
	ExpectDisconnect *bool     `json:"expect_disconnect"`
	Msgs             []mosqMsg `json:"msgs"`
}

type mosqJSONGroup struct {
	Group            string         `json:"group"`
	Disable          bool           `json:"disable"`
	Ver              *int           `json:"ver"`
	Connect          *bool          `json:"connect"`
	Connack          *bool          `json:"connack"`
	ExpectDisconnect *bool          `json:"expect_disconnect"`
	GroupMsgs        []mosqMsg      `json:"group_msgs"`
	Tests            []mosqJSONTest `json:"tests"`
}

// mosqKey names one test case: the file under testdata/mosquitto, the group
// and the test name exactly as in the JSON (trailing spaces included). The
// corpus repeats a few names inside a group; the second one is "name #2".
type mosqKey struct{ File, Group, Name string }

func (k mosqKey) String() string { return k.File + " | " + k.Group + " | " + k.Name }

// mosqStep is one message of a case that carries bytes: "send" (bytes the
// system under test receives) or "recv" (its answer).
type mosqStep struct {
	send  bool
	bytes []byte
}

type mosqCase struct {
	key              mosqKey
	ver              int
	from             codec.Role // the role of the peer that sends the "send" bytes
	expectDisconnect bool
	connect          bool // the harness's CONNECT comes first (broker: it sends one; lib: it expects the library's)
	connack          bool // lib: the harness sends its CONNACK first
	steps            []mosqStep
}

func boolOr(p *bool, def bool) bool {
	if p != nil {
		return *p
	}
	return def
}

func intOr(p *int, def int) int {
	if p != nil {
		return *p
	}
	return def
}

// parseMosqHex decodes a payload written as hex digits with spaces anywhere
// (the corpus sometimes puts a space inside a byte, as in "081 F000170").
func parseMosqHex(s string) ([]byte, error) {
	return hex.DecodeString(strings.Join(strings.Fields(s), ""))
}

// loadMosqCases reads every JSON file of the corpus and applies the
// harness's defaults: version 4, connect and connack true, expect_disconnect
// true unless the group says otherwise; group_msgs come before the test's
// own messages.
func loadMosqCases(t *testing.T) []mosqCase {
	t.Helper()
	var cases []mosqCase
	seen := map[mosqKey]int{}
	for _, dir := range []string{"broker", "lib"} {
		files, err := filepath.Glob(filepath.Join(mosqDir, dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no JSON files in %s/%s", mosqDir, dir)
		}
		sort.Strings(files)
		from := codec.RoleClient
		if dir == "lib" {
			from = codec.RoleServer
		}
		for _, path := range files {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var groups []mosqJSONGroup
			if err := json.Unmarshal(data, &groups); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			file := dir + "/" + filepath.Base(path)
			for _, g := range groups {
				if g.Disable {
					t.Fatalf("%s: group %q is disabled; decide what to do with it", file, g.Group)
				}
				for _, jt := range g.Tests {
					key := mosqKey{file, g.Group, jt.Name}
					seen[key]++
					if n := seen[key]; n > 1 {
						key.Name = fmt.Sprintf("%s #%d", jt.Name, n)
					}
					c := mosqCase{
						key:              key,
						ver:              intOr(jt.Ver, intOr(g.Ver, 4)),
						from:             from,
						expectDisconnect: boolOr(jt.ExpectDisconnect, boolOr(g.ExpectDisconnect, true)),
						connect:          boolOr(jt.Connect, boolOr(g.Connect, true)),
						connack:          boolOr(jt.Connack, boolOr(g.Connack, true)),
					}
					for _, m := range slices.Concat(g.GroupMsgs, jt.Msgs) {
						switch m.Type {
						case "send", "recv":
							b, err := parseMosqHex(m.Payload)
							if err != nil {
								t.Fatalf("%v: payload %q: %v", key, m.Payload, err)
							}
							c.steps = append(c.steps, mosqStep{send: m.Type == "send", bytes: b})
						case "publish":
							// A helper client publishes through the broker: not
							// bytes that the system under test receives.
						default:
							t.Fatalf("%v: unknown message type %q", key, m.Type)
						}
					}
					cases = append(cases, c)
				}
			}
		}
	}
	return cases
}

// mosqResult is what the codec made of one case.
type mosqResult struct {
	rejected *codec.Error // the first packet the codec refused, nil if none
	rejStep  int          // the step of that packet
	pending  int          // bytes of an incomplete packet left at the end
	oneEach  bool         // every send step held exactly one whole packet
	problems []string     // broken invariants: each one fails the test
}

// decodeSafe calls d.Decode and turns a panic into a value.
func decodeSafe(d *codec.Decoder, b []byte) (p codec.Packet, n int, panicked any, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	p, n, err = d.Decode(b)
	return p, n, nil, err
}

// roundTrip re-encodes a decoded packet and decodes the encoding again; it
// returns what went wrong, if anything. The bytes need not be the same as
// the original (mosquitto's vectors use long forms the encoder shortens),
// the fields must.
func roundTrip(p codec.Packet, v codec.Version, from codec.Role) (problem string) {
	defer func() {
		if r := recover(); r != nil {
			problem = fmt.Sprintf("panic in the round trip of %v: %v", p.Type(), r)
		}
	}()
	orig := codec.Clone(p)
	enc, err := codec.Append(nil, orig, v)
	if err != nil {
		return fmt.Sprintf("decoded %v, but Append refuses it: %v", orig, err)
	}
	if size := orig.Size(v); size != len(enc) {
		return fmt.Sprintf("%v: Size says %d bytes, Append wrote %d", orig, size, len(enc))
	}
	d := &codec.Decoder{Version: v, From: from}
	again, n, err := d.Decode(enc)
	if err != nil {
		return fmt.Sprintf("%v re-encoded as % x does not decode: %v", orig, enc, err)
	}
	if n != len(enc) {
		return fmt.Sprintf("%v re-encoded as % x: decode used %d of %d bytes", orig, enc, n, len(enc))
	}
	if diff := cmp.Diff(orig, again, cmpopts.EquateEmpty()); diff != "" {
		return fmt.Sprintf("%v changes in a round trip (-decoded +re-decoded):\n%s", orig, diff)
	}
	return ""
}

// prefixesIncomplete checks that every proper prefix of a packet the codec
// accepts is reported as incomplete, never as a broken packet.
func prefixesIncomplete(pkt []byte, v codec.Version, from codec.Role) string {
	d := &codec.Decoder{Version: v, From: from}
	for k := range len(pkt) {
		if _, _, panicked, err := decodeSafe(d, pkt[:k]); panicked != nil || err != codec.ErrIncomplete {
			return fmt.Sprintf("the first %d bytes of % x give %v (panic %v), want ErrIncomplete", k, pkt, err, panicked)
		}
	}
	return ""
}

// runMosqCase feeds the "send" bytes of a case to a Decoder as one byte
// stream, in order, as the system under test would receive them, and stops
// at the first packet the codec refuses: the connection would end there.
func runMosqCase(c *mosqCase) mosqResult {
	res := mosqResult{rejStep: -1, oneEach: true}
	v := codec.Version(c.ver)
	d := &codec.Decoder{Version: v, From: c.from}
	var buf []byte
	for i, st := range c.steps {
		if !st.send {
			continue
		}
		if len(buf) != 0 {
			res.oneEach = false
		}
		buf = append(buf, st.bytes...)
		decoded := 0
		// Every packet takes at least two bytes, so this loop ends.
		for len(buf) > 0 {
			p, n, panicked, err := decodeSafe(d, buf)
			if panicked != nil {
				res.problems = append(res.problems, fmt.Sprintf("Decode panics on % x: %v", buf, panicked))
				return res
			}
			if errors.Is(err, codec.ErrIncomplete) {
				if err != codec.ErrIncomplete {
					res.problems = append(res.problems, fmt.Sprintf("ErrIncomplete is wrapped: %v", err))
				}
				break
			}
			if err != nil {
				var ce *codec.Error
				if !errors.As(err, &ce) {
					res.problems = append(res.problems, fmt.Sprintf("error is neither ErrIncomplete nor an *codec.Error: %T %v", err, err))
					return res
				}
				res.rejected, res.rejStep = ce, i
				return res
			}
			if n <= 0 || n > len(buf) {
				res.problems = append(res.problems, fmt.Sprintf("Decode reports %d bytes used of %d", n, len(buf)))
				return res
			}
			if p.Type() == codec.TypeConnect {
				// A server learns the version from the CONNECT itself.
				if cv, err := codec.ConnectVersion(buf[:n]); err != nil || cv != v {
					res.problems = append(res.problems, fmt.Sprintf("CONNECT decodes as %v, but ConnectVersion says %v, %v", v, cv, err))
				}
			}
			if pr := roundTrip(p, v, c.from); pr != "" {
				res.problems = append(res.problems, pr)
			}
			if pr := prefixesIncomplete(buf[:n], v, c.from); pr != "" {
				res.problems = append(res.problems, pr)
			}
			decoded++
			buf = buf[n:]
		}
		if decoded != 1 || len(buf) != 0 {
			res.oneEach = false
		}
	}
	res.pending = len(buf)
	return res
}

// mosqReason returns the reason code of mosquitto's answer to the send step
// at index step: the step right after it, when that is a "recv" of a
// DISCONNECT with a reason code or of an MQTT 5.0 CONNACK that refuses the
// connection.
func mosqReason(c *mosqCase, step int) (codec.ReasonCode, bool) {
	if step+1 >= len(c.steps) {
		return 0, false
	}
	st := c.steps[step+1]
	if st.send {
		return 0, false
	}
	b := st.bytes
	switch {
	case len(b) >= 3 && b[0] == 0xE0 && b[1] >= 1:
		return codec.ReasonCode(b[2]), true
	case c.ver == 5 && len(b) >= 4 && b[0] == 0x20 && b[3] >= 0x80:
		return codec.ReasonCode(b[3]), true
	}
	return 0, false
}

type mosqDeviation struct {
	line     int
	key      mosqKey
	category string
	spec     string
	reason   string
}

var (
	specRef      = regexp.MustCompile(`MQTT-\d+(\.\d+)*(-\d+)?|^\d+(\.\d+)+`)
	mosqCategory = map[string]bool{devState: true, devPolicy: true, devCodecBug: true, devLenient: true, devUnsupported: true}
)

const (
	bugRefuses = "The codec refuses "
	bugAccepts = "The codec accepts "
)

func loadMosqDeviations(t *testing.T) map[mosqKey]*mosqDeviation {
	t.Helper()
	f, err := os.Open(filepath.Join(mosqDir, "deviations.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	devs := map[mosqKey]*mosqDeviation{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 6 {
			t.Errorf("deviations.tsv:%d: %d columns, want 6 (file, group, test name, category, spec statement, reason)", n, len(cols))
			continue
		}
		d := &mosqDeviation{line: n, key: mosqKey{cols[0], cols[1], cols[2]}, category: cols[3], spec: cols[4], reason: cols[5]}
		if !mosqCategory[d.category] {
			t.Errorf("deviations.tsv:%d: unknown category %q", n, d.category)
		}
		if !specRef.MatchString(d.spec) {
			t.Errorf("deviations.tsv:%d: spec statement %q names no normative statement or section", n, d.spec)
		}
		if len(d.reason) < 40 || !strings.HasSuffix(d.reason, ".") {
			t.Errorf("deviations.tsv:%d: the reason must be a sentence that says why: %q", n, d.reason)
		}
		if d.category == devCodecBug && !strings.HasPrefix(d.reason, bugRefuses) && !strings.HasPrefix(d.reason, bugAccepts) {
			t.Errorf("deviations.tsv:%d: a codec-bug reason starts with %q or %q", n, bugRefuses, bugAccepts)
		}
		if prev, dup := devs[d.key]; dup {
			t.Errorf("deviations.tsv:%d: %v is already listed on line %d", n, d.key, prev.line)
		}
		devs[d.key] = d
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return devs
}

// checkDeviation checks that a listed case still deviates as its entry
// says, and returns what is wrong, if anything.
func checkDeviation(d *mosqDeviation, c *mosqCase, res *mosqResult) string {
	refused := res.rejected != nil
	switch d.category {
	case devState, devPolicy:
		if !c.expectDisconnect {
			return "mosquitto accepts the case; category " + d.category + " is for cases it refuses"
		}
		if refused {
			return fmt.Sprintf("the codec refuses the case (%v): if the packet is valid the codec is wrong, otherwise remove the entry", res.rejected)
		}
	case devLenient, devUnsupported:
		if c.expectDisconnect {
			return "mosquitto refuses the case; category " + d.category + " is for cases it accepts"
		}
		if !refused {
			return "the codec accepts the case now: remove the entry"
		}
		if d.category == devUnsupported {
			if !errors.Is(res.rejected, codec.ErrUnsupportedVersion) {
				return fmt.Sprintf("the codec refuses the case with %v, not as an unsupported protocol version", res.rejected)
			}
			for _, st := range c.steps {
				if st.send && len(st.bytes) > 0 && codec.Type(st.bytes[0]>>4) == codec.TypeConnect {
					var ce *codec.Error
					if _, err := codec.ConnectVersion(st.bytes); !errors.As(err, &ce) {
						return fmt.Sprintf("ConnectVersion(% x) = %v, want it refused", st.bytes, err)
					}
				}
			}
		}
	case devCodecBug:
		if refused && !strings.HasPrefix(d.reason, bugRefuses) {
			return fmt.Sprintf("the codec now refuses the case (%v): the bug looks fixed; remove or reclassify the entry", res.rejected)
		}
		if !refused && !strings.HasPrefix(d.reason, bugAccepts) {
			return "the codec now accepts the case: the bug looks fixed; remove or reclassify the entry"
		}
	}
	return ""
}

type reasonPair struct{ mosquitto, codec codec.ReasonCode }

// TestMosquittoVectors decodes every packet of the Mosquitto corpus as the
// receiving side would and checks the codec's verdict against mosquitto's.
// There is one subtest per corpus file; the entries of deviations.tsv are
// checked as a whole at the end.
func TestMosquittoVectors(t *testing.T) {
	cases := loadMosqCases(t)
	devs := loadMosqDeviations(t)
	used := map[mosqKey]bool{}

	var accepted, rejected, incomplete int
	byCategory := map[string]int{}
	reasonDiffs := map[reasonPair]int{}
	reasonSame := 0

	for first := 0; first < len(cases); {
		file := cases[first].key.File
		last := first
		for last < len(cases) && cases[last].key.File == file {
			last++
		}
		t.Run(file, func(t *testing.T) {
			var unlisted []string
			for i := first; i < last; i++ {
				c := &cases[i]
				res := runMosqCase(c)
				for _, p := range res.problems {
					t.Errorf("%v: %s", c.key, p)
				}
				if res.rejected == nil && res.pending > 0 {
					incomplete++
				}
				if d := devs[c.key]; d != nil {
					used[c.key] = true
					if msg := checkDeviation(d, c, &res); msg != "" {
						t.Errorf("deviations.tsv:%d: %v: %s", d.line, c.key, msg)
					}
					byCategory[d.category]++
					continue
				}
				switch {
				case !c.expectDisconnect && res.rejected != nil:
					t.Errorf("%v: mosquitto accepts the case, the codec refuses % x: %v", c.key, c.steps[res.rejStep].bytes, res.rejected)
				case !c.expectDisconnect:
					if !res.oneEach {
						t.Errorf("%v: accepted, but a send payload is not exactly one whole packet", c.key)
					}
					accepted++
				case res.rejected != nil:
					rejected++
					if mr, ok := mosqReason(c, res.rejStep); ok {
						if mr == res.rejected.Reason {
							reasonSame++
						} else {
							reasonDiffs[reasonPair{mr, res.rejected.Reason}]++
						}
					}
				default:
					var sends []string
					for _, st := range c.steps {
						if st.send {
							sends = append(sends, fmt.Sprintf("% x", st.bytes))
						}
					}
					unlisted = append(unlisted, fmt.Sprintf("%s\t%s\t%s\t?\t?\t? (version %d, connect %v, connack %v, sends %s)",
						c.key.File, c.key.Group, c.key.Name, c.ver, c.connect, c.connack, strings.Join(sends, " | ")))
				}
			}
			if len(unlisted) > 0 {
				t.Errorf("%d cases that mosquitto refuses are accepted by the codec and not in deviations.tsv:\n%s",
					len(unlisted), strings.Join(unlisted, "\n"))
			}
		})
		first = last
	}

	for key, d := range devs {
		if !used[key] {
			t.Errorf("deviations.tsv:%d: no test case %v in the corpus", d.line, key)
		}
	}

	listed := 0
	for _, n := range byCategory {
		listed += n
	}
	t.Logf("cases %d: accepted %d, rejected by the codec %d, listed %d (state %d, policy %d, lenient %d, unsupported %d, codec-bug %d); cases ending in an incomplete packet: %d",
		len(cases), accepted, rejected, listed, byCategory[devState], byCategory[devPolicy], byCategory[devLenient],
		byCategory[devUnsupported], byCategory[devCodecBug], incomplete)

	pairs := make([]reasonPair, 0, len(reasonDiffs))
	for p := range reasonDiffs {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if reasonDiffs[pairs[i]] != reasonDiffs[pairs[j]] {
			return reasonDiffs[pairs[i]] > reasonDiffs[pairs[j]]
		}
		if pairs[i].mosquitto != pairs[j].mosquitto {
			return pairs[i].mosquitto < pairs[j].mosquitto
		}
		return pairs[i].codec < pairs[j].codec
	})
	var tbl strings.Builder
	differ := 0
	for _, n := range reasonDiffs {
		differ += n
	}
	fmt.Fprintf(&tbl, "reason codes of rejected packets where mosquitto answered with one: %d the same, %d different\n",
		reasonSame, differ)
	fmt.Fprintf(&tbl, "  %-32s  %-32s  %s\n", "mosquitto", "codec", "cases")
	for _, p := range pairs {
		fmt.Fprintf(&tbl, "  0x%02X %-27s  0x%02X %-27s  %d\n", byte(p.mosquitto), p.mosquitto, byte(p.codec), p.codec, reasonDiffs[p])
	}
	t.Log(tbl.String())
}
