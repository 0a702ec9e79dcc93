// Package otelzmqtt connects a zmqtt-go client to OpenTelemetry: spans for
// publish and receive that carry W3C trace context across the broker in
// MQTT 5.0 user properties, and the messaging metrics of the OpenTelemetry
// semantic conventions.
//
// It lives in a Go module of its own, so that the SDK's go.mod gains no
// OpenTelemetry dependency: only programs that import otelzmqtt get one.
//
// NewObserver returns a client.Observer to set as Config.Observer:
//
//	obs := otelzmqtt.NewObserver(otelzmqtt.WithClientID("sensor-7"))
//	c, err := client.New5(client.Config5{Config: client.Config{URL: url, Observer: &obs}})
//
// Each Publish gets a span "publish <topic>" (kind Producer), a child of
// the span in the caller's context, and on MQTT 5.0 the PUBLISH carries
// that span's context as the user properties traceparent (and tracestate,
// when there is one), the names W3C Trace Context gives them. MQTT 3.1.1
// has no properties: the span is recorded, nothing is injected. Each
// incoming message gets a span "receive <topic>" (kind Consumer) with a
// link to the producer's span, as the messaging conventions ask of receive
// spans; WithReceiveAsChild makes it a child instead. Extract gives the
// producer's context to an application's own processing span.
//
// Metrics: messaging.client.sent.messages and
// messaging.client.consumed.messages (counters) and
// messaging.client.operation.duration (histogram, seconds, publishes
// only). The topic is not one of their attributes unless
// WithTopicOnMetrics asks for it: topics often carry identifiers (a device,
// an order), and each distinct value of an attribute makes a time series of
// its own in the metrics backend. Spans carry the topic always.
//
// The Observer's callbacks run on the client's loop goroutine (see
// client.Observer): the tracer and meter providers given must not block
// there. The OpenTelemetry SDK's batching span processor and periodic
// metric reader do not.
package otelzmqtt

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
)

// ScopeName is the instrumentation scope of the tracer and meter otelzmqtt
// asks its providers for.
const ScopeName = "github.com/zmqtt/zmqtt-go/otelzmqtt"

// Attribute keys. The messaging.* and server.* keys are those of the
// OpenTelemetry semantic conventions; MQTT has no namespace of its own
// there, so the MQTT-specific ones are under messaging.mqtt.
const (
	KeySystem         = attribute.Key("messaging.system")
	KeyDestination    = attribute.Key("messaging.destination.name")
	KeyOperationType  = attribute.Key("messaging.operation.type")
	KeyOperationName  = attribute.Key("messaging.operation.name")
	KeyBodySize       = attribute.Key("messaging.message.body.size")
	KeyClientID       = attribute.Key("messaging.client.id")
	KeyServerAddress  = attribute.Key("server.address")
	KeyServerPort     = attribute.Key("server.port")
	KeyErrorType      = attribute.Key("error.type")
	KeyMQTTQoS        = attribute.Key("messaging.mqtt.qos")
	KeyMQTTRetain     = attribute.Key("messaging.mqtt.retain")
	KeyMQTTDuplicate  = attribute.Key("messaging.mqtt.duplicate")
	KeyMQTTReasonCode = attribute.Key("messaging.mqtt.reason_code")
	KeyMQTTVersion    = attribute.Key("messaging.mqtt.protocol_version")
	SystemMQTT        = "mqtt" // messaging.system: not in the registry's list, which allows custom values
	operationPublish  = "publish"
	operationReceive  = "receive"
	operationTypeSend = "send"
	operationTypeRecv = "receive"
	metricSent        = "messaging.client.sent.messages"
	metricConsumed    = "messaging.client.consumed.messages"
	metricDuration    = "messaging.client.operation.duration"
)

// durationBounds are the histogram's bucket bounds in seconds, those the
// messaging conventions recommend for messaging.client.operation.duration.
var durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Option configures NewObserver.
type Option func(*config)

