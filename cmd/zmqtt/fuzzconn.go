package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/fuzz/gen"
	"github.com/zmqtt/zmqtt-go/transport"
)

// execution is one fuzzing connection: a CONNECT (now and then mutated),
// then steps that mix valid flows (SUBSCRIBE, PUBLISH at every QoS with its
// acknowledgements, UNSUBSCRIBE, PINGREQ) with mutated packets of every
// type, each mutant followed by a PINGREQ that the broker must answer or
// close the connection over. Its choices come from a Gen seeded by the run's
// seed and the execution's index, so a seed replays the same run against a
// broker that behaves the same.
type execution struct {
	cfg     fuzzConfig
	i       int
	g       *gen.Gen
	rec     connRecord
	packets int
	mutants []gen.Mutant
}

// execResult is what a connection showed: a finding (kind, detail and the
// offending bytes) or nothing; whether the broker closed it.
type execResult struct {
	kind, detail, received string
	closedByBroker         bool
	dialErr                error
}

func (r execResult) describe() string {
	switch {
	case r.dialErr != nil:
		return "dial failed: " + r.dialErr.Error()
	case r.kind != "":
		return r.kind + ": " + r.detail
	case r.closedByBroker:
		return "closed by the broker"
	}
	return "answered every request"
}

func newExecution(cfg fuzzConfig, i int) *execution {
	return &execution{cfg: cfg, i: i, g: gen.New(execSeed(cfg.seed, i))}
}

func dialBroker(ctx context.Context, cfg fuzzConfig) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	return transport.Dial(dctx, cfg.url, nil)
}

// outcome of waiting for an answer.
type outcome int

const (
	gotAnswer outcome = iota
	gotClose
	gotTimeout
	gotViolation
)

// fconn is one connection of the fuzzer (or of a replay) and the rules it
// checks on what the broker sends. The rules that depend on what we sent
// (an acknowledgement for an identifier in flight, as many SUBACK codes as
// filters, PUBLISH only on subscribed topics) are checked only until the
// first mutated packet: a broker may have read a mutant in a way that makes
// its later answers legitimate.
type fconn struct {
	c       net.Conn
	cfg     fuzzConfig
	dec     codec.Decoder
	rec     *connRecord // nil: do not record (replay)
	autoAck bool        // answer the broker's PUBLISH and PUBREL (not in a replay: the record holds the answers)
	buf     []byte
	sent    []byte
	packets int

	gotConnack bool
	mutated    bool
	inflight   map[uint16]codec.Type // identifier -> the acknowledgement we wait for
	subs       map[uint16][]string   // SUBSCRIBE identifier -> its filters
	unsubs     map[uint16]int        // UNSUBSCRIBE identifier -> its filter count
	filters    []string              // granted subscriptions
	res        execResult
}

func newFconn(c net.Conn, cfg fuzzConfig, rec *connRecord) *fconn {
	return &fconn{c: c, cfg: cfg, rec: rec, autoAck: rec != nil,
		dec:      codec.Decoder{Version: cfg.version, From: codec.RoleServer},
		inflight: map[uint16]codec.Type{}, subs: map[uint16][]string{}, unsubs: map[uint16]int{}}
}

// write sends b (recorded as a step) and notes the flows it opens. It
// reports false when the connection is gone.
func (fc *fconn) write(b []byte, note, await string, m *gen.Mutant) bool {
	if fc.rec != nil {
		s := step{Send: hex.EncodeToString(b), Note: quoteNote(note), Await: await}
		if m != nil {
			s.Class, s.Type = m.Class.String(), m.Type.String()
		}
		fc.rec.Steps = append(fc.rec.Steps, s)
	}
	if m != nil {
		fc.mutated = true
	} else {
		fc.track(b)
	}
	fc.packets++
	fc.sent = append(fc.sent, b...)
	_ = fc.c.SetWriteDeadline(time.Now().Add(fc.cfg.timeout))
	if _, err := fc.c.Write(b); err != nil {
		fc.res.closedByBroker = true
		return false
	}
	return true
}

