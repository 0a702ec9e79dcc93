package ledger

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// idRE matches a statement id. Besides the usual MQTT-<section>-<n> it
// takes the two odd spellings of Appendix B of 3.1.1, with a dot for the
// last dash (section 3.1.2, statement 7) and with a dash for the second dot
// (section 3.8.3, statement 4), which a narrower pattern would cut short.
var idRE = regexp.MustCompile(`MQTT-[0-9]+(?:[.-][0-9]+)+`)

// qualRE matches a version qualifier right after an id: an id followed by
// " (3.1.1)", with or without its closing bracket between, cites the
// statement of 3.1.1 only. The qualifier may start the next line of a //
// comment.
var qualRE = regexp.MustCompile(`^\]?(?:[ \t]*\r?\n[ \t]*//)?[ \t]?\((3\.1\.1|5\.0)\)`)

// Kind says what a citation is evidence of.
type Kind int

const (
	// Test is a citation in a _test.go file: a test that checks the
	// statement.
	Test Kind = iota
	// Check is a citation in a string of a non-test file of the
	// conformance/ tree: a `zmqtt conform` check, or a script step, that
	// checks the statement against a peer.
	Check
	// Code is any other citation: the code that implements the statement
	// or says why it behaves as it does.
	Code
)

// String returns "test", "check" or "code".
func (k Kind) String() string {
	switch k {
	case Test:
		return "test"
	case Check:
		return "check"
	case Code:
		return "code"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Citation is one occurrence of a statement id in the repository's Go
// files.
type Citation struct {
	ID      string // as written, MQTT-<section>-<n>
	Version string // V311 or V5 when qualified, "" for every version with the id
	File    string // slash-separated, relative to the root scanned
	Line    int
	// Func names what cites: for a test, the Test, Benchmark, Fuzz or
	// Example function (a citation in a helper or a table counts for each
	// test function that uses it); for a check, its Name or its function;
	// otherwise the enclosing function, method or declaration. Empty for a
	// comment outside any declaration.
	Func string
	// Via names the helper or table of a test file that holds the
	// citation, when Func is a test function that uses it.
	Via  string
	Kind Kind
}

// Pos returns "file:line".
func (c Citation) Pos() string { return fmt.Sprintf("%s:%d", c.File, c.Line) }

// Scan reads every .go file under root, skipping directories named
// testdata or vendor and those whose name starts with '.' or '_' (as the go
// command does), and returns the citations it finds, sorted by file and
// line. It returns an error when a directory cannot be read or a Go file
// does not parse.
func Scan(root string) ([]Citation, error) {
	dirs := map[string][]string{} // slash dir -> file names
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		dirs[path.Dir(rel)] = append(dirs[path.Dir(rel)], path.Base(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Citation
	for dir, names := range dirs {
		files := map[string][]byte{}
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path.Join(dir, n))))
			if err != nil {
				return nil, err
			}
			files[path.Join(dir, n)] = b
		}
		cs, err := ScanDir(files)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	sortCitations(out)
	return out, nil
}

func sortCitations(cs []Citation) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Func != b.Func {
			return a.Func < b.Func
		}
		return a.Via < b.Via
	})
}

// decl is a top-level declaration of a test file, as a node of the graph
// that leads a citation in a helper or a table to the tests using it.
type decl struct {
	file       string
	start, end int      // byte offsets, the doc comment included
	names      []string // what other declarations refer to it by
	specs      []spec   // for a var, const or type block: its specs
	refs       map[string]bool
	test       bool     // a Test, Benchmark, Fuzz or Example function
	recv       string   // for a method: its receiver's type name
	results    []string // for a function: the names in its result types
	types      []string // for a type declaration: the types it declares
}

type spec struct {
	start, end int
	names      []string
}

