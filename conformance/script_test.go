package conformance_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair runs script a on one end of a pipe and b on the other, and returns
// both results.
func pair(t *testing.T, v codec.Version, a, b []conformance.Step) (errA, errB error) {
	t.Helper()
	ctx := testCtx(t)
	ca, cb := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- conformance.Run(ctx, cb, v, b...) }()
	errA = conformance.Run(ctx, ca, v, a...)
	return errA, <-done
}

func TestScriptPasses(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		pub := &codec.Publish{Topic: "a/b", QoS: 1, PacketID: 7, Payload: []byte("x")}
		client := []conformance.Step{
			conformance.Send(&codec.Connect{CleanStart: true, ClientID: "c"}),
			conformance.Expect(&codec.Connack{}).Cites("MQTT-3.2.2-1"),
			conformance.Send(pub),
			conformance.Expect(&codec.Puback{PacketID: 7}),
			conformance.ExpectNothing(20 * time.Millisecond),
			conformance.Send(&codec.Disconnect{}),
		}
		raw, err := pub.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		server := []conformance.Step{
			conformance.Expect(&codec.Connect{CleanStart: true, ClientID: "c"}),
			conformance.Send(&codec.Connack{}),
			conformance.ExpectBytes(raw),
			conformance.Send(&codec.Puback{PacketID: 7}),
			conformance.Expect(&codec.Disconnect{}),
		}
		if a, b := pair(t, v, client, server); a != nil || b != nil {
			t.Errorf("v%d: client script: %v; server script: %v", v, a, b)
		}
	}
}

func TestFailureSaysWhatDiffered(t *testing.T) {
	client := []conformance.Step{
		conformance.Send(&codec.Publish{Topic: "t", QoS: 1, PacketID: 1}),
		conformance.Expect(&codec.Puback{PacketID: 1}).Cites("MQTT-2.2.1-5"),
	}
	server := []conformance.Step{
		conformance.Expect(&codec.Publish{Topic: "t", QoS: 1, PacketID: 1}),
		conformance.Send(&codec.Puback{PacketID: 2}),
	}
	err, _ := pair(t, codec.V5, client, server)
	var f *conformance.Failure
	if !errors.As(err, &f) {
		t.Fatalf("got %v, want a *Failure", err)
	}
	if f.Step != 2 || len(f.Statements) != 1 || f.Statements[0] != "MQTT-2.2.1-5" {
		t.Errorf("step %d statements %v, want step 2 citing MQTT-2.2.1-5", f.Step, f.Statements)
	}
	if !strings.Contains(f.Got, "PacketID: want 1, got 2") {
		t.Errorf("Got = %q, want the differing field", f.Got)
	}
	if !strings.Contains(f.Error(), "[MQTT-2.2.1-5] step 2") {
		t.Errorf("Error() = %q", f.Error())
	}
	if len(f.Transcript) != 2 || !f.Transcript[0].Sent || f.Transcript[1].Sent {
		t.Errorf("transcript %v, want the PUBLISH sent and the PUBACK received", f.Transcript)
	}
	if !strings.Contains(f.Evidence(), "<- PUBACK") {
		t.Errorf("evidence %q lacks the PUBACK", f.Evidence())
	}
}

func TestExpectOptions(t *testing.T) {
	got := &codec.Puback{PacketID: 3, ReasonCode: codec.ReasonNoMatchingSubscribers, Props: codec.Properties{ReasonString: "none"}}
	want := &codec.Puback{PacketID: 3}
	if d := conformance.Diff(want, got); len(d) != 2 {
		t.Errorf("strict diff %v, want 2 differences", d)
	}
	if d := conformance.Diff(want, got, conformance.IgnoreProps(), conformance.ReasonIn(0, 0x10)); d != nil {
		t.Errorf("relaxed diff %v, want none", d)
	}
	if d := conformance.Diff(want, got, conformance.IgnoreProps(), conformance.ReasonIn(0)); len(d) != 1 {
		t.Errorf("ReasonIn(0) diff %v, want the reason code", d)
	}
	if d := conformance.Diff(want, got, conformance.IgnoreFields("Props.ReasonString", "ReasonCode")); d != nil {
		t.Errorf("IgnoreFields diff %v", d)
	}
	sub := &codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{1}}
	if d := conformance.Diff(sub, &codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}}); len(d) != 1 || !strings.Contains(d[0], "ReasonCodes[0]") {
		t.Errorf("suback diff %v", d)
	}
	fail := conformance.Satisfy(func(codec.Packet) string { return "always wrong" })
	if d := conformance.Diff(want, want, fail); len(d) != 1 {
		t.Errorf("Satisfy diff %v", d)
	}
	if d := conformance.Diff(want, &codec.Pubrec{PacketID: 3}); len(d) != 1 || !strings.Contains(d[0], "packet type") {
		t.Errorf("type diff %v", d)
	}
}