// track notes the flows a valid packet of ours opens.
func (fc *fconn) track(b []byte) {
	p, _, err := codec.Decode(b, fc.cfg.version)
	if err != nil {
		return
	}
	switch p := p.(type) {
	case *codec.Publish:
		switch p.QoS {
		case 1:
			fc.inflight[p.PacketID] = codec.TypePuback
		case 2:
			fc.inflight[p.PacketID] = codec.TypePubrec
		}
	case *codec.Pubrel:
		fc.inflight[p.PacketID] = codec.TypePubcomp
	case *codec.Subscribe:
		fs := make([]string, len(p.Subscriptions))
		for i, s := range p.Subscriptions {
			fs[i] = s.Filter
		}
		fc.subs[p.PacketID] = fs
	case *codec.Unsubscribe:
		fc.unsubs[p.PacketID] = len(p.Filters)
	}
}

// want is what an await waits for: a packet type (and identifier, when
// id >= 0), or also the connection's end when orClose.
type want struct {
	t       codec.Type
	id      int
	orClose bool
}

func (w want) String() string {
	s := w.t.String()
	if w.id >= 0 {
		s += " " + strconv.Itoa(w.id)
	}
	if w.orClose {
		s += " or close"
	}
	return s
}

// parseWant reads what want.String wrote.
func parseWant(s string) (want, bool) {
	w := want{id: -1}
	s, w.orClose = strings.CutSuffix(s, " or close")
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return w, false
	}
	for t := codec.TypeConnect; t <= codec.TypeAuth; t++ {
		if t.String() == f[0] {
			w.t = t
		}
	}
	if w.t == 0 {
		return w, false
	}
	if len(f) == 2 {
		id, err := strconv.Atoi(f[1])
		if err != nil {
			return w, false
		}
		w.id = id
	}
	return w, true
}

func packetIDOf(p codec.Packet) int {
	switch p := p.(type) {
	case *codec.Publish:
		return int(p.PacketID)
	case *codec.Puback:
		return int(p.PacketID)
	case *codec.Pubrec:
		return int(p.PacketID)
	case *codec.Pubrel:
		return int(p.PacketID)
	case *codec.Pubcomp:
		return int(p.PacketID)
	case *codec.Suback:
		return int(p.PacketID)
	case *codec.Unsuback:
		return int(p.PacketID)
	}
	return -1
}

// await reads until w arrives, the broker closes, the timeout passes or the
// broker breaks a rule. A timeout is a hang only when every byte we sent
// frames as whole packets: otherwise the broker is waiting, as it should,
// for the rest of one.
func (fc *fconn) await(w want) outcome {
	deadline := time.Now().Add(fc.cfg.timeout)
	tmp := make([]byte, 4096)
	for {
		for len(fc.buf) > 0 {
			p, n, err := fc.dec.Decode(fc.buf)
			if errors.Is(err, codec.ErrIncomplete) {
				break
			}
			if err != nil {
				fc.violation("the broker sent bytes our strict decoder refuses: "+err.Error(), fc.buf[:min(len(fc.buf), 256)])
				return gotViolation
			}
			raw := fc.buf[:n]
			if msg := fc.check(p); msg != "" {
				fc.violation(msg, raw)
				return gotViolation
			}
			fc.buf = fc.buf[n:]
			if fc.autoAck {
				fc.answer(p)
			}
			if p.Type() == w.t && (w.id < 0 || packetIDOf(p) == w.id) {
				return gotAnswer
			}
		}
		_ = fc.c.SetReadDeadline(deadline)
		n, err := fc.c.Read(tmp)
		fc.buf = append(fc.buf, tmp[:n]...)
		if err == nil {
			continue
		}
		if n > 0 {
			continue // decode what came with the error first; the next Read repeats it
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if framed(fc.sent) {
				fc.res.kind = kindHang
				fc.res.detail = fmt.Sprintf("no %v within %v after whole packets%s", w, fc.cfg.timeout, fc.lastNote())
				return gotTimeout
			}
			return gotClose // the broker waits for the rest of a packet: not a finding; give up the connection
		}
		fc.res.closedByBroker = true
		return gotClose
	}
}

