package server

import (
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/hostlist"
	"github.com/actiond/actiond/models/motion"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// readmeConfig is the full configuration example of the README (the first
// ```yaml block), "" if the README is not there.
func readmeConfig() string {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n")
	if !ok {
		return ""
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// checkFieldErrors fails t unless err holds FieldErrors, each naming a field.
func checkFieldErrors(t *testing.T, err error) {
	t.Helper()
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error names no key: %v", err)
	}
	for _, e := range fe {
		if e.Field == "" || e.Problem == "" {
			t.Fatalf("error %+v lacks its key or problem (in %v)", e, err)
		}
	}
}

// FuzzConfig feeds arbitrary bytes as a YAML configuration file through
// LoadConfig and Settle: nothing panics, every error names its key (or, for
// YAML that does not parse, its line), and a settled configuration holds
// the invariants the server relies on and settles again to itself.
func FuzzConfig(f *testing.F) {
	if c := readmeConfig(); c != "" {
		f.Add(c)
	}
	f.Add("")
	f.Add("listen: 127.0.0.1:6000\nmodel: MODEL\ninference:\n  max_batch: 8\n  max_wait: 5ms\nactions:\n  on_threshold: 0.7\n" +
		"classify:\n  max_content_size: 2MiB\nauth:\n  tokens: [a-token]\nstreams:\n  - name: dock-3\n" +
		"    url: rtsp://user:pass@192.0.2.7/stream1\n    window: 5s\n    stride: 1.25s\n    label_allowlist: [moving_left]\n    enabled: false\n")
	for _, s := range []string{
		"listen: x:1\nlisten_addr: y\n",
		"inference:\n  max_bach: 3\n",
		"streams:\n  - name: a\n    url: rtsp://h/x\n    windw: 3s\n",
		"max_streams: lots\n",
		"shutdown_timeout: 10\n",
		"classify:\n  max_content_size: 3 parsecs\n",
		"inference: 4\n",
		"listen: 127.0.0.1:6000\nmax_streams: 5\ninference:\n  max_batch: 2\n",
		"a: &x {b: 1}\nc: *x\n",
		"actions: {on_threshold: 0.5, off_threshold: 0.7}\n",
		"auth: {tokens_file: TOKENS}\n",
		"sinks:\n  - {name: plc, type: mqtt, url: mqtt://127.0.0.1:1883, username: u, password: p, home_assistant: true}\n" +
			"  - {name: t, type: webhook, url: https://h/x, secret: s, kinds: [started, window], streams: [a.b], labels: [x]}\n",
		"sinks:\n  allowed_hosts: [10.0.0.0/8, h, 192.0.2.1]\n  list:\n    - {name: a, type: webhook, url: http://192.0.2.1/}\n",
		"sinks:\n  - {name: a, type: mqtt, url: http://u:p@h, secret: s, kinds: [begun], backoff_min: 1m, backoff_max: 1s}\n  - {name: a}\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	model := filepath.Join(dir, "model.onnx")
	tokens := filepath.Join(dir, "tokens")
	for p, s := range map[string]string{model: "x", tokens: "t1\n# c\nt2\n"} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		in = strings.ReplaceAll(in, "MODEL", model)
		file, err := os.CreateTemp(dir, "config-*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(file.Name())
		if _, err := file.WriteString(in); err != nil {
			t.Fatal(err)
		}
		file.Close()
		c, _, err := LoadConfig(file.Name(), nil)
		if err != nil {
			var fe FieldErrors
			if errors.As(err, &fe) {
				checkFieldErrors(t, err)
			} else if !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "yaml:") {
				t.Fatalf("error names neither key nor line: %v", err)
			}
			return
		}
		// The configuration may name files; keep the fuzzer off the
		// machine's own (a tokens file of /dev/zero would never end).
		if c.Model == "" {
			c.Model = model
		}
		if c.Auth.TokensFile != "" {
			c.Auth.TokensFile = tokens
		}
		s, err := c.Settle()
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without context: %v", err)
			}
			checkFieldErrors(t, err)
			return
		}
		a := s.Actions
		switch {
		case !(a.OnThreshold > 0 && a.OnThreshold <= 1), !(a.OffThreshold > 0 && a.OffThreshold <= a.OnThreshold):
			t.Fatalf("thresholds on %v off %v accepted", a.OnThreshold, a.OffThreshold)
		case a.TopK < 1, a.MinConsecutiveWindows < 1, s.MaxStreams < 1, s.Inference.MaxBatch < 1,
			s.Subscribers.QueueSize < 1, s.Classify.MaxContentSize < 1, s.Classify.MaxConcurrent < 1:
			t.Fatalf("a count below 1 accepted: %+v", s)
		case s.Inference.MaxWait <= 0, s.ShutdownTimeout <= 0, s.Ingest.BackoffMin <= 0, s.Ingest.BackoffMax < s.Ingest.BackoffMin:
			t.Fatalf("a duration out of range accepted: %+v", s)
		case len(s.Streams) > s.MaxStreams:
			t.Fatalf("%d streams over max_streams %d accepted", len(s.Streams), s.MaxStreams)
		}
		names := map[string]bool{}
		for i, st := range s.Streams {
			if errs := st.checkStatic(); len(errs) > 0 {
				t.Fatalf("streams[%d] accepted with %v", i, errs)
			}
			if names[st.Name] {
				t.Fatalf("stream name %q accepted twice", st.Name)
			}
			names[st.Name] = true
		}
		hosts, _ := hostlist.Parse("sinks.allowed_hosts", s.Sinks.AllowedHosts)
		sinkNames := map[string]bool{}
		for i, sp := range s.Sinks.List {
			if _, ps := sp.Settle(hosts); len(ps) > 0 {
				t.Fatalf("sinks[%d] accepted with %v", i, ps)
			}
			if sinkNames[sp.Name] {
				t.Fatalf("sink name %q accepted twice", sp.Name)
			}
			sinkNames[sp.Name] = true
			if sp.BackoffMin <= 0 || sp.BackoffMax < sp.BackoffMin || sp.Timeout <= 0 || len(sp.Kinds) == 0 {
				t.Fatalf("sinks[%d] accepted out of range: %+v", i, sp)
			}
		}
		again, err := s.Settle()
		if err != nil {
			t.Fatalf("a settled configuration does not settle again: %v", err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("settling twice changed the configuration:\n%+v\n%+v", s, again)
		}
	})
}

