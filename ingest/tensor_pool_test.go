package ingest_test

import (
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
)

// The pool lends tensors of its size and takes them back; it makes only as
// many as were out at once.
func TestTensorPoolAccounting(t *testing.T) {
	p := ingest.NewTensorPool(8)
	a, b := p.Get(8), p.Get(8)
	p.Put(a)
	c := p.Get(8) // a again
	if &c[0] != &a[0] {
		t.Error("a tensor given back was not lent again")
	}
	other := p.Get(3) // another size: allocated, not counted
	p.Put(other)
	p.Put(b)
	p.Put(c)
	if st := p.Stats(); st.Allocated != 2 || st.Lent != 0 || st.MaxLent != 2 || st.Free != 2 {
		t.Errorf("stats %+v, want 2 made, none lent, at most 2 at once, 2 free", st)
	}
	var nilPool *ingest.TensorPool
	if len(nilPool.Get(4)) != 4 {
		t.Error("a nil pool does not allocate")
	}
	nilPool.Put(make([]float32, 4))
}

// A stream whose receiver does not read drops its oldest windows (counted)
// and gives their tensors back: the pool holds the queue's windows, not one
// per window made.
func TestStreamSlowReceiverGivesTensorsBack(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	if err := sim.AddSceneSequence("bounce", 160, 120, 12, []camsim.SceneSegment{{Direction: camsim.Right, Duration: 4 * time.Second}, {Direction: camsim.Left, Duration: 4 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	pre := ingest.NewPreprocessor(liveModel())
	pool := ingest.NewTensorPool(liveModel().Segments * pre.FrameSize())
	s, err := ingest.NewStream(ingest.StreamConfig{Name: "cam", URL: sim.URL("bounce"), Transport: ingest.TransportTCP,
		Window: 2500 * time.Millisecond, Stride: 2500 * time.Millisecond / 16, WindowQueue: 2}, liveModel(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetTensorPool(pool)
	s.Start()
	t.Cleanup(s.Close)
	st := waitStatus(t, s, 60*time.Second, "dropping windows", func(st ingest.Status) bool { return st.DroppedWindows >= 5 })
	ps := pool.Stats()
	t.Logf("%d windows made, %d dropped; pool %+v", st.Windows, st.DroppedWindows, ps)
	if ps.Allocated > 3 {
		t.Errorf("the pool made %d tensors for a queue of 2 windows (%d made): dropped windows' tensors were not given back", ps.Allocated, st.Windows)
	}
	s.Close()
	for w := range s.Windows() {
		pool.Put(w.Tensor)
	}
	if ps := pool.Stats(); ps.Lent != 0 {
		t.Errorf("%d tensors still lent after the queue was emptied", ps.Lent)
	}
}
