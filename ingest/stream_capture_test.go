package ingest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/auth"

	"github.com/actiond/actiond/internal/testenv"
)

// capture runs CaptureWindow with a 1s window and a bounded context.
func capture(t *testing.T, url string, cfg StreamConfig) (*WindowClip, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if cfg.Window == 0 {
		cfg.Window = time.Second
	}
	return CaptureWindow(ctx, url, cfg, liveModel(), nil)
}

// Credentials in the URL work with either authentication method, and
// rtsps works with a pinned self-signed certificate.
func TestCaptureWindowAuthAndTLS(t *testing.T) {
	t.Parallel()
	tlsConf, fingerprint := selfSigned(t)
	tests := []struct {
		name   string
		cam    testCameraConfig
		scheme string
		cfg    StreamConfig
	}{
		{"basic", testCameraConfig{methods: []auth.VerifyMethod{auth.VerifyMethodBasic}, user: "op", pass: "b4sic-pw"}, "rtsp", StreamConfig{}},
		{"digest", testCameraConfig{methods: []auth.VerifyMethod{auth.VerifyMethodDigestMD5}, user: "op", pass: "d1gest-pw"}, "rtsp", StreamConfig{}},
		{"rtsps with fingerprint", testCameraConfig{tls: tlsConf, user: "op", pass: "tls-pw"}, "rtsps", StreamConfig{TLSFingerprint: fingerprint}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cam := startTestCamera(t, tt.cam)
			clip, err := capture(t, tt.scheme+"://op:"+tt.cam.pass+"@"+cam.addr+"/live", tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v over %s", &clip.Window, clip.Transport)
			if clip.Duration() != time.Second || clip.FramesSeen != 16 || clip.Transport != "TCP" {
				t.Errorf("%v over %s", &clip.Window, clip.Transport)
			}
			// Wrong password: refused, and the error does not show it.
			_, err = capture(t, tt.scheme+"://op:n0t-it@"+cam.addr+"/live", tt.cfg)
			if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "n0t-it") {
				t.Errorf("wrong password: %v", err)
			}
		})
	}
	t.Run("rtsps without fingerprint", func(t *testing.T) {
		t.Parallel()
		cam := startTestCamera(t, testCameraConfig{tls: tlsConf})
		_, err := capture(t, "rtsps://"+cam.addr+"/live", StreamConfig{})
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("self-signed certificate accepted without a fingerprint: %v", err)
		}
		_, err = capture(t, "rtsps://"+cam.addr+"/live", StreamConfig{TLSFingerprint: strings.Repeat("ab", 32)})
		if err == nil || !strings.Contains(err.Error(), "does not match 'tls_fingerprint'") {
			t.Errorf("wrong fingerprint: %v", err)
		}
	})
}

// A camera that sends its parameter sets only in the SDP still decodes:
// the source puts them in front of every key frame.
func TestCaptureWindowParameterSetsFromSDP(t *testing.T) {
	t.Parallel()
	cam := startTestCamera(t, testCameraConfig{sdpOnly: true})
	clip, err := capture(t, "rtsp://"+cam.addr+"/live", StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if clip.FramesSeen != 16 || clip.Width != 160 {
		t.Errorf("%v, %dx%d", &clip.Window, clip.Width, clip.Height)
	}
}

// A camera that changes resolution mid-stream (a new SPS in band) keeps
// the stream going: same epoch, no errors, windows at the new size.
func TestStreamResolutionChange(t *testing.T) {
	t.Parallel()
	cam := startTestCamera(t, testCameraConfig{resize: true})
	s := startStream(t, StreamConfig{URL: "rtsp://" + cam.addr + "/live", Window: time.Second, Stride: time.Second}, nil)
	sizes := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(sizes) < 2 {
		select {
		case <-s.Windows():
			st := s.Status()
			sizes[fmt.Sprintf("%dx%d", st.Width, st.Height)] = true
		case <-deadline:
			t.Fatalf("sizes seen %v; status %+v", sizes, s.Status())
		}
	}
	st := s.Status()
	t.Logf("sizes %v; status %+v", sizes, st)
	if !sizes["160x120"] || !sizes["320x180"] || st.Epoch != 1 || st.DecodeErrors != 0 || st.Reconnects != 0 {
		t.Errorf("sizes %v, epoch %d, %d decode errors, %d reconnects", sizes, st.Epoch, st.DecodeErrors, st.Reconnects)
	}
}

// A camera whose SDP carries H.265 parameter sets that the RTSP library
// refuses (several values in one sprop attribute, as RFC 7798 allows; one
// that is not base64; an SPS it cannot parse) still plays: the attribute
// is ignored, with a warning naming it, the values that decode go to the
// decoder, and the parameter sets in band do the rest.
func TestStreamH265UnusableSpropFallsBack(t *testing.T) {
	ffmpeg := testenv.FFmpegEncoder(t, "libx265")
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cam.h265")
	cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=16", "-t", "2",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=16:bframes=0:repeat-headers=1",
		"-f", "hevc", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	aus := splitH265(t, data, 16)
	var vps, sps, pps string
	for _, n := range aus[0].nalus {
		b := base64.StdEncoding.EncodeToString(n)
		switch nalType(CodecH265, n) {
		case h265NALVPS:
			vps = b
		case h265NALSPS:
			sps = b
		case h265NALPPS:
			pps = b
		}
	}
	garbage := base64.StdEncoding.EncodeToString([]byte{33 << 1, 1, 0xff, 0xff})
	for _, tt := range []struct {
		name, attribute string
		fmtp            map[string]string
	}{
		{"two SPS values", "sprop-sps: 2 values",
			map[string]string{"sprop-vps": vps, "sprop-sps": sps + "," + sps, "sprop-pps": pps}},
		{"a PPS that is not base64", "sprop-pps: not base64: %%%",
			map[string]string{"sprop-vps": vps, "sprop-sps": sps, "sprop-pps": "%%%"}},
		{"an SPS the library cannot parse", "sprop-sps: a parameter set the RTSP library cannot parse",
			map[string]string{"sprop-vps": vps, "sprop-sps": garbage, "sprop-pps": pps}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cam := startTestCamera(t, testCameraConfig{h265: aus, fmtp: tt.fmtp})
			logs, log := newLogBuffer(t)
			s := startStream(t, StreamConfig{URL: "rtsp://" + cam.addr + "/cam", Transport: TransportTCP, Window: 2 * time.Second}, log)
			w := nextWindow(t, s, 30*time.Second)
			st := s.Status()
			t.Logf("%v; status %+v", &w, st)
			if st.Codec != CodecH265 || st.Width != 160 || st.Height != 120 || st.Reconnects != 0 {
				t.Errorf("%s %dx%d after %d reconnects", st.Codec, st.Width, st.Height, st.Reconnects)
			}
			if !strings.Contains(logs.String(), tt.attribute) {
				t.Errorf("no warning naming %q in the log:\n%s", tt.attribute, logs)
			}
		})
	}
}
