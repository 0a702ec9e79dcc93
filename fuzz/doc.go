// Package fuzz holds the fuzz targets of zmqtt-go: one per packet type, one
// over the framing reader and, with the session, one over the state machine
// fed arbitrary broker bytes. Three more are built on the packet generator
// of fuzz/gen: FuzzGenerated (valid packets and every class of field-level
// mutation of them through the decoder), FuzzGeneratedSession (generated and
// mutated server packets through the session) and FuzzEncode (generated
// packets with one field corrupted: the encoder refuses what the decoder
// refuses).
//
// The seed corpus in testdata/fuzz/ is committed: the golden packets and
// Mosquitto's vectors from the repository's testdata/, and seeds for the
// generator-driven targets; TestSeedCorpus keeps it in step with its
// sources. Crashers found are kept there too and replayed by the plain test
// run.
//
// Run them with `make fuzz` (FUZZTIME each) or one at a time:
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 1m ./fuzz
package fuzz
