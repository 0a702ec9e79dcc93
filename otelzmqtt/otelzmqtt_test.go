package otelzmqtt_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/mqtttest"
	"github.com/zmqtt/zmqtt-go/otelzmqtt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is one side's OpenTelemetry SDK: spans exported synchronously into
// memory, metrics read on demand.
type rig struct {
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.tp.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := r.mp.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return r
}

func (r *rig) observer(opts ...otelzmqtt.Option) *client.Observer {
	o := otelzmqtt.NewObserver(append([]otelzmqtt.Option{
		otelzmqtt.WithTracerProvider(r.tp), otelzmqtt.WithMeterProvider(r.mp)}, opts...)...)
	return &o
}

// span returns the one ended span named name.
func (r *rig) span(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range r.spans.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1; all: %v", len(found), name, spanNames(r.spans.GetSpans()))
	}
	return found[0]
}

func spanNames(ss tracetest.SpanStubs) []string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return n
}

// metrics collects r's metrics by name.
func (r *rig) metrics(t *testing.T, ctx context.Context) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelzmqtt.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, otelzmqtt.ScopeName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// counts sums a counter's points by messaging.mqtt.qos, and checks that
// none carries the topic.
func counts(t *testing.T, a metricdata.Aggregation) map[int64]int64 {
	t.Helper()
	sum, ok := a.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("aggregation %T, want Sum[int64]", a)
	}
	out := map[int64]int64{}
	for _, p := range sum.DataPoints {
		if _, ok := p.Attributes.Value(otelzmqtt.KeyDestination); ok {
			t.Errorf("counter point carries the topic: %v", p.Attributes.ToSlice())
		}
		q, _ := p.Attributes.Value(otelzmqtt.KeyMQTTQoS)
		out[q.AsInt64()] += p.Value
	}
	return out
}

func attrs(kv []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, a := range kv {
		m[a.Key] = a.Value
	}
	return m
}

func userProp(m client.Message, key string) (string, bool) {
	for _, u := range m.Properties.User {
		if u.Key == key {
			return u.Value, true
		}
	}
	return "", false
}

func connect5(t *testing.T, ctx context.Context, cfg client.Config) *client.Client5 {
	t.Helper()
	c, err := client.New5(client.Config5{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Disconnect(dctx, 0, nil)
	})
	return c
}

