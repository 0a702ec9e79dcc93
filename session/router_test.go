package session

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zmqtt/zmqtt-go/codec"
)

// routeOf registers filters (handle i+1 for filters[i], ids[i] as the
// subscription identifier when given) and returns the handles a topic goes to.
func routeOf(mode Routing, filters []string, ids []uint32, topic string, pubIDs ...uint32) []Handle {
	r := newRouter(defaultPrefixes)
	for i, f := range filters {
		e := &entry{handle: Handle(i + 1), filter: f}
		if i < len(ids) {
			e.subID = ids[i]
		}
		r.add(e)
	}
	return r.route(topic, pubIDs, mode, nil)
}

func TestRouterSpecificity(t *testing.T) {
	// Seed rule 49: literal < '+' < '#', compared level by level from the left.
	for _, tc := range []struct {
		filters []string
		topic   string
		want    Handle
	}{
		{[]string{"+/b", "a/+"}, "a/b", 2},
		{[]string{"a/#", "a/+/#"}, "a/b/c", 2},
		{[]string{"a/+/c", "a/b/#"}, "a/b/c", 2},
		{[]string{"x/#", "x/b/+", "x/b/c"}, "x/b/c", 3},
		{[]string{"x/#", "x/b/+"}, "x/b/c", 2},
		{[]string{"#", "a/#"}, "a", 2},
		{[]string{"a/+", "a/+/#"}, "a/b", 1}, // equal ranks: the shorter filter wins
		{[]string{"a/b", "$share/g/a/b"}, "a/b", 1},
		{[]string{"$share/g/a/b", "a/b"}, "a/b", 1}, // ties go to the earliest (seed rule 50)
		{[]string{"$queue/a/+", "a/#"}, "a/b", 1},   // broker prefixes are stripped (seed rule 48)
		{[]string{"$exclusive/a/b", "+/b"}, "a/b", 1},
	} {
		got := routeOf(RouteExclusive, tc.filters, nil, tc.topic)
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%v on %q: got %v, want handle %d", tc.filters, tc.topic, got, tc.want)
		}
	}
}

func TestRouterDollarTopics(t *testing.T) {
	// [MQTT-4.7.2-1]: "#" and "+/..." never match "$SYS/..."; nor do they
	// after $share/ is stripped (seed rule 47).
	for _, f := range []string{"#", "+/monitor/Clients", "$share/g/#", "$queue/#"} {
		if got := routeOf(RouteExclusive, []string{f}, nil, "$SYS/monitor/Clients"); len(got) != 0 {
			t.Errorf("%q matched a $ topic: %v", f, got)
		}
	}
	if got := routeOf(RouteExclusive, []string{"$SYS/#"}, nil, "$SYS/monitor/Clients"); len(got) != 1 {
		t.Error("$SYS/# did not match")
	}
}

func TestRouterSubscriptionIdentifiers(t *testing.T) {
	filters := []string{"a/b", "a/+", "#"}
	ids := []uint32{1, 2, 3}
	if got := routeOf(RouteExclusive, filters, ids, "a/b", 3); !cmp.Equal(got, []Handle{3}) {
		t.Errorf("identifier 3 chose %v, want the '#' subscription", got)
	}
	if got := routeOf(RouteExclusive, filters, ids, "a/b", 2, 3); !cmp.Equal(got, []Handle{2}) {
		t.Errorf("identifiers 2,3 chose %v, want the more specific of the two", got)
	}
	if got := routeOf(RouteFanOut, filters, ids, "a/b", 1, 3); !cmp.Equal(got, []Handle{1, 3}) && !cmp.Equal(got, []Handle{3, 1}) {
		t.Errorf("fan-out with identifiers 1,3 gave %v, want exactly the two named", got)
	}
	if got := routeOf(RouteExclusive, filters, ids, "a/b", 99); !cmp.Equal(got, []Handle{1}) {
		t.Errorf("an unknown identifier must fall back to filter matching: %v", got)
	}
}