func (fc *fconn) lastNote() string {
	if fc.rec == nil || len(fc.rec.Steps) == 0 {
		return ""
	}
	for i := len(fc.rec.Steps) - 1; i >= 0; i-- {
		if fc.rec.Steps[i].Class != "" {
			return " (the last mutant: " + fc.rec.Steps[i].Note + ")"
		}
	}
	return ""
}

func (fc *fconn) violation(msg string, raw []byte) {
	fc.res.kind, fc.res.detail, fc.res.received = kindViolation, msg, hex.EncodeToString(raw)
}

// check applies the session's rules to a packet from the broker and
// returns what it breaks, or "".
func (fc *fconn) check(p codec.Packet) string {
	t := p.Type()
	if !fc.gotConnack {
		if t == codec.TypeConnack {
			fc.gotConnack = true
			return ""
		}
		if t == codec.TypeAuth || t == codec.TypeDisconnect && fc.cfg.version == codec.V5 {
			return ""
		}
		return t.String() + " before CONNACK [MQTT-3.2.0-1]"
	}
	if t == codec.TypeConnack {
		return "a second CONNACK on one connection"
	}
	if fc.mutated {
		return ""
	}
	id := uint16(max(packetIDOf(p), 0))
	switch p := p.(type) {
	case *codec.Puback, *codec.Pubrec, *codec.Pubcomp:
		exp, ok := fc.inflight[id]
		if !ok {
			return fmt.Sprintf("%v for packet identifier %d, which is not in flight", t, id)
		}
		if exp != t {
			return fmt.Sprintf("%v for packet identifier %d, which waits for %v", t, id, exp)
		}
		delete(fc.inflight, id)
		if pr, ok := p.(*codec.Pubrec); ok && !pr.ReasonCode.Failed() {
			fc.inflight[id] = codec.TypePubrel // ours to send
		}
	case *codec.Suback:
		fs, ok := fc.subs[id]
		if !ok {
			return fmt.Sprintf("SUBACK for packet identifier %d, which no SUBSCRIBE of ours used", id)
		}
		delete(fc.subs, id)
		if len(p.ReasonCodes) != len(fs) {
			return fmt.Sprintf("SUBACK with %d codes for a SUBSCRIBE of %d filters", len(p.ReasonCodes), len(fs))
		}
		for i, c := range p.ReasonCodes {
			if !c.Failed() {
				fc.filters = append(fc.filters, fs[i])
			}
		}
	case *codec.Unsuback:
		n, ok := fc.unsubs[id]
		if !ok {
			return fmt.Sprintf("UNSUBACK for packet identifier %d, which no UNSUBSCRIBE of ours used", id)
		}
		delete(fc.unsubs, id)
		if fc.cfg.version == codec.V5 && len(p.ReasonCodes) != n {
			return fmt.Sprintf("UNSUBACK with %d codes for an UNSUBSCRIBE of %d filters", len(p.ReasonCodes), n)
		}
	case *codec.Publish:
		if p.Props.TopicAlias != 0 {
			return "a PUBLISH with a Topic Alias, which our CONNECT did not allow (no Topic Alias Maximum)"
		}
		for _, f := range fc.filters {
			if codec.MatchTopic(f, p.Topic) {
				return ""
			}
		}
		return fmt.Sprintf("a PUBLISH on %q, which no subscription of this connection matches", p.Topic)
	}
	return ""
}

// answer acknowledges the broker's PUBLISH and PUBREL.
func (fc *fconn) answer(p codec.Packet) {
	var a codec.Packet
	switch p := p.(type) {
	case *codec.Publish:
		switch p.QoS {
		case 1:
			a = &codec.Puback{PacketID: p.PacketID}
		case 2:
			a = &codec.Pubrec{PacketID: p.PacketID}
		}
	case *codec.Pubrel:
		a = &codec.Pubcomp{PacketID: p.PacketID}
	}
	if a == nil {
		return
	}
	b, err := codec.Append(nil, a, fc.cfg.version)
	if err == nil {
		fc.write(b, a.Type().String()+" for the broker's "+p.Type().String(), "", nil)
	}
}

