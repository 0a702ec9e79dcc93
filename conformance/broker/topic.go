package broker

import (
	"context"
	"errors"
	"strings"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/conformance"
)

// matchCheck subscribes to filter (built from a unique base) and publishes
// to each of the topics; those in want must arrive (in order), the others
// must not.
func matchCheck(name string, st311, st5 []string, filter string, match, noMatch []string) Check {
	return Check{
		Name:          name,
		Statements311: st311,
		Statements5:   st5,
		Requires:      needWildcard,
		Run: func(ctx context.Context, e *Env) error {
			base := e.Topic("m")
			sub, err := e.Client(ctx)
			if err != nil {
				return err
			}
			pub, err := e.Client(ctx)
			if err != nil {
				return err
			}
			if _, err := e.Sub(ctx, sub, strings.ReplaceAll(filter, "B", base), 1); err != nil {
				return err
			}
			for _, t := range append(append([]string(nil), noMatch...), match...) {
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: strings.ReplaceAll(t, "B", base), QoS: 1, Payload: []byte(t)}); err != nil {
					return err
				}
			}
			// The non-matching ones went first: the first delivery must be
			// the first matching topic (same publisher, ordered).
			for _, t := range match {
				if _, err := e.Receive(ctx, sub, &codec.Publish{Topic: strings.ReplaceAll(t, "B", base), QoS: 1, Payload: []byte(t)}, conformance.IgnoreProps()); err != nil {
					return err
				}
			}
			return sub.Run(ctx, conformance.ExpectNothing(quiet).Note("only matching topics"))
		},
	}
}

func topicChecks() []Check {
	st := func(s ...string) []string { return s }
	return []Check{
		matchCheck("topic/hash-matches-parent-and-children", st("MQTT-3.3.2-3", "§4.7.1.2"), st("MQTT-3.3.2-3", "§4.7.1.2"),
			"B/#", []string{"B", "B/a", "B/a/b"}, []string{"Bx/a"}),
		matchCheck("topic/plus-matches-one-level", st("MQTT-3.3.2-3", "§4.7.1.3"), st("MQTT-3.3.2-3", "§4.7.1.3"),
			"B/+", []string{"B/a", "B/"}, []string{"B/a/b", "B"}),
		matchCheck("topic/plus-in-the-middle", st("MQTT-3.3.2-3", "§4.7.1.3"), st("MQTT-3.3.2-3", "§4.7.1.3"),
			"B/+/c", []string{"B/a/c", "B//c"}, []string{"B/a/d", "B/a/b/c"}),
		matchCheck("topic/case-sensitive", st("MQTT-4.7.3-4"), st("MQTT-4.7.3-4"),
			"B/Abc", []string{"B/Abc"}, []string{"B/abc", "B/ABC"}),
		matchCheck("topic/no-normalisation", st("MQTT-4.7.3-4"), st("MQTT-4.7.3-4"),
			"B/a", []string{"B/a"}, []string{"B/a/", "B//a", "B/ a"}),
		matchCheck("topic/empty-levels-distinct", st("MQTT-4.7.3-4"), st("MQTT-4.7.3-4"),
			"B/+/+", []string{"B//", "B/a/b"}, []string{"B/", "B///"}),
		{
			Name:          "topic/dollar-not-matched-by-wildcards",
			Statements311: ids("MQTT-4.7.2-1"),
			Statements5:   ids("MQTT-4.7.2-1"),
			Requires:      needWildcard,
			Run: func(ctx context.Context, e *Env) error {
				// "$zc<run>/t" is published; "+/t" and "#"-style filters
				// must not match it. A literal subscriber proves the broker
				// routes client messages to $ topics at all.
				dollar := "$zc" + e.prefix + "/t"
				lit, err := e.Client(ctx)
				if err != nil {
					return err
				}
				wild, err := e.Client(ctx)
				if err != nil {
					return err
				}
				pub, err := e.Client(ctx)
				if err != nil {
					return err
				}
				if _, err := e.Sub(ctx, lit, dollar, 1); err != nil {
					return err
				}
				if _, err := e.Sub(ctx, wild, "+/t", 1); err != nil {
					return err
				}
				if err := e.Publish(ctx, pub, &codec.Publish{Topic: dollar, QoS: 1, Payload: []byte("$")}); err != nil {
					if errors.Is(err, conformance.ErrClosed) {
						return na("the broker refuses client PUBLISH to $ topics: %v", err)
					}
					return err
				}
				got, err := e.collect(ctx, lit, quiet)
				if err != nil {
					return err
				}
				if len(got) == 0 {
					return na("the broker does not route client messages to $ topics")
				}
				return wild.Run(ctx, conformance.ExpectNothing(quiet).Cites("MQTT-4.7.2-1"))
			},
		},
	}
}

