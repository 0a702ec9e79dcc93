package mqtttest_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/zmqtt/zmqtt-go/mqtttest"
)

// orphanHelperEnv makes the test binary run orphanHelper instead of the
// tests.
const orphanHelperEnv = "MQTTTEST_ORPHAN_HELPER"

// orphanHelper starts a broker with Launch, prints the broker's PID and
// the two directories Launch made ("<pid> <dir> <socket dir>"), and blocks
// until its stdin closes; the test kills it before that.
func orphanHelper() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := mqtttest.Launch(ctx)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	defer b.Close()
	fmt.Printf("%d %s %s\n", b.PID(), b.Dir(), filepath.Dir(b.Addr(mqtttest.Unix)))
	bufio.NewReader(os.Stdin).ReadString('\n')
}
