package client

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/session"
)

// Handler handles one message for a Router. It must not modify m.Payload:
// in fan-out routing other handlers get the same bytes.
type Handler func(ctx context.Context, m Message) error

// ErrNoHandler is what Router.OnError gets for a message that no handler's
// filter matches (a subscription with filters the Router does not handle).
var ErrNoHandler = errors.New("zmqtt: no handler for the topic")

// Router dispatches the messages of one or more subscriptions to handlers by
// topic filter: a per-topic handler API on top of Subscription. The
// subscriptions keep their bounded queues; the Router only reads them, on a
// fixed number of goroutines (Workers), never one per message.
//
// Routing follows the client's: among the handlers whose filter matches the
// topic, the most specific one gets the message (a literal level beats '+',
// which beats '#', compared from the left; then the shorter filter; ties go
// to the handler registered first), with "$share/<group>/" and the client's
// StrippedPrefixes ignored. With FanOut, or for a message of a client with
// Config.FanOut, every matching handler gets it, in registration order.
//
// Acknowledgement: subscribe with ManualAck, and a QoS 1/2 message is
// acknowledged when its handlers have returned, whatever they returned
// (after OnError has had a handler's error); a crash while a handler runs
// leaves the message with the broker. Without ManualAck the client
// acknowledged it when it was queued, as for any subscription. The acknowledgement is
// not withheld on error because an unacknowledged message keeps its place
// in the broker's inflight window until the next reconnect (the broker may
// resend it only then [MQTT-4.4.0-1]), so a handler failing repeatedly would
// stall the whole connection; and MQTT 5.0 has no negative acknowledgement
// that makes the broker deliver again (a PUBACK with an error code ends the
// exchange all the same [MQTT-4.4.0-2]). A handler that must not lose a
// message makes it safe (stores it, retries) before it returns.
//
// The zero Router is ready to use; Handle may be called while Serve runs.
// A Router is safe for concurrent use.
type Router struct {
	// Workers is how many messages are handled at once; default 1: one at
	// a time, in the order they were taken from the subscriptions. With
	// more, the handlers run on that many goroutines and the order across
	// them is lost.
	Workers int
	// FanOut calls every matching handler rather than the most specific
	// one (see Config.FanOut).
	FanOut bool
	// OnError receives each error a handler returns, and ErrNoHandler for
	// a message no handler matches, on the goroutine that ran the
	// handler, before the message is acknowledged. Nil logs it at Warn
	// level through the message's client's Config.Logger (with the topic,
	// never the payload).
	OnError func(Message, error)

	mu     sync.RWMutex
	routes []route
}

type route struct {
	filter string
	h      Handler
}

// Handle registers h for the messages whose topic matches filter. It does
// not subscribe: subscribe to Filters (or to wider filters) and pass the
// Subscription to Serve. Errors: ErrInvalidTopic for a malformed filter,
// an *ArgumentError (ErrInvalidArgument) for a nil handler or a filter
// already handled.
func (r *Router) Handle(filter string, h Handler) error {
	if err := codec.ValidateTopicFilter(filter); err != nil {
		return err
	}
	if h == nil {
		return &ArgumentError{Func: "Router.Handle", Msg: "nil handler for " + strconv.Quote(filter)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rt := range r.routes {
		if rt.filter == filter {
			return &ArgumentError{Func: "Router.Handle", Msg: "a handler for " + strconv.Quote(filter) + " is registered already"}
		}
	}
	r.routes = append(r.routes, route{filter: filter, h: h})
	return nil
}

// Filters returns what to subscribe to so that every handler gets its
// messages: the handled filters, in registration order, less those another
// handled filter covers (every topic they match, it matches too). Filters
// that overlap would each be a subscription of their own on the broker, and
// a broker may then send one copy of a message per matching subscription
// [MQTT-3.3.4-2], which would run the handlers once per copy. Shared
// subscriptions ($share/...) are never left out.
func (r *Router) Filters() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for i, rt := range r.routes {
		covered := false
		for j, other := range r.routes {
			// Of two filters that match the same topics ("#", "+/#"), the
			// first registered stays.
			if i != j && covers(other.filter, rt.filter) && (j < i || !covers(rt.filter, other.filter)) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, rt.filter)
		}
	}
	return out
}

