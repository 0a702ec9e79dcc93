package transport

import (
	"errors"
	"testing"
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url    string
		ok     bool
		scheme bool // the error wraps ErrUnsupportedScheme
	}{
		{"mqtt://localhost", true, false},
		{"mqtt://localhost:1883", true, false},
		{"tcp://127.0.0.1:1", true, false},
		{"mqtts://broker.example:8883", true, false},
		{"ssl://[::1]:8883", true, false},
		{"ws://h/mqtt", true, false},
		{"wss://user:secret@h:443/", true, false},
		{"unix:///tmp/mqtt.sock", true, false},
		{"foo://x", false, true},
		{"mqtt+ssl://h:8883", false, true},
		{"localhost:1883", false, true},
		{"h", false, true},
		{"mqtt://", false, false},
		{"mqtt://:1883", false, false},
		{"mqtt://h:", false, false},
		{"mqtt://h:0", false, false},
		{"mqtt://h:65536", false, false},
		{"mqtt://h:port", false, false},
		{"unix://", false, false},
	} {
		err := CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			continue
		}
		if err == nil {
			continue
		}
		var ue *URLError
		if !errors.As(err, &ue) {
			t.Errorf("CheckURL(%q) = %T, want *URLError", tc.url, err)
		}
		if errors.Is(err, ErrUnsupportedScheme) != tc.scheme {
			t.Errorf("CheckURL(%q) = %v: matches ErrUnsupportedScheme %v, want %v", tc.url, err, !tc.scheme, tc.scheme)
		}
	}
	if !IsTLS("wss://h") || !IsTLS("MQTTS://h") || IsTLS("ws://h") || IsTLS("mqtt://h") {
		t.Error("IsTLS")
	}
}
