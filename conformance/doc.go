// Package conformance is a kit to write and run MQTT conformance checks as
// scripts of packets.
//
// A script plays one side of a connection over any net.Conn: a fake broker
// in front of a client under test, or a fake client in front of a broker
// under test. Its steps send packets built with the codec (Send) or raw
// bytes (SendBytes), and expect packets compared field by field (Expect,
// with options to ignore fields or accept a set of values), byte for byte
// (ExpectBytes), the end of the connection (ExpectClosed) or silence for a
// while (ExpectNothing). Each step names the normative statements it checks
// with Cites, in the form "MQTT-3.3.1-4".
//
//	err := conformance.Run(ctx, conn, codec.V5,
//		conformance.Send(&codec.Connect{CleanStart: true, ClientID: "c1"}),
//		conformance.Expect(&codec.Connack{}, conformance.IgnoreProps()).Cites("MQTT-3.2.2-2"),
//	)
//
// Timeouts come from the context: a step that waits gives up at the
// context's deadline. A step that fails returns a *Failure saying which
// step, which statement, what was expected, what arrived, and the
// transcript of the packets sent and received so far.
//
// A Peer keeps a connection between scripts, so that a check can run
// several scripts on one connection and several connections at once, and
// read packets one at a time (Next) where a script cannot say in advance
// what comes. The package imports only the codec and the standard library.
//
// The broker catalogue built on the kit is in conformance/broker; the
// command `zmqtt conform` runs it against a broker.
package conformance