// ScanDir finds the citations in the Go files of one directory, given as
// slash paths (relative to the repository root) mapped to their contents.
// Test files of a directory are read together, so that a citation in a
// helper or a table is credited to the test functions that use it,
// directly or through other helpers. It returns an error when a file does
// not parse.
func ScanDir(files map[string][]byte) ([]Citation, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)

	type parsed struct {
		name string
		src  []byte
		f    *ast.File
		fset *token.FileSet
	}
	var tests, others []parsed
	for _, n := range names {
		src := files[n]
		if !idRE.Match(src) && !strings.HasSuffix(n, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, n, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		p := parsed{n, src, f, fset}
		if strings.HasSuffix(n, "_test.go") {
			tests = append(tests, p)
		} else {
			others = append(others, p)
		}
	}

	var out []Citation

	// Test files: the declarations and who uses whom.
	var decls []*decl
	for _, p := range tests {
		for _, d := range topDecls(p.fset, p.f) {
			d.file = p.name
			decls = append(decls, d)
		}
	}
	usersOf := map[string][]*decl{} // name -> declarations that refer to it
	typeNames := map[string]bool{}
	results := map[string][]string{} // function -> type names in its results
	for _, d := range decls {
		for r := range d.refs {
			usersOf[r] = append(usersOf[r], d)
		}
		for _, t := range d.types {
			typeNames[t] = true
		}
		if d.recv == "" && len(d.results) > 0 {
			results[d.names[0]] = append(results[d.names[0]], d.results...)
		}
	}
	// touches reports whether u works with values of type t: it names t,
	// or calls a function that returns one.
	touches := func(u *decl, t string) bool {
		if u.refs[t] {
			return true
		}
		for r := range u.refs {
			if slices.Contains(results[r], t) {
				return true
			}
		}
		return false
	}
	// testsUsing returns the test functions that use one of names, directly
	// or through other declarations; self, the declaration that holds the
	// names, does not count as a user. Names are matched without types, so
	// a method (recv set) counts as used only by declarations that work
	// with its receiver type: the method fail of a model type is not used
	// by every test that calls some other fail.
	type item struct{ name, recv string }
	testsUsing := func(names []string, recv string, self *decl) []string {
		var found []string
		seen := map[*decl]bool{self: true}
		var queue []item
		for _, n := range names {
			queue = append(queue, item{n, recv})
		}
		for len(queue) > 0 {
			it := queue[0]
			queue = queue[1:]
			for _, u := range usersOf[it.name] {
				if seen[u] || it.recv != "" && typeNames[it.recv] && !touches(u, it.recv) {
					continue
				}
				seen[u] = true
				if u.test {
					found = append(found, u.names[0])
					continue
				}
				for _, n := range u.names {
					queue = append(queue, item{n, u.recv})
				}
			}
		}
		slices.Sort(found)
		return slices.Compact(found)
	}
	for _, p := range tests {
		lines := lineStarts(p.src)
		for _, m := range matches(p.src) {
			var in *decl
			for _, d := range decls {
				if d.file == p.name && d.start <= m.off && m.off < d.end {
					in = d
					break
				}
			}
			var funcs []string
			via := ""
			switch {
			case in == nil:
				// A comment outside any declaration, such as one on
				// what a file tests: the file's test function if it
				// has exactly one.
				funcs = []string{""}
				var only []string
				for _, d := range decls {
					if d.file == p.name && d.test {
						only = append(only, d.names[0])
					}
				}
				if len(only) == 1 {
					funcs = only
				}
			case in.test:
				funcs = in.names[:1]
			default:
				names := in.names
				for _, s := range in.specs {
					if s.start <= m.off && m.off < s.end {
						names = s.names
						break
					}
				}
				funcs = testsUsing(names, in.recv, in)
				via = names[0]
				if in.recv != "" {
					via = in.recv + "." + via
				}
				if len(funcs) == 0 {
					funcs, via = []string{via}, ""
				}
			}
			for _, fn := range funcs {
				out = append(out, Citation{ID: m.id, Version: m.version, File: p.name, Line: lineOf(lines, m.off), Func: fn, Via: via, Kind: Test})
			}
		}
	}

	// Other files: checks under conformance/, code elsewhere.
	for _, p := range others {
		lines := lineStarts(p.src)
		check := strings.HasPrefix(p.name, "conformance/")
		var lits []ast.Node // string literals, innermost last
		var named []namedLit
		if check {
			lits, named = stringLits(p.f, p.fset)
		}
		for _, m := range matches(p.src) {
			kind := Code
			fn := enclosing(p.fset, p.f, m.off)
			if check && inString(p.fset, lits, m.off) {
				kind = Check
				if n := innermostName(named, m.off); n != "" {
					fn = n
				}
			}
			out = append(out, Citation{ID: m.id, Version: m.version, File: p.name, Line: lineOf(lines, m.off), Func: fn, Kind: kind})
		}
	}
	sortCitations(out)
	return slices.Compact(out), nil
}

type match struct {
	id, version string
	off         int
}

// matches returns the ids in src with their qualifiers and offsets.
func matches(src []byte) []match {
	var out []match
	for _, loc := range idRE.FindAllIndex(src, -1) {
		// An id glued to a preceding letter or digit is not a citation;
		// one after a bracket, quote or space is.
		if loc[0] > 0 {
			if r, _ := utf8.DecodeLastRune(src[:loc[0]]); unicode.IsLetter(r) || unicode.IsDigit(r) {
				continue
			}
		}
		m := match{id: string(src[loc[0]:loc[1]]), off: loc[0]}
		if q := qualRE.FindSubmatch(src[loc[1]:]); q != nil {
			m.version = string(q[1])
		}
		out = append(out, m)
	}
	return out
}

