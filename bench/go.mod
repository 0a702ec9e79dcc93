module github.com/zmqtt/zmqtt-go/bench

go 1.26

require (
	github.com/eclipse/paho.golang v0.23.0
	github.com/mochi-mqtt/server/v2 v2.7.9
	github.com/zmqtt/zmqtt-go v0.0.0
)

require (
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/rs/xid v1.4.0 // indirect
)

// The SDK under test is the checkout this module sits in.
replace github.com/zmqtt/zmqtt-go => ../
