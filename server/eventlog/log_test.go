package eventlog

import (
	"context"
	"errors"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func openTest(t *testing.T, cfg Config) *Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func started(stream, id string) *actiondv1.Event {
	return &actiondv1.Event{Stream: stream, Sequence: 1, Kind: &actiondv1.Event_ActionStarted{ActionStarted: &actiondv1.ActionStarted{ActionId: id, Label: "welding"}}}
}

func window(stream string) *actiondv1.Event {
	return &actiondv1.Event{Stream: stream, Sequence: 2, Kind: &actiondv1.Event_WindowResult{WindowResult: &actiondv1.WindowResult{Model: "m"}}}
}

func TestSubject(t *testing.T) {
	for _, name := range []string{"dock-3", "cam.a.b", "x_y"} {
		for _, k := range Kinds {
			s, kind, ok := ParseSubject(Subject(name, k))
			if !ok || s != name || kind != k {
				t.Errorf("ParseSubject(Subject(%q, %q)) = %q, %q, %v", name, k, s, kind, ok)
			}
		}
	}
	if got := Subject("cam.a", KindWindow); got != "actiond.events.cam%2Ea.window" {
		t.Errorf("Subject = %q", got)
	}
	for _, bad := range []string{"foo.bar", "actiond.events.x", "actiond.events.a.b.c", "actiond.events..window"} {
		if _, _, ok := ParseSubject(bad); ok {
			t.Errorf("ParseSubject(%q) ok", bad)
		}
	}
}

func TestLogAppendReplayReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l := openTest(t, Config{DataDir: dir})
	for i, ev := range []*actiondv1.Event{started("cam.a", "a1"), window("cam.a"), started("b", "b1"), window("b")} {
		pos, err := l.Append(ctx, ev)
		must(t, err)
		equal(t, "position", pos, uint64(i+1))
		equal(t, "event's position after Append", ev.Position, 0)
	}
	var got []*actiondv1.Event
	must(t, l.Replay(ctx, 1, 4, FilterSubjects([]string{"cam.a", "b"}, []string{KindWindow}), func(ev *actiondv1.Event) error {
		got = append(got, ev)
		return nil
	}))
	if len(got) != 2 || got[0].Position != 2 || got[1].Position != 4 || got[0].Stream != "cam.a" || !got[0].Logged {
		t.Fatalf("replayed %v", got)
	}

	// A consumer's message decodes with its position.
	cons, err := l.JetStream().OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{Subject("b", KindStarted)}})
	must(t, err)
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	must(t, err)
	ev, err := Decode(msg)
	must(t, err)
	equal(t, "position", ev.Position, 3)
	if ev.GetActionStarted().GetActionId() != "b1" || !ev.Logged {
		t.Fatalf("decoded %v", ev)
	}
	l.Close()

	// Positions go on increasing after a restart.
	l = openTest(t, Config{DataDir: dir})
	defer l.Close()
	pos, err := l.Append(ctx, window("b"))
	must(t, err)
	equal(t, "position after restart", pos, 5)

	// A position older than the log keeps is out of range.
	s, err := l.JetStream().Stream(ctx, StreamName)
	must(t, err)
	must(t, s.Purge(ctx, jetstream.WithPurgeSequence(4)))
	err = l.Replay(ctx, 1, 5, nil, func(*actiondv1.Event) error { return nil })
	var oor *OutOfRangeError
	if !errors.As(err, &oor) || !errors.Is(err, ErrOutOfRange) || oor.Oldest != 4 {
		t.Fatalf("replay after 1 with oldest 4: %v", err)
	}
	n := 0
	must(t, l.Replay(ctx, 3, 5, nil, func(*actiondv1.Event) error { n++; return nil }))
	equal(t, "replayed", uint64(n), 2)
}

func TestLogRetentionByKind(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, Config{DataDir: t.TempDir(), WindowRetention: time.Second})
	defer l.Close()
	_, err := l.Append(ctx, window("a"))
	must(t, err)
	_, err = l.Append(ctx, started("a", "a1"))
	must(t, err)
	// The window event expires, the action stays.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := l.State(ctx)
		if err == nil && st.Messages == 1 && st.First == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %+v, %v: want only the action, at 2", st, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func equal(t *testing.T, what string, got, want uint64) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %d, want %d", what, got, want)
	}
}

// With Listen set, NATS clients (the nats CLI, another program) reach the
// embedded server's event stream over TCP; without it there is no port.
func TestLogListen(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	defer l.Close()
	if _, err := l.Append(ctx, started("a", "a1")); err != nil {
		t.Fatal(err)
	}
	url := l.ClientURL()
	if url == "" {
		t.Fatal("no client URL with nats.listen set")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := s.GetMsg(ctx, 1); err != nil || msg.Subject != Subject("a", KindStarted) {
		t.Fatalf("over TCP: %v %v", msg, err)
	}
	quiet := openTest(t, Config{DataDir: t.TempDir()})
	defer quiet.Close()
	if quiet.ClientURL() != "" || quiet.Embedded().Addr() != nil {
		t.Errorf("without nats.listen: %q, %v", quiet.ClientURL(), quiet.Embedded().Addr())
	}
}
