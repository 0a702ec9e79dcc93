// Command ledger writes CONFORMANCE.md, the ledger of the normative
// statements of MQTT 3.1.1 and 5.0 and the tests that cite them (see
// package internal/ledger). `make ledger` runs it from the repository root.
//
// Usage:
//
//	go run ./internal/ledger/cmd/ledger [-root dir] [-o file]
//
// It writes the file, then lists on stderr what the ledger's test would
// fail on (citations of unknown ids, statements that bind the client with
// neither a test nor a reason, stale reasons) and exits with status 1 when
// there is any; status 2 when an input cannot be read.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zmqtt/zmqtt-go/internal/ledger"
)

func main() {
	root := flag.String("root", "", "repository root (default: the nearest parent of the working directory with the module's go.mod)")
	out := flag.String("o", "", "output file (default: CONFORMANCE.md at the root)")
	flag.Parse()
	if err := run(*root, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ledger:", err)
		os.Exit(2)
	}
}

func run(root, out string) error {
	if root == "" {
		var err error
		if root, err = ledger.FindRoot("."); err != nil {
			return err
		}
	}
	if out == "" {
		out = filepath.Join(root, ledger.OutputFile)
	}
	l, md, err := ledger.Generate(root)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, md, 0o644); err != nil {
		return err
	}
	problems := l.Problems()
	var covered, reasons int
	for _, e := range l.Entries {
		switch e.Status() {
		case "covered":
			covered++
		case "reason":
			reasons++
		}
	}
	fmt.Fprintf(os.Stderr, "ledger: wrote %s: %d statements, %d covered, %d with a reason, %d problems\n", out, len(l.Entries), covered, reasons, len(problems))
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	return nil
}
