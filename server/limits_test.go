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

// No request may be larger than classify.max_content_size plus 1 MiB:
// gRPC refuses it before it is read, whatever the call.
func TestRequestSizeLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Classify: ClassifyConfig{MaxContentSize: 1 << 10}})
	ctx := ctxT(t, 30*time.Second)
	labels := make([]string, 1<<15)
	for i := range labels {
		labels[i] = "moving_left-padding-padding-padding-padding-padding-padding-padding"
	}
	_, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "big", Url: "rtsp://127.0.0.1:1/x",
		Options: &actiondv1.StreamOptions{LabelAllowlist: &actiondv1.LabelAllowlist{Labels: labels}}})
	wantCode(t, "a 2 MiB AddStream", err, codes.ResourceExhausted, "grpc: received message larger than max", "vs. 1049600)")
	_, err = ts.recog.Classify(ctx, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: make([]byte, 2<<20)}})
	wantCode(t, "a 2 MiB Classify", err, codes.ResourceExhausted, "grpc: received message larger than max")
	_, err = ts.recog.Classify(ctx, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: make([]byte, 2<<10)}})
	wantCode(t, "a 2 KiB Classify", err, codes.ResourceExhausted, "content too large: content is 2048 bytes, over this server's limit of 1KiB (classify.max_content_size)")
	// The server goes on.
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "small", Url: "rtsp://127.0.0.1:1/x",
		Options: &actiondv1.StreamOptions{Enabled: ptr(false)}}); err != nil {
		t.Errorf("a small AddStream after the large ones: %v", err)
	}
}
