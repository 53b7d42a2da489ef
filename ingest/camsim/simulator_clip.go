package camsim

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// maxClipBytes bounds the H.264 that one served path holds in memory. Clips
// are meant to be seconds long (a few MB at most); this only stops a long
// film from eating the machine.
const maxClipBytes = 256 << 20

// simClip is a video encoded once into H.264 and kept in memory, so that a
// served path can loop it forever at no cost but packetisation.
type simClip struct {
	width, height int
	fps           float64    // the source's frame rate: pacing and timestamps follow it
	sps, pps      []byte     // for the SDP, so that readers know the size before the first frame
	aus           [][][]byte // access units as NAL units, in presentation order (no B-frames)
	bytes         int
	// jpeg marks a Motion JPEG clip (AddMJPEGScene): each access unit is
	// one JPEG picture, and sps and pps are nil.
	jpeg bool
}

// clipEncoder builds a simClip frame by frame with libx264, SPS and PPS in
// band before every key frame, as a live camera sends them.
type clipEncoder struct {
	enc  *H264Encoder
	clip *simClip
}

// bitrate is the encoder's target in bits per second; 0 is constant quality
// (crf 18).
func newClipEncoder(w, h int, fps float64, bitrate int) (*clipEncoder, error) {
	if fps <= 0 || math.IsNaN(fps) || math.IsInf(fps, 0) {
		return nil, fmt.Errorf("encode clip: frame rate must be positive, got %v", fps)
	}
	// The encoder's own rate is only a rate-control hint; timestamps come
	// from fps.
	enc, err := NewH264EncoderRate(w, h, max(int(math.Round(fps)), 1), false, bitrate)
	if err != nil {
		return nil, fmt.Errorf("encode clip: %w", err)
	}
	return &clipEncoder{enc: enc, clip: &simClip{width: w, height: h, fps: fps}}, nil
}

// add encodes one frame.
func (e *clipEncoder) add(img *ingest.Image) error {
	aus, err := e.enc.Encode(img)
	if err != nil {
		return fmt.Errorf("encode clip: frame %d: %w", len(e.clip.aus), err)
	}
	return e.keep(aus)
}

// keep splits finished access units into NAL units and stores them.
func (e *clipEncoder) keep(aus []H264AU) error {
	c := e.clip
	for _, au := range aus {
		var nalus h264.AnnexB
		if err := nalus.Unmarshal(au.Data); err != nil {
			return fmt.Errorf("encode clip: split access unit %d: %w", len(c.aus), err)
		}
		for _, n := range nalus {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				c.sps = n
			case h264.NALUTypePPS:
				c.pps = n
			}
		}
		c.aus = append(c.aus, [][]byte(nalus))
		c.bytes += len(au.Data)
	}
	if c.bytes > maxClipBytes {
		return fmt.Errorf("encode clip: more than %d MiB of H.264 after %d frames; use a shorter clip",
			maxClipBytes>>20, len(c.aus))
	}
	return nil
}

// finish flushes the encoder, frees it and returns the clip.
func (e *clipEncoder) finish() (*simClip, error) {
	defer e.close()
	aus, err := e.enc.Encode(nil)
	if err != nil {
		return nil, fmt.Errorf("encode clip: flush: %w", err)
	}
	if err := e.keep(aus); err != nil {
		return nil, err
	}
	c := e.clip
	switch {
	case len(c.aus) == 0:
		return nil, errors.New("encode clip: no frames")
	case c.sps == nil || c.pps == nil:
		return nil, errors.New("encode clip: the encoder gave no SPS/PPS")
	case !h264.IsRandomAccess(c.aus[0]):
		// Every loop restarts at frame 0: it must decode on its own.
		return nil, errors.New("encode clip: the first frame is not a key frame")
	}
	return c, nil
}

// close frees the encoder; it is safe to call more than once.
func (e *clipEncoder) close() { e.enc.Close() }

// sceneClip encodes one pass of a synthetic scene of n frames.
func sceneClip(w, h, fps, n, bitrate int, render func(i int) *ingest.Image) (*simClip, error) {
	e, err := newClipEncoder(w, h, float64(fps), bitrate)
	if err != nil {
		return nil, err
	}
	defer e.close()
	for i := range n {
		if err := e.add(render(i)); err != nil {
			return nil, err
		}
	}
	return e.finish()
}

// fileClip decodes the video of path (any codec FFmpeg reads) and re-encodes
// it as H.264 at the file's frame rate. Frames of odd width or height lose
// their last column or row: 4:2:0 needs even sizes. It also returns how
// many frames the container promised, for the caller to report a short
// decode.
func fileClip(path string, bitrate int) (clip *simClip, promised int, err error) {
	f, err := ingest.OpenVideoFile(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	info := f.Info()
	if info.FPS <= 0 {
		return nil, 0, fmt.Errorf("serve video %q: the file states no frame rate", path)
	}
	n, err := f.CountFrames()
	if err != nil {
		return nil, 0, err
	}
	w, h := info.Width&^1, info.Height&^1
	e, err := newClipEncoder(w, h, info.FPS, bitrate)
	if err != nil {
		return nil, 0, fmt.Errorf("serve video %q: %w", path, err)
	}
	defer e.close()
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	got := 0
	var encErr error
	decErr := f.Decode(want, func(_ int, _ time.Duration, img *ingest.Image) error {
		if img.W < w || img.H < h {
			encErr = fmt.Errorf("frame %d is %dx%d, the stream said %dx%d", got, img.W, img.H, info.Width, info.Height)
		} else {
			encErr = e.add(cropImage(img, w, h))
		}
		got++
		return encErr
	})
	switch {
	case encErr != nil:
		return nil, 0, fmt.Errorf("serve video %q: %w", path, encErr)
	case decErr != nil && got == 0:
		return nil, 0, decErr
	}
	// Otherwise what decoded is the clip: a packet count can overstate
	// the frames (packed B-frames in AVI), and a damaged tail is no reason
	// not to serve the rest.
	clip, err = e.finish()
	if err != nil {
		return nil, 0, fmt.Errorf("serve video %q: %w", path, err)
	}
	return clip, n, nil
}

// cropImage returns the top-left w x h part of img (img itself when it is
// that size already).
func cropImage(img *ingest.Image, w, h int) *ingest.Image {
	if img.W == w && img.H == h {
		return img
	}
	out := ingest.NewImage(w, h)
	for y := range h {
		copy(out.Pix[y*w*3:(y+1)*w*3], img.Pix[y*img.W*3:y*img.W*3+w*3])
	}
	return out
}

// AddH264 serves, looped, an H.264 clip already cut into access units
// (each a list of NAL units without start codes, in presentation order, no
// B-frames) with the SPS and PPS for the SDP: for tests that need a stream
// that no scene or file gives, such as one that starts after its only IDR.
func (s *Simulator) AddH264(name string, w, h int, fps float64, sps, pps []byte, aus [][][]byte) error {
	clip := &simClip{width: w, height: h, fps: fps, sps: sps, pps: pps, aus: aus}
	for _, au := range aus {
		for _, n := range au {
			clip.bytes += len(n)
		}
	}
	return s.addClip(name, clip, slog.String("clip", name))
}
