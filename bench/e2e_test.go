package bench

// End-to-end benchmarks through a private Mosquitto on loopback: zmqtt's
// client beside paho.golang (MQTT 5.0) and eclipse/paho.mqtt.golang
// (3.1.1), in the same run, with the same broker, topics and flow control.
//
//	BenchmarkE2EThroughput   one publisher, one subscriber; a window of 256
//	                         messages in flight (the subscriber releases a
//	                         slot per message received), 8 publishing
//	                         goroutines (impl=zmqtt-async: one goroutine
//	                         calling PublishAsync). msg/s is messages
//	                         received per second; allocs/op counts both
//	                         clients per message.
//	BenchmarkE2EReceive      a raw publisher (pre-encoded packets, no
//	                         allocation) feeds the client under test:
//	                         allocs/op is the subscriber's cost per message.
//	BenchmarkE2ELatency      QoS 1 publish -> PUBACK, one at a time: p50 and
//	                         p99 in microseconds.
//	BenchmarkE2EFlood        the raw publisher floods QoS 0 messages with no
//	                         window to a subscriber with its library's
//	                         defaults: delivered/sent beside msg/s, so a drop
//	                         cannot hide behind a rate.
//
// With ZMQTT_BENCH_BROKER=nats, BenchmarkE2EThroughput runs through a
// private one-node NATS server instead (MQTT 3.1.1, QoS 0 and 1: what NATS
// supports), a multi-threaded broker that is not what limits the rate on
// two cores as Mosquitto is.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
)

var (
	brokerOnce sync.Once
	broker     *brokertest.Broker
	brokerErr  error

	natsOnce sync.Once
	nats     *brokertest.NATSCluster
	natsErr  error
)

// sharedBroker starts one Mosquitto for the whole run; TestMain stops it.
func sharedBroker(b *testing.B) *brokertest.Broker {
	brokerOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		broker, brokerErr = brokertest.Launch(ctx, brokertest.Config{Extra: []string{"max_inflight_messages 0", "max_queued_messages 0"}})
	})
	if brokerErr != nil {
		b.Fatal(brokerErr)
	}
	return broker
}

// e2eTarget is the broker BenchmarkE2EThroughput runs through: its MQTT
// URL, the process whose cost is metered, and what it supports.
type e2eTarget struct {
	url  string
	proc process
	// only311 and maxQoS: NATS speaks MQTT 3.1.1 alone and closes the
	// connection on a QoS 2 PUBLISH.
	only311 bool
	maxQoS  byte
}

// natsNode is node 0 of a NATS cluster as a metered process.
type natsNode struct{ c *brokertest.NATSCluster }

func (n natsNode) PID() int { return n.c.PID(0) }

// throughputTarget is the private Mosquitto, or with
// ZMQTT_BENCH_BROKER=nats a private one-node NATS server (multi-threaded,
// MQTT through JetStream), started once for the run: there the broker
// is not what limits the rate on two cores.
func throughputTarget(b *testing.B) e2eTarget {
	switch v := os.Getenv("ZMQTT_BENCH_BROKER"); v {
	case "", "mosquitto":
		br := sharedBroker(b)
		return e2eTarget{url: br.URL(brokertest.MQTT), proc: br, maxQoS: 2}
	case "nats":
		natsOnce.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			nats, natsErr = brokertest.LaunchNATSCluster(ctx, 1)
		})
		if natsErr != nil {
			b.Fatal(natsErr)
		}
		return e2eTarget{url: nats.URL(0), proc: natsNode{nats}, only311: true, maxQoS: 1}
	default:
		b.Fatalf("ZMQTT_BENCH_BROKER=%q: want mosquitto or nats", v)
		return e2eTarget{}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if broker != nil {
		broker.Close()
	}
	if nats != nil {
		nats.Close()
	}
	removeFakeServer()
	os.Exit(code)
}

// endpointClient is what the benchmarks need of a client library.
type endpointClient interface {
	publish(ctx context.Context, topic string, payload []byte, qos byte) error
	subscribe(ctx context.Context, filter string, qos byte, onMessage func()) error
	close()
}

