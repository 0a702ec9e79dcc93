// Package reqresp is MQTT 5.0 request/response on top of a client.Client5:
// a Requester that publishes a request with a Response Topic and
// Correlation Data and waits for the one reply that matches both exactly,
// and a Responder that answers requests on a topic filter.
//
// It imports client and codec only. The matching itself happens in the
// session's router, before subscriptions: a reply that matches a waiting
// request goes to that request and nowhere else; a late or unmatched reply
// goes to normal routing (here: the requester's reply subscription, which
// counts and discards it). A request never receives another request's reply.
package reqresp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

// DefaultReplyPrefix is the first part of a generated reply topic; the rest
// is 32 lowercase hexadecimal characters (16 random bytes).
const DefaultReplyPrefix = "_zmqtt/reply/"

// ErrDuplicateCorrelation: a request with the same correlation data is
// already waiting on the same reply topic.
var ErrDuplicateCorrelation = errors.New("zmqtt: correlation data already in use on this reply topic")

// Requester sends requests and waits for their replies. It subscribes its
// reply topic once, before its first request is published, and keeps the
// subscription across reconnects (the client restores it). It is safe for
// concurrent use; at most MaxPending requests wait at once, the others wait
// for a slot (with their context).
type Requester struct {
	c     *client.Client5
	cfg   Options
	slots chan struct{}

	mu        sync.Mutex
	topic     string
	sub       *client.Subscription
	inflight  map[string]bool // correlation data in use
	drainDone chan struct{}
	closed    bool

	unmatched atomic.Uint64
}

// Options configure a Requester. Zero values are the defaults.
type Options struct {
	// ReplyTopic is the topic replies come back on; default DefaultReplyPrefix
	// followed by 32 random hexadecimal characters.
	ReplyTopic string
	// UseResponseInformation builds the reply topic from the Response
	// Information of the CONNACK (the client must set
	// Config5.RequestResponseInfo): "<response information>/<32 hex>".
	UseResponseInformation bool
	// ReplyQoS is the QoS of the reply subscription; default AtMostOnce, as
	// the seed.
	ReplyQoS client.QoS
	// MaxPending bounds the requests waiting at once; default 1000.
	MaxPending int
}

// NewRequester returns a Requester on c. It does no I/O yet.
func NewRequester(c *client.Client5, opts Options) *Requester {
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1000
	}
	return &Requester{c: c, cfg: opts, slots: make(chan struct{}, opts.MaxPending), inflight: make(map[string]bool)}
}

func randomHex() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ReplyTopic returns the reply topic, once the first request chose it.
func (r *Requester) ReplyTopic() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topic
}

// Unmatched returns how many replies arrived with no request waiting (late,
// or not ours).
func (r *Requester) Unmatched() uint64 { return r.unmatched.Load() }

// ensure subscribes the reply topic on first use.
func (r *Requester) ensure(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "", client.ErrClosed
	}
	if r.sub != nil {
		return r.topic, nil
	}
	topic := r.cfg.ReplyTopic
	if topic == "" {
		prefix := DefaultReplyPrefix
		if r.cfg.UseResponseInformation {
			info, err := r.c.Info()
			if err != nil {
				return "", err
			}
			if info.ResponseInfo == "" {
				return "", errors.New("zmqtt: the broker sent no Response Information (set Config5.RequestResponseInfo)")
			}
			prefix = strings.TrimSuffix(info.ResponseInfo, "/") + "/"
		}
		topic = prefix + randomHex()
	}
	if err := codec.ValidateTopicName(topic); err != nil {
		return "", err
	}
	sub, err := r.c.Subscribe(ctx, []string{topic}, r.cfg.ReplyQoS, client.QueueSize(64))
	if err != nil {
		return "", err
	}
	r.topic, r.sub = topic, sub
	r.drainDone = make(chan struct{})
	go r.drain(sub, r.drainDone)
	return topic, nil
}

// drain discards replies no request waited for, so that they never fill
// the subscription's queue. It exits when the subscription closes.
func (r *Requester) drain(sub *client.Subscription, done chan struct{}) {
	defer close(done)
	for {
		if _, err := sub.Next(context.Background()); err != nil {
			return
		}
		r.unmatched.Add(1)
	}
}

// Request publishes payload to topic as a request, with the requester's
// reply topic and 16 random bytes of correlation data, and returns the
// reply. opts add a QoS, Retain or MQTT 5.0 properties to the request (its
// Response Topic and Correlation Data are the requester's and override any
// in opts). The context bounds the whole call: waiting for a slot,
// subscribing, publishing and waiting for the reply. Errors: the publish's
// errors, client.ErrClosed, and ctx's error when no reply came in time.
func (r *Requester) Request(ctx context.Context, topic string, payload []byte, opts ...client.PublishOption5) (client.Message, error) {
	corr := make([]byte, 16)
	rand.Read(corr)
	return r.RequestCorrelated(ctx, topic, payload, corr, opts...)
}

