package server

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeModel is a file where the configuration wants a model: Settle only
// checks that it exists.
func fakeModel(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Model: fakeModel(t)}.Settle()
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range []struct {
		key       string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:50051"},
		{"metrics_listen", c.MetricsListen, ""},
		{"max_streams", c.MaxStreams, 64},
		{"reflection", *c.Reflection, true},
		{"shutdown_timeout", c.ShutdownTimeout, 10 * time.Second},
		{"log.level", c.Log.Level, "info"},
		{"inference.max_batch", c.Inference.MaxBatch, 1},
		{"inference.max_wait", c.Inference.MaxWait, 20 * time.Millisecond},
		{"inference.feature_cache", *c.Inference.FeatureCache, true},
		{"actions.on_threshold", c.Actions.OnThreshold, float32(0.6)},
		{"actions.off_threshold", c.Actions.OffThreshold, float32(0.4)},
		{"actions.min_consecutive_windows", c.Actions.MinConsecutiveWindows, 2},
		{"actions.top_k", c.Actions.TopK, 5},
		{"subscribers.queue_size", c.Subscribers.QueueSize, 256},
		{"classify.max_content_size", c.Classify.MaxContentSize, ByteSize(64 << 20)},
		{"classify.allowed_dirs", len(c.Classify.AllowedDirs), 0},
		{"ingest.backoff_max", c.Ingest.BackoffMax, 30 * time.Second},
		{"ingest.max_frame_pixels", c.Ingest.MaxFramePixels, Pixels(8192 * 4320)},
		{"ingest.allowed_hosts", len(c.Ingest.AllowedHosts), 0},
		{"max_concurrent_streams", c.MaxConcurrentStreams, 100},
	} {
		if check.got != check.want {
			t.Errorf("%s defaults to %v, want %v", check.key, check.got, check.want)
		}
	}
}

