package main

// zmqtt pub and sub against mosquitto_pub and mosquitto_sub (Debian package
// mosquitto-clients): the same command lines, run against the same private
// Mosquitto, must exit with the same status and print the same standard
// output, byte for byte where mosquitto defines the format (-v, -N, -F,
// -d). Times (%I, %U, @..., the "tst" of %j) and client identifiers the
// broker assigns are replaced by placeholders before comparing.
//
// Synchronisation, as in main_test.go: a sub is subscribed once it has
// printed a retained marker; where a case cannot print the marker (-R,
// -U), the messages wait in a persistent session made beforehand with -c
// -E, so that the sub finds them when it connects.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

// mosqClient returns the path of a mosquitto client, and fails the test
// with how to install it when it is missing.
func mosqClient(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Fatalf("this test compares zmqtt with %s, which is not installed: apt-get install mosquitto-clients", name)
	return ""
}

// tool is one of the two programs compared: mosquitto_sub (or _pub), or
// zmqtt with its command.
type tool struct {
	short string   // "mosquitto" or "zmqtt": names ids and topics
	bin   string   // the program
	cmd   []string // the arguments before the options
}

// tools returns mosquitto_<cmd> and zmqtt <cmd>, in that order.
func tools(t *testing.T, cmd string) []tool {
	return []tool{{"mosquitto", mosqClient(t, "mosquitto_"+cmd), nil}, {"zmqtt", zmqttBin, []string{cmd}}}
}

// expand replaces {id} in flags with an identifier of the tool's own: two
// clients with one identifier would take each other's session over.
func (tl tool) expand(flags []string, id string) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = strings.ReplaceAll(f, "{id}", id+"-"+tl.short)
	}
	return out
}

func (tl tool) run(t *testing.T, stdin []byte, flags ...string) result {
	t.Helper()
	ctx := testCtx(t, testTimeout)
	return runBin(ctx, t, tl.bin, stdin, append(slices.Clone(tl.cmd), flags...)...)
}

func (tl tool) start(t *testing.T, flags ...string) *proc {
	t.Helper()
	ctx := testCtx(t, testTimeout)
	return startBin(ctx, t, tl.bin, append(slices.Clone(tl.cmd), flags...)...)
}

// Placeholders for what differs from run to run.
var (
	reTST     = regexp.MustCompile(`"tst":(\t?)"[0-9T:.+-]+Z[+-][0-9]{4}"`)
	reISO     = regexp.MustCompile(`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{4}`)
	reUnix    = regexp.MustCompile(`[0-9]{10}\.[0-9]{9}`)
	reAutoID  = regexp.MustCompile(`auto-[0-9A-F-]{36}`)
	normTimes = func(s string) string {
		s = reTST.ReplaceAllString(s, `"tst":$1"TST"`)
		s = reISO.ReplaceAllString(s, "ISO")
		return reUnix.ReplaceAllString(s, "UNIX")
	}
)

// sameOutcome fails the test unless both runs exited with the same status
// and printed the same standard output, after norm, with the tool's own
// identifier replaced by {id}.
func sameOutcome(t *testing.T, id string, rs []result, norm func(string) string) {
	t.Helper()
	out := make([]string, len(rs))
	for i, r := range rs {
		s := strings.ReplaceAll(r.stdout, id+"-"+[]string{"mosquitto", "zmqtt"}[i], "{id}")
		s = reAutoID.ReplaceAllString(s, "auto-ID")
		if norm != nil {
			s = norm(s)
		}
		out[i] = s
	}
	if rs[0].code != rs[1].code {
		t.Errorf("exit status: mosquitto %d, zmqtt %d\n%v\n%v", rs[0].code, rs[1].code, rs[0], rs[1])
	}
	if out[0] != out[1] {
		t.Errorf("standard output differs:\nmosquitto: %q\nzmqtt:     %q\n%v\n%v", out[0], out[1], rs[0], rs[1])
	}
}

// message is one message a case publishes with zmqtt pub: to base/<topic>,
// with flags (the message, QoS, properties).
type message struct {
	topic string
	flags []string
}

