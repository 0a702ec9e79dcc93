package client

// Router tests: which handler a topic goes to (and that it is the
// subscription the client itself would pick), acknowledgement after the
// handler, fan-out, workers, errors.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// handlerLog is a set of handlers that write down which filter got which
// topic.
type handlerLog struct {
	mu  sync.Mutex
	got []string // "filter <- topic"
}

func (rec *handlerLog) handler(filter string) Handler {
	return func(_ context.Context, m Message) error {
		rec.mu.Lock()
		rec.got = append(rec.got, filter+" <- "+m.Topic)
		rec.mu.Unlock()
		return nil
	}
}

func (rec *handlerLog) take() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.got
	rec.got = nil
	return out
}

// serveAll runs r over a Feed holding msgs and returns Serve's error.
func serveAll(t *testing.T, r *Router, topics ...string) error {
	t.Helper()
	f := NewFeed(FeedConfig{})
	push(t, f, topics...)
	f.End(nil)
	return r.Serve(context.Background(), f.Subscription())
}

var routeFilters = []string{"a/#", "a/+/c", "a/b/c", "+/b/#", "+/+", "$share/g/s/+", "$queue/q/#", "#", "$SYS/#", "a/+"}

var routeTopics = []string{"a/b/c", "a/x/c", "a/x/y", "a", "z/b/q", "z/b", "z/y", "a/b", "s/1", "q/1/2", "$SYS/load", "$other", "x"}

// TestRouterMostSpecific: the most specific matching filter wins (literal
// beats '+' beats '#', from the left, then the shorter filter), with
// $share/<group>/ and broker prefixes ignored, and a '$' topic never
// matching a filter that starts with a wildcard [MQTT-4.7.2-1]. Messages no
// handler takes go to OnError with ErrNoHandler; Serve ends with the
// subscription's end.
func TestRouterMostSpecific(t *testing.T) {
	run(t, func(t *testing.T) {
		var rec handlerLog
		var r Router
		var unhandled []string
		r.OnError = func(m Message, err error) {
			if !errors.Is(err, ErrNoHandler) {
				t.Errorf("OnError(%s, %v)", m.Topic, err)
			}
			unhandled = append(unhandled, m.Topic)
		}
		for _, f := range routeFilters {
			if f == "$SYS/#" {
				continue
			}
			if err := r.Handle(f, rec.handler(f)); err != nil {
				t.Fatal(err)
			}
		}
		if err := serveAll(t, &r, routeTopics...); !errors.Is(err, ErrSubscriptionClosed) {
			t.Fatalf("Serve: %v", err)
		}
		want := []string{
			"a/b/c <- a/b/c", "a/+/c <- a/x/c", "a/# <- a/x/y", "a/# <- a", "+/b/# <- z/b/q", "+/b/# <- z/b", "+/+ <- z/y",
			"a/+ <- a/b", "$share/g/s/+ <- s/1", "$queue/q/# <- q/1/2", "# <- x",
		}
		if got := rec.take(); !slices.Equal(got, want) {
			t.Fatalf("dispatch:\n got %q\nwant %q", got, want)
		}
		if !slices.Equal(unhandled, []string{"$SYS/load", "$other"}) {
			t.Fatalf("unhandled %q", unhandled)
		}
	})
}

