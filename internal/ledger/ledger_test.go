package ledger

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRepository is the ledger's check of the repository, run by `make
// test`: every citation names a statement, every statement that binds the
// client has a test or a reason, no reason is stale, and CONFORMANCE.md is
// what the generator writes.
func TestRepository(t *testing.T) {
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	l, md, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}

	// The statement list is whole: Appendix B of each version, and the
	// client-binding statements the issue counts.
	perVersion := map[string]int{}
	clientBinding := 0
	for _, e := range l.Entries {
		perVersion[e.Version]++
		if e.BindsClient() {
			clientBinding++
		}
	}
	if perVersion[V311] != 141 || perVersion[V5] != 251 || clientBinding != 205 {
		t.Errorf("%s holds %d statements of 3.1.1 and %d of 5.0, %d binding the client; want 141, 251 and 205",
			StatementsFile, perVersion[V311], perVersion[V5], clientBinding)
	}

	for _, p := range l.Problems() {
		t.Error(p)
	}

	have, err := os.ReadFile(filepath.Join(root, OutputFile))
	if err != nil {
		t.Fatalf("%v: run make ledger", err)
	}
	if !bytes.Equal(have, md) {
		t.Errorf("%s is out of date: run make ledger (%s)", OutputFile, firstDiff(have, md))
	}
}