func TestRouterFanOut(t *testing.T) {
	got := routeOf(RouteFanOut, []string{"a/b", "a/+", "#", "x"}, nil, "a/b")
	if len(got) != 3 {
		t.Fatalf("fan-out delivered to %v, want the three matching handles", got)
	}
	r := newRouter(nil)
	r.add(&entry{handle: 5, filter: "a/+"})
	r.add(&entry{handle: 5, filter: "a/b"})
	if got := r.route("a/b", nil, RouteFanOut, nil); !cmp.Equal(got, []Handle{5}) {
		t.Fatalf("one handle with two matching filters got %v, want one copy (seed rule 52)", got)
	}
}

func TestRouterRemovePrunes(t *testing.T) {
	r := newRouter(nil)
	r.trie = true // a few entries: build the trie anyway, to see it pruned
	es := []*entry{{handle: 1, filter: "a/b/c"}, {handle: 2, filter: "a/+/#"}, {handle: 3, filter: "#"}}
	for _, e := range es {
		r.add(e)
	}
	for _, e := range es {
		r.remove(e)
	}
	if len(r.all) != 0 || len(r.root.children) != 0 || r.root.plus != nil || len(r.root.hash) != 0 {
		t.Fatalf("router not empty after removing everything: %+v", r.root)
	}
	if got := r.route("a/b/c", nil, RouteFanOut, nil); len(got) != 0 {
		t.Fatal(got)
	}
}

func TestSubackPartialFailure(t *testing.T) {
	h := connected(t, Config{}, nil)
	tok, err := h.s.Subscribe(h.now, 9, []codec.Subscription{{Filter: "ok/#", QoS: 1}, {Filter: "denied/#", QoS: 1}}, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.sent()
	evs := h.feed(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1, codec.ReasonNotAuthorized}})
	var re *ReasonError
	if len(evs) != 1 || evs[0].Token != tok || !errors.As(evs[0].Err, &re) || re.Filter != "denied/#" || re.Code != codec.ReasonNotAuthorized {
		t.Fatalf("events %+v", evs)
	}
	if evs := h.feed(inPub("denied/x", 0, 0, "")); evs[0].Kind != EventUnrouted {
		t.Fatalf("a refused filter still routes: %v", evs)
	}
	if evs := h.feed(inPub("ok/x", 0, 0, "")); evs[0].Kind != EventMessage {
		t.Fatalf("the granted filter does not route: %v", evs)
	}
	t.Run("MQTT-3.9.3-1/code-count", func(t *testing.T) {
		h.s.Subscribe(h.now, 10, []codec.Subscription{{Filter: "a"}, {Filter: "b"}}, SubscribeOptions{})
		h.sent()
		closedWith(t, h.feed(&codec.Suback{PacketID: 2, ReasonCodes: []codec.ReasonCode{0}}), ErrProtocol)
	})
}

func TestSubscriptionsRestored(t *testing.T) {
	h := connected(t, Config{}, nil)
	subscribed(t, h, 1, "a/#", 1)
	subscribed(t, h, 2, "b", 0)
	h.s.ConnectionLost(h.now, nil)
	h.events()
	t.Run("session-present-nothing-resent", func(t *testing.T) {
		h.connect(&codec.Connack{SessionPresent: true})
		h.expectNothing()
		h.s.ConnectionLost(h.now, nil)
		h.events()
	})
	t.Run("session-lost-subscribe-again", func(t *testing.T) {
		_, evs := h.connect(&codec.Connack{})
		wantKinds(t, evs, EventConnected)
		p := h.sent()
		if len(p) != 2 || p[0].(*codec.Subscribe).Subscriptions[0].Filter != "a/#" || p[1].(*codec.Subscribe).Subscriptions[0].Filter != "b" {
			t.Fatalf("restore sent %v", p)
		}
		evs = h.feed(&codec.Suback{PacketID: p[1].(*codec.Subscribe).PacketID, ReasonCodes: []codec.ReasonCode{codec.ReasonNotAuthorized}})
		if len(evs) != 1 || evs[0].Kind != EventRestoreFailed || evs[0].Handle != 2 {
			t.Fatalf("a refused restore must be reported: %+v", evs)
		}
	})
}

