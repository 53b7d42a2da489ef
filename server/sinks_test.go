package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/actiond/actiond/server/sink"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestConfigSinks(t *testing.T) {
	model := fakeModel(t)
	// `sinks:` as the list itself, and as a mapping with allowed_hosts.
	for name, doc := range map[string]string{
		"list": `
sinks:
  - name: plc
    type: mqtt
    url: mqtt://127.0.0.1:1883
    username: bridge
    password: pw
  - name: tickets
    type: webhook
    url: https://10.1.2.3/hook
    secret: s3cret
    kinds: [started]
`,
		"mapping": `
sinks:
  allowed_hosts: [127.0.0.1, 10.0.0.0/8]
  list:
    - name: plc
      type: mqtt
      url: mqtt://127.0.0.1:1883
      username: bridge
      password: pw
    - name: tickets
      type: webhook
      url: https://10.1.2.3/hook
      secret: s3cret
      kinds: [started]
`} {
		t.Run(name, func(t *testing.T) {
			c, _, err := LoadConfig(writeFile(t, "c.yaml", "model: "+model+doc), nil)
			if err != nil {
				t.Fatal(err)
			}
			c, err = c.Settle()
			if err != nil {
				t.Fatal(err)
			}
			l := c.Sinks.List
			if len(l) != 2 || l[0].TopicPrefix != "actiond" || l[0].ClientID != "actiond-plc" || l[0].Password != "pw" ||
				strings.Join(l[0].Kinds, ",") != "started,ended" || l[1].Timeout != 5*time.Second || strings.Join(l[1].Kinds, ",") != "started" {
				t.Errorf("sinks read as %+v", l)
			}
		})
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "sinks:\n  - name: a\n    type: mqtt\n    url: mqtt://h\n    topic: x\n", "sinks[0].topic: unknown key (line 5); the keys here are name, type, streams"},
		{"unknown key in mapping", "sinks:\n  allowed: []\n", "sinks.allowed: unknown key (line 2); the keys here are allowed_hosts, list"},
		{"type", "sinks:\n  - name: a\n    type: kafka\n    url: x://h\n", `sinks[0].type: must be mqtt or webhook, got "kafka"`},
		{"scheme", "sinks:\n  - name: a\n    type: webhook\n    url: mqtt://h\n", "sinks[0].url: a webhook sink's url starts with http:// or https://"},
		{"credentials in url", "sinks:\n  - name: a\n    type: mqtt\n    url: mqtt://u:hunter2@h\n", "sinks[0].url: must not hold credentials: set username and password instead"},
		{"kind", "sinks:\n  - name: a\n    type: mqtt\n    url: mqtt://h\n    kinds: [started, stopped]\n", `sinks[0].kinds[1]: must be window, started, ended or status, got "stopped"`},
		{"timeout", "sinks:\n  - name: a\n    type: webhook\n    url: http://h\n    timeout: 5\n", `sinks[0].timeout: line 5: want a duration`},
		{"duplicate", "sinks:\n  - {name: a, type: mqtt, url: mqtt://h}\n  - {name: a, type: webhook, url: http://h}\n", `sinks[1].name: "a" is also the name of sinks[0]`},
		{"allowed hosts", "sinks:\n  allowed_hosts: [10.0.0.0/8]\n  list:\n    - {name: a, type: mqtt, url: mqtt://192.0.2.1}\n", "sinks[0].url: 192.0.2.1 is not in sinks.allowed_hosts"},
		{"bad allowed host", "sinks:\n  allowed_hosts: [\"http://x/\"]\n", `sinks.allowed_hosts[0]: must be a host name, an IP address or a CIDR range, got "http://x/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Model: model}
			err := LoadConfigFile(writeFile(t, "c.yaml", tc.yaml), &c)
			if err == nil {
				_, err = c.Settle()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
	// allowed_hosts from the environment, as every list of strings.
	var c Config
	if _, err := ApplyEnv(&c, []string{"ACTIOND_SINKS_ALLOWED_HOSTS=10.0.0.0/8, broker.lan"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Sinks.AllowedHosts, ",") != "10.0.0.0/8,broker.lan" {
		t.Errorf("allowed_hosts from the environment: %v", c.Sinks.AllowedHosts)
	}
}

// TestSinkService: a webhook sink of a running server delivers what is
// appended to the log, ListSinks and the metrics show its figures (no
// credentials), and a reload that removes the sink and adds it back loses
// no event: it resumes at its position.
func TestSinkService(t *testing.T) {
	var mu sync.Mutex
	var got []uint64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev actiondv1.Event
		b, _ := io.ReadAll(r.Body)
		if err := protojson.Unmarshal(b, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ev.GetPosition())
		mu.Unlock()
	}))
	defer hook.Close()
	delivered := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	spec := sink.Spec{Name: "tickets", Type: "webhook", URL: hook.URL + "/hook?token=qs-secret", Secret: "hmac-secret"}
	ts := startServer(t, Config{MetricsListen: "127.0.0.1:0", Sinks: SinksConfig{List: []sink.Spec{spec}}})
	log := ts.core.Load().events.log
	sinks := actiondv1.NewSinkServiceClient(ts.conn)
	list := func() *actiondv1.Sink {
		t.Helper()
		resp, err := sinks.ListSinks(ctxT(t, 10*time.Second), &actiondv1.ListSinksRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetSinks()) == 0 {
			return nil
		}
		return resp.GetSinks()[0]
	}
	appendAction := func(id string) uint64 {
		t.Helper()
		p, err := log.Append(context.Background(), &actiondv1.Event{Stream: "gate", Kind: &actiondv1.Event_ActionStarted{
			ActionStarted: &actiondv1.ActionStarted{ActionId: id, Label: "welding", StartTime: timestamppb.Now()}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	waitUntil(t, 20*time.Second, "the sink's consumer", func() bool {
		_, err := log.JetStream().Consumer(context.Background(), eventlog.StreamName, "tickets")
		return err == nil
	})
	appendAction("a1")
	p2 := appendAction("a2")
	waitUntil(t, 20*time.Second, "two deliveries", func() bool { return delivered() == 2 })
	waitUntil(t, 10*time.Second, "the acknowledgement", func() bool { return list().GetAckedPosition() == p2 })
	s := list()
	if s.GetName() != "tickets" || s.GetType() != "webhook" || s.GetDelivered() != 2 || !s.GetUp() || s.GetTarget() != hook.URL+"/hook" {
		t.Errorf("ListSinks: %v", s)
	}
	noSecret(t, "ListSinks", s.String(), "secret")
	resp, err := http.Get("http://" + ts.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`actiond_sink_delivered_total{sink="tickets"} 2`, `actiond_sink_pending{sink="tickets"} 0`,
		`actiond_sink_retries_total{sink="tickets"} 0`, `actiond_sink_dead_letters_total{sink="tickets"} 0`, `actiond_sink_up{sink="tickets"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	noSecret(t, "metrics", string(metrics), "secret")

	// Removed: events go on into the log; added back: it resumes.
	if err := ts.ReloadSinks(Config{}); err != nil {
		t.Fatal(err)
	}
	if s := list(); s != nil {
		t.Fatalf("removed sink still listed: %v", s)
	}
	p3 := appendAction("a3")
	if err := ts.ReloadSinks(Config{Sinks: SinksConfig{List: []sink.Spec{spec}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the event appended while the sink was removed", func() bool { return delivered() == 3 })
	mu.Lock()
	if got[2] != p3 {
		t.Errorf("after the reload: delivered %v, want position %d third", got, p3)
	}
	mu.Unlock()
	noSecret(t, "server log", ts.logs.String(), "secret")
}

// waitUntil polls cond until it holds; its deadline only catches hangs.
var waitUntil = testenv.WaitFor

// The README's sink configurations load and settle as they are.
func TestReadmeSinkExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	model := fakeModel(t)
	n := 0
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		body := block
		for strings.HasPrefix(body, "#") {
			_, body, _ = strings.Cut(body, "\n")
		}
		if !strings.HasPrefix(body, "sinks:") {
			continue // the sink examples are files of their own
		}
		n++
		c := Config{Model: model}
		if err := LoadConfigFile(writeFile(t, "c.yaml", block), &c); err != nil {
			t.Errorf("%v:\n%s", err, block)
			continue
		}
		if _, err := c.Settle(); err != nil {
			t.Errorf("%v:\n%s", err, block)
		}
	}
	if n < 3 {
		t.Errorf("found %d sink configurations in the README, want 3", n)
	}
}