// firstDiff describes the first line where have and want differ.
func firstDiff(have, want []byte) string {
	h, w := strings.Split(string(have), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(h), len(w)); i++ {
		var a, b string
		if i < len(h) {
			a = h[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b || i >= len(h) || i >= len(w) {
			return fmt.Sprintf("line %d is %q, the generator writes %q", i+1, a, b)
		}
	}
	return "the files differ"
}

// id builds a statement id out of pieces, so that this file does not cite
// the statements its fixtures use.
func id(section, n string) string { return "MQTT" + "-" + section + "-" + n }

// writeTree writes files (slash paths) under a new temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestScan checks what counts as a citation and whom it is credited to.
func TestScan(t *testing.T) {
	a, b, c, d := id("3.3.1", "4"), id("3.1.2", "14"), id("4.7.1", "2"), id("2.2.1", "3")
	root := writeTree(t, map[string]string{
		"codec/x_test.go": `package codec

// cases is a table that two tests use; [` + a + `] is in it.
var cases = []string{"QoS 3 [` + a + `]"}

type model struct{}

// fail is a method of model: only tests that work with a model use it.
func (m *model) fail(s string) { _ = "[` + c + `]" }

type other struct{}

func (o *other) fail(s string) {}

func newModel() *model { return &model{} }

func check(s string) { _ = cases }

// TestTable uses the table through a helper.
func TestTable(t *testing.T) { check("x") }

// TestDirect checks the will QoS [` + b + `] (3.1.1) and [` + b + `](5.0)
// and XMQTT-1.2-3, which is glued to a letter and no citation; the
// qualifier of [` + c + `]
// (5.0) is on the next line.
func TestDirect(t *testing.T) { _ = cases }

func TestModel(t *testing.T) { newModel().fail("x") }

func TestOther(t *testing.T) { (&other{}).fail("x") }

func Example() {
	// Output: [` + d + `]
}
`,
		"codec/x.go": `package codec

// Impl implements [` + d + `].
func Impl() {}

type T struct{}

// M implements [` + a + `] too.
func (*T) M() {}
`,
		"conformance/broker/checks.go": `package broker

// Checks lists the checks; this comment mentions [` + a + `] and is code.
var Checks = []Check{
	{Name: "qos3-refused", IDs: []string{"` + a + `"}},
}

func other() { run(Step{}.Cites("` + d + `")) }
`,
		"conformance/testdata/fixture_test.go": "package x\n// [" + a + "]\n",
		".hidden/x_test.go":                    "package x\n// [" + a + "]\n",
		"README.md":                            "[" + a + "]\n",
	})
	got, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Citation{
		{ID: a, File: "codec/x.go", Line: 8, Func: "T.M", Kind: Code},
		{ID: d, File: "codec/x.go", Line: 3, Func: "Impl", Kind: Code},
		{ID: a, File: "codec/x_test.go", Line: 3, Func: "TestDirect", Via: "cases", Kind: Test},
		{ID: a, File: "codec/x_test.go", Line: 3, Func: "TestTable", Via: "cases", Kind: Test},
		{ID: a, File: "codec/x_test.go", Line: 4, Func: "TestDirect", Via: "cases", Kind: Test},
		{ID: a, File: "codec/x_test.go", Line: 4, Func: "TestTable", Via: "cases", Kind: Test},
		{ID: c, File: "codec/x_test.go", Line: 9, Func: "TestModel", Via: "model.fail", Kind: Test},
		{ID: b, Version: V311, File: "codec/x_test.go", Line: 22, Func: "TestDirect", Kind: Test},
		{ID: b, Version: V5, File: "codec/x_test.go", Line: 22, Func: "TestDirect", Kind: Test},
		{ID: c, Version: V5, File: "codec/x_test.go", Line: 24, Func: "TestDirect", Kind: Test},
		{ID: d, File: "codec/x_test.go", Line: 33, Func: "Example", Kind: Test},
		{ID: a, File: "conformance/broker/checks.go", Line: 3, Func: "Checks", Kind: Code},
		{ID: a, File: "conformance/broker/checks.go", Line: 5, Func: "qos3-refused", Kind: Check},
		{ID: d, File: "conformance/broker/checks.go", Line: 8, Func: "other", Kind: Check},
	}
	sortCitations(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("citations (-want +got):\n%s", diff)
	}
}

func TestScanRefusesBrokenGo(t *testing.T) {
	root := writeTree(t, map[string]string{"a/b_test.go": "package b\nfunc {"})
	if _, err := Scan(root); err == nil || !strings.Contains(err.Error(), "a/b_test.go:2") {
		t.Errorf("Scan of a file that does not parse: %v, want an error naming a/b_test.go:2", err)
	}
}

func TestIsTestFunc(t *testing.T) {
	for name, want := range map[string]bool{
		"Test": true, "TestX": true, "Test_x": true, "Testing": false, "BenchmarkEncode": true,
		"FuzzDecode": true, "Example": true, "ExampleClient_Publish": true, "Examples": false, "helper": false,
	} {
		if got := isTestFunc(name); got != want {
			t.Errorf("isTestFunc(%q) = %v, want %v", name, got, want)
		}
	}
}

// fixture is a small statement list: one id in both versions with
// different meanings, a client statement, a server statement.
func fixture(t *testing.T) []Statement {
	t.Helper()
	tsv := "# a comment\nversion\tid\tsection\tbinds\ttopic\n" +
		"3.1.1\t" + id("3.1.2", "14") + "\t3.1.2.6\tclient\twill QoS never 3\n" +
		"5.0\t" + id("3.1.2", "14") + "\t3.1.2.6\tserver\twill published non-retained\n" +
		"5.0\t" + id("3.1.2", "12") + "\t3.1.2.6\tclient\twill QoS range\n" +
		"5.0\t" + id("4.3.2", "4") + "\t4.3.2\tsender/receiver\tPUBACK after ownership\n" +
		"5.0\t" + id("3.3.1", "5") + "\t3.3.1.3\tserver\tretained | replaced\n"
	stmts, err := LoadStatements(strings.NewReader(tsv), "s.tsv")
	if err != nil {
		t.Fatal(err)
	}
	return stmts
}

func TestProblems(t *testing.T) {
	stmts := fixture(t)
	reasons, err := LoadReasons(strings.NewReader("version\tid\treason\n"+
		"5.0\t"+id("4.3.2", "4")+"\tnot observable\n"+
		"5.0\t"+id("3.1.2", "12")+"\tstale: a test cites it\n"), "r.tsv", stmts)
	if err != nil {
		t.Fatal(err)
	}
	cites := []Citation{
		// Qualified to 3.1.1: covers 3.1.1 only.
		{ID: id("3.1.2", "14"), Version: V311, File: "a_test.go", Line: 1, Func: "TestWill", Kind: Test},
		{ID: id("3.1.2", "12"), File: "a_test.go", Line: 2, Func: "TestWill", Kind: Test},
		{ID: id("3.1.2", "12"), File: "a_test.go", Line: 3, Func: "TestWill", Kind: Test}, // counted once
		{ID: id("9.9.9", "9"), File: "b_test.go", Line: 7, Func: "TestX", Kind: Test},
		{ID: id("3.1.2", "12"), Version: V311, File: "b.go", Line: 8, Kind: Code}, // 5.0 only
		// A conform check covers a server statement.
		{ID: id("3.3.1", "5"), File: "conformance/c.go", Line: 4, Func: "retain", Kind: Check},
	}
	l := Build(stmts, reasons, cites)
	got := l.Problems()
	want := []string{
		"b.go:8: " + id("3.1.2", "12") + " (3.1.1) is not a normative statement of MQTT 3.1.1",
		"b_test.go:7: " + id("9.9.9", "9") + " is not a normative statement of MQTT 3.1.1 or 5.0",
		ReasonsFile + ":3: stale reason: 5.0 " + id("3.1.2", "12") + " is cited by TestWill (a_test.go:2)",
	}
	if len(got) != len(want) {
		t.Fatalf("problems %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d is %q, want it to start with %q", i, got[i], want[i])
		}
	}

	status := map[string]string{}
	for _, e := range l.Entries {
		status[e.Version+" "+e.ID] = e.Status()
	}
	for k, want := range map[string]string{
		"3.1.1 " + id("3.1.2", "14"): "covered",
		"5.0 " + id("3.1.2", "14"):   "uncovered", // the 3.1.1 citation does not count
		"5.0 " + id("3.1.2", "12"):   "covered",
		"5.0 " + id("4.3.2", "4"):    "reason",
		"5.0 " + id("3.3.1", "5"):    "covered",
	} {
		if status[k] != want {
			t.Errorf("%s is %s, want %s", k, status[k], want)
		}
	}

	// Without its reason, a client-binding statement no test cites is a
	// problem; a conform check does not cover it, being a check of a
	// broker.
	cites = append(cites, Citation{ID: id("4.3.2", "4"), File: "conformance/c.go", Line: 9, Func: "puback", Kind: Check})
	got = Build(stmts, nil, cites).Problems()
	if !slices.ContainsFunc(got, func(p string) bool {
		return strings.HasPrefix(p, "5.0 "+id("4.3.2", "4")+" (4.3.2, sender/receiver: PUBACK after ownership) binds the client but no test cites it")
	}) {
		t.Errorf("problems %q do not report the uncovered sender/receiver statement", got)
	}
	if slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, id("3.1.2", "14")) && strings.HasPrefix(p, "5.0") }) {
		t.Errorf("problems %q report a server statement", got)
	}
}