type config struct {
	tp           trace.TracerProvider
	mp           metric.MeterProvider
	prop         propagation.TextMapPropagator
	serverAddr   string
	serverPort   int
	clientID     string
	topicMetrics bool
	child        bool
}

// WithTracerProvider sets where spans go. Default: otel.GetTracerProvider()
// at the time of NewObserver, the global provider (which forwards to one
// set later with otel.SetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets where metrics go. Default: otel.GetMeterProvider(),
// as for the tracer provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithPropagator sets how trace context is written into and read from user
// properties. Default: otel.GetTextMapPropagator() when the program set one
// (it has fields), else propagation.TraceContext{}: a tracing adapter that
// propagates nothing by default would surprise, and W3C Trace Context is
// what other MQTT instrumentations read.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// WithServer sets the server.address and server.port attributes: the
// broker's host name (or IP) and port. An empty address or a port of 0
// leaves that attribute out. Default: none, since the client may walk a
// list of servers and the Observer is not told which one it is on.
func WithServer(address string, port int) Option {
	return func(c *config) { c.serverAddr, c.serverPort = address, port }
}

// WithClientID sets the messaging.client.id attribute, normally the MQTT
// client identifier. Default: none (a broker-assigned id is not known when
// the Observer is made).
func WithClientID(id string) Option {
	return func(c *config) { c.clientID = id }
}

// WithTopicOnMetrics adds messaging.destination.name, the topic, to the
// metrics' attributes. Off by default: every distinct topic becomes a time
// series of its own, and topics often name devices or orders.
func WithTopicOnMetrics() Option {
	return func(c *config) { c.topicMetrics = true }
}

// WithReceiveAsChild makes each receive span a child of the producer's
// span (same trace) instead of the root of a new trace with a link to it.
// The link is kept. The messaging conventions ask for the link; a child
// shows publisher and receiver in one trace in viewers that do not follow
// links.
func WithReceiveAsChild() Option {
	return func(c *config) { c.child = true }
}

// observer is the state the Observer's functions share.
type observer struct {
	cfg      config
	tracer   trace.Tracer
	sent     metric.Int64Counter
	consumed metric.Int64Counter
	duration metric.Float64Histogram
	base     []attribute.KeyValue // on every span and metric
	// okSent[q] and okRecv[q] are the attribute sets of a successful
	// publish and of a received message at QoS q, made once.
	okSent, okRecv [3]metric.MeasurementOption
}

// NewObserver returns a client.Observer that records spans and metrics for
// a client; set it as Config.Observer (Config5.Config.Observer). One
// Observer serves one client: its attributes name one client id and one
// server. It does not fail: when an instrument cannot be created (a
// provider's error), the provider's no-op stands in and the error goes to
// otel.Handle.
func NewObserver(opts ...Option) client.Observer {
	o := &observer{}
	for _, opt := range opts {
		opt(&o.cfg)
	}
	if o.cfg.tp == nil {
		o.cfg.tp = otel.GetTracerProvider()
	}
	if o.cfg.mp == nil {
		o.cfg.mp = otel.GetMeterProvider()
	}
	if o.cfg.prop == nil {
		o.cfg.prop = defaultPropagator()
	}
	o.tracer = o.cfg.tp.Tracer(ScopeName)
	meter := o.cfg.mp.Meter(ScopeName)
	var err error
	if o.sent, err = meter.Int64Counter(metricSent, metric.WithUnit("{message}"),
		metric.WithDescription("Messages the client attempted to publish, counted when the publish ends.")); err != nil {
		otel.Handle(err)
	}
	if o.consumed, err = meter.Int64Counter(metricConsumed, metric.WithUnit("{message}"),
		metric.WithDescription("Messages the client received and delivered to the application.")); err != nil {
		otel.Handle(err)
	}
	if o.duration, err = meter.Float64Histogram(metricDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of publish operations, from the call to its acknowledgement."),
		metric.WithExplicitBucketBoundaries(durationBounds...)); err != nil {
		otel.Handle(err)
	}

	o.base = []attribute.KeyValue{KeySystem.String(SystemMQTT)}
	if o.cfg.clientID != "" {
		o.base = append(o.base, KeyClientID.String(o.cfg.clientID))
	}
	if o.cfg.serverAddr != "" {
		o.base = append(o.base, KeyServerAddress.String(o.cfg.serverAddr))
	}
	if o.cfg.serverPort != 0 {
		o.base = append(o.base, KeyServerPort.Int(o.cfg.serverPort))
	}
	for q := range 3 {
		o.okSent[q] = metric.WithAttributeSet(o.metricAttrs(operationPublish, operationTypeSend, client.QoS(q), "", ""))
		o.okRecv[q] = metric.WithAttributeSet(o.metricAttrs(operationReceive, operationTypeRecv, client.QoS(q), "", ""))
	}
	return client.Observer{OnPublish: o.onPublish, OnPublishDone: o.onPublishDone, OnMessage: o.onMessage}
}

