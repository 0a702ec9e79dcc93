package client

// Scripted-peer tests of per-filter subscription options, partial
// unsubscribe and the version-agnostic Conn: the exact SUBSCRIBE and
// UNSUBSCRIBE packets, and what becomes of the messages around them.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
)

// outcome is the result of a call made on another goroutine.
type outcome[T any] struct {
	v   T
	err error
}

// async runs fn on a goroutine; its result arrives on the channel.
func async[T any](fn func() (T, error)) chan outcome[T] {
	ch := make(chan outcome[T], 1)
	go func() {
		v, err := fn()
		ch <- outcome[T]{v, err}
	}()
	return ch
}

func connect311(t *testing.T, c *Client, n *network) *peer {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.Connect(context.Background()) }()
	p := n.accept()
	p.handshake(nil)
	if err := <-errc; err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return p
}

func disconnect311(t *testing.T, c *Client, p *peer) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.Disconnect(context.Background()) }()
	p.expect(&codec.Disconnect{})
	if err := <-errc; err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
}

// topicLog collects the topics of the messages OnUnrouted got.
type topicLog struct {
	mu     sync.Mutex
	topics []string
}

func (l *topicLog) add(m Message) {
	l.mu.Lock()
	l.topics = append(l.topics, m.Topic)
	l.mu.Unlock()
}

func (l *topicLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.topics)
}

// TestSubscribeFilters5PerFilterOptions: one SUBSCRIBE whose entries carry
// their own QoS, No Local, Retain As Published and Retain Handling
// [§3.8.3.1], with the subscription-wide Subscription Identifier and User
// Property once; the SUBACK's code of each filter, in filter order
// [MQTT-3.9.3-1], is reported per filter by Granted.
func TestSubscribeFilters5PerFilterOptions(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, &codec.Connack{Props: codec.Properties{}})
		ctx := context.Background()
		filters := []Filter5{
			{Topic: "own/#", QoS: AtLeastOnce, NoLocal: true},
			{Topic: "cfg/+", QoS: ExactlyOnce, RetainAsPublished: true, RetainHandling: codec.SendRetainedIfNew},
			{Topic: "log", RetainHandling: codec.DoNotSendRetained},
		}
		res := async(func() (*Subscription, error) {
			return c.SubscribeFilters5(ctx, filters, SubscriptionID(9), UserProperty("app", "router"), ManualAck())
		})
		p.expect(&codec.Subscribe{PacketID: 1,
			Props: codec.Properties{SubscriptionIDs: []uint32{9}, User: []codec.UserProperty{{Key: "app", Value: "router"}}},
			Subscriptions: []codec.Subscription{
				{Filter: "own/#", QoS: 1, NoLocal: true},
				{Filter: "cfg/+", QoS: 2, RetainAsPublished: true, RetainHandling: codec.SendRetainedIfNew},
				{Filter: "log", QoS: 0, RetainHandling: codec.DoNotSendRetained},
			}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{codec.ReasonGrantedQoS1, codec.ReasonGrantedQoS1, codec.ReasonGrantedQoS0}})
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		sub := r.v
		if got, want := sub.Granted(), []codec.ReasonCode{1, 1, 0}; !slices.Equal(got, want) {
			t.Fatalf("Granted %v, want %v (cfg/+ asked QoS 2, granted 1)", got, want)
		}
		if got := sub.Filters(); !slices.Equal(got, []string{"own/#", "cfg/+", "log"}) {
			t.Fatalf("Filters %q", got)
		}
		disconnect5(t, c, p)
	})
}

