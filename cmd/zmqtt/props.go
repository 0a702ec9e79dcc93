package main

import (
	"fmt"
	"strings"

	"github.com/zmqtt/zmqtt-go/codec"
)

// -D command identifier value [value]: MQTT 5.0 properties on the packets
// the command sends, named as mosquitto_pub and mosquitto_sub name them.
// The commands (case-insensitive) are connect, publish, subscribe,
// unsubscribe, disconnect and will (the Will Properties), as in mosquitto;
// puback, pubrec, pubrel, pubcomp and auth are refused like mosquitto
// refuses them. Properties of a packet a command never sends (publish on
// sub) are accepted and unused, as mosquitto does, so that one set of
// options can serve both commands.
//
// Unlike mosquitto, values are checked strictly (mosquitto reads "1x" as 1
// and "abc" as 0), and the rules a broker would enforce later are checked
// here: receive-maximum, maximum-packet-size and topic-alias are not 0,
// request-*-information and payload-format-indicator are 0 or 1, and a
// property other than user-property may be given once per packet.

// propCmd is a packet -D can put properties on.
type propCmd int

const (
	pcConnect propCmd = iota
	pcPublish
	pcSubscribe
	pcUnsubscribe
	pcDisconnect
	pcWill
	numPropCmds
)

var propCmdNames = [...]string{"connect", "publish", "subscribe", "unsubscribe", "disconnect", "will"}

type propValue int

const (
	pvByte propValue = iota
	pvUint16
	pvUint32
	pvVBI
	pvString
	pvBinary
	pvPair
)

// propDef is a property -D knows: its mosquitto name, identifier, value
// type and range, and the packets it may go on (a bit per propCmd).
type propDef struct {
	name   string
	id     codec.PropID
	value  propValue
	lo, hi int64
	cmds   uint
}

func cmds(cs ...propCmd) uint {
	var m uint
	for _, c := range cs {
		m |= 1 << c
	}
	return m
}

const maxU32 = 1<<32 - 1

// propDefs lists the properties a client may send, with the packets of
// MQTT 5.0 section 2.2.2.2 a command line can reach. The properties only a
// server sends are in serverProps.
var propDefs = []propDef{
	{"payload-format-indicator", codec.PropPayloadFormatIndicator, pvByte, 0, 1, cmds(pcPublish, pcWill)},
	{"message-expiry-interval", codec.PropMessageExpiryInterval, pvUint32, 0, maxU32, cmds(pcPublish, pcWill)},
	{"content-type", codec.PropContentType, pvString, 0, 0, cmds(pcPublish, pcWill)},
	{"response-topic", codec.PropResponseTopic, pvString, 0, 0, cmds(pcPublish, pcWill)},
	{"correlation-data", codec.PropCorrelationData, pvBinary, 0, 0, cmds(pcPublish, pcWill)},
	{"subscription-identifier", codec.PropSubscriptionIdentifier, pvVBI, 1, 268435455, cmds(pcSubscribe)},
	{"session-expiry-interval", codec.PropSessionExpiryInterval, pvUint32, 0, maxU32, cmds(pcConnect, pcDisconnect)},
	{"authentication-method", codec.PropAuthenticationMethod, pvString, 0, 0, cmds(pcConnect)},
	{"authentication-data", codec.PropAuthenticationData, pvBinary, 0, 0, cmds(pcConnect)},
	{"request-problem-information", codec.PropRequestProblemInformation, pvByte, 0, 1, cmds(pcConnect)},
	{"will-delay-interval", codec.PropWillDelayInterval, pvUint32, 0, maxU32, cmds(pcWill)},
	{"request-response-information", codec.PropRequestResponseInformation, pvByte, 0, 1, cmds(pcConnect)},
	{"reason-string", codec.PropReasonString, pvString, 0, 0, cmds(pcDisconnect)},
	{"receive-maximum", codec.PropReceiveMaximum, pvUint16, 1, 65535, cmds(pcConnect)},
	{"topic-alias-maximum", codec.PropTopicAliasMaximum, pvUint16, 0, 65535, cmds(pcConnect)},
	{"topic-alias", codec.PropTopicAlias, pvUint16, 1, 65535, cmds(pcPublish)},
	{"user-property", codec.PropUserProperty, pvPair, 0, 0, cmds(pcConnect, pcPublish, pcSubscribe, pcUnsubscribe, pcDisconnect, pcWill)},
	{"maximum-packet-size", codec.PropMaximumPacketSize, pvUint32, 1, maxU32, cmds(pcConnect)},
}

// serverProps are properties only a server sends.
var serverProps = []string{"assigned-client-identifier", "server-keep-alive", "response-information",
	"server-reference", "maximum-qos", "retain-available", "wildcard-subscription-available",
	"subscription-identifier-available", "shared-subscription-available"}

// propSpec collects the -D options of a command line: one property set per
// packet.
type propSpec struct {
	props [numPropCmds]codec.Properties
	given [numPropCmds]bool
	any   bool
}

