package bench

// End-to-end benchmarks through a private Mosquitto on loopback: zmqtt's
// client beside paho.golang (MQTT 5.0) and eclipse/paho.mqtt.golang
// (3.1.1), in the same run, with the same broker, topics and flow control.
//
//	BenchmarkE2EThroughput   one publisher, one subscriber; a window of 256
//	                         messages in flight (the subscriber releases a
//	                         slot per message received), 8 publishing
//	                         goroutines. msg/s is messages received per
//	                         second; allocs/op counts both clients per message.
//	BenchmarkE2EReceive      a raw publisher (pre-encoded packets, no
//	                         allocation) feeds the client under test:
//	                         allocs/op is the subscriber's cost per message.
//	BenchmarkE2ELatency      QoS 1 publish -> PUBACK, one at a time: p50 and
//	                         p99 in microseconds.

import (
	"bytes"
	"context"
	"fmt"
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

func TestMain(m *testing.M) {
	code := m.Run()
	if broker != nil {
		broker.Close()
	}
	os.Exit(code)
}

// endpointClient is what the benchmarks need of a client library.
type endpointClient interface {
	publish(ctx context.Context, topic string, payload []byte, qos byte) error
	subscribe(ctx context.Context, filter string, qos byte, onMessage func()) error
	close()
}

type impl struct {
	name string
	v    codec.Version
	dial func(ctx context.Context, url, id string) (endpointClient, error)
}

var impls = []impl{
	{"zmqtt", codec.V5, dialZmqtt5},
	{"paho.golang", codec.V5, dialPaho},
	{"zmqtt", codec.V311, dialZmqtt311},
	{"paho.mqtt.golang", codec.V311, dialPahoV3},
}

// --- zmqtt ---

type zmqtt5 struct {
	c    *client.Client5
	subs sync.WaitGroup
	stop context.CancelFunc
}

func dialZmqtt5(ctx context.Context, url, id string) (endpointClient, error) {
	c, err := client.New5(client.Config5{Config: client.Config{URL: url, ClientID: id}})
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return &zmqtt5{c: c}, nil
}

func (z *zmqtt5) publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	_, err := z.c.Publish(ctx, topic, payload, client.QoS(qos))
	return err
}

func (z *zmqtt5) subscribe(ctx context.Context, filter string, qos byte, on func()) error {
	s, err := z.c.Subscribe(ctx, []string{filter}, client.QoS(qos), client.QueueSize(4096))
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
	c    *client.Client
	subs sync.WaitGroup
	stop context.CancelFunc
}

func dialZmqtt311(ctx context.Context, url, id string) (endpointClient, error) {
	c, err := client.New(client.Config{URL: url, ClientID: id})
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return &zmqtt311{c: c}, nil
}

func (z *zmqtt311) publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	return z.c.Publish(ctx, topic, payload, client.QoS(qos))
}

func (z *zmqtt311) subscribe(ctx context.Context, filter string, qos byte, on func()) error {
	s, err := z.c.Subscribe(ctx, []string{filter}, client.QoS(qos), client.QueueSize(4096))
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
	br := sharedBroker(b)
	for _, im := range impls {
		for _, qos := range []byte{0, 1, 2} {
			for _, size := range sizes {
				name := fmt.Sprintf("v=%v/qos=%d/size=%d/impl=%s", im.v, qos, size, im.name)
				b.Run(name, func(b *testing.B) { throughput(b, br, im, qos, size) })
			}
		}
	}
}

var runID atomic.Int64

func throughput(b *testing.B, br *brokertest.Broker, im impl, qos byte, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := strconv.FormatInt(runID.Add(1), 10)
	topic := "bench/" + id
	slots := make(chan struct{}, window)
	var got atomic.Int64
	done := make(chan struct{})
	var target atomic.Int64
	target.Store(-1)
	sub, err := im.dial(ctx, br.URL(brokertest.MQTT), "sub-"+id)
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
	pub, err := im.dial(ctx, br.URL(brokertest.MQTT), "pub-"+id)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.close()
	payload := make([]byte, size)
	const workers = 8
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	cpu := startCPU(br)
	n := int64(b.N)
	target.Store(n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
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
	select {
	case <-done:
	case err := <-errs:
		b.Fatal(err)
	case <-ctx.Done():
		b.Fatalf("received %d of %d", got.Load(), n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msg/s")
	cpu.report(b, br, n)
}

// cpuMeter measures the CPU time, user and system, that this process (both
// clients and the benchmark's goroutines) and the broker spend over a run.
// Where the broker saturates its core the message rates of all clients
// meet; the client's CPU per message still tells them apart.
type cpuMeter struct{ self, broker time.Duration }

// clockTick is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// brokerCPU reads utime and stime of the broker from /proc; it returns -1
// where there is no /proc.
func brokerCPU(br *brokertest.Broker) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", br.PID()))
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

func startCPU(br *brokertest.Broker) cpuMeter {
	return cpuMeter{self: processCPU(), broker: brokerCPU(br)}
}

// report adds client-cpu-µs/msg and broker-cpu-µs/msg for n messages.
func (m cpuMeter) report(b *testing.B, br *brokertest.Broker, n int64) {
	self := processCPU() - m.self
	b.ReportMetric(float64(self.Microseconds())/float64(n), "client-cpu-µs/msg")
	if m.broker >= 0 {
		if now := brokerCPU(br); now >= 0 {
			b.ReportMetric(float64((now-m.broker).Microseconds())/float64(n), "broker-cpu-µs/msg")
		}
	}
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

// BenchmarkE2ELatency: QoS 1 publish to PUBACK, one message at a time.
func BenchmarkE2ELatency(b *testing.B) {
	br := sharedBroker(b)
	for _, im := range impls {
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