// TestSubscribeFilters5Refusals: options set per filter are refused as
// subscription-wide options (which one would win is not for the client to
// guess), No Local on a shared subscription is refused before sending
// [MQTT-3.8.3-4], an empty list is refused [MQTT-3.8.3-2], and a SUBACK that
// refuses one filter fails the call with a *ReasonError naming it; the
// subscription is then undone with an UNSUBSCRIBE.
func TestSubscribeFilters5Refusals(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		one := []Filter5{{Topic: "a"}}
		for name, opt := range map[string]SubscribeOption5{"QoS": AtLeastOnce, "NoLocal": NoLocal(),
			"RetainAsPublished": RetainAsPublished(), "RetainHandling": RetainHandling(codec.DoNotSendRetained)} {
			_, err := c.SubscribeFilters5(ctx, one, opt)
			var ae *ArgumentError
			if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s as a subscription-wide option: %v, want an *ArgumentError", name, err)
			}
		}
		if _, err := c.SubscribeFilters(ctx, []Filter{{Topic: "a"}}, ExactlyOnce); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("QoS option with Filter values: %v", err)
		}
		var ce *codec.Error
		if _, err := c.SubscribeFilters5(ctx, []Filter5{{Topic: "$share/g/x", NoLocal: true}}, nil); !errors.As(err, &ce) || ce.Rule != "MQTT-3.8.3-4" {
			t.Errorf("No Local on a shared subscription: %v, want the codec's [MQTT-3.8.3-4] error", err)
		}
		var pe *ProtocolError
		if _, err := c.SubscribeFilters5(ctx, nil); !errors.As(err, &pe) || pe.Rule != "MQTT-3.8.3-2" {
			t.Errorf("no filter: %v, want a *ProtocolError [MQTT-3.8.3-2]", err)
		}
		if _, err := c.SubscribeFilters5(ctx, []Filter5{{Topic: "a/#/b"}}); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("bad filter: %v", err)
		}
		// Nothing of the above reached the wire: the next packet is this
		// SUBSCRIBE, with packet identifier 1.
		res := async(func() (*Subscription, error) {
			return c.SubscribeFilters5(ctx, []Filter5{{Topic: "ok", QoS: 1}, {Topic: "secret/#", QoS: 1}})
		})
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "ok", QoS: 1}, {Filter: "secret/#", QoS: 1}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{codec.ReasonGrantedQoS1, codec.ReasonNotAuthorized}})
		p.expect(&codec.Unsubscribe{PacketID: 2, Filters: []string{"ok", "secret/#"}})
		p.send(&codec.Unsuback{PacketID: 2, ReasonCodes: []codec.ReasonCode{0, codec.ReasonNoSubscriptionExisted}})
		r := <-res
		var re *ReasonError
		if !errors.As(r.err, &re) || re.Filter != "secret/#" || re.Code != codec.ReasonNotAuthorized || r.v != nil {
			t.Fatalf("SubscribeFilters5 with a refused filter: %v, %v; want a *ReasonError for secret/#", r.v, r.err)
		}
		disconnect5(t, c, p)
	})
}

// TestSubscribeFilters311: on 3.1.1 each filter carries its own QoS in one
// SUBSCRIBE, and the SUBACK's return code of each is reported per filter
// [MQTT-3.9.3-1]; an empty list cites the 3.1.1 rule [MQTT-3.8.3-3].
func TestSubscribeFilters311(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest311(t, Config{})
		p := connect311(t, c, n)
		ctx := context.Background()
		var pe *ProtocolError
		if _, err := c.SubscribeFilters(ctx, nil); !errors.As(err, &pe) || pe.Rule != "MQTT-3.8.3-3" {
			t.Errorf("no filter: %v, want a *ProtocolError [MQTT-3.8.3-3]", err)
		}
		res := async(func() (*Subscription, error) {
			return c.SubscribeFilters(ctx, []Filter{{Topic: "q/0"}, {Topic: "q/2", QoS: ExactlyOnce}, {Topic: "q/1", QoS: AtLeastOnce}}, QueueSize(5))
		})
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "q/0"}, {Filter: "q/2", QoS: 2}, {Filter: "q/1", QoS: 1}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0, 2, 1}})
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := r.v.Granted(); !slices.Equal(got, []codec.ReasonCode{0, 2, 1}) {
			t.Fatalf("Granted %v", got)
		}
		disconnect311(t, c, p)
	})
}