// subCase runs mosquitto_sub and zmqtt sub side by side on base/#.
type subCase struct {
	name  string
	flags []string // sub's options besides -t base/# and the connection
	// ready is what both print for the retained marker (payload "ready" on
	// base/ready); "" means "ready".
	ready string
	// noMarker: the case ends without a marker (-E, -W on a quiet topic).
	noMarker bool
	msgs     []message
	norm     func(string) string
	status   int // the status both must exit with
}

func (c subCase) run(t *testing.T, b *brokertest.Broker) {
	conn := hostPort(b)
	base := "cmp/" + strings.NewReplacer(" ", "-", "%", "pct", "#", "", "+", "").Replace(c.name)
	if !c.noMarker {
		mustRun(testCtx(t, testTimeout), t, nil, args([]string{"pub", "-t", base + "/ready", "-m", "ready", "-r", "-q", "1"}, conn)...)
	}
	filter := base + "/#"
	if c.noMarker {
		filter = base + "/quiet/#"
	}
	var procs []*proc
	for _, tl := range tools(t, "sub") {
		procs = append(procs, tl.start(t, args([]string{"-t", filter}, tl.expand(c.flags, base), conn)...))
	}
	if !c.noMarker {
		ready := c.ready
		if ready == "" {
			ready = "ready"
		}
		for _, p := range procs {
			p.waitFor(t, ready)
		}
	}
	for _, m := range c.msgs {
		mustRun(testCtx(t, testTimeout), t, nil, args([]string{"pub", "-t", base + "/" + m.topic}, m.flags, conn)...)
	}
	rs := []result{procs[0].wait(t), procs[1].wait(t)}
	if rs[1].code != c.status {
		t.Errorf("zmqtt sub exited with %d, want %d: %v", rs[1].code, c.status, rs[1])
	}
	sameOutcome(t, base, rs, c.norm)
}

