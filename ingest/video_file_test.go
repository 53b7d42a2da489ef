package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ffmpegRGBFrames returns the RGB24 frames with the given indices (in
// decoding order) as the ffmpeg CLI converts them.
func ffmpegRGBFrames(t *testing.T, path string, indices []int) []byte {
	t.Helper()
	terms := make([]string, len(indices))
	for i, idx := range indices {
		terms[i] = fmt.Sprintf(`eq(n\,%d)`, idx)
	}
	cmd := exec.Command(needTool(t, "ffmpeg"), "-v", "error", "-i", path,
		"-vf", "select="+strings.Join(terms, "+"), "-vsync", "0",
		"-pix_fmt", "rgb24", "-f", "rawvideo", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
	}
	return out
}

func TestVideoFileInfoAndCountFrames(t *testing.T) {
	tests := []struct {
		file     string
		w, h     int
		fps      float64
		codec    string
		duration time.Duration
		frames   int
	}{
		{"arm_wrestling.mp4", 340, 256, 28, "h264", 10 * time.Second, 280},
		{"archery_h264.mp4", 320, 240, 30000.0 / 1001, "h264", 10010 * time.Millisecond, 300},
		{"archery.avi", 320, 240, 25, "mpeg4", 5240 * time.Millisecond, 131},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := OpenVideoFile(sharedClip(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info := f.Info()
			t.Logf("%+v", info)
			if info.Width != tt.w || info.Height != tt.h || info.Codec != tt.codec {
				t.Errorf("Info() = %dx%d %s, want %dx%d %s", info.Width, info.Height, info.Codec, tt.w, tt.h, tt.codec)
			}
			if math.Abs(info.FPS-tt.fps) > 1e-9 {
				t.Errorf("Info().FPS = %v, want %v", info.FPS, tt.fps)
			}
			if d := info.Duration - tt.duration; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("Info().Duration = %v, want %v", info.Duration, tt.duration)
			}
			// Twice: the second count must start from the beginning again.
			for range 2 {
				n, err := f.CountFrames()
				if err != nil {
					t.Fatal(err)
				}
				if n != tt.frames {
					t.Errorf("CountFrames() = %d, want %d", n, tt.frames)
				}
			}
		})
	}
}

// Decoded frames are compared byte for byte with the ffmpeg CLI's output:
// same libavcodec, and a scaler set up like the CLI's scale filter.
func TestVideoFileDecodeMatchesFFmpeg(t *testing.T) {
	tests := []struct {
		file    string
		indices []int
	}{
		// First, sampled (PPTSMV2.md §3.2) and last frames.
		{"arm_wrestling.mp4", []int{0, 8, 25, 144, 263, 279}},
		{"archery.avi", []int{0, 3, 11, 67, 123, 130}},
		{"archery_h264.mp4", []int{0, 8, 278, 299}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := sharedClip(t, tt.file)
			want := ffmpegRGBFrames(t, path, tt.indices)

			f, err := OpenVideoFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fps := f.Info().FPS
			var got []int
			err = f.Decode(tt.indices, func(idx int, pts time.Duration, img *Image) error {
				k := len(got)
				got = append(got, idx)
				if k >= len(tt.indices) || idx != tt.indices[k] {
					return fmt.Errorf("got frame %d, want %v", idx, tt.indices)
				}
				size := img.W * img.H * 3
				if len(want) < (k+1)*size {
					return fmt.Errorf("ffmpeg gave %d bytes, fewer than %d frames", len(want), k+1)
				}
				if diff, maxDiff := byteDiff(img.Pix, want[k*size:(k+1)*size]); diff > 0 {
					t.Errorf("frame %d: %d of %d bytes differ from ffmpeg (max %d)", idx, diff, size, maxDiff)
				}
				// These files are constant frame rate.
				if wantPTS := time.Duration(float64(idx) / fps * float64(time.Second)); (pts - wantPTS).Abs() > time.Millisecond {
					t.Errorf("frame %d: pts %v, want %v", idx, pts, wantPTS)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.indices) {
				t.Fatalf("decoded %v, want %v", got, tt.indices)
			}
			if len(want) != len(tt.indices)*f.Info().Width*f.Info().Height*3 {
				t.Errorf("ffmpeg gave %d bytes for %d frames", len(want), len(tt.indices))
			}
			t.Logf("%d frames identical to ffmpeg's; %d packets read, %d decode errors",
				len(got), f.PacketsRead(), f.DecodeErrors())
		})
	}
}

// byteDiff counts differing bytes and the largest difference.
func byteDiff(a, b []byte) (n, maxDiff int) {
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d != 0 {
			n++
			maxDiff = max(maxDiff, d, -d)
		}
	}
	return n, maxDiff
}

