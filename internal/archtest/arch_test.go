// Package archtest holds the architecture test of zmqtt-go.
//
// POLICY: change the tables below only with a design note in DESIGN.md,
// never to make a build pass. Layers import only downward (DESIGN.md
// section 1); session is a pure state machine without I/O, clock,
// randomness or goroutines. The public test kit mqtttest, which DESIGN.md
// predates, is described in DESIGN-NOTES.md ("mqtttest"): it imports
// nothing of the SDK, and the SDK layers never import it.
package archtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const module = "github.com/zmqtt/zmqtt-go"

// allowed lists, for each layer, the packages of this module its non-test
// code may import. A layer not listed here may import nothing of ours.
var allowed = map[string][]string{
	"codec":     {},
	"transport": {},
	"session":   {"codec"},
	"client":    {"session", "transport", "codec"},
	"reqresp":   {"client", "codec"},
	"fuzz":      {"codec", "session"},
	"mqtttest":  {},
}

// internalFor lists, for each layer outside internal/ and cmd/, the
// internal packages its non-test code may import. mqtttest is a public
// test kit and shares the process helpers with brokertest's NATS cluster;
// nothing else outside internal/ and cmd/ imports internal/.
var internalFor = map[string][]string{
	"mqtttest": {"internal/childproc"},
}

// sdkLayers are the layers a user's program links: their non-test code
// must never import the test kit mqtttest (which imports testing and
// starts processes).
var sdkLayers = []string{"codec", "transport", "session", "client", "reqresp"}

// forbiddenStd lists standard library packages a package must not import,
// keyed by its path in the module. The keys are packages, not layers:
// session/filestore is the session layer's I/O adapter and may use os.
var forbiddenStd = map[string][]string{
	"codec":   {"net", "net/http", "os", "os/exec", "crypto/rand", "math/rand", "math/rand/v2", "log", "log/slog"},
	"session": {"net", "net/http", "os", "os/exec", "crypto/rand", "math/rand", "math/rand/v2", "io/fs", "log"},
}

// testOnly are modules that only tests may import.
var testOnly = []string{"github.com/eclipse/paho.golang", "github.com/eclipse/paho.mqtt.golang", "pgregory.net/rapid", "github.com/google/go-cmp", "go.uber.org/goleak"}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-json", module+"/...")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// layer returns the top-level directory of an import path of this module.
func layer(path string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
	top, _, _ := strings.Cut(rel, "/")
	return top
}

func TestArchitecture(t *testing.T) {
	pkgs := listPackages(t)
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
	for _, p := range pkgs {
		if p.ImportPath == module+"/session" {
			for _, v := range impureSession(p) {
				t.Error(v)
			}
		}
	}
}

// violations applies the import policy to a package list.
func violations(pkgs []pkg) []string {
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	seen := map[string]bool{}
	for _, p := range pkgs {
		from := layer(p.ImportPath)
		seen[from] = true
		for _, imp := range p.Imports {
			for _, m := range testOnly {
				if imp == m || strings.HasPrefix(imp, m+"/") {
					errorf("%s imports %s, which is for tests only", p.ImportPath, imp)
				}
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
			if slices.Contains(forbiddenStd[rel], imp) {
				errorf("%s imports %s, which it must not use", p.ImportPath, imp)
			}
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := layer(imp)
			if to == from {
				continue
			}
			switch from {
			case "cmd":
				continue // the command may use any layer
			case "internal":
				if to == "cmd" {
					errorf("%s imports %s: internal helpers must not depend on the command", p.ImportPath, imp)
				}
				continue
			}
			if to == "internal" {
				if !slices.Contains(internalFor[from], strings.TrimPrefix(imp, module+"/")) {
					errorf("%s imports %s: internal/ is for tests and the command only", p.ImportPath, imp)
				}
				continue
			}
			if to == "mqtttest" && slices.Contains(sdkLayers, from) {
				errorf("%s imports %s: the test kit is for tests only, never for the SDK's own code", p.ImportPath, imp)
				continue
			}
			ok, known := allowed[from]
			if !known {
				errorf("%s is in layer %q, which the policy table does not know", p.ImportPath, from)
				continue
			}
			if !slices.Contains(ok, to) {
				errorf("%s imports %s: layer %s may import only %v", p.ImportPath, imp, from, ok)
			}
		}
	}
	if !seen["codec"] {
		errorf("the codec package is missing from the package list")
	}
	return out
}

// forbiddenCalls are package-qualified calls the session must not make:
// time comes in as an argument, randomness through its configuration.
var forbiddenCalls = map[string][]string{
	"time": {"Now", "Since", "Until", "After", "AfterFunc", "NewTimer", "NewTicker", "Sleep", "Tick"},
}

// impureSession scans the session's non-test files for go statements,
// channel types, select statements and calls that read the clock.
func impureSession(p pkg) []string {
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		path := filepath.Join(p.Dir, name)
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			errorf("parse %s: %v", path, err)
			continue
		}
		imports := map[string]string{} // local name -> path
		for _, is := range f.Imports {
			ip, _ := strconv.Unquote(is.Path.Value)
			local := filepath.Base(ip)
			if is.Name != nil {
				local = is.Name.Name
			}
			imports[local] = ip
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				errorf("%s: session starts a goroutine", fset.Position(n.Pos()))
			case *ast.ChanType:
				errorf("%s: session uses a channel", fset.Position(n.Pos()))
			case *ast.SelectStmt:
				errorf("%s: session uses select", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				id, ok := n.X.(*ast.Ident)
				if !ok {
					break
				}
				if calls, ok := forbiddenCalls[imports[id.Name]]; ok && slices.Contains(calls, n.Sel.Name) {
					errorf("%s: session calls %s.%s; time must come in as an argument", fset.Position(n.Pos()), imports[id.Name], n.Sel.Name)
				}
			}
			return true
		})
	}
	return out
}