// TestCompatSub: mosquitto_sub's output and exit status, case by case.
func TestCompatSub(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	props := []string{"-D", "publish", "user-property", "k", "1", "-D", "publish", "user-property", "k", "2",
		"-D", "publish", "user-property", "other", "x", "-D", "publish", "content-type", "text/plain",
		"-D", "publish", "response-topic", "cmp/reply", "-D", "publish", "correlation-data", "c0rr",
		"-D", "publish", "message-expiry-interval", "3600", "-D", "publish", "payload-format-indicator", "1"}
	cases := []subCase{
		{name: "v 311", flags: []string{"-v", "-C", "4"}, ready: "/ready ready\n",
			msgs: []message{{"one", []string{"-m", "hello"}}, {"empty", []string{"-n"}}, {"two", []string{"-m", "with spaces"}}}},
		{name: "v 5", flags: []string{"-v", "-C", "3", "-V", "5"}, ready: "/ready ready\n",
			msgs: []message{{"one", []string{"-m", "hello"}}, {"empty", []string{"-n"}}}},
		// An empty payload prints nothing, not even a newline, but counts.
		{name: "payload only", flags: []string{"-C", "4"},
			msgs: []message{{"one", []string{"-m", "hello"}}, {"empty", []string{"-n"}}, {"two", []string{"-m", "bye"}}}},
		{name: "N", flags: []string{"-N", "-C", "3"},
			msgs: []message{{"one", []string{"-m", "hello"}}, {"two", []string{"-m", "bye"}}}},
		{name: "v N", flags: []string{"-v", "-N", "-C", "3"},
			msgs: []message{{"empty", []string{"-n"}}, {"two", []string{"-m", "bye"}}}},
		{name: "F fields", flags: []string{"-F", "%t|%p|%q|%r|%m|%l|%x|%X|%%", "-q", "2", "-C", "4"},
			msgs: []message{{"q0", []string{"-m", "zero", "-q", "0"}}, {"q1", []string{"-m", "one", "-q", "1"}}, {"q2", []string{"-m", "two\x01", "-q", "2"}}}},
		{name: "F widths", flags: []string{"-F", "[%-12t][%12t][%.5t][%5l][%-5l][%05l][%8p][%-8p][%08p][%3p][%04m][%-4q][%3r][%.2l]", "-q", "1", "-C", "3"},
			msgs: []message{{"a", []string{"-m", "hi", "-q", "1"}}, {"b", []string{"-m", "a longer payload", "-q", "1"}}}},
		{name: "F escapes", flags: []string{"-F", `\t%t\0%p\e[0m\\\a\v\r|@@|%%`, "-C", "2"},
			msgs: []message{{"a", []string{"-m", "hi"}}}},
		{name: "F time", flags: []string{"-F", "%I|%U|@Y-@m-@dT@H:@M:@S@z|%t", "-C", "2"}, norm: normTimes,
			msgs: []message{{"a", []string{"-m", "hi"}}}},
		{name: "F j 311", flags: []string{"-F", "%j", "-q", "2", "-C", "4"}, norm: normTimes,
			msgs: []message{{"quote", []string{"-m", "he\"llo\\ \t\n\x01\x7f é", "-q", "1"}}, {"empty", []string{"-n", "-q", "2"}}, {"json", []string{"-m", `{"a":1}`}}}},
		{name: "F j 5 properties", flags: []string{"-F", "%j", "-V", "5", "-q", "1", "-C", "3",
			"-D", "subscribe", "subscription-identifier", "7"}, norm: normTimes,
			msgs: []message{{"props", append([]string{"-m", "p", "-q", "1"}, props...)},
				{"user", []string{"-m", "u", "-D", "publish", "user-property", "same", "a", "-D", "publish", "user-property", "same", "b"}}}},
		{name: "F j pretty", flags: []string{"-F", "%j", "--pretty", "-V", "5", "-C", "2"}, norm: normTimes,
			msgs: []message{{"props", append([]string{"-m", "p"}, props...)}}},
		// %J embeds a JSON payload, rewritten as cJSON writes it; a payload
		// that is not JSON prints nothing there (and a line on stderr).
		{name: "F J", flags: []string{"-F", "%t %J", "-C", "4"}, ready: "/ready \n", norm: normTimes,
			msgs: []message{{"obj", []string{"-m", `{"a": 1.0, "b":[1e3, 0.1, 1.5e300, 12345678901, "\u00e9\/x\u0001", 0.30000000000000004, 3.14159265358979323846, 1e400, -5, 1e-7], "c":{}, "d":[], "e":null, "f":true}`}},
				{"bad", []string{"-m", "not json"}}, {"arr", []string{"-m", ` [1,{"x":[]},[2,3]] `}}}},
		{name: "F J pretty", flags: []string{"-F", "%t %J", "--pretty", "-C", "2"}, ready: "/ready \n", norm: normTimes,
			msgs: []message{{"obj", []string{"-m", `{"c":{}, "d":[], "e":[1,{"x":[]},[2,3]], "f":{"g":{"h":1}}}`}}}},
		{name: "F properties", flags: []string{"-F", "%t|%P|%C|%R|%D|%E|%F|%A|%S|%5C|%05E|%-5F|%5S|%.4C", "-V", "5", "-C", "3"}, ready: "/ready|",
			msgs: []message{{"props", append([]string{"-m", "p"}, props...)}, {"none", []string{"-m", "n", "-V", "5"}}}},
		{name: "T filter out", flags: []string{"-v", "-T", "cmp/T-filter-out/skip/#", "-C", "3"}, ready: "/ready ready\n",
			msgs: []message{{"skip/a", []string{"-m", "no"}}, {"keep1", []string{"-m", "yes"}}, {"skip/b", []string{"-m", "no"}}, {"keep2", []string{"-m", "yes"}}}},
		// -W ends with status 27, what was printed stays printed.
		{name: "W count not reached", flags: []string{"-v", "-C", "3", "-W", "1"}, ready: "/ready ready\n", status: statusTimedOut},
		{name: "W quiet", flags: []string{"-W", "1"}, noMarker: true, status: statusTimedOut},
		{name: "E", flags: []string{"-E", "-q", "1"}, noMarker: true},
		// -d: the packets, in libmosquitto's words (QoS 0: no acknowledgement
		// whose line could come before or after the message's).
		{name: "d 311", flags: []string{"-d", "-i", "{id}", "-v", "-C", "2"}, ready: "/ready ready\n",
			msgs: []message{{"a", []string{"-m", "hi"}}}},
		{name: "d 5", flags: []string{"-d", "-i", "{id}", "-v", "-C", "2", "-V", "mqttv5", "-t", "cmp/d5-other"}, ready: "/ready ready\n",
			msgs: []message{{"a", []string{"-m", "hi", "-V", "5"}}}},
		{name: "d 5 assigned id", flags: []string{"-d", "-C", "1", "-V", "5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, b)
		})
	}
}

