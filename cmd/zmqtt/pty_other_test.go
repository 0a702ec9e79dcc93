//go:build !linux

package main

import (
	"errors"
	"os"
)

// openPTY is implemented for Linux only, where the tests run.
func openPTY() (master, slave *os.File, err error) {
	return nil, nil, errors.New("the pseudo-terminal test is written for Linux (/dev/ptmx)")
}