// metricAttrs is the attribute set of a measurement.
func (o *observer) metricAttrs(op, opType string, qos client.QoS, topic, errType string) attribute.Set {
	kv := append([]attribute.KeyValue(nil), o.base...)
	kv = append(kv, KeyOperationName.String(op), KeyOperationType.String(opType), KeyMQTTQoS.Int(int(qos)))
	if topic != "" {
		kv = append(kv, KeyDestination.String(topic))
	}
	if errType != "" {
		kv = append(kv, KeyErrorType.String(errType))
	}
	return attribute.NewSet(kv...)
}

// defaultPropagator is the global propagator when one was set, else W3C
// Trace Context.
func defaultPropagator() propagation.TextMapPropagator {
	if p := otel.GetTextMapPropagator(); p != nil && len(p.Fields()) > 0 {
		return p
	}
	return propagation.TraceContext{}
}

// published is what OnPublish hands to OnPublishDone.
type published struct {
	span trace.Span
}

func (o *observer) onPublish(ctx context.Context, p *client.PublishStart) any {
	attrs := make([]attribute.KeyValue, 0, len(o.base)+7)
	attrs = append(attrs, o.base...)
	attrs = append(attrs,
		KeyDestination.String(p.Topic),
		KeyOperationType.String(operationTypeSend),
		KeyOperationName.String(operationPublish),
		KeyBodySize.Int(p.PayloadSize),
		KeyMQTTQoS.Int(int(p.QoS)),
		KeyMQTTVersion.String(versionName(p.Version)))
	if p.Retain {
		attrs = append(attrs, KeyMQTTRetain.Bool(true))
	}
	ctx, span := o.tracer.Start(ctx, operationPublish+" "+p.Topic,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithTimestamp(p.Time), trace.WithAttributes(attrs...))
	if p.Version == codec.V5 {
		o.cfg.prop.Inject(ctx, publishCarrier{p})
	}
	return published{span: span}
}

func (o *observer) onPublishDone(d client.PublishDone) {
	pb, _ := d.Value.(published)
	if d.Code != 0 && pb.span != nil {
		pb.span.SetAttributes(KeyMQTTReasonCode.Int(int(d.Code)))
	}
	opt := o.okSent[min(int(d.QoS), 2)]
	if d.Err != nil {
		et := errorType(d.Err)
		if pb.span != nil {
			pb.span.SetAttributes(KeyErrorType.String(et))
			pb.span.RecordError(d.Err)
			pb.span.SetStatus(codes.Error, d.Err.Error())
		}
		opt = metric.WithAttributeSet(o.metricAttrs(operationPublish, operationTypeSend, d.QoS, o.metricTopic(d.Topic), et))
	} else if o.cfg.topicMetrics {
		opt = metric.WithAttributeSet(o.metricAttrs(operationPublish, operationTypeSend, d.QoS, d.Topic, ""))
	}
	ctx := context.Background()
	o.sent.Add(ctx, 1, opt)
	o.duration.Record(ctx, d.Duration.Seconds(), opt)
	if pb.span != nil {
		pb.span.End()
	}
}

