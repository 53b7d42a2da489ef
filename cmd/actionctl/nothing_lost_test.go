package main

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/client"
	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"google.golang.org/protobuf/proto"
)

// The server is SIGKILLed at random moments, 20 times, while a subscriber
// (the client library, resuming after each reconnect) follows everything.
// Afterwards the log is read directly: every event the subscriber got is
// in it at the position it came with, the subscriber got every position
// (no gap, no duplicate), and every action is ended: those open at a kill
// by the next start, as SERVER_RESTARTED.
func TestNothingLostAcrossKills(t *testing.T) {
	t.Parallel()
	_, simURL := sharedServer(t)
	dir := t.TempDir()
	cfg, err := writeConfig(dir, simURL, 2500*time.Millisecond, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var got []*actiondv1.Event
	subCtx, stopSub := context.WithCancel(ctx)
	subDone := make(chan struct{})
	srv, err := startServer(addr, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dialT(t, addr)
	go func() {
		defer close(subDone)
		for ev, err := range c.Subscribe(subCtx, &actiondv1.SubscribeRequest{ResumeAfter: proto.Uint64(0)}, client.WithBackoff(50*time.Millisecond, 300*time.Millisecond)) {
			if err != nil {
				t.Errorf("subscription: %v", err)
				return
			}
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
	}()

	const kills = 20
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	for i := range kills {
		if i > 0 {
			if srv, err = startServer(addr, cfg, nil); err != nil {
				t.Fatal(err)
			}
		}
		// Short runs (killed while connecting or filling the first
		// window) and long ones (killed with an action open), at random
		// moments within them.
		run := 300 + rng.IntN(1200)
		if i%2 == 1 {
			run = 4000 + rng.IntN(2000)
		}
		time.Sleep(time.Duration(run) * time.Millisecond)
		srv.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Fatalf("after kill %d: %s", i+1, srv.out)
		}
	}
	// The last start ends what the last kill left open; then the
	// subscriber catches up and the server stops gracefully.
	if srv, err = startServer(addr, cfg, nil); err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, srv.proc)
	list, err := c.ListActions(ctx, &actiondv1.ListActionsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	restarted := 0
	var last uint64 // past every action's positions: written by now
	for _, a := range list.GetActions() {
		last = max(last, a.GetStartPosition()+5, a.GetEndPosition()+5)
		if a.GetOpen() {
			t.Errorf("action %s of an earlier run still open after the restart: %v", a.GetActionId(), a)
		}
		if a.GetEndReason() == actiondv1.ActionEndReason_ACTION_END_REASON_SERVER_RESTARTED {
			restarted++
		}
	}
	if restarted == 0 {
		t.Errorf("no action ended as SERVER_RESTARTED in %d actions over %d kills", len(list.GetActions()), kills)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		caught := n > 0 && got[n-1].GetPosition() >= last
		mu.Unlock()
		if caught {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber did not reach position %d within 30s", last)
		}
	}
	stopSub()
	<-subDone
	srv.stop(syscall.SIGTERM)

	// The log, read directly.
	l, err := eventlog.Open(ctx, eventlog.Config{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stored := map[uint64]*actiondv1.Event{}
	st, err := l.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Replay(ctx, 0, st.Last, nil, func(ev *actiondv1.Event) error {
		stored[ev.GetPosition()] = ev
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var prev uint64
	for i, ev := range got {
		if !ev.GetLogged() {
			t.Fatalf("event %d came unlogged: %v", i, ev)
		}
		if p := ev.GetPosition(); p != prev+1 {
			t.Fatalf("event %d at position %d after %d: a gap or a duplicate", i, p, prev)
		}
		prev = ev.GetPosition()
		if s := stored[prev]; !proto.Equal(s, ev) {
			t.Fatalf("position %d: the subscriber got %v, the log has %v", prev, ev, s)
		}
	}
	ended := map[string]actiondv1.ActionEndReason{}
	for _, ev := range stored {
		if e := ev.GetActionEnded(); e != nil {
			ended[e.GetActionId()] = e.GetReason()
		}
	}
	for _, ev := range stored {
		if s := ev.GetActionStarted(); s != nil {
			if _, ok := ended[s.GetActionId()]; !ok {
				t.Errorf("action %s (at %d) never ended", s.GetActionId(), ev.GetPosition())
			}
		}
	}
	t.Logf("%d kills: %d events, all in the log at their positions; %d actions, %d ended as SERVER_RESTARTED",
		kills, len(got), len(ended), restarted)
}
