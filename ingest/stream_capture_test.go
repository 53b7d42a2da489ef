package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/auth"
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
