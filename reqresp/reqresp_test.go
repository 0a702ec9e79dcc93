package reqresp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/internal/brokertest"
	"github.com/zmqtt/zmqtt-go/internal/faultproxy"
	"github.com/zmqtt/zmqtt-go/reqresp"
	"github.com/zmqtt/zmqtt-go/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var fastReconnect = client.ReconnectPolicy{InitialDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxAttempts: -1}

// connect returns a connected 5.0 client, disconnected at cleanup.
func connect(t *testing.T, ctx context.Context, cfg client.Config5) *client.Client5 {
	t.Helper()
	if cfg.Reconnect == (client.ReconnectPolicy{}) {
		cfg.Reconnect = fastReconnect
	}
	c, err := client.New5(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect %s: %v", cfg.ClientID, err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Disconnect(dctx, 0, nil)
	})
	return c
}

func cfg(url, id string) client.Config5 {
	return client.Config5{Config: client.Config{URL: url, ClientID: id}}
}

// serve runs a Responder until the test ends.
func serve(t *testing.T, ctx context.Context, c *client.Client5, filter string, h reqresp.Handler, opts ...client.SubscribeOption5) *reqresp.Responder {
	t.Helper()
	r, err := reqresp.NewResponder(ctx, c, filter, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Serve(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return r
}

func closeRequester(t *testing.T, r *reqresp.Requester) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Errorf("Requester.Close: %v", err)
	}
}

var replyTopicRE = regexp.MustCompile(`^_zmqtt/reply/[0-9a-f]{32}$`)

// TestThousandConcurrentRequests: 1,000 requests at once over four
// requesters and three responders sharing one subscription: every reply
// reaches the request it answers, none twice, and no reply goes unmatched.
func TestThousandConcurrentRequests(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 120*time.Second)
	url := b.URL(brokertest.MQTT)

	const responders, requesters, each = 3, 4, 250
	var mu sync.Mutex
	served := map[string]int{} // request payload -> times a responder saw it
	byResponder := [responders]int{}
	for i := range responders {
		c := connect(t, ctx, cfg(url, fmt.Sprintf("responder-%d", i)))
		serve(t, ctx, c, "$share/workers/svc/echo", func(_ context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
			mu.Lock()
			served[string(req.Payload)]++
			byResponder[i]++
			mu.Unlock()
			return append([]byte("re:"), req.Payload...), []client.PublishOption5{client.UserProperty("responder", fmt.Sprint(i))}, nil
		}, client.AtLeastOnce)
	}

	reqs := make([]*reqresp.Requester, requesters)
	for i := range reqs {
		c := connect(t, ctx, cfg(url, fmt.Sprintf("requester-%d", i)))
		reqs[i] = reqresp.NewRequester(c, reqresp.Options{ReplyQoS: client.AtLeastOnce})
	}

	type result struct {
		want string
		m    client.Message
		err  error
	}
	results := make(chan result, requesters*each)
	var wg sync.WaitGroup
	for i, r := range reqs {
		for j := range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				payload := fmt.Sprintf("req-%d-%d", i, j)
				m, err := r.Request(ctx, "svc/echo", []byte(payload), client.AtLeastOnce)
				results <- result{want: "re:" + payload, m: m, err: err}
			}()
		}
	}
	wg.Wait()
	close(results)
	got := map[string]bool{}
	var failed []string
	for res := range results {
		if res.err != nil {
			failed = append(failed, fmt.Sprintf("%s (%v)", res.want, res.err))
			continue
		}
		if p := string(res.m.Payload); p != res.want {
			t.Errorf("a request got %q, want %q: a reply reached the wrong request", p, res.want)
		}
		if got[res.want] {
			t.Errorf("%q answered twice", res.want)
		}
		got[res.want] = true
		if len(res.m.Properties.CorrelationData) != 16 {
			t.Errorf("reply correlation data %x, want the 16 bytes of the request", res.m.Properties.CorrelationData)
		}
	}
	if len(failed) > 0 {
		mu.Lock()
		for _, f := range failed[:min(len(failed), 5)] {
			p := strings.TrimPrefix(strings.Fields(f)[0], "re:")
			t.Logf("%s: served %d times", f, served[p])
		}
		mu.Unlock()
		for i, r := range reqs {
			t.Logf("requester %d: %d replies unmatched", i, r.Unmatched())
		}
		t.Fatalf("%d of %d requests failed", len(failed), requesters*each)
	}
	if len(got) != requesters*each {
		t.Fatalf("%d distinct replies, want %d", len(got), requesters*each)
	}
	topics := map[string]bool{}
	for _, r := range reqs {
		if !replyTopicRE.MatchString(r.ReplyTopic()) {
			t.Errorf("reply topic %q does not match %v", r.ReplyTopic(), replyTopicRE)
		}
		topics[r.ReplyTopic()] = true
		closeRequester(t, r)
		if n := r.Unmatched(); n != 0 {
			t.Errorf("%d replies unmatched", n)
		}
	}
	if len(topics) != requesters {
		t.Errorf("%d distinct reply topics for %d requesters", len(topics), requesters)
	}
	mu.Lock()
	defer mu.Unlock()
	for p, n := range served {
		if n != 1 {
			t.Errorf("request %q served %d times", p, n)
		}
	}
	t.Logf("served per responder: %v", byResponder)
}

