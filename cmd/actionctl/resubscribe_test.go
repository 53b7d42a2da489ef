package main

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/client"
	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The server is killed, then stopped gracefully, and each time started
// again on the same address with the same configuration: one Subscribe
// iterator keeps delivering events across both restarts, resuming after
// the last position it delivered: positions only increase.
func TestSubscribeSurvivesServerRestarts(t *testing.T) {
	t.Parallel()
	_, simURL := sharedServer(t)
	// A short window: the labels do not matter here, only that events flow.
	cfg, err := writeConfig(t.TempDir(), simURL, time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	srv, err := startServer(addr, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	current := srv
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		current.stop(syscall.SIGKILL)
	}()

	c := dialT(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	var retries []codes.Code // written by OnRetry, which runs in the loop's goroutine
	restarted := make(chan error, 1)
	restart := func(sig syscall.Signal) {
		mu.Lock()
		old := current
		mu.Unlock()
		old.stop(sig)
		go func() {
			s, err := startServer(addr, cfg, nil)
			if err == nil {
				mu.Lock()
				current = s
				mu.Unlock()
			}
			restarted <- err
		}()
	}
	signals := []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM}
	phase, inPhase := 0, 0
	var last uint64
	req := &actiondv1.SubscribeRequest{Streams: []string{"right"}, Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT}}
	for ev, err := range c.Subscribe(ctx, req, client.WithBackoff(100*time.Millisecond, time.Second),
		client.OnRetry(func(err error, _ time.Duration) { retries = append(retries, status.Code(err)) })) {
		if err != nil {
			t.Fatalf("phase %d: %v", phase, err)
		}
		if ev.GetStream() != "right" || len(ev.GetWindowResult().GetTop()) == 0 {
			t.Errorf("phase %d: event %v, want a WindowResult of stream right", phase, ev)
		}
		if !ev.GetLogged() || ev.GetPosition() <= last {
			t.Errorf("phase %d: event at %d (logged %v) after %d", phase, ev.GetPosition(), ev.GetLogged(), last)
		}
		last = ev.GetPosition()
		if inPhase++; inPhase < 2 {
			continue
		}
		if phase == len(signals) {
			break // two events after the last restart
		}
		if phase > 0 {
			if err := <-restarted; err != nil { // it delivered, so it is up
				t.Fatal(err)
			}
		}
		t.Logf("phase %d: %d events; stopping the server with %v", phase, inPhase, signals[phase])
		restart(signals[phase])
		phase, inPhase = phase+1, 0
	}
	if ctx.Err() != nil {
		t.Fatalf("the iterator ended in phase %d with %d events: timed out", phase, inPhase)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if len(retries) < 2 {
		t.Errorf("OnRetry saw %v: want a transient error for each restart", retries)
	}
	for _, code := range retries {
		if code != codes.Unavailable {
			t.Errorf("OnRetry saw %v, want only Unavailable", retries)
			break
		}
	}
}
