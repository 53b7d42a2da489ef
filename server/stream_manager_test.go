package server

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// A saved stream that a start cannot restore (its name is now a configured
// stream, it fails validation after a configuration change, it is over
// max_streams) stays in the state file as it was through every start and
// every save while the conflict lasts, is logged with the reason at each
// start, and is watched again at the first start after the conflict is
// gone.
func TestSavedStreamNotRestoredIsKept(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		conflict func(cfg *Config)
		reason   string
	}{
		"name configured": {
			conflict: func(cfg *Config) {
				cfg.Streams = []StreamSpec{{Name: "cam", URL: "rtsp://127.0.0.1:1/configured", Enabled: ptr(false)}}
			},
			reason: "the configuration has a stream of the same name",
		},
		"invalid after a config change": {
			// cam's off_threshold 0.5 is above the new default on_threshold.
			conflict: func(cfg *Config) { cfg.Actions = ActionsConfig{OnThreshold: 0.45, OffThreshold: 0.3} },
			reason:   "off_threshold: (0.5) must not be above on_threshold (0.45)",
		},
		"over max_streams": {
			conflict: func(cfg *Config) { cfg.MaxStreams = 1 },
			reason:   "over max_streams (1)",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t, 60*time.Second)
			base := Config{StateFile: filepath.Join(t.TempDir(), "state.yaml")}

			// a-first is restored in every start (the file is in name order,
			// so it takes the one slot of max_streams 1); cam is the one in
			// conflict.
			first := startServer(t, base)
			for _, a := range []*actiondv1.AddStreamRequest{
				{Name: "a-first", Url: "rtsp://127.0.0.1:1/a", Options: &actiondv1.StreamOptions{Enabled: ptr(false)}},
				{Name: "cam", Url: "rtsp://user:pw1234@127.0.0.1:1/saved", Options: &actiondv1.StreamOptions{
					Enabled: ptr(false), OffThreshold: ptr[float32](0.5), Window: dur(5 * time.Second)}},
			} {
				if _, err := first.streams.AddStream(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			savedCam := savedStream(t, base.StateFile, "cam")

			conflicting := base
			tc.conflict(&conflicting)
			for start := range 2 {
				ts := startServer(t, conflicting)
				if logs := ts.logs.String(); !strings.Contains(logs, `msg="state file stream not restored: kept in the file, tried again at the next start" component=streams stream=cam reason="`+tc.reason) {
					t.Errorf("start %d with the conflict: no log line that cam is not restored because %s", start+1, tc.reason)
				}
				if _, ok := findStream(listAll(t, ctx, ts), "cam"); ok != (name == "name configured") {
					t.Errorf("start %d with the conflict: cam watched: %v", start+1, ok)
				}
				// A save while the conflict lasts writes cam back as it was.
				if _, err := ts.streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "a-first",
					Options: &actiondv1.StreamOptions{TopK: ptr[uint32](uint32(2 + start))}}); err != nil {
					t.Fatal(err)
				}
				if got := savedStream(t, base.StateFile, "cam"); !reflect.DeepEqual(got, savedCam) {
					t.Errorf("start %d with the conflict: the state file has cam as %+v, want it untouched: %+v", start+1, got, savedCam)
				}
				if name != "name configured" {
					// The API says why it is not there.
					_, err := ts.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: "cam"})
					wantCode(t, "GetStream cam", err, codes.NotFound)
					err = update(ctx, ts, &actiondv1.UpdateStreamRequest{Name: "cam", Options: &actiondv1.StreamOptions{TopK: ptr[uint32](1)}})
					wantCode(t, "UpdateStream cam", err, codes.NotFound, "not restored", tc.reason)
					_, err = ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "cam", Url: "rtsp://127.0.0.1:1/other"})
					wantCode(t, "AddStream cam", err, codes.AlreadyExists, "not restored")
				}
				if err := ts.Close(); err != nil {
					t.Fatal(err)
				}
			}

			// The conflict is gone: cam is watched as it was saved.
			last := startServer(t, base)
			if strings.Contains(last.logs.String(), "not restored") {
				t.Errorf("a stream was not restored without a conflict:\n%s", last.logs)
			}
			cam, ok := findStream(listAll(t, ctx, last), "cam")
			if !ok {
				t.Fatal("cam not restored after the conflict is gone")
			}
			if o := cam.GetOptions(); cam.GetUrl() != "rtsp://***@127.0.0.1:1/saved" || o.GetOffThreshold() != 0.5 || o.GetWindow().AsDuration() != 5*time.Second || o.GetEnabled() {
				t.Errorf("cam restored as %v, want the saved stream", cam)
			}
			if a, _ := findStream(listAll(t, ctx, last), "a-first"); a.GetOptions().GetTopK() != 3 {
				t.Errorf("a-first restored as %v, want its last change (top_k 3)", a)
			}
			if got := savedStream(t, base.StateFile, "cam"); !reflect.DeepEqual(got, savedCam) {
				t.Errorf("the state file has cam as %+v, want %+v", got, savedCam)
			}
		})
	}
}

