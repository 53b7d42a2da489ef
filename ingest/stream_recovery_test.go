package ingest_test

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// intraRefreshClip encodes a test pattern with x264's periodic intra
// refresh, as cameras set to low-latency or "smart" encoding send it: one
// IDR at the start, then a column of intra blocks sweeping the picture, a
// recovery point SEI at the start of each sweep (every second here), and
// never another IDR. The clip starts at the first recovery point: a
// simulator looping it shows every reader, for ever, what a reader that
// joined after the camera's IDR sees. NAL units for which drop is true
// are left out.
func intraRefreshClip(t *testing.T, drop func(nalu []byte) bool) *h264Clip {
	t.Helper()
	ffmpeg := needTool(t, "ffmpeg")
	path := filepath.Join(t.TempDir(), "intra-refresh.h264")
	cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "4",
		"-c:v", "libx264", "-bf", "0", "-pix_fmt", "yuv420p",
		"-x264-params", "intra-refresh=1:keyint=25:aud=1", "-f", "h264", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	// Each access unit starts with an access unit delimiter (aud=1).
	var aus [][][]byte
	for _, n := range nalus {
		switch typ := nalType(ingest.CodecH264, n); {
		case typ == 9:
			aus = append(aus, nil)
		case len(aus) == 0:
			t.Fatal("the stream does not start with an access unit delimiter")
		default:
			aus[len(aus)-1] = append(aus[len(aus)-1], n)
		}
	}
	clip := &h264Clip{width: 160, height: 120, fps: 25}
	start := -1
	for i, au := range aus {
		for _, n := range au {
			switch nalType(ingest.CodecH264, n) {
			case ingest.H264NALSPS:
				clip.sps = n
			case ingest.H264NALPPS:
				clip.pps = n
			case ingest.H264NALIDR:
				if i > 0 {
					t.Fatalf("access unit %d is an IDR: not an intra-refresh stream", i)
				}
			}
		}
		if i > 0 && start < 0 && slices.ContainsFunc(au, isRecoverySEI) {
			start = i
		}
	}
	if start < 0 || clip.sps == nil || clip.pps == nil {
		t.Fatalf("no recovery point after the IDR (%d access units), or no SPS/PPS", len(aus))
	}
	for _, au := range aus[start:] {
		var kept [][]byte
		for _, n := range au {
			if drop == nil || !drop(n) {
				kept = append(kept, n)
			}
		}
		clip.aus = append(clip.aus, kept)
	}
	return clip
}

// isRecoverySEI reports whether an H.264 NAL unit is an SEI whose first
// message is a recovery point, as x264 writes them.
func isRecoverySEI(n []byte) bool {
	return len(n) > 1 && n[0]&0x1f == 6 && n[1] == 6
}

// h264Clip is an H.264 clip cut into access units, for Simulator.AddH264.
type h264Clip struct {
	width, height int
	fps           float64
	sps, pps      []byte
	aus           [][][]byte
}

// serveClip serves clip at a path of a new simulator and returns its URL.
func serveClip(t *testing.T, name string, clip *h264Clip) string {
	t.Helper()
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := sim.AddH264(name, clip.width, clip.height, clip.fps, clip.sps, clip.pps, clip.aus); err != nil {
		t.Fatal(err)
	}
	return sim.URL(name)
}

// A camera with periodic intra refresh sends its one IDR before a reader
// joins: the reader starts decoding at a recovery point SEI and windows
// come, whether the parameter sets come in band (x264 repeats them at each
// recovery point) or only in the SDP.
func TestStreamStartsAtRecoveryPoint(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		drop func([]byte) bool
	}{
		{"parameter sets in band", nil},
		{"parameter sets in the SDP only", func(n []byte) bool {
			typ := nalType(ingest.CodecH264, n)
			return typ == ingest.H264NALSPS || typ == ingest.H264NALPPS
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := serveClip(t, "refresh", intraRefreshClip(t, tt.drop))
			s := startStream(t, ingest.StreamConfig{URL: url, Transport: ingest.TransportTCP, Window: 2 * time.Second,
				ReadTimeout: 5 * time.Second}, nil)
			w := nextWindow(t, s, 30*time.Second)
			st := s.Status()
			t.Logf("%v; status %+v", &w, st)
			if st.State != ingest.StatePlaying || st.Reconnects != 0 || st.LastError != "" {
				t.Errorf("state %s after %d reconnects (%q), want playing", st.State, st.Reconnects, st.LastError)
			}
			if st.Width != 160 || st.Height != 120 || w.FramesKept < 8 {
				t.Errorf("%dx%d frames, %d kept in the window", st.Width, st.Height, w.FramesKept)
			}
		})
	}
}

// A camera that sends neither a key frame nor a recovery point gives no
// picture however long the reader waits: after the read timeout the stream
// is retrying and says why, instead of playing with no frames for ever.
func TestStreamWithoutKeyFrameRetries(t *testing.T) {
	t.Parallel()
	clip := intraRefreshClip(t, isRecoverySEI)
	url := serveClip(t, "no-key", clip)
	s := startStream(t, ingest.StreamConfig{URL: url, Transport: ingest.TransportTCP, Window: 2 * time.Second,
		ReadTimeout: 1500 * time.Millisecond, BackoffMin: time.Hour, BackoffMax: time.Hour}, nil)
	st := waitStatus(t, s, 20*time.Second, "retrying", func(st ingest.Status) bool { return st.State == ingest.StateRetrying })
	want := "read " + url + ": no decodable video: no key frame or recovery point in 1.5s"
	if st.LastError != want {
		t.Errorf("last error %q, want %q", st.LastError, want)
	}
	if st.AccessUnits == 0 || st.SkippedAUs == 0 || st.FramesDecoded != 0 {
		t.Errorf("%d access units, %d skipped, %d frames decoded; want video that never decodes",
			st.AccessUnits, st.SkippedAUs, st.FramesDecoded)
	}
}