// TestPartialUnsubscribe5: Unsubscribe5 sends one UNSUBSCRIBE for some
// filters of a subscription with its User Properties, returns the
// UNSUBACK's code of each filter in order [MQTT-3.11.3-1], and leaves the
// other filters active. A message queued before, of a removed filter, is
// still delivered and acknowledged by the application (ManualAck); one the
// broker sends for a removed filter afterwards is unrouted; the last
// filter's removal closes the subscription.
func TestPartialUnsubscribe5(t *testing.T) {
	run(t, func(t *testing.T) {
		var unrouted topicLog
		c, n := newTest5(t, Config5{Config: Config{OnUnrouted: unrouted.add}})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		res := async(func() (*Subscription, error) {
			return c.Subscribe(ctx, []string{"a/#", "b/#", "c"}, AtLeastOnce, ManualAck())
		})
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a/#", QoS: 1}, {Filter: "b/#", QoS: 1}, {Filter: "c", QoS: 1}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1, 1, 0}})
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		sub := r.v
		p.send(&codec.Publish{Topic: "a/x", QoS: 1, PacketID: 10, Payload: []byte("queued")})
		p.quietFor(time.Second) // ManualAck: no PUBACK yet

		// Refused before anything is sent.
		var pe *ProtocolError
		if _, err := sub.Unsubscribe5(ctx, nil); !errors.As(err, &pe) || pe.Rule != "MQTT-3.10.3-2" {
			t.Errorf("no filter: %v, want a *ProtocolError [MQTT-3.10.3-2]", err)
		}
		if _, err := sub.Unsubscribe(ctx, "d"); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("a filter the subscription does not hold: %v, want ErrInvalidArgument", err)
		}

		un := async(func() (UnsubscribeResult, error) {
			return sub.Unsubscribe5(ctx, []string{"a/#", "c", "a/#"}, codec.UserProperty{Key: "why", Value: "moved"})
		})
		p.expect(&codec.Unsubscribe{PacketID: 2, Filters: []string{"a/#", "c"},
			Props: codec.Properties{User: []codec.UserProperty{{Key: "why", Value: "moved"}}}})
		p.send(&codec.Unsuback{PacketID: 2, ReasonCodes: []codec.ReasonCode{codec.ReasonSuccess, codec.ReasonNoSubscriptionExisted}})
		u := <-un
		if u.err != nil {
			t.Fatalf("Unsubscribe5: %v (0x11 is not a failure)", u.err)
		}
		if !slices.Equal(u.v.Filters, []string{"a/#", "c"}) || !slices.Equal(u.v.Sent, []string{"a/#", "c"}) ||
			!slices.Equal(u.v.Codes, []codec.ReasonCode{0x00, 0x11}) {
			t.Fatalf("result %+v", u.v)
		}
		if got := sub.Filters(); !slices.Equal(got, []string{"b/#"}) {
			t.Fatalf("Filters after the partial unsubscribe: %q", got)
		}
		if got := sub.Granted(); !slices.Equal(got, []codec.ReasonCode{1}) {
			t.Fatalf("Granted after the partial unsubscribe: %v, want b/#'s [1]", got)
		}

		// The message queued before is still delivered, and acknowledged
		// when the application says so.
		m, err := sub.Next(ctx)
		if err != nil || m.Topic != "a/x" {
			t.Fatalf("Next: %+v %v", m, err)
		}
		m.Ack(ctx)
		p.expect(&codec.Puback{PacketID: 10})

		// b/# is still routed here; a/# is not any more: the broker's late
		// message for it goes to OnUnrouted and is acknowledged.
		p.send(&codec.Publish{Topic: "a/late", QoS: 1, PacketID: 11},
			&codec.Publish{Topic: "b/y", QoS: 1, PacketID: 12})
		p.expect(&codec.Puback{PacketID: 11})
		if m, err := sub.Next(ctx); err != nil || m.Topic != "b/y" {
			t.Fatalf("Next: %+v %v", m, err)
		}
		synctest.Wait()
		if got := unrouted.get(); !slices.Equal(got, []string{"a/late"}) {
			t.Fatalf("OnUnrouted got %q", got)
		}

		// Removing the last filter closes the subscription.
		un = async(func() (UnsubscribeResult, error) { return sub.Unsubscribe(ctx, "b/#") })
		p.expect(&codec.Unsubscribe{PacketID: 3, Filters: []string{"b/#"}})
		p.send(&codec.Unsuback{PacketID: 3, ReasonCodes: []codec.ReasonCode{0}})
		if u := <-un; u.err != nil {
			t.Fatal(u.err)
		}
		if _, err := sub.Next(ctx); !errors.Is(err, ErrSubscriptionClosed) {
			t.Fatalf("Next after the last filter left: %v", err)
		}
		if _, err := sub.Unsubscribe(ctx, "b/#"); !errors.Is(err, ErrSubscriptionClosed) {
			t.Fatalf("Unsubscribe after the end: %v", err)
		}
		disconnect5(t, c, p)
	})
}