// nargs says how many values -D takes: three, four for a user-property.
func (ps *propSpec) nargs(rest []string) (int, error) {
	if len(rest) >= 2 && strings.EqualFold(rest[1], "user-property") {
		if len(rest) < 4 {
			return 0, usagef("-D %s user-property needs a name and a value", rest[0])
		}
		return 4, nil
	}
	if len(rest) < 3 {
		return 0, usagef("-D needs a command, a property and a value (-D publish content-type text/plain)")
	}
	return 3, nil
}

// set applies one -D.
func (ps *propSpec) set(v []string) error {
	cmdName, name := strings.ToLower(v[0]), strings.ToLower(v[1])
	cmd := propCmd(-1)
	for i, n := range propCmdNames {
		if n == cmdName {
			cmd = propCmd(i)
		}
	}
	if cmd < 0 {
		switch cmdName {
		case "puback", "pubrec", "pubrel", "pubcomp", "auth":
			return usagef("-D %s: properties on %s are not supported (use connect, publish, subscribe, unsubscribe, disconnect or will)", v[0], strings.ToUpper(cmdName))
		}
		return usagef("-D %s: unknown command (use connect, publish, subscribe, unsubscribe, disconnect or will)", v[0])
	}
	var def *propDef
	for i := range propDefs {
		if propDefs[i].name == name {
			def = &propDefs[i]
		}
	}
	if def == nil {
		for _, s := range serverProps {
			if s == name {
				return usagef("-D %s %s: only a server sends %s", cmdName, name, name)
			}
		}
		return usagef("-D %s %s: unknown property", cmdName, v[1])
	}
	if def.cmds&(1<<cmd) == 0 {
		return usagef("-D %s %s: %s is not allowed in %s", cmdName, name, name, packetName(cmd))
	}
	p := &ps.props[cmd]
	if def.value != pvPair && p.Has(def.id) {
		return usagef("-D %s %s given twice: only a user-property may repeat", cmdName, name)
	}
	val := v[2]
	var n int64
	switch def.value {
	case pvByte, pvUint16, pvUint32, pvVBI:
		var err error
		if n, err = parseInt(val, def.lo, def.hi); err != nil {
			return usagef("-D %s %s: %v", cmdName, name, err)
		}
	}
	switch def.id {
	case codec.PropPayloadFormatIndicator:
		p.PayloadFormat = byte(n)
	case codec.PropMessageExpiryInterval:
		p.MessageExpiry = uint32(n)
	case codec.PropContentType:
		p.ContentType = val
	case codec.PropResponseTopic:
		if err := codec.ValidateTopicName(val); err != nil {
			return usagef("-D %s response-topic: %v", cmdName, err)
		}
		p.ResponseTopic = val
	case codec.PropCorrelationData:
		p.CorrelationData = []byte(val)
	case codec.PropSubscriptionIdentifier:
		p.SubscriptionIDs = []uint32{uint32(n)}
	case codec.PropSessionExpiryInterval:
		p.SessionExpiry = uint32(n)
	case codec.PropAuthenticationMethod:
		p.AuthMethod = val
	case codec.PropAuthenticationData:
		p.AuthData = []byte(val)
	case codec.PropRequestProblemInformation:
		p.RequestProblemInfo = byte(n)
	case codec.PropWillDelayInterval:
		p.WillDelay = uint32(n)
	case codec.PropRequestResponseInformation:
		p.RequestResponseInfo = byte(n)
	case codec.PropReasonString:
		p.ReasonString = val
	case codec.PropReceiveMaximum:
		p.ReceiveMaximum = uint16(n)
	case codec.PropTopicAliasMaximum:
		p.TopicAliasMaximum = uint16(n)
	case codec.PropTopicAlias:
		p.TopicAlias = uint16(n)
	case codec.PropUserProperty:
		p.User = append(p.User, codec.UserProperty{Key: val, Value: v[3]})
	case codec.PropMaximumPacketSize:
		p.MaximumPacketSize = uint32(n)
	}
	p.Mark(def.id)
	ps.given[cmd] = true
	ps.any = true
	return nil
}

// packetName is the packet a propCmd stands for, as the spec names it.
func packetName(c propCmd) string {
	if c == pcWill {
		return "the Will Properties"
	}
	return strings.ToUpper(propCmdNames[c])
}

// check refuses combinations that cannot work: authentication-data
// without authentication-method.
func (ps *propSpec) check() error {
	c := &ps.props[pcConnect]
	if c.Has(codec.PropAuthenticationData) && !c.Has(codec.PropAuthenticationMethod) {
		return usagef("-D connect authentication-data needs -D connect authentication-method")
	}
	return nil
}

// oneShotAuth is the Authenticator behind -D connect authentication-method
// and authentication-data: it sends the method and data in CONNECT, as
// mosquitto_pub does, and cannot carry on a multi-step exchange.
type oneShotAuth struct {
	method string
	data   []byte
}

func (a oneShotAuth) Method() string           { return a.method }
func (a oneShotAuth) Initial() ([]byte, error) { return a.data, nil }
func (a oneShotAuth) Continue([]byte) ([]byte, error) {
	return nil, fmt.Errorf("the broker asked to continue %s authentication: zmqtt sends one round of authentication data (-D connect authentication-data)", a.method)
}
func (a oneShotAuth) Finish([]byte) error { return nil }