// A saved stream that is not restored can be forgotten with RemoveStream;
// with the conflict gone it does not come back.
func TestRemoveSavedStreamNotRestored(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	base := Config{StateFile: filepath.Join(t.TempDir(), "state.yaml")}
	first := startServer(t, base)
	for _, n := range []string{"a-first", "cam"} {
		if _, err := first.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: n, Url: "rtsp://127.0.0.1:1/" + n,
			Options: &actiondv1.StreamOptions{Enabled: ptr(false)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	full := base
	full.MaxStreams = 1
	second := startServer(t, full)
	if err := remove(ctx, second, "cam"); err != nil {
		t.Fatalf("RemoveStream of a saved stream not restored: %v", err)
	}
	wantCode(t, "RemoveStream cam again", remove(ctx, second, "cam"), codes.NotFound)
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	saved, err := NewStateFile(base.StateFile).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) != 1 || saved[0].Name != "a-first" {
		t.Errorf("state file %+v, want a-first only", saved)
	}
}

// A change that the state file cannot keep is not made: UpdateStream,
// RemoveStream and AddStream fail, the server watches what it watched,
// the file is as it was, and a restart brings back the same streams.
func TestFailedStateSaveChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := Config{StateFile: filepath.Join(dir, "state.yaml")}
	ts := startServer(t, cfg)
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "cam", Url: "rtsp://127.0.0.1:1/cam",
		Options: &actiondv1.StreamOptions{Enabled: ptr(false), TopK: ptr[uint32](2)}}); err != nil {
		t.Fatal(err)
	}
	before := listAll(t, ctx, ts)
	file, err := os.ReadFile(cfg.StateFile)
	if err != nil {
		t.Fatal(err)
	}

	// The directory goes away (a disk unmounted, a volume lost): every
	// write of the file fails. It works the same for root, unlike a
	// read-only directory.
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	err = update(ctx, ts, &actiondv1.UpdateStreamRequest{Name: "cam", Options: &actiondv1.StreamOptions{TopK: ptr[uint32](4), Enabled: ptr(true)}})
	wantCode(t, "UpdateStream with the state file unwritable", err, codes.Internal, "keep streams in")
	wantCode(t, "RemoveStream with the state file unwritable", remove(ctx, ts, "cam"), codes.Internal, "keep streams in")
	_, err = ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "new", Url: "rtsp://127.0.0.1:1/new"})
	wantCode(t, "AddStream with the state file unwritable", err, codes.Internal, "keep streams in")
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}

	after := listAll(t, ctx, ts)
	if len(after) != 1 || after[0].GetOptions().GetTopK() != 2 || after[0].GetOptions().GetEnabled() ||
		after[0].GetStatus().GetState() != actiondv1.StreamState_STREAM_STATE_DISABLED {
		t.Errorf("after the failed changes the server watches %v, want cam as before: %v", after, before)
	}
	if got, err := os.ReadFile(cfg.StateFile); err != nil || string(got) != string(file) {
		t.Errorf("state file after the failed changes (%v):\n%s\nwant as before:\n%s", err, got, file)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	restarted := listAll(t, ctx, startServer(t, cfg))
	if len(restarted) != 1 || restarted[0].GetName() != "cam" || restarted[0].GetOptions().GetTopK() != 2 {
		t.Errorf("after a restart %v, want cam as before", restarted)
	}
}

func savedStream(t *testing.T, path, name string) StreamSpec {
	t.Helper()
	saved, err := NewStateFile(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range saved {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("the state file %s has no stream %q: %+v", path, name, saved)
	return StreamSpec{}
}

func findStream(list []*actiondv1.Stream, name string) (*actiondv1.Stream, bool) {
	for _, s := range list {
		if s.GetName() == name {
			return s, true
		}
	}
	return nil, false
}
