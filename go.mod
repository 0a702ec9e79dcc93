module github.com/zmqtt/zmqtt-go

go 1.26

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/eclipse/paho.golang v0.23.0 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	pgregory.net/rapid v1.3.0 // indirect
)
