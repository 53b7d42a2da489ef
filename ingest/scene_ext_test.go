package ingest_test

import (
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
)

// ingest's white-box tests render camsim's scenes through ingest.NewScene.
func init() {
	ingest.NewScene = func(w, h, fps int, d time.Duration, direction string, seed int64) ingest.SceneLike {
		return camsim.Scene{Width: w, Height: h, FPS: fps, Duration: d, Direction: camsim.Direction(direction), Seed: seed}
	}
}
