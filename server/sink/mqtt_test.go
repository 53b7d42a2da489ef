package sink

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// brokerOutage is how long TestMQTTBrokerOutage keeps the broker down.
const brokerOutage = 30 * time.Second

func TestMQTTTopicsAndState(t *testing.T) {
	b := startBroker(t)
	l := openLog(t, t.TempDir())
	rd := newReader(t, b, "#")
	m := NewManager(l.js, testLogger(t))
	defer m.Close()
	spec := settled(t, Spec{Name: "plc", Type: "mqtt", URL: b.url(), HomeAssistant: true})
	if err := m.Apply([]Spec{spec}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the sink's consumer", func() bool { return m.List()[0].Up })

	status := &actiondv1.Event{Stream: "dock.3", Sequence: 1, Kind: &actiondv1.Event_StreamStatus{StreamStatus: &actiondv1.StreamStatus{State: actiondv1.StreamState_STREAM_STATE_PLAYING}}}
	window := &actiondv1.Event{Stream: "dock.3", Sequence: 2, Kind: &actiondv1.Event_WindowResult{WindowResult: &actiondv1.WindowResult{Top: []*actiondv1.LabelScore{{Label: "moving_left", Score: 0.9}}}}}
	evs := []*actiondv1.Event{status, window, started("dock.3", "a1", "moving_left", 3), ended("dock.3", "a1", "moving_left", 4), started("dock.3", "a2", "moving_right", 5)}
	// The consumer starts at the log's end: wait until it exists.
	waitFor(t, 20*time.Second, "consumer", func() bool { _, err := l.js.Consumer(t.Context(), eventlog.StreamName, "plc"); return err == nil })
	var pos []uint64
	for _, ev := range evs {
		pos = append(pos, l.append(t, ev))
	}
	waitFor(t, 20*time.Second, "moving_right in the state", func() bool {
		for _, r := range rd.all() {
			if r.topic == "actiond/dock.3/state" && strings.Contains(string(r.payload), `"state":"moving_right"`) {
				return true
			}
		}
		return false
	})
	var events, states []received
	var discovery []received
	for _, r := range rd.all() {
		switch {
		case strings.HasSuffix(r.topic, "/state"):
			states = append(states, r)
		case strings.HasPrefix(r.topic, "homeassistant/"):
			discovery = append(discovery, r)
		default:
			events = append(events, r)
		}
	}
	// Only started and ended (the default kinds) go out, with the JSON of
	// actionctl watch --json plus their position.
	if len(events) != 3 {
		t.Fatalf("got %d events, want the 3 actions: %v", len(events), events)
	}
	for i, want := range []struct {
		topic string
		ev    *actiondv1.Event
		pos   uint64
	}{{"actiond/dock.3/started", evs[2], pos[2]}, {"actiond/dock.3/ended", evs[3], pos[3]}, {"actiond/dock.3/started", evs[4], pos[4]}} {
		got := events[i]
		if got.topic != want.topic || got.retained {
			t.Errorf("event %d on %s (retained %v), want %s", i, got.topic, got.retained, want.topic)
		}
		var ev actiondv1.Event
		if err := protojson.Unmarshal(got.payload, &ev); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, got.payload)
		}
		if ev.GetPosition() != want.pos || !ev.GetLogged() || ev.GetStream() != "dock.3" ||
			ev.GetActionStarted().GetLabel()+ev.GetActionEnded().GetLabel() != want.ev.GetActionStarted().GetLabel()+want.ev.GetActionEnded().GetLabel() {
			t.Errorf("event %d: %s, want position %d of %v", i, got.payload, want.pos, want.ev)
		}
		if !strings.Contains(string(got.payload), `"position":"`+strconv.FormatUint(want.pos, 10)+`"`) || !strings.Contains(string(got.payload), `"action_id"`) {
			t.Errorf("event %d: %s: want .proto field names and the position", i, got.payload)
		}
	}
	var seen []string
	for _, s := range states {
		var st StateJSON
		if err := json.Unmarshal(s.payload, &st); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, st.State+"/"+st.Connection)
	}
	if want := []string{"idle/playing", "moving_left/playing", "idle/playing", "moving_right/playing"}; !slices.Equal(seen, want) {
		t.Errorf("states %v, want %v", seen, want)
	}
	if len(discovery) != 1 || !strings.Contains(string(discovery[0].payload), `"state_topic":"actiond/dock.3/state"`) {
		t.Errorf("home assistant discovery: %s", discovery)
	}
	// A newcomer gets the retained state and discovery at once.
	late := newReader(t, b, "#")
	waitFor(t, 10*time.Second, "the retained messages", func() bool { return len(late.all()) >= 2 })
	for _, r := range late.all() {
		if !r.retained {
			t.Errorf("%s: not retained", r.topic)
		}
		if r.topic == "actiond/dock.3/state" && (!strings.Contains(string(r.payload), `"state":"moving_right"`) || !strings.Contains(string(r.payload), `"label":"moving_right"`)) {
			t.Errorf("retained state: %s", r.payload)
		}
	}
	if s := m.List()[0]; s.Delivered != 3 || s.AckedPosition != pos[4] || s.Pending != 0 || s.Target != b.url() {
		t.Errorf("ListSinks: %v", s)
	}
}