// TestPartialUnsubscribeRefused: a code of 0x80 or above for a filter of the
// UNSUBACK is a *ReasonError that names it; the filter has left the
// subscription all the same.
func TestPartialUnsubscribeRefused(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest5(t, Config5{})
		p, _ := connect5(t, c, n, nil)
		ctx := context.Background()
		res := async(func() (*Subscription, error) { return c.Subscribe(ctx, []string{"x", "y"}) })
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "x"}, {Filter: "y"}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0, 0}})
		sub := (<-res).v
		un := async(func() (UnsubscribeResult, error) { return sub.Unsubscribe(ctx, "y") })
		p.expect(&codec.Unsubscribe{PacketID: 2, Filters: []string{"y"}})
		p.send(&codec.Unsuback{PacketID: 2, ReasonCodes: []codec.ReasonCode{codec.ReasonNotAuthorized}})
		u := <-un
		var re *ReasonError
		if !errors.As(u.err, &re) || re.Filter != "y" || re.Code != codec.ReasonNotAuthorized {
			t.Fatalf("refused UNSUBACK: %v", u.err)
		}
		if !slices.Equal(u.v.Codes, []codec.ReasonCode{codec.ReasonNotAuthorized}) {
			t.Fatalf("codes %v", u.v.Codes)
		}
		if got := sub.Filters(); !slices.Equal(got, []string{"x"}) {
			t.Fatalf("Filters %q", got)
		}
		disconnect5(t, c, p)
	})
}

// TestPartialUnsubscribe311: the UNSUBSCRIBE of some filters on 3.1.1,
// whose UNSUBACK has no codes; user properties are refused with
// ErrUnsupported and change nothing. A filter another subscription still
// holds leaves this one without being sent, since the broker has one
// subscription per filter for the whole session [MQTT-3.8.4-3].
func TestPartialUnsubscribe311(t *testing.T) {
	run(t, func(t *testing.T) {
		c, n := newTest311(t, Config{})
		p := connect311(t, c, n)
		ctx := context.Background()
		res := async(func() (*Subscription, error) { return c.Subscribe(ctx, []string{"x", "y", "z"}, AtLeastOnce) })
		p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "x", QoS: 1}, {Filter: "y", QoS: 1}, {Filter: "z", QoS: 1}}})
		p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1, 1, 1}})
		sub := (<-res).v
		res = async(func() (*Subscription, error) { return c.Subscribe(ctx, []string{"y"}) })
		p.expect(&codec.Subscribe{PacketID: 2, Subscriptions: []codec.Subscription{{Filter: "y"}}})
		p.send(&codec.Suback{PacketID: 2, ReasonCodes: []codec.ReasonCode{0}})
		other := (<-res).v

		if _, err := sub.Unsubscribe5(ctx, []string{"x"}, codec.UserProperty{Key: "k", Value: "v"}); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("user properties on 3.1.1: %v, want ErrUnsupported", err)
		}
		if got := sub.Filters(); !slices.Equal(got, []string{"x", "y", "z"}) {
			t.Fatalf("a refused call changed Filters: %q", got)
		}
		un := async(func() (UnsubscribeResult, error) { return sub.Unsubscribe(ctx, "x", "y") })
		p.expect(&codec.Unsubscribe{PacketID: 3, Filters: []string{"x"}})
		p.send(&codec.Unsuback{PacketID: 3})
		u := <-un
		if u.err != nil || !slices.Equal(u.v.Filters, []string{"x", "y"}) || !slices.Equal(u.v.Sent, []string{"x"}) || len(u.v.Codes) != 0 {
			t.Fatalf("Unsubscribe: %+v %v", u.v, u.err)
		}
		// y now goes to the other subscription only, z still here.
		p.send(&codec.Publish{Topic: "y", Payload: []byte("1")}, &codec.Publish{Topic: "z", Payload: []byte("2")})
		if m, err := other.Next(ctx); err != nil || m.Topic != "y" {
			t.Fatalf("other.Next: %+v %v", m, err)
		}
		if m, err := sub.Next(ctx); err != nil || m.Topic != "z" {
			t.Fatalf("sub.Next: %+v %v", m, err)
		}
		disconnect311(t, c, p)
	})
}

