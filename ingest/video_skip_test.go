package ingest

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// decodedFrame is one frame Decode handed on.
type decodedFrame struct {
	idx int
	pts time.Duration
	pix []byte
}

// decodeFrames decodes want from path: after CountFrames when counted (the
// path that skips pictures), else straight away (every picture decoded).
func decodeFrames(t *testing.T, path string, want []int, counted bool, tweak func(*VideoFile)) ([]decodedFrame, *VideoFile) {
	t.Helper()
	f, err := OpenVideoFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if counted {
		if _, err := f.CountFrames(); err != nil {
			t.Fatal(err)
		}
	}
	if tweak != nil {
		tweak(f)
	}
	var got []decodedFrame
	err = f.Decode(want, func(idx int, pts time.Duration, img *Image) error {
		got = append(got, decodedFrame{idx, pts, img.Pix})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, f
}

// sameFrames fails t unless a and b hold the same frames, byte for byte.
func sameFrames(t *testing.T, a, b []decodedFrame) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d frames, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i].idx != b[i].idx || a[i].pts != b[i].pts {
			t.Errorf("frame %d: index %d at %v, want %d at %v", i, a[i].idx, a[i].pts, b[i].idx, b[i].pts)
		}
		if n, maxDiff := byteDiff(a[i].pix, b[i].pix); n > 0 || len(a[i].pix) != len(b[i].pix) {
			t.Errorf("frame %d (index %d): %d bytes differ (max %d)", i, a[i].idx, n, maxDiff)
		}
	}
}

// Skipping pictures that no wanted frame depends on must not change a
// single byte of the wanted frames, nor which frame an index names: the
// decoded frames after CountFrames (skipping) equal those decoded without
// it (every picture decoded), which TestVideoFileDecodeMatchesFFmpeg
// checks against the ffmpeg CLI.
func TestVideoFileDecodeSkipsUnneededPictures(t *testing.T) {
	dir := t.TempDir()
	// Our writer: no B frames, a key frame every second, so only the
	// references after the last wanted frame of each second can go.
	scene := testScene{Width: 192, Height: 128, FPS: 25, Duration: 10 * time.Second, Direction: Right, Seed: 3}
	for _, name := range []string{"scene.mp4", "scene.ts"} {
		if err := scene.WriteFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path     string
		skips    bool // some packets are skipped for the sampled frames
		extra    [][]int
		minSkips int
	}{
		// 108 of its 280 pictures are non-reference B frames.
		{path: sharedClip(t, "arm_wrestling.mp4"), skips: true, minSkips: 60,
			extra: [][]int{{0}, {2, 3}, {279}, {1, 2, 3, 4, 5, 100, 200, 278, 279}}},
		{path: sharedClip(t, "archery_h264.mp4"), skips: true, minSkips: 10, extra: [][]int{{0, 299}}},
		// MPEG-4 part 2: no picture types read, nothing skipped.
		{path: sharedClip(t, "archery.avi"), extra: [][]int{{0, 130}}},
		{path: filepath.Join(dir, "scene.mp4"), skips: true, minSkips: 50, extra: [][]int{{24, 25, 26}, {249}}},
		{path: filepath.Join(dir, "scene.ts"), skips: true, minSkips: 50},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			f, err := OpenVideoFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := f.CountFrames()
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			sampled, err := SampleIndices(n, 16)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(sampled)
			sampled = slices.Compact(sampled)
			for i, want := range append([][]int{sampled}, tt.extra...) {
				plain, _ := decodeFrames(t, tt.path, want, false, nil)
				skipped, f := decodeFrames(t, tt.path, want, true, nil)
				sameFrames(t, skipped, plain)
				t.Logf("%v: read %d packets, skipped %d", want, f.PacketsRead(), f.PacketsSkipped())
				if i > 0 {
					continue
				}
				switch {
				case tt.skips && f.PacketsSkipped() < tt.minSkips:
					t.Errorf("skipped %d packets for the sampled frames, want at least %d", f.PacketsSkipped(), tt.minSkips)
				case !tt.skips && f.PacketsSkipped() != 0:
					t.Errorf("skipped %d packets of a codec whose picture types are not read", f.PacketsSkipped())
				}
			}
		})
	}
}

