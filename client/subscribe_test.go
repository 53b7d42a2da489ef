package client

import (
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// sequences collects the sequence numbers of up to n events, failing the
// test on an error.
func sequences(t *testing.T, seq func(func(*actiondv1.Event, error) bool), n int) []uint64 {
	t.Helper()
	var got []uint64
	for ev, err := range seq {
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, ev.GetSequence())
		if len(got) == n {
			break
		}
	}
	return got
}

func TestSubscribeResubscribesAfterTransientErrors(t *testing.T) {
	f := newFakeServer()
	// Each call sends two events, then fails transiently, with a
	// different code each time.
	fails := []codes.Code{codes.Unavailable, codes.Internal, codes.ResourceExhausted}
	f.subscribe = func(n int, srv actiondv1.RecognitionService_SubscribeServer) error {
		for i := range 2 {
			if err := srv.Send(windowEvent(uint64(10*n + i))); err != nil {
				return err
			}
		}
		if n <= len(fails) {
			return status.Error(fails[n-1], "going away")
		}
		<-srv.Context().Done()
		return nil
	}
	lis := listen(t)
	f.serve(t, lis, nil)
	c := dial(t, lis.Addr().String())

	var mu sync.Mutex
	var retries []codes.Code
	seq := c.Subscribe(testContext(t), &actiondv1.SubscribeRequest{}, WithBackoff(time.Millisecond, 10*time.Millisecond),
		OnRetry(func(err error, wait time.Duration) {
			mu.Lock()
			retries = append(retries, status.Code(err))
			mu.Unlock()
		}))
	got := sequences(t, seq, 8)
	if want := []uint64{10, 11, 20, 21, 30, 31, 40, 41}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(retries, fails) {
		t.Errorf("OnRetry saw %v, want %v", retries, fails)
	}
}

func TestSubscribeStopsOnPermanentErrors(t *testing.T) {
	for _, code := range []codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.Unimplemented} {
		t.Run(code.String(), func(t *testing.T) {
			f := newFakeServer()
			f.subscribe = func(n int, srv actiondv1.RecognitionService_SubscribeServer) error {
				if err := srv.Send(windowEvent(1)); err != nil {
					return err
				}
				return status.Error(code, "no")
			}
			lis := listen(t)
			f.serve(t, lis, nil)
			c := dial(t, lis.Addr().String())
			var events int
			var errs []error
			for ev, err := range c.Subscribe(testContext(t), &actiondv1.SubscribeRequest{}, WithBackoff(time.Millisecond, time.Millisecond)) {
				if err != nil {
					errs = append(errs, err)
					continue // the iterator must end by itself
				}
				if ev.GetSequence() != 1 {
					t.Errorf("event %v", ev)
				}
				events++
			}
			if events != 1 || len(errs) != 1 {
				t.Fatalf("got %d events and errors %v, want 1 event then 1 error", events, errs)
			}
			var e *Error
			if !errors.As(errs[0], &e) || e.Code() != code || e.Op != "subscribe" {
				t.Errorf("error %v, want a subscribe *Error with code %v", errs[0], code)
			}
			if n := f.subscribeCalls(); n != 1 {
				t.Errorf("%d Subscribe calls, want 1: a permanent error is not retried", n)
			}
		})
	}
}