// TestCompatSubSessions: the options about retained messages and
// persistent sessions (-R, --retained-only, --remove-retained, -U, -c, -x).
func TestCompatSubSessions(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	conn := hostPort(b)
	pub := func(t *testing.T, topic string, flags ...string) {
		t.Helper()
		mustRun(testCtx(t, testTimeout), t, nil, args([]string{"pub", "-t", topic}, flags, conn)...)
	}
	subs := func(t *testing.T) []tool { return tools(t, "sub") }

	// -R: no retained messages printed. The fresh messages wait in a
	// persistent session; when the sub comes back its SUBSCRIBE also
	// brings the retained one (3.1.1), which -R must not print (on 5.0 it
	// asks the broker not to send it).
	for _, v := range []string{"311", "5"} {
		t.Run("R "+v, func(t *testing.T) {
			t.Parallel()
			base := "cmp/R/" + v
			sess := []string{"-c", "-i", "{id}", "-q", "1", "-V", v, "-t", base + "/#"}
			for _, tl := range subs(t) {
				if r := tl.run(t, nil, args(tl.expand(sess, base), []string{"-E"}, conn)...); r.code != 0 {
					t.Fatalf("making the session: %v", r)
				}
			}
			pub(t, base+"/fresh1", "-m", "f1", "-q", "1")
			pub(t, base+"/old", "-m", "old", "-r", "-q", "1")
			pub(t, base+"/fresh2", "-m", "f2", "-q", "1")
			var rs []result
			for _, tl := range subs(t) {
				rs = append(rs, tl.run(t, nil, args(tl.expand(sess, base), []string{"-R", "-v", "-W", "1"}, conn)...))
			}
			if want := base + "/fresh1 f1\n" + base + "/old old\n" + base + "/fresh2 f2\n"; rs[1].stdout != want || rs[1].code != statusTimedOut {
				t.Errorf("zmqtt sub -R: want status 27 and %q; got %v", want, rs[1])
			}
			sameOutcome(t, base, rs, nil)
		})
	}

	t.Run("retained-only", func(t *testing.T) {
		t.Parallel()
		base := "cmp/retained-only"
		pub(t, base+"/r1", "-m", "one", "-r", "-q", "1")
		pub(t, base+"/r2", "-m", "two", "-r", "-q", "1")
		var procs []*proc
		for _, tl := range subs(t) {
			procs = append(procs, tl.start(t, args([]string{"--retained-only", "-v", "-t", base + "/#"}, conn)...))
		}
		for _, p := range procs {
			p.waitFor(t, base+"/r2 two\n")
		}
		pub(t, base+"/fresh", "-m", "ends it")
		rs := []result{procs[0].wait(t), procs[1].wait(t)}
		if want := base + "/r1 one\n" + base + "/r2 two\n"; rs[1].stdout != want || rs[1].code != 0 {
			t.Errorf("zmqtt sub --retained-only: want status 0 and %q; got %v", want, rs[1])
		}
		sameOutcome(t, base, rs, nil)
	})

	// --remove-retained: print and clear the retained messages; the
	// clearing (an empty message) comes back as a fresh message. Afterwards
	// nothing is retained. (With --retained-only, mosquitto_sub 2.0.11 does
	// not always exit: when the PUBACK of its clearing comes before the
	// clearing itself, it misses its cue. -W ends the run instead.)
	t.Run("remove-retained", func(t *testing.T) {
		t.Parallel()
		var rs []result
		for _, tl := range subs(t) {
			base := "cmp/remove/" + tl.short
			pub(t, base+"/a", "-m", "A", "-r", "-q", "1")
			pub(t, base+"/b", "-m", "B", "-r", "-q", "1")
			r := tl.run(t, nil, args([]string{"--remove-retained", "-v", "-W", "1", "-t", base + "/#"}, conn)...)
			r.stdout = strings.ReplaceAll(r.stdout, base, "BASE")
			rs = append(rs, r)
			after := runZ(testCtx(t, testTimeout), t, nil, args([]string{"sub", "-t", base + "/#", "-v", "-W", "1"}, conn)...)
			if after.code != statusTimedOut || after.stdout != "" {
				t.Errorf("after %s --remove-retained: want nothing retained (status 27); got %v", tl.short, after)
			}
		}
		if want := "BASE/a A\nBASE/b B\nBASE/a (null)\nBASE/b (null)\n"; rs[1].stdout != want || rs[1].code != statusTimedOut {
			t.Errorf("zmqtt sub --remove-retained: want status 0 and %q; got %v", want, rs[1])
		}
		sameOutcome(t, "", rs, nil)
	})

	// -U: unsubscribe in a persistent session. The session has base/a and
	// base/b; -U removes base/a, so of two messages published while away
	// only base/b's waits.
	for _, v := range []string{"311", "5"} {
		t.Run("U "+v, func(t *testing.T) {
			t.Parallel()
			base := "cmp/U/" + v
			sess := []string{"-c", "-i", "{id}", "-q", "1", "-V", v}
			for _, tl := range subs(t) {
				if r := tl.run(t, nil, args(tl.expand(sess, base), []string{"-t", base + "/a", "-t", base + "/b", "-E"}, conn)...); r.code != 0 {
					t.Fatalf("making the session: %v", r)
				}
				if r := tl.run(t, nil, args(tl.expand(sess, base), []string{"-t", base + "/b", "-U", base + "/a", "-E"}, conn)...); r.code != 0 {
					t.Fatalf("-U: %v", r)
				}
			}
			pub(t, base+"/a", "-m", "A", "-q", "1")
			pub(t, base+"/b", "-m", "B", "-q", "1")
			var rs []result
			for _, tl := range subs(t) {
				rs = append(rs, tl.run(t, nil, args(tl.expand(sess, base), []string{"-t", base + "/b", "-v", "-C", "1"}, conn)...))
			}
			if want := base + "/b B\n"; rs[1].stdout != want || rs[1].code != 0 {
				t.Errorf("zmqtt sub -U: want status 0 and %q; got %v", want, rs[1])
			}
			sameOutcome(t, base, rs, nil)
		})
	}

	// -x on 5.0: a session with an expiry outlives the connection even
	// without -c (clean start, kept afterwards); a message published
	// meanwhile waits for the next connection, which resumes it with -c.
	t.Run("x", func(t *testing.T) {
		t.Parallel()
		base := "cmp/x"
		for _, tl := range subs(t) {
			if r := tl.run(t, nil, args(tl.expand([]string{"-i", "{id}", "-V", "5", "-x", "3600", "-q", "1", "-t", base + "/" + tl.short, "-E"}, base), conn)...); r.code != 0 {
				t.Fatalf("making the session: %v", r)
			}
			pub(t, base+"/"+tl.short, "-m", "waited", "-q", "1")
		}
		var rs []result
		for _, tl := range subs(t) {
			rs = append(rs, tl.run(t, nil, args(tl.expand([]string{"-c", "-i", "{id}", "-V", "5", "-q", "1", "-t", base + "/" + tl.short, "-C", "1"}, base), conn)...))
		}
		if rs[1].stdout != "waited\n" || rs[1].code != 0 {
			t.Errorf("zmqtt sub -x 3600: want the message that waited; got %v", rs[1])
		}
		sameOutcome(t, base, rs, nil)
	})
}