// asyncPublisher is the optional non-blocking publish path: publishAsync
// hands the message over and returns its completion handle at once.
type asyncPublisher interface {
	publishAsync(topic string, payload []byte, qos byte) *client.Publishing
}

// defaulter is implemented by the clients that the benchmarks configure
// away from their library's defaults (zmqtt's subscription queue of 4096
// messages): useDefaults, called before subscribe, puts the defaults back.
type defaulter interface{ useDefaults() }

type impl struct {
	name string
	v    codec.Version
	dial func(ctx context.Context, url, id string) (endpointClient, error)
	// async publishes with asyncPublisher from one goroutine. Only
	// BenchmarkE2EThroughput runs such an impl: Receive and Flood measure
	// the subscriber alone (the plain zmqtt one), Latency a blocking
	// publish.
	async bool
}

var impls = []impl{
	{name: "zmqtt", v: codec.V5, dial: dialZmqtt5},
	{name: "zmqtt-observed", v: codec.V5, dial: dialZmqtt5Observed},
	{name: "zmqtt-debug", v: codec.V5, dial: dialZmqtt5Debug},
	{name: "zmqtt-async", v: codec.V5, dial: dialZmqtt5, async: true},
	{name: "paho.golang", v: codec.V5, dial: dialPaho},
	{name: "zmqtt", v: codec.V311, dial: dialZmqtt311},
	{name: "zmqtt-async", v: codec.V311, dial: dialZmqtt311, async: true},
	{name: "paho.mqtt.golang", v: codec.V311, dial: dialPahoV3},
}

// --- zmqtt ---

// subQueue is the subscription queue the benchmarks give zmqtt (its
// default is 1000), but for BenchmarkE2EFlood.
const subQueue = 4096

type zmqtt5 struct {
	c     *client.Client5
	queue int // QueueSize of the subscription; 0: the client's default
	subs  sync.WaitGroup
	stop  context.CancelFunc
}

func dialZmqtt5(ctx context.Context, url, id string) (endpointClient, error) {
	return dialZmqtt5Config(ctx, client.Config{URL: url, ClientID: id})
}

// dialZmqtt5Observed is zmqtt with an Observer doing what a metrics and
// tracing adapter does per message: count every packet by type and
// direction, set a traceparent user property on every publish, record
// every publish's duration, read every incoming message's user
// properties (impl=zmqtt-observed).
func dialZmqtt5Observed(ctx context.Context, url, id string) (endpointClient, error) {
	return dialZmqtt5Config(ctx, client.Config{URL: url, ClientID: id, Observer: benchObserver()})
}

// dialZmqtt5Debug is zmqtt with a Logger at Debug level writing text to
// io.Discard: the packet trace is formatted and thrown away
// (impl=zmqtt-debug).
func dialZmqtt5Debug(ctx context.Context, url, id string) (endpointClient, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return dialZmqtt5Config(ctx, client.Config{URL: url, ClientID: id, Logger: log})
}

// observed is what benchObserver's callbacks add up; the numbers are not
// reported, they only keep the work from being optimised away.
var observed struct {
	packets  [2][16]atomic.Uint64
	bytes    atomic.Uint64
	done     atomic.Uint64
	nanos    atomic.Int64
	userProp atomic.Uint64
}

func benchObserver() *client.Observer {
	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	span := new(int)
	return &client.Observer{
		OnPacket: func(d client.Direction, p client.PacketInfo) {
			observed.packets[d-1][p.Type&15].Add(1)
			observed.bytes.Add(uint64(p.Size))
		},
		OnPublish: func(ctx context.Context, p *client.PublishStart) any {
			p.SetUserProperty("traceparent", traceparent)
			return span
		},
		OnPublishDone: func(d client.PublishDone) {
			observed.done.Add(1)
			observed.nanos.Add(int64(d.Duration))
		},
		OnMessage: func(m client.MessageInfo) {
			for _, u := range m.Properties.User {
				if u.Key == "traceparent" {
					observed.userProp.Add(1)
				}
			}
		},
	}
}

