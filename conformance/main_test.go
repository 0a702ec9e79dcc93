package conformance_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a Peer's reader goroutine outlives its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
