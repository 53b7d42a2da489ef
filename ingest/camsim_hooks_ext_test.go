package ingest_test

import (
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
)

// ingest's white-box tests render camsim's scenes through ingest.NewScene
// and encode them with camsim's encoder through ingest.EncodeH264.
func init() {
	ingest.NewScene = func(w, h, fps int, d time.Duration, direction string, seed int64) ingest.SceneLike {
		return camsim.Scene{Width: w, Height: h, FPS: fps, Duration: d, Direction: camsim.Direction(direction), Seed: seed}
	}
	ingest.EncodeH264 = encodeH264
}

func encodeH264(w, h, fps, n int, frame func(i int) *ingest.Image) ([]ingest.EncodedAU, error) {
	enc, err := camsim.NewH264Encoder(w, h, fps, false)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	var out []ingest.EncodedAU
	encode := func(img *ingest.Image) error { // nil flushes
		aus, err := enc.Encode(img)
		for _, au := range aus {
			out = append(out, ingest.EncodedAU{Data: au.Data, PTS: au.PTS, Key: au.Key})
		}
		return err
	}
	for i := range n {
		if err := encode(frame(i)); err != nil {
			return nil, err
		}
	}
	if err := encode(nil); err != nil {
		return nil, err
	}
	return out, nil
}