// TestRequestWireFormat: a request carries the requester's reply topic and
// 16 fresh random bytes of correlation data [§4.10]; the responder's
// reply goes to that topic with the same correlation data and the
// request's content type.
func TestRequestWireFormat(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	url := b.URL(brokertest.MQTT)

	spy := connect(t, ctx, cfg(url, "spy"))
	seen, err := spy.Subscribe(ctx, []string{"svc/#", "_zmqtt/reply/#"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	srv := connect(t, ctx, cfg(url, "server"))
	serve(t, ctx, srv, "svc/upper", func(_ context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
		return bytes.ToUpper(req.Payload), nil, nil
	})
	r := reqresp.NewRequester(connect(t, ctx, cfg(url, "asker")), reqresp.Options{})
	defer closeRequester(t, r)

	var corrs [][]byte
	for _, word := range []string{"one", "two"} {
		m, err := r.Request(ctx, "svc/upper", []byte(word), client.ContentType("text/plain"))
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != strings.ToUpper(word) {
			t.Fatalf("reply %q to %q", m.Payload, word)
		}
		if m.Topic != r.ReplyTopic() || m.Properties.ContentType != "text/plain" {
			t.Errorf("reply on %q with content type %q; want %q and text/plain", m.Topic, m.Properties.ContentType, r.ReplyTopic())
		}
		// The spy saw the request, then the reply.
		req, rep := next(t, ctx, seen), next(t, ctx, seen)
		if req.Topic != "svc/upper" || rep.Topic != r.ReplyTopic() {
			t.Fatalf("spy saw %q then %q", req.Topic, rep.Topic)
		}
		if req.Properties.ResponseTopic != r.ReplyTopic() || !replyTopicRE.MatchString(req.Properties.ResponseTopic) {
			t.Errorf("request response topic %q", req.Properties.ResponseTopic)
		}
		if c := req.Properties.CorrelationData; len(c) != 16 || !bytes.Equal(c, rep.Properties.CorrelationData) || !bytes.Equal(c, m.Properties.CorrelationData) {
			t.Errorf("correlation data: request %x, reply %x", c, rep.Properties.CorrelationData)
		}
		corrs = append(corrs, req.Properties.CorrelationData)
	}
	if bytes.Equal(corrs[0], corrs[1]) {
		t.Errorf("two requests shared correlation data %x", corrs[0])
	}
}

func next(t *testing.T, ctx context.Context, s *client.Subscription) client.Message {
	t.Helper()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

// TestUnmatchedAndLateReplies: a reply with foreign correlation data, and
// a reply that comes after its request gave up, reach no request; they are
// counted, and a later request gets its own reply only.
func TestUnmatchedAndLateReplies(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	url := b.URL(brokertest.MQTT)
	other := connect(t, ctx, cfg(url, "other"))
	r := reqresp.NewRequester(connect(t, ctx, cfg(url, "asker")), reqresp.Options{ReplyQoS: client.AtLeastOnce})

	// Nobody answers: the request ends with its context.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := r.RequestCorrelated(short, "svc/nobody", []byte("hello?"), []byte("late-1"), client.AtLeastOnce)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered request: %v, want context.DeadlineExceeded", err)
	}

	// Then the late reply, a foreign one, and the reply to a new request:
	// the broker keeps one publisher's order, so when the last arrives the
	// first two are already in the requester's reply subscription.
	// The second request registers its correlation data before it is
	// published: once a watcher sees it, a reply to it finds it waiting.
	watch, err := other.Subscribe(ctx, []string{"svc/nobody"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		m, err := r.RequestCorrelated(ctx, "svc/nobody", []byte("again"), []byte("mine"), client.AtLeastOnce)
		if err == nil && string(m.Payload) != "for mine" {
			err = fmt.Errorf("got %q, want the reply to this request", m.Payload)
		}
		answered <- err
	}()
	if m := next(t, ctx, watch); string(m.Payload) != "again" {
		t.Fatalf("watcher saw %q", m.Payload)
	}
	reply := func(payload, corr string) {
		if _, err := other.Publish(ctx, r.ReplyTopic(), []byte(payload), client.AtLeastOnce, client.CorrelationData([]byte(corr))); err != nil {
			t.Fatal(err)
		}
	}
	reply("for late-1", "late-1")
	reply("for nobody", "foreign")
	reply("for mine", "mine")
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	closeRequester(t, r) // waits until the reply subscription is drained
	if n := r.Unmatched(); n != 2 {
		t.Fatalf("Unmatched = %d, want 2 (the late and the foreign reply)", n)
	}
}

// TestHandlerError: a handler's error becomes a reply with an empty
// payload and a user property "error", so the requester does not wait in
// vain; a message without a Response Topic is not a request and is
// counted as ignored.
func TestHandlerError(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	url := b.URL(brokertest.MQTT)
	srv := connect(t, ctx, cfg(url, "server"))
	resp := serve(t, ctx, srv, "svc/fail", func(context.Context, client.Message) ([]byte, []client.PublishOption5, error) {
		return []byte("ignored"), nil, errors.New("no such item")
	}, client.AtLeastOnce)
	asker := connect(t, ctx, cfg(url, "asker"))
	// Not a request: published before the request, so served before it.
	if _, err := asker.Publish(ctx, "svc/fail", []byte("plain"), client.AtLeastOnce); err != nil {
		t.Fatal(err)
	}
	r := reqresp.NewRequester(asker, reqresp.Options{})
	defer closeRequester(t, r)
	m, err := r.Request(ctx, "svc/fail", []byte("item 7"), client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Payload) != 0 {
		t.Errorf("error reply payload %q, want empty", m.Payload)
	}
	if msg, ok := reqresp.ReplyError(m); !ok || msg != "no such item" {
		t.Errorf("error reply user properties %v, want error=no such item", m.Properties.User)
	}
	if n := resp.Ignored(); n != 1 {
		t.Errorf("Ignored = %d, want 1", n)
	}
}

// TestMaxPending: with MaxPending 2, a third request waits for a slot and
// is never published if its context ends first; the first two complete.
func TestMaxPending(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	url := b.URL(brokertest.MQTT)
	spy := connect(t, ctx, cfg(url, "spy"))
	seen, err := spy.Subscribe(ctx, []string{"svc/slow"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := connect(t, ctx, cfg(url, "server"))
	serve(t, ctx, srv, "svc/slow", func(_ context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
		if string(req.Payload) != "marker" {
			<-release
		}
		return req.Payload, nil, nil
	})
	r := reqresp.NewRequester(connect(t, ctx, cfg(url, "asker")), reqresp.Options{MaxPending: 2})
	defer closeRequester(t, r)
	done := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := r.Request(ctx, "svc/slow", []byte(fmt.Sprint("r", i)))
			done <- err
		}()
	}
	next(t, ctx, seen)
	next(t, ctx, seen) // both are out and waiting
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = r.Request(short, "svc/slow", []byte("r3"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third request: %v, want context.DeadlineExceeded", err)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The spy sees the marker next: the third request was never sent.
	if _, err := spy.Publish(ctx, "svc/slow", []byte("marker"), client.AtLeastOnce); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ctx, seen); string(m.Payload) != "marker" {
		t.Fatalf("the spy saw %q: a request over MaxPending was published", m.Payload)
	}
}

// TestDuplicateCorrelation: two waiting requests cannot share correlation
// data on one reply topic.
func TestDuplicateCorrelation(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	url := b.URL(brokertest.MQTT)
	spy := connect(t, ctx, cfg(url, "spy"))
	seen, err := spy.Subscribe(ctx, []string{"svc/none"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	r := reqresp.NewRequester(connect(t, ctx, cfg(url, "asker")), reqresp.Options{})
	first, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := r.RequestCorrelated(first, "svc/none", []byte("a"), []byte("same"))
		done <- err
	}()
	next(t, ctx, seen)
	if _, err := r.RequestCorrelated(ctx, "svc/none", []byte("b"), []byte("same")); !errors.Is(err, reqresp.ErrDuplicateCorrelation) {
		t.Errorf("second request with the same correlation data: %v, want ErrDuplicateCorrelation", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
	closeRequester(t, r)
	if _, err := r.Request(ctx, "svc/none", nil); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Request after Close: %v, want client.ErrClosed", err)
	}
}

// TestSurvivesReconnect: the requester's connection is reset while a
// request waits for its reply. With a persistent session and QoS 1, the
// broker keeps the reply and delivers it after the reconnect, and the
// reply subscription serves later requests too.
func TestSurvivesReconnect(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 60*time.Second)
	proxy, err := faultproxy.Start(b.Addr(brokertest.MQTT))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// QoS 1 is at least once: the request may reach the responder again
	// when the reset lost its PUBACK. So release is closed, not sent to,
	// once the connection is reset: every handler, duplicate or not, waits
	// for the reset and none waits after it; and each gives up with its
	// context, so that the responder can stop when the test fails.
	got := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := connect(t, ctx, cfg(b.URL(brokertest.MQTT), "server"))
	serve(t, ctx, srv, "svc/echo", func(hctx context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
		select {
		case got <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-hctx.Done():
			return nil, nil, hctx.Err()
		}
		return req.Payload, nil, nil
	}, client.AtLeastOnce)

	c := connect(t, ctx, client.Config5{Config: client.Config{URL: "mqtt://" + proxy.Addr(), ClientID: "asker", Persistent: true}, SessionExpiry: 10 * time.Minute})
	r := reqresp.NewRequester(c, reqresp.Options{ReplyQoS: client.AtLeastOnce})
	defer closeRequester(t, r)

	done := make(chan error, 1)
	go func() {
		m, err := r.Request(ctx, "svc/echo", []byte("across"), client.AtLeastOnce)
		if err == nil && string(m.Payload) != "across" {
			err = fmt.Errorf("reply %q", m.Payload)
		}
		done <- err
	}()
	<-got // the request reached the responder
	conns := proxy.Connections()
	proxy.ResetAll()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("request across a reconnect: %v", err)
	}
	if proxy.Connections() == conns {
		t.Fatal("the requester did not reconnect")
	}
	if m, err := r.Request(ctx, "svc/echo", []byte("after"), client.AtLeastOnce); err != nil || string(m.Payload) != "after" {
		t.Fatalf("request after the reconnect: %q, %v", m.Payload, err)
	}
}

// TestResponseInformationFromMosquitto: Mosquitto sends no Response
// Information; a requester told to build its reply topic from it says so
// instead of inventing one.
func TestResponseInformationFromMosquitto(t *testing.T) {
	b := brokertest.Start(t)
	ctx := deadline(t, 30*time.Second)
	c := connect(t, ctx, client.Config5{Config: client.Config{URL: b.URL(brokertest.MQTT), ClientID: "asker"}, RequestResponseInfo: true})
	info, err := c.Info()
	if err != nil {
		t.Fatal(err)
	}
	r := reqresp.NewRequester(c, reqresp.Options{UseResponseInformation: true})
	defer closeRequester(t, r)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = r.Request(short, "svc/x", nil)
	if info.ResponseInfo == "" {
		if err == nil || !strings.Contains(err.Error(), "Response Information") {
			t.Fatalf("without Response Information: %v, want an error naming it", err)
		}
		return
	}
	if !strings.HasPrefix(r.ReplyTopic(), strings.TrimSuffix(info.ResponseInfo, "/")+"/") {
		t.Fatalf("reply topic %q does not start with the Response Information %q", r.ReplyTopic(), info.ResponseInfo)
	}
}

// TestResponseInformationPrefix: against a scripted broker that sends
// Response Information, the reply topic is "<information>/<32 hex>", it is
// subscribed before the request is published, and the reply is matched on
// it.
func TestResponseInformationPrefix(t *testing.T) {
	ctx := deadline(t, 30*time.Second)
	server := make(chan net.Conn, 1)
	c, err := client.New5(client.Config5{
		Config: client.Config{URL: "mqtt://scripted", ClientID: "asker", Dial: func(context.Context) (net.Conn, error) {
			a, b := transport.Pipe()
			server <- b
			return a, nil
		}},
		RequestResponseInfo: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan error, 1)
	go func() { connected <- c.Connect(ctx) }()
	conn := <-server
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	rd := codec.NewReader(conn, 0)
	dec := codec.Decoder{Version: codec.V5, From: codec.RoleClient}
	recv := func() codec.Packet {
		t.Helper()
		_, raw, err := rd.Next()
		if err != nil {
			t.Fatalf("scripted broker read: %v", err)
		}
		p, _, err := dec.Decode(raw)
		if err != nil {
			t.Fatalf("client sent % x: %v", raw, err)
		}
		return codec.Clone(p)
	}
	send := func(p codec.Packet) {
		t.Helper()
		b, err := codec.Append(nil, p, codec.V5)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	cp, ok := recv().(*codec.Connect)
	if !ok || cp.Props.RequestResponseInfo != 1 {
		t.Fatalf("CONNECT %+v: want Request Response Information 1", cp)
	}
	send(&codec.Connack{Props: codec.Properties{ResponseInfo: "replies/u17"}})
	if err := <-connected; err != nil {
		t.Fatal(err)
	}

	r := reqresp.NewRequester(c, reqresp.Options{UseResponseInformation: true})
	answer := make(chan error, 1)
	go func() {
		m, err := r.Request(ctx, "svc/q", []byte("ping"))
		if err == nil && string(m.Payload) != "pong" {
			err = fmt.Errorf("reply %q", m.Payload)
		}
		answer <- err
	}()
	sub, ok := recv().(*codec.Subscribe)
	if !ok || len(sub.Subscriptions) != 1 {
		t.Fatalf("first packet after CONNACK: %+v, want the reply SUBSCRIBE", sub)
	}
	topic := sub.Subscriptions[0].Filter
	if !regexp.MustCompile(`^replies/u17/[0-9a-f]{32}$`).MatchString(topic) {
		t.Fatalf("reply topic %q, want replies/u17/<32 hex>", topic)
	}
	send(&codec.Suback{PacketID: sub.PacketID, ReasonCodes: []codec.ReasonCode{0}})
	req, ok := recv().(*codec.Publish)
	if !ok || req.Topic != "svc/q" || req.Props.ResponseTopic != topic || len(req.Props.CorrelationData) != 16 {
		t.Fatalf("request %+v", req)
	}
	// A reply with other correlation data first: it must not end the request.
	send(&codec.Publish{Topic: topic, Payload: []byte("not yours"), Props: codec.Properties{CorrelationData: []byte("x")}})
	send(&codec.Publish{Topic: topic, Payload: []byte("pong"), Props: codec.Properties{CorrelationData: req.Props.CorrelationData}})
	if err := <-answer; err != nil {
		t.Fatal(err)
	}

	// Close unsubscribes; Disconnect ends the connection.
	closed := make(chan error, 1)
	go func() { closed <- r.Close(ctx) }()
	un, ok := recv().(*codec.Unsubscribe)
	if !ok {
		t.Fatalf("Close sent %T, want UNSUBSCRIBE", un)
	}
	send(&codec.Unsuback{PacketID: un.PacketID, ReasonCodes: []codec.ReasonCode{0}})
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := r.Unmatched(); n != 1 {
		t.Errorf("Unmatched = %d, want 1", n)
	}
	disc := make(chan error, 1)
	go func() { disc <- c.Disconnect(ctx, 0, nil) }()
	if _, ok := recv().(*codec.Disconnect); !ok {
		t.Fatal("want DISCONNECT")
	}
	if err := <-disc; err != nil {
		t.Fatal(err)
	}
}

// TestReplyNotPublished: a reply larger than the server's Maximum Packet
// Size is replaced by an error reply that says why; a reply the broker
// refuses (its ACL denies the Response Topic, PUBACK 0x87) and whose error
// reply is refused too is counted by Failed. Serve goes on either way.
func TestReplyNotPublished(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{
		Users: map[string]string{"server": "s", "asker": "a"},
		ACL: "user server\ntopic read svc/#\ntopic write _zmqtt/reply/#\n\n" +
			"user asker\ntopic readwrite #\n",
		Extra: []string{"max_packet_size 1024"},
	})
	ctx := deadline(t, 60*time.Second)
	url := b.URL(brokertest.MQTT)
	withUser := func(id, user, pass string) client.Config5 {
		c := cfg(url, id)
		c.Username, c.Password = user, []byte(pass)
		return c
	}
	srv := connect(t, ctx, withUser("server", "server", "s"))
	resp := serve(t, ctx, srv, "svc/size", func(_ context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
		if string(req.Payload) == "big" {
			return bytes.Repeat([]byte("x"), 4096), nil, nil
		}
		return req.Payload, nil, nil
	}, client.AtLeastOnce)
	asker := connect(t, ctx, withUser("asker", "asker", "a"))
	r := reqresp.NewRequester(asker, reqresp.Options{})
	defer closeRequester(t, r)

	m, err := r.Request(ctx, "svc/size", []byte("big"), client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := reqresp.ReplyError(m)
	if len(m.Payload) != 0 || !strings.HasPrefix(msg, "reply not sent: ") || !strings.Contains(msg, "maximum packet size") {
		t.Errorf("oversize reply: payload %d bytes, error property %q; want an empty error reply naming the size", len(m.Payload), msg)
	}

	// A request whose Response Topic the server may not write to. The
	// asker publishes both requests at QoS 1 on one connection, so the
	// Responder serves them in order: when the second is answered the
	// first has been given up.
	if _, err := asker.Publish(ctx, "svc/size", []byte("lost"), client.AtLeastOnce,
		client.ResponseTopic("denied/reply"), client.CorrelationData([]byte("c1"))); err != nil {
		t.Fatal(err)
	}
	m, err = r.Request(ctx, "svc/size", []byte("small"), client.AtLeastOnce)
	if err != nil || string(m.Payload) != "small" {
		t.Fatalf("request after the refused reply: %q, %v; want the echo", m.Payload, err)
	}
	if msg, ok := reqresp.ReplyError(m); ok {
		t.Errorf("a plain reply is taken for an error reply %q", msg)
	}
	if n := resp.Failed(); n != 1 {
		t.Errorf("Failed = %d, want 1 (the reply to denied/reply)", n)
	}
}
