package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/sink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// peer finds a real peer's program (mosquitto lives in /usr/sbin, often
// not on a user's PATH), ending the test through testenv.Missing.
func peer(t *testing.T, name string, more ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range more {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return testenv.Tool(t, name)
}

// startMosquitto runs a real MQTT broker on a free loopback port.
func startMosquitto(t *testing.T) int {
	t.Helper()
	bin := peer(t, "mosquitto", "/usr/sbin/mosquitto")
	port := testenv.FreePort(t)
	dir := t.TempDir()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "mosquitto.conf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mqttLines is what `mosquitto_sub -v` prints: "topic payload" lines.
type mqttLines struct {
	mu    sync.Mutex
	lines []string
}

func (m *mqttLines) all() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.lines...)
}

// subscribe runs `mosquitto_sub -v -t topic`, as the README does, and
// returns once it is subscribed.
func subscribe(t *testing.T, port int, topic string) *mqttLines {
	t.Helper()
	args := []string{peer(t, "mosquitto_sub"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-v", "-d", "-q", "1", "-t", topic}
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		// Its output goes to a pipe: one line at a time, not a block.
		args = append([]string{stdbuf, "-oL"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	m := &mqttLines{}
	subscribed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "SUBACK") {
				once.Do(func() { close(subscribed) })
			}
			if strings.HasPrefix(line, "Client ") || strings.HasPrefix(line, "Subscribed") {
				continue // -d's own lines
			}
			m.mu.Lock()
			m.lines = append(m.lines, line)
			m.mu.Unlock()
		}
	}()
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("mosquitto_sub did not subscribe")
	}
	return m
}

