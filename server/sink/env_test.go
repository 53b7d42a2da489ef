package sink

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b[:len(b)-1]))
	return len(b), nil
}

// openLog opens the real event log (embedded NATS JetStream on a file
// store in dir).
func openLog(t testing.TB, dir string) *eventLog {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := eventlog.Open(ctx, eventlog.Config{DataDir: dir, Log: testLogger(t).With("component", "log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return &eventLog{l, l.JetStream()}
}

type eventLog struct {
	*eventlog.Log
	js jetstream.JetStream
}

// append writes ev to the log and returns its position.
func (l *eventLog) append(t testing.TB, ev *actiondv1.Event) uint64 {
	t.Helper()
	pos, err := l.Append(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func kindOf(ev *actiondv1.Event) string { return eventlog.KindOf(ev) }

func started(stream, id, label string, seq uint64) *actiondv1.Event {
	return &actiondv1.Event{Stream: stream, Sequence: seq, Kind: &actiondv1.Event_ActionStarted{ActionStarted: &actiondv1.ActionStarted{
		ActionId: id, Label: label, StartTime: timestamppb.New(time.Unix(1700000000, 0)), PeakScore: 0.9, Clock: actiondv1.Clock_CLOCK_RECEIVE}}}
}

func ended(stream, id, label string, seq uint64) *actiondv1.Event {
	return &actiondv1.Event{Stream: stream, Sequence: seq, Kind: &actiondv1.Event_ActionEnded{ActionEnded: &actiondv1.ActionEnded{
		ActionId: id, Label: label, PeakScore: 0.9, Reason: actiondv1.ActionEndReason_ACTION_END_REASON_SCORE_DROPPED}}}
}

func settled(t testing.TB, s Spec) Spec {
	t.Helper()
	s, ps := s.Settle(nil)
	if len(ps) > 0 {
		t.Fatalf("spec: %v", ps)
	}
	return s
}

// broker is a real mosquitto on a free loopback port, persistent so that
// a reader's session and its queued messages survive a restart.
type broker struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startBroker(t testing.TB) *broker { t.Helper(); return startBrokerWith(t, true) }

// startBrokerWith starts mosquitto, keeping its sessions and retained
// messages across a restart or not.
func startBrokerWith(t testing.TB, persistent bool) *broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			testenv.Missing(t, "mosquitto not installed: %v", err)
		}
		bin = "/usr/sbin/mosquitto"
	}
	port := testenv.FreePort(t)
	b := &broker{t: t, bin: bin, dir: t.TempDir(), port: port}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence %v\npersistence_location %s/\nlog_dest stderr\nlog_type error\nlog_type warning\n", port, persistent, b.dir)
	if os.Geteuid() == 0 {
		// As root, mosquitto would switch to its own user, which cannot
		// write the test's directory.
		conf += "user root\n"
	}
	if err := os.WriteFile(filepath.Join(b.dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) url() string { return "mqtt://127.0.0.1:" + strconv.Itoa(b.port) }

func (b *broker) start() {
	b.t.Helper()
	b.cmd = exec.Command(b.bin, "-c", filepath.Join(b.dir, "mosquitto.conf"))
	b.cmd.Stderr = testWriterNL{b.t, "mosquitto"}
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(b.cmd, b.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(b.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto does not listen: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends mosquitto gracefully (it saves its sessions).
func (b *broker) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

type testWriterNL struct {
	t    testing.TB
	name string
}

func (w testWriterNL) Write(b []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, b)
	return len(b), nil
}

// received is one MQTT message a reader got.
type received struct {
	topic    string
	payload  []byte
	retained bool
}

func (r received) String() string { return r.topic + " " + string(r.payload) }

// reader is a real MQTT client subscribed to topic at QoS 1 with a
// persistent session: it misses nothing while the broker is down.
type reader struct {
	client mqtt.Client
	mu     sync.Mutex
	msgs   []received
}

func newReader(t testing.TB, b *broker, topic string) *reader {
	t.Helper()
	r := &reader{}
	o := mqtt.NewClientOptions().AddBroker(b.url()).SetClientID(fmt.Sprintf("reader-%d", time.Now().UnixNano())).
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).SetConnectRetry(true).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			r.mu.Lock()
			r.msgs = append(r.msgs, received{m.Topic(), m.Payload(), m.Retained()})
			r.mu.Unlock()
		})
	r.client = mqtt.NewClient(o)
	if tok := r.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("reader connect: %v", tok.Error())
	}
	if tok := r.client.Subscribe(topic, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("reader subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { r.client.Disconnect(100) })
	return r
}

func (r *reader) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.msgs...)
}

// waitFor polls cond until it holds; its deadline only catches hangs.
var waitFor = testenv.WaitFor