// TestCompatPub: what mosquitto_pub and zmqtt pub publish for the same
// options, as a third party (zmqtt sub) sees it, and their -d lines.
func TestCompatPub(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	conn := hostPort(b)
	dir := t.TempDir()
	bin := filepath.Join(dir, "binary")
	if err := os.WriteFile(bin, []byte("bin\x00\xff\x01\nline"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		flags []string
		stdin string
		n     int // messages published
	}{
		{"m q1", []string{"-m", "hello", "-q", "1"}, "", 1},
		{"m q2 r", []string{"-m", "kept", "-q", "2", "-r"}, "", 1},
		{"n", []string{"-n"}, "", 1},
		{"l", []string{"-l", "-q", "1"}, "a\n\nb\r\nlast without newline", 4},
		{"s", []string{"-s"}, "whole\nfile\n", 1},
		{"f", []string{"-f", bin}, "", 1},
		{"repeat", []string{"-m", "again", "--repeat", "3"}, "", 3},
		{"D props", []string{"-m", "props", "-q", "1", "-D", "publish", "user-property", "k", "1", "-D", "publish", "user-property", "k", "2",
			"-D", "publish", "content-type", "text/plain", "-D", "publish", "response-topic", "r/t",
			"-D", "publish", "correlation-data", "corr", "-D", "publish", "payload-format-indicator", "1"}, "", 1},
		{"V 5 topic alias", []string{"-V", "5", "-m", "aliased", "-D", "publish", "topic-alias", "1"}, "", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, testTimeout)
			base := "cmp/pub/" + strings.ReplaceAll(c.name, " ", "-")
			obs, _ := subscribed(ctx, t, conn, base, "-V", "5", "-q", "2", "-C", strconv.Itoa(1+2*c.n),
				"-F", "%t|%q|%r|%l|%P|%C|%R|%D|%F|%x")
			var rs []result
			for _, tl := range tools(t, "pub") {
				var stdin []byte
				if c.stdin != "" {
					stdin = []byte(c.stdin)
				}
				r := tl.run(t, stdin, args([]string{"-t", base + "/" + tl.short}, c.flags, conn)...)
				if r.code != 0 || r.stderr != "" {
					t.Errorf("want status 0 and nothing on stderr: %v", r)
				}
				rs = append(rs, r)
			}
			sameOutcome(t, base, rs, nil)
			lines := strings.Split(strings.TrimSuffix(obs.wait(t).stdout, "\n"), "\n")[1:]
			var seen [2][]string
			for _, l := range lines {
				topic, rest, _ := strings.Cut(l, "|")
				i := slices.Index([]string{base + "/mosquitto", base + "/zmqtt"}, topic)
				if i < 0 {
					t.Fatalf("unexpected line %q", l)
				}
				seen[i] = append(seen[i], rest)
			}
			if len(seen[0]) != c.n || !slices.Equal(seen[0], seen[1]) {
				t.Errorf("published messages differ:\nmosquitto_pub: %q\nzmqtt pub:     %q", seen[0], seen[1])
			}
		})
	}

	// -d: the same packet lines, QoS 0 (numbered by the client), 1 and 2.
	for _, v := range []string{"311", "5"} {
		for _, q := range []string{"0", "1", "2"} {
			t.Run("d V"+v+" q"+q, func(t *testing.T) {
				t.Parallel()
				id := "cmp-pub-d-" + v + "-" + q
				var rs []result
				for _, tl := range tools(t, "pub") {
					rs = append(rs, tl.run(t, nil, args(tl.expand([]string{"-d", "-i", "{id}", "-V", v, "-q", q, "-t", "cmp/pub/d", "-m", "hello"}, id), conn)...))
				}
				want := "Client {id} sending CONNECT\n"
				if !strings.HasPrefix(strings.ReplaceAll(rs[1].stdout, id+"-zmqtt", "{id}"), want) || rs[1].code != 0 {
					t.Errorf("zmqtt pub -d: want status 0 and lines from %q; got %v", want, rs[1])
				}
				sameOutcome(t, id, rs, nil)
			})
		}
	}
	t.Run("d l", func(t *testing.T) {
		t.Parallel()
		var rs []result
		for _, tl := range tools(t, "pub") {
			rs = append(rs, tl.run(t, []byte("one\ntwo\nthree\n"), args([]string{"-d", "-l", "-t", "cmp/pub/dl"}, conn)...))
		}
		if !strings.Contains(rs[1].stdout, "m3, 'cmp/pub/dl', ... (5 bytes))") {
			t.Errorf("zmqtt pub -d -l: want the third QoS 0 message numbered m3; got %v", rs[1])
		}
		sameOutcome(t, "", rs, nil)
	})
	t.Run("d assigned id", func(t *testing.T) {
		t.Parallel()
		var rs []result
		for _, tl := range tools(t, "pub") {
			rs = append(rs, tl.run(t, nil, args([]string{"-d", "-V", "5", "-q", "1", "-t", "cmp/pub/da", "-m", "x"}, conn)...))
		}
		if !strings.Contains(rs[1].stdout, "Client (null) sending CONNECT\nClient auto-") {
			t.Errorf("zmqtt pub -d: want (null), then the identifier the broker assigned; got %v", rs[1])
		}
		sameOutcome(t, "", rs, nil)
	})
}