// TestMQTTBrokerOutage stops the broker for brokerOutage while actions
// keep coming on two streams: afterwards every one of them arrives, in
// order per stream, and a duplicate is only ever the delivery that was in
// flight (unacknowledged) when the broker went.
func TestMQTTBrokerOutage(t *testing.T) {
	b := startBroker(t)
	l := openLog(t, t.TempDir())
	rd := newReader(t, b, "actiond/#")
	m := NewManager(l.js, testLogger(t))
	defer m.Close()
	spec := settled(t, Spec{Name: "outage", Type: "mqtt", URL: b.url()})
	if err := m.Apply([]Spec{spec}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "connected", func() bool { return m.List()[0].Up })
	waitFor(t, 20*time.Second, "consumer", func() bool { _, err := l.js.Consumer(t.Context(), eventlog.StreamName, "outage"); return err == nil })

	streams := []string{"dock-1", "dock-2"}
	var want []uint64 // positions of the actions, in log order
	stream := map[uint64]string{}
	n := 0
	emit := func() {
		s := streams[n%2]
		id := fmt.Sprintf("%s-%d", s, n/4)
		var ev *actiondv1.Event
		if (n/2)%2 == 0 {
			ev = started(s, id, "moving_left", uint64(n))
		} else {
			ev = ended(s, id, "moving_left", uint64(n))
		}
		p := l.append(t, ev)
		want = append(want, p)
		stream[p] = s
		n++
	}
	tick := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			emit()
			time.Sleep(200 * time.Millisecond)
		}
	}
	tick(2 * time.Second)
	b.stop()
	outageStart := len(want)
	tick(brokerOutage)
	during := len(want) - outageStart
	b.start()
	tick(2 * time.Second)

	got := func() map[uint64]int {
		c := map[uint64]int{}
		for _, r := range rd.all() {
			if strings.HasSuffix(r.topic, "/state") {
				continue
			}
			var ev actiondv1.Event
			if err := protojson.Unmarshal(r.payload, &ev); err != nil {
				t.Fatalf("%s: %v", r.payload, err)
			}
			c[ev.GetPosition()]++
		}
		return c
	}
	waitFor(t, 2*time.Minute, "every action", func() bool {
		c := got()
		for _, p := range want {
			if c[p] == 0 {
				return false
			}
		}
		return true
	})
	// In order per stream: the first arrival of each position.
	last := map[string]uint64{}
	firstSeen := map[uint64]bool{}
	var dups []uint64
	for _, r := range rd.all() {
		if strings.HasSuffix(r.topic, "/state") {
			continue
		}
		var ev actiondv1.Event
		_ = protojson.Unmarshal(r.payload, &ev)
		p := ev.GetPosition()
		if firstSeen[p] {
			dups = append(dups, p)
			continue
		}
		firstSeen[p] = true
		if p < last[ev.GetStream()] {
			t.Errorf("stream %s: position %d after %d", ev.GetStream(), p, last[ev.GetStream()])
		}
		last[ev.GetStream()] = p
		if r.topic != "actiond/"+stream[p]+"/"+kindOf(&ev) {
			t.Errorf("position %d on %s", p, r.topic)
		}
	}
	s := m.List()[0]
	t.Logf("outage %v: %d actions during it, %d in all, all delivered; %d duplicates %v; retries %d", brokerOutage, during, len(want), len(dups), dups, s.Retries)
	// Only the publish in flight when the broker went can be duplicated.
	if len(dups) > 1 {
		t.Errorf("duplicates %v: more than the one delivery in flight at the outage", dups)
	}
	if s.Delivered < uint64(len(want)) || s.Retries == 0 || !s.Up || s.LastError == "" {
		t.Errorf("ListSinks after the outage: %v", s)
	}
}

// TestMQTTRetainedAfterBrokerRestart: a broker restarted without its
// retained messages gets the stream's state (and Home Assistant's
// discovery) again once the sink reconnects, with no new event.
func TestMQTTRetainedAfterBrokerRestart(t *testing.T) {
	b := startBrokerWith(t, false)
	l := openLog(t, t.TempDir())
	m := NewManager(l.js, testLogger(t))
	defer m.Close()
	if err := m.Apply([]Spec{settled(t, Spec{Name: "ha", Type: "mqtt", URL: b.url(), HomeAssistant: true})}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "consumer", func() bool {
		_, err := l.js.Consumer(t.Context(), eventlog.StreamName, "ha")
		return err == nil
	})
	l.append(t, started("dock-1", "a1", "welding", 1))
	waitFor(t, 20*time.Second, "the delivery", func() bool { return m.List()[0].Delivered == 1 })
	b.stop()
	b.start()
	rd := newReader(t, b, "#")
	waitFor(t, 30*time.Second, "the retained state and discovery again", func() bool {
		var state, discovery bool
		for _, r := range rd.all() {
			state = state || r.topic == "actiond/dock-1/state" && strings.Contains(string(r.payload), `"state":"welding"`)
			discovery = discovery || strings.HasPrefix(r.topic, "homeassistant/sensor/")
		}
		return state && discovery
	})
}