// TestRouterAgreesWithClient: for each topic, the Router picks the filter
// of the subscription the client's own routing delivers to when each
// filter is a Subscription of its own: the rules are the same.
func TestRouterAgreesWithClient(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		var rec handlerLog
		r := Router{OnError: func(m Message, err error) { rec.handler("none")(ctx, m) }}
		subs := make([]*Subscription, len(routeFilters))
		for i, f := range routeFilters {
			res := async(func() (*Subscription, error) { return c.Subscribe(ctx, []string{f}) })
			p.expect(&codec.Subscribe{PacketID: uint16(i + 1), Subscriptions: []codec.Subscription{{Filter: f}}})
			p.send(&codec.Suback{PacketID: uint16(i + 1), ReasonCodes: []codec.ReasonCode{0}})
			subs[i] = (<-res).v
			if err := r.Handle(f, rec.handler(f)); err != nil {
				t.Fatal(err)
			}
		}
		for _, topic := range routeTopics {
			p.send(&codec.Publish{Topic: topic})
			synctest.Wait()
			chosen := "none"
			for i, s := range subs {
				if m, ok, _ := s.take(); ok && m.Topic == topic {
					chosen = routeFilters[i]
				}
			}
			if err := serveAll(t, &r, topic); !errors.Is(err, ErrSubscriptionClosed) {
				t.Fatal(err)
			}
			if got := rec.take(); len(got) != 1 || got[0] != chosen+" <- "+topic {
				t.Errorf("topic %s: the client delivered to %q, the Router to %q", topic, chosen, got)
			}
		}
		disconnect5(t, c, p)
	})
}

// TestRouterAcksAfterHandler: with ManualAck, the PUBACK (QoS 1) and the
// PUBREC (QoS 2) leave only when the handler has returned, also when it
// returned an error, which OnError gets first. Serve returns ctx's error
// when ctx ends.
func TestRouterAcksAfterHandler(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		ctx, cancel := context.WithCancel(context.Background())
		res := async(func() (*Subscription, error) {
			return c.Subscribe(ctx, []string{"jobs/#"}, ExactlyOnce, ManualAck())
		})
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "jobs/#", QoS: 2}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{2}})
		sub := (<-res).v

		started := make(chan string)
		release := make(chan error)
		var mu sync.Mutex
		var reported []string
		r := Router{OnError: func(m Message, err error) {
			mu.Lock()
			reported = append(reported, m.Topic+": "+err.Error())
			mu.Unlock()
		}}
		r.Handle("jobs/+", func(ctx context.Context, m Message) error {
			started <- m.Topic
			return <-release
		})
		served := async(func() (struct{}, error) { return struct{}{}, r.Serve(ctx, sub) })

		p.send(&codec.Publish{Topic: "jobs/1", QoS: 1, PacketID: 5})
		if got := <-started; got != "jobs/1" {
			t.Fatalf("handler got %s", got)
		}
		p.quietFor(10 * time.Second) // the handler runs: no PUBACK
		release <- errors.New("disk full")
		p.expect(&codec.Puback{PacketID: 5})
		mu.Lock()
		if !slices.Equal(reported, []string{"jobs/1: disk full"}) {
			t.Fatalf("OnError got %q", reported)
		}
		mu.Unlock()

		p.send(&codec.Publish{Topic: "jobs/2", QoS: 2, PacketID: 6})
		<-started
		p.quietFor(10 * time.Second)
		release <- nil
		p.expect(&codec.Pubrec{PacketID: 6})
		p.send(&codec.Pubrel{PacketID: 6})
		p.expect(&codec.Pubcomp{PacketID: 6})

		cancel()
		if s := <-served; !errors.Is(s.err, context.Canceled) {
			t.Fatalf("Serve: %v, want context.Canceled", s.err)
		}
		disconnect5(t, c, p)
	})
}