func dialZmqtt5Config(ctx context.Context, cfg client.Config) (endpointClient, error) {
	c, err := client.New5(client.Config5{Config: cfg})
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return &zmqtt5{c: c, queue: subQueue}, nil
}

func (z *zmqtt5) publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	_, err := z.c.Publish(ctx, topic, payload, client.QoS(qos))
	return err
}

func (z *zmqtt5) publishAsync(topic string, payload []byte, qos byte) *client.Publishing {
	return z.c.PublishAsync(topic, payload, client.QoS(qos))
}

func (z *zmqtt5) useDefaults() { z.queue = 0 }

func (z *zmqtt5) subscribe(ctx context.Context, filter string, qos byte, on func()) error {
	opts := []client.SubscribeOption5{client.QoS(qos)}
	if z.queue > 0 {
		opts = append(opts, client.QueueSize(z.queue))
	}
	s, err := z.c.Subscribe(ctx, []string{filter}, opts...)
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.Background())
	z.stop = stop
	z.subs.Add(1)
	go func() {
		defer z.subs.Done()
		for {
			if _, err := s.Next(rctx); err != nil {
				return
			}
			on()
		}
	}()
	return nil
}

func (z *zmqtt5) close() {
	if z.stop != nil {
		z.stop()
		z.subs.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	z.c.Disconnect(ctx, 0, nil)
}

type zmqtt311 struct {
	c     *client.Client
	queue int // QueueSize of the subscription; 0: the client's default
	subs  sync.WaitGroup
	stop  context.CancelFunc
}

func dialZmqtt311(ctx context.Context, url, id string) (endpointClient, error) {
	c, err := client.New(client.Config{URL: url, ClientID: id})
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return &zmqtt311{c: c, queue: subQueue}, nil
}

func (z *zmqtt311) publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	return z.c.Publish(ctx, topic, payload, client.QoS(qos))
}

func (z *zmqtt311) publishAsync(topic string, payload []byte, qos byte) *client.Publishing {
	return z.c.PublishAsync(topic, payload, client.QoS(qos))
}

func (z *zmqtt311) useDefaults() { z.queue = 0 }

func (z *zmqtt311) subscribe(ctx context.Context, filter string, qos byte, on func()) error {
	opts := []client.SubscribeOption{client.QoS(qos)}
	if z.queue > 0 {
		opts = append(opts, client.QueueSize(z.queue))
	}
	s, err := z.c.Subscribe(ctx, []string{filter}, opts...)
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.Background())
	z.stop = stop
	z.subs.Add(1)
	go func() {
		defer z.subs.Done()
		for {
			if _, err := s.Next(rctx); err != nil {
				return
			}
			on()
		}
	}()
	return nil
}

func (z *zmqtt311) close() {
	if z.stop != nil {
		z.stop()
		z.subs.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	z.c.Disconnect(ctx)
}

// --- paho.golang ---

type pahoClient struct {
	c  *paho.Client
	on atomic.Pointer[func()]
}

func dialPaho(ctx context.Context, url, id string) (endpointClient, error) {
	conn, err := net.Dial("tcp", url[len("mqtt://"):])
	if err != nil {
		return nil, err
	}
	p := &pahoClient{}
	p.c = paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(paho.PublishReceived) (bool, error) {
			if f := p.on.Load(); f != nil {
				(*f)()
			}
			return true, nil
		}},
	})
	if _, err := p.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 60}); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pahoClient) publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	_, err := p.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
	return err
}

func (p *pahoClient) subscribe(ctx context.Context, filter string, qos byte, on func()) error {
	p.on.Store(&on)
	_, err := p.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	return err
}

func (p *pahoClient) close() {
	p.c.Disconnect(&paho.Disconnect{})
	<-p.c.Done()
}

// --- eclipse/paho.mqtt.golang (3.1.1) ---

type pahoV3Client struct{ c pahov3.Client }