// FuzzStreamRequest feeds AddStream / UpdateStream request fields through
// the validation the StreamService does (applyOptions, then the spec's
// resolve against the server's settled configuration and the motion model's
// manifest), without a server: nothing panics, every problem names a field
// of the request, and what is accepted holds the documented invariants.
func FuzzStreamRequest(f *testing.F) {
	// set: bit 0 window, 1 stride, 2 top_k, 3 on, 4 off, 5 consecutive, 6 labels, 7 enabled and skip_static.
	f.Add("dock-3", "rtsp://user:pass@192.0.2.7/stream1", int64(5), int32(0), int64(1), int32(250000000),
		uint32(3), float32(0.7), float32(0.3), uint32(2), "moving_left\nmoving_right", int32(2), uint8(0xff))
	f.Add("cam.1", "rtsps://h:8554/x", int64(0), int32(0), int64(0), int32(0), uint32(0), float32(0), float32(0), uint32(0), "", int32(0), uint8(0))
	f.Add("a b", "http://u:secret@h/x", int64(3600), int32(0), int64(-1), int32(0), uint32(1000000), float32(1.5),
		float32(float32(math.NaN())), uint32(5000), "nope", int32(9), uint8(0xff))
	f.Add("x", "rtsp:///nohost", int64(1), int32(-5), int64(math.MaxInt64), int32(999999999), uint32(1), float32(0.4), float32(0.6), uint32(1), "", int32(3), uint8(0x3f))
	f.Add("", "", int64(0), int32(1), int64(0), int32(1), uint32(0), float32(-0.1), float32(1), uint32(0), "\n", int32(1), uint8(0x55))

	cfg, err := Config{Model: os.Args[0]}.Settle()
	if err != nil {
		f.Fatal(err)
	}
	model := motion.Manifest()
	known := map[string]bool{"name": true, "url": true}
	for _, k := range []string{"window", "stride", "top_k", "on_threshold", "off_threshold", "min_consecutive_windows", "transport", "enabled"} {
		known["options."+k] = true
	}

	f.Fuzz(func(t *testing.T, name, rawURL string, winS int64, winN int32, strS int64, strN int32,
		topK uint32, on, off float32, consecutive uint32, labels string, transport int32, set uint8) {
		o := &actiondv1.StreamOptions{Transport: actiondv1.Transport(transport)}
		if set&1 != 0 {
			o.Window = &durationpb.Duration{Seconds: winS, Nanos: winN}
		}
		if set&2 != 0 {
			o.Stride = &durationpb.Duration{Seconds: strS, Nanos: strN}
		}
		if set&4 != 0 {
			o.TopK = &topK
		}
		if set&8 != 0 {
			o.OnThreshold = &on
		}
		if set&16 != 0 {
			o.OffThreshold = &off
		}
		if set&32 != 0 {
			o.MinConsecutiveWindows = &consecutive
		}
		if set&64 != 0 {
			o.LabelAllowlist = &actiondv1.LabelAllowlist{Labels: strings.Split(labels, "\n")}
		}
		if set&128 != 0 {
			enabled, skip := set&1 == 0, set&2 == 0
			o.Enabled, o.SkipStatic = &enabled, &skip
		}
		// As AddStream does.
		spec := StreamSpec{Name: name, URL: rawURL}
		var errs FieldErrors
		applyOptions(&spec, o, &errs)
		checkNames := func(err error) {
			t.Helper()
			checkFieldErrors(t, err)
			var fe FieldErrors
			errors.As(err, &fe)
			for _, e := range fe {
				if !known[e.Field] && !strings.HasPrefix(e.Field, "options.label_allowlist[") {
					t.Fatalf("error names %q, no field of the request: %v", e.Field, err)
				}
				if strings.Contains(e.Problem, "secret") || strings.Contains(e.Problem, "pass@") {
					t.Fatalf("error shows a password: %v", err)
				}
			}
		}
		if len(errs) > 0 {
			checkNames(errs)
			return
		}
		opts, ic, err := spec.resolve(&cfg, model)
		if err != nil {
			var fe FieldErrors
			if errors.As(err, &fe) {
				checkNames(apiFields(err))
				return
			}
			if !strings.HasPrefix(err.Error(), "stream ") || !strings.Contains(err.Error(), "'") {
				t.Fatalf("error names no field: %v", err)
			}
			return
		}
		if !streamName.MatchString(spec.Name) {
			t.Fatalf("name %q accepted", spec.Name)
		}
		u, err := url.Parse(spec.URL)
		if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Hostname() == "" {
			t.Fatalf("url %q accepted", spec.URL)
		}
		switch {
		case opts.window < time.Second || opts.window > 10*time.Minute || ic.Window != opts.window:
			t.Fatalf("window %v accepted (asked %v)", opts.window, spec.Window)
		case opts.stride <= 0 || ic.Stride != opts.stride:
			t.Fatalf("stride %v accepted (asked %v)", opts.stride, spec.Stride)
		case !(opts.on > 0 && opts.on <= 1) || !(opts.off > 0 && opts.off <= opts.on):
			t.Fatalf("thresholds on %v off %v accepted", opts.on, opts.off)
		case opts.topK < 1 || opts.topK > len(model.Labels):
			t.Fatalf("top_k %d accepted", opts.topK)
		case opts.consecutive < 1 || opts.consecutive > maxConsecutive:
			t.Fatalf("min_consecutive_windows %d accepted", opts.consecutive)
		}
		if opts.skipStatic != o.GetSkipStatic() {
			t.Fatalf("skip_static %t in effect, %v asked", opts.skipStatic, o.SkipStatic)
		}
		switch opts.transport {
		case "auto", "udp", "tcp":
		default:
			t.Fatalf("transport %q accepted", opts.transport)
		}
		for i, j := range opts.allow {
			if j < 0 || j >= len(model.Labels) || (i > 0 && opts.allow[i-1] >= j) || opts.allowNames[i] != model.Labels[j] {
				t.Fatalf("allow list %v %v", opts.allow, opts.allowNames)
			}
		}
		// As UpdateStream does: the same options on the accepted spec.
		var uerrs FieldErrors
		applyOptions(&spec, o, &uerrs)
		if len(uerrs) > 0 {
			t.Fatalf("options accepted by AddStream rejected by UpdateStream: %v", uerrs)
		}
	})
}
