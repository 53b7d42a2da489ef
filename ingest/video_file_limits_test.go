package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/openwatch"
)

// ffmpegFile runs ffmpeg with args (the output path last) and returns the
// output.
func ffmpegFile(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(needTool(t, "ffmpeg"), append([]string{"-v", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, out)
	}
	return args[len(args)-1]
}

// outsideClip copies a clip of testdata into a directory of its own, where
// nothing else is opened, and returns the directory and the copy's path.
func outsideClip(t *testing.T) (dir, clip string) {
	t.Helper()
	dir = t.TempDir()
	b, err := os.ReadFile(sharedClip(t, "arm_wrestling.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	clip = writeFile(t, filepath.Join(dir, "clip.mp4"), b)
	return dir, clip
}

// A playlist or a concat list makes libav open the files it names: an
// uploaded one would read files of the server. Such a file is refused
// naming its container, and the clip it points at is never opened (inotify
// on the clip's directory says so).
func TestVideoFileRefusesContainersThatReferToFiles(t *testing.T) {
	outside, clip := outsideClip(t)
	dir := t.TempDir()
	// The concat demuxer takes only plain relative names: a link inside
	// the directory leads out of it.
	if err := os.Symlink(outside, filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, content, container string
	}{
		{"HLS playlist", "clip.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:11\n#EXTINF:10.0,\n" + clip + "\n#EXT-X-ENDLIST\n", "hls"},
		{"HLS playlist named .mp4", "playlist.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:11\n#EXTINF:10.0,\n" + clip + "\n#EXT-X-ENDLIST\n", "hls"},
		{"ffconcat", "list.ffconcat", "ffconcat version 1.0\nfile 'sub/clip.mp4'\n", "concat"},
		{"ffconcat named .avi", "list.avi", "ffconcat version 1.0\nfile 'sub/clip.mp4'\n", "concat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(dir, tt.file), []byte(tt.content))
			w, err := openwatch.Start(outside)
			if err != nil {
				t.Fatal(err)
			}
			f, err := OpenVideoFile(p)
			if err == nil {
				f.CountFrames()
				f.Close()
			}
			opened, werr := w.Opened()
			if werr != nil {
				t.Fatal(werr)
			}
			if slices.Contains(opened, "clip.mp4") {
				t.Errorf("%s opened the clip it points at", tt.file)
			}
			if !errors.Is(err, ErrContainerNotAllowed) || !strings.Contains(err.Error(), "the file is "+tt.container+" (") ||
				!strings.Contains(err.Error(), "single-file containers: MP4/MOV, Matroska/WebM, AVI, MPEG-TS, FLV, raw H.264, raw H.265") {
				t.Errorf("OpenVideoFile(%s) = %v, want %v naming %s", tt.file, err, ErrContainerNotAllowed, tt.container)
			}
		})
	}
}

// Every container that containers lists opens, and reads the same frames.
func TestVideoFileOpensEveryListedContainer(t *testing.T) {
	src := sharedClip(t, "arm_wrestling.mp4")
	dir := t.TempDir()
	files := map[string]string{
		"mov,mp4,m4a,3gp,3g2,mj2": ffmpegFile(t, "-i", src, "-c", "copy", filepath.Join(dir, "clip.mov")),
		"matroska,webm":           ffmpegFile(t, "-i", src, "-c", "copy", filepath.Join(dir, "clip.mkv")),
		"avi":                     sharedClip(t, "archery.avi"),
		"mpegts":                  ffmpegFile(t, "-i", src, "-c", "copy", filepath.Join(dir, "clip.ts")),
		"flv":                     ffmpegFile(t, "-i", src, "-c", "copy", filepath.Join(dir, "clip.flv")),
		"h264":                    ffmpegFile(t, "-i", src, "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", filepath.Join(dir, "clip.h264")),
		"hevc": ffmpegFile(t, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx265",
			"-x265-params", "log-level=error", "-f", "hevc", filepath.Join(dir, "clip.hevc")),
	}
	for _, c := range containers {
		t.Run(c.Name, func(t *testing.T) {
			f, err := OpenVideoFile(files[c.Demuxer])
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if n, err := f.CountFrames(); err != nil || n == 0 {
				t.Errorf("CountFrames() = %d, %v", n, err)
			}
		})
	}
}

// A frame over the limit is refused before anything is decoded, naming the
// size and the key: an 8200x4400 picture (over 8K, the default) made by
// ffmpeg, and a testdata clip against a limit one pixel short of it.
func TestVideoFileFrameTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := ffmpegFile(t, "-f", "lavfi", "-i", "color=c=gray:s=8200x4400:d=0.2:r=5", "-c:v", "mjpeg", "-pix_fmt", "yuvj420p",
		filepath.Join(dir, "big.mkv"))
	_, err := OpenVideoFile(big)
	if !errors.Is(err, ErrFrameTooLarge) ||
		!strings.Contains(err.Error(), "frame too large: 8200x4400 is 36080000 pixels, over ingest.max_frame_pixels (35389440)") {
		t.Errorf("OpenVideoFile(8200x4400) = %v, want %v naming the size and the key", err, ErrFrameTooLarge)
	}
	clip := sharedClip(t, "arm_wrestling.mp4") // 340x256
	if _, err := OpenVideoFileWith(clip, FileOptions{MaxFramePixels: 340*256 - 1}); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("a 340x256 clip with a limit of %d pixels: %v, want %v", 340*256-1, err, ErrFrameTooLarge)
	}
	f, err := OpenVideoFileWith(clip, FileOptions{MaxFramePixels: 340 * 256})
	if err != nil {
		t.Fatalf("a 340x256 clip with a limit of exactly its size: %v", err)
	}
	defer f.Close()
	if err := f.Decode([]int{0, 279}, func(int, time.Duration, *Image) error { return nil }); err != nil {
		t.Errorf("decoding a 340x256 clip with a limit of exactly its size: %v", err)
	}
}

