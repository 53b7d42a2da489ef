package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/models"
)

// inferenceJob is one window waiting for the model.
type inferenceJob struct {
	stream string
	gen    uint64
	epoch  uint64
	span   windowSpan
	tensor []float32 // [segments, 3, size, size], or [segments, features…] with the feature cache
	made   time.Time // when the stream handed the window over
	// snapshot is the frame at the window's centre, for the snapshot of
	// an action the window starts; nil when none is kept.
	snapshot *frameSnapshot
}

// Scheduler is the one place where windows meet the model: it collects the
// windows of every stream and runs them as batches [N,segments,3,S,S]
// through one engine session, so that the cost grows with the work, not
// with the number of streams. A batch runs when it holds MaxBatch windows,
// or MaxWait after its first window came. Its goroutine owns the batch
// buffer; streams hand windows over with Submit, which waits while the
// scheduler is busy (the stream's own bounded queue then drops its oldest
// windows, counted as dropped_windows).
type Scheduler struct {
	sess     *engine.Session
	model    models.Manifest
	itemSize int
	maxBatch int
	maxWait  time.Duration
	deliver  func(hubResult)
	metrics  *Metrics
	log      *slog.Logger

	in       chan inferenceJob
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	buf      []float32
}

// NewScheduler returns a scheduler that runs sess and hands each window's
// result to deliver, on the scheduler's goroutine. sess is the whole model,
// or the back of a split one (the windows then hold features): a window is
// one item of its input.
func NewScheduler(sess *engine.Session, model models.Manifest, maxBatch int, maxWait time.Duration,
	deliver func(hubResult), metrics *Metrics, log *slog.Logger) *Scheduler {
	item := model.Segments * 3 * model.InputSize * model.InputSize
	if shape := sess.Input().Shape; len(shape) > 1 && !slices.Contains(shape[1:], -1) {
		item = 1
		for _, d := range shape[1:] {
			item *= int(d)
		}
	}
	return &Scheduler{
		sess:     sess,
		model:    model,
		itemSize: item,
		maxBatch: maxBatch,
		maxWait:  maxWait,
		deliver:  deliver,
		metrics:  metrics,
		log:      log,
		in:       make(chan inferenceJob, maxBatch),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Start starts the scheduler's goroutine.
func (s *Scheduler) Start() { go s.run() }

// Close stops taking windows, runs the ones already handed over, and waits.
func (s *Scheduler) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Wait waits until the scheduler has stopped.
func (s *Scheduler) Wait() { <-s.done }

// Submit hands a window over, waiting while the scheduler is busy. It
// returns false, dropping the window, when ctx ends or the scheduler stops.
func (s *Scheduler) Submit(ctx context.Context, job inferenceJob) bool {
	select {
	case <-s.stop:
		return false
	default:
	}
	select {
	case s.in <- job:
		return true
	case <-ctx.Done():
		return false
	case <-s.stop:
		return false
	}
}

func (s *Scheduler) run() {
	defer close(s.done)
	for {
		var batch []inferenceJob
		select {
		case j := <-s.in:
			batch = append(batch, j)
		case <-s.stop:
			s.drain()
			return
		}
		timer := time.NewTimer(s.maxWait)
	collect:
		for len(batch) < s.maxBatch {
			select {
			case j := <-s.in:
				batch = append(batch, j)
			case <-timer.C:
				break collect
			case <-s.stop:
				break collect
			}
		}
		timer.Stop()
		s.runBatch(batch)
	}
}

// drain runs what was handed over before Close.
func (s *Scheduler) drain() {
	for {
		var batch []inferenceJob
	collect:
		for len(batch) < s.maxBatch {
			select {
			case j := <-s.in:
				batch = append(batch, j)
			default:
				break collect
			}
		}
		if len(batch) == 0 {
			return
		}
		s.runBatch(batch)
	}
}

// runBatch runs one batch and delivers each window's scores.
func (s *Scheduler) runBatch(batch []inferenceJob) {
	n := len(batch)
	if cap(s.buf) < n*s.itemSize {
		s.buf = make([]float32, s.maxBatch*s.itemSize)
	}
	input := s.buf[:n*s.itemSize]
	for i, j := range batch {
		copy(input[i*s.itemSize:(i+1)*s.itemSize], j.tensor)
	}
	start := time.Now()
	out, err := s.sess.Run(input, n)
	latency := time.Since(start)
	s.metrics.inferenceSeconds.Observe(latency.Seconds())
	s.metrics.batchSize.Observe(float64(n))
	labels := len(s.model.Labels)
	if err == nil && len(out) != n*labels {
		err = fmt.Errorf("model output has %d values, want %d (%d windows of %d labels)", len(out), n*labels, n, labels)
	}
	if err != nil {
		s.metrics.inferenceErrors.Inc()
		s.log.Error("inference failed; the batch's windows are dropped", "windows", n, "error", err)
		return
	}
	for i, j := range batch {
		scores := out[i*labels : (i+1)*labels]
		if s.model.Output == models.OutputLogits {
			scores = engine.Softmax(scores)
		} else {
			scores = append([]float32(nil), scores...)
		}
		s.deliver(hubResult{
			name: j.stream, gen: j.gen, epoch: j.epoch, span: j.span,
			scores: scores, latency: latency, made: j.made, snapshot: j.snapshot,
		})
	}
}