// covers reports whether filter a matches every topic filter b matches.
// Shared subscriptions cover nothing and are covered by nothing: each is a
// subscription of its own kind on the broker.
func covers(a, b string) bool {
	if strings.HasPrefix(a, "$share/") || strings.HasPrefix(b, "$share/") {
		return a == b
	}
	la, lb := strings.Split(a, "/"), strings.Split(b, "/")
	if (la[0] == "+" || la[0] == "#") && strings.HasPrefix(lb[0], "$") {
		return false // a '$' topic never matches a leading wildcard [MQTT-4.7.2-1]
	}
	for i, l := range la {
		switch {
		case l == "#":
			return true // the rest, the parent level included
		case i >= len(lb):
			return false
		case lb[i] == "#":
			// b's '#' takes zero levels or more, a's '+' one: only at the
			// start, where every topic has a level, does "+/#" cover "#".
			return i == 0 && len(la) == 2 && l == "+" && la[1] == "#"
		case l != "+" && l != lb[i]:
			return false
		}
	}
	return len(la) == len(lb)
}

// Serve reads the messages of subs (see Merge) and dispatches each to its
// handler, until ctx ends or every subscription has ended. Handlers get
// ctx. It returns when the handlers it started have returned, with ctx's
// error, or with the subscriptions' end error (ErrSubscriptionClosed when
// they were closed, a client's terminal error when it closed); never nil.
// It does not close the subscriptions. No subscription at all is an
// *ArgumentError.
func (r *Router) Serve(ctx context.Context, subs ...*Subscription) error {
	if len(subs) == 0 {
		return &ArgumentError{Func: "Router.Serve", Msg: "no subscription to serve"}
	}
	workers := max(r.Workers, 1)
	if workers == 1 {
		for m, err := range Merge(ctx, subs...) {
			if err != nil {
				return err
			}
			r.dispatch(ctx, m)
		}
		return ErrSubscriptionClosed // not reached: Merge ends with an error
	}
	// Worker goroutines: each exits when work is closed, which Serve does
	// before it waits for them.
	work := make(chan Message)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for m := range work {
				r.dispatch(ctx, m)
			}
		})
	}
	var end error = ErrSubscriptionClosed
	for m, err := range Merge(ctx, subs...) {
		if err != nil {
			end = err
			break
		}
		work <- m
	}
	close(work)
	wg.Wait()
	return end
}

// dispatch runs the handlers m goes to, reports their errors and
// acknowledges m.
func (r *Router) dispatch(ctx context.Context, m Message) {
	var prefixes []string // nil: the session's defaults
	fanOut := r.FanOut
	if m.c != nil {
		prefixes = m.c.cfg.StrippedPrefixes
		fanOut = fanOut || m.c.cfg.FanOut
	}
	r.mu.RLock()
	var best Handler
	var bestMatch string
	var buf [8]Handler
	all := buf[:0] // fan-out: every matching handler
	for _, rt := range r.routes {
		f := session.StripFilter(rt.filter, prefixes)
		if !codec.MatchTopic(f, m.Topic) {
			continue
		}
		if fanOut {
			all = append(all, rt.h)
			continue
		}
		if best == nil {
			best, bestMatch = rt.h, f
		} else if better, _ := session.MoreSpecific(f, bestMatch); better {
			best, bestMatch = rt.h, f
		}
	}
	r.mu.RUnlock()
	switch {
	case best != nil:
		if err := best(ctx, m); err != nil {
			r.report(m, err)
		}
	case len(all) == 0:
		r.report(m, ErrNoHandler)
	}
	for _, h := range all {
		if err := h(ctx, m); err != nil {
			r.report(m, err)
		}
	}
	m.Ack(ctx)
}

func (r *Router) report(m Message, err error) {
	if r.OnError != nil {
		r.OnError(m, err)
		return
	}
	log := slog.Default()
	if m.c != nil {
		log = m.c.log
	}
	log.Warn("router: message not handled", "topic", m.Topic, "err", err)
}
