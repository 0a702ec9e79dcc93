package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/zmqtt/zmqtt-go/codec"
)

// -d: every packet sent and received, one line each, in the words
// mosquitto_pub and mosquitto_sub print them (libmosquitto's debug log):
//
//	Client mosq-1 sending CONNECT
//	Client mosq-1 received CONNACK (0)
//	Client mosq-1 sending PUBLISH (d0, q1, r0, m1, 'a/b', ... (5 bytes))
//	Client mosq-1 received PUBACK (Mid: 1, RC:0)
//	Client mosq-1 sending SUBSCRIBE (Mid: 2, Topic: a/#, QoS: 1, Options: 0x00)
//	Client mosq-1 received SUBACK
//	Subscribed (mid: 2): 1                       (zmqtt sub only)
//
// The client is named by its identifier, "(null)" until it has one; on
// MQTT 5.0 the identifier a broker assigns in CONNACK names it from then
// on. A QoS 0 message has no packet identifier: as in libmosquitto, an
// outgoing one is numbered by the count of messages sent, an incoming one
// shows m0. The lines go to standard output, between the messages sub
// prints.
//
// The tracer sits between the client and its connection (client.Config's
// Dial) and decodes each direction with the codec. Lines about packets
// sent are written before the bytes go out, so a reply never comes first.

// output is standard output shared by the messages sub prints and the
// trace lines of -d, written whole and flushed each time.
type output struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newOutput(w io.Writer) *output { return &output{w: bufio.NewWriter(w)} }

// write writes p and flushes. Errors of standard output (a closed pipe)
// are not reported: there is nowhere to report them.
func (o *output) write(p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.Write(p)
	o.w.Flush()
}

// tracer prints the packets of one client, across its connections.
type tracer struct {
	out     *output
	version codec.Version
	// subscribed adds mosquitto_sub's line after each SUBACK:
	// "Subscribed (mid: N): granted, granted...".
	subscribed bool

	mu       sync.Mutex
	id       string
	qos0     int // outgoing QoS 0 messages so far
	aliasOut map[uint16]string
	aliasIn  map[uint16]string
}

func newTracer(out *output, v codec.Version, id string, subscribed bool) *tracer {
	return &tracer{out: out, version: v, id: id, subscribed: subscribed}
}

// wrap returns nc with its traffic traced.
func (t *tracer) wrap(nc net.Conn) net.Conn {
	t.mu.Lock()
	t.aliasOut, t.aliasIn = map[uint16]string{}, map[uint16]string{} // aliases live per connection
	t.mu.Unlock()
	return &traceConn{Conn: nc, t: t,
		in:  traceDir{dec: codec.Decoder{Version: t.version, From: codec.RoleAny}},
		out: traceDir{dec: codec.Decoder{Version: t.version, From: codec.RoleAny}, sending: true}}
}

// traceConn is a traced connection. The client reads from one goroutine
// and writes from another: each direction has its own state.
type traceConn struct {
	net.Conn
	t   *tracer
	in  traceDir
	out traceDir
}

type traceDir struct {
	sending bool
	dec     codec.Decoder
	buf     []byte
	broken  bool // a packet could not be decoded: the rest is not traced
}

func (c *traceConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.t.feed(&c.in, p[:n])
	}
	return n, err
}

func (c *traceConn) Write(p []byte) (int, error) {
	c.t.feed(&c.out, p)
	return c.Conn.Write(p)
}

// feed takes the bytes of one direction and prints each whole packet.
func (t *tracer) feed(d *traceDir, p []byte) {
	if d.broken {
		return
	}
	d.buf = append(d.buf, p...)
	var lines bytes.Buffer
	for {
		_, n, err := codec.Frame(d.buf, 0)
		if errors.Is(err, codec.ErrIncomplete) {
			break
		}
		var pkt codec.Packet
		if err == nil {
			pkt, n, err = d.dec.Decode(d.buf)
		}
		if err != nil {
			fmt.Fprintf(&lines, "Client %s %s a packet it cannot decode: %v\n", t.name(), t.verb(d.sending), err)
			d.broken, d.buf = true, nil
			break
		}
		t.describe(&lines, pkt, d.sending)
		d.buf = d.buf[n:]
	}
	if len(d.buf) == 0 {
		d.buf = d.buf[:0:0] // let a large packet's buffer go
	}
	if lines.Len() > 0 {
		t.out.write(lines.Bytes())
	}
}

