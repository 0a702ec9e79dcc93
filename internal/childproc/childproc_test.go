package childproc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFind: PATH first, then the listed paths in order, directories
// skipped, and the caller's error when nothing is found.
func TestFind(t *testing.T) {
	dir := t.TempDir()
	onPath := filepath.Join(dir, "bin")
	if err := os.Mkdir(onPath, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(onPath, "zmqtt-find-me")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	listed := filepath.Join(dir, "sbin-tool")
	if err := os.WriteFile(listed, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onPath)
	missing := errors.New("not installed")

	if got, err := Find("zmqtt-find-me", missing, listed); err != nil || got != exe {
		t.Errorf("on PATH: Find = %q, %v; want %q", got, err, exe)
	}
	if got, err := Find("absent", missing, filepath.Join(dir, "nope"), dir, listed); err != nil || got != listed {
		t.Errorf("listed: Find = %q, %v; want %q (a directory is not a binary)", got, err, listed)
	}
	if got, err := Find("absent", missing, filepath.Join(dir, "nope"), dir); err != missing || got != "" {
		t.Errorf("nowhere: Find = %q, %v; want the caller's error", got, err)
	}
}
