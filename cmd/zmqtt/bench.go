package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// group runs goroutines and keeps the first error; it cancels ctx when one
// fails.
type group struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{cancel: cancel}, ctx
}

func (g *group) Go(fn func() error) {
	g.wg.Go(func() {
		if err := fn(); err != nil {
			g.mu.Lock()
			if g.err == nil {
				g.err = err
				g.cancel()
			}
			g.mu.Unlock()
		}
	})
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

func cmdBench(ctx context.Context, args []string, e *env) error {
	s := newOptSet("bench", "[-pubs N] [-subs N] [-count N] [-size B] [options]",
		"Measure publish/subscribe throughput and latency through a broker.")
	var cf common
	pubs, subs, count, size, topic := new(1), new(1), new(10000), new(64), new("zmqtt/bench")
	s.int(pubs, "N", "number of publishers (default 1)", 1, 1<<20, "-pubs", "--pubs")
	s.int(subs, "N", "number of subscribers (default 1)", 0, 1<<20, "-subs", "--subs")
	s.int(count, "N", "messages per publisher (default 10000)", 1, 1<<40, "-count", "--count")
	s.int(size, "BYTES", "payload size in bytes, at least 16 (default 64)", 0, 1<<28, "-size", "--size")
	s.str(topic, "PREFIX", "topic prefix (default zmqtt/bench)", "-t", "--topic")
	cf.register(s, "311")
	if err := parseCommand(s, &cf, args, e); err != nil {
		return err
	}
	stdout := e.stdout
	if *pubs < 1 || *subs < 0 || *count < 1 || *size < 16 {
		return usagef("bench needs -pubs >= 1, -subs >= 0, -count >= 1, -size >= 16")
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	filter := *topic + "/" + run + "/#"
	total := int64(*pubs) * int64(*count)

	// Subscribers first, so that no message is published before they listen.
	var received atomic.Int64
	var latMu sync.Mutex
	var lat []time.Duration
	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	g, gctx := newGroup(subCtx)
	ready := make(chan error, *subs)
	for i := 0; i < *subs; i++ {
		g.Go(func() error {
			c, err := cf.connect(gctx, e, dialOpts{})
			if err != nil {
				ready <- err
				return err
			}
			defer c.close(false)
			sub, err := c.subscribe(gctx, []string{filter}, cf.qos, subOpts{})
			ready <- err
			if err != nil {
				return err
			}
			local := make([]time.Duration, 0, total)
			for n := int64(0); n < total; n++ {
				m, err := sub.Next(gctx)
				if err != nil {
					break
				}
				sent := int64(binary.BigEndian.Uint64(m.Payload))
				local = append(local, time.Duration(time.Now().UnixNano()-sent))
				received.Add(1)
			}
			latMu.Lock()
			lat = append(lat, local...)
			latMu.Unlock()
			return nil
		})
	}
	for i := 0; i < *subs; i++ {
		if err := <-ready; err != nil {
			return err
		}
	}

	tty := isTerminal(stdout)
	start := time.Now()
	var sent atomic.Int64
	progressDone := make(chan struct{})
	if tty {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-progressDone:
					return
				case <-t.C:
					fmt.Fprintf(stdout, "\rsent %d/%d  received %d/%d", sent.Load(), total, received.Load(), total*int64(*subs))
				}
			}
		}()
	}
	pg, pctx := newGroup(ctx)
	for i := 0; i < *pubs; i++ {
		pg.Go(func() error {
			c, err := cf.connect(pctx, e, dialOpts{})
			if err != nil {
				return err
			}
			defer c.close(false)
			payload := make([]byte, *size)
			t := *topic + "/" + run + "/" + strconv.Itoa(i)
			for n := 0; n < *count; n++ {
				binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
				if err := c.publish(pctx, t, payload, cf.qos, false); err != nil {
					return err
				}
				sent.Add(1)
			}
			return nil
		})
	}
	perr := pg.Wait()
	pubElapsed := time.Since(start)
	// Wait for the subscribers (QoS 0 messages may be lost: stop after a
	// quiet second).
	if *subs > 0 {
		for last, quiet := received.Load(), 0; received.Load() < total*int64(*subs) && quiet < 10; {
			time.Sleep(100 * time.Millisecond)
			if now := received.Load(); now == last {
				quiet++
			} else {
				last, quiet = now, 0
			}
		}
	}
	stopSubs()
	g.Wait()
	close(progressDone)
	if tty {
		fmt.Fprint(stdout, "\r\033[K")
	}
	if perr != nil {
		return perr
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "published %d messages of %d B at QoS %d in %v: %.0f msg/s\n",
		total, *size, cf.qos, pubElapsed.Round(time.Millisecond), float64(total)/pubElapsed.Seconds())
	if *subs > 0 {
		got := received.Load()
		fmt.Fprintf(stdout, "received %d of %d (%d subscribers) in %v: %.0f msg/s\n",
			got, total*int64(*subs), *subs, elapsed.Round(time.Millisecond), float64(got)/elapsed.Seconds())
		slices.Sort(lat)
		if len(lat) > 0 {
			p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
			fmt.Fprintf(stdout, "latency p50 %v  p90 %v  p99 %v  max %v\n", p(0.5), p(0.9), p(0.99), lat[len(lat)-1])
		}
	}
	return nil
}
