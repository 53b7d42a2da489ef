package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/models"
)

// inferenceJob is one window waiting for the model.
type inferenceJob struct {
	stream string
	gen    uint64
	epoch  uint64
	span   ingest.Span
	tensor []float32     // [segments, 3, size, size], or [segments, features…] with the feature cache
	lease  *ingest.Lease // carries the tensor instead, in the stream's ring (ingest.Window.Lease)
	made   time.Time     // when the stream handed the window over
	// static: the stream's skip_static is on and the frames this window
	// added barely differ from those before them (staticWindow), so the
	// result of the window before may stand for it.
	static bool
	seq    uint64 // the scheduler's number for it within its stream
	// snapshot is the frame at the window's centre, for the snapshot of
	// an action the window starts; nil when none is kept.
	snapshot *frameSnapshot
}

// release gives the job's tensor back to pool, or its lease up.
func (j *inferenceJob) release(pool *ingest.TensorPool) {
	pool.Put(j.tensor)
	j.lease.Release()
	j.tensor, j.lease = nil, nil
}

// Scheduler is the one place where windows meet the model. Under load it
// sheds instead of queueing: each stream has at most one window waiting,
// and a newer window replaces it (the older one is skipped, counted in the
// stream's skipped_windows), so latency stays near one round of model runs
// however many cameras there are, and a stream's effective stride stretches
// instead. Streams with a waiting window are served oldest first, one
// window each per round (round robin), so every stream gets an equal share
// of the model.
//
// Submit never blocks: a stream's goroutine hands its window over and goes
// on. One runner goroutine per engine session (inference.sessions) takes
// the next batch: up to MaxBatch windows of different streams, when it
// holds MaxBatch windows or MaxWait after its first window came; a stream
// has at most one window in a run, so its results come in order. A
// window's tensor goes back to the pool (or its lease on the stream's ring
// is released) once it is copied into the batch.
//
// Close drops the waiting windows and ends the runs in flight (ONNX
// Runtime's terminate flag), so that shutdown does not wait for the model.
type Scheduler struct {
	sessions []*engine.Session
	// busy is the time the sessions spent running the model, added up
	// (the fleet's heartbeat reports it as the inference load).
	busy     atomic.Int64
	model    models.Manifest
	itemSize int
	maxBatch int
	maxWait  time.Duration
	pool     *ingest.TensorPool // nil: tensors are not given back
	deliver  func(hubResult)
	metrics  *Metrics
	log      *slog.Logger

	ctx      context.Context // ends the runs in flight
	cancel   context.CancelCauseFunc
	wake     chan struct{} // a runner may find work
	runners  sync.WaitGroup
	start    sync.Once
	stopOnce sync.Once
	done     chan struct{}

	mu       sync.Mutex
	stopping bool
	streams  map[schedKey]*schedStream
	line     []*schedStream // streams with a window waiting, oldest first

	// beforeRun, for tests, is called on the runner's goroutine with each
	// batch before it runs.
	beforeRun func(batch []inferenceJob)
}

type schedKey struct {
	name string
	gen  uint64
}

// schedStream is what the scheduler knows of one stream.
type schedStream struct {
	key     schedKey
	seq     uint64        // jobs numbered so far
	waiting *inferenceJob // at most one window waits
	since   time.Time     // when it started waiting: its place in line
	// running is the seq of its window in a run, 0 if none; runEpoch
	// that window's epoch.
	running  uint64
	runEpoch uint64
	// follow is a static window (without its tensor) that takes the
	// result of the window numbered followAfter, ahead of it.
	follow      *inferenceJob
	followAfter uint64
	// last is the stream's last result, for a static window with nothing
	// ahead of it.
	last      []float32
	lastEpoch uint64
	hasLast   bool
	skipped   uint64
	served    []servedWindow // over the last minute, oldest first
	// loggedSkips is skipped when the last "model busy" line was logged,
	// at loggedAt.
	loggedSkips uint64
	loggedAt    time.Time
}

// skipLogEvery is how often a stream's skipped windows are summarised in
// the log, at most.
const skipLogEvery = 10 * time.Second

// skipLogLocked returns how many windows the stream skipped since the last
// summary, when one is due; 0 otherwise.
func (st *schedStream) skipLogLocked() uint64 {
	if st.skipped == st.loggedSkips || time.Since(st.loggedAt) < skipLogEvery {
		return 0
	}
	n := st.skipped - st.loggedSkips
	st.loggedSkips, st.loggedAt = st.skipped, time.Now()
	return n
}

