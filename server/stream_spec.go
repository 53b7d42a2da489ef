package server

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/hostlist"
	"github.com/actiond/actiond/models"
)

// StreamSpec is one stream as it was asked for: in the configuration file
// (streams), the state file, a --stream flag or AddStream. A zero option
// means its default; the keys are the StreamOptions field names of the API.
type StreamSpec struct {
	// Name is unique on the server: 1 to 64 letters, digits, '.', '-' or
	// '_'. Required.
	Name string `yaml:"name"`
	// URL is the camera's rtsp:// or rtsps:// URL, credentials included.
	// Required.
	URL string `yaml:"url"`
	// Window is the span of video the model sees. It defaults to the
	// model's default window, else 10s.
	Window time.Duration `yaml:"window,omitempty"`
	// Stride is the time between the ends of two windows, rounded up to
	// whole slots. It defaults to 2 slots.
	Stride time.Duration `yaml:"stride,omitempty"`
	// TopK is how many labels each WindowResult carries. It defaults to
	// actions.top_k.
	TopK int `yaml:"top_k,omitempty"`
	// OnThreshold, OffThreshold and MinConsecutiveWindows default to the
	// keys of the same names under actions.
	OnThreshold           float32 `yaml:"on_threshold,omitempty"`
	OffThreshold          float32 `yaml:"off_threshold,omitempty"`
	MinConsecutiveWindows int     `yaml:"min_consecutive_windows,omitempty"`
	// LabelAllowlist, when not empty, are the only labels the stream
	// reports. It defaults to all of the model's labels.
	LabelAllowlist []string `yaml:"label_allowlist,omitempty"`
	// Transport is auto, udp or tcp. It defaults to auto.
	Transport string `yaml:"transport,omitempty"`
	// Enabled says whether the server connects to the camera. It defaults
	// to true.
	Enabled *bool `yaml:"enabled,omitempty"`
	// SkipStatic reuses the last result for a window whose new frames
	// barely differ from the frames before them (StaticPixelThreshold)
	// instead of running the model. It defaults to false.
	SkipStatic *bool `yaml:"skip_static,omitempty"`
}

var streamName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// checkStatic reports the problems that need no model, with fields named as
// StreamOptions (and the request) spell them.
func (s StreamSpec) checkStatic() FieldErrors {
	var errs FieldErrors
	switch {
	case s.Name == "":
		errs.add("name", "required: 1 to 64 letters, digits, '.', '-' or '_', e.g. \"dock-3\"")
	case !streamName.MatchString(s.Name):
		errs.add("name", fmt.Sprintf("must be 1 to 64 letters, digits, '.', '-' or '_', got %q", s.Name))
	}
	if p := checkStreamURL(s.URL); p != "" {
		errs.add("url", p)
	}
	if s.Window != 0 && (s.Window < time.Second || s.Window > 10*time.Minute) {
		errs.add("window", fmt.Sprintf("must be between 1s and 10m, got %v", s.Window))
	}
	if s.Stride < 0 {
		errs.add("stride", fmt.Sprintf("must be positive, got %v", s.Stride))
	}
	if s.TopK < 0 {
		errs.add("top_k", fmt.Sprintf("must be positive, got %d", s.TopK))
	}
	for key, v := range map[string]float32{"on_threshold": s.OnThreshold, "off_threshold": s.OffThreshold} {
		if v < 0 || v > 1 || math.IsNaN(float64(v)) {
			errs.add(key, fmt.Sprintf("must be in (0, 1], got %v", v))
		}
	}
	if s.MinConsecutiveWindows < 0 || s.MinConsecutiveWindows > maxConsecutive {
		errs.add("min_consecutive_windows", fmt.Sprintf("must be between 1 and %d, got %d", maxConsecutive, s.MinConsecutiveWindows))
	}
	switch strings.ToLower(s.Transport) {
	case "", "auto", "udp", "tcp":
	default:
		errs.add("transport", fmt.Sprintf("must be auto, udp or tcp, got %q", s.Transport))
	}
	slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs
}

// checkStreamURL returns what is wrong with a camera URL, "" if nothing.
// Its answer never contains credentials.
func checkStreamURL(raw string) string {
	if raw == "" {
		return "required: the camera's rtsp:// or rtsps:// URL"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Sprintf("%s does not parse", ingest.RedactURL(raw))
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		return fmt.Sprintf("must start with rtsp:// or rtsps://, got %s", ingest.RedactURL(raw))
	case u.Hostname() == "":
		return fmt.Sprintf("%s has no host", ingest.RedactURL(raw))
	}
	// url.Parse takes any digits for a port; one out of range would only
	// fail at every connect.
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("port %s of %s is not between 1 and 65535", p, ingest.RedactURL(raw))
		}
	}
	return ""
}