// TestCompatStatus: the exit status of errors, usage errors and --help.
func TestCompatStatus(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	auth := brokertest.Start(t, brokertest.Config{Users: map[string]string{"alice": "secret"}})
	conn := hostPort(b)
	refused := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(freePort(t))}
	cases := []struct {
		cmd    string
		flags  []string
		status int
	}{
		{"sub", nil, 1},
		{"pub", []string{"-t", "x"}, 1},
		{"pub", []string{"-t", "x", "-m", "a", "-n"}, 1},
		{"sub", []string{"-t", "x", "-V", "4"}, 1},
		{"sub", []string{"-t", "x", "-q", "3"}, 1},
		{"sub", []string{"-t", "x", "--bogus"}, 1},
		{"sub", []string{"-t", "x", "-D", "connect", "bogus-prop", "a"}, 1},
		{"sub", []string{"-t", "x", "-D", "subscribe", "content-type", "a"}, 1},
		{"sub", []string{"-t", "x", "-D", "puback", "user-property", "a", "b"}, 1},
		{"pub", []string{"-t", "x", "-m", "x", "-D", "publish", "user-property"}, 1},
		{"sub", []string{"-t", "x", "-c"}, 1},
		{"sub", []string{"-t", "a/#/b"}, 1},
		{"pub", []string{"-t", "a/#", "-m", "x"}, 1},
		{"sub", []string{"-t", "x", "-F", "%Z"}, 1},
		{"sub", []string{"-t", "x", "-F", `\q`}, 1},
		{"sub", []string{"-t", "x", "-F", "%5"}, 1},
		{"sub", []string{"-t", "x", "--will-payload", "p"}, 1},
		{"sub", []string{"-t", "x", "--will-topic", "a/#"}, 1},
		{"sub", []string{"-t", "x", "--help"}, 1},
		{"pub", []string{"--help"}, 1},
		{"pub", args([]string{"-t", "x", "-m", "y"}, refused), 1},
		{"sub", args([]string{"-t", "x"}, refused), 1},
		// A refused CONNECT: the status is the CONNACK's code.
		{"pub", args([]string{"-t", "x", "-m", "y", "-u", "alice", "-P", "wrong"}, hostPort(auth)), 5},
		{"sub", args([]string{"-t", "x", "-V", "5"}, hostPort(auth)), 0x87},
		{"sub", args([]string{"-t", "x", "-V", "mqttv311", "-E"}, hostPort(auth)), 5},
		{"pub", args([]string{"-t", "x", "-m", "y", "-u", "alice", "-P", "secret", "-V", "mqttv5"}, hostPort(auth)), 0},
		{"sub", args([]string{"-t", "x", "-E", "-V", "mqttv5"}, conn), 0},
	}
	for _, c := range cases {
		t.Run(c.cmd+" "+strings.Join(c.flags, " "), func(t *testing.T) {
			t.Parallel()
			var codes []int
			for _, tl := range tools(t, c.cmd) {
				codes = append(codes, tl.run(t, nil, c.flags...).code)
			}
			if codes[0] != c.status || codes[1] != c.status {
				t.Errorf("status: mosquitto_%s %d, zmqtt %s %d; want %d", c.cmd, codes[0], c.cmd, codes[1], c.status)
			}
		})
	}
}