func TestSubscribeOffline(t *testing.T) {
	h := newHarness(t, Config{})
	tok, err := h.s.Subscribe(h.now, 3, []codec.Subscription{{Filter: "x", QoS: 1}}, SubscribeOptions{ID: 5})
	if err != nil {
		t.Fatal(err)
	}
	h.connect(nil)
	p := h.sent()
	if len(p) != 1 || p[0].(*codec.Subscribe).Props.SubscriptionIDs[0] != 5 {
		t.Fatalf("sent %v", p)
	}
	evs := h.feed(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}})
	if len(evs) != 1 || evs[0].Kind != EventSubscribed || evs[0].Token != tok {
		t.Fatalf("events %+v", evs)
	}
}

func TestUnsubscribeSharedFilter(t *testing.T) {
	h := connected(t, Config{}, nil)
	subscribed(t, h, 1, "a", 0)
	subscribed(t, h, 2, "a", 0)
	tok, err := h.s.Unsubscribe(h.now, 1, []string{"a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.expectNothing() // handle 2 still uses "a"
	if evs := h.events(); len(evs) != 1 || evs[0].Kind != EventUnsubscribed || evs[0].Token != tok {
		t.Fatalf("events %+v", evs)
	}
	if evs := h.feed(inPub("a", 0, 0, "")); !cmp.Equal(evs[0].Message.Targets, []Handle{2}) {
		t.Fatalf("targets %v", evs[0].Message.Targets)
	}
	tok, _ = h.s.Unsubscribe(h.now, 2, []string{"a"}, nil)
	h.expect(&codec.Unsubscribe{PacketID: 3, Filters: []string{"a"}})
	evs := h.feed(&codec.Unsuback{PacketID: 3, ReasonCodes: []codec.ReasonCode{0}})
	if len(evs) != 1 || evs[0].Token != tok || evs[0].Err != nil {
		t.Fatalf("events %+v", evs)
	}
}

// TestSubscribeCapabilities: a SUBSCRIBE the server said it cannot take
// (Wildcard Subscription Available, Shared Subscription Available or
// Subscription Identifiers Available 0) is refused before it is sent.
func TestSubscribeCapabilities(t *testing.T) {
	ack := &codec.Connack{Props: codec.Properties{Present: 1<<codec.PropWildcardSubscriptionAvailable |
		1<<codec.PropSharedSubscriptionAvailable | 1<<codec.PropSubscriptionIdentifierAvailable}}
	h := connected(t, Config{}, ack)
	for name, tc := range map[string]struct {
		f  string
		id uint32
	}{
		"§3.2.2.3.11/wildcard": {"a/+", 0},
		"§3.2.2.3.13/shared":   {"$share/g/a", 0},
		"§3.2.2.3.12/sub-id":   {"a", 7},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: tc.f}}, SubscribeOptions{ID: tc.id}); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%v", err)
			}
			h.expectNothing()
		})
	}
	t.Run("v311-options", func(t *testing.T) {
		h := connected(t, Config{Version: codec.V311}, nil)
		if _, err := h.s.Subscribe(h.now, 1, []codec.Subscription{{Filter: "a", NoLocal: true}}, SubscribeOptions{}); !errors.Is(err, ErrUnsupported) {
			t.Fatal(err)
		}
	})
}

