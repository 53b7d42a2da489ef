package ingest

import (
	"math/rand/v2"
	"time"
)

// run is the stream's goroutine: connect, play until it fails, back off,
// again, until the stream is closed.
func (s *Stream) run() {
	defer close(s.done)
	p := newPipeline(s.set, s.log, &s.srcCtr, &s.ctr)
	p.open = &s.conns
	defer p.close()
	p.onPlaying = func(codec Codec, transport string) {
		s.log.Info("playing", "codec", codec, "transport", transport)
		s.setState(StatePlaying, func(st *Status) {
			st.Codec, st.Transport, st.NextAttempt = codec, transport, time.Time{}
		})
	}
	p.onWindow = func(w Window) {
		s.update(false, func(st *Status) {
			st.LastWindowEnd, st.InputFPS = w.MediaEnd, w.FPS
		})
		s.sendWindow(w)
	}
	p.onEpoch = func(c epochChange) {
		s.log.Info("new epoch", "epoch", c.epoch, "reason", c.reason)
		s.update(true, func(st *Status) { st.Epoch, st.EpochReason = c.epoch, c.reason })
	}
	p.onFrame = func(m frameMeta) {
		// Cheap enough per frame: a lock nobody else holds for long.
		s.update(false, func(st *Status) { st.Width, st.Height = m.width, m.height })
	}

	var failures int // since the last stable connection
	for s.ctx.Err() == nil {
		s.log.Info("connecting", "url", RedactURL(s.set.URL))
		playing, err := p.runSession(s.ctx)
		if s.ctx.Err() != nil {
			break
		}
		if !playing.IsZero() && time.Since(playing) >= s.set.StableAfter {
			failures = 0
		}
		delay := backoff(failures, s.set.BackoffMin, s.set.BackoffMax)
		failures++
		s.log.Warn("stream lost", "error", err, "retry_in", delay.Round(time.Millisecond))
		s.setState(StateRetrying, func(st *Status) {
			st.LastError = err.Error()
			st.NextAttempt = time.Now().Add(delay)
		})
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if s.ctx.Err() != nil {
			break
		}
		s.setState(StateConnecting, func(st *Status) { st.Reconnects++ })
	}
	s.log.Info("stopped")
	s.setState(StateStopped, func(st *Status) { st.NextAttempt = time.Time{} })
	close(s.windows)
	close(s.changes)
}

// backoff returns the wait before reconnecting after the n-th failure in a
// row (from 0): exponential, from lo, capped at hi, with full jitter (a
// uniform random wait up to the bound) so that cameras lost together do
// not all come back at once.
func backoff(n int, lo, hi time.Duration) time.Duration {
	bound := hi
	if n < 40 {
		bound = min(hi, lo<<n)
	}
	if bound <= 0 {
		return 0
	}
	return rand.N(bound + 1)
}
