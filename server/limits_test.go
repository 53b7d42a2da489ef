package server

import (
	"context"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc/codes"
)

// subscribers.max_subscribers bounds the Subscribe calls open at once: one
// more is RESOURCE_EXHAUSTED with the key named, and once a call ends its
// place is free again.
func TestSubscriberLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Subscribers: SubscribersConfig{MaxSubscribers: 2}})
	ctx := ctxT(t, 30*time.Second)
	first, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	subscribe(t, first, ts.recog, &actiondv1.SubscribeRequest{})
	subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{})
	over := func() error {
		sub, err := ts.recog.Subscribe(ctx, &actiondv1.SubscribeRequest{})
		if err == nil {
			_, err = sub.Recv()
		}
		return err
	}
	if sub, err := ts.recog.Subscribe(ctx, &actiondv1.SubscribeRequest{}); err == nil {
		if md, err := sub.Header(); md != nil || err != nil {
			t.Fatalf("a refused subscription's headers: %v, %v; want none", md, err)
		}
	}
	wantCode(t, "a third subscriber", over(), codes.ResourceExhausted,
		"subscriber limit reached (subscribers.max_subscribers): 2 Subscribe calls are open; end one, or raise the limit")

	cancelFirst()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sub, err := ts.recog.Subscribe(ctx, &actiondv1.SubscribeRequest{})
		if err == nil {
			// Headers come only once the subscription is in place; a
			// refusal has none (nil, nil).
			md, herr := sub.Header()
			if herr == nil && md != nil {
				break
			}
			err = herr
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place for a subscriber 10s after one ended: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
