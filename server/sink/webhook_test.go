package sink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/hostlist"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// hook is a real HTTP receiver that checks signatures as the README
// shows, and answers what answer says.
type hook struct {
	secret string
	answer func(n int, id string) (status int, stall time.Duration)

	mu        sync.Mutex
	requests  int
	delivered []*actiondv1.Event // answered 2xx, in order
	ids       []string
	badSigs   int
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	// The receiver's check, as in the README.
	mac := hmac.New(sha256.New, []byte(h.secret))
	mac.Write(body)
	ok := hmac.Equal([]byte(r.Header.Get("X-Actiond-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil))))

	h.mu.Lock()
	n := h.requests
	h.requests++
	if !ok {
		h.badSigs++
	}
	status, stall := h.answer(n, r.Header.Get("X-Actiond-Event-Id"))
	h.mu.Unlock()
	if stall > 0 {
		time.Sleep(stall)
	}
	if status/100 == 2 {
		var ev actiondv1.Event
		if err := protojson.Unmarshal(body, &ev); err != nil || strconv.FormatUint(ev.GetPosition(), 10) != r.Header.Get("X-Actiond-Position") {
			status = http.StatusBadRequest
		} else if stall == 0 {
			h.mu.Lock()
			h.delivered = append(h.delivered, &ev)
			h.ids = append(h.ids, r.Header.Get("X-Actiond-Event-Id"))
			h.mu.Unlock()
		}
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "answer %d %s", status, strings.Repeat("x", 300))
}

func (h *hook) got() []*actiondv1.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*actiondv1.Event(nil), h.delivered...)
}

// TestWebhookFlakyReceiver: the receiver fails half the requests at random
// (500, 503, 429, 408) and stalls once past the sink's timeout; every
// event arrives, in order per stream, and every signature verifies.
func TestWebhookFlakyReceiver(t *testing.T) {
	l := openLog(t, t.TempDir())
	const timeout = 300 * time.Millisecond
	h := &hook{secret: "s3cret", answer: func(n int, _ string) (int, time.Duration) {
		switch {
		case n == 3:
			return http.StatusOK, timeout + 700*time.Millisecond
		case rand.IntN(2) == 0:
			return []int{500, 503, 429, 408}[rand.IntN(4)], 0
		}
		return http.StatusOK, 0
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := NewManager(l.js, testLogger(t))
	defer m.Close()
	spec := settled(t, Spec{Name: "ticketing", Type: "webhook", URL: srv.URL + "/hook?token=abc", Secret: h.secret,
		Timeout: timeout, BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err := m.Apply([]Spec{spec}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "consumer", func() bool { _, err := l.js.Consumer(t.Context(), eventlog.StreamName, "ticketing"); return err == nil })
	var want []uint64
	for i := range 40 {
		s := []string{"gate", "dock-2"}[i%2]
		id := fmt.Sprintf("%s-%d", s, i/4)
		if (i/2)%2 == 0 {
			want = append(want, l.append(t, started(s, id, "welding", uint64(i))))
		} else {
			want = append(want, l.append(t, ended(s, id, "welding", uint64(i))))
		}
	}
	waitFor(t, time.Minute, "every event", func() bool { return len(h.got()) >= len(want) })
	got := h.got()
	seen := map[uint64]bool{}
	last := map[string]uint64{}
	for i, ev := range got {
		p := ev.GetPosition()
		if seen[p] {
			t.Errorf("position %d delivered twice", p)
		}
		seen[p] = true
		if p < last[ev.GetStream()] {
			t.Errorf("stream %s: %d after %d", ev.GetStream(), p, last[ev.GetStream()])
		}
		last[ev.GetStream()] = p
		id := ev.GetActionStarted().GetActionId() + ev.GetActionEnded().GetActionId()
		kind := map[bool]string{true: "started", false: "ended"}[ev.GetActionStarted() != nil]
		if h.ids[i] != id+"/"+kind {
			t.Errorf("X-Actiond-Event-Id %q, want %q", h.ids[i], id+"/"+kind)
		}
	}
	for _, p := range want {
		if !seen[p] {
			t.Errorf("position %d never delivered", p)
		}
	}
	h.mu.Lock()
	requests, bad := h.requests, h.badSigs
	h.mu.Unlock()
	if bad > 0 {
		t.Errorf("%d signatures did not verify", bad)
	}
	s := m.List()[0]
	t.Logf("%d events, %d requests, %d retries, last error %q", len(want), requests, s.Retries, s.LastError)
	if s.Delivered != uint64(len(want)) || s.DeadLetters != 0 || s.Retries == 0 || s.Pending != 0 || !s.Up {
		t.Errorf("ListSinks: %v", s)
	}
	if strings.Contains(s.LastError, "abc") || s.Target != srv.URL+"/hook" {
		t.Errorf("the query (a token) shows: %v", s)
	}
}

// TestWebhookDeadLetter: a 404 is not retried: the event is counted as a
// dead letter, and delivery goes on.
func TestWebhookDeadLetter(t *testing.T) {
	l := openLog(t, t.TempDir())
	h := &hook{answer: func(_ int, id string) (int, time.Duration) {
		if id == "a2/started" {
			return http.StatusNotFound, 0
		}
		return http.StatusNoContent, 0
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := NewManager(l.js, testLogger(t))
	defer m.Close()
	if err := m.Apply([]Spec{settled(t, Spec{Name: "dl", Type: "webhook", URL: srv.URL, Labels: []string{"welding"}})}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "consumer", func() bool { _, err := l.js.Consumer(t.Context(), eventlog.StreamName, "dl"); return err == nil })
	l.append(t, started("gate", "a1", "welding", 1))
	l.append(t, started("gate", "a2", "welding", 2))
	l.append(t, started("gate", "a3", "sweeping", 3)) // filtered out by label
	l.append(t, started("gate", "a4", "welding", 4))
	waitFor(t, 20*time.Second, "a4", func() bool { return len(h.got()) == 2 })
	s := m.List()[0]
	if s.Delivered != 2 || s.DeadLetters != 1 || s.Retries != 0 || !strings.Contains(s.LastError, "404") || strings.Count(s.LastError, "x") > 200 {
		t.Errorf("ListSinks: %v", s)
	}
	if ids := h.ids; len(ids) != 2 || ids[0] != "a1/started" || ids[1] != "a4/started" {
		t.Errorf("delivered %v", ids)
	}
}

// TestAllowedHosts: sinks.allowed_hosts is checked on the configuration,
// and again on the address dialled.
func TestAllowedHosts(t *testing.T) {
	hosts, err := hostlist.Parse("sinks.allowed_hosts", []string{"10.0.0.0/8", "broker.lan", "192.0.2.7", "no/pe:x"})
	var bad *hostlist.EntryError
	if !errors.As(err, &bad) || bad.Index != 3 {
		t.Fatalf("bad entries %v", err)
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{{"http://10.1.2.3/x", true}, {"http://192.0.2.7:8080/", true}, {"mqtt://broker.lan", true},
		{"http://127.0.0.1/", false}, {"http://[::1]/", false}, {"http://elsewhere.example/", true /* checked at connect */}} {
		typ := map[bool]string{true: "mqtt", false: "webhook"}[strings.HasPrefix(tc.url, "mqtt")]
		_, ps := Spec{Name: "x", Type: typ, URL: tc.url}.Settle(hosts)
		if (len(ps) == 0) != tc.ok {
			t.Errorf("%s: problems %v, want ok=%v", tc.url, ps, tc.ok)
		}
		if !tc.ok && (len(ps) != 1 || ps[0].Key != "url" || !strings.Contains(ps[0].Problem, "sinks.allowed_hosts")) {
			t.Errorf("%s: %v", tc.url, ps)
		}
	}
	// localhost is not listed, so the address it resolves to is checked.
	l := openLog(t, t.TempDir())
	h := &hook{answer: func(int, string) (int, time.Duration) { return 200, 0 }}
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := NewManager(l.js, testLogger(t))
	defer m.Close()
	spec, ps := Spec{Name: "fenced", Type: "webhook", URL: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), BackoffMax: time.Second}.Settle(hosts)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if err := m.Apply([]Spec{spec}, hosts); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "consumer", func() bool { _, err := l.js.Consumer(t.Context(), eventlog.StreamName, "fenced"); return err == nil })
	l.append(t, started("gate", "a1", "welding", 1))
	waitFor(t, 20*time.Second, "a refused dial", func() bool { return strings.Contains(m.List()[0].LastError, "not in sinks.allowed_hosts") })
	if len(h.got()) != 0 || m.List()[0].Up {
		t.Errorf("delivered to a host outside allowed_hosts: %v", m.List()[0])
	}

	// The same for a broker.
	b := startBroker(t)
	rd := newReader(t, b, "#")
	spec, ps = Spec{Name: "fenced-mqtt", Type: "mqtt", URL: strings.Replace(b.url(), "127.0.0.1", "localhost", 1), BackoffMax: time.Second}.Settle(hosts)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if err := m.Apply([]Spec{spec}, hosts); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "consumer", func() bool {
		_, err := l.js.Consumer(t.Context(), eventlog.StreamName, "fenced-mqtt")
		return err == nil
	})
	l.append(t, started("gate", "a2", "welding", 2))
	waitFor(t, 20*time.Second, "a refused dial", func() bool { return strings.Contains(m.List()[0].LastError, "not in sinks.allowed_hosts") })
	if len(rd.all()) != 0 || m.List()[0].Up {
		t.Errorf("published to a broker outside allowed_hosts: %v %v", rd.all(), m.List()[0])
	}
}

func TestSpecSettle(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		keys string
	}{
		{Spec{Name: "ok", Type: "mqtt", URL: "mqtts://broker:8883"}, ""},
		{Spec{Name: "bad name", Type: "kafka", URL: "x"}, "name type url"},
		{Spec{Name: "m", Type: "mqtt", URL: "http://x", Secret: "s"}, "secret url"},
		{Spec{Name: "w", Type: "webhook", URL: "https://u:p@x/", TopicPrefix: "a"}, "topic_prefix url"},
		{Spec{Name: "k", Type: "webhook", URL: "https://x/", Kinds: []string{"started", "begun"}, Timeout: -1}, "kinds[1] timeout"},
		{Spec{Name: "b", Type: "mqtt", URL: "mqtt://x", BackoffMin: time.Minute, BackoffMax: time.Second, TopicPrefix: "a/#"}, "backoff_max topic_prefix"},
	} {
		s, ps := tc.spec.Settle(nil)
		var keys []string
		for _, p := range ps {
			keys = append(keys, p.Key)
			if strings.Contains(p.Problem, "u:p") {
				t.Errorf("credentials in %v", p)
			}
		}
		if strings.Join(keys, " ") != tc.keys {
			t.Errorf("%+v: problems %v, want keys %q", tc.spec, ps, tc.keys)
		}
		if tc.keys == "" && (s.TopicPrefix != "actiond" || s.ClientID != "actiond-ok" || s.Timeout != 5*time.Second ||
			s.BackoffMin != time.Second || s.BackoffMax != 5*time.Minute || strings.Join(s.Kinds, ",") != "started,ended") {
			t.Errorf("defaults: %+v", s)
		}
	}
}

// TestStuckSinkBlocksNoOther: a sink whose receiver never answers holds
// up no other sink: each reads the log on its own.
func TestStuckSinkBlocksNoOther(t *testing.T) {
	l := openLog(t, t.TempDir())
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer stuck.Close()
	defer close(release)
	h := &hook{answer: func(int, string) (int, time.Duration) { return http.StatusOK, 0 }}
	ok := httptest.NewServer(h)
	defer ok.Close()
	m := NewManager(l.js, testLogger(t))
	defer m.Close()
	if err := m.Apply([]Spec{
		settled(t, Spec{Name: "stuck", Type: "webhook", URL: stuck.URL, Timeout: time.Minute}),
		settled(t, Spec{Name: "ok", Type: "webhook", URL: ok.URL}),
	}, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"stuck", "ok"} {
		waitFor(t, 20*time.Second, "consumer "+name, func() bool {
			_, err := l.js.Consumer(t.Context(), eventlog.StreamName, name)
			return err == nil
		})
	}
	for i := range 10 {
		l.append(t, started("gate", fmt.Sprintf("a%d", i), "welding", uint64(i+1)))
	}
	waitFor(t, 20*time.Second, "the other sink's ten events", func() bool { return len(h.got()) == 10 })
	// pending is read every few seconds: wait for it.
	waitFor(t, 20*time.Second, "the stuck sink's pending", func() bool { return m.List()[0].Pending == 10 })
	if s := m.List(); s[0].Delivered != 0 || s[1].Delivered != 10 || s[1].Pending != 0 {
		t.Errorf("ListSinks: %v", s)
	}
}