// RequestCorrelated is Request with the caller's correlation data, used as
// given (an empty slice included). Two waiting requests cannot share it:
// the second gets ErrDuplicateCorrelation.
func (r *Requester) RequestCorrelated(ctx context.Context, topic string, payload, corr []byte, opts ...client.PublishOption5) (client.Message, error) {
	if corr == nil {
		corr = []byte{}
	}
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		return client.Message{}, ctx.Err()
	}
	resp, err := r.ensure(ctx)
	if err != nil {
		return client.Message{}, err
	}
	key := string(corr)
	r.mu.Lock()
	if r.inflight[key] {
		r.mu.Unlock()
		return client.Message{}, ErrDuplicateCorrelation
	}
	r.inflight[key] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.inflight, key)
		r.mu.Unlock()
	}()
	ch, cancel, err := r.c.ExpectReply(ctx, resp, corr)
	if err != nil {
		return client.Message{}, err
	}
	all := append(append([]client.PublishOption5(nil), opts...), client.ResponseTopic(resp), client.CorrelationData(corr))
	if _, err := r.c.Publish(ctx, topic, payload, all...); err != nil {
		cancel()
		return client.Message{}, err
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return client.Message{}, client.ErrClosed
		}
		return m, nil
	case <-ctx.Done():
		cancel()
		return client.Message{}, ctx.Err()
	}
}

// Close unsubscribes the reply topic. Requests still waiting return
// client.ErrClosed or their context's error.
func (r *Requester) Close(ctx context.Context) error {
	r.mu.Lock()
	sub, done := r.sub, r.drainDone
	r.closed, r.sub = true, nil
	r.mu.Unlock()
	if sub == nil {
		return nil
	}
	_, err := sub.Close(ctx)
	<-done
	return err
}

// ErrorProperty is the user property of an error reply: a Responder sends
// it, with the error's text, in place of a reply it could not give.
const ErrorProperty = "error"

// ReplyError reports whether reply is an error reply (see Handler and
// Responder.Serve) and returns its text.
func ReplyError(reply client.Message) (string, bool) {
	for _, u := range reply.Properties.User {
		if u.Key == ErrorProperty {
			return u.Value, true
		}
	}
	return "", false
}

// Handler answers one request. It returns the reply's payload, and may add
// publish options (a content type, user properties); returning an error
// sends a reply with an empty payload and a user property ErrorProperty that
// holds the error's text, so the requester does not wait in vain.
type Handler func(ctx context.Context, req client.Message) ([]byte, []client.PublishOption5, error)

// Responder serves a Handler on a topic filter.
type Responder struct {
	c       *client.Client5
	sub     *client.Subscription
	h       Handler
	ignored atomic.Uint64
	failed  atomic.Uint64
}

// NewResponder subscribes filter (with opts, for example a shared
// subscription "$share/group/filter" and a QoS) and returns a Responder;
// call Serve to answer requests.
func NewResponder(ctx context.Context, c *client.Client5, filter string, h Handler, opts ...client.SubscribeOption5) (*Responder, error) {
	sub, err := c.Subscribe(ctx, []string{filter}, opts...)
	if err != nil {
		return nil, err
	}
	return &Responder{c: c, sub: sub, h: h}, nil
}

// Ignored returns how many messages arrived without a Response Topic.
func (s *Responder) Ignored() uint64 { return s.ignored.Load() }

// Failed returns how many requests got no reply at all: both the reply
// and the error reply that replaces it could not be published (see Serve).
func (s *Responder) Failed() uint64 { return s.failed.Load() }

// Serve answers requests one at a time until ctx is done or the
// subscription ends, and returns why (ctx's error, or
// client.ErrSubscriptionClosed after Close). Each reply goes to the
// request's Response Topic with its Correlation Data, at the request's
// QoS, with the request's Content Type unless the handler sets one.
//
// A request whose reply cannot be published does not stop Serve, which
// goes on with the next request. When the reply itself is refused (for
// example it is larger than the server's Maximum Packet Size:
// codec.ErrPacketTooLarge), Serve sends an error reply in its place, so the
// requester does not wait in vain; when that fails too (the Response Topic
// is not a valid topic name, say) the request is counted by Failed.
// Serve returns at once if the client is closed (client.ErrClosed).
func (s *Responder) Serve(ctx context.Context) error {
	for {
		req, err := s.sub.Next(ctx)
		if err != nil {
			return err
		}
		if req.Properties.ResponseTopic == "" {
			s.ignored.Add(1)
			continue
		}
		payload, opts, herr := s.h(ctx, req)
		all := []client.PublishOption5{client.QoS(req.QoS)}
		if req.Properties.Has(codec.PropCorrelationData) {
			all = append(all, client.CorrelationData(req.Properties.CorrelationData))
		}
		if req.Properties.ContentType != "" {
			all = append(all, client.ContentType(req.Properties.ContentType))
		}
		base := len(all)
		all = append(all, opts...)
		if herr != nil {
			payload = nil
			all = append(all, client.UserProperty(ErrorProperty, herr.Error()))
		}
		_, err = s.c.Publish(ctx, req.Properties.ResponseTopic, payload, all...)
		if err != nil && herr == nil && ctx.Err() == nil && !errors.Is(err, client.ErrClosed) {
			// The reply was refused: tell the requester why instead.
			all = append(all[:base], client.UserProperty(ErrorProperty, "reply not sent: "+err.Error()))
			_, err = s.c.Publish(ctx, req.Properties.ResponseTopic, nil, all...)
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, client.ErrClosed):
			return err
		default:
			s.failed.Add(1)
		}
	}
}

// Close unsubscribes the Responder's filter.
func (s *Responder) Close(ctx context.Context) error {
	_, err := s.sub.Close(ctx)
	return err
}