func dialPahoV3(ctx context.Context, url, id string) (endpointClient, error) {
	opts := pahov3.NewClientOptions().AddBroker("tcp://" + url[len("mqtt://"):]).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(false)
	c := pahov3.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("paho.mqtt.golang connect: %v", tok.Error())
	}
	return &pahoV3Client{c: c}, nil
}

func (p *pahoV3Client) publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	tok := p.c.Publish(topic, qos, false, payload)
	tok.Wait()
	return tok.Error()
}

func (p *pahoV3Client) subscribe(ctx context.Context, filter string, qos byte, on func()) error {
	tok := p.c.Subscribe(filter, qos, func(pahov3.Client, pahov3.Message) { on() })
	tok.Wait()
	return tok.Error()
}

func (p *pahoV3Client) close() { p.c.Disconnect(100) }

// --- benchmarks ---

var sizes = []int{64, 1024}

const window = 256

func BenchmarkE2EThroughput(b *testing.B) {
	tg := throughputTarget(b)
	for _, im := range impls {
		if tg.only311 && im.v != codec.V311 {
			continue
		}
		for qos := range tg.maxQoS + 1 {
			for _, size := range sizes {
				name := fmt.Sprintf("v=%v/qos=%d/size=%d/impl=%s", im.v, qos, size, im.name)
				b.Run(name, func(b *testing.B) { throughput(b, tg, im, qos, size) })
			}
		}
	}
}

var runID atomic.Int64