// TestDemoToMQTT: `actiond serve --demo --config FILE` with an MQTT sink
// in FILE: the demo camera's actions arrive on actiond/demo/started and
// actiond/demo/ended as the JSON of `actionctl watch --json` with their
// position, and the retained actiond/demo/state goes between moving_left
// and moving_right.
func TestDemoToMQTT(t *testing.T) {
	t.Parallel()
	port := startMosquitto(t)
	sub := subscribe(t, port, "actiond/#")
	addr := testenv.FreeAddr(t)
	camera := testenv.FreeAddr(t)
	config := filepath.Join(t.TempDir(), "actiond.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `
sinks:
  - name: home
    type: mqtt
    url: mqtt://127.0.0.1:%d
    password_is_not_here: true
`, port), 0o600); err != nil {
		t.Fatal(err)
	}
	// A strict configuration first: the unknown key is named.
	if r := runActiond(t, nil, "serve", "--demo", "--config", config, "--listen", addr); r.code == 0 || !strings.Contains(r.stderr, "sinks[0].password_is_not_here: unknown key") {
		t.Fatalf("unknown key: exit %d, stderr %s", r.code, r.stderr)
	}
	if err := os.WriteFile(config, fmt.Appendf(nil, "sinks:\n  - name: home\n    type: mqtt\n    url: mqtt://127.0.0.1:%d\n", port), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, []string{"XDG_CACHE_HOME=" + t.TempDir(), "ACTIOND_DATA_DIR=" + t.TempDir()},
		"serve", "--demo", "--config", config, "--listen", addr, "--camera-listen", camera)

	var states []string
	var events []*actiondv1.Event
	deadline := time.Now().Add(2 * time.Minute)
	for {
		states, events = states[:0], events[:0]
		for _, line := range sub.all() {
			topic, payload, _ := strings.Cut(line, " ")
			switch topic {
			case "actiond/demo/state":
				var st sink.StateJSON
				if err := json.Unmarshal([]byte(payload), &st); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if len(states) == 0 || states[len(states)-1] != st.State {
					states = append(states, st.State)
				}
			case "actiond/demo/started", "actiond/demo/ended":
				ev := new(actiondv1.Event)
				if err := protojson.Unmarshal([]byte(payload), ev); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if kind := topic[len("actiond/demo/"):]; (kind == "started") != (ev.GetActionStarted() != nil) || ev.GetStream() != "demo" || ev.GetPosition() == 0 {
					t.Fatalf("%s: not a %s event of the demo stream with its position", line, kind)
				}
				events = append(events, ev)
			default:
				t.Fatalf("unexpected topic %q", topic)
			}
		}
		if strings.Contains(strings.Join(states, " "), "moving_left") && strings.Contains(strings.Join(states, " "), "moving_right") {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("actiond exited: %v", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 2 minutes the state went %v, with events %d", states, len(events))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("states %v after %d events", states, len(events))
	var last uint64
	for _, ev := range events {
		if ev.GetPosition() <= last {
			t.Errorf("position %d after %d", ev.GetPosition(), last)
		}
		last = ev.GetPosition()
		label := ev.GetActionStarted().GetLabel() + ev.GetActionEnded().GetLabel()
		if label != "moving_left" && label != "moving_right" {
			t.Errorf("action %v: the demo only moves left and right", ev)
		}
	}
	// The same figures over the API (no credentials: there are none here).
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := actiondv1.NewSinkServiceClient(conn).ListSinks(ctx, &actiondv1.ListSinksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s := resp.GetSinks(); len(s) != 1 || s[0].GetName() != "home" || !s[0].GetUp() || s[0].GetDelivered() < uint64(len(events)) ||
		s[0].GetTarget() != fmt.Sprintf("mqtt://127.0.0.1:%d", port) {
		t.Errorf("ListSinks: %v", s)
	}
	p.stop(t, syscall.SIGINT, 20*time.Second)
}

// TestServeKilledWhileSinkBehind: actiond is SIGKILLed while its webhook
// sink is behind (the receiver stalls on an action); after a restart on
// the same data_dir the sink resumes at the action the receiver had not
// acknowledged, and sends none it had.
func TestServeKilledWhileSinkBehind(t *testing.T) {
	t.Parallel()
	type request struct {
		run int
		pos uint64
		id  string
	}
	var (
		mu       sync.Mutex
		run      = 1
		requests []request
		acked    []uint64
		stalled  = make(chan struct{})
		release  = make(chan struct{})
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !hmac.Equal([]byte(r.Header.Get("X-Actiond-Signature")), []byte(sink.Sign("k", b))) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		pos, _ := strconv.ParseUint(r.Header.Get("X-Actiond-Position"), 10, 64)
		mu.Lock()
		requests = append(requests, request{run, pos, r.Header.Get("X-Actiond-Event-Id")})
		stall := run == 1 && len(acked) == 2
		if !stall {
			acked = append(acked, pos)
		}
		mu.Unlock()
		if stall {
			close(stalled)
			<-release
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
	}))
	defer hook.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	config := filepath.Join(t.TempDir(), "actiond.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "sinks:\n  - {name: tickets, type: webhook, url: %q, secret: k, timeout: 2m}\n", hook.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_CACHE_HOME=" + t.TempDir(), "ACTIOND_DATA_DIR=" + t.TempDir(), "ACTIOND_LOG_LEVEL=info"}
	addr := testenv.FreeAddr(t)
	camera := testenv.FreeAddr(t)
	args := []string{"serve", "--demo", "--config", config, "--listen", addr, "--camera-listen", camera}
	p := startServe(t, env, args...)
	select {
	case <-stalled:
	case <-p.done:
		t.Fatalf("actiond exited: %v", p.cmd.ProcessState)
	case <-time.After(2 * time.Minute):
		t.Fatal("no third action within 2 minutes")
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	mu.Lock()
	run = 2
	stuck := requests[len(requests)-1]
	mu.Unlock()
	close(release)

	p = startServe(t, env, args...)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := 0
		for _, r := range requests {
			if r.run == 2 {
				n++
			}
		}
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sink did not resume within 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	<-p.done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("requests: %v", requests)
	var after []request
	for _, r := range requests {
		if r.run == 2 {
			after = append(after, r)
		}
	}
	if after[0].pos != stuck.pos || after[0].id != stuck.id {
		t.Errorf("after the restart the sink sent %v first, want the unacknowledged %v", after[0], stuck)
	}
	for _, r := range after {
		for _, a := range acked[:2] {
			if r.pos == a {
				t.Errorf("position %d sent again after it was acknowledged", a)
			}
		}
	}
}

// TestServeSIGHUPReloadsSinks: sinks are added and removed by editing the
// configuration file and sending SIGHUP; a sink removed and added back
// resumes at its position: it gets every action logged while it was away.
func TestServeSIGHUPReloadsSinks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string][]uint64{} // sink -> positions
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pos, _ := strconv.ParseUint(r.Header.Get("X-Actiond-Position"), 10, 64)
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], pos)
		mu.Unlock()
	}))
	defer hook.Close()
	positions := func(path string) []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]uint64(nil), got[path]...)
	}
	config := filepath.Join(t.TempDir(), "actiond.yaml")
	write := func(names ...string) {
		t.Helper()
		doc := "sinks:\n"
		for _, n := range names {
			doc += fmt.Sprintf("  - {name: %s, type: webhook, url: %q}\n", n, hook.URL+"/"+n)
		}
		if err := os.WriteFile(config, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	write("a")
	addr := testenv.FreeAddr(t)
	p := startServe(t, []string{"XDG_CACHE_HOME=" + t.TempDir(), "ACTIOND_DATA_DIR=" + t.TempDir()},
		"serve", "--demo", "--config", config, "--listen", addr, "--camera-listen", testenv.FreeAddr(t))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	names := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := actiondv1.NewSinkServiceClient(conn).ListSinks(ctx, &actiondv1.ListSinksRequest{})
		if err != nil {
			return err.Error()
		}
		var n []string
		for _, s := range resp.GetSinks() {
			n = append(n, s.GetName())
		}
		return strings.Join(n, ",")
	}
	waitFor("an action at sink a", func() bool { return len(positions("/a")) >= 1 })

	// a removed, b added: b gets the actions from now on.
	write("b")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("sinks b", func() bool { return names() == "b" })
	aBefore := len(positions("/a"))
	waitFor("two actions at sink b", func() bool { return len(positions("/b")) >= 2 })

	// a back: it catches up on what it missed.
	write("a", "b")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("sinks a,b", func() bool { return names() == "a,b" })
	waitFor("sink a to catch up", func() bool {
		a := positions("/a")
		for _, pos := range positions("/b") {
			if !slices.Contains(a, pos) {
				return false
			}
		}
		return true
	})
	a := positions("/a")
	if !slices.IsSorted(a) || len(slices.Compact(slices.Clone(a))) != len(a) {
		t.Errorf("sink a got %v: want each position once, in order", a)
	}
	t.Logf("sink a: %v (%d before its removal); sink b: %v", a, aBefore, positions("/b"))
	p.cmd.Process.Signal(syscall.SIGINT)
	<-p.done
}