// A cancelled context stops decoding: Decode returns its error at once,
// long before the file's end, and so does CountFrames.
func TestVideoFileStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := OpenVideoFileWith(sharedClip(t, "arm_wrestling.mp4"), FileOptions{Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls := 0
	err = f.Decode([]int{0, 279}, func(int, time.Duration, *Image) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Decode after cancelling at the first frame: %v after %d frames, want %v after 1", err, calls, context.Canceled)
	}
	// Frame threads hold a few packets; the file has 280.
	if n := f.PacketsRead(); n > 64 {
		t.Errorf("decoding went on after the cancel: %d of 280 packets read", n)
	}
	if n, err := f.CountFrames(); !errors.Is(err, context.Canceled) {
		t.Errorf("CountFrames with a cancelled context = %d, %v; want %v", n, err, context.Canceled)
	}
}

// A camera whose sequence parameter set announces frames over the limit is
// refused before a frame is decoded, naming the size and the key.
func TestDecoderRefusesFramesOverTheLimit(t *testing.T) {
	scene := testScene{Width: 160, Height: 120, FPS: 25, Duration: time.Second, Direction: Right, Seed: 1}
	aus := encodeScene(t, scene, 5)
	for _, tc := range []struct {
		max  int
		want error
	}{{160 * 120, nil}, {160*120 - 1, ErrFrameTooLarge}} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			d := testDecoder(t, CodecH264, tc.max)
			frames := 0
			var derr error
			for _, au := range aus {
				if derr = d.decode(au, func(_ frameMeta, p picture) error { frames++; p.release(); return nil }); derr != nil {
					break
				}
			}
			if !errors.Is(derr, tc.want) {
				t.Fatalf("decode with a limit of %d pixels: %v, want %v", tc.max, derr, tc.want)
			}
			if tc.want != nil && (frames != 0 || !strings.Contains(derr.Error(), "160x120 is 19200 pixels, over ingest.max_frame_pixels (19199)")) {
				t.Errorf("%d frames decoded, error %q; want none, naming the size and the key", frames, derr)
			}
		})
	}
}