// TestRouterFanOut: with FanOut every matching handler gets the message, in
// registration order, and it is acknowledged once after the last. A
// client with Config.FanOut makes the Router fan out its messages too.
func TestRouterFanOut(t *testing.T) {
	run(t, func(t *testing.T) {
		var rec handlerLog
		r := Router{FanOut: true}
		for _, f := range []string{"#", "a/+", "a/b"} {
			r.Handle(f, rec.handler(f))
		}
		var acks []string
		f := NewFeed(FeedConfig{ManualAck: true, OnAck: func(m Message) { acks = append(acks, m.Topic) }})
		push(t, f, "a/b", "c")
		f.End(nil)
		r.Serve(context.Background(), f.Subscription())
		want := []string{"# <- a/b", "a/+ <- a/b", "a/b <- a/b", "# <- c"}
		if got := rec.take(); !slices.Equal(got, want) {
			t.Fatalf("fan-out dispatch %q, want %q", got, want)
		}
		if !slices.Equal(acks, []string{"a/b", "c"}) {
			t.Fatalf("acknowledged %q, want each message once", acks)
		}

		c, n := newTest311(t, Config{FanOut: true})
		p := connect311(t, c, n)
		ctx := context.Background()
		res := async(func() (*Subscription, error) { return c.Subscribe(ctx, r.Filters()) })
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "#"}}}) // it covers the others
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}})
		sub := (<-res).v
		var plain Router // FanOut off: the client's Config.FanOut decides
		for _, f := range []string{"a/b", "#"} {
			plain.Handle(f, rec.handler(f))
		}
		p.send(&codec.Publish{Topic: "a/b"})
		sctx, stop := context.WithCancel(ctx)
		served := async(func() (struct{}, error) { return struct{}{}, plain.Serve(sctx, sub) })
		synctest.Wait()
		stop()
		<-served
		if got := rec.take(); !slices.Equal(got, []string{"a/b <- a/b", "# <- a/b"}) {
			t.Fatalf("a FanOut client's message went to %q; want both handlers", got)
		}
		disconnect311(t, c, p)
	})
}

// TestRouterWorkers: with Workers n, n handlers run at once and no more;
// Serve returns only after every handler it started has returned.
func TestRouterWorkers(t *testing.T) {
	run(t, func(t *testing.T) {
		const workers = 3
		var mu sync.Mutex
		running, peak, handled := 0, 0, 0
		release := make(chan struct{})
		r := Router{Workers: workers}
		r.Handle("w/+", func(ctx context.Context, m Message) error {
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			<-release
			mu.Lock()
			running--
			handled++
			mu.Unlock()
			return nil
		})
		f := NewFeed(FeedConfig{})
		push(t, f, "w/1", "w/2", "w/3", "w/4", "w/5", "w/6", "w/7")
		f.End(nil)
		served := async(func() (struct{}, error) { return struct{}{}, r.Serve(context.Background(), f.Subscription()) })
		synctest.Wait()
		mu.Lock()
		if running != workers {
			t.Fatalf("%d handlers running, want %d", running, workers)
		}
		mu.Unlock()
		close(release)
		s := <-served
		if !errors.Is(s.err, ErrSubscriptionClosed) {
			t.Fatalf("Serve: %v", s.err)
		}
		mu.Lock()
		defer mu.Unlock()
		if handled != 7 || peak != workers || running != 0 {
			t.Fatalf("handled %d, peak %d, still running %d; want 7, %d, 0", handled, peak, running, workers)
		}
	})
}

// TestRouterRefusals: bad filters, nil handlers, a filter handled twice
// and Serve without a subscription are refused with typed errors; a
// handler added while Serve runs takes the next messages.
func TestRouterRefusals(t *testing.T) {
	run(t, func(t *testing.T) {
		var r Router
		nop := func(context.Context, Message) error { return nil }
		if err := r.Handle("a/#/b", nop); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("bad filter: %v", err)
		}
		if err := r.Handle("a", nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("nil handler: %v", err)
		}
		if err := r.Handle("a", nop); err != nil {
			t.Fatal(err)
		}
		if err := r.Handle("a", nop); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), `"a"`) {
			t.Errorf("second handler for a: %v", err)
		}
		if err := r.Serve(context.Background()); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Serve of nothing: %v", err)
		}
		if got := r.Filters(); !slices.Equal(got, []string{"a"}) {
			t.Errorf("Filters %q", got)
		}

		var rec handlerLog
		f := NewFeed(FeedConfig{})
		served := async(func() (struct{}, error) { return struct{}{}, r.Serve(context.Background(), f.Subscription()) })
		r.Handle("late/+", rec.handler("late/+"))
		push(t, f, "late/1")
		f.End(nil)
		<-served
		if got := rec.take(); !slices.Equal(got, []string{"late/+ <- late/1"}) {
			t.Fatalf("a handler added while serving got %q", got)
		}
	})
}