// streamOptions are a stream's options in effect: every default filled in.
type streamOptions struct {
	window, stride time.Duration
	topK           int
	on, off        float32
	consecutive    int
	// allow are the indices of the allowed labels, in the model's order;
	// nil: all of them. allowNames are their names.
	allow      []int
	allowNames []string
	transport  ingest.Transport
	enabled    bool
	skipStatic bool
}

// resolve fills in s's defaults from the server's configuration and the
// model, and checks what needs the model; fields are named as in
// checkStatic. It returns the ingest configuration too.
func (s StreamSpec) resolve(cfg *Config, model models.Manifest) (streamOptions, ingest.StreamConfig, error) {
	errs := s.checkStatic()
	o := streamOptions{
		topK:        s.TopK,
		on:          s.OnThreshold,
		off:         s.OffThreshold,
		consecutive: s.MinConsecutiveWindows,
		enabled:     s.Enabled == nil || *s.Enabled,
		skipStatic:  s.SkipStatic != nil && *s.SkipStatic,
		transport:   ingest.Transport(strings.ToLower(s.Transport)),
	}
	if o.transport == "" {
		o.transport = ingest.TransportAuto
	}
	if o.topK == 0 {
		o.topK = cfg.Actions.TopK
	}
	if o.on == 0 {
		o.on = cfg.Actions.OnThreshold
	}
	if o.off == 0 {
		o.off = cfg.Actions.OffThreshold
	}
	if o.consecutive == 0 {
		o.consecutive = cfg.Actions.MinConsecutiveWindows
	}
	if o.off > o.on {
		errs.add("off_threshold", fmt.Sprintf("(%v) must not be above on_threshold (%v)", o.off, o.on))
	}
	if len(s.LabelAllowlist) > 0 {
		index := make(map[string]int, len(model.Labels))
		for i, l := range model.Labels {
			index[l] = i
		}
		for i, l := range s.LabelAllowlist {
			j, ok := index[l]
			if !ok {
				errs.add(fmt.Sprintf("label_allowlist[%d]", i), fmt.Sprintf("%q is not a label of model %q (GetModel lists them)", l, model.Name))
				continue
			}
			if !slices.Contains(o.allow, j) {
				o.allow = append(o.allow, j)
			}
		}
		slices.Sort(o.allow)
		for _, j := range o.allow {
			o.allowNames = append(o.allowNames, model.Labels[j])
		}
	}
	labels := len(model.Labels)
	if len(o.allow) > 0 {
		labels = len(o.allow)
	}
	if s.TopK > len(model.Labels) {
		errs.add("top_k", fmt.Sprintf("must be at most %d (the model's label count), got %d", len(model.Labels), s.TopK))
	}
	o.topK = min(o.topK, labels)
	if len(errs) == 0 {
		// ingest.allowed_hosts was checked by Config.Settle.
		hosts, _ := hostlist.Parse("ingest.allowed_hosts", cfg.Ingest.AllowedHosts)
		if u, err := url.Parse(s.URL); err == nil {
			if err := hosts.Check(u.Hostname()); err != nil {
				return o, ingest.StreamConfig{}, fmt.Errorf("stream %q: url: %w", s.Name, err)
			}
		}
	}

	ic := ingest.StreamConfig{
		Name:           s.Name,
		URL:            s.URL,
		Transport:      o.transport,
		Window:         s.Window,
		Stride:         s.Stride,
		ConnectTimeout: cfg.Ingest.ConnectTimeout,
		ReadTimeout:    cfg.Ingest.ReadTimeout,
		BackoffMin:     cfg.Ingest.BackoffMin,
		BackoffMax:     cfg.Ingest.BackoffMax,
		MaxFramePixels: int(cfg.Ingest.MaxFramePixels),
		AllowedHosts:   cfg.Ingest.AllowedHosts,
		SnapshotWidth:  cfg.Events.SnapshotWidth,
	}
	if len(errs) == 0 {
		settled, err := ic.Settle(model)
		if err != nil {
			// checkStatic has seen to the stream's own keys: what is left
			// is the server's or the model's.
			return o, ic, fmt.Errorf("stream %q: %w", s.Name, err)
		}
		ic = settled
		o.window, o.stride = ic.Window, ic.Stride
	}
	return o, ic, errs.err()
}

// redacted returns s with the credentials taken out of its URL.
func (s StreamSpec) redacted() StreamSpec {
	s.URL = ingest.RedactURL(s.URL)
	return s
}