func lineStarts(src []byte) []int {
	starts := []int{0}
	for i, b := range src {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

func lineOf(starts []int, off int) int {
	i, found := slices.BinarySearch(starts, off)
	if found {
		return i + 1
	}
	return i
}

func offset(fset *token.FileSet, p token.Pos) int { return fset.Position(p).Offset }

// isTestFunc reports whether name is that of a function the go command
// runs: Test, Benchmark, Fuzz or Example, followed by nothing or by a
// character that is not a lower-case letter.
func isTestFunc(name string) bool {
	for _, prefix := range []string{"Test", "Benchmark", "Fuzz", "Example"} {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			if rest == "" {
				return true
			}
			r, _ := utf8.DecodeRuneInString(rest)
			return !unicode.IsLower(r)
		}
	}
	return false
}

// topDecls lists the top-level declarations of a test file.
func topDecls(fset *token.FileSet, f *ast.File) []*decl {
	var out []*decl
	for _, d := range f.Decls {
		x := &decl{refs: map[string]bool{}}
		var doc *ast.CommentGroup
		switch d := d.(type) {
		case *ast.FuncDecl:
			doc = d.Doc
			x.names = []string{d.Name.Name}
			x.test = d.Recv == nil && isTestFunc(d.Name.Name)
			if d.Recv != nil && len(d.Recv.List) > 0 {
				x.recv = recvName(d.Recv.List[0].Type)
			}
			if d.Type.Results != nil {
				ast.Inspect(d.Type.Results, func(n ast.Node) bool {
					if id, ok := n.(*ast.Ident); ok {
						x.results = append(x.results, id.Name)
					}
					return true
				})
			}
		case *ast.GenDecl:
			doc = d.Doc
			for _, s := range d.Specs {
				var sp spec
				sp.start, sp.end = offset(fset, s.Pos()), offset(fset, s.End())
				switch s := s.(type) {
				case *ast.ValueSpec:
					if s.Doc != nil {
						sp.start = offset(fset, s.Doc.Pos())
					}
					for _, n := range s.Names {
						sp.names = append(sp.names, n.Name)
					}
				case *ast.TypeSpec:
					if s.Doc != nil {
						sp.start = offset(fset, s.Doc.Pos())
					}
					sp.names = []string{s.Name.Name}
					x.types = append(x.types, s.Name.Name)
				default:
					continue // imports
				}
				x.names = append(x.names, sp.names...)
				x.specs = append(x.specs, sp)
			}
			if len(x.names) == 0 {
				continue
			}
		default:
			continue
		}
		x.start, x.end = offset(fset, d.Pos()), offset(fset, d.End())
		if doc != nil {
			x.start = offset(fset, doc.Pos())
		}
		ast.Inspect(d, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				x.refs[id.Name] = true
			}
			return true
		})
		out = append(out, x)
	}
	return out
}

// enclosing names the top-level declaration that holds offset off: a
// function, a method as Type.Method, or the first name of a var, const or
// type spec; "" when there is none.
func enclosing(fset *token.FileSet, f *ast.File, off int) string {
	for _, d := range f.Decls {
		start, end := offset(fset, d.Pos()), offset(fset, d.End())
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Doc != nil {
				start = offset(fset, d.Doc.Pos())
			}
			if off < start || off >= end {
				continue
			}
			if d.Recv != nil && len(d.Recv.List) > 0 {
				return recvName(d.Recv.List[0].Type) + "." + d.Name.Name
			}
			return d.Name.Name
		case *ast.GenDecl:
			if d.Doc != nil {
				start = offset(fset, d.Doc.Pos())
			}
			if off < start || off >= end {
				continue
			}
			var first string
			for _, s := range d.Specs {
				var names []string
				switch s := s.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names = append(names, n.Name)
					}
				case *ast.TypeSpec:
					names = []string{s.Name.Name}
				}
				if len(names) == 0 {
					continue
				}
				if first == "" {
					first = names[0]
				}
				if offset(fset, s.Pos()) <= off && off < offset(fset, s.End()) {
					return names[0]
				}
			}
			return first
		}
	}
	return ""
}

func recvName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return recvName(e.X)
	case *ast.IndexExpr:
		return recvName(e.X)
	case *ast.IndexListExpr:
		return recvName(e.X)
	case *ast.Ident:
		return e.Name
	}
	return "?"
}

// namedLit is a composite literal with a Name: "..." field, such as an
// entry of a catalogue of checks.
type namedLit struct {
	start, end int
	name       string
}

// stringLits returns the string literals of a file and its composite
// literals that carry a string Name field.
func stringLits(f *ast.File, fset *token.FileSet) ([]ast.Node, []namedLit) {
	var lits []ast.Node
	var named []namedLit
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind == token.STRING {
				lits = append(lits, n)
			}
		case *ast.CompositeLit:
			for _, e := range n.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				k, ok := kv.Key.(*ast.Ident)
				if !ok || k.Name != "Name" {
					continue
				}
				v, ok := kv.Value.(*ast.BasicLit)
				if !ok || v.Kind != token.STRING {
					continue
				}
				s := strings.Trim(v.Value, "`\"")
				named = append(named, namedLit{offset(fset, n.Pos()), offset(fset, n.End()), s})
			}
		}
		return true
	})
	return lits, named
}

func inString(fset *token.FileSet, lits []ast.Node, off int) bool {
	for _, l := range lits {
		if offset(fset, l.Pos()) <= off && off < offset(fset, l.End()) {
			return true
		}
	}
	return false
}

// innermostName returns the Name of the smallest named composite literal
// that holds off.
func innermostName(named []namedLit, off int) string {
	best, size := "", -1
	for _, n := range named {
		if n.start <= off && off < n.end && (size < 0 || n.end-n.start < size) {
			best, size = n.name, n.end-n.start
		}
	}
	return best
}