func (o *observer) metricTopic(topic string) string {
	if o.cfg.topicMetrics {
		return topic
	}
	return ""
}

func (o *observer) onMessage(m client.MessageInfo) {
	producer := trace.SpanContextFromContext(o.cfg.prop.Extract(context.Background(), userCarrier(m.Properties.User)))
	attrs := make([]attribute.KeyValue, 0, len(o.base)+8)
	attrs = append(attrs, o.base...)
	attrs = append(attrs,
		KeyDestination.String(m.Topic),
		KeyOperationType.String(operationTypeRecv),
		KeyOperationName.String(operationReceive),
		KeyBodySize.Int(m.PayloadSize),
		KeyMQTTQoS.Int(int(m.QoS)))
	if m.Retain {
		attrs = append(attrs, KeyMQTTRetain.Bool(true))
	}
	if m.Duplicate {
		attrs = append(attrs, KeyMQTTDuplicate.Bool(true))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	parent := context.Background()
	if producer.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: producer}))
		if o.cfg.child {
			parent = trace.ContextWithRemoteSpanContext(parent, producer)
		} else {
			opts = append(opts, trace.WithNewRoot())
		}
	}
	_, span := o.tracer.Start(parent, operationReceive+" "+m.Topic, opts...)
	span.End()

	opt := o.okRecv[min(int(m.QoS), 2)]
	if o.cfg.topicMetrics {
		opt = metric.WithAttributeSet(o.metricAttrs(operationReceive, operationTypeRecv, m.QoS, m.Topic, ""))
	}
	o.consumed.Add(context.Background(), 1, opt)
}

// errorType is the error.type of a failed publish: the reason code for a
// refusal by the broker, "timeout" or "canceled" for a context that ended,
// else the error's Go type.
func errorType(err error) string {
	var re *client.ReasonError
	switch {
	case errors.As(err, &re):
		return fmt.Sprintf("0x%02X", byte(re.Code))
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return fmt.Sprintf("%T", err)
}

// Extract returns ctx with the trace context msg carries in its MQTT 5.0
// user properties (traceparent, tracestate), read with the global
// propagator (otel.GetTextMapPropagator(), W3C Trace Context when none was
// set), so that a span started from it is a child of the producer's
// publish span. A message without trace context (3.1.1, or an
// uninstrumented publisher) returns ctx unchanged in its span context.
func Extract(ctx context.Context, msg client.Message) context.Context {
	return defaultPropagator().Extract(ctx, userCarrier(msg.Properties.User))
}

// publishCarrier writes trace context into an outgoing PUBLISH.
type publishCarrier struct{ p *client.PublishStart }

func (c publishCarrier) Get(key string) string {
	v, _ := c.p.UserProperty(key)
	return v
}

// Set sets a user property; the only error SetUserProperty returns is on
// MQTT 3.1.1, where the caller does not inject.
func (c publishCarrier) Set(key, value string) { _ = c.p.SetUserProperty(key, value) }

func (c publishCarrier) Keys() []string {
	props := c.p.Properties()
	keys := make([]string, len(props.User))
	for i, u := range props.User {
		keys[i] = u.Key
	}
	return keys
}

// userCarrier reads trace context from a message's user properties.
type userCarrier []codec.UserProperty

func (c userCarrier) Get(key string) string {
	for _, u := range c {
		if u.Key == key {
			return u.Value
		}
	}
	return ""
}

// Set does nothing: a received message is not changed.
func (c userCarrier) Set(string, string) {}

func (c userCarrier) Keys() []string {
	keys := make([]string, len(c))
	for i, u := range c {
		keys[i] = u.Key
	}
	return keys
}

// versionName is the MQTT version as its specification names it.
func versionName(v codec.Version) string {
	if v == codec.V5 {
		return "5.0"
	}
	return "3.1.1"
}