// When the decoder does not do what the packet index predicts, Decode
// drops the plan and decodes every picture, handing on each wanted frame
// once and unchanged.
func TestVideoFileDecodeSkipFallsBack(t *testing.T) {
	path := sharedClip(t, "arm_wrestling.mp4")
	want := []int{8, 25, 42, 263}
	plain, _ := decodeFrames(t, path, want, false, nil)
	for _, tc := range []struct {
		name  string
		tweak func(f *VideoFile)
	}{
		// Frame 25's packet counted with frame 42's pts and the other
		// way round.
		{"pts order", func(f *VideoFile) {
			p := planSkips(f.index, want)
			a, b := slices.Index(p.rankOf, 25), slices.Index(p.rankOf, 42)
			f.index[a].pts, f.index[b].pts = f.index[b].pts, f.index[a].pts
		}},
		// Every packet's pts differs from the one counted (the file
		// changed, or the demuxer disagrees with itself).
		{"packet pts changed", func(f *VideoFile) {
			for i := range f.index {
				f.index[i].pts += 7
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, f := decodeFrames(t, path, want, true, tc.tweak)
			sameFrames(t, got, plain)
			if f.PacketsSkipped() != 0 {
				t.Errorf("the last pass skipped %d packets, want the plain pass", f.PacketsSkipped())
			}
		})
	}
}

// The plan is checked against what the decoder puts out: a packet that
// makes no frame (here: the plan expects one frame fewer) breaks it before
// any frame is handed on under a wrong index.
func TestVideoFileDecodePlannedChecksOutput(t *testing.T) {
	f, err := OpenVideoFile(sharedClip(t, "arm_wrestling.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.CountFrames(); err != nil {
		t.Fatal(err)
	}
	want := []int{8, 25}
	p := planSkips(f.index, want)
	p.sent = p.sent[1:]
	calls := 0
	done, err := f.decodePlanned(p, want, func(int, time.Duration, *Image) error { calls++; return nil })
	if !errors.Is(err, errPlanBroken) || done != 0 || calls != 0 {
		t.Errorf("decodePlanned = %d, %v after %d frames handed on; want 0, errPlanBroken, none", done, err, calls)
	}
}

func TestH264PacketInfo(t *testing.T) {
	nal := func(refIdc, typ byte) []byte { return []byte{refIdc<<5 | typ, 0x88, 0x84} }
	avcc := func(size int, nalus ...[]byte) []byte {
		var b []byte
		for _, n := range nalus {
			l := len(n)
			for i := size - 1; i >= 0; i-- {
				b = append(b, byte(l>>(8*i)))
			}
			b = append(b, n...)
		}
		return b
	}
	annexB := func(nalus ...[]byte) []byte {
		var b []byte
		for _, n := range nalus {
			b = append(b, 0, 0, 0, 1)
			b = append(b, n...)
		}
		return b
	}
	sei, sps, pps := nal(0, 6), nal(3, 7), nal(3, 8)
	tests := []struct {
		name         string
		data         []byte
		size         int
		ref, idr, ok bool
	}{
		{"idr avcc4", avcc(4, sei, nal(3, 5)), 4, true, true, true},
		{"p avcc4", avcc(4, nal(2, 1)), 4, true, false, true},
		{"b non-ref avcc4", avcc(4, nal(0, 1), nal(0, 1)), 4, false, false, true},
		{"b non-ref avcc2", avcc(2, nal(0, 1)), 2, false, false, true},
		{"idr annexb", annexB(sps, pps, nal(3, 5)), 0, true, true, true},
		{"b annexb", annexB(nal(0, 9), nal(0, 1)), 0, false, false, true},
		{"no slice", avcc(4, sei), 4, true, false, false},
		{"length past end", []byte{0, 0, 0, 9, 0x01}, 4, true, false, false},
		{"cut length", []byte{0, 0}, 4, true, false, false},
	}
	for _, tt := range tests {
		ref, idr, ok := h264PacketInfo(tt.data, tt.size)
		if ref != tt.ref || idr != tt.idr || ok != tt.ok {
			t.Errorf("%s: ref, idr, ok = %v, %v, %v, want %v, %v, %v", tt.name, ref, idr, ok, tt.ref, tt.idr, tt.ok)
		}
	}
	if got := h264NALLengthSize([]byte{1, 0x64, 0, 0x1f, 0xfd, 0xe1, 0}); got != 2 {
		t.Errorf("NAL length size of avcC with lengthSizeMinusOne 1 = %d, want 2", got)
	}
	if got := h264NALLengthSize([]byte{0, 0, 0, 1, 0x67}); got != 0 {
		t.Errorf("NAL length size of Annex-B extradata = %d, want 0", got)
	}
}

// planSkips keeps exactly the wanted pictures and the references that
// precede a wanted one within its IDR period.
func TestPlanSkips(t *testing.T) {
	// Decoding order: I0 P3 b1 b2 P6 b4 b5 | IDR7 P9 b8, pts = display index.
	index := []packetInfo{{0, true, true}, {3, true, false}, {1, false, false}, {2, false, false},
		{6, true, false}, {4, false, false}, {5, false, false},
		{7, true, true}, {9, true, false}, {8, false, false}}
	tests := []struct {
		want []int
		need []int // packets, in decoding order
	}{
		{[]int{0}, []int{0}},
		{[]int{2}, []int{0, 1, 3}},
		{[]int{4}, []int{0, 1, 4, 5}},
		{[]int{3}, []int{0, 1}},
		{[]int{7}, []int{7}}, // the first period's references are not needed
		{[]int{1, 8}, []int{0, 1, 2, 7, 8, 9}},
	}
	for _, tt := range tests {
		p := planSkips(index, tt.want)
		var need []int
		for k, ok := range p.need {
			if ok {
				need = append(need, k)
			}
		}
		if !slices.Equal(need, tt.need) {
			t.Errorf("want %v: need packets %v, want %v", tt.want, need, tt.need)
		}
		if p.last != tt.need[len(tt.need)-1] {
			t.Errorf("want %v: last packet %d, want %d", tt.want, p.last, tt.need[len(tt.need)-1])
		}
	}
	// No plan without timestamps, with a repeated one, or past the end.
	noPTS := slices.Clone(index)
	noPTS[4].pts = noPTSValue
	dup := slices.Clone(index)
	dup[4].pts = 3
	for name, c := range map[string]struct {
		index []packetInfo
		want  []int
	}{"no pts": {noPTS, []int{1}}, "same pts": {dup, []int{1}}, "past end": {index, []int{10}}} {
		if p := planSkips(c.index, c.want); p != nil {
			t.Errorf("%s: got a plan, want none", name)
		}
	}
}