func TestHeldForResumedSession(t *testing.T) {
	h := connected(t, Config{HoldTimeout: 10 * time.Second}, nil)
	h.s.ConnectionLost(h.now, nil)
	h.events()
	h.connect(&codec.Connack{SessionPresent: true})
	// The broker replays a message before the application subscribed again.
	if evs := h.feed(inPub("late/x", 1, 3, "kept")); len(evs) != 0 {
		t.Fatalf("held message reported: %v", evs)
	}
	h.expectNothing() // not acknowledged (seed rule 54): the broker keeps it
	tok, _ := h.s.Subscribe(h.now, 4, []codec.Subscription{{Filter: "late/#", QoS: 1}}, SubscribeOptions{})
	evs := h.events()
	if len(evs) != 1 || evs[0].Kind != EventMessage || !evs[0].Message.Held || string(evs[0].Message.Payload) != "kept" {
		t.Fatalf("events %+v", evs)
	}
	h.s.Ack(h.now, evs[0].Message.Ack)
	p := h.sent()
	if len(p) != 2 {
		t.Fatalf("sent %v", p)
	}
	_ = tok
	t.Run("timeout-reports-unrouted", func(t *testing.T) {
		h.feed(inPub("nobody", 1, 4, ""))
		evs := h.advance(10 * time.Second)
		if len(evs) != 1 || evs[0].Kind != EventUnrouted || !evs[0].Message.Held || evs[0].Message.Ack == 0 {
			t.Fatalf("events %+v", evs)
		}
		// Not acknowledged until the caller has handed it on and gives the
		// Ack [MQTT-4.3.2-4].
		h.expectNothing()
		h.s.Ack(h.now, evs[0].Message.Ack)
		h.expect(&codec.Puback{PacketID: 4})
		// The window is closed: later unrouted messages are acknowledged at once.
		evs = h.feed(inPub("nobody", 1, 5, ""))
		wantKinds(t, evs, EventUnrouted)
		h.expect(&codec.Puback{PacketID: 5})
	})
}

func TestReplies(t *testing.T) {
	h := connected(t, Config{}, nil)
	subscribed(t, h, 1, "reply/#", 1)
	tok := h.s.ExpectReply("reply/me", []byte{1, 2})
	m := inPub("reply/me", 1, 6, "answer")
	m.Props.CorrelationData = []byte{1, 2}
	evs := h.feed(m)
	if len(evs) != 1 || evs[0].Message.Reply != tok || len(evs[0].Message.Targets) != 0 {
		t.Fatalf("events %+v", evs)
	}
	// A second reply with the same correlation goes to normal routing (seed rule 67).
	m.PacketID = 7
	evs = h.feed(m)
	if evs[0].Message.Reply != 0 || !cmp.Equal(evs[0].Message.Targets, []Handle{1}) {
		t.Fatalf("late reply: %+v", evs[0].Message)
	}
	// No correlation data never matches.
	h.s.ExpectReply("reply/me", []byte{})
	m2 := inPub("reply/me", 0, 0, "")
	if evs := h.feed(m2); evs[0].Message.Reply != 0 {
		t.Fatal("a reply without correlation data matched")
	}
}

func BenchmarkRouterLookup10k(b *testing.B) {
	r := newRouter(defaultPrefixes)
	for i := 0; i < 10000; i++ {
		var f string
		switch i % 4 {
		case 0:
			f = fmt.Sprintf("site/%d/room/%d/temp", i%97, i)
		case 1:
			f = fmt.Sprintf("site/%d/+/%d/#", i%89, i)
		case 2:
			f = fmt.Sprintf("fleet/%d/#", i)
		default:
			f = fmt.Sprintf("$share/g%d/dev/%d/+", i%7, i)
		}
		r.add(&entry{handle: Handle(i + 1), filter: f})
	}
	r.add(&entry{handle: 99999, filter: "site/+/room/#"})
	var out []Handle
	b.ReportAllocs()
	for b.Loop() {
		out = r.route("site/12/room/5012/temp", nil, RouteExclusive, out[:0])
	}
	if len(out) != 1 {
		b.Fatalf("route %v", out)
	}
}
