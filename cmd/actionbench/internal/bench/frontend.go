package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
)

// peerModes are the clip_bench.py modes, in report order.
var peerModes = []struct{ Mode, What string }{
	{"cv2-read", "OpenCV: read() every frame, then sample"},
	{"cv2-grab", "OpenCV: grab() every frame, retrieve() the sampled ones"},
	{"pyav", "PyAV: decode every frame, convert the sampled ones"},
}

type clipResult struct {
	Name, Path, Desc string
	Frames           int
	Ours             stat // ms per clip
	OursDecode       stat
	OursPrep         stat
	Decoded          int  // frames actiond decodes
	AllDecode        stat // actiond's decoder on every frame, nothing converted
	Peers            []stat
	PeerCommands     []string
	Mismatch         []string // peers that sampled other indices
}

// best is the index of the fastest peer by median.
func (r clipResult) best() int {
	b := 0
	for i, p := range r.Peers {
		if p.Median < r.Peers[b].Median {
			b = i
		}
	}
	return b
}

func (r clipResult) ratio() float64 { return r.Ours.Median / r.Peers[r.best()].Median }

func benchFrontEnd(c config) ([]clipResult, error) {
	man, err := onnx.LoadManifest(filepath.Join(c.work, "pptsmv2-seed1.onnx"))
	if err != nil {
		return nil, err
	}
	hd := filepath.Join(c.work, "scene-1920x1080-25fps-10s.mp4")
	if _, err := os.Stat(hd); err != nil {
		progress("generating %s", hd)
		if err := runQuiet(c.actiond, "scene", "--size", "1920x1080", "--fps", "25", "--duration", "10s", "--out", hd); err != nil {
			return nil, err
		}
	}
	clips := []clipResult{
		{Name: filepath.Base(c.clip), Path: c.clip, Desc: "the shared test clip"},
		{Name: filepath.Base(hd), Path: hd, Desc: "1920×1080, 25 fps, 10 s H.264, made by `" + c.actiond + " scene --size 1920x1080 --fps 25 --duration 10s --out " + hd + "`"},
	}
	var out []clipResult
	for _, r := range clips {
		if _, err := os.Stat(r.Path); err != nil {
			progress("skipping %s: %v", r.Path, err)
			continue
		}
		if err := benchClip(c, man, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func benchClip(c config, man models.Manifest, r *clipResult) error {
	pre := ingest.NewPreprocessor(man)
	progress("%s: actiond ingest.LoadClip ×%d", r.Name, c.clipRepeats)
	warm, err := ingest.LoadClip(r.Path, pre, man.Segments)
	if err != nil {
		return err
	}
	r.Frames = warm.FramesTotal
	var all, dec, prep []float64
	for range c.clipRepeats {
		t := time.Now()
		clip, err := ingest.LoadClip(r.Path, pre, man.Segments)
		if err != nil {
			return err
		}
		all = append(all, ms(time.Since(t)))
		dec = append(dec, ms(clip.Decode))
		prep = append(prep, ms(clip.Preprocess))
	}
	r.Ours, r.OursDecode, r.OursPrep = summarise(all), summarise(dec), summarise(prep)
	r.Decoded = warm.FramesDecoded
	// What every peer must do at least: decode every frame (they sample
	// afterwards), here with actiond's own decoder and threads.
	var full []float64
	for range c.clipRepeats {
		t := time.Now()
		if err := decodeEveryFrame(r.Path, warm.FramesTotal); err != nil {
			return err
		}
		full = append(full, ms(time.Since(t)))
	}
	r.AllDecode = summarise(full)
	script := filepath.Join(c.work, "clip_bench.py")
	for _, p := range peerModes {
		progress("%s: %s ×%d", r.Name, p.Mode, c.clipRepeats)
		args := []string{script, p.Mode, r.Path, strconv.Itoa(c.clipRepeats)}
		var res struct {
			Seconds []float64 `json:"seconds"`
			Frames  int       `json:"frames"`
			Indices []int     `json:"indices"`
		}
		if err := runJSON(&res, nil, c.python, args...); err != nil {
			return err
		}
		v := make([]float64, len(res.Seconds))
		for i, s := range res.Seconds {
			v[i] = s * 1e3
		}
		r.Peers = append(r.Peers, summarise(v))
		r.PeerCommands = append(r.PeerCommands, c.python+" "+join(args))
		if !slices.Equal(res.Indices, warm.Indices) {
			r.Mismatch = append(r.Mismatch, fmt.Sprintf("%s sampled %v from %d frames (actiond: %v from %d)", p.Mode, res.Indices, res.Frames, warm.Indices, warm.FramesTotal))
		}
	}
	progress("%s: actiond %.1f ms, best peer %s %.1f ms, ratio %.2f", r.Name, r.Ours.Median,
		peerModes[r.best()].Mode, r.Peers[r.best()].Median, r.ratio())
	return nil
}

// decodeEveryFrame decodes the n frames of path and converts none (the
// last is converted: Decode hands on only what it converts).
func decodeEveryFrame(path string, n int) error {
	f, err := ingest.OpenVideoFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// Without CountFrames first, Decode decodes every frame up to the
	// wanted one.
	return f.Decode([]int{n - 1}, func(int, time.Duration, *ingest.Image) error { return nil })
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// frontEndFloor says how much of the clip actiond decodes and what
// decoding alone costs, the part no preprocessing trick removes.
func frontEndFloor(p func(string, ...any), cr clipResult) {
	best := cr.Peers[cr.best()].Median
	p("actiond decodes %d of the %d frames: the others cannot change the sampled ones (non-reference pictures, and references after the last sampled frame of their IDR period), and decoding stops after the last sampled frame. ", cr.Decoded, cr.Frames)
	p("The peers decode all %d; in actiond's own decoder that alone takes %s ms, %.2f× the best peer's whole time. ", cr.Frames, cr.AllDecode, cr.AllDecode.Median/best)
	p("actiond's decode (its %d frames and the RGB conversion of the sampled ones) is %.2f× the best peer's time; ", cr.Decoded, cr.OursDecode.Median/best)
	if cr.OursDecode.Median/best > 0.5 {
		p("so the 0.5× goal is out of reach here while decoding is done on as many cores as the peers get: it would need the reference frames decoded faster than libavcodec does.\n\n")
	} else {
		p("the rest is preprocessing and set-up.\n\n")
	}
}