func malformedChecks() []Check {
	type mal struct {
		name     string
		st311    []string
		st5      []string
		versions []codec.Version
		raw      func(e *Env) []byte
	}
	pub := func(e *Env, first byte, topic []byte, id uint16) []byte {
		return rawPublish(e.Version, first, topic, id, []byte("x"))
	}
	ms := []mal{
		{"malformed/remaining-length-over-4-bytes", ids("MQTT-4.8.0-1", "§2.2.3"), ids("MQTT-1.5.5-1", "MQTT-4.13.1-1"), nil,
			func(e *Env) []byte { return []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f} }},
		{"malformed/non-minimal-remaining-length", nil, ids("MQTT-1.5.5-1", "MQTT-4.13.1-1"), v5only,
			func(e *Env) []byte { return []byte{0xc0, 0x80, 0x00} }},
		{"malformed/topic-invalid-utf8", ids("MQTT-1.5.3-1"), ids("MQTT-1.5.4-1"), nil,
			func(e *Env) []byte { return pub(e, 0x30, []byte("zc/\xff\xfe"), 0) }},
		{"malformed/topic-surrogate", ids("MQTT-1.5.3-1"), ids("MQTT-1.5.4-1"), nil,
			func(e *Env) []byte { return pub(e, 0x30, []byte("zc/\xed\xa0\x80"), 0) }},
		{"malformed/topic-null-character", ids("MQTT-1.5.3-2", "MQTT-4.7.3-2"), ids("MQTT-1.5.4-2", "MQTT-4.7.3-2"), nil,
			func(e *Env) []byte { return pub(e, 0x30, []byte("zc/a\x00b"), 0) }},
		{"malformed/publish-wildcard-topic", ids("MQTT-3.3.2-2", "MQTT-4.7.1-1"), ids("MQTT-3.3.2-2", "MQTT-4.7.0-1"), nil,
			func(e *Env) []byte { return pub(e, 0x30, []byte(e.Topic("w")+"/+"), 0) }},
		{"malformed/publish-empty-topic", ids("MQTT-4.7.3-1"), ids("MQTT-4.7.3-1", "MQTT-3.3.2-1"), nil,
			func(e *Env) []byte { return pub(e, 0x30, nil, 0) }},
		{"malformed/publish-qos3", ids("MQTT-3.3.1-4"), ids("MQTT-3.3.1-4"), nil,
			func(e *Env) []byte { return pub(e, 0x36, []byte(e.Topic("q")), 1) }},
		{"malformed/publish-qos0-dup", ids("MQTT-3.3.1-2"), ids("MQTT-3.3.1-2"), nil,
			func(e *Env) []byte { return pub(e, 0x38, []byte(e.Topic("d")), 0) }},
		{"malformed/publish-packet-id-0", ids("MQTT-2.3.1-1"), ids("MQTT-2.2.1-3", "MQTT-4.13.1-1"), nil,
			func(e *Env) []byte { return pub(e, 0x32, []byte(e.Topic("p")), 0) }},
		{"malformed/pubrel-reserved-flags", ids("MQTT-3.6.1-1", "MQTT-2.2.2-2"), ids("MQTT-3.6.1-1", "MQTT-2.1.3-1"), nil,
			func(e *Env) []byte { return []byte{0x60, 0x02, 0x00, 0x01} }},
		{"malformed/pingreq-reserved-flags", ids("MQTT-2.2.2-1", "MQTT-2.2.2-2"), ids("MQTT-2.1.3-1", "MQTT-4.13.1-1"), nil,
			func(e *Env) []byte { return []byte{0xc1, 0x00} }},
		{"malformed/reserved-packet-type-0", ids("MQTT-2.2.2-2", "MQTT-4.8.0-1"), ids("MQTT-4.13.1-1"), nil,
			func(e *Env) []byte { return []byte{0x00, 0x00} }},
		{"malformed/reserved-packet-type-15", ids("MQTT-4.8.0-1"), ids("MQTT-3.15.1-1", "MQTT-4.13.1-1"), v311only,
			func(e *Env) []byte { return []byte{0xf0, 0x00} }},
		{"malformed/topic-length-beyond-packet", ids("MQTT-4.8.0-1"), ids("MQTT-4.13.1-1"), nil,
			func(e *Env) []byte { return []byte{0x30, 0x04, 0x00, 0x20, 'z', 'c'} }},
		{"malformed/client-sends-connack", ids("MQTT-4.8.0-1"), ids("MQTT-4.13.1-1"), nil,
			func(e *Env) []byte { return encode(&codec.Connack{}, e.Version) }},
		{"malformed/client-sends-suback", ids("MQTT-4.8.0-1"), ids("MQTT-4.13.1-1"), nil,
			func(e *Env) []byte {
				return encode(&codec.Suback{PacketID: 1, ReasonCodes: []codec.ReasonCode{0}}, e.Version)
			}},
		{"malformed/client-sends-pingresp", ids("MQTT-4.8.0-1"), ids("MQTT-4.13.1-1"), nil,
			func(e *Env) []byte { return []byte{0xd0, 0x00} }},
		{"malformed/property-not-allowed", nil, ids("MQTT-4.13.1-1", "§2.2.2.2"), v5only,
			func(e *Env) []byte {
				t := e.Topic("p")
				body := []byte{0, byte(len(t))}
				body = append(body, t...)
				body = append(body, 5, 0x11, 0, 0, 0, 10) // Session Expiry Interval in a PUBLISH
				return append([]byte{0x30, byte(len(body))}, body...)
			}},
		{"malformed/property-repeated", nil, ids("MQTT-4.13.1-1", "§2.2.2.2"), v5only,
			func(e *Env) []byte {
				t := e.Topic("p")
				body := []byte{0, byte(len(t))}
				body = append(body, t...)
				body = append(body, 10, 0x02, 0, 0, 0, 10, 0x02, 0, 0, 0, 20) // Message Expiry twice
				return append([]byte{0x30, byte(len(body))}, body...)
			}},
		{"malformed/property-length-beyond-packet", nil, ids("MQTT-4.13.1-1"), v5only,
			func(e *Env) []byte {
				t := e.Topic("p")
				body := []byte{0, byte(len(t))}
				body = append(body, t...)
				body = append(body, 40, 0x02, 0, 0)
				return append([]byte{0x30, byte(len(body))}, body...)
			}},
		{"malformed/subscription-id-in-client-publish", nil, ids("MQTT-3.3.4-6", "MQTT-4.13.1-1"), v5only,
			func(e *Env) []byte {
				t := e.Topic("p")
				body := []byte{0, byte(len(t))}
				body = append(body, t...)
				body = append(body, 2, 0x0b, 5)
				return append([]byte{0x30, byte(len(body))}, body...)
			}},
		{"malformed/empty-user-property-value-missing", nil, ids("MQTT-1.5.7-1", "MQTT-4.13.1-1"), v5only,
			func(e *Env) []byte {
				t := e.Topic("p")
				body := []byte{0, byte(len(t))}
				body = append(body, t...)
				body = append(body, 4, 0x26, 0, 1, 'k') // a User Property with no value
				return append([]byte{0x30, byte(len(body))}, body...)
			}},
		{"malformed/disconnect-invalid-reason", nil, ids("MQTT-3.14.2-1", "MQTT-4.13.1-1"), v5only,
			func(e *Env) []byte { return []byte{0xe0, 0x01, 0x03} }},
	}
	var cs []Check
	for _, m := range ms {
		cs = append(cs, Check{
			Name:          m.name,
			Statements311: m.st311,
			Statements5:   m.st5,
			Versions:      m.versions,
			Run: func(ctx context.Context, e *Env) error {
				st := m.st5
				if e.Version == codec.V311 {
					st = m.st311
				}
				return sendAndExpectClosed(ctx, e, true, m.raw(e), st...)
			},
		})
	}
	cs = append(cs, Check{
		Name:          "malformed/connect-client-id-invalid-utf8",
		Statements311: ids("MQTT-1.5.3-1", "MQTT-3.1.4-1"),
		Statements5:   ids("MQTT-1.5.4-1", "MQTT-3.1.4-1"),
		Run: func(ctx context.Context, e *Env) error {
			b := encode(&codec.Connect{CleanStart: true, ClientID: "zc\u00e9", KeepAlive: 60}, e.Version)
			b[len(b)-1] = 0xff // the second byte of é made invalid
			return expectRefusedConnect(ctx, e, b, cite(e.Version, "MQTT-1.5.3-1", "MQTT-1.5.4-1"))
		},
	})
	return cs
}