// framed reports whether b is a sequence of whole packets as their fixed
// headers frame them (a header that cannot be read, such as five bytes of
// remaining length, counts as whole: the broker has what it needs to refuse
// it).
func framed(b []byte) bool {
	for off := 0; off < len(b); {
		if len(b)-off < 2 {
			return false
		}
		rem, mul, i := 0, 1, 1
		for ; ; i++ {
			if off+i >= len(b) {
				return false
			}
			c := b[off+i]
			rem += int(c&0x7F) * mul
			if c&0x80 == 0 {
				break
			}
			if i == 4 {
				return true
			}
			mul <<= 7
		}
		off += i + 1 + rem
		if off > len(b) {
			return false
		}
	}
	return true
}

func (ex *execution) enc(p codec.Packet) []byte {
	b, err := codec.Append(nil, p, ex.cfg.version)
	if err != nil {
		panic(fmt.Sprintf("zmqtt fuzz: encoding %v: %v", p, err)) // our own packets: a bug here
	}
	return b
}

// run plays the execution on a new connection.
func (ex *execution) run(ctx context.Context) execResult {
	v, g := ex.cfg.version, ex.g
	c, err := dialBroker(ctx, ex.cfg)
	if err != nil {
		return execResult{dialErr: err}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	fc := newFconn(c, ex.cfg, &ex.rec)
	defer func() { ex.packets += fc.packets }()
	send := func(b []byte, note string, w *want) outcome {
		aw := ""
		if w != nil {
			aw = w.String()
		}
		if !fc.write(b, note, aw, nil) {
			return gotClose
		}
		if w == nil {
			return gotAnswer
		}
		return fc.await(*w)
	}
	mutant := func(t codec.Type) outcome {
		b, err := g.Bytes(v, t)
		if err != nil {
			panic(fmt.Sprintf("zmqtt fuzz: generating %v: %v", t, err))
		}
		m := g.MutateAny(b, v)
		ex.mutants = append(ex.mutants, m)
		w := want{t: codec.TypePingresp, id: -1, orClose: true}
		if t == codec.TypeConnect {
			w = want{t: codec.TypeConnack, id: -1, orClose: true}
		}
		if !fc.write(m.Bytes, m.Type.String()+" "+m.Class.String()+": "+m.Note, "", &m) {
			return gotClose
		}
		if !framed(fc.sent) {
			// The broker waits for the rest of a packet (or reads what
			// follows as its body): nothing it must answer. End the
			// connection; the probe after it checks the broker.
			return gotClose
		}
		if t != codec.TypeConnect {
			if !fc.write([]byte{0xC0, 0x00}, "PINGREQ after the mutant", w.String(), nil) {
				return gotClose
			}
		} else if fc.rec != nil {
			fc.rec.Steps[len(fc.rec.Steps)-1].Await = w.String()
		}
		return fc.await(w)
	}
	result := func(o outcome) execResult {
		if o == gotTimeout || o == gotViolation {
			return fc.res
		}
		r := fc.res
		r.kind, r.detail = "", ""
		return r
	}
	// CONNECT: one in eight is a mutant.
	cid := fmt.Sprintf("zmqtt-fuzz-%d-%d", ex.cfg.seed%1_000_000, ex.i)
	var o outcome
	if g.Intn(8) == 0 {
		o = mutant(codec.TypeConnect)
	} else {
		o = send(ex.enc(&codec.Connect{ClientID: cid, CleanStart: true}), "CONNECT", &want{t: codec.TypeConnack, id: -1})
	}
	if o != gotAnswer {
		return result(o)
	}
	base := fmt.Sprintf("zmqtt-fuzz/%d/%d", ex.cfg.seed%1_000_000, ex.i)
	nextID := uint16(1)
	id := func() uint16 { nextID++; return nextID - 1 }
	for n := 1 + g.Intn(ex.cfg.steps); n > 0 && o == gotAnswer; n-- {
		switch g.Intn(10) {
		case 0: // SUBSCRIBE
			i := id()
			f := base + pick(g, "/#", "/+", "/t")
			o = send(ex.enc(&codec.Subscribe{PacketID: i, Subscriptions: []codec.Subscription{{Filter: f, QoS: codec.QoS(g.Intn(3))}}}),
				"SUBSCRIBE "+f, &want{t: codec.TypeSuback, id: int(i)})
		case 1: // UNSUBSCRIBE
			i := id()
			o = send(ex.enc(&codec.Unsubscribe{PacketID: i, Filters: []string{base + "/#"}}), "UNSUBSCRIBE", &want{t: codec.TypeUnsuback, id: int(i)})
		case 2, 3: // PUBLISH at a QoS of the generator's choice, with its flow
			q := codec.QoS(g.Intn(3))
			p := &codec.Publish{Topic: base + "/t", QoS: q, Payload: []byte("zmqtt fuzz " + strconv.Itoa(ex.i))}
			switch q {
			case 0:
				o = send(ex.enc(p), "PUBLISH QoS 0", nil)
			case 1:
				p.PacketID = id()
				o = send(ex.enc(p), "PUBLISH QoS 1", &want{t: codec.TypePuback, id: int(p.PacketID)})
			case 2:
				p.PacketID = id()
				o = send(ex.enc(p), "PUBLISH QoS 2", &want{t: codec.TypePubrec, id: int(p.PacketID)})
				if o == gotAnswer {
					o = send(ex.enc(&codec.Pubrel{PacketID: p.PacketID}), "PUBREL", &want{t: codec.TypePubcomp, id: int(p.PacketID)})
				}
			}
		case 4:
			o = send([]byte{0xC0, 0x00}, "PINGREQ", &want{t: codec.TypePingresp, id: -1})
		default: // a mutated packet of any type of the version
			o = mutant(g.Type(v))
		}
	}
	if o == gotAnswer {
		fc.write(ex.enc(&codec.Disconnect{}), "DISCONNECT", "", nil)
	}
	return result(o)
}

func pick(g *gen.Gen, xs ...string) string { return xs[g.Intn(len(xs))] }

// probeResult says whether a fresh connection got its CONNACK.
type probeResult struct {
	err  error
	hung bool // connected, but no CONNACK and no close within the timeout
}

// probe opens a fresh connection and sends a valid CONNECT: a broker that
// refuses the connection has crashed; one that accepts it but does not
// answer hangs.
func probe(ctx context.Context, cfg fuzzConfig) probeResult {
	c, err := dialBroker(ctx, cfg)
	if err != nil {
		return probeResult{err: err}
	}
	defer c.Close()
	fc := newFconn(c, cfg, nil)
	b, _ := codec.Append(nil, &codec.Connect{ClientID: "zmqtt-fuzz-probe", CleanStart: true}, cfg.version)
	if !fc.write(b, "CONNECT", "", nil) {
		return probeResult{err: errors.New("the connection was closed before CONNECT")}
	}
	switch fc.await(want{t: codec.TypeConnack, id: -1}) {
	case gotAnswer:
		d, _ := codec.Append(nil, &codec.Disconnect{}, cfg.version)
		fc.write(d, "DISCONNECT", "", nil)
		return probeResult{}
	case gotTimeout:
		return probeResult{err: os.ErrDeadlineExceeded, hung: true}
	case gotViolation:
		return probeResult{} // a violation on a plain CONNECT is the executions' to report
	}
	return probeResult{err: errors.New("the broker closed a new connection before CONNACK")}
}

// replayConn plays one recorded connection.
func replayConn(ctx context.Context, cfg fuzzConfig, rec connRecord, steps [][]byte) execResult {
	c, err := dialBroker(ctx, cfg)
	if err != nil {
		return execResult{dialErr: err}
	}
	defer c.Close()
	fc := newFconn(c, cfg, nil)
	for i, b := range steps {
		s := rec.Steps[i]
		var m *gen.Mutant
		if s.Class != "" {
			cl, _ := gen.ParseClass(s.Class)
			m = &gen.Mutant{Class: cl, Bytes: b}
		}
		if !fc.write(b, s.Note, s.Await, m) {
			break
		}
		w, ok := parseWant(s.Await)
		if !ok {
			continue
		}
		switch fc.await(w) {
		case gotTimeout, gotViolation:
			return fc.res
		case gotClose:
			r := fc.res
			r.kind = ""
			return r
		}
	}
	r := fc.res
	r.kind = ""
	return r
}