func TestVideoFileDecodeStopsEarly(t *testing.T) {
	f, err := OpenVideoFile(sharedClip(t, "arm_wrestling.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Each frame thread holds a packet back and B-frame reordering (two
	// here) a few more: a handful beyond the index, however many cores.
	slack := f.decoderThreads() + 4
	for _, index := range []int{0, 10, 100} {
		t.Run(strconv.Itoa(index), func(t *testing.T) {
			if err := f.Decode([]int{index}, func(int, time.Duration, *Image) error { return nil }); err != nil {
				t.Fatal(err)
			}
			t.Logf("frame %d: %d of 280 packets read (%d decoder threads)", index, f.PacketsRead(), f.decoderThreads())
			if limit := index + 1 + slack; f.PacketsRead() > limit {
				t.Errorf("read %d packets for frame %d, want at most %d", f.PacketsRead(), index, limit)
			}
		})
	}
}

func TestVideoFileDecodeRepeatable(t *testing.T) {
	f, err := OpenVideoFile(sharedClip(t, "archery.avi"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	decode := func() []byte {
		var pix []byte
		if err := f.Decode([]int{5}, func(_ int, _ time.Duration, img *Image) error {
			pix = img.Pix
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return pix
	}
	first := decode()
	if _, err := f.CountFrames(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(decode(), first) {
		t.Error("Decode after CountFrames gave a different frame 5")
	}
	if !bytes.Equal(decode(), first) {
		t.Error("second Decode gave a different frame 5")
	}
}

func TestVideoFileDecodeErrors(t *testing.T) {
	f, err := OpenVideoFile(sharedClip(t, "arm_wrestling.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := errors.New("stop")
	tests := []struct {
		name    string
		want    []int
		fnErr   error
		calls   int    // frames handed to fn
		wantMsg string // in the error
		wantErr error  // errors.Is
	}{
		{"past the end", []int{279, 280, 300}, nil, 1, `decode "../testdata/arm_wrestling.mp4": frame 280 wanted, but the video ends after 280 frames`, nil},
		{"descending", []int{3, 1}, nil, 0, "frame indices must be ascending, unique and >= 0, got [3 1]", nil},
		{"duplicate", []int{1, 1}, nil, 0, "ascending, unique", nil},
		{"negative", []int{-1}, nil, 0, "ascending, unique", nil},
		{"callback error", []int{0, 1, 2}, stop, 1, "stop", stop},
		{"nothing wanted", nil, nil, 0, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := f.Decode(tt.want, func(int, time.Duration, *Image) error {
				calls++
				return tt.fnErr
			})
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Decode(%v) = %v, want nil", tt.want, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Decode(%v) = %v, want an error containing %q", tt.want, err, tt.wantMsg)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Decode(%v) = %v, want errors.Is %v", tt.want, err, tt.wantErr)
			}
			if calls != tt.calls {
				t.Errorf("fn called %d times, want %d", calls, tt.calls)
			}
		})
	}
}

// damagedCopy writes a copy of a shared clip into dir after edit changes it.
func damagedCopy(t *testing.T, dir, clip, name string, edit func([]byte) []byte) string {
	t.Helper()
	data, err := os.ReadFile(sharedClip(t, clip))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, edit(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wavFile writes one second of 8 kHz silence: a valid media file without
// video.
func wavFile(t *testing.T, path string) string {
	t.Helper()
	const rate, n = 8000, 8000
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(2 * rate), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*n))
	b.Write(make([]byte, 2*n))
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// audioOnlyMKV writes one second of silence in Matroska: a container
// actiond reads, without video.
func audioOnlyMKV(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(needTool(t, "ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
		"-t", "1", "-c:a", "pcm_s16le", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	return path
}

func TestVideoFileOpenErrors(t *testing.T) {
	dir := t.TempDir()
	text := []byte("Hello, this is not a video.\nJust some text.\n")
	tests := []struct {
		name    string
		path    string
		wantErr error
		wantMsg []string
	}{
		{
			name:    "missing",
			path:    filepath.Join(dir, "nope.mp4"),
			wantErr: fs.ErrNotExist,
			wantMsg: []string{fmt.Sprintf("open video %q: no such file", filepath.Join(dir, "nope.mp4"))},
		},
		{
			name:    "directory",
			path:    dir,
			wantErr: ErrNotVideo,
			wantMsg: []string{"not a video file: it is a directory"},
		},
		{
			name:    "text renamed .mp4",
			path:    writeFile(t, filepath.Join(dir, "notes.mp4"), text),
			wantErr: ErrNotVideo,
			wantMsg: []string{`notes.mp4": not a video file: invalid data found when processing input`},
		},
		{
			name:    "text .txt",
			path:    writeFile(t, filepath.Join(dir, "notes.txt"), text),
			wantErr: ErrNotVideo,
			wantMsg: []string{`notes.txt": not a video file`},
		},
		{
			name:    "text .nfo",
			path:    writeFile(t, filepath.Join(dir, "readme.nfo"), text),
			wantErr: ErrNotVideo,
			wantMsg: []string{`readme.nfo": not a video file: it looks like text`},
		},
		{
			name: "first 20 KB of an mp4",
			path: damagedCopy(t, dir, "arm_wrestling.mp4", "cut.mp4", func(b []byte) []byte { return b[:20<<10] }),
			// The index (moov) is at the end of these files.
			wantErr: ErrNotVideo,
			wantMsg: []string{`cut.mp4": not a video file: invalid data found when processing input (moov atom not found)`},
		},
		{
			name:    "audio only",
			path:    audioOnlyMKV(t, filepath.Join(dir, "silence.mkv")),
			wantErr: ErrNoVideoStream,
			wantMsg: []string{`silence.mkv": has no video stream`},
		},
		{
			name:    "not a video container",
			path:    wavFile(t, filepath.Join(dir, "silence.wav")),
			wantErr: ErrContainerNotAllowed,
			wantMsg: []string{`silence.wav": container not allowed: the file is wav (WAV / WAVE (Waveform Audio)); actiond reads only single-file containers: MP4/MOV, Matroska/WebM, AVI, MPEG-TS, FLV, raw H.264, raw H.265`},
		},
		{
			name: "unknown codec",
			path: damagedCopy(t, dir, "archery.avi", "unknown.avi", func(b []byte) []byte {
				// Rename the XviD fourcc in the AVI headers.
				head := bytes.ReplaceAll(b[:4096], []byte("XVID"), []byte("QQ9Z"))
				return append(head, b[4096:]...)
			}),
			wantErr: ErrUnsupportedCodec,
			wantMsg: []string{`unknown.avi": unsupported codec: this FFmpeg build cannot decode unknown codec (fourcc "QQ9Z")`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := OpenVideoFile(tt.path)
			if err == nil {
				f.Close()
				t.Fatalf("OpenVideoFile(%q) succeeded", tt.path)
			}
			t.Log(err)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want errors.Is %v", err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q, want it to contain %q", err, m)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVideoFileCorruptData(t *testing.T) {
	dir := t.TempDir()
	clip := sharedClip(t, "arm_wrestling.mp4")
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	// The file is ftyp, free, mdat (the frames, from byte 48), moov.
	moov := bytes.Index(data, []byte("moov")) - 4
	if moov < 0 || !bytes.Equal(data[44:48], []byte("mdat")) {
		t.Fatal("arm_wrestling.mp4 is not laid out as ftyp, free, mdat, moov")
	}

	t.Run("frames zeroed", func(t *testing.T) {
		p := damagedCopy(t, dir, "arm_wrestling.mp4", "zeroed.mp4", func(b []byte) []byte {
			clear(b[48:moov])
			return b
		})
		f, err := OpenVideoFile(p)
		if err != nil {
			t.Fatal(err) // the index is intact
		}
		defer f.Close()
		err = f.Decode([]int{0}, func(int, time.Duration, *Image) error { return nil })
		t.Log(err)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `zeroed.mp4": corrupt or unsupported data: no frame decoded from 280 packets`) {
			t.Errorf("Decode = %v, want a corrupt-data error after all 280 packets", err)
		}
	})

	t.Run("garbage in the middle", func(t *testing.T) {
		p := damagedCopy(t, dir, "arm_wrestling.mp4", "garbage.mp4", func(b []byte) []byte {
			mid := moov / 2
			rand.New(rand.NewSource(1)).Read(b[mid : mid+64<<10])
			return b
		})
		clean := decodeAll(t, clip, []int{0, 50})
		f, err := OpenVideoFile(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var got []*Image
		err = f.Decode([]int{0, 50, 279}, func(_ int, _ time.Duration, img *Image) error {
			got = append(got, img)
			return nil
		})
		t.Logf("Decode: %v; %d decode errors, %d packets", err, f.DecodeErrors(), f.PacketsRead())
		if err != nil && !strings.Contains(err.Error(), "wanted, but the video ends after") {
			t.Fatalf("Decode = %v, want success or a short video", err)
		}
		if f.DecodeErrors() == 0 {
			t.Error("DecodeErrors() = 0 for 64 KB of garbage")
		}
		// Frames before the damage decode as in the clean file.
		if len(got) < 2 || !bytes.Equal(got[0].Pix, clean[0].Pix) || !bytes.Equal(got[1].Pix, clean[1].Pix) {
			t.Error("frames 0 and 50, before the damage, differ from the clean file's")
		}
	})
}

func TestVideoFileResolutionChange(t *testing.T) {
	// Two raw H.264 streams of different sizes, one after the other, as a
	// camera sends after a reconfiguration.
	dir := t.TempDir()
	var stream []byte
	sizes := [][2]int{{64, 48}, {96, 64}}
	for i, sz := range sizes {
		p := filepath.Join(dir, fmt.Sprintf("part%d.h264", i))
		s := testScene{Width: sz[0], Height: sz[1], FPS: 10, Duration: time.Second, Direction: Right, Seed: int64(i)}
		if err := s.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	p := writeFile(t, filepath.Join(dir, "both.h264"), stream)

	f, err := OpenVideoFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.CountFrames()
	if err != nil || n != 20 {
		t.Fatalf("CountFrames() = %d, %v; want 20", n, err)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	var got []string
	if err := f.Decode(want, func(idx int, _ time.Duration, img *Image) error {
		got = append(got, fmt.Sprintf("%dx%d", img.W, img.H))
		if len(img.Pix) != img.W*img.H*3 {
			return fmt.Errorf("frame %d: %d bytes for %v", idx, len(img.Pix), img)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got[0] != "64x48" || got[9] != "64x48" || got[10] != "96x64" || got[19] != "96x64" {
		t.Errorf("frame sizes %v, want 10 x 64x48 then 10 x 96x64", got)
	}
}

func TestVideoFileClose(t *testing.T) {
	f, err := OpenVideoFile(sharedClip(t, "archery.avi"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	}
	if err := f.Decode([]int{0}, func(int, time.Duration, *Image) error { return nil }); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Decode after Close = %v, want fs.ErrClosed", err)
	}
	if _, err := f.CountFrames(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("CountFrames after Close = %v, want fs.ErrClosed", err)
	}
}

// Every C object is freed on every path: open, decode, close in a loop, and
// on failed opens, leaves the RSS flat.
func TestVideoFileNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("300 opens")
	}
	clip := sharedClip(t, "arm_wrestling.mp4")
	bad := writeFile(t, filepath.Join(t.TempDir(), "bad.mp4"), []byte("not a video"))
	cycle := func() {
		f, err := OpenVideoFile(clip)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Decode([]int{0}, func(int, time.Duration, *Image) error { return nil }); err != nil {
			t.Fatal(err)
		}
		// The packets CountFrames keeps, and the decoder Decode opens
		// anew for a second pass over them.
		if _, err := f.CountFrames(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := f.Decode([]int{100}, func(int, time.Duration, *Image) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		if _, err := OpenVideoFile(bad); err == nil {
			t.Fatal("opened a text file")
		}
	}
	measure := func() int64 {
		runtime.GC()
		return rssBytes(t)
	}
	for range 30 { // let allocators and thread pools reach their steady size
		cycle()
	}
	before := measure()
	const n = 300
	for range n {
		cycle()
	}
	after := measure()
	t.Logf("RSS before %.1f MiB, after %d open/decode/close cycles %.1f MiB (%+.1f MiB)",
		float64(before)/(1<<20), n, float64(after)/(1<<20), float64(after-before)/(1<<20))
	// One leaked decoder context with its frame pool is more than 1 MiB
	// here; 300 of them would be far above the bound.
	if after-before > 24<<20 {
		t.Errorf("RSS grew by %.1f MiB over %d cycles", float64(after-before)/(1<<20), n)
	}
}
