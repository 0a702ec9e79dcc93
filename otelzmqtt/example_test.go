package otelzmqtt_test

import (
	"context"
	"fmt"
	"log"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/mqtttest"
	"github.com/zmqtt/zmqtt-go/otelzmqtt"
)

// A traced publish on MQTT 5.0: the publisher's span travels through the
// broker as a traceparent user property, the receiver's span links to it,
// and Extract makes the application's processing span its child. A real
// program passes its SDK's providers (or sets the global ones) and
// exports with a batching processor instead of into memory.
func ExampleNewObserver() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	broker, err := mqtttest.Launch(ctx) // a private Mosquitto for the example
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(ctx)

	obs := otelzmqtt.NewObserver(otelzmqtt.WithTracerProvider(tp), otelzmqtt.WithClientID("orders-service"))
	c, err := client.New5(client.Config5{Config: client.Config{
		URL: broker.URL(mqtttest.TCP), ClientID: "orders-service", Observer: &obs}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx, 0, nil)
	sub, err := c.Subscribe(ctx, []string{"orders/+"}, client.AtLeastOnce)
	if err != nil {
		log.Fatal(err)
	}

	ctx2, checkout := tp.Tracer("shop").Start(ctx, "checkout")
	if _, err := c.Publish(ctx2, "orders/42", []byte(`{"qty":1}`), client.AtLeastOnce); err != nil {
		log.Fatal(err)
	}
	checkout.End()

	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	_, handle := tp.Tracer("shop").Start(otelzmqtt.Extract(ctx, m), "handle order")
	handle.End()

	// Spans end in an order the broker decides (the message may arrive
	// before the PUBACK): print them in the order of the flow.
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byName[s.Name] = s
	}
	for _, name := range []string{"checkout", "publish orders/42", "receive orders/42", "handle order"} {
		s := byName[name]
		fmt.Printf("%-18s kind=%-8v same trace as checkout: %-5v links: %d\n",
			s.Name, s.SpanKind, s.SpanContext.TraceID() == checkout.SpanContext().TraceID(), len(s.Links))
	}
	// Output:
	// checkout           kind=internal same trace as checkout: true  links: 0
	// publish orders/42  kind=producer same trace as checkout: true  links: 0
	// receive orders/42  kind=consumer same trace as checkout: false links: 1
	// handle order       kind=internal same trace as checkout: true  links: 0
}