// servedWindow is a window the model ran or reused, for effective_stride.
type servedWindow struct {
	end time.Duration // media time
	at  time.Time
}

// strideSpan is how far back effective_stride looks.
const strideSpan = time.Minute

// NewScheduler returns a scheduler that runs its batches on sessions (one
// runner each) and hands each window's result to deliver, on a runner's
// goroutine, in each stream's window order. The sessions are the whole
// model, or the back of a split one (the windows then hold features): a
// window is one item of its input. pool, if not nil, gets the windows'
// tensors back.
func NewScheduler(sessions []*engine.Session, model models.Manifest, maxBatch int, maxWait time.Duration,
	pool *ingest.TensorPool, deliver func(hubResult), metrics *Metrics, log *slog.Logger) *Scheduler {
	item := model.Segments * 3 * model.InputSize * model.InputSize
	if shape := sessions[0].Input().Shape; len(shape) > 1 && !slices.Contains(shape[1:], -1) {
		item = 1
		for _, d := range shape[1:] {
			item *= int(d)
		}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Scheduler{
		sessions: sessions,
		model:    model,
		itemSize: item,
		maxBatch: max(maxBatch, 1),
		maxWait:  maxWait,
		pool:     pool,
		deliver:  deliver,
		metrics:  metrics,
		log:      log,
		ctx:      ctx,
		cancel:   cancel,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		streams:  map[schedKey]*schedStream{},
	}
}

// ItemSize is the number of values of one window's tensor.
func (s *Scheduler) ItemSize() int { return s.itemSize }

// Start starts one runner per session.
func (s *Scheduler) Start() {
	s.start.Do(func() {
		for _, sess := range s.sessions {
			s.runners.Go(func() { s.runner(sess) })
		}
		go func() {
			s.runners.Wait()
			close(s.done)
		}()
	})
}

// errSchedulerClosed ends the runs in flight at Close.
var errSchedulerClosed = errors.New("the server is shutting down")

// Close stops taking windows, drops the waiting ones, ends the runs in
// flight, and waits for the runners.
func (s *Scheduler) Close() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		dropped := 0
		for _, st := range s.line {
			st.waiting.release(s.pool)
			st.waiting = nil
			dropped++
		}
		s.line = nil
		s.mu.Unlock()
		if dropped > 0 {
			s.log.Info("windows waiting for the model dropped at shutdown", "windows", dropped)
		}
		s.cancel(errSchedulerClosed)
		s.Start() // a scheduler never started still ends
	})
	<-s.done
}

// Wait waits until the scheduler has stopped.
func (s *Scheduler) Wait() { <-s.done }

// Submit hands a window over without waiting: it becomes its stream's
// waiting window, replacing (skipping) an older one. A static window
// behind another of its stream takes that one's result instead; with
// nothing ahead, the stream's last result at once. It returns false when
// the scheduler has stopped (the tensor goes back to the pool).
func (s *Scheduler) Submit(job inferenceJob) bool {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		job.release(s.pool)
		return false
	}
	st := s.streams[schedKey{job.stream, job.gen}]
	if st == nil {
		st = &schedStream{key: schedKey{job.stream, job.gen}}
		s.streams[st.key] = st
		s.pool.SetKeep(poolKeep(len(s.streams)))
	}
	st.seq++
	job.seq = st.seq
	if job.static {
		if r, ok := s.reuseLocked(st, job); ok {
			s.mu.Unlock()
			s.deliver(r)
			return true
		}
		// A static window behind another of the same epoch takes its
		// result: the tensor is not needed.
		ahead, aheadEpoch := st.running, st.runEpoch
		if st.waiting != nil {
			ahead, aheadEpoch = st.waiting.seq, st.waiting.epoch
		}
		if ahead != 0 && aheadEpoch == job.epoch {
			job.release(s.pool)
			if st.follow != nil {
				st.skipped++
			}
			st.follow, st.followAfter = &job, ahead
			skips := st.skipLogLocked()
			s.mu.Unlock()
			s.logSkips(job.stream, skips)
			return true
		}
	}
	if st.waiting != nil {
		// Latest wins: the waiting window (and a static one that was to
		// take its result) is skipped; the stream keeps its place.
		st.skipped++
		if st.follow != nil && st.followAfter == st.waiting.seq {
			st.skipped++
			st.follow = nil
		}
		st.waiting.release(s.pool)
		st.waiting = &job
	} else {
		st.waiting, st.since = &job, time.Now()
		s.line = append(s.line, st)
	}
	skips := st.skipLogLocked()
	s.mu.Unlock()
	s.signal()
	s.logSkips(job.stream, skips)
	return true
}

