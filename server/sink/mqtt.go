package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/actiond/actiond/ingest/hostlist"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// mqttSink publishes each event on <prefix>/<stream>/<kind> (QoS 1) and
// keeps a retained <prefix>/<stream>/state with the stream's current
// action and connection state.
type mqttSink struct {
	spec   Spec
	client mqtt.Client
	st     *stats
	log    *slog.Logger
	wakeC  chan struct{}
	// dialErr is why the last connection attempt failed; nil once
	// connected.
	dialErr atomic.Pointer[error]
	// connected is set on every connection: the retained messages go
	// out again (a broker may have restarted without them).
	connected atomic.Bool

	// Owned by the sink's goroutine (deliver).
	states    map[string]*streamState
	announced map[string]bool // streams whose discovery is published
}

// streamState is what the retained state topic says about a stream.
type streamState struct {
	action     *actiondv1.ActionStarted // nil: idle
	connection string
	position   uint64
	published  []byte // the last payload the broker acknowledged
}

// StateJSON is the payload of the retained <prefix>/<stream>/state topic.
type StateJSON struct {
	Stream string `json:"stream"`
	// State is the current action's label, or "idle".
	State  string      `json:"state"`
	Action *ActionJSON `json:"action,omitempty"`
	// Connection is the stream's state, lower case: playing, connecting,
	// retrying, stopped, disabled; "unknown" before the sink saw one.
	Connection string `json:"connection"`
	// Position is the log position of the event that made this state.
	Position uint64 `json:"position,string"`
}

// ActionJSON is the action in progress.
type ActionJSON struct {
	ActionID  string    `json:"action_id"`
	Label     string    `json:"label"`
	Since     time.Time `json:"since"`
	PeakScore float32   `json:"peak_score"`
}

func newMQTT(spec Spec, allowed *hostlist.List, st *stats, log *slog.Logger) (*mqttSink, error) {
	u, err := url.Parse(spec.URL)
	if err != nil {
		return nil, fmt.Errorf("sink %q: url: %w", spec.Name, err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"mqtt": "1883", "mqtts": "8883"}[u.Scheme]
	}
	broker := u.Scheme + "://" + u.Hostname() + ":" + port
	if strings.Contains(u.Hostname(), ":") {
		broker = u.Scheme + "://[" + u.Hostname() + "]:" + port
	}
	m := &mqttSink{spec: spec, st: st, log: log, wakeC: make(chan struct{}, 1),
		states: map[string]*streamState{}, announced: map[string]bool{}}
	o := mqtt.NewClientOptions().AddBroker(broker).
		SetClientID(spec.ClientID).
		SetUsername(spec.Username).SetPassword(spec.Password).
		// The log keeps what is not acknowledged, not the client: a
		// clean session, and every publish waited for.
		SetCleanSession(true).
		SetStore(noStore{}).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(spec.Timeout).
		SetWriteTimeout(spec.Timeout).
		SetKeepAlive(30 * time.Second).
		SetOnConnectHandler(func(mqtt.Client) {
			m.dialErr.Store(nil)
			m.connected.Store(true)
			st.up.Store(true)
			log.Info("connected to the MQTT broker", "broker", spec.Target())
			select {
			case m.wakeC <- struct{}{}:
			default:
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			st.up.Store(false)
			st.setErr(fmt.Errorf("mqtt %s: connection lost: %w", spec.Target(), err))
			log.Warn("lost the MQTT broker", "broker", spec.Target(), "err", err)
		})
	tlsConfig := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	// Dialled here, not by the client: no proxy from the environment, and
	// the address is checked against allowed_hosts after resolution.
	o.SetCustomOpenConnectionFn(func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
		d := allowed.Dialer(u.Hostname())
		d.Timeout = spec.Timeout
		var c net.Conn
		var err error
		if uri.Scheme == "mqtts" {
			c, err = tls.DialWithDialer(d, "tcp", uri.Host, tlsConfig)
		} else {
			c, err = d.Dial("tcp", uri.Host)
		}
		if err != nil {
			m.dialErr.Store(&err)
		}
		return c, err
	})
	m.client = mqtt.NewClient(o)
	// With ConnectRetry the client keeps trying in the background; the
	// token completes once connected, which nothing waits for.
	m.client.Connect()
	return m, nil
}

func (m *mqttSink) wantsAll() bool { return true }

