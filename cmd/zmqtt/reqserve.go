package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/zmqtt/zmqtt-go/client"
	"github.com/zmqtt/zmqtt-go/reqresp"
)

func cmdReq(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("req", stderr)
	var cf connFlags
	cf.register(fs)
	cf.version = "5"
	topic := fs.String("t", "", "request topic (required)")
	msg := fs.String("m", "", "request payload")
	wait := fs.Int("W", 10, "seconds to wait for the reply")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *topic == "" {
		return &usageError{msg: "req needs -t topic"}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(*wait)*time.Second)
	defer cancel()
	c, err := cf.dial(ctx, true, nil)
	if err != nil {
		return err
	}
	defer c.close()
	r := reqresp.NewRequester(c.v5, reqresp.Options{})
	defer r.Close(context.Background())
	reply, err := r.Request(ctx, *topic, []byte(*msg), client.QoS(cf.qos))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("timeout: no reply on %s within %ds", *topic, *wait)
		}
		return err
	}
	if msg, ok := reqresp.ReplyError(reply); ok {
		return fmt.Errorf("the responder failed: %s", msg)
	}
	fmt.Fprintf(stdout, "%s\n", reply.Payload)
	return nil
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var cf connFlags
	cf.register(fs)
	cf.version = "5"
	filter := fs.String("t", "", "request topic filter (required)")
	count := fs.Int("C", 0, "exit after answering this many requests")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *filter == "" {
		return &usageError{msg: "serve needs -t filter"}
	}
	command := fs.Args()
	c, err := cf.dial(ctx, true, nil)
	if err != nil {
		return err
	}
	defer c.close()
	served := 0
	var s *reqresp.Responder
	h := func(ctx context.Context, req client.Message) ([]byte, []client.PublishOption5, error) {
		served++
		if *count > 0 && served == *count {
			// The last request: take no more. Serve still publishes this
			// reply, then returns when it finds the subscription closed.
			// (Cancelling Serve's context here would race with that
			// publish, and the reply could be dropped.)
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s.Close(cctx)
			cancel()
		}
		if len(command) == 0 {
			return req.Payload, nil, nil // echo
		}
		cmd := exec.CommandContext(ctx, command[0], command[1:]...)
		cmd.Stdin = bytes.NewReader(req.Payload)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = stderr
		if err := cmd.Run(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", command[0], err)
		}
		return out.Bytes(), nil, nil
	}
	s, err = reqresp.NewResponder(ctx, c.v5, *filter, h, client.QoS(cf.qos))
	if err != nil {
		return err
	}
	err = s.Serve(ctx)
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Close(cctx)
	if errors.Is(err, client.ErrSubscriptionClosed) && *count > 0 && served >= *count {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return nil // interrupted
	}
	return err
}
