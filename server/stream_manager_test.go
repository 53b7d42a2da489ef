package server

import (
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
			base := Config{DataDir: t.TempDir()}

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
			savedCam := savedStream(t, nil, base.DataDir, "cam")

			conflicting := base
			tc.conflict(&conflicting)
			for start := range 2 {
				ts := startServer(t, conflicting)
				if logs := ts.logs.String(); !strings.Contains(logs, `msg="saved stream not restored: kept as saved, tried again at the next start" component=streams stream=cam reason="`+tc.reason) {
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
				if got := savedStream(t, ts, "", "cam"); !reflect.DeepEqual(got, savedCam) {
					t.Errorf("start %d with the conflict: the stream registry has cam as %+v, want it untouched: %+v", start+1, got, savedCam)
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
			if got := savedStream(t, last, "", "cam"); !reflect.DeepEqual(got, savedCam) {
				t.Errorf("the stream registry has cam as %+v, want %+v", got, savedCam)
			}
		})
	}
}

// A saved stream that is not restored can be forgotten with RemoveStream;
// with the conflict gone it does not come back.
func TestRemoveSavedStreamNotRestored(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	base := Config{DataDir: t.TempDir()}
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
	if saved := registryStreams(t, nil, base.DataDir); len(saved) != 1 || saved[0].Name != "a-first" {
		t.Errorf("stream registry %+v, want a-first only", saved)
	}
}

// A change that the stream registry cannot keep is not made: UpdateStream,
// RemoveStream and AddStream fail, the server watches what it watched, the
// registry is as it was, and a restart brings back the same streams.
func TestFailedStateSaveChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	cfg := Config{DataDir: t.TempDir()}
	ts := startServer(t, cfg)
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "cam", Url: "rtsp://127.0.0.1:1/cam",
		Options: &actiondv1.StreamOptions{Enabled: ptr(false), TopK: ptr[uint32](2)}}); err != nil {
		t.Fatal(err)
	}
	before := listAll(t, ctx, ts)
	saved := registryStreams(t, ts, "")

	// The registry's store refuses every write (as a full disk or a quota
	// would): its bucket takes no message over one byte.
	js := ts.core.Load().events.log.JetStream()
	kvStream, err := js.Stream(ctx, "KV_"+registryBucket)
	if err != nil {
		t.Fatal(err)
	}
	full := kvStream.CachedInfo().Config
	roomy := full
	full.MaxMsgSize = 1
	if _, err := js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	err = update(ctx, ts, &actiondv1.UpdateStreamRequest{Name: "cam", Options: &actiondv1.StreamOptions{TopK: ptr[uint32](4), Enabled: ptr(true)}})
	wantCode(t, "UpdateStream with the registry refusing writes", err, codes.Unavailable, "keep streams in")
	wantCode(t, "RemoveStream with the registry refusing writes", remove(ctx, ts, "cam"), codes.Unavailable, "keep streams in")
	_, err = ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "new", Url: "rtsp://127.0.0.1:1/new"})
	wantCode(t, "AddStream with the registry refusing writes", err, codes.Unavailable, "keep streams in")
	if _, err := js.UpdateStream(ctx, roomy); err != nil {
		t.Fatal(err)
	}

	after := listAll(t, ctx, ts)
	if len(after) != 1 || after[0].GetOptions().GetTopK() != 2 || after[0].GetOptions().GetEnabled() ||
		after[0].GetStatus().GetState() != actiondv1.StreamState_STREAM_STATE_DISABLED {
		t.Errorf("after the failed changes the server watches %v, want cam as before: %v", after, before)
	}
	if got := registryStreams(t, ts, ""); !reflect.DeepEqual(got, saved) {
		t.Errorf("stream registry after the failed changes %+v, want as before: %+v", got, saved)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	restarted := listAll(t, ctx, startServer(t, cfg))
	if len(restarted) != 1 || restarted[0].GetName() != "cam" || restarted[0].GetOptions().GetTopK() != 2 {
		t.Errorf("after a restart %v, want cam as before", restarted)
	}
}

// savedStream returns the stream registry's entry for name: ts's while
// it runs, else the one in dataDir.
func savedStream(t *testing.T, ts *testServer, dataDir, name string) StreamSpec {
	t.Helper()
	saved := registryStreams(t, ts, dataDir)
	for _, s := range saved {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("the stream registry has no stream %q: %+v", name, saved)
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