func (t *tracer) verb(sending bool) string {
	if sending {
		return "sending"
	}
	return "received"
}

func (t *tracer) name() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.id == "" {
		return "(null)"
	}
	return t.id
}

// describe writes the line (or lines) of one packet.
func (t *tracer) describe(b *bytes.Buffer, p codec.Packet, sending bool) {
	if ack, ok := p.(*codec.Connack); ok && ack.Props.AssignedClientID != "" {
		// libmosquitto takes the assigned identifier before it logs the
		// CONNACK.
		t.mu.Lock()
		if t.id == "" {
			t.id = ack.Props.AssignedClientID
		}
		t.mu.Unlock()
	}
	name, verb := t.name(), t.verb(sending)
	line := func(format string, a ...any) {
		fmt.Fprintf(b, "Client %s %s ", name, verb)
		fmt.Fprintf(b, format, a...)
		b.WriteByte('\n')
	}
	switch p := p.(type) {
	case *codec.Connect:
		line("CONNECT")
	case *codec.Connack:
		line("CONNACK (%d)", p.ReasonCode)
	case *codec.Publish:
		mid := int(p.PacketID)
		topic := p.Topic
		t.mu.Lock()
		aliases := t.aliasIn
		if sending {
			aliases = t.aliasOut
			if p.QoS == codec.AtMostOnce {
				t.qos0++
				mid = t.qos0
			}
		}
		if a := p.Props.TopicAlias; a != 0 && aliases != nil {
			if topic == "" {
				topic = aliases[a]
			} else {
				aliases[a] = topic
			}
		}
		t.mu.Unlock()
		line("PUBLISH (d%d, q%d, r%d, m%d, '%s', ... (%d bytes))", btoi(p.Dup), p.QoS, btoi(p.Retain), mid, topic, len(p.Payload))
	case *codec.Puback:
		if sending {
			line("PUBACK (m%d, rc%d)", p.PacketID, p.ReasonCode)
		} else {
			line("PUBACK (Mid: %d, RC:%d)", p.PacketID, p.ReasonCode)
		}
	case *codec.Pubrec:
		if sending {
			line("PUBREC (m%d, rc%d)", p.PacketID, p.ReasonCode)
		} else {
			line("PUBREC (Mid: %d)", p.PacketID)
		}
	case *codec.Pubrel:
		if sending {
			line("PUBREL (m%d)", p.PacketID)
		} else {
			line("PUBREL (Mid: %d)", p.PacketID)
		}
	case *codec.Pubcomp:
		if sending {
			line("PUBCOMP (m%d)", p.PacketID)
		} else {
			line("PUBCOMP (Mid: %d, RC:%d)", p.PacketID, p.ReasonCode)
		}
	case *codec.Subscribe:
		for _, s := range p.Subscriptions {
			opts := byte(s.RetainHandling) << 4
			if s.NoLocal {
				opts |= 0x04
			}
			if s.RetainAsPublished {
				opts |= 0x08
			}
			line("SUBSCRIBE (Mid: %d, Topic: %s, QoS: %d, Options: 0x%02x)", p.PacketID, s.Filter, s.QoS, opts)
		}
	case *codec.Suback:
		line("SUBACK")
		if t.subscribed && len(p.ReasonCodes) > 0 {
			fmt.Fprintf(b, "Subscribed (mid: %d): %d", p.PacketID, p.ReasonCodes[0])
			for _, c := range p.ReasonCodes[1:] {
				fmt.Fprintf(b, ", %d", c)
			}
			b.WriteByte('\n')
		}
	case *codec.Unsubscribe:
		for _, f := range p.Filters {
			line("UNSUBSCRIBE (Mid: %d, Topic: %s)", p.PacketID, f)
		}
	case *codec.Unsuback:
		line("UNSUBACK")
	case *codec.Pingreq:
		line("PINGREQ")
	case *codec.Pingresp:
		line("PINGRESP")
	case *codec.Disconnect:
		if sending {
			line("DISCONNECT")
		} else {
			line("DISCONNECT (%d)", p.ReasonCode)
		}
	case *codec.Auth:
		line("AUTH (%d)", p.ReasonCode)
	}
}