func throughput(b *testing.B, tg e2eTarget, im impl, qos byte, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := strconv.FormatInt(runID.Add(1), 10)
	topic := "bench/" + id
	slots := make(chan struct{}, window)
	var got atomic.Int64
	done := make(chan struct{})
	var target atomic.Int64
	target.Store(-1)
	sub, err := im.dial(ctx, tg.url, "sub-"+id)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.close()
	if err := sub.subscribe(ctx, topic, qos, func() {
		<-slots
		if got.Add(1) == target.Load() {
			close(done)
		}
	}); err != nil {
		b.Fatal(err)
	}
	pub, err := im.dial(ctx, tg.url, "pub-"+id)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.close()
	payload := make([]byte, size)
	ap, _ := pub.(asyncPublisher)
	if im.async && ap == nil {
		b.Fatalf("%s has no asynchronous publish", im.name)
	}
	const workers = 8
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	cpu := startCPU(tg.proc)
	n := int64(b.N)
	target.Store(n)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	if im.async {
		// One publishing goroutine, as an application's telemetry loop.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := publishAsyncAll(ctx, ap, slots, topic, payload, qos, n); err != nil {
				errs <- err
			}
		}()
	} else {
		var next atomic.Int64
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= n {
					select {
					case slots <- struct{}{}:
					case <-ctx.Done():
						errs <- ctx.Err()
						return
					}
					if err := pub.publish(ctx, topic, payload, qos); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	select {
	case <-done:
	case err := <-errs:
		b.Fatal(err)
	case <-ctx.Done():
		b.Fatalf("received %d of %d", got.Load(), n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// The last publishes may complete (PUBACK, PUBCOMP) after the last
	// message arrived: they are waited for, and checked, untimed.
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msg/s")
	cpu.report(b, tg.proc, n)
}

// asyncRing is how many PublishAsync handles impl=zmqtt-async keeps: a
// handle's slot is reused, after checking that its publish succeeded, by
// the publish asyncRing later. Below the window, so that publishes that
// failed can never fill the window alone and hang the run: when it is
// full, at least window-asyncRing of its messages were checked.
const asyncRing = window / 2

// publishAsyncAll publishes n messages with PublishAsync from the calling
// goroutine, under the same window as the blocking publishers, and then
// waits for the last asyncRing to complete: every handle is checked. No
// goroutine is started per message.
func publishAsyncAll(ctx context.Context, ap asyncPublisher, slots chan<- struct{}, topic string, payload []byte, qos byte, n int64) error {
	var ring [asyncRing]*client.Publishing // publish i at i%asyncRing
	check := func(i int64) error {
		if err := ring[i%asyncRing].Wait(ctx); err != nil {
			return fmt.Errorf("PublishAsync %d of %d: %w", i+1, n, err)
		}
		return nil
	}
	for i := range n {
		if i >= asyncRing {
			if err := check(i - asyncRing); err != nil {
				return err
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("publish %d of %d: window never freed: %w", i+1, n, ctx.Err())
		}
		ring[i%asyncRing] = ap.publishAsync(topic, payload, qos)
	}
	for i := max(n-asyncRing, 0); i < n; i++ {
		if err := check(i); err != nil {
			return err
		}
	}
	return nil
}

// cpuMeter measures what this process (both clients and the benchmark's
// goroutines) and the broker spend over a run: CPU time (user and system),
// context switches, and read and write system calls (the syscr and syscw
// counters of /proc/<pid>/io, which cost nothing to keep, unlike strace).
// Where the broker saturates its core the message rates of all clients
// meet; the costs per message still tell them apart.
type cpuMeter struct{ self, broker procCost }

// procCost is a process's counters at one moment; -1 where unknown.
type procCost struct {
	cpu          time.Duration
	csw          int64 // context switches, voluntary and not
	syscr, syscw int64
}

// clockTick is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

func selfCost() procCost {
	c := procCost{cpu: -1, csw: -1, syscr: -1, syscw: -1}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		c.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		c.csw = ru.Nvcsw + ru.Nivcsw
	}
	c.syscr, c.syscw = procIO("self")
	return c
}

// procIO reads syscr and syscw from /proc/<pid>/io; -1, -1 where there is
// none.
func procIO(pid string) (r, w int64) {
	r, w = -1, -1
	data, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "syscr: "); ok {
			r, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			w, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return
}

// procCSW is the context switches of a process, from the status of each of
// its threads under /proc/<pid>/task; -1 where unknown.
func procCSW(pid string) int64 {
	// The status of a process counts its main thread's switches only: add
	// up every thread's (Mosquitto has one, NATS many).
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		return -1
	}
	var n int64 = -1
	for _, t := range tasks {
		data, err := os.ReadFile("/proc/" + pid + "/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread has exited
		}
		for _, l := range strings.Split(string(data), "\n") {
			for _, k := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(l, k); ok {
					x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					if err != nil {
						return -1
					}
					n = max(n, 0) + x
				}
			}
		}
	}
	return n
}

// cpuOfPID reads utime and stime of a process from /proc; it returns -1
// where there is no /proc.
func cpuOfPID(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields from the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(u+s) * clockTick
}

// costOfPID is the counters of another process, from /proc.
func costOfPID(pid int) procCost {
	p := strconv.Itoa(pid)
	c := procCost{cpu: cpuOfPID(pid), csw: procCSW(p)}
	c.syscr, c.syscw = procIO(p)
	return c
}

// process is a broker whose process the benchmarks meter.
type process interface{ PID() int }

// brokerCost is the counters of the broker's process.
func brokerCost(br process) procCost { return costOfPID(br.PID()) }

func startCPU(br process) cpuMeter {
	return cpuMeter{self: selfCost(), broker: brokerCost(br)}
}

// report adds, per message of n: client-cpu-µs, client-csw, client-syscr,
// client-syscw, and the same of the broker.
func (m cpuMeter) report(b *testing.B, br process, n int64) {
	per := func(unit string, before, after int64) {
		if before >= 0 && after >= 0 {
			b.ReportMetric(float64(after-before)/float64(n), unit)
		}
	}
	self, brk := selfCost(), brokerCost(br)
	b.ReportMetric(float64((self.cpu-m.self.cpu).Microseconds())/float64(n), "client-cpu-µs/msg")
	per("client-csw/msg", m.self.csw, self.csw)
	per("client-syscr/msg", m.self.syscr, self.syscr)
	per("client-syscw/msg", m.self.syscw, self.syscw)
	if m.broker.cpu >= 0 && brk.cpu >= 0 {
		b.ReportMetric(float64((brk.cpu-m.broker.cpu).Microseconds())/float64(n), "broker-cpu-µs/msg")
	}
	per("broker-csw/msg", m.broker.csw, brk.csw)
	per("broker-syscr/msg", m.broker.syscr, brk.syscr)
	per("broker-syscw/msg", m.broker.syscw, brk.syscw)
}

// rawPublisher sends pre-encoded PUBLISH packets over TCP and reads the
// acknowledgements away: it allocates nothing per message, so the
// allocations of BenchmarkE2EReceive are the subscriber's.
type rawPublisher struct {
	conn net.Conn
	pkts [][]byte // one encoded PUBLISH per packet identifier slot
	done chan struct{}
}

func newRawPublisher(b *testing.B, br *brokertest.Broker, id, topic string, qos byte, size int) *rawPublisher {
	conn, err := net.Dial("tcp", br.Addr(brokertest.MQTT))
	if err != nil {
		b.Fatal(err)
	}
	c, _ := codec.Append(nil, &codec.Connect{CleanStart: true, ClientID: id, KeepAlive: 0}, codec.V5)
	conn.Write(c)
	r := codec.NewReader(conn, 1<<20)
	if _, _, err := r.Next(); err != nil {
		b.Fatal(err)
	}
	p := &rawPublisher{conn: conn, done: make(chan struct{})}
	payload := make([]byte, size)
	for i := range window {
		pkt := &codec.Publish{Topic: topic, QoS: codec.QoS(qos), Payload: payload}
		if qos > 0 {
			pkt.PacketID = uint16(i + 1)
		}
		enc, err := codec.Append(nil, pkt, codec.V5)
		if err != nil {
			b.Fatal(err)
		}
		p.pkts = append(p.pkts, enc)
	}
	go func() {
		defer close(p.done)
		defer r.Release()
		for {
			if _, _, err := r.Next(); err != nil {
				return
			}
		}
	}()
	return p
}

func (p *rawPublisher) close() {
	p.conn.Close()
	<-p.done
}

// BenchmarkE2EReceive measures the receiving client alone (QoS 0 and 1,
// 64 B), fed by the raw publisher under the same 256-message window.
func BenchmarkE2EReceive(b *testing.B) {
	br := sharedBroker(b)
	for _, im := range impls {
		if im.async {
			continue
		}
		for _, qos := range []byte{0, 1} {
			b.Run(fmt.Sprintf("v=%v/qos=%d/size=64/impl=%s", im.v, qos, im.name), func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				id := strconv.FormatInt(runID.Add(1), 10)
				topic := "recv/" + id
				slots := make(chan struct{}, window)
				var got atomic.Int64
				var target atomic.Int64
				target.Store(-1)
				done := make(chan struct{})
				sub, err := im.dial(ctx, br.URL(brokertest.MQTT), "rsub-"+id)
				if err != nil {
					b.Fatal(err)
				}
				defer sub.close()
				if err := sub.subscribe(ctx, topic, qos, func() {
					<-slots
					if got.Add(1) == target.Load() {
						close(done)
					}
				}); err != nil {
					b.Fatal(err)
				}
				pub := newRawPublisher(b, br, "rpub-"+id, topic, qos, 64)
				defer pub.close()
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				cpu := startCPU(br)
				target.Store(int64(b.N))
				for i := range b.N {
					select {
					case slots <- struct{}{}:
					case <-ctx.Done():
						b.Fatal(ctx.Err())
					}
					if _, err := pub.conn.Write(pub.pkts[i%window]); err != nil {
						b.Fatal(err)
					}
				}
				select {
				case <-done:
				case <-ctx.Done():
					b.Fatalf("received %d of %d", got.Load(), b.N)
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
				cpu.report(b, br, int64(b.N))
			})
		}
	}
}

// BenchmarkE2EFlood floods the receiving client: the raw publisher writes
// b.N QoS 0 messages of 64 B as fast as TCP takes them, with no window, and
// the subscriber, with its library's defaults, only counts them. A client
// may keep up, hold the flood back (TCP and the broker then buffer it) or
// drop: delivered/sent says which, beside msg/s (messages delivered per
// second, up to the last one). The run waits for every message, and when
// some never come, until none arrived for floodQuiet; then it reports the
// drop rather than failing.
func BenchmarkE2EFlood(b *testing.B) {
	br := sharedBroker(b)
	for _, im := range impls {
		if im.async {
			continue
		}
		b.Run(fmt.Sprintf("v=%v/qos=0/size=64/impl=%s", im.v, im.name), func(b *testing.B) { flood(b, br, im) })
	}
}

const (
	floodBatch = 64 // packets per Write of the raw publisher
	// floodQuiet: no message for this long after the flood was written, and
	// the ones still missing count as dropped.
	floodQuiet = time.Second
	floodPoll  = 10 * time.Millisecond // how often the count is looked at
)

func flood(b *testing.B, br *brokertest.Broker, im impl) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := strconv.FormatInt(runID.Add(1), 10)
	topic := "flood/" + id
	var got atomic.Int64
	var target atomic.Int64
	target.Store(-1)
	done := make(chan struct{})
	sub, err := im.dial(ctx, br.URL(brokertest.MQTT), "fsub-"+id)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.close()
	if d, ok := sub.(defaulter); ok {
		d.useDefaults()
	}
	if err := sub.subscribe(ctx, topic, 0, func() {
		if got.Add(1) == target.Load() {
			close(done)
		}
	}); err != nil {
		b.Fatal(err)
	}
	pub := newRawPublisher(b, br, "fpub-"+id, topic, 0, 64)
	defer pub.close()
	batch := bytes.Repeat(pub.pkts[0], floodBatch) // QoS 0: all the same packet
	size := len(pub.pkts[0])
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu := startCPU(br)
	sent := int64(b.N)
	target.Store(sent)
	for left := sent; left > 0; {
		k := min(left, floodBatch)
		if _, err := pub.conn.Write(batch[:k*int64(size)]); err != nil {
			b.Fatal(err)
		}
		left -= k
	}
	delivered, last := awaitFlood(ctx, done, &got)
	b.StopTimer()
	if err := ctx.Err(); err != nil {
		b.Fatalf("delivered %d of %d, still arriving: %v", delivered, sent, err)
	}
	if delivered != sent {
		b.Logf("delivered %d of %d", delivered, sent)
	}
	b.ReportMetric(float64(delivered)/float64(sent), "delivered/sent")
	b.ReportMetric(float64(delivered)/last.Sub(start).Seconds(), "msg/s")
	cpu.report(b, br, sent)
}

