module github.com/zmqtt/zmqtt-go

go 1.26