// logSkips says that a stream skipped n windows, if it did.
func (s *Scheduler) logSkips(stream string, n uint64) {
	if n > 0 {
		s.log.Warn("windows skipped: model busy; the stream's newest window replaced its waiting one (latest wins)",
			"stream", stream, "skipped_since_last_said", n)
	}
}

// reuseLocked returns the result of a static window with nothing of its
// stream ahead of it: the stream's last result, if of the same epoch.
func (s *Scheduler) reuseLocked(st *schedStream, job inferenceJob) (hubResult, bool) {
	if st.waiting != nil || st.running != 0 || !st.hasLast || st.lastEpoch != job.epoch {
		return hubResult{}, false
	}
	job.release(s.pool)
	st.servedLocked(job.span.MediaEnd)
	return hubResult{
		name: job.stream, gen: job.gen, epoch: job.epoch, span: job.span,
		scores: st.last, made: job.made, reused: true, snapshot: job.snapshot,
	}, true
}

// poolKeep is how many window tensors the pool keeps for n streams: each
// has at most one waiting, and one more while it hands a newer window over
// (latest wins). The tensors of streams that are gone leave the pool.
func poolKeep(n int) int { return max(2*n, 1) }

// signal wakes a runner.
func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// servedLocked records that a window ending at end was served now.
func (st *schedStream) servedLocked(end time.Duration) {
	now := time.Now()
	drop := 0
	for drop < len(st.served) && (now.Sub(st.served[drop].at) > strideSpan || len(st.served)-drop >= 256) {
		drop++
	}
	st.served = append(st.served[drop:], servedWindow{end: end, at: now})
}

// effectiveStrideLocked is the mean time between the ends of the windows
// served over the last minute; 0 before two were.
func (st *schedStream) effectiveStrideLocked() time.Duration {
	now := time.Now()
	first := 0
	for first < len(st.served) && now.Sub(st.served[first].at) > strideSpan {
		first++
	}
	w := st.served[first:]
	if len(w) < 2 {
		return 0
	}
	return (w[len(w)-1].end - w[0].end) / time.Duration(len(w)-1)
}

// streamStats returns a stream's skipped windows and effective stride.
func (s *Scheduler) streamStats(name string, gen uint64) (skipped uint64, stride time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[schedKey{name, gen}]
	if st == nil {
		return 0, 0
	}
	return st.skipped, st.effectiveStrideLocked()
}

// forget drops what the scheduler holds for a stream that is gone.
func (s *Scheduler) forget(name string, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[schedKey{name, gen}]
	if st == nil {
		return
	}
	delete(s.streams, st.key)
	s.pool.SetKeep(poolKeep(len(s.streams)))
	if st.waiting != nil {
		st.waiting.release(s.pool)
		st.waiting = nil
		s.line = slices.DeleteFunc(s.line, func(o *schedStream) bool { return o == st })
	}
	st.follow = nil
}

// runner runs batches on sess until Close.
func (s *Scheduler) runner(sess *engine.Session) {
	var buf []float32
	for {
		batch := s.next()
		if batch == nil {
			return
		}
		if cap(buf) < len(batch)*s.itemSize {
			buf = make([]float32, s.maxBatch*s.itemSize)
		}
		s.runBatch(sess, buf, batch)
	}
}