// TestCompatWill: the will reaches the broker's subscribers when a sub
// dies (kill -9) [MQTT-3.1.2-8], and, as mosquitto_sub does, when it is
// interrupted on MQTT 5.0: it then disconnects with reason 0x04,
// Disconnect with Will Message [MQTT-3.14.2-1]. On 3.1.1 an interrupted
// sub disconnects normally and the broker drops the will [MQTT-3.1.2-10].
func TestCompatWill(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	conn := hostPort(b)
	for _, c := range []struct {
		name    string
		v       string
		sig     os.Signal
		status  int // of the interrupted sub; -1 for kill -9
		publish bool
	}{
		{"kill 311", "311", os.Kill, -1, true},
		{"kill 5", "5", os.Kill, -1, true},
		{"SIGINT 5", "5", os.Interrupt, 0, true},
		{"SIGTERM 5", "5", syscall.SIGTERM, 0, true},
		{"SIGINT 311", "311", os.Interrupt, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, testTimeout)
			base := "cmp/will/" + strings.ReplaceAll(c.name, " ", "-")
			obs, _ := subscribed(ctx, t, conn, base, "-v", "-q", "1", "-C", "3")
			// A retained marker outside base/# tells when each sub is in
			// place. (mosquitto_sub's -d lines are not flushed to a pipe.)
			mustRun(ctx, t, nil, args([]string{"pub", "-t", base + "-ready", "-m", "ready", "-r", "-q", "1"}, conn)...)
			var procs []*proc
			for _, tl := range tools(t, "sub") {
				procs = append(procs, tl.start(t, args([]string{"-V", c.v, "-t", base + "-ready", "--will-topic", base + "/" + tl.short,
					"--will-payload", "gone", "--will-qos", "1"}, conn)...))
			}
			for _, p := range procs {
				p.waitFor(t, "ready")
				if err := p.cmd.Process.Signal(c.sig); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range procs {
				r := p.wait(t)
				if c.status >= 0 && (r.code != c.status || r.stderr != "") {
					t.Errorf("interrupted: want status %d and nothing on stderr; got %v", c.status, r)
				}
			}
			got := map[string]bool{}
			if c.publish {
				got[obs.line(t)] = true
				got[obs.line(t)] = true
			} else {
				// Both have exited: a will would be on its way before this.
				mustRun(ctx, t, nil, args([]string{"pub", "-t", base + "/marker", "-m", "no will", "-q", "1"}, conn)...)
				if l := obs.line(t); l != base+"/marker no will" {
					t.Errorf("a will was published: %q", l)
				}
				return
			}
			for _, short := range []string{"mosquitto", "zmqtt"} {
				if !got[base+"/"+short+" gone"] {
					t.Errorf("no will from %s: got %v", short, got)
				}
			}
		})
	}
}

