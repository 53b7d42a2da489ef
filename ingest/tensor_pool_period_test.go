package ingest

import (
	"testing"
	"time"
)

// After a burst (every stream's window waiting at once), the pool keeps
// that many tensors for one to two periods, then only as many as were lent
// at once since: the burst's tensors are not kept for good.
func TestTensorPoolForgetsAnOldBurst(t *testing.T) {
	clock := time.Unix(1000, 0)
	p := NewTensorPool(4)
	p.now = func() time.Time { return clock }
	lend := func(n int) {
		var out [][]float32
		for range n {
			out = append(out, p.Get(4))
		}
		for _, x := range out {
			p.Put(x)
		}
	}
	lend(8) // the burst
	if st := p.Stats(); st.Free != 8 {
		t.Fatalf("after a burst of 8: %+v, want 8 kept", st)
	}
	clock = clock.Add(TensorPoolPeriod)
	lend(2) // next period: the burst is still remembered
	if st := p.Stats(); st.Free != 8 || st.Allocated != 8 {
		t.Fatalf("one period on: %+v, want the 8 kept", st)
	}
	clock = clock.Add(TensorPoolPeriod)
	lend(2) // two periods on: only 2 were lent at once lately
	if st := p.Stats(); st.Free != 2 || st.Dropped != 6 || st.Allocated != 8 {
		t.Fatalf("two periods on: %+v, want 2 kept and 6 dropped", st)
	}
	lend(3) // a larger need makes a tensor and keeps it
	if st := p.Stats(); st.Free != 3 || st.Allocated != 9 {
		t.Fatalf("lending 3: %+v, want a 9th made and 3 kept", st)
	}
}