// refresh publishes the retained messages again after a (re)connection:
// each stream's last state and, with home_assistant, its discovery.
func (m *mqttSink) refresh(ctx context.Context) {
	if !m.connected.Load() || !m.client.IsConnectionOpen() {
		return
	}
	m.connected.Store(false)
	for stream, st := range m.states {
		if st.published == nil {
			continue
		}
		if m.spec.HomeAssistant {
			if err := m.announce(ctx, stream); err != nil {
				m.connected.Store(true) // try again
				return
			}
		}
		if err := m.publish(ctx, m.topic(stream, "state"), true, st.published); err != nil {
			m.connected.Store(true)
			return
		}
	}
}
func (m *mqttSink) wake() <-chan struct{} { return m.wakeC }

func (m *mqttSink) close() {
	m.client.Disconnect(250)
	m.st.up.Store(false)
}

var errNotConnected = errors.New("not connected")

// publish sends one message at QoS 1 and waits for the broker's PUBACK.
func (m *mqttSink) publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	if !m.client.IsConnectionOpen() {
		if err := m.dialErr.Load(); err != nil {
			return fmt.Errorf("mqtt %s: %w: %w", m.spec.Target(), errNotConnected, *err)
		}
		return fmt.Errorf("mqtt %s: %w", m.spec.Target(), errNotConnected)
	}
	tok := m.client.Publish(topic, 1, retained, payload)
	t := time.NewTimer(m.spec.Timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
	case <-t.C:
		return fmt.Errorf("mqtt %s: no PUBACK for %s within %v", m.spec.Target(), topic, m.spec.Timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt %s: publish %s: %w", m.spec.Target(), topic, err)
	}
	return nil
}

func (m *mqttSink) topic(stream, leaf string) string {
	return m.spec.TopicPrefix + "/" + stream + "/" + leaf
}

func (m *mqttSink) deliver(ctx context.Context, d *delivery) error {
	stream := d.ev.GetStream()
	if d.pass {
		if err := m.publish(ctx, m.topic(stream, d.kind), false, d.body); err != nil {
			return err
		}
	}
	old := m.states[stream]
	if old == nil {
		old = &streamState{connection: "unknown"}
	}
	next := *old
	switch k := d.ev.Kind.(type) {
	case *actiondv1.Event_ActionStarted:
		next.action = k.ActionStarted
	case *actiondv1.Event_ActionEnded:
		if next.action == nil || next.action.GetActionId() == k.ActionEnded.GetActionId() {
			next.action = nil
		}
	case *actiondv1.Event_StreamStatus:
		next.connection = strings.ToLower(strings.TrimPrefix(k.StreamStatus.GetState().String(), "STREAM_STATE_"))
	default:
		return nil
	}
	m.refresh(ctx)
	changed := old.published == nil || (old.action == nil) != (next.action == nil) ||
		old.action.GetActionId() != next.action.GetActionId() || old.connection != next.connection
	if !changed {
		return nil
	}
	next.position = d.ev.GetPosition()
	payload, err := json.Marshal(next.json(stream))
	if err != nil {
		return err
	}
	if bytes.Equal(payload, old.published) {
		return nil
	}
	if m.spec.HomeAssistant && !m.announced[stream] {
		if err := m.announce(ctx, stream); err != nil {
			return err
		}
		m.announced[stream] = true
	}
	if err := m.publish(ctx, m.topic(stream, "state"), true, payload); err != nil {
		return err
	}
	next.published = payload
	m.states[stream] = &next
	return nil
}

func (s *streamState) json(stream string) StateJSON {
	j := StateJSON{Stream: stream, State: "idle", Connection: s.connection, Position: s.position}
	if a := s.action; a != nil {
		j.State = a.GetLabel()
		j.Action = &ActionJSON{ActionID: a.GetActionId(), Label: a.GetLabel(), Since: a.GetStartTime().AsTime().UTC(), PeakScore: a.GetPeakScore()}
	}
	return j
}

// announce publishes Home Assistant's discovery of the stream's sensor
// (retained): its state is the current action.
func (m *mqttSink) announce(ctx context.Context, stream string) error {
	id := "actiond_" + strings.NewReplacer(".", "_", "-", "_").Replace(m.spec.Name+"_"+stream)
	cfg := map[string]any{
		"name":                  stream + " action",
		"unique_id":             id,
		"object_id":             id,
		"state_topic":           m.topic(stream, "state"),
		"value_template":        "{{ value_json.state }}",
		"json_attributes_topic": m.topic(stream, "state"),
		"icon":                  "mdi:motion-sensor",
		"device": map[string]any{
			"identifiers":  []string{"actiond_" + m.spec.Name},
			"name":         "actiond",
			"manufacturer": "actiond",
		},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return m.publish(ctx, m.spec.DiscoveryPrefix+"/sensor/"+id+"/config", true, b)
}

// noStore keeps nothing: the client must not publish again by itself
// after a reconnect what the sink retries anyway (it would be sent twice,
// and the client's own resend races with its writer: the race detector
// caught it in TestMQTTBrokerOutage).
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
