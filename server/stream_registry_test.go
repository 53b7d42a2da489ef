package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/nats-io/nats.go/jetstream"
)

// registryStreams returns the streams in the stream registry: ts's while
// it runs (ts not nil), else those kept in dataDir.
func registryStreams(t *testing.T, ts *testServer, dataDir string) []StreamSpec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var js jetstream.JetStream
	if ts != nil {
		js = ts.core.Load().events.log.JetStream()
	} else {
		l, err := eventlog.Open(ctx, eventlog.Config{DataDir: dataDir})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		js = l.JetStream()
	}
	kv, err := js.KeyValue(ctx, registryBucket)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := (&streamRegistry{kv: kv, last: map[string][]byte{}}).Load()
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// An existing state_file is imported into the stream registry at the first
// start, then left alone: later changes go to the registry only, and a
// later edit of the file is not read.
func TestStateFileImportedOnce(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	state := filepath.Join(t.TempDir(), "state.yaml")
	if err := NewStateFile(state).Save([]StreamSpec{{Name: "old", URL: "rtsp://user:pw55@127.0.0.1:1/old", TopK: 2, Enabled: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: t.TempDir(), StateFile: state}
	first := startServer(t, cfg)
	if got := listAll(t, ctx, first); len(got) != 1 || got[0].GetName() != "old" || got[0].GetOptions().GetTopK() != 2 {
		t.Fatalf("first start with a state file: %v", got)
	}
	if _, err := first.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "added", Url: "rtsp://127.0.0.1:1/new",
		Options: &actiondv1.StreamOptions{Enabled: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(state); string(got) != string(file) {
		t.Errorf("the state file changed after its import:\n%s", got)
	}
	// An edit of the file after the import is not read.
	if err := NewStateFile(state).Save([]StreamSpec{{Name: "late", URL: "rtsp://127.0.0.1:1/late"}}); err != nil {
		t.Fatal(err)
	}
	second := startServer(t, cfg)
	got := listAll(t, ctx, second)
	if len(got) != 2 || got[0].GetName() != "added" || got[1].GetName() != "old" || got[1].GetUrl() != "rtsp://***@127.0.0.1:1/old" {
		t.Errorf("second start: %v, want added and old from the registry", got)
	}
}

// A registry record written by a node of the next minor release, with a
// stream key this one does not know, is read: the key is left out. A
// record whose known keys are wrong is still refused.
func TestRegistryRecordOfANewerRelease(t *testing.T) {
	spec, err := decodeRegistrySpec([]byte("name: gate\nurl: rtsp://cam/1\nwindow: 10s\nzone: eu-1\nptz: {preset: 3}\n"))
	if err != nil || spec.Name != "gate" || spec.URL != "rtsp://cam/1" || spec.Window != 10*time.Second {
		t.Errorf("record with keys of a newer release: %+v, %v", spec, err)
	}
	if _, err := decodeRegistrySpec([]byte("name: gate\nurl: rtsp://cam/1\nwindow: soon\nzone: eu-1\n")); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("a wrong window: %v", err)
	}
}