// TestPolicyCatchesViolations feeds the policy a package list that breaks
// it, so that the test above cannot pass by checking nothing.
func TestPolicyCatchesViolations(t *testing.T) {
	bad := []pkg{
		{ImportPath: module + "/codec", Imports: []string{"io", module + "/session", "net"}},
		{ImportPath: module + "/session", Imports: []string{module + "/codec", module + "/client"}},
		{ImportPath: module + "/client", Imports: []string{"github.com/eclipse/paho.golang/packets"}},
		{ImportPath: module + "/transport", Imports: []string{module + "/internal/brokertest"}},
		{ImportPath: module + "/client", Imports: []string{module + "/mqtttest"}},
		{ImportPath: module + "/mqtttest", Imports: []string{module + "/internal/brokertest", module + "/codec"}},
	}
	got := violations(bad)
	for _, want := range []string{
		"codec imports " + module + "/session",
		"codec imports net",
		"session imports " + module + "/client",
		"paho.golang/packets, which is for tests only",
		"internal/ is for tests",
		"client imports " + module + "/mqtttest: the test kit is for tests only",
		"mqtttest imports " + module + "/internal/brokertest",
		"mqtttest imports " + module + "/codec",
	} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("policy did not report %q; got %q", want, got)
		}
	}
	if len(violations([]pkg{{ImportPath: module + "/codec", Imports: []string{"io"}}})) != 0 {
		t.Error("policy reports a clean codec")
	}
	clean := []pkg{
		{ImportPath: module + "/codec", Imports: []string{"io"}},
		{ImportPath: module + "/mqtttest", Imports: []string{"os/exec", "testing", "crypto/x509", module + "/internal/childproc"}},
		{ImportPath: module + "/internal/brokertest", Imports: []string{module + "/mqtttest"}},
		{ImportPath: module + "/cmd/zmqtt", Imports: []string{module + "/mqtttest", module + "/client"}},
	}
	if got := violations(clean); len(got) != 0 {
		t.Errorf("policy reports allowed imports of the test kit: %q", got)
	}

	dir := t.TempDir()
	src := "package session\nimport \"time\"\nfunc f() { go f(); var c chan int; _ = c; _ = time.Now() }\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got = impureSession(pkg{ImportPath: module + "/session", Dir: dir, GoFiles: []string{"bad.go"}})
	for _, want := range []string{"goroutine", "channel", "time.Now"} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("session scan did not report %q; got %q", want, got)
		}
	}
}

// TestLayerOf checks the helper that maps import paths to layers, so that a
// mistake there cannot silently disable the policy above.
func TestLayerOf(t *testing.T) {
	for path, want := range map[string]string{
		module + "/codec":               "codec",
		module + "/session":             "session",
		module + "/internal/brokertest": "internal",
		module + "/cmd/zmqtt":           "cmd",
		module + "/mqtttest":            "mqtttest",
	} {
		if got := layer(path); got != want {
			t.Errorf("layer(%q) = %q, want %q", path, got, want)
		}
	}
}
