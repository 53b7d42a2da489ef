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

// A pool told to keep n tensors keeps no more than n, lent and free
// together: when streams go (the server lowers n), the tensors they used
// leave the pool at once if free, else when given back; it still lends
// past n when asked.
func TestTensorPoolKeepsAtMostKeep(t *testing.T) {
	p := ingest.NewTensorPool(8)
	var out [][]float32
	for range 6 {
		out = append(out, p.Get(8))
	}
	for _, x := range out[:4] {
		p.Put(x)
	}
	if st := p.Stats(); st.Free != 4 || st.Lent != 2 {
		t.Fatalf("stats %+v, want 4 free and 2 lent", st)
	}
	p.SetKeep(3) // 2 lent: one free tensor stays
	if st := p.Stats(); st.Free != 1 || st.Lent != 2 || st.Dropped != 3 {
		t.Fatalf("after SetKeep(3): stats %+v, want 1 free, 2 lent, 3 dropped", st)
	}
	p.Put(out[4]) // 1 lent + 1 free + this = 3: kept
	p.Put(out[5]) // 0 lent + 2 free + this = 3: kept
	if st := p.Stats(); st.Free != 3 || st.Lent != 0 || st.Dropped != 3 {
		t.Fatalf("after giving all back: stats %+v, want 3 free, 0 lent, 3 dropped", st)
	}
	more := [][]float32{p.Get(8), p.Get(8), p.Get(8), p.Get(8)}
	if st := p.Stats(); st.Allocated != 7 || st.Lent != 4 {
		t.Fatalf("lending past the bound: stats %+v, want a 7th tensor made and 4 lent", st)
	}
	for _, x := range more {
		p.Put(x)
	}
	if st := p.Stats(); st.Free != 3 || st.Dropped != 4 {
		t.Fatalf("after giving the 4 back: stats %+v, want 3 free, 4 dropped", st)
	}
	p.SetKeep(0) // no bound again
	for range 3 {
		p.Put(make([]float32, 8))
	}
	if st := p.Stats(); st.Free != 6 {
		t.Fatalf("without a bound: stats %+v, want 6 free", st)
	}
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
		w.Lease.Release()
	}
	if ps := pool.Stats(); ps.Lent != 0 {
		t.Errorf("%d tensors still lent after the queue was emptied", ps.Lent)
	}
}