// inference.sessions defaults to one session per 4 threads, the threads
// shared among them.
func TestInferenceSplit(t *testing.T) {
	for _, c := range []struct{ threads, sessions, wantN, wantPer int }{
		{2, 0, 1, 2}, {4, 0, 1, 4}, {8, 0, 2, 4}, {16, 0, 4, 4}, {64, 0, 16, 4},
		{16, 1, 1, 16}, {2, 2, 2, 1}, {3, 2, 2, 1}, {1, 4, 4, 1},
	} {
		if n, per := InferenceSplit(c.threads, c.sessions); n != c.wantN || per != c.wantPer {
			t.Errorf("threads %d, sessions %d: %d sessions of %d threads, want %d of %d", c.threads, c.sessions, n, per, c.wantN, c.wantPer)
		}
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	model := fakeModel(t)
	path := writeFile(t, "actiond.yaml", `
listen: 127.0.0.1:6000
model: `+model+`
state_file: `+filepath.Join(dir, "state.yaml")+`
inference:
  max_batch: 8
  max_wait: 5ms
actions:
  on_threshold: 0.7
classify:
  max_content_size: 2MiB
  allowed_dirs: [`+dir+`]
auth:
  tokens: [a-token]
streams:
  - name: dock-3
    url: rtsp://user:pass@192.0.2.7/stream1
    window: 5s
    stride: 1.25s
    label_allowlist: [moving_left]
    enabled: false
`)
	c, _, err := LoadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.Settle()
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:6000" || c.Inference.MaxBatch != 8 || c.Inference.MaxWait != 5*time.Millisecond ||
		c.Actions.OnThreshold != 0.7 || c.Classify.MaxContentSize != 2<<20 || c.Auth.Tokens[0] != "a-token" {
		t.Errorf("config read as %+v", c)
	}
	s := c.Streams[0]
	if s.Name != "dock-3" || s.Window != 5*time.Second || s.Stride != 1250*time.Millisecond || s.Enabled == nil || *s.Enabled ||
		!slices.Equal(s.LabelAllowlist, []string{"moving_left"}) {
		t.Errorf("stream read as %+v", s)
	}
}

// Every mistake is reported, each naming its key (and line, in a file).
func TestConfigErrorsNameTheKey(t *testing.T) {
	model := fakeModel(t)
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "listen: x:1\nlisten_addr: y\n", []string{"listen_addr: unknown key (line 2); the keys here are listen, metrics_listen"}},
		{"unknown nested key", "inference:\n  max_bach: 3\n", []string{"inference.max_bach: unknown key (line 2); the keys here are threads, sessions, max_batch, max_wait, feature_cache"}},
		{"unknown stream key", "streams:\n  - name: a\n    url: rtsp://h/x\n    windw: 3s\n", []string{"streams[0].windw: unknown key (line 4)"}},
		{"wrong type", "max_streams: lots\n", []string{`max_streams: line 1: want a whole number, got "lots"`}},
		{"duration without unit", "shutdown_timeout: 10\n", []string{`shutdown_timeout: line 1: want a duration such as "10s"`}},
		{"bad size", "classify:\n  max_content_size: 3 parsecs\n", []string{"classify.max_content_size: line 2:", "a size is a number of bytes"}},
		{"not a mapping", "inference: 4\n", []string{"inference: line 1: want a mapping of keys (threads, sessions, max_batch, max_wait, feature_cache)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := LoadConfigFile(writeFile(t, "c.yaml", tc.yaml), &c)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"listen", func(c *Config) { c.Listen = "nowhere" }, `listen: must be HOST:PORT, got "nowhere"`},
		{"model", func(c *Config) { c.Model = "/no/such.onnx" }, `model: model "/no/such.onnx" (from --model)`},
		{"batch", func(c *Config) { c.Inference.MaxBatch = -1 }, "inference.max_batch: must be between 1 and 256, got -1"},
		{"sessions", func(c *Config) { c.Inference.Sessions = -2 }, "inference.sessions: must be 0 (one per 4 threads) or between 1 and 256, got -2"},
		{"thresholds", func(c *Config) { c.Actions.OnThreshold, c.Actions.OffThreshold = 0.5, 0.7 }, "actions.off_threshold: (0.7) must not be above actions.on_threshold (0.5)"},
		{"threshold range", func(c *Config) { c.Actions.OnThreshold = 1.5 }, "actions.on_threshold: must be in (0, 1], got 1.5"},
		{"tls half", func(c *Config) { c.TLS.CertFile = "/x.pem" }, "tls: set both tls.cert_file and tls.key_file, or neither"},
		{"allowed dir", func(c *Config) { c.Classify.AllowedDirs = []string{"relative/dir"} }, `classify.allowed_dirs[0]: must be an absolute path, got "relative/dir"`},
		{"stream name", func(c *Config) { c.Streams = []StreamSpec{{Name: "a b", URL: "rtsp://h/x"}} }, `streams[0].name: must be 1 to 64 letters, digits, '.', '-' or '_', got "a b"`},
		{"stream url", func(c *Config) { c.Streams = []StreamSpec{{Name: "a", URL: "http://u:secret@h/x"}} }, "streams[0].url: must start with rtsp:// or rtsps://, got http://***@h/x"},
		{"stream window", func(c *Config) { c.Streams = []StreamSpec{{Name: "a", URL: "rtsp://h/x", Window: time.Hour}} }, "streams[0].window: must be between 1s and 10m, got 1h0m0s"},
		{"duplicate stream", func(c *Config) {
			c.Streams = []StreamSpec{{Name: "a", URL: "rtsp://h/x"}, {Name: "a", URL: "rtsp://h/y"}}
		}, `streams[1].name: "a" is also the name of streams[0]`},
		{"too many streams", func(c *Config) {
			c.MaxStreams = 1
			c.Streams = []StreamSpec{{Name: "a", URL: "rtsp://h/x"}, {Name: "b", URL: "rtsp://h/y"}}
		}, "streams: 2 streams are more than max_streams (1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Model: model}
			tc.change(&c)
			_, err := c.Settle()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

// File, then environment, then flags (the caller's): the environment
// overrides the file, key by key.
func TestConfigEnvironment(t *testing.T) {
	path := writeFile(t, "c.yaml", "listen: 127.0.0.1:6000\nmax_streams: 5\ninference:\n  max_batch: 2\n")
	env := []string{
		"HOME=/root",
		"ACTIOND_MAX_STREAMS=7",
		"ACTIOND_INFERENCE_MAX_WAIT=5ms",
		"ACTIOND_TOKENS=one, two",
		"ACTIOND_CLASSIFY_MAX_CONTENT_SIZE=1MiB",
		"ACTIOND_REFLECTION=false",
		"ACTIOND_INFERENCE_FEATURE_CACHE=false",
		"ACTIOND_ORT_LIB=/lib/ort.so", // not a key, read elsewhere: no warning
		"ACTIOND_LISTN=typo",
	}
	c, ignored, err := LoadConfig(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:6000" || c.MaxStreams != 7 || c.Inference.MaxBatch != 2 || c.Inference.MaxWait != 5*time.Millisecond ||
		!slices.Equal(c.Auth.Tokens, []string{"one", "two"}) || c.Classify.MaxContentSize != 1<<20 || c.Reflection == nil || *c.Reflection ||
		c.Inference.FeatureCache == nil || *c.Inference.FeatureCache {
		t.Errorf("config %+v", c)
	}
	if !slices.Equal(ignored, []string{"ACTIOND_LISTN"}) {
		t.Errorf("ignored %v, want the typo only", ignored)
	}
	// The full name wins over the alias.
	c, _, _ = LoadConfig("", []string{"ACTIOND_TOKENS=alias", "ACTIOND_AUTH_TOKENS=full"})
	if !slices.Equal(c.Auth.Tokens, []string{"full"}) {
		t.Errorf("tokens %v, want ACTIOND_AUTH_TOKENS over ACTIOND_TOKENS", c.Auth.Tokens)
	}
	_, _, err = LoadConfig("", []string{"ACTIOND_INFERENCE_MAX_BATCH=many"})
	if err == nil || !strings.Contains(err.Error(), `ACTIOND_INFERENCE_MAX_BATCH (inference.max_batch): want a whole number, got "many"`) {
		t.Errorf("error %v, want it to name the variable and the key", err)
	}
	names := EnvNames()
	for _, want := range []string{"ACTIOND_LISTEN", "ACTIOND_MODEL", "ACTIOND_AUTH_TOKENS", "ACTIOND_TLS_CERT_FILE", "ACTIOND_CLASSIFY_ALLOWED_DIRS", "ACTIOND_INGEST_BACKOFF_MAX",
		"ACTIOND_MAX_CONCURRENT_STREAMS", "ACTIOND_INGEST_MAX_FRAME_PIXELS", "ACTIOND_INGEST_ALLOWED_HOSTS"} {
		if !slices.Contains(names, want) {
			t.Errorf("EnvNames lacks %s: %v", want, names)
		}
	}
}

// A value quoted in a configuration error never shows the password of a
// camera URL: in the file (a stream given as a bare URL, a URL where a
// number goes, a YAML syntax error) or in the environment.
func TestConfigErrorsRedactPasswords(t *testing.T) {
	const secret = "pw-7731"
	for _, tc := range []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"stream as a bare URL", "streams: [\"rtsp://user:" + secret + "@cam-1/x\"]\n", nil,
			`streams[0]: line 1: want a mapping of keys (name, url, window, stride, top_k, on_threshold, off_threshold, min_consecutive_windows, label_allowlist, transport, enabled, skip_static), got "rtsp://***@cam-1/x"`},
		{"URL where a number goes", "max_streams: rtsp://user:" + secret + "@cam-1/x\n", nil, `max_streams: line 1: want a whole number, got "rtsp://***@cam-1/x"`},
		{"password in the query", "max_streams: rtsp://cam-1/x?password=" + secret + "\n", nil, `got "rtsp://cam-1/x?password=***"`},
		{"password with a slash", "streams:\n  - rtsp://user:" + secret + "/x@cam-1/x\n", nil, `got "rtsp://***@cam-1/x"`},
		{"URL where a size goes", "classify:\n  max_content_size: rtsp://u:" + secret + "@cam-1/x\n", nil, "classify.max_content_size: line 2:"},
		{"syntax error", "streams:\n  - name: a\n    url: rtsp://u:" + secret + "@cam-1/x\n   bad: [\n", nil, "config"},
		{"environment", "", []string{"ACTIOND_MAX_STREAMS=rtsp://u:" + secret + "@cam-1/x"}, `ACTIOND_MAX_STREAMS (max_streams): want a whole number, got "rtsp://***@cam-1/x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeFile(t, "c.yaml", tc.yaml)
			}
			_, _, err := LoadConfig(path, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestPixels(t *testing.T) {
	for in, want := range map[string]Pixels{"35389440": 8192 * 4320, "8192x4320": 8192 * 4320, "1920X1080": 1920 * 1080, " 100 x 100 ": 10000} {
		var p Pixels
		if err := p.UnmarshalText([]byte(in)); err != nil || p != want {
			t.Errorf("%q: %v, %v; want %v", in, p, err, want)
		}
	}
	for _, in := range []string{"", "8K", "8192x", "x4320", "-1x5", "1.5"} {
		var p Pixels
		if err := p.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q parsed as %v", in, p)
		}
	}
	c, _, err := LoadConfig(writeFile(t, "c.yaml", "ingest:\n  max_frame_pixels: 3840x2160\n"), []string{"ACTIOND_MAX_CONCURRENT_STREAMS=8"})
	if err != nil || c.Ingest.MaxFramePixels != 3840*2160 || c.MaxConcurrentStreams != 8 {
		t.Errorf("max_frame_pixels %v, max_concurrent_streams %v (%v)", c.Ingest.MaxFramePixels, c.MaxConcurrentStreams, err)
	}
	if _, err := (Config{Model: fakeModel(t), Ingest: IngestConfig{MaxFramePixels: -1}}).Settle(); err == nil ||
		!strings.Contains(err.Error(), "ingest.max_frame_pixels: must be between 1 and 268435456 (16384x16384), got -1") {
		t.Errorf("a negative max_frame_pixels: %v", err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1048576": 1 << 20, "64MiB": 64 << 20, "10 MB": 10e6, "1GiB": 1 << 30, "512KiB": 512 << 10, "7B": 7} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q: %v, %v; want %v", in, b, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "-1", "3 parsecs"} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q parsed as %v", in, b)
		}
	}
	if s := ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("64MiB prints as %s", s)
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.yaml")
	f := NewStateFile(path)
	if specs, err := f.Load(); err != nil || len(specs) != 0 {
		t.Fatalf("missing file: %v %v, want no streams", specs, err)
	}
	off := false
	want := []StreamSpec{
		{Name: "a", URL: "rtsp://user:pass@h/x", Window: 5 * time.Second, TopK: 3, OnThreshold: 0.8, LabelAllowlist: []string{"moving_left"}, Enabled: &off},
		{Name: "b", URL: "rtsp://h/y", Transport: "tcp"},
	}
	if err := f.Save(want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v (%v), want 0600: it holds credentials", st.Mode().Perm(), err)
	}
	got, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a" || got[0].URL != want[0].URL || got[0].Window != 5*time.Second || got[0].TopK != 3 ||
		got[0].OnThreshold != 0.8 || got[0].Enabled == nil || *got[0].Enabled || got[1].Transport != "tcp" {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want the state file only (no temporary left)", len(entries))
	}
	if err := os.WriteFile(path, []byte("streams:\n  - nam: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), "streams[0].nam: unknown key") {
		t.Errorf("bad state file: %v", err)
	}
}

// The fleet keys: defaults with nats.url, from the environment, each
// mistake naming its key, and refused without nats.url.
func TestConfigFleet(t *testing.T) {
	model := fakeModel(t)
	var c Config
	if _, err := ApplyEnv(&c, []string{"ACTIOND_NATS_URL=nats://127.0.0.1:4222", "ACTIOND_NODE_NAME=n-7", "ACTIOND_FLEET_LEASE=3s",
		"ACTIOND_FLEET_ADDRESS=10.0.0.7:50051", "ACTIOND_NATS_REPLICAS=3"}); err != nil {
		t.Fatal(err)
	}
	c.Model = model
	got, err := c.Settle()
	if err != nil {
		t.Fatal(err)
	}
	if !got.InFleet() || got.Node.Name != "n-7" || got.Fleet.Name != "actiond" || got.Fleet.Lease != 3*time.Second ||
		got.Fleet.MovesPerMinute != 30 || got.Fleet.MaxStreamsPerNode != 0 || got.Fleet.Address != "10.0.0.7:50051" || got.NATS.Replicas != 3 {
		t.Errorf("fleet settled as node %+v fleet %+v replicas %d", got.Node, got.Fleet, got.NATS.Replicas)
	}
	host, _ := os.Hostname()
	got, err = Config{Model: model, Listen: "0.0.0.0:7000", NATS: NATSConfig{URL: "nats://h:4222"}}.Settle()
	if err != nil {
		t.Fatal(err)
	}
	if got.Node.Name != host || got.Fleet.Lease != 10*time.Second || got.Fleet.Address != net.JoinHostPort(host, "7000") || got.NATS.Replicas != 1 {
		t.Errorf("fleet defaults: node %+v fleet %+v replicas %d", got.Node, got.Fleet, got.NATS.Replicas)
	}
	fleet := NATSConfig{URL: "nats://h:4222"}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"node name", func(c *Config) { c.NATS = fleet; c.Node.Name = "a b" }, `node.name: "a b": use 1 to 253 letters`},
		{"fleet name", func(c *Config) { c.NATS = fleet; c.Fleet.Name = "a.b" }, `fleet.name: "a.b": use 1 to 64 letters`},
		{"lease", func(c *Config) { c.NATS = fleet; c.Fleet.Lease = 100 * time.Millisecond }, "fleet.lease: must be at least 1s, got 100ms"},
		{"cap", func(c *Config) { c.NATS = fleet; c.Fleet.MaxStreamsPerNode = -1 }, "fleet.max_streams_per_node: must be 0"},
		{"moves", func(c *Config) { c.NATS = fleet; c.Fleet.MovesPerMinute = -3 }, "fleet.moves_per_minute: must be between 1 and 100000, got -3"},
		{"replicas", func(c *Config) { c.NATS = fleet; c.NATS.Replicas = 7 }, "nats.replicas: must be between 1 and 5, got 7"},
		{"address", func(c *Config) { c.NATS = fleet; c.Fleet.Address = "nowhere" }, `fleet.address: must be HOST:PORT, got "nowhere"`},
		{"no nats.url", func(c *Config) { c.Node.Name = "n1" }, "node.name: is for a fleet: set nats.url (ACTIOND_NATS_URL) too"},
		{"replicas without nats.url", func(c *Config) { c.NATS.Replicas = 3 }, "nats.replicas: is for a fleet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Model: model}
			tc.change(&c)
			if _, err := c.Settle(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// http_listen: 127.0.0.1:8080 by default, port 0 beside a port-0 gRPC
// listener, "" (in the file or the environment) turns it off.
func TestConfigHTTPListen(t *testing.T) {
	model := fakeModel(t)
	settle := func(t *testing.T, c Config) Config {
		t.Helper()
		c.Model = model
		c, err := c.Settle()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := *settle(t, Config{}).HTTPListen; got != "127.0.0.1:8080" {
		t.Errorf("default: %q", got)
	}
	if got := *settle(t, Config{Listen: "127.0.0.1:0"}).HTTPListen; got != "127.0.0.1:0" {
		t.Errorf("beside listen 127.0.0.1:0: %q", got)
	}
	var c Config
	if err := LoadConfigFile(writeFile(t, "c.yaml", "http_listen: \"\"\n"), &c); err != nil {
		t.Fatal(err)
	}
	if got := *settle(t, c).HTTPListen; got != "" {
		t.Errorf(`http_listen: "" in the file: %q, want off`, got)
	}
	c = Config{}
	if _, err := ApplyEnv(&c, []string{"ACTIOND_HTTP_LISTEN="}); err != nil {
		t.Fatal(err)
	}
	if got := *settle(t, c).HTTPListen; got != "" {
		t.Errorf("ACTIOND_HTTP_LISTEN= : %q, want off", got)
	}
	bad := "nowhere"
	c = Config{HTTPListen: &bad, Model: model}
	if _, err := c.Settle(); err == nil || !strings.Contains(err.Error(), `http_listen: must be HOST:PORT, or "" for no HTTP listener, got "nowhere"`) {
		t.Errorf("bad http_listen: %v", err)
	}
}