// A publish at each QoS on MQTT 5.0, made inside a parent span: the
// publish span is the parent's child, its context travels through
// Mosquitto as the traceparent user property, the subscriber's receive
// span links to it (or is its child with WithReceiveAsChild), and Extract
// gives it back to the application.
func TestTraceContextAcrossBroker(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	for _, child := range []bool{false, true} {
		for q := client.AtMostOnce; q <= client.ExactlyOnce; q++ {
			t.Run(fmt.Sprintf("qos%d/child=%v", q, child), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				defer cancel()
				pubSide, subSide := newRig(t), newRig(t)
				topic := fmt.Sprintf("otel/trace/%d/%v", q, child)
				subOpts := []otelzmqtt.Option{otelzmqtt.WithClientID("sub")}
				if child {
					subOpts = append(subOpts, otelzmqtt.WithReceiveAsChild())
				}
				subc := connect5(t, ctx, client.Config{URL: b.URL(mqtttest.TCP), ClientID: fmt.Sprintf("sub-%d-%v", q, child), Observer: subSide.observer(subOpts...)})
				sub, err := subc.Subscribe(ctx, []string{topic}, q)
				if err != nil {
					t.Fatal(err)
				}
				pub := connect5(t, ctx, client.Config{URL: b.URL(mqtttest.TCP), ClientID: fmt.Sprintf("pub-%d-%v", q, child),
					Observer: pubSide.observer(otelzmqtt.WithClientID("pub"), otelzmqtt.WithServer("127.0.0.1", b.Port(mqtttest.TCP)))})

				pctx, parent := pubSide.tp.Tracer("test").Start(ctx, "parent")
				if _, err := pub.Publish(pctx, topic, []byte("hello"), q); err != nil {
					t.Fatal(err)
				}
				parent.End()
				m, err := sub.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}

				ps := pubSide.span(t, "publish "+topic)
				if ps.SpanKind != trace.SpanKindProducer {
					t.Errorf("publish span kind %v, want producer", ps.SpanKind)
				}
				if ps.Parent.SpanID() != parent.SpanContext().SpanID() || ps.SpanContext.TraceID() != parent.SpanContext().TraceID() {
					t.Errorf("publish span's parent %v, want the caller's span %v", ps.Parent, parent.SpanContext())
				}
				if ps.Status.Code != codes.Unset {
					t.Errorf("publish span status %v, want unset", ps.Status)
				}
				a := attrs(ps.Attributes)
				for k, want := range map[attribute.Key]attribute.Value{
					otelzmqtt.KeySystem:        attribute.StringValue("mqtt"),
					otelzmqtt.KeyDestination:   attribute.StringValue(topic),
					otelzmqtt.KeyOperationType: attribute.StringValue("send"),
					otelzmqtt.KeyOperationName: attribute.StringValue("publish"),
					otelzmqtt.KeyBodySize:      attribute.IntValue(5),
					otelzmqtt.KeyClientID:      attribute.StringValue("pub"),
					otelzmqtt.KeyServerAddress: attribute.StringValue("127.0.0.1"),
					otelzmqtt.KeyServerPort:    attribute.IntValue(b.Port(mqtttest.TCP)),
					otelzmqtt.KeyMQTTQoS:       attribute.IntValue(int(q)),
					otelzmqtt.KeyMQTTVersion:   attribute.StringValue("5.0"),
				} {
					if a[k] != want {
						t.Errorf("publish span %s = %v, want %v", k, a[k].Emit(), want.Emit())
					}
				}

				tp, ok := userProp(m, "traceparent")
				if !ok {
					t.Fatalf("received message has no traceparent; user properties %v", m.Properties.User)
				}
				wantTP := fmt.Sprintf("00-%s-%s-01", ps.SpanContext.TraceID(), ps.SpanContext.SpanID())
				if tp != wantTP {
					t.Errorf("traceparent %q, want %q (the publish span)", tp, wantTP)
				}

				rs := subSide.span(t, "receive "+topic)
				if rs.SpanKind != trace.SpanKindConsumer {
					t.Errorf("receive span kind %v, want consumer", rs.SpanKind)
				}
				if len(rs.Links) != 1 || !rs.Links[0].SpanContext.Equal(ps.SpanContext.WithRemote(true)) {
					t.Errorf("receive span links %v, want one to the publish span %v", rs.Links, ps.SpanContext)
				}
				sameTrace := rs.SpanContext.TraceID() == ps.SpanContext.TraceID()
				if sameTrace != child {
					t.Errorf("receive span in the publisher's trace: %v, want %v", sameTrace, child)
				}
				if child && rs.Parent.SpanID() != ps.SpanContext.SpanID() {
					t.Errorf("receive span's parent %v, want the publish span", rs.Parent.SpanID())
				}
				ra := attrs(rs.Attributes)
				if ra[otelzmqtt.KeyOperationType].AsString() != "receive" || ra[otelzmqtt.KeyDestination].AsString() != topic ||
					ra[otelzmqtt.KeyClientID].AsString() != "sub" || ra[otelzmqtt.KeyMQTTQoS].AsInt64() != int64(q) {
					t.Errorf("receive span attributes %v", rs.Attributes)
				}

				got := trace.SpanContextFromContext(otelzmqtt.Extract(ctx, m))
				if !got.IsRemote() || got.TraceID() != parent.SpanContext().TraceID() || got.SpanID() != ps.SpanContext.SpanID() {
					t.Errorf("Extract gave %v, want the remote publish span %v", got, ps.SpanContext)
				}
			})
		}
	}
}

// The metrics count what was sent and received, by QoS, without the
// topic; the duration histogram has one point per publish.
func TestMetricsCountMessages(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pubSide, subSide := newRig(t), newRig(t)
	subc := connect5(t, ctx, client.Config{URL: b.URL(mqtttest.TCP), ClientID: "metrics-sub", Observer: subSide.observer()})
	sub, err := subc.Subscribe(ctx, []string{"otel/metrics/#"}, client.ExactlyOnce)
	if err != nil {
		t.Fatal(err)
	}
	pub := connect5(t, ctx, client.Config{URL: b.URL(mqtttest.TCP), ClientID: "metrics-pub", Observer: pubSide.observer()})
	want := map[int64]int64{0: 3, 1: 2, 2: 4}
	total := 0
	for q, n := range want {
		for i := range n {
			if _, err := pub.Publish(ctx, fmt.Sprintf("otel/metrics/%d/%d", q, i), []byte("x"), client.QoS(q)); err != nil {
				t.Fatal(err)
			}
			total++
		}
	}
	for range total {
		if _, err := sub.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}

	pm := pubSide.metrics(t, ctx)
	if got := counts(t, pm["messaging.client.sent.messages"]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent.messages by QoS %v, want %v", got, want)
	}
	h, ok := pm["messaging.client.operation.duration"].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("operation.duration is %T, want a float64 histogram", pm["messaging.client.operation.duration"])
	}
	var n uint64
	for _, p := range h.DataPoints {
		n += p.Count
		if mn, ok := p.Min.Value(); !ok || mn < 0 {
			t.Errorf("duration minimum %v (defined %v), want >= 0", mn, ok)
		}
		if op, _ := p.Attributes.Value(otelzmqtt.KeyOperationName); op.AsString() != "publish" {
			t.Errorf("duration point operation %q, want publish", op.AsString())
		}
	}
	if n != uint64(total) {
		t.Errorf("operation.duration count %d, want %d", n, total)
	}
	if _, ok := pm["messaging.client.consumed.messages"]; ok {
		t.Error("the publisher, which received nothing, reports consumed.messages")
	}
	sm := subSide.metrics(t, ctx)
	if got := counts(t, sm["messaging.client.consumed.messages"]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("consumed.messages by QoS %v, want %v", got, want)
	}
}

