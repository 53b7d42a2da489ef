package ingest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/actiond/actiond/internal/testenv"
)

// encodeScene encodes n frames of scene as H.264 access units, with SPS and
// PPS in band before every key frame, as a camera sends them.
func encodeScene(t testing.TB, scene testScene, n int) []accessUnit {
	t.Helper()
	raw, err := EncodeH264(scene.Width, scene.Height, scene.FPS, n, scene.Frame)
	if err != nil {
		t.Fatal(err)
	}
	aus := make([]accessUnit, len(raw))
	for i, r := range raw {
		var nalus h264.AnnexB
		if err := nalus.Unmarshal(r.Data); err != nil {
			t.Fatal(err)
		}
		aus[i] = accessUnit{
			nalus:  nalus,
			pts:    time.Duration(r.PTS) * time.Second / time.Duration(scene.FPS),
			random: r.Key,
			conn:   1,
		}
	}
	return aus
}

// testDecoder opens a decoder of codec for frames of at most maxPixels,
// with a converter of its own; the test's cleanup closes both.
func testDecoder(t testing.TB, codec Codec, maxPixels int) *decoder {
	t.Helper()
	conv := &rgbConverter{}
	t.Cleanup(conv.close)
	d, err := newDecoderMax(codec, conv, maxPixels)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

// decodeAUs decodes aus and returns the frames' metadata; it converts every
// frame when convert is set.
func decodeAUs(t *testing.T, d *decoder, aus []accessUnit, convert bool) (metas []frameMeta, imgs []*Image) {
	t.Helper()
	for _, au := range aus {
		err := d.decode(au, func(m frameMeta, pic picture) error {
			defer pic.release()
			metas = append(metas, m)
			if convert {
				img, err := pic.image()
				if err != nil {
					return err
				}
				imgs = append(imgs, img)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return metas, imgs
}

func TestDecoderFramesAndTimes(t *testing.T) {
	scene := testScene{Width: 160, Height: 120, FPS: 25, Duration: 2 * time.Second, Direction: Right}
	aus := encodeScene(t, scene, scene.Frames())
	base := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range aus {
		aus[i].recv = base.Add(aus[i].pts + 150*time.Millisecond)
	}
	d := testDecoder(t, CodecH264, DefaultMaxFramePixels)
	metas, imgs := decodeAUs(t, d, aus, true)
	// A live decoder is never drained: frame threads may still hold the
	// last few.
	if len(metas) < len(aus)-4 || d.errors != 0 {
		t.Fatalf("%d frames from %d access units, %d errors (%v)", len(metas), len(aus), d.errors, d.lastErr)
	}
	for i, m := range metas {
		if want := time.Duration(i) * 40 * time.Millisecond; m.pts != want {
			t.Errorf("frame %d: pts %v, want %v", i, m.pts, want)
		}
		if want := base.Add(m.pts + 150*time.Millisecond); !m.recv.Equal(want) {
			t.Errorf("frame %d: receive time %v, want its access unit's %v", i, m.recv, want)
		}
		if m.width != 160 || m.height != 120 {
			t.Errorf("frame %d is %dx%d", i, m.width, m.height)
		}
	}
	// The disk is where the scene put it.
	for _, i := range []int{0, 25, len(imgs) - 1} {
		cx, cy := scene.Centre(i)
		if r, g, b := imgs[i].At(int(cx), int(cy)); r < 200 || g < 200 || b < 200 {
			t.Errorf("frame %d: pixel at the disk's centre is %d,%d,%d, want white", i, r, g, b)
		}
	}
}

// A camera that changes resolution sends a new SPS in band; frames come out
// at the new size and convert.
func TestDecoderResolutionChange(t *testing.T) {
	small := testScene{Width: 160, Height: 120, FPS: 10, Duration: time.Second, Direction: Left}
	big := testScene{Width: 320, Height: 180, FPS: 10, Duration: time.Second, Direction: Left}
	aus := encodeScene(t, small, 10)
	for _, au := range encodeScene(t, big, 10) {
		au.pts += time.Second
		aus = append(aus, au)
	}
	d := testDecoder(t, CodecH264, DefaultMaxFramePixels)
	metas, imgs := decodeAUs(t, d, aus, true)
	sizes := map[[2]int]int{}
	for i, img := range imgs {
		sizes[[2]int{img.W, img.H}]++
		if img.W != metas[i].width || img.H != metas[i].height {
			t.Errorf("frame %d: converted %dx%d from a %dx%d frame", i, img.W, img.H, metas[i].width, metas[i].height)
		}
	}
	t.Logf("sizes: %v, errors %d", sizes, d.errors)
	if sizes[[2]int{160, 120}] != 10 || sizes[[2]int{320, 180}] < 6 {
		t.Errorf("frame sizes %v, want 10 at 160x120 then 320x180", sizes)
	}
}

// Damaged input is counted, never fatal, and decoding resumes at the next
// key frame.
func TestDecoderErrorsAreCounted(t *testing.T) {
	scene := testScene{Width: 160, Height: 120, FPS: 10, Duration: 3 * time.Second, Direction: Up}
	aus := encodeScene(t, scene, scene.Frames())
	d := testDecoder(t, CodecH264, DefaultMaxFramePixels)
	garbage := accessUnit{nalus: [][]byte{{0x65, 0xff, 0x00, 0x13, 0x37, 0x42}, {0x41, 1, 2, 3}}, pts: 0, conn: 1}
	// Garbage first, then the stream from its second key frame, with
	// the P frames 12..15 missing (lost packets).
	var in []accessUnit
	in = append(in, garbage, garbage)
	for i, au := range aus[10:] {
		if i >= 2 && i < 6 {
			continue
		}
		in = append(in, au)
	}
	metas, _ := decodeAUs(t, d, in, true)
	t.Logf("%d frames from %d access units, %d decode errors, last: %v", len(metas), len(in), d.errors, d.lastErr)
	if d.errors == 0 {
		t.Error("no decode error counted for garbage")
	}
	if len(metas) < 12 { // 16 good units in; frame threads hold a few back
		t.Errorf("only %d frames decoded after the damage", len(metas))
	}
	if d.frames != uint64(len(metas)) {
		t.Errorf("frames stat %d, delivered %d", d.frames, len(metas))
	}
}

func TestDecoderUnsupportedCodec(t *testing.T) {
	var conv rgbConverter
	if _, err := newDecoder("VP8", &conv); err == nil {
		t.Fatal("opened a VP8 decoder")
	}
}

// H.265 from libx265, split into access units the way an RTP depacketizer
// delivers them.
func TestDecoderH265(t *testing.T) {
	ffmpeg := testenv.FFmpegEncoder(t, "libx265")
	path := filepath.Join(t.TempDir(), "test.h265")
	cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=192x128:rate=10", "-t", "2",
		"-c:v", "libx265", "-x265-params", "log-level=error:keyint=10:bframes=0", "-f", "hevc", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	aus := splitH265(t, data, 10)
	d := testDecoder(t, CodecH265, DefaultMaxFramePixels)
	metas, imgs := decodeAUs(t, d, aus, true)
	t.Logf("%d access units, %d frames, %d errors", len(aus), len(metas), d.errors)
	if len(aus) != 20 || len(metas) < 16 || d.errors != 0 {
		t.Fatalf("%d access units, %d frames, %d errors (%v)", len(aus), len(metas), d.errors, d.lastErr)
	}
	if imgs[0].W != 192 || imgs[0].H != 128 {
		t.Errorf("frame is %dx%d", imgs[0].W, imgs[0].H)
	}
}

// splitH265 groups an Annex-B H.265 stream into access units: a new one
// starts at a parameter set, AUD or prefix SEI after a picture, or at a
// picture's first slice.
func splitH265(t *testing.T, data []byte, fps int) []accessUnit {
	t.Helper()
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	var aus []accessUnit
	var cur [][]byte
	picture := false
	flush := func() {
		if len(cur) > 0 {
			typ := cur[len(cur)-1][0] >> 1 & 0x3f
			aus = append(aus, accessUnit{
				nalus:  cur,
				pts:    time.Duration(len(aus)) * time.Second / time.Duration(fps),
				random: typ >= 16 && typ <= 21,
				conn:   1,
			})
		}
		cur, picture = nil, false
	}
	for _, n := range nalus {
		typ := n[0] >> 1 & 0x3f
		switch {
		case typ >= 32 && typ <= 35 || typ == 39:
			if picture {
				flush()
			}
		case typ < 32 && n[2]&0x80 != 0: // first_slice_segment_in_pic_flag
			if picture {
				flush()
			}
			picture = true
		}
		cur = append(cur, n)
	}
	flush()
	return aus
}

// Every C object is freed on every path: 300 open/decode/close cycles,
// with pictures outliving their decoder, and failed opens, leave libav's
// share of the C heap where it was.
func TestDecoderNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("300 cycles")
	}
	scene := testScene{Width: 160, Height: 120, FPS: 10, Duration: time.Second, Direction: Down}
	aus := encodeScene(t, scene, 10)
	var conv rgbConverter
	defer conv.close()
	cycle := func() {
		d, err := newDecoder(CodecH264, &conv)
		if err != nil {
			t.Fatal(err)
		}
		var held []picture
		for i, au := range aus {
			err := d.decode(au, func(_ frameMeta, pic picture) error {
				if i%3 == 0 {
					held = append(held, pic) // released after close
					return nil
				}
				if i%2 == 0 {
					if _, err := pic.image(); err != nil {
						return err
					}
				}
				pic.release()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		d.close()
		for _, p := range held {
			if _, err := p.image(); err != nil {
				t.Fatal(err)
			}
			p.release()
		}
		if _, err := newDecoder("MJPEG", &conv); err == nil {
			t.Fatal("opened an MJPEG decoder")
		}
	}
	measure := func() (int64, int64) {
		runtime.GC()
		return cHeapInUse(), rssBytes(t)
	}
	for range 20 {
		cycle()
	}
	heap0, rss0 := measure()
	const n = 300
	for range n {
		cycle()
	}
	heap1, rss1 := measure()
	t.Logf("C heap %.2f → %.2f MiB (%+d bytes), RSS %.1f → %.1f MiB over %d cycles",
		float64(heap0)/(1<<20), float64(heap1)/(1<<20), heap1-heap0, float64(rss0)/(1<<20), float64(rss1)/(1<<20), n)
	// A decoder context alone is tens of KiB, its frame pool far more:
	// one leak per cycle would be megabytes.
	if heap1-heap0 > 256<<10 {
		t.Errorf("C heap grew by %d bytes over %d cycles", heap1-heap0, n)
	}
	if rss1-rss0 > 24<<20 {
		t.Errorf("RSS grew by %.1f MiB over %d cycles", float64(rss1-rss0)/(1<<20), n)
	}
}

// A log watch stopped late (its object freed by libav behind its back,
// as avformat_open_input does with a context when it fails, and the
// address given to a new object since) leaves the new object's watch
// alone: the new decoder's errors still quote what libav logged.
func TestLibavLogWatchStoppedLate(t *testing.T) {
	var conv rgbConverter
	defer conv.close()
	// Until the new decoder's context gets the address of the freed one,
	// as malloc soon gives it (what a watch by address got wrong).
	var d *decoder
	var stale *logWatch
	for range 50 {
		old, err := newDecoder(CodecH264, &conv)
		if err != nil {
			t.Fatal(err)
		}
		stale = old.dec.watch
		old.dec.watch = nil // libav freed it; the watch is stopped later
		addr := uintptr(unsafe.Pointer(old.dec.ctx))
		old.close()
		if d, err = newDecoder(CodecH264, &conv); err != nil {
			t.Fatal(err)
		}
		if uintptr(unsafe.Pointer(d.dec.ctx)) == addr {
			break
		}
		stale.stop()
		d.close()
		d = nil
	}
	if d == nil {
		t.Log("no address reused in 50 tries")
		var err error
		if d, err = newDecoder(CodecH264, &conv); err != nil {
			t.Fatal(err)
		}
	}
	defer d.close()
	stale.stop()
	garbage := accessUnit{nalus: [][]byte{{0x65, 0xff, 0x00, 0x13, 0x37, 0x42}, {0x41, 1, 2, 3}}, conn: 1}
	for i := 0; i < 8 && d.errors == 0; i++ { // frame threads report errors a call or two late
		if err := d.decode(garbage, func(_ frameMeta, p picture) error { p.release(); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if d.errors == 0 || !strings.Contains(fmt.Sprint(d.lastErr), "(no frame!)") {
		t.Errorf("%d errors, last %v; want libav's message in it", d.errors, d.lastErr)
	}
	// Stopping twice, or a watch never used, harms nobody.
	stale.stop()
	newLogWatch().stop()
}