// greet is version-agnostic code: it runs on either client through Conn.
func greet(ctx context.Context, c Conn, name string) (*Subscription, error) {
	sub, err := c.SubscribeFilters(ctx, []Filter{{Topic: "hello/" + name, QoS: AtLeastOnce}, {Topic: "bye/+"}})
	if err != nil {
		return nil, err
	}
	return sub, c.Send(ctx, "hello/"+name, []byte("hi"), AtLeastOnce, Retain)
}

// TestConnBothVersions runs the same Conn code on a 3.1.1 and a 5.0 client
// and checks the packets: per-filter QoS in one SUBSCRIBE, the PUBLISH with
// the common options, DISCONNECT on Close; a negative PUBACK on 5.0 is an
// error of Send.
func TestConnBothVersions(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			run(t, func(t *testing.T) {
				var conn Conn
				var p *peer
				if v == codec.V5 {
					c, n := newTest5(t, Config5{})
					p, _ = connect5(t, c, n, nil)
					conn = c
				} else {
					c, n := newTest311(t, Config{})
					p = connect311(t, c, n)
					conn = c
				}
				ctx := context.Background()
				done := async(func() (*Subscription, error) { return greet(ctx, conn, "ann") })
				p.expect(&codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "hello/ann", QoS: 1}, {Filter: "bye/+"}}})
				p.send(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1, 0}})
				p.expect(&codec.Publish{Topic: "hello/ann", QoS: 1, Retain: true, PacketID: 2, Payload: []byte("hi")})
				p.send(&codec.Puback{PacketID: 2})
				if r := <-done; r.err != nil || !slices.Equal(r.v.Granted(), []codec.ReasonCode{1, 0}) {
					t.Fatalf("greet: %v", r.err)
				}
				if v == codec.V5 {
					sent := async(func() (struct{}, error) { return struct{}{}, conn.Send(ctx, "t", nil, AtLeastOnce) })
					p.expect(&codec.Publish{Topic: "t", QoS: 1, PacketID: 3})
					p.send(&codec.Puback{PacketID: 3, ReasonCode: codec.ReasonQuotaExceeded})
					var re *ReasonError
					if r := <-sent; !errors.As(r.err, &re) || re.Code != codec.ReasonQuotaExceeded {
						t.Fatalf("Send with a negative PUBACK: %v", r.err)
					}
				}
				if conn.State() != StateConnected || conn.Err() != nil {
					t.Fatalf("state %v err %v", conn.State(), conn.Err())
				}
				closed := async(func() (struct{}, error) { return struct{}{}, conn.Close(ctx) })
				p.expect(&codec.Disconnect{})
				if r := <-closed; r.err != nil {
					t.Fatal(r.err)
				}
				<-conn.Done()
				if !errors.Is(conn.Err(), ErrClosed) || conn.State() != StateClosed {
					t.Fatalf("after Close: %v %v", conn.State(), conn.Err())
				}
			})
		})
	}
}