// A publish the broker refuses (the ACL denies the topic: PUBACK 0x87 Not
// authorized on 5.0) ends its span with an error status and the reason
// code, and is counted with error.type.
func TestRefusedPublish(t *testing.T) {
	b := mqtttest.StartMosquitto(t,
		mqtttest.WithUsers(map[string]string{"alice": "secret"}),
		mqtttest.WithACL("user alice\ntopic readwrite otel/allowed/#\n"))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	side := newRig(t)
	pub := connect5(t, ctx, client.Config{URL: b.URL(mqtttest.TCP), ClientID: "refused",
		Username: "alice", Password: []byte("secret"), Observer: side.observer()})

	_, err := pub.Publish(ctx, "otel/denied", []byte("no"), client.AtLeastOnce)
	var re *client.ReasonError
	if !errors.As(err, &re) || re.Code != codec.ReasonCode(0x87) {
		t.Fatalf("publish to a denied topic: %v, want a *ReasonError with 0x87", err)
	}
	if _, err := pub.Publish(ctx, "otel/allowed/x", []byte("yes"), client.AtLeastOnce); err != nil {
		t.Fatal(err)
	}

	s := side.span(t, "publish otel/denied")
	if s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "0x87") && s.Status.Description != err.Error() {
		t.Errorf("refused publish span status %v, want error with %q", s.Status, err)
	}
	a := attrs(s.Attributes)
	if a[otelzmqtt.KeyErrorType].AsString() != "0x87" || a[otelzmqtt.KeyMQTTReasonCode].AsInt64() != 0x87 {
		t.Errorf("refused publish span error.type %v, reason code %v", a[otelzmqtt.KeyErrorType].Emit(), a[otelzmqtt.KeyMQTTReasonCode].Emit())
	}
	if len(s.Events) == 0 || s.Events[0].Name != "exception" {
		t.Errorf("refused publish span events %v, want the recorded error", s.Events)
	}
	if ok := side.span(t, "publish otel/allowed/x"); ok.Status.Code != codes.Unset {
		t.Errorf("accepted publish span status %v", ok.Status)
	}

	sum := side.metrics(t, ctx)["messaging.client.sent.messages"].(metricdata.Sum[int64])
	byErr := map[string]int64{}
	for _, p := range sum.DataPoints {
		e, _ := p.Attributes.Value(otelzmqtt.KeyErrorType)
		byErr[e.AsString()] += p.Value
	}
	if byErr["0x87"] != 1 || byErr[""] != 1 || len(byErr) != 2 {
		t.Errorf("sent.messages by error.type %v, want one 0x87 and one success", byErr)
	}
}

// On MQTT 3.1.1 there are no user properties: the publish span is still
// recorded, nothing is injected, and the receiver (on 5.0) finds no
// traceparent and makes a receive span without links.
func TestMQTT311SpansWithoutInjection(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pubSide, subSide := newRig(t), newRig(t)
	subc := connect5(t, ctx, client.Config{URL: b.URL(mqtttest.TCP), ClientID: "v311-sub", Observer: subSide.observer()})
	sub, err := subc.Subscribe(ctx, []string{"otel/v311"}, client.AtLeastOnce)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := client.New(client.Config{URL: b.URL(mqtttest.TCP), ClientID: "v311-pub", Observer: pubSide.observer()})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(ctx)

	pctx, parent := pubSide.tp.Tracer("test").Start(ctx, "parent")
	if err := pub.Publish(pctx, "otel/v311", []byte("old"), client.AtLeastOnce); err != nil {
		t.Fatal(err)
	}
	parent.End()
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps := pubSide.span(t, "publish otel/v311")
	if ps.Parent.SpanID() != parent.SpanContext().SpanID() || ps.SpanKind != trace.SpanKindProducer {
		t.Errorf("3.1.1 publish span parent %v kind %v", ps.Parent.SpanID(), ps.SpanKind)
	}
	if v := attrs(ps.Attributes)[otelzmqtt.KeyMQTTVersion].AsString(); v != "3.1.1" {
		t.Errorf("protocol version attribute %q, want 3.1.1", v)
	}
	if len(m.Properties.User) != 0 {
		t.Errorf("a 3.1.1 publish arrived with user properties %v", m.Properties.User)
	}
	rs := subSide.span(t, "receive otel/v311")
	if len(rs.Links) != 0 || rs.Parent.IsValid() {
		t.Errorf("receive span of an untraced message: links %v, parent %v", rs.Links, rs.Parent)
	}
	if sc := trace.SpanContextFromContext(otelzmqtt.Extract(ctx, m)); sc.IsValid() {
		t.Errorf("Extract of an untraced message gave %v", sc)
	}
}