// awaitFlood waits until done is closed (every message arrived), until no
// message arrived for floodQuiet, or until ctx ends. It returns the count
// and when the last counted message was seen (within floodPoll).
func awaitFlood(ctx context.Context, done <-chan struct{}, got *atomic.Int64) (int64, time.Time) {
	t := time.NewTicker(floodPoll)
	defer t.Stop()
	seen, seenAt := got.Load(), time.Now()
	for {
		select {
		case <-done:
			return got.Load(), time.Now()
		case <-ctx.Done():
			return got.Load(), seenAt
		case now := <-t.C:
			if g := got.Load(); g != seen {
				seen, seenAt = g, now
			} else if now.Sub(seenAt) >= floodQuiet {
				return seen, seenAt
			}
		}
	}
}

// BenchmarkE2ELatency: QoS 1 publish to PUBACK, one message at a time.
func BenchmarkE2ELatency(b *testing.B) {
	br := sharedBroker(b)
	for _, im := range impls {
		if im.async {
			continue
		}
		b.Run(fmt.Sprintf("v=%v/qos=1/size=64/impl=%s", im.v, im.name), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			id := strconv.FormatInt(runID.Add(1), 10)
			pub, err := im.dial(ctx, br.URL(brokertest.MQTT), "lat-"+id)
			if err != nil {
				b.Fatal(err)
			}
			defer pub.close()
			payload := make([]byte, 64)
			topic := "lat/" + id
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if err := pub.publish(ctx, topic, payload, 1); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