// TestRouterFilters: Filters leaves out the handled filters another one
// covers, so that overlapping subscriptions do not bring copies of one
// message (a broker may send one per matching subscription
// [MQTT-3.3.4-2]); a '$' topic is not covered by a leading wildcard
// [MQTT-4.7.2-1]; shared subscriptions are kept.
func TestRouterFilters(t *testing.T) {
	for _, tc := range []struct {
		handled, want []string
	}{
		{[]string{"a/b", "a/+", "a/#"}, []string{"a/#"}},
		{[]string{"a", "a/#"}, []string{"a/#"}}, // "a/#" matches "a" too
		{[]string{"a/+/c", "a/b/+", "x"}, []string{"a/+/c", "a/b/+", "x"}},
		{[]string{"+/+", "a/b", "a/#", "a/b/c"}, []string{"+/+", "a/#"}},
		{[]string{"#", "$SYS/#", "$SYS/x", "s/+"}, []string{"#", "$SYS/#"}},
		{[]string{"#", "$share/g/a", "$share/g/a/#"}, []string{"#", "$share/g/a", "$share/g/a/#"}},
		{[]string{"+/x", "a/+"}, []string{"+/x", "a/+"}},
		{[]string{"+/#", "a", "#"}, []string{"+/#"}},  // the same topics: the first stays
		{[]string{"a/b", "a/+/#"}, []string{"a/+/#"}}, // '#' matches the parent level: a/+/# matches a/b
	} {
		var r Router
		for _, f := range tc.handled {
			if err := r.Handle(f, func(context.Context, Message) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if got := r.Filters(); !slices.Equal(got, tc.want) {
			t.Errorf("handled %q: Filters %q, want %q", tc.handled, got, tc.want)
		}
	}
}

// TestCoversAgreesWithMatch checks covers against codec.MatchTopic over
// every filter of up to three levels and every topic of up to four levels
// from a small alphabet: covers(a, b) holds exactly when every topic b
// matches, a matches.
func TestCoversAgreesWithMatch(t *testing.T) {
	levels := func(alpha []string, max int) []string {
		var out []string
		var gen func(prefix string, n int)
		gen = func(prefix string, n int) {
			for _, l := range alpha {
				s := l
				if n > 0 {
					s = prefix + "/" + l
				}
				out = append(out, s)
				if n+1 < max {
					gen(s, n+1)
				}
			}
		}
		gen("", 0)
		return out
	}
	var filters []string
	for _, f := range levels([]string{"x", "$s", "+", "#"}, 3) {
		if codec.ValidateTopicFilter(f) == nil {
			filters = append(filters, f)
		}
	}
	topics := levels([]string{"x", "z", "$s", ""}, 4)
	checked := 0
	for _, a := range filters {
		for _, b := range filters {
			subset := true
			for _, tp := range topics {
				if codec.MatchTopic(b, tp) && !codec.MatchTopic(a, tp) {
					subset = false
					break
				}
			}
			if got := covers(a, b); got != subset {
				t.Errorf("covers(%q, %q) = %v; MatchTopic says %v", a, b, got, subset)
			}
			checked++
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d pairs checked", checked)
	}
}

// BenchmarkRouterServe measures a message's way from a Feed through
// Router.Serve to its handler (most-specific routing among five filters),
// acknowledgement included.
func BenchmarkRouterServe(b *testing.B) {
	var r Router
	handled := 0
	for _, f := range []string{"#", "a/#", "a/+/c", "a/b/c", "x/y"} {
		r.Handle(f, func(context.Context, Message) error { handled++; return nil })
	}
	f := NewFeed(FeedConfig{ManualAck: true, QueueSize: 256})
	m := Message{Topic: "a/b/c", Payload: []byte("payload"), QoS: AtLeastOnce}
	ctx := context.Background()
	b.ReportAllocs()
	go func() {
		for range b.N {
			f.Push(ctx, m)
		}
		f.End(nil)
	}()
	r.Serve(ctx, f.Subscription())
	if handled != b.N {
		b.Fatalf("handled %d of %d", handled, b.N)
	}
}