func TestExpectClosed(t *testing.T) {
	// The server closes after a DISCONNECT: passes.
	client := []conformance.Step{
		conformance.SendBytes([]byte{0x30, 0x03, 0x00, 0x01, '#'}), // PUBLISH to "#": malformed
		conformance.ExpectClosed(conformance.ReasonIn(codec.ReasonMalformedPacket)).Cites("MQTT-3.3.2-2"),
	}
	server := []conformance.Step{
		conformance.ExpectBytes([]byte{0x30, 0x03, 0x00, 0x01, '#'}),
		conformance.Send(&codec.Disconnect{ReasonCode: codec.ReasonMalformedPacket}),
	}
	if a, b := pair(t, codec.V5, client, server); a != nil || b != nil {
		t.Fatalf("client: %v; server: %v", a, b)
	}
	// The server answers instead of closing: fails.
	server = []conformance.Step{
		conformance.ExpectBytes([]byte{0x30, 0x03, 0x00, 0x01, '#'}),
		conformance.Send(&codec.Pingresp{}),
	}
	err, _ := pair(t, codec.V5, client, server)
	var f *conformance.Failure
	if !errors.As(err, &f) || !strings.Contains(f.Got, "PINGRESP") {
		t.Fatalf("got %v, want a failure showing the PINGRESP", err)
	}
	// A DISCONNECT with the wrong reason code fails.
	server = []conformance.Step{
		conformance.ExpectBytes([]byte{0x30, 0x03, 0x00, 0x01, '#'}),
		conformance.Send(&codec.Disconnect{ReasonCode: codec.ReasonProtocolError}),
	}
	if err, _ := pair(t, codec.V5, client, server); !errors.As(err, &f) || !strings.Contains(f.Got, "0x82") {
		t.Fatalf("got %v, want a failure naming reason 0x82", err)
	}
}

func TestExpectNothingAndDeadline(t *testing.T) {
	ctx := testCtx(t)
	ca, cb := net.Pipe()
	defer cb.Close()
	p := conformance.NewPeer(ca, codec.V311, codec.RoleServer)
	defer p.Close()
	go func() {
		b, _ := (&codec.Pingresp{}).Append(nil, codec.V311)
		cb.Write(b)
	}()
	err := p.Run(ctx, conformance.ExpectNothing(5*time.Second))
	var f *conformance.Failure
	if !errors.As(err, &f) || !strings.Contains(f.Got, "PINGRESP") {
		t.Fatalf("got %v, want a failure showing the PINGRESP", err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	err = p.Run(short, conformance.Expect(&codec.Pingresp{}).Cites("MQTT-3.12.4-1"))
	if !errors.As(err, &f) || !errors.Is(err, context.DeadlineExceeded) || f.Step != 2 {
		t.Fatalf("got %v, want a step-2 failure wrapping the deadline", err)
	}
	// ExpectNothing ending at the context's deadline is a pass.
	short2, cancel2 := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel2()
	if err := p.Run(short2, conformance.ExpectNothing(time.Hour)); err != nil {
		t.Fatalf("ExpectNothing cut short by the context: %v", err)
	}
}

func TestUndecodableInput(t *testing.T) {
	ctx := testCtx(t)
	ca, cb := net.Pipe()
	defer cb.Close()
	p := conformance.NewPeer(ca, codec.V311, codec.RoleServer)
	defer p.Close()
	go cb.Write([]byte{0x40, 0x02, 0x00, 0x00}) // PUBACK with packet id 0
	_, err := p.Next(ctx)
	var ce *codec.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Next: %v, want a *codec.Error", err)
	}
	go cb.Close()
	if _, err := p.Next(ctx); !errors.Is(err, conformance.ErrClosed) {
		t.Fatalf("Next after close: %v, want ErrClosed", err)
	}
	// The end is sticky.
	if _, err := p.Next(ctx); !errors.Is(err, conformance.ErrClosed) {
		t.Fatalf("Next again: %v, want ErrClosed", err)
	}
}

func TestSendRefusesInvalidPacket(t *testing.T) {
	ctx := testCtx(t)
	ca, cb := net.Pipe()
	defer cb.Close()
	err := conformance.Run(ctx, ca, codec.V5, conformance.Send(&codec.Publish{Topic: "a/#"}))
	var f *conformance.Failure
	var ce *codec.Error
	if !errors.As(err, &f) || !errors.As(err, &ce) {
		t.Fatalf("got %v, want a Failure wrapping the codec's error", err)
	}
}
