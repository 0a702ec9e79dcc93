// Package fuzz holds the fuzz targets of zmqtt-go: one per packet type, one
// over the framing reader and, with the session, one over the state machine
// fed arbitrary broker bytes. Seeds come from testdata/; crashers found are
// kept in testdata/fuzz/ and replayed by the plain test run.
//
// Run them with `make fuzz` (FUZZTIME each) or one at a time:
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 1m ./fuzz
package fuzz
