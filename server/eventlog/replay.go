package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/nats-io/nats.go/jetstream"
)

// Replay calls fn, in order, with every event after position after and up
// to position upTo (both ends: after < position <= upTo) whose subject
// matches one of subjects (nil: all). after 0 replays all the log keeps.
// A position older than the log keeps (after+1 before the oldest) fails
// with an error wrapping ErrOutOfRange that names the oldest position.
func (l *Log) Replay(ctx context.Context, after, upTo uint64, subjects []string, fn func(*actiondv1.Event) error) error {
	st, err := l.State(ctx)
	if err != nil {
		return err
	}
	if after > 0 && after+1 < st.First {
		return &OutOfRangeError{Oldest: st.First}
	}
	if upTo <= after || st.Messages == 0 {
		return nil
	}
	if len(subjects) == 0 {
		subjects = []string{SubjectPrefix + ">"}
	}
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	}
	if len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
	if after+1 < st.First {
		cfg.OptStartSeq = st.First
	}
	cons, err := l.js.CreateConsumer(ctx, StreamName, cfg)
	if err != nil {
		return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = l.js.DeleteConsumer(dctx, StreamName, cons.CachedInfo().Name)
	}()
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("event log: replay: %w", err)
			}
			if md.Sequence.Stream > upTo {
				return nil
			}
			ev, err := decode(msg.Data(), md.Sequence.Stream)
			if err != nil {
				return err
			}
			if err := fn(ev); err != nil {
				return err
			}
			if md.Sequence.Stream == upTo || md.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
		}
		if n == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// OutOfRangeError: a position older than the log keeps.
type OutOfRangeError struct {
	// Oldest is the oldest position the log keeps.
	Oldest uint64
}

func (e *OutOfRangeError) Error() string {
	return fmt.Sprintf("position no longer in the event log: the oldest kept is %d", e.Oldest)
}

// Is makes errors.Is(err, ErrOutOfRange) true.
func (e *OutOfRangeError) Is(target error) bool { return target == ErrOutOfRange }