// TestSubProgressLine: on a terminal sub says on stderr that it is
// subscribed; in a pipe it prints nothing but the messages (every other
// test runs sub in pipes and checks that stderr stays empty).
func TestSubProgressLine(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	ctx := testCtx(t, testTimeout)
	master, slave, err := openPTY()
	if err != nil {
		t.Fatalf("a pseudo-terminal is needed: %v", err)
	}
	defer master.Close()
	cmd := exec.CommandContext(ctx, zmqttBin, args([]string{"sub", "-t", "progress/#", "-C", "1"}, hostPort(b))...)
	cmd.Stdout, cmd.Stderr = slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var seen strings.Builder
	lines := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				lines <- string(buf[:n])
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	want := "zmqtt: subscribed to progress/# on mqtt://127.0.0.1:" + strconv.Itoa(b.Port(brokertest.MQTT)) + "; waiting for messages (Ctrl-C to stop)"
	for !strings.Contains(seen.String(), want) {
		select {
		case s, ok := <-lines:
			if !ok {
				t.Fatalf("the terminal closed before the progress line: %q", seen.String())
			}
			seen.WriteString(s)
		case <-ctx.Done():
			t.Fatalf("no progress line on the terminal: %q", seen.String())
		}
	}
	mustRun(ctx, t, nil, args([]string{"pub", "-t", "progress/x", "-m", "shown"}, hostPort(b))...)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sub on a terminal: %v (output %q)", err, seen.String())
		}
	case <-ctx.Done():
		t.Fatal("sub did not exit after -C 1")
	}
}
