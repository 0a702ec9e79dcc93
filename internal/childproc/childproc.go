// Package childproc holds what the broker helpers (the public mqtttest,
// and brokertest's NATS cluster) share about the processes they start:
// where to find a binary, and the attributes that tie a child's life to
// the test process.
package childproc

import (
	"os"
	"os/exec"
)

// Find looks name up on PATH, then at the given paths (sbin directories
// are often not on a user's PATH); it returns the first it finds, or
// missing when none has it.
func Find(name string, missing error, paths ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", missing
}