// next waits for a batch: the first streams in line that have no window in
// a run, up to MaxBatch of them, once there are MaxBatch or the first has
// waited MaxWait. It returns nil at Close.
func (s *Scheduler) next() []inferenceJob {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return nil
		}
		var ready []*schedStream
		for _, st := range s.line {
			if st.running == 0 {
				ready = append(ready, st)
				if len(ready) == s.maxBatch {
					break
				}
			}
		}
		var wait time.Duration
		if len(ready) > 0 && len(ready) < s.maxBatch {
			wait = time.Until(ready[0].since.Add(s.maxWait))
		}
		if len(ready) > 0 && wait <= 0 {
			batch := make([]inferenceJob, len(ready))
			for i, st := range ready {
				batch[i] = *st.waiting
				st.waiting = nil
				st.running, st.runEpoch = batch[i].seq, batch[i].epoch
			}
			s.line = slices.DeleteFunc(s.line, func(st *schedStream) bool { return st.waiting == nil })
			more := len(s.line) > 0
			s.mu.Unlock()
			if more {
				s.signal() // another runner may take the rest
			}
			return batch
		}
		s.mu.Unlock()
		var fire <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			fire = timer.C
		}
		select {
		case <-s.wake:
		case <-fire:
		case <-s.ctx.Done():
		}
	}
}

// runBatch runs one batch on sess and delivers each window's scores (and
// those of the static windows that follow them).
func (s *Scheduler) runBatch(sess *engine.Session, buf []float32, batch []inferenceJob) {
	n := len(batch)
	input := buf[:n*s.itemSize]
	for i, j := range batch {
		if j.lease != nil {
			j.lease.CopyTo(input[i*s.itemSize : (i+1)*s.itemSize])
		} else {
			copy(input[i*s.itemSize:(i+1)*s.itemSize], j.tensor)
		}
		batch[i].release(s.pool)
	}
	s.metrics.runsInFlight.Inc()
	if s.beforeRun != nil {
		s.beforeRun(batch)
	}
	start := time.Now()
	out, err := sess.RunContext(s.ctx, input, n)
	latency := time.Since(start)
	s.busy.Add(int64(latency))
	s.metrics.runsInFlight.Dec()
	labels := len(s.model.Labels)
	if err == nil && len(out) != n*labels {
		err = fmt.Errorf("model output has %d values, want %d (%d windows of %d labels)", len(out), n*labels, n, labels)
	}
	switch {
	case errors.Is(err, engine.ErrInterrupted):
		s.log.Warn("model run interrupted by shutdown; its windows are dropped", "windows", n,
			"after", latency.Round(time.Millisecond))
	case err != nil:
		s.metrics.inferenceErrors.Inc()
		s.log.Error("inference failed; the batch's windows are dropped", "windows", n, "error", err)
	default:
		s.metrics.inferenceSeconds.Observe(latency.Seconds())
		s.metrics.batchSize.Observe(float64(n))
	}
	for i, j := range batch {
		var scores []float32
		if err == nil {
			scores = out[i*labels : (i+1)*labels]
			if s.model.Output == models.OutputLogits {
				scores = engine.Softmax(scores)
			} else {
				scores = append([]float32(nil), scores...)
			}
		}
		s.finish(j, scores, latency)
	}
}

// finish delivers a run window's result and those of the static windows
// that follow it, then lets its stream run again.
func (s *Scheduler) finish(j inferenceJob, scores []float32, latency time.Duration) {
	var results []hubResult
	s.mu.Lock()
	st := s.streams[schedKey{j.stream, j.gen}]
	if st != nil && scores != nil {
		st.last, st.lastEpoch, st.hasLast = scores, j.epoch, true
		st.servedLocked(j.span.MediaEnd)
		results = append(results, hubResult{
			name: j.stream, gen: j.gen, epoch: j.epoch, span: j.span,
			scores: scores, latency: latency, made: j.made, snapshot: j.snapshot,
		})
	}
	for {
		// A static window may come to follow j while its result is on
		// its way: it is answered before the stream runs again.
		if st != nil && st.follow != nil && st.followAfter == j.seq {
			f := st.follow
			st.follow = nil
			if scores != nil { // else its result is lost with the run
				st.servedLocked(f.span.MediaEnd)
				results = append(results, hubResult{
					name: f.stream, gen: f.gen, epoch: f.epoch, span: f.span,
					scores: scores, made: f.made, reused: true, snapshot: f.snapshot,
				})
			}
		}
		if len(results) == 0 {
			if st != nil {
				st.running = 0
			}
			more := len(s.line) > 0
			s.mu.Unlock()
			if more {
				s.signal()
			}
			return
		}
		s.mu.Unlock()
		// Delivered before the stream may run again: its results stay
		// in order.
		for _, r := range results {
			s.deliver(r)
		}
		results = results[:0]
		s.mu.Lock()
	}
}
