package fuzz

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
)

// goldenSeeds reads the hand-written golden packets of testdata/golden
// (see its README.md) for version v, leaving out the large ones, and
// returns them by packet type.
func goldenSeeds(f *testing.F, v codec.Version) map[codec.Type][][]byte {
	f.Helper()
	file := "../testdata/golden/v311.hex"
	if v == codec.V5 {
		file = "../testdata/golden/v5.hex"
	}
	fd, err := os.Open(file)
	if err != nil {
		f.Fatal(err)
	}
	defer fd.Close()
	var pkts [][]byte
	skip := false
	sc := bufio.NewScanner(fd)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "=="):
			skip = strings.Contains(line, "header/")
			pkts = append(pkts, nil)
		case strings.HasPrefix(line, "fill "):
			skip = true // the large Remaining Length examples
		default:
			b, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
			if err != nil {
				f.Fatalf("%s: %v", file, err)
			}
			if len(pkts) > 0 && !skip {
				pkts[len(pkts)-1] = append(pkts[len(pkts)-1], b...)
			}
		}
		if skip && len(pkts) > 0 {
			pkts[len(pkts)-1] = nil
		}
	}
	if err := sc.Err(); err != nil {
		f.Fatal(err)
	}
	out := map[codec.Type][][]byte{}
	for _, b := range pkts {
		if len(b) > 0 {
			out[codec.Type(b[0]>>4)] = append(out[codec.Type(b[0]>>4)], b)
		}
	}
	return out
}

// seedPackets are packet values whose encodings seed the targets besides the
// golden packets: edge cases of each type for both versions.
var seedPackets = []codec.Packet{
	&codec.Connect{CleanStart: true, ClientID: "c"},
	&codec.Connect{ClientID: "c", KeepAlive: 30, UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("p"),
		Will: &codec.Will{QoS: 1, Retain: true, Topic: "w/t", Payload: []byte("bye")}},
	&codec.Connack{SessionPresent: true},
	&codec.Publish{Topic: "a/b", Payload: []byte("hello")},
	&codec.Publish{QoS: 2, Dup: true, Retain: true, PacketID: 9, Topic: "é/\U0002A6D4"},
	&codec.Puback{PacketID: 1},
	&codec.Pubrec{PacketID: 2},
	&codec.Pubrel{PacketID: 3},
	&codec.Pubcomp{PacketID: 4},
	&codec.Subscribe{PacketID: 5, Subscriptions: []codec.Subscription{{Filter: "a/+/#", QoS: 1}, {Filter: "$share/g/x"}}},
	&codec.Suback{PacketID: 5, ReasonCodes: []codec.ReasonCode{0, 1, 2, 0x80}},
	&codec.Unsubscribe{PacketID: 6, Filters: []string{"a/+/#", "$share/g/x"}},
	&codec.Pingreq{},
	&codec.Pingresp{},
	&codec.Disconnect{},
}

// seedPackets311 are MQTT 3.1.1 only.
var seedPackets311 = []codec.Packet{
	&codec.Connack{ReasonCode: 5},
	&codec.Unsuback{PacketID: 6},
}

// seedPackets5 are MQTT 5.0 only.
var seedPackets5 = []codec.Packet{
	&codec.Connect{ClientID: "c", Props: codec.Properties{SessionExpiry: 60, ReceiveMaximum: 10, AuthMethod: "m", AuthData: []byte{1},
		User: []codec.UserProperty{{Key: "k", Value: "v"}}},
		Will: &codec.Will{Topic: "w", Props: codec.Properties{WillDelay: 5, ContentType: "t", CorrelationData: []byte{2}}}},
	&codec.Connack{Props: codec.Properties{AssignedClientID: "id", MaximumQoS: 1, Present: 1 << codec.PropMaximumQoS,
		TopicAliasMaximum: 4, ReasonString: "ok"}},
	&codec.Publish{QoS: 1, PacketID: 1, Topic: "t", Props: codec.Properties{TopicAlias: 3, SubscriptionIDs: []uint32{1, 300},
		ResponseTopic: "r", CorrelationData: []byte("c"), PayloadFormat: 1}, Payload: []byte("{}")},
	&codec.Publish{Props: codec.Properties{TopicAlias: 3}, Payload: []byte("x")},
	&codec.Puback{PacketID: 1, ReasonCode: 0x10},
	&codec.Pubrec{PacketID: 1, ReasonCode: 0x80, Props: codec.Properties{ReasonString: "no"}},
	&codec.Pubrel{PacketID: 1, ReasonCode: 0x92},
	&codec.Pubcomp{PacketID: 1, Props: codec.Properties{User: []codec.UserProperty{{Key: "a", Value: "b"}}}},
	&codec.Subscribe{PacketID: 2, Props: codec.Properties{SubscriptionIDs: []uint32{7}},
		Subscriptions: []codec.Subscription{{Filter: "a", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}},
	&codec.Suback{PacketID: 2, ReasonCodes: []codec.ReasonCode{0x8f, 0xa2}},
	&codec.Unsuback{PacketID: 3, ReasonCodes: []codec.ReasonCode{0x11}},
	&codec.Disconnect{ReasonCode: 0x04},
	&codec.Disconnect{Props: codec.Properties{SessionExpiry: 1, ServerReference: "s"}},
	&codec.Auth{},
	&codec.Auth{ReasonCode: 0x18, Props: codec.Properties{AuthMethod: "SCRAM", AuthData: []byte{1, 2}}},
}

// seedsFor returns the seeds of the packet types in types, for both
// versions, as (version byte, bytes) pairs.
func seedsFor(f *testing.F, types ...codec.Type) (vs []byte, bs [][]byte) {
	f.Helper()
	want := map[codec.Type]bool{}
	for _, t := range types {
		want[t] = true
	}
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		for t, pkts := range goldenSeeds(f, v) {
			if want[t] {
				for _, b := range pkts {
					vs, bs = append(vs, byte(v)), append(bs, b)
				}
			}
		}
		pkts := append(append([]codec.Packet(nil), seedPackets...), seedPackets311...)
		if v == codec.V5 {
			pkts = append(append([]codec.Packet(nil), seedPackets...), seedPackets5...)
		}
		for _, p := range pkts {
			if !want[p.Type()] {
				continue
			}
			b, err := codec.Append(nil, p, v)
			if err != nil {
				f.Fatalf("seed %v for %v: %v", p, v, err)
			}
			vs, bs = append(vs, byte(v)), append(bs, b)
		}
	}
	if len(bs) == 0 {
		f.Fatalf("no seeds for %v", types)
	}
	return vs, bs
}
