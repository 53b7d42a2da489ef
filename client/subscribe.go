package client

import (
	"context"
	"errors"
	"io"
	"iter"
	"math/rand/v2"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// SubscribeOption configures Subscribe.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	minWait, maxWait time.Duration
	onRetry          func(err error, wait time.Duration)
	noResume         bool
}

// WithoutResume makes Subscribe start each new call from the live events,
// as servers without an event log require: the events while it was away
// are lost. By default it resumes after the last event it delivered.
func WithoutResume() SubscribeOption { return func(o *subscribeOptions) { o.noResume = true } }

// WithBackoff sets the wait before resubscribing after a transient error:
// first lo, doubling (with ±20% jitter) up to hi. It defaults to 250ms
// to 5s. The wait starts again from lo once a subscription has
// delivered an event.
func WithBackoff(lo, hi time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.minWait, o.maxWait = lo, max(lo, hi) }
}

// OnRetry has f called with each transient error, and the wait before
// resubscribing, before that wait: to tell a user that the server went
// away and when it is tried again. f must not block.
func OnRetry(f func(err error, wait time.Duration)) SubscribeOption {
	return func(o *subscribeOptions) { o.onRetry = f }
}

// Subscribe returns the server's events that pass req's filter, from now
// on, as an iterator:
//
//	for ev, err := range c.Subscribe(ctx, req) {
//		if err != nil {
//			return err // permanent: it is the last thing yielded
//		}
//		...
//	}
//
// After a transient error (Unavailable: the server went away or is
// restarting; a dropped connection; ResourceExhausted, Aborted, Internal,
// Unknown) it subscribes again, waiting with exponential backoff (see
// WithBackoff, OnRetry), for as long as it takes, and resumes after the
// position of the last logged event it delivered (resume_after): the
// server's event log replays what happened meanwhile, so nothing is lost
// or repeated (WithoutResume turns this off). A restarted server numbers
// each stream's events from 1 again; positions go on. When the log no
// longer keeps that position, Subscribe ends with the OutOfRange error.
// req.resume_after, when set, applies to the first call.
//
// It ends without an error when ctx ends or the loop breaks, and with an
// *Error, its last value, on a permanent error: Unauthenticated,
// PermissionDenied, InvalidArgument, and every other code.
func (c *Client) Subscribe(ctx context.Context, req *actiondv1.SubscribeRequest, opts ...SubscribeOption) iter.Seq2[*actiondv1.Event, error] {
	o := subscribeOptions{minWait: 250 * time.Millisecond, maxWait: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(*actiondv1.Event, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends the call when the loop breaks
		wait := o.minWait
		req := proto.CloneOf(req)
		last := req.ResumeAfter
		track := func(ev *actiondv1.Event, err error) bool {
			if ev.GetLogged() && ev.GetPosition() > 0 {
				p := ev.GetPosition()
				last = &p
			}
			return yield(ev, err)
		}
		for first := true; ; first = false {
			switch {
			case first:
			case o.noResume:
				req.ResumeAfter = nil
			default:
				req.ResumeAfter = last
			}
			delivered, stopped, err := c.subscribeOnce(ctx, req, track)
			if stopped || ctx.Err() != nil {
				return
			}
			if !transient(err) {
				yield(nil, wrap("subscribe", err))
				return
			}
			if delivered {
				wait = o.minWait
			}
			// A connection that failed is retried on gRPC's own schedule,
			// and fail-fast calls fail until it is up: have it try now, so
			// that the server is found again within this wait.
			c.conn.ResetConnectBackoff()
			d := jitter(wait)
			if o.onRetry != nil {
				o.onRetry(wrap("subscribe", err), d)
			}
			if !sleep(ctx, d) {
				return
			}
			wait = min(2*wait, o.maxWait)
		}
	}
}

// subscribeOnce runs one Subscribe call until it fails or yield says stop.
func (c *Client) subscribeOnce(ctx context.Context, req *actiondv1.SubscribeRequest, yield func(*actiondv1.Event, error) bool) (delivered, stopped bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.recognition.Subscribe(ctx, req)
	if err != nil {
		return false, false, err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			// The server ended the call without an error, which it only
			// does on the way down: try again like for Unavailable.
			return delivered, false, status.Error(codes.Unavailable, "the server ended the subscription")
		}
		if err != nil {
			return delivered, false, err
		}
		if ev := resp.GetEvent(); ev != nil {
			delivered = true
			if !yield(ev, nil) {
				return delivered, true, nil
			}
		}
	}
}

// transient says whether a failed subscription is worth another try.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// jitter spreads d by ±20% so that many clients do not come back at once.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// sleep waits d or until ctx ends; it says whether it waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
