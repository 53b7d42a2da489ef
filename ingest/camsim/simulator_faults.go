package camsim

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"

	"github.com/actiond/actiond/ingest"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// This file holds the simulator's faults that change what a path serves:
// a camera of a codec actiond does not read, and one whose picture size
// changes while it streams.

// AddMJPEGScene serves a synthetic scene at rtsp://ADDR/name as Motion JPEG
// (RTP/JPEG, RFC 2435), looped forever: a camera in a codec that actiond
// does not read, for tests of how that is reported. Width and height must
// be multiples of 8 (RTP/JPEG sends sizes in blocks of 8 pixels).
func (s *Simulator) AddMJPEGScene(name string, scene Scene) error {
	if err := s.checkAdd(name); err != nil {
		return fmt.Errorf("add scene: %w", err)
	}
	if err := scene.Validate(); err != nil {
		return fmt.Errorf("add path %q: %w", name, err)
	}
	if scene.Width%8 != 0 || scene.Height%8 != 0 {
		return fmt.Errorf("add path %q: Motion JPEG needs a size in multiples of 8, got %dx%d", name, scene.Width, scene.Height)
	}
	clip := &simClip{width: scene.Width, height: scene.Height, fps: float64(scene.FPS), jpeg: true}
	for i := range scene.Frames() {
		pic, err := encodeJPEG(scene.Frame(i))
		if err != nil {
			return fmt.Errorf("add path %q: frame %d: %w", name, i, err)
		}
		clip.aus = append(clip.aus, [][]byte{pic})
		clip.bytes += len(pic)
	}
	return s.addClip(name, clip, slog.String("scene", string(scene.Direction)+" (Motion JPEG)"))
}

// encodeJPEG encodes img as a baseline JPEG (4:2:0), which RTP/JPEG carries.
func encodeJPEG(img *ingest.Image) ([]byte, error) {
	rgba := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	for i := range img.W * img.H {
		copy(rgba.Pix[4*i:4*i+3], img.Pix[3*i:3*i+3])
		rgba.Pix[4*i+3] = 0xff
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, rgba, &jpeg.Options{Quality: 85}); err != nil {
		return nil, fmt.Errorf("encode jpeg: %w", err)
	}
	return b.Bytes(), nil
}

// SwitchSceneSequence makes the served path name show another scene
// sequence from its next frame on, as a camera whose resolution (or frame
// rate) is changed while it streams: its first frame is a key frame with
// the new parameter sets in band; media time and the RTP timestamps run on.
// Readers stay connected. The path's SDP still describes the first clip
// (gortsplib fixes a stream's description), which only matters to readers
// that trust it over the parameter sets in band.
func (s *Simulator) SwitchSceneSequence(name string, w, h, fps int, segments []SceneSegment) error {
	p, err := s.pathOrErr("switch scene", name)
	if err != nil {
		return err
	}
	if p.clip == nil || p.clip.jpeg {
		return fmt.Errorf("switch scene of %q: only a served H.264 path can switch", name)
	}
	q := SceneSequence{Width: w, Height: h, FPS: fps, Segments: segments}
	if err := q.Validate(); err != nil {
		return fmt.Errorf("switch scene of %q: %w", name, err)
	}
	clip, err := sceneClip(w, h, fps, q.Frames(), s.cfg.Bitrate, q.Frame)
	if err != nil {
		return fmt.Errorf("switch scene of %q: %w", name, err)
	}
	p.mu.Lock()
	p.nextClip = clip
	p.mu.Unlock()
	p.log.Info("fault: scene switched", "size", fmt.Sprintf("%dx%d", w, h), "fps", fps, "frames", len(clip.aus))
	return nil
}

// takeNextClip returns the clip that SwitchSceneSequence left for the
// player, once.
func (p *simPath) takeNextClip() *simClip {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.nextClip
	p.nextClip = nil
	return c
}

// countAuthFailure counts a request for the path refused for its
// credentials, when it carried some (p may be nil: an unknown path).
func (p *simPath) countAuthFailure(req *base.Request) {
	if p == nil || len(req.Header["Authorization"]) == 0 {
		return
	}
	p.mu.Lock()
	p.authFails++
	p.mu.Unlock()
}

// newPacketizer returns the access unit → RTP packets encoder of a served
// path's format.
func newPacketizer(forma format.Format) (func(au [][]byte) ([]*rtp.Packet, error), error) {
	switch f := forma.(type) {
	case *format.H264:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		return enc.Encode, nil
	case *format.MJPEG:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		return func(au [][]byte) ([]*rtp.Packet, error) {
			if len(au) != 1 {
				return nil, errors.New("a Motion JPEG access unit is one picture")
			}
			return enc.Encode(au[0])
		}, nil
	}
	return nil, fmt.Errorf("no packetizer for %s", forma.Codec())
}
