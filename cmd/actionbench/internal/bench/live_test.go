package bench

import (
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/cmd/internal/plot"
	"github.com/actiond/actiond/internal/procstat"
	"github.com/actiond/actiond/internal/stats"
)

// The plot is a PNG of the stated size with every series drawn in its
// colour.
func TestLivePlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "live.png")
	pts := []livePoint{
		{N: 1, P50: 300 * time.Millisecond, P99: 500 * time.Millisecond, CPU: 0.3, BenchCPU: 0.01, MachineCPU: 0.5, RSS: 300 << 20, EffStride: 1250 * time.Millisecond},
		{N: 4, P50: 600 * time.Millisecond, P99: 900 * time.Millisecond, CPU: 1.1, BenchCPU: 0.04, MachineCPU: 1.3, RSS: 380 << 20, EffStride: 1250 * time.Millisecond},
		{N: 8, P50: 2 * time.Second, P99: 4 * time.Second, CPU: 1.9, BenchCPU: 0.08, MachineCPU: 2, RSS: 500 << 20, EffStride: 2500 * time.Millisecond},
	}
	if err := writeLivePlot(path, pts, 250<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1000 || b.Dy() != 880 {
		t.Errorf("size %v", b)
	}
	count := map[color.RGBA]int{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			count[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}]++
		}
	}
	for name, c := range map[string]color.RGBA{"p50": plot.Blue, "p99": plot.Red, "actiond": plot.Green, "simulator": plot.Orange, "text": plot.Ink} {
		// Lines between three points and a legend: well over 100 pixels.
		if count[c] < 100 {
			t.Errorf("%s: %d pixels of its colour", name, count[c])
		}
	}
}

func TestQuantile(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 200; i++ {
		v = append(v, time.Duration(i)*time.Millisecond)
	}
	if p50, p99 := stats.Percentile(v, 0.5), stats.Percentile(v, 0.99); p50 != 100*time.Millisecond || p99 != 198*time.Millisecond {
		t.Errorf("p50 %v p99 %v, want 100ms 198ms", p50, p99)
	}
	if q := stats.Percentile(v[:1], 0.99); q != time.Millisecond {
		t.Errorf("one value: %v", q)
	}
}

// /proc readings of this process: CPU time grows with work, RSS is
// plausible.
func TestProcReadings(t *testing.T) {
	c0, err := procCPU("self")
	if err != nil {
		t.Fatal(err)
	}
	// Busy until the clock ticks (10 ms of CPU), at most 10 s on a
	// crowded machine.
	c1 := c0
	for start := time.Now(); c1 <= c0 && time.Since(start) < 10*time.Second; c1, _ = procCPU("self") {
		for range 1000 {
			_ = strings.Repeat("x", 1000)
		}
	}
	if c1 <= c0 {
		t.Errorf("CPU time %v then %v after a busy loop", c0, c1)
	}
	if m, err := machineCPU(); err != nil || m <= 0 {
		t.Errorf("machine CPU %v, %v", m, err)
	}
	if r, err := procstat.RSS(os.Getpid()); err != nil || r < 1<<20 || r > 1<<34 {
		t.Errorf("RSS %d, %v", r, err)
	}
}

func TestParseInts(t *testing.T) {
	if got, err := parseInts("1, 2,4,,16"); err != nil || len(got) != 4 || got[3] != 16 {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := parseInts("1,x"); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad count: %v", err)
	}
}

// pprof -top rows, as go tool pprof prints them, become the pipeline's
// shares.
func TestCPUShares(t *testing.T) {
	top := strings.Split(`Duration: 20s, Total samples = 10s (50.00%)
      flat  flat%   sum%        cum   cum%
     3s 30.00% 30.00%      3s 30.00%  [libavcodec.so.59.37.100]
     2s 20.00% 50.00%      2s 20.00%  [libonnxruntime.so.1]
     2.5s 25.00% 75.00%      2.5s 25.00%  runtime.cgocall
         0     0% 75.00%      2s 20.00%  github.com/actiond/actiond/engine.(*Session).RunShape
         0     0% 75.00%      2s 20.00%  github.com/actiond/actiond/engine.(*Session).Run
         0     0% 75.00%      0.5s 5.00%  github.com/actiond/actiond/ingest.(*decoder).decode
     0.1s  1% 76.00%      0.4s 4.00%  github.com/actiond/actiond/ingest.Preprocessor.Frame`, "\n")
	want := "H.264 decoding about 35%, inference about 40%, preprocessing about 4%"
	if got := cpuShares(top); !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want %q…", got, want)
	}
}
