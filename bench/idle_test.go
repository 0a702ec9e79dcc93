package bench

// Memory of idle connected clients, side by side:
//
//	BenchmarkIdleMemory   500 clients of each library connect to a private
//	                      Mosquitto, subscribe to one filter each and sit
//	                      idle (their keep alive running) until this
//	                      process's goroutine count has been steady for
//	                      quietFor. Reported per client: heap (live
//	                      bytes after a GC) plus goroutine stacks, and
//	                      goroutines.
//	BenchmarkManyClients  10,000 clients in this process against one
//	                      private Mosquitto (max_connections raised, file
//	                      limit raised to the hard limit), zmqtt on both
//	                      versions and paho.mqtt.golang: the process's
//	                      resident set with all of them connected and
//	                      subscribed and quiet for quietFor, their keep
//	                      alive running.
//
// A zmqtt subscriber counts the goroutine that consumes its subscription
// (Next in a loop), since a program needs one to receive; the Paho clients
// deliver through callbacks on their own goroutines.

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

var (
	idleClients = flag.Int("idle.clients", 500, "clients per library in BenchmarkIdleMemory")
	manyClients = flag.Int("many.clients", 10000, "clients in BenchmarkManyClients")
	idleProfile = flag.String("idle.heapprofile", "", "write a heap profile here while BenchmarkIdleMemory's clients are connected")
)

// memNow is the heap in use and the goroutine stacks after a full GC.
func memNow() (heap, stacks uint64, goroutines int) {
	for range 6 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse, runtime.NumGoroutine()
}

func BenchmarkIdleMemory(b *testing.B) {
	br := sharedBroker(b)
	for _, im := range impls {
		if im.async || strings.Contains(im.name, "-") {
			continue // the same client as impl=zmqtt
		}
		b.Run(fmt.Sprintf("v=%v/impl=%s", im.v, im.name), func(b *testing.B) {
			for range b.N {
				idle(b, br, im, *idleClients)
			}
		})
	}
}

func idle(b *testing.B, br *brokertest.Broker, im impl, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := strconv.FormatInt(runID.Add(1), 10)
	h0, s0, g0 := memNow()
	cs := make([]endpointClient, 0, n)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for i := range n {
		c, err := im.dial(ctx, br.URL(brokertest.MQTT), fmt.Sprintf("idle-%s-%d", id, i))
		if err != nil {
			b.Fatalf("client %d: %v", i, err)
		}
		cs = append(cs, c)
		if err := c.subscribe(ctx, fmt.Sprintf("idle/%s/%d", id, i), 1, func() {}); err != nil {
			b.Fatalf("client %d subscribe: %v", i, err)
		}
	}
	if err := settle(ctx); err != nil {
		b.Fatal(err)
	}
	h1, s1, g1 := memNow()
	if *idleProfile != "" {
		f, err := os.Create(*idleProfile)
		if err != nil {
			b.Fatal(err)
		}
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	per := float64(int64(h1+s1)-int64(h0+s0)) / float64(n)
	b.ReportMetric(per/1024, "KiB/client")
	b.ReportMetric(float64(int64(h1)-int64(h0))/float64(n)/1024, "heap-KiB/client")
	b.ReportMetric(float64(int64(s1)-int64(s0))/float64(n)/1024, "stack-KiB/client")
	b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/client")
	b.ReportMetric(0, "ns/op")
}

// quietFor is how long the clients must have been quiet before their
// memory is measured: idle means no traffic but keep alive for a while.
// zmqtt's loop goroutine exits after 100 ms without work; the Paho
// clients keep every goroutine.
const quietFor = 2 * time.Second

// settle returns once this process's goroutine count has not changed for
// quietFor, so that goroutines that exit on idle have done so.
func settle(ctx context.Context) error {
	tick := time.NewTicker(quietFor / 8)
	defer tick.Stop()
	last, since := runtime.NumGoroutine(), time.Now()
	for time.Since(since) < quietFor {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("goroutines did not settle: %w", ctx.Err())
		}
		if g := runtime.NumGoroutine(); g != last {
			last, since = g, time.Now()
		}
	}
	return nil
}

// rssKiB is this process's resident set (VmRSS) in KiB.
func rssKiB() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// raiseFileLimit sets the soft limit on open files to the hard limit, for
// this process and the broker it starts.
func raiseFileLimit(b *testing.B, need uint64) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		b.Fatal(err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		b.Fatal(err)
	}
	if l.Cur < need {
		b.Fatalf("open-file limit %d is below the %d this run needs: raise the hard limit (ulimit -Hn)", l.Cur, need)
	}
}

func BenchmarkManyClients(b *testing.B) {
	n := *manyClients
	raiseFileLimit(b, uint64(n)+256)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	br, err := brokertest.Launch(ctx, brokertest.Config{Extra: []string{"max_connections -1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	// paho.golang is left out: at about 520 KiB per idle client (see
	// BenchmarkIdleMemory) 10,000 of them need 5 GiB.
	for _, im := range []impl{
		{name: "zmqtt", v: codec.V311, dial: dialZmqtt311},
		{name: "zmqtt", v: codec.V5, dial: dialZmqtt5},
		{name: "paho.mqtt.golang", v: codec.V311, dial: dialPahoV3},
	} {
		b.Run(fmt.Sprintf("v=%v/impl=%s/clients=%d", im.v, im.name, n), func(b *testing.B) {
			for range b.N {
				many(b, ctx, br, im, n)
			}
		})
	}
}

func many(b *testing.B, ctx context.Context, br *brokertest.Broker, im impl, n int) {
	id := strconv.FormatInt(runID.Add(1), 10)
	r0, err := rssKiB()
	if err != nil {
		b.Fatal(err)
	}
	h0, s0, _ := memNow()
	cs := make([]endpointClient, 0, n)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for i := range n {
		c, err := im.dial(ctx, br.URL(brokertest.MQTT), fmt.Sprintf("many-%s-%d", id, i))
		if err != nil {
			b.Fatalf("client %d: %v", i, err)
		}
		cs = append(cs, c)
		if err := c.subscribe(ctx, fmt.Sprintf("many/%s/%d", id, i), 1, func() {}); err != nil {
			b.Fatalf("client %d subscribe: %v", i, err)
		}
	}
	if err := settle(ctx); err != nil {
		b.Fatal(err)
	}
	h1, s1, _ := memNow()
	r1, err := rssKiB()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(r1)/1024, "RSS-MiB")
	b.ReportMetric(float64(r1-r0)/1024, "RSS-growth-MiB")
	b.ReportMetric(float64(int64(h1+s1)-int64(h0+s0))/float64(n)/1024, "KiB/client")
	b.ReportMetric(0, "ns/op")
}
