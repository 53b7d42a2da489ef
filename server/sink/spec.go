package sink

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/actiond/actiond/ingest/hostlist"
	"github.com/actiond/actiond/server/eventlog"
)

// Spec is one sink as the configuration file's `sinks:` list spells it.
type Spec struct {
	// Name names the sink, its metrics and its durable consumer in the
	// event log: 1 to 64 letters, digits, '-' or '_'. Renaming a sink
	// starts a new consumer (at the log's end); keeping the name keeps
	// the position.
	Name string `yaml:"name"`
	// Type is mqtt or webhook.
	Type string `yaml:"type"`
	// Streams are the streams whose events the sink delivers. It defaults
	// to none: every stream.
	Streams []string `yaml:"streams"`
	// Labels are the action labels it delivers (window results by their
	// top label); status events have no label and always pass. It
	// defaults to none: every label.
	Labels []string `yaml:"labels"`
	// Kinds are the kinds of events it delivers: window, started, ended,
	// status. It defaults to started and ended.
	Kinds []string `yaml:"kinds"`

	// URL is where it delivers: mqtt://host:port or mqtts://host:port for
	// mqtt (port 1883 or 8883 when left out), http:// or https:// for a
	// webhook. Credentials belong in username and password, not here.
	URL string `yaml:"url"`

	// BackoffMin and BackoffMax bound the wait before retrying a failed
	// delivery: a random wait between BackoffMin and a ceiling that
	// doubles with each failure up to BackoffMax. They default to 1s and
	// 5m.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`

	// Username and Password are the MQTT broker's credentials. They
	// default to none.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// ClientID is the MQTT client id. It defaults to "actiond-<name>".
	ClientID string `yaml:"client_id"`
	// TopicPrefix starts every MQTT topic: <topic_prefix>/<stream>/<kind>
	// and <topic_prefix>/<stream>/state. It defaults to "actiond".
	TopicPrefix string `yaml:"topic_prefix"`
	// HomeAssistant publishes Home Assistant MQTT discovery: one sensor
	// per stream whose state is the current action. It defaults to false.
	HomeAssistant bool `yaml:"home_assistant"`
	// DiscoveryPrefix is Home Assistant's discovery prefix. It defaults
	// to "homeassistant".
	DiscoveryPrefix string `yaml:"discovery_prefix"`

	// Secret, for a webhook, signs every body: X-Actiond-Signature:
	// sha256=<hex HMAC-SHA256 of the body>. It defaults to "": no
	// signature.
	Secret string `yaml:"secret"`
	// Timeout bounds one delivery (a webhook's request, an MQTT
	// publish's PUBACK). It defaults to 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults of Spec.
const (
	DefaultBackoffMin      = time.Second
	DefaultBackoffMax      = 5 * time.Minute
	DefaultTimeout         = 5 * time.Second
	DefaultTopicPrefix     = "actiond"
	DefaultDiscoveryPrefix = "homeassistant"
)

var (
	sinkName  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	topicPart = regexp.MustCompile(`^[^#+\x00]+$`)
)

// Problem is one thing wrong with a Spec: Key names it as the
// configuration spells it ("url", "kinds[1]").
type Problem struct {
	Key, Problem string
}

// Settle returns s with its defaults filled in, and every problem found.
// allowed is sinks.allowed_hosts; nil allows any host.
func (s Spec) Settle(allowed *hostlist.List) (Spec, []Problem) {
	var ps []Problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, Problem{key, fmt.Sprintf(format, args...)})
	}
	if !sinkName.MatchString(s.Name) {
		bad("name", "must be 1 to 64 letters, digits, '-' or '_', got %q", s.Name)
	}
	s.Type = strings.ToLower(s.Type)
	if s.Type != "mqtt" && s.Type != "webhook" {
		bad("type", "must be mqtt or webhook, got %q", s.Type)
	}
	// Settled apart from the caller's: the lists are copied.
	s.Streams, s.Labels, s.Kinds = slices.Clone(s.Streams), slices.Clone(s.Labels), slices.Clone(s.Kinds)
	if len(s.Kinds) == 0 {
		s.Kinds = []string{eventlog.KindStarted, eventlog.KindEnded}
	}
	for i, k := range s.Kinds {
		s.Kinds[i] = strings.ToLower(k)
		if !slices.Contains(eventlog.Kinds, s.Kinds[i]) {
			bad(fmt.Sprintf("kinds[%d]", i), "must be window, started, ended or status, got %q", k)
		}
	}
	for i, st := range s.Streams {
		if st == "" || strings.ContainsAny(st, " \t\r\n*>") {
			bad(fmt.Sprintf("streams[%d]", i), "must be a stream name, got %q", st)
		}
	}
	for i, l := range s.Labels {
		if l == "" {
			bad(fmt.Sprintf("labels[%d]", i), "must not be empty")
		}
	}
	positive := func(key string, v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			bad(key, "must be positive, got %v", *v)
		}
	}
	positive("backoff_min", &s.BackoffMin, DefaultBackoffMin)
	positive("backoff_max", &s.BackoffMax, DefaultBackoffMax)
	if s.BackoffMax < s.BackoffMin {
		bad("backoff_max", "(%v) must not be less than backoff_min (%v)", s.BackoffMax, s.BackoffMin)
	}
	positive("timeout", &s.Timeout, DefaultTimeout)

	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		bad("url", "required")
	case err != nil:
		bad("url", "cannot be parsed: %v", redactErr(err, s.URL))
	case u.User != nil:
		bad("url", "must not hold credentials: set username and password instead")
	case u.Hostname() == "":
		bad("url", "must name a host, got %q", Redact(s.URL))
	default:
		schemes := map[string][]string{"mqtt": {"mqtt", "mqtts"}, "webhook": {"http", "https"}}[s.Type]
		if s.Type != "" && schemes != nil && !slices.Contains(schemes, u.Scheme) {
			bad("url", "a %s sink's url starts with %s:// or %s://, got %q", s.Type, schemes[0], schemes[1], Redact(s.URL))
		} else if err := allowed.Check(u.Hostname()); err != nil {
			var refused *hostlist.Error
			if errors.As(err, &refused) {
				bad("url", "%s", refused.Reason())
			} else {
				bad("url", "%v", err)
			}
		}
	}
	switch s.Type {
	case "mqtt":
		if s.TopicPrefix == "" {
			s.TopicPrefix = DefaultTopicPrefix
		}
		if !topicPart.MatchString(s.TopicPrefix) || strings.HasSuffix(s.TopicPrefix, "/") {
			bad("topic_prefix", "must be a topic without + or # and without a trailing /, got %q", s.TopicPrefix)
		}
		if s.ClientID == "" {
			s.ClientID = "actiond-" + s.Name
		}
		if s.DiscoveryPrefix == "" {
			s.DiscoveryPrefix = DefaultDiscoveryPrefix
		}
		if s.Password != "" && s.Username == "" {
			bad("password", "is set but username is not")
		}
		if s.Secret != "" {
			bad("secret", "is for webhook sinks")
		}
	case "webhook":
		for key, set := range map[string]bool{"username": s.Username != "", "password": s.Password != "",
			"client_id": s.ClientID != "", "topic_prefix": s.TopicPrefix != "", "home_assistant": s.HomeAssistant,
			"discovery_prefix": s.DiscoveryPrefix != ""} {
			if set {
				bad(key, "is for mqtt sinks")
			}
		}
	}
	slices.SortFunc(ps, func(a, b Problem) int { return strings.Compare(a.Key, b.Key) })
	return s, ps
}

// Target is where the sink delivers, without credentials.
func (s Spec) Target() string { return Redact(s.URL) }

// Redact removes credentials, query and fragment from a URL.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

// redactErr keeps a URL's credentials out of a parse error.
func redactErr(err error, raw string) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return strings.ReplaceAll(err.Error(), raw, "(url)")
}
