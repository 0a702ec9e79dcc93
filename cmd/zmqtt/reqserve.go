package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/reqresp"
)

// publishOptions turns -D publish into publish options that add to what
// reqresp sets (the response topic and correlation data of a request, the
// correlation data of a reply), rather than replacing it.
func (f *common) publishOptions() []client.PublishOption5 {
	p := f.props.props[pcPublish]
	var opts []client.PublishOption5
	if p.PayloadFormat == 1 {
		opts = append(opts, client.PayloadUTF8())
	}
	if p.Has(codec.PropMessageExpiryInterval) {
		opts = append(opts, client.MessageExpiry(p.MessageExpiry))
	}
	if p.Has(codec.PropContentType) {
		opts = append(opts, client.ContentType(p.ContentType))
	}
	for _, u := range p.User {
		opts = append(opts, client.UserProperty(u.Key, u.Value))
	}
	return opts
}

// refuseReplyProps refuses -D publish properties that reqresp owns.
func (f *common) refuseReplyProps(cmd string) error {
	p := &f.props.props[pcPublish]
	if p.Has(codec.PropResponseTopic) || p.Has(codec.PropCorrelationData) {
		return usagef("%s sets the response topic and correlation data itself: drop -D publish response-topic and correlation-data", cmd)
	}
	return nil
}

// cmdReq sends one request and prints the reply. -W bounds the whole
// exchange; when it passes the status is 27, as mosquitto_rr's.
func cmdReq(ctx context.Context, args []string, e *env) error {
	s := newOptSet("req", "-t topic [-m payload] [-W seconds] [options]",
		"Send an MQTT 5.0 request and print the reply.")
	var f common
	var topic, msg string
	wait := 10
	s.str(&topic, "TOPIC", "request topic", "-t", "--topic")
	s.str(&msg, "PAYLOAD", "request payload", "-m", "--message")
	s.int(&wait, "SECONDS", "seconds to wait for the reply (default 10)", 1, 1<<31-1, "-W")
	f.register(s, "5")
	if err := parseCommand(s, &f, args, e); err != nil {
		return err
	}
	if topic == "" {
		topic = f.urlTopic
	}
	if topic == "" {
		return usagef("req needs -t topic")
	}
	if err := f.refuseReplyProps("req"); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeoutCause(ctx, time.Duration(wait)*time.Second, errTimedOut)
	defer cancel()
	c, err := f.connect(wctx, e, dialOpts{v5only: true})
	if err != nil {
		if errors.Is(err, errInterrupted) && errors.Is(context.Cause(wctx), errTimedOut) {
			return fmt.Errorf("%w: could not connect within -W %d s", errTimedOut, wait)
		}
		return err
	}
	defer c.close(false)
	r := reqresp.NewRequester(c.v5, reqresp.Options{})
	defer r.Close(context.Background())
	opts := append(f.publishOptions(), client.QoS(f.qos))
	reply, err := r.Request(wctx, topic, []byte(msg), opts...)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return errInterrupted
		case errors.Is(context.Cause(wctx), errTimedOut):
			return fmt.Errorf("%w: no reply on %s within -W %d s", errTimedOut, topic, wait)
		}
		return err
	}
	if msg, ok := reqresp.ReplyError(reply); ok {
		return fmt.Errorf("the responder failed: %s", msg)
	}
	e.out.write(append(reply.Payload, '\n'))
	return nil
}

// cmdServe answers requests on a filter: with the output of the command
// after --, or with the request's payload.
func cmdServe(ctx context.Context, args []string, e *env) error {
	s := newOptSet("serve", "-t filter [-C count] [options] [-- command args...]",
		"Answer MQTT 5.0 requests: echo them, or reply with the output of a command that reads the request on its standard input.")
	s.allowRest = true
	s.restHelp = "reply with the output of this command, run once per request"
	var f common
	var filter string
	var count int
	s.str(&filter, "FILTER", "request topic filter", "-t", "--topic")
	s.int(&count, "COUNT", "exit after answering COUNT requests", 0, 1<<31-1, "-C")
	f.register(s, "5")
	if err := parseCommand(s, &f, args, e); err != nil {
		return err
	}
	if filter == "" {
		filter = f.urlTopic
	}
	if filter == "" {
		return usagef("serve needs -t filter")
	}
	if err := codec.ValidateTopicFilter(filter); err != nil {
		return usagef("invalid topic filter %q (-t): %v", filter, err)
	}
	if err := f.refuseReplyProps("serve"); err != nil {
		return err
	}
	command := s.rest
	c, err := f.connect(ctx, e, dialOpts{v5only: true})
	if err != nil {
		return err
	}
	defer c.close(false)
	replyOpts := f.publishOptions()
	served := 0
	var rs *reqresp.Responder
	h := func(ctx context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
		served++
		if count > 0 && served == count {
			// The last request: take no more. Serve still publishes this
			// reply, then returns when it finds the subscription closed.
			// (Cancelling Serve's context here would race with that
			// publish, and the reply could be dropped.)
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			rs.Close(cctx)
			cancel()
		}
		if len(command) == 0 {
			return req.Payload, replyOpts, nil // echo
		}
		cmd := exec.CommandContext(ctx, command[0], command[1:]...)
		cmd.Stdin = bytes.NewReader(req.Payload)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = e.stderr
		if err := cmd.Run(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", command[0], err)
		}
		return out.Bytes(), replyOpts, nil
	}
	subOpts := []client.SubscribeOption5{client.QoS(f.qos)}
	for _, u := range f.props.props[pcSubscribe].User {
		subOpts = append(subOpts, client.UserProperty(u.Key, u.Value))
	}
	if ids := f.props.props[pcSubscribe].SubscriptionIDs; len(ids) > 0 {
		subOpts = append(subOpts, client.SubscriptionID(ids[0]))
	}
	rs, err = reqresp.NewResponder(ctx, c.v5, filter, h, subOpts...)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	err = rs.Serve(ctx)
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs.Close(cctx)
	if errors.Is(err, client.ErrSubscriptionClosed) && count > 0 && served >= count {
		return nil
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	return err
}
