package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rtsp://cam.local:554/stream1", "rtsp://cam.local:554/stream1"},
		{"rtsp://admin:s3cret@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"},
		{"rtsps://admin@cam/x", "rtsps://***@cam/x"},
		{"rtsp://u:p%40ss@cam/x?channel=1", "rtsp://***@cam/x?channel=1"},
		{"rtsp://u:p@ss@cam/x", "rtsp://***@cam/x"},        // unescaped @ in the password
		{"rtsp://u:pa/ss@cam/x", "rtsp://***@cam/x"},       // unescaped / in the password
		{"rtsp://u:12/ss@cam/live", "rtsp://***@cam/live"}, // ... that parses as a port
		{"rtsp://[::1]:8554/x", "rtsp://[::1]:8554/x"},     //
		{"rtsp://cam/x?user=admin&password=hunter2&channel=1", // Dahua-style
			"rtsp://cam/x?user=***&password=***&channel=1"},
		{"rtsp://cam/h264?Token=abc&res=hd", "rtsp://cam/h264?Token=***&res=hd"},
		{"not a url", "not a url"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactErr(t *testing.T) {
	u, _ := url.Parse("rtsp://admin:hunter22@cam:554/x")
	base := errors.New("dial: lookup admin:hunter22@cam failed; password hunter22; rtsp://admin:hunter22@cam:554/x")
	err := redactErr(base, u)
	if strings.Contains(err.Error(), "hunter22") {
		t.Errorf("redacted error still shows the password: %v", err)
	}
	if !errors.Is(err, base) {
		t.Error("redacted error does not wrap the original")
	}
	t.Log(err)
	plain := errors.New("connection refused")
	if redactErr(plain, u) != plain {
		t.Error("an error without credentials was rewrapped")
	}
	// Short passwords are only taken out of URLs, not out of words.
	short, _ := url.Parse("rtsp://a:on@cam/x")
	if got := redactErr(errors.New("connection refused"), short).Error(); got != "connection refused" {
		t.Errorf("got %q", got)
	}
}

func TestRandomAccessAndParameterSets(t *testing.T) {
	sps, pps, idr, p := []byte{0x67, 1}, []byte{0x68, 2}, []byte{0x65, 3}, []byte{0x41, 4}
	if !isRandomAccess(CodecH264, [][]byte{sps, pps, idr}) || isRandomAccess(CodecH264, [][]byte{p}) {
		t.Error("H.264 random access")
	}
	var ps paramSets
	ps.set(CodecH264, [][]byte{sps, pps})
	if got := fmt.Sprint(ps.prepend(CodecH264, [][]byte{idr})); got != fmt.Sprint([][]byte{sps, pps, idr}) {
		t.Errorf("IDR without parameter sets became %v", got)
	}
	// New in-band parameter sets (a resolution change) replace the SDP's.
	sps2 := []byte{0x67, 9}
	ps.update(CodecH264, [][]byte{sps2, pps, idr})
	if got := fmt.Sprint(ps.prepend(CodecH264, [][]byte{idr})); got != fmt.Sprint([][]byte{sps2, pps, idr}) {
		t.Errorf("after an in-band SPS: %v", got)
	}
	if got := ps.prepend(CodecH264, [][]byte{sps2, pps, idr}); len(got) != 3 {
		t.Errorf("complete access unit grew to %d NAL units", len(got))
	}

	// Recovery point SEIs (intra refresh): alone, after another message
	// (pic timing, 2 bytes), after one whose type and size take 0xff
	// runs, and with an emulation prevention byte; not user data alone.
	for _, sei := range [][]byte{
		{0x06, 6, 1, 0x84, 0x80},
		{0x06, 1, 2, 0xaa, 0xbb, 6, 1, 0x84, 0x80},
	} {
		if !isRandomAccess(CodecH264, [][]byte{sei, p}) {
			t.Errorf("H.264 access unit with SEI %x is a recovery point", sei)
		}
	}
	userData := append([]byte{0x06, 5, 20}, bytes.Repeat([]byte{6}, 20)...)
	long := append(append([]byte{0x06, 0xff, 1, 0xff, 1}, bytes.Repeat([]byte{6}, 256)...), 6, 1, 0x84, 0x80)
	escaped := []byte{0x06, 5, 4, 0, 0, 3, 1, 9, 6, 1, 0x84, 0x80} // payload 00 00 01 09 once unescaped
	if isRandomAccess(CodecH264, [][]byte{userData, p}) || isRandomAccess(CodecH264, [][]byte{{0x06, 6}}) {
		t.Error("H.264 SEI without a recovery point taken for one")
	}
	if !isRandomAccess(CodecH264, [][]byte{long, p}) || !isRandomAccess(CodecH264, [][]byte{escaped, p}) {
		t.Error("H.264 recovery point after a long or escaped SEI message missed")
	}
	if !isRandomAccess(CodecH265, [][]byte{{39 << 1, 1, 6, 1, 0x84, 0x80}, {1 << 1, 1}}) ||
		isRandomAccess(CodecH265, [][]byte{{40 << 1, 1, 6, 1, 0x84, 0x80}}) {
		t.Error("H.265 recovery point in a prefix SEI (not a suffix one)")
	}

	vps, hsps, hpps := []byte{32 << 1, 1}, []byte{33 << 1, 1}, []byte{34 << 1, 1}
	cra, idrN, bla, trail := []byte{21 << 1, 1}, []byte{20 << 1, 1}, []byte{16 << 1, 1}, []byte{1 << 1, 1}
	for _, nal := range [][]byte{cra, idrN, bla} {
		if !isRandomAccess(CodecH265, [][]byte{nal}) {
			t.Errorf("H.265 NAL type %d is a random access point", nal[0]>>1)
		}
	}
	if isRandomAccess(CodecH265, [][]byte{trail}) {
		t.Error("H.265 trailing picture taken for random access")
	}
	var hs paramSets
	hs.set(CodecH265, [][]byte{vps, hsps, hpps})
	if got := hs.prepend(CodecH265, [][]byte{cra}); len(got) != 4 || got[0][0]>>1 != 32 {
		t.Errorf("H.265 CRA became %v", got)
	}
}

func TestTicksToDuration(t *testing.T) {
	for _, tt := range []struct {
		ticks int64
		want  time.Duration
	}{{0, 0}, {90000, time.Second}, {3600, 40 * time.Millisecond}, {90000 * 86400 * 30, 30 * 24 * time.Hour}} {
		if got := ticksToDuration(tt.ticks, 90000); got != tt.want {
			t.Errorf("%d ticks: %v, want %v", tt.ticks, got, tt.want)
		}
	}
}

// The access-unit queue never blocks the network read path: when the
// decoder does not keep up, units are dropped and counted, and the source
// skips to the next random access point.
func TestSourceQueueOverflow(t *testing.T) {
	var ctr sourceCounters
	s := &source{ctr: &ctr, aus: make(chan accessUnit, 2), track: videoTrack{codec: CodecH264}}
	s.waitKey.Store(true)
	idr := [][]byte{{0x67, 1}, {0x68, 2}, {0x65, 3}}
	p := [][]byte{{0x41, 4}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.onAU(p, 0, time.Time{})   // skipped: no key frame yet
		s.onAU(idr, 1, time.Time{}) // queued
		s.onAU(p, 2, time.Time{})   // queued
		s.onAU(p, 3, time.Time{})   // dropped: queue full
		s.onAU(p, 4, time.Time{})   // skipped: waiting for a key frame
		<-s.aus
		<-s.aus
		s.onAU(idr, 5, time.Time{}) // queued
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("onAU blocked")
	}
	if ctr.received.Load() != 6 || ctr.dropped.Load() != 1 || ctr.skipped.Load() != 2 || len(s.aus) != 1 {
		t.Errorf("received %d, dropped %d, skipped %d, queued %d; want 6, 1, 2, 1",
			ctr.received.Load(), ctr.dropped.Load(), ctr.skipped.Load(), len(s.aus))
	}
	if au := <-s.aus; au.pts != 5 || !au.random {
		t.Errorf("queued %+v", au)
	}
}

// Parameter sets are kept per kind and id: a camera that uses two PPS (or
// SPS) at once gets both in front of a random access point, and a new one
// replaces only the one with its id.
func TestParamSetsKeepEveryID(t *testing.T) {
	// H.264: SPS ids 0 and 1 (ue after 24 bits), PPS ids 0 and 1 (ue
	// first); the last byte tells versions apart.
	sps0 := []byte{0x67, 0x42, 0x00, 0x1e, 0x80, 0xa0}
	sps1 := []byte{0x67, 0x42, 0x00, 0x1e, 0x40, 0xa1}
	pps0 := []byte{0x68, 0xc0, 0x01}
	pps1 := []byte{0x68, 0x50, 0x02}
	pps1b := []byte{0x68, 0x50, 0x03}
	idr := []byte{0x65, 0x88}
	for _, tt := range []struct {
		n    []byte
		kind int
		id   int
	}{{sps0, 1, 0}, {sps1, 1, 1}, {pps0, 2, 0}, {pps1, 2, 1}, {[]byte{0x68}, 2, -1}, {[]byte{0x67, 0x42}, 1, -1}} {
		if k, id := paramKind(CodecH264, tt.n), paramSetID(CodecH264, tt.kind, tt.n); k != tt.kind || id != tt.id {
			t.Errorf("%x: kind %d id %d, want %d %d", tt.n, k, id, tt.kind, tt.id)
		}
	}
	// The encoder's own, as cameras send them.
	clip := newFuzzClip(t)
	if id, pid := paramSetID(CodecH264, 1, clip.sps), paramSetID(CodecH264, 2, clip.pps); id != 0 || pid != 0 {
		t.Errorf("libx264's SPS has id %d, its PPS %d; want 0 and 0", id, pid)
	}
	var ps paramSets
	ps.set(CodecH264, [][]byte{sps0, pps0})
	ps.update(CodecH264, [][]byte{pps1, {0x41, 1}})
	if got, want := ps.prepend(CodecH264, [][]byte{idr}), [][]byte{sps0, pps0, pps1, idr}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with PPS 0 and 1: %x, want %x", got, want)
	}
	ps.update(CodecH264, [][]byte{sps1, pps1b})
	if got, want := ps.prepend(CodecH264, [][]byte{pps0, idr}), [][]byte{sps0, sps1, pps1b, pps0, idr}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a new PPS 1: %x, want %x", got, want)
	}

	// H.265: VPS id (4 bits), SPS id (after the profile, tier and level),
	// PPS id.
	vps0, vps1 := []byte{0x40, 0x01, 0x0c, 0x01}, []byte{0x40, 0x01, 0x1c, 0x01}
	hsps := func(id byte) []byte {
		return append(append([]byte{0x42, 0x01, 0x01}, bytes.Repeat([]byte{0x11}, 12)...), id, 0x80)
	}
	hsps1, hsps2 := hsps(0x40), hsps(0x60) // ue 1 = 010, ue 2 = 011
	hpps0, hpps2 := []byte{0x44, 0x01, 0xc0}, []byte{0x44, 0x01, 0x60}
	for _, tt := range []struct {
		n    []byte
		kind int
		id   int
	}{{vps0, 0, 0}, {vps1, 0, 1}, {hsps1, 1, 1}, {hsps2, 1, 2}, {hpps0, 2, 0}, {hpps2, 2, 2}} {
		if k, id := paramKind(CodecH265, tt.n), paramSetID(CodecH265, tt.kind, tt.n); k != tt.kind || id != tt.id {
			t.Errorf("H.265 %x: kind %d id %d, want %d %d", tt.n, k, id, tt.kind, tt.id)
		}
	}
	var hs paramSets
	hs.set(CodecH265, [][]byte{vps1, hsps2, hpps2})
	hs.update(CodecH265, [][]byte{vps0, hsps1, hpps0})
	cra := []byte{21 << 1, 1, 0x80}
	if got, want := hs.prepend(CodecH265, [][]byte{cra}), [][]byte{vps0, vps1, hsps1, hsps2, hpps0, hpps2, cra}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("H.265: %x, want %x", got, want)
	}
}
