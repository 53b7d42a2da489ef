package ingest

import (
	"strings"
	"testing"
	"time"
)

// The stride is rounded up to whole slots and reported; bad keys are named.
func TestStreamConfig(t *testing.T) {
	s, err := NewStream(StreamConfig{Name: "x", URL: "rtsp://cam/x", Stride: time.Second}, liveModel(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Stride != 1250*time.Millisecond || st.Window != 10*time.Second {
		t.Errorf("stride 1s gives %v (window %v), want 1.25s", st.Stride, st.Window)
	}
	s.Close()
	for _, w := range []struct {
		stride, want time.Duration
	}{{0, 1250 * time.Millisecond}, {625 * time.Millisecond, 625 * time.Millisecond}, {626 * time.Millisecond, 1250 * time.Millisecond}, {30 * time.Second, 30 * time.Second}} {
		set, err := StreamConfig{Name: "x", URL: "rtsp://cam/x", Stride: w.stride}.settle(liveModel())
		if err != nil || set.Stride != w.want {
			t.Errorf("stride %v: got %v, %v; want %v", w.stride, set.Stride, err, w.want)
		}
	}
	m := liveModel()
	m.WindowSeconds = 8
	if set, _ := (StreamConfig{Name: "x", URL: "rtsp://cam/x"}).settle(m); set.Window != 8*time.Second || set.grid.slot != 500*time.Millisecond {
		t.Errorf("model window 8s: got window %v slot %v", set.Window, set.grid.slot)
	}

	_, err = NewStream(StreamConfig{URL: "http://admin:hunter22@cam/x", Transport: "quic", Window: time.Millisecond,
		Stride: -1, BackoffMin: 5 * time.Second, BackoffMax: time.Second, QueueSize: -3, TLSFingerprint: "abc"}, liveModel(), nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	t.Log(err)
	for _, key := range []string{"'name'", "'url' must start with rtsp://", "'transport'", "'window'", "'stride'", "'backoff_max'", "'queue_size'", "'tls_fingerprint'"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s", key)
		}
	}
	if strings.Contains(err.Error(), "hunter22") {
		t.Error("error shows the password")
	}
}
