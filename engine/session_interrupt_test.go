package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/internal/slowmodel"
)

// A run whose context ends stops between two of the graph's nodes, with
// ErrInterrupted; an ended context refuses a run. The slow model's
// run takes minutes; the deadline only catches a run that was not
// interrupted.
func TestRunContextInterrupts(t *testing.T) {
	t.Parallel()
	slow := filepath.Join(t.TempDir(), "slow.onnx")
	if err := slowmodel.WriteFile(slow, 1000); err != nil {
		t.Fatal(err)
	}
	s := openSession(t, slow)
	clip := make([]float32, 16*3*224*224)

	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.RunContext(ctx, clip, 1)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // most likely inside the run; before it, the run is refused the same way
	cancel(errors.New("shutting down"))
	select {
	case err := <-done:
		if !errors.Is(err, engine.ErrInterrupted) || err.Error() == "" {
			t.Fatalf("interrupted run: %v, want ErrInterrupted", err)
		}
		t.Logf("interrupted: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the run went on after its context ended")
	}

	// An ended context refuses the run at once; a live one runs it.
	if _, err := s.RunContext(ctx, clip, 1); !errors.Is(err, engine.ErrInterrupted) {
		t.Errorf("run with an ended context: %v, want ErrInterrupted", err)
	}
	aff := openSession(t, affineModel(t, []int64{-1, 2}, 2, 1))
	out, err := aff.RunContext(context.Background(), []float32{1, 2}, 1)
	if err != nil || len(out) != 2 || out[0] != 3 || out[1] != 5 {
		t.Errorf("run after: %v %v, want [3 5]", out, err)
	}
}
