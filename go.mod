module github.com/zmqtt/zmqtt-go

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/eclipse/paho.golang v0.23.0
	github.com/google/go-cmp v0.7.0
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.63.0
	pgregory.net/rapid v1.3.0
)

require golang.org/x/text v0.44.0 // indirect
