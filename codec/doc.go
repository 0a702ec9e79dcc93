// Package codec turns MQTT 3.1.1 and 5.0 control packets into bytes and
// back. It is the lowest layer of zmqtt-go: it imports nothing of the SDK,
// does no I/O beyond reading an io.Reader it is given, starts no goroutine
// and reads no clock, so it can be used on its own, fuzzed on its own and
// benchmarked on its own.
//
// # Encoding
//
// Every packet type has a struct (Connect, Connack, Publish, Puback, Pubrec,
// Pubrel, Pubcomp, Subscribe, Suback, Unsubscribe, Unsuback, Pingreq,
// Pingresp, Disconnect, Auth) whose pointer implements Packet. Size reports
// the exact encoded size before anything is written, so a caller can refuse a
// packet above the peer's Maximum Packet Size without writing a byte. Append
// (or the function Append) validates the packet and appends its bytes to a
// caller's buffer; with enough capacity it does not allocate. It refuses
// whatever Decode would refuse, so the SDK cannot send a packet its own
// decoder would call malformed.
//
// # Decoding and buffer lifetime
//
// Decode reads one packet from the start of a byte slice and reports how many
// bytes it used. A slice that holds less than one whole packet gives
// ErrIncomplete: read more and call again. Anything else wrong is an *Error.
//
// Decoding does not copy: the strings and byte slices of a decoded packet
// (topic, payload, client identifier, user properties, correlation data...)
// point into the slice that was decoded, strings included. They are valid
// only while that slice is not modified; a Reader reuses its buffer on the
// next Next, and a Decoder reuses its packets on the next Decode. Call Clone
// (or the Clone method of a packet type) to keep a packet longer.
//
// The hot path allocates nothing in steady state: a Reader hands out whole
// packets from pooled buffers, and a Decoder decodes PUBLISH, the PUBACK
// family, PINGREQ and PINGRESP into values it reuses.
//
// # Validation
//
// Decoding is strict to the letter of the specifications. It refuses, with an
// *Error that carries the MQTT 5.0 reason code, the packet type, the byte
// offset and the normative statement: reserved packet types and fixed-header
// flags; a Remaining Length over four bytes or not minimally encoded; QoS 3
// and DUP on QoS 0; packet identifier 0 where one is required; properties
// that are unknown, not allowed in the packet, repeated where only one is
// allowed, out of range, or running past their block; strings that are not
// well-formed UTF-8 or contain U+0000; wildcards in topic names and misplaced
// wildcards in topic filters; broken shared subscription filters; empty
// SUBSCRIBE, UNSUBSCRIBE, SUBACK and 5.0 UNSUBACK payloads; reason codes not
// allowed in the packet; bytes left over after the last field. A Decoder with
// a Role also applies the rules of direction (a client never receives
// CONNECT; a server's DISCONNECT carries no Session Expiry Interval).
//
// The control characters and noncharacters that section 1.5.4 says a string
// SHOULD NOT contain are accepted: the spec lets a receiver refuse them but
// does not make it, and refusing a topic that the broker accepted would end
// the connection over a message the application could have read.
//
// # Errors
//
// Match kinds with errors.Is (ErrIncomplete, ErrMalformed, ErrProtocol,
// ErrPacketTooLarge, ErrUnsupportedVersion, ErrInvalidTopic) and read the
// detail with errors.As into *Error or *TopicError. Error messages never
// contain payload bytes, and the String methods of packets print payloads,
// passwords and authentication data by their length only.
//
// # Concurrency
//
// Packet values, Decoder and Reader are not safe for concurrent use; the
// functions of the package are.
package codec
