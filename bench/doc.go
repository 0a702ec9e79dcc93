// Package bench holds the side-by-side benchmarks of the zmqtt codec against
// paho.golang's packets and mochi-mqtt's packets. It is a module of its own,
// so that the other implementations never become requirements of the SDK.
// The benchmarks are in the test files; see README.md for how to run them.
package bench