// The server goes away entirely (its listener closed, connections cut) and
// comes back on the same address: the iterator carries on.
func TestSubscribeSurvivesServerRestart(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newFakeServer()
	f.subscribe = func(n int, srv actiondv1.RecognitionService_SubscribeServer) error {
		for i := 1; ; i++ {
			if err := srv.Send(windowEvent(uint64(i))); err != nil {
				return err
			}
			select {
			case <-srv.Context().Done():
				return nil
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	lis := listen(t)
	addr := lis.Addr().String()
	first := f.serve(t, lis, nil)
	c, err := Dial(testContext(t), addr)
	if err != nil {
		t.Fatal(err)
	}

	var retried sync.WaitGroup
	retried.Add(1)
	var once sync.Once
	restarted := make(chan *grpc.Server, 1)
	var got []uint64
	ctx := testContext(t)
	for ev, err := range c.Subscribe(ctx, &actiondv1.SubscribeRequest{}, WithBackoff(10*time.Millisecond, 100*time.Millisecond),
		OnRetry(func(error, time.Duration) { once.Do(retried.Done) })) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.GetSequence())
		if len(got) == 3 {
			first.Stop() // cuts the connection: Recv fails with Unavailable
			go func() {
				retried.Wait()
				time.Sleep(300 * time.Millisecond) // down for a while
				lis, err := net.Listen("tcp", addr)
				if err != nil {
					t.Error(err)
					close(restarted)
					return
				}
				restarted <- f.serve(t, lis, nil)
			}()
		}
		if len(got) == 6 {
			break
		}
	}
	var second *grpc.Server
	select {
	case second = <-restarted:
	case <-time.After(10 * time.Second):
		t.Fatal("the server was not restarted: no transient error was seen")
	}
	if !slices.Equal(got[:3], []uint64{1, 2, 3}) || !slices.Equal(got[3:], []uint64{1, 2, 3}) {
		t.Errorf("events %v: want 1 2 3 before the restart and 1 2 3 again after", got)
	}
	if n := f.subscribeCalls(); n < 2 {
		t.Errorf("%d Subscribe calls, want a second after the restart", n)
	}
	c.Close()
	if second != nil {
		second.Stop()
	}
	checkNoLeak(t, before)
}

func TestSubscribeEndsQuietlyOnCancelAndBreak(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newFakeServer()
	handlerDone := make(chan struct{}, 2)
	f.subscribe = func(n int, srv actiondv1.RecognitionService_SubscribeServer) error {
		defer func() { handlerDone <- struct{}{} }()
		if err := srv.Send(windowEvent(1)); err != nil {
			return err
		}
		<-srv.Context().Done() // the client must end the call
		return nil
	}
	lis := listen(t)
	srv := f.serve(t, lis, nil)
	c := dial(t, lis.Addr().String())

	t.Run("break", func(t *testing.T) {
		if got := sequences(t, c.Subscribe(testContext(t), &actiondv1.SubscribeRequest{}), 1); !slices.Equal(got, []uint64{1}) {
			t.Errorf("events %v", got)
		}
		waitFor(t, handlerDone, "the server to see the call end after break")
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testContext(t))
		defer cancel()
		n := 0
		for ev, err := range c.Subscribe(ctx, &actiondv1.SubscribeRequest{}) {
			if err != nil {
				t.Fatalf("error after cancel: %v", err)
			}
			if ev != nil {
				n++
				cancel()
			}
		}
		if n != 1 {
			t.Errorf("%d events, want 1", n)
		}
		waitFor(t, handlerDone, "the server to see the call end after cancel")
	})
	c.Close()
	srv.Stop()
	checkNoLeak(t, before)
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// checkNoLeak waits until the goroutines the test started have ended.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left running, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSubscribeResumesAfterTheLastPosition: after a transient error the
// client subscribes again with resume_after set to the position of the
// last logged event it delivered (Dropped and unlogged events have none),
// so that the server's log replays what it missed; the first call uses
// the caller's resume_after. WithoutResume leaves it out.
func TestSubscribeResumesAfterTheLastPosition(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []SubscribeOption
		want []string
	}{
		{"resume", nil, []string{"5", "11", "21"}},
		{"without", []SubscribeOption{WithoutResume()}, []string{"5", "none", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer()
			f.subscribe = func(n int, srv actiondv1.RecognitionService_SubscribeServer) error {
				for i := range 2 {
					ev := windowEvent(uint64(10*n + i))
					ev.Event.Position, ev.Event.Logged = uint64(10*n+i), true
					if err := srv.Send(ev); err != nil {
						return err
					}
				}
				unlogged := windowEvent(99)
				if err := srv.Send(unlogged); err != nil {
					return err
				}
				if n < 3 {
					return status.Error(codes.Unavailable, "going away")
				}
				<-srv.Context().Done()
				return nil
			}
			lis := listen(t)
			f.serve(t, lis, nil)
			c := dial(t, lis.Addr().String())
			opts := append([]SubscribeOption{WithBackoff(time.Millisecond, 10*time.Millisecond)}, tc.opts...)
			five := uint64(5)
			sequences(t, c.Subscribe(testContext(t), &actiondv1.SubscribeRequest{ResumeAfter: &five}, opts...), 9)
			f.mu.Lock()
			defer f.mu.Unlock()
			var got []string
			for _, r := range f.requests {
				if r.ResumeAfter == nil {
					got = append(got, "none")
				} else {
					got = append(got, strconv.FormatUint(r.GetResumeAfter(), 10))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("resume_after of the calls: %v, want %v", got, tc.want)
			}
		})
	}
}
