package camsim

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
)

// meanAbsDiff is the mean absolute difference between two images' bytes.
func meanAbsDiff(a, b *ingest.Image) float64 {
	var sum int
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		sum += max(d, -d)
	}
	return float64(sum) / float64(len(a.Pix))
}

func TestH264WriterContainers(t *testing.T) {
	const mp4 = "mov,mp4,m4a,3gp,3g2,mj2"
	tests := []struct {
		name, format string
	}{
		{"clip.mp4", mp4},
		{"clip.mkv", "matroska,webm"},
		{"clip.ts", "mpegts"},
		{"clip.h264", "h264"},
		{"clip", mp4},        // no extension
		{"clip.frames", mp4}, // unknown extension
	}
	scene := Scene{Width: 64, Height: 48, FPS: 15, Duration: 2 * time.Second, Direction: Down, Seed: 3}
	n := scene.Frames()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.name)
			w, err := CreateH264File(path, scene.Width, scene.Height, scene.FPS)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if err := w.WriteFrame(scene.Frame(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			got := ffprobeVideo(t, path)
			want := map[string]string{
				"codec_name": "h264", "width": "64", "height": "48", "pix_fmt": "yuv420p",
				"nb_read_frames": strconv.Itoa(n), "format_name": tt.format,
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("ffprobe %s = %q, want %q", k, got[k], v)
				}
			}

			// What comes back is the scene, up to H.264's (small) loss.
			imgs := decodeAll(t, path, []int{0, n / 2, n - 1})
			for k, i := range []int{0, n / 2, n - 1} {
				d := meanAbsDiff(imgs[k], scene.Frame(i))
				t.Logf("frame %d: mean |decoded - source| = %.2f", i, d)
				if d > 3 {
					t.Errorf("frame %d: mean absolute difference %.2f, want <= 3", i, d)
				}
			}
		})
	}
}

func TestH264WriterErrors(t *testing.T) {
	dir := t.TempDir()
	t.Run("create", func(t *testing.T) {
		tests := []struct {
			name      string
			path      string
			w, h, fps int
			wantMsg   string
		}{
			{"odd width", filepath.Join(dir, "a.mp4"), 65, 48, 10, "width and height must be positive and even, got 65x48"},
			{"zero height", filepath.Join(dir, "a.mp4"), 64, 0, 10, "width and height must be positive and even, got 64x0"},
			{"zero fps", filepath.Join(dir, "a.mp4"), 64, 48, 0, "fps must be in 1..1000, got 0"},
			{"no such directory", filepath.Join(dir, "missing", "a.mp4"), 64, 48, 10,
				fmt.Sprintf("create video %q: no such file or directory", filepath.Join(dir, "missing", "a.mp4"))},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w, err := CreateH264File(tt.path, tt.w, tt.h, tt.fps)
				if err == nil {
					w.Close()
					t.Fatal("CreateH264File succeeded")
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q, want it to contain %q", err, tt.wantMsg)
				}
			})
		}
	})

	t.Run("write", func(t *testing.T) {
		path := filepath.Join(dir, "b.mp4")
		w, err := CreateH264File(path, 64, 48, 10)
		if err != nil {
			t.Fatal(err)
		}
		err = w.WriteFrame(ingest.NewImage(32, 32))
		if want := "frame 0: encode: image is 32x32 (3072 bytes), encoder expects 64x48"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("WriteFrame(32x32) = %v, want an error containing %q", err, want)
		}
		if err := w.WriteFrame(ingest.NewImage(64, 48)); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := w.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		}
		if err := w.WriteFrame(ingest.NewImage(64, 48)); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("WriteFrame after Close = %v, want fs.ErrClosed", err)
		}
		if got := ffprobeVideo(t, path)["nb_read_frames"]; got != "1" {
			t.Errorf("file has %s frames, want 1", got)
		}
	})
}

// nalTypes lists the NAL unit types in an Annex-B access unit.
func nalTypes(au []byte) []int {
	var types []int
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			types = append(types, int(au[i+3]&0x1f))
			i += 3
		}
	}
	return types
}

// The encoder alone, as the RTSP simulator will use it: Annex-B access
// units, one per frame, in order, parameter sets in band.
func TestH264EncoderAccessUnits(t *testing.T) {
	scene := Scene{Width: 64, Height: 48, FPS: 10, Duration: 2500 * time.Millisecond, Direction: Left}
	enc, err := NewH264Encoder(scene.Width, scene.Height, scene.FPS, false)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var aus []H264AU
	for i := range scene.Frames() {
		out, err := enc.Encode(scene.Frame(i))
		if err != nil {
			t.Fatal(err)
		}
		aus = append(aus, out...)
	}
	t.Logf("%d access units out before the flush (x264 looks ahead)", len(aus))
	out, err := enc.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	aus = append(aus, out...)
	if _, err := enc.Encode(scene.Frame(0)); err == nil {
		t.Error("Encode after flush succeeded")
	}

	if len(aus) != scene.Frames() {
		t.Fatalf("%d access units for %d frames", len(aus), scene.Frames())
	}
	var keys []int
	for i, au := range aus {
		if au.PTS != int64(i) || au.DTS != au.PTS {
			t.Errorf("access unit %d: pts %d dts %d, want both %d", i, au.PTS, au.DTS, i)
		}
		if au.Key {
			keys = append(keys, i)
		}
	}
	if fmt.Sprint(keys) != "[0 10 20]" {
		t.Errorf("key frames at %v, want [0 10 20] (one per second)", keys)
	}
	// SPS (7), PPS (8) and an IDR slice (5) in every key unit, so that an
	// RTSP client can start at any key frame.
	for _, k := range keys {
		types := fmt.Sprint(nalTypes(aus[k].Data))
		for _, nal := range []string{"7", "8", "5"} {
			if !strings.Contains(" "+strings.Trim(types, "[]")+" ", " "+nal+" ") {
				t.Errorf("access unit %d has NAL types %s, want %s among them", k, types, nal)
			}
		}
	}
}