func TestLoadErrors(t *testing.T) {
	const header = "version\tid\tsection\tbinds\ttopic\n"
	row := func(v, i, b string) string { return v + "\t" + i + "\t1.2\t" + b + "\tt\n" }
	for _, c := range []struct{ name, tsv, want string }{
		{"no header", row(V5, id("1.2.3", "1"), "client"), "s.tsv:1: header"},
		{"columns", header + "5.0\tx\n", "s.tsv:2: 2 columns, want 5"},
		{"version", header + row("4.0", id("1.2.3", "1"), "client"), `s.tsv:2: unknown version "4.0"`},
		{"binds", header + row(V5, id("1.2.3", "1"), "broker"), `s.tsv:2: unknown binds value "broker"`},
		{"id", header + row(V5, "MQTT-1", "client"), `s.tsv:2: id "MQTT-1" is not of the form`},
		{"repeat", header + row(V5, id("1.2.3", "1"), "client") + row(V5, id("1.2.3", "1"), "server"), "s.tsv:3: 5.0 " + id("1.2.3", "1") + " repeats line 2"},
		{"empty", header, "s.tsv: no statements"},
	} {
		_, err := LoadStatements(strings.NewReader(c.tsv), "s.tsv")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}

	stmts := fixture(t)
	for _, c := range []struct{ name, tsv, want string }{
		{"unknown", "version\tid\treason\n5.0\t" + id("1.1.1", "1") + "\tr\n", "r.tsv:2: 5.0 " + id("1.1.1", "1") + " is not a statement"},
		{"wrong version", "version\tid\treason\n3.1.1\t" + id("3.1.2", "12") + "\tr\n", "is not a statement"},
		{"empty reason", "version\tid\treason\n5.0\t" + id("3.1.2", "12") + "\t \n", "empty reason"},
		{"repeat", "version\tid\treason\n5.0\t" + id("3.1.2", "12") + "\tr\n5.0\t" + id("3.1.2", "12") + "\tr\n", "r.tsv:3: 5.0 " + id("3.1.2", "12") + " repeats line 2"},
	} {
		_, err := LoadReasons(strings.NewReader(c.tsv), "r.tsv", stmts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestMarkdown(t *testing.T) {
	stmts := fixture(t)
	var cites []Citation
	for i := range 7 {
		cites = append(cites, Citation{ID: id("3.1.2", "12"), File: "s/x_test.go", Line: 10 + i, Func: fmt.Sprintf("Test%d", i), Kind: Test})
	}
	cites = append(cites,
		Citation{ID: id("3.1.2", "14"), Version: V311, File: "c/t_test.go", Line: 3, Func: "TestA", Via: "cases", Kind: Test},
		Citation{ID: id("3.3.1", "5"), File: "conformance/c.go", Line: 4, Func: "retain-replace", Kind: Check},
		Citation{ID: id("3.1.2", "12"), File: "c/a.go", Line: 1, Kind: Code},
		Citation{ID: id("3.1.2", "12"), File: "c/b.go", Line: 2, Kind: Code},
		Citation{ID: id("3.1.2", "12"), File: "c/c.go", Line: 3, Kind: Code},
	)
	reasons := []Reason{{Version: V5, ID: id("4.3.2", "4"), Text: "a | b", Line: 2}}
	md := string(Build(stmts, reasons, cites).Markdown())
	for _, want := range []string{
		"| 3.1.1 | client | 1 | 1 | 0 | 0 |\n",
		"| **3.1.1** | **all** | **1** | **1** | **0** | **0** |\n",
		"| 5.0 | client | 1 | 1 | 0 | 0 |\n| 5.0 | sender/receiver | 1 | 0 | 1 | 0 |\n| 5.0 | server | 2 | 1 | 0 | 1 |\n",
		"| **5.0** | **all** | **4** | **2** | **1** | **1** |\n",
		"| " + id("3.1.2", "14") + " | §3.1.2.6 | client | will QoS never 3 | [TestA](c/t_test.go#L3) via cases |  |  |\n",
		"[Test0](s/x_test.go#L10), [Test1](s/x_test.go#L11), [Test2](s/x_test.go#L12), [Test3](s/x_test.go#L13), [Test4](s/x_test.go#L14), +2 more | [c/a.go:1](c/a.go#L1), [c/b.go:2](c/b.go#L2), +1 more |  |\n",
		"| retained \\| replaced | conform [retain-replace](conformance/c.go#L4) |",
		"| PUBACK after ownership |  |  | a \\| b |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if i, j := strings.Index(md, "## MQTT 3.1.1"), strings.Index(md, "## MQTT 5.0"); i < 0 || j < i {
		t.Errorf("version sections missing or out of order:\n%s", md)
	}
}
