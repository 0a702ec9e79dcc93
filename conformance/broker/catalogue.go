package broker

import "slices"

// Catalogue returns every broker check, grouped by area: connect,
// keepalive, publish, subscribe, packetid, retain, will, session, expiry,
// alias, recvmax, maxpkt, subid, nolocal, shared, topic, unsubscribe,
// props, disconnect, malformed. The slice is new on each call.
func Catalogue() []Check {
	var out []Check
	for _, part := range [][]Check{
		connectChecks(), keepAliveChecks(), publishChecks(), subscribeChecks(), retainChecks(),
		willChecks(), sessionChecks(), v5Checks(), topicChecks(), malformedChecks(),
	} {
		out = append(out, part...)
	}
	return slices.Clip(out)
}

func ids(s ...string) []string { return s }
