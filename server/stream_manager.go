package server

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// StreamManager is the set of streams the server watches: those of the
// configuration, and those added over the API, which it keeps in the state
// file. Changes are serialised (one at a time, the state file written
// before the call returns); reads take a short lock.
type StreamManager struct {
	deps  *streamDeps
	state *StateFile // nil: API streams are not kept
	log   *slog.Logger

	change sync.Mutex // held through a whole change
	mu     sync.Mutex // guards streams and gen
	// streams by name.
	streams map[string]*managedStream
	gen     uint64
	closed  bool
}

// NewStreamManager returns an empty manager.
func NewStreamManager(deps *streamDeps, state *StateFile, log *slog.Logger) *StreamManager {
	return &StreamManager{deps: deps, state: state, log: log, streams: map[string]*managedStream{}}
}

// Restore starts the configured streams, then those of the state file whose
// names the configuration does not use.
func (sm *StreamManager) Restore(configured []StreamSpec) error {
	var errs FieldErrors
	for i, spec := range configured {
		if _, err := sm.add(spec, originConfig); err != nil {
			var fe FieldErrors
			if asFieldErrors(err, &fe) {
				errs = append(errs, fe.prefixed(fmt.Sprintf("streams[%d].", i))...)
				continue
			}
			return err
		}
	}
	if err := errs.err(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if sm.state == nil {
		return nil
	}
	if n, err := sm.state.RemoveTemps(); err != nil {
		sm.log.Warn("cannot remove what a cut-short write of the state file left", "state_file", sm.state.Path(), "error", err)
	} else if n > 0 {
		sm.log.Info("removed temporary files of state file writes cut short by a crash", "state_file", sm.state.Path(), "files", n)
	}
	saved, err := sm.state.Load()
	if err != nil {
		return err
	}
	for _, spec := range saved {
		if sm.has(spec.Name) {
			sm.log.Warn("state file stream ignored: the configuration has a stream of the same name",
				"stream", spec.Name, "state_file", sm.state.Path())
			continue
		}
		if _, err := sm.add(spec, originAPI); err != nil {
			// A stream the model no longer accepts (a label gone): say so
			// and serve the others rather than refuse to start.
			sm.log.Error("state file stream not restored", "stream", spec.Name, "error", err)
			continue
		}
		sm.log.Info("stream restored from the state file", "stream", spec.Name, "url", spec.redacted().URL)
	}
	return nil
}

func (sm *StreamManager) has(name string) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.streams[name] != nil
}

// Add starts watching a new stream (AddStream).
func (sm *StreamManager) Add(spec StreamSpec) (*actiondv1.Stream, error) {
	return sm.add(spec, originAPI)
}

func (sm *StreamManager) add(spec StreamSpec, origin streamOrigin) (*actiondv1.Stream, error) {
	sm.change.Lock()
	defer sm.change.Unlock()
	opts, icfg, err := spec.resolve(sm.deps.cfg, sm.deps.model)
	if err != nil {
		return nil, err
	}
	sm.mu.Lock()
	switch {
	case sm.closed:
		sm.mu.Unlock()
		return nil, ErrShuttingDown
	case sm.streams[spec.Name] != nil:
		sm.mu.Unlock()
		return nil, fmt.Errorf("stream %q: %w: choose another name, or UpdateStream or RemoveStream it", spec.Name, ErrStreamExists)
	case len(sm.streams) >= sm.deps.cfg.MaxStreams:
		sm.mu.Unlock()
		return nil, fmt.Errorf("%w: the server watches %d streams, its max_streams; remove one or raise max_streams",
			ErrTooManyStreams, sm.deps.cfg.MaxStreams)
	}
	sm.gen++
	ms := newManagedStream(spec, opts, icfg, sm.gen, origin, sm.deps)
	sm.streams[spec.Name] = ms
	sm.mu.Unlock()
	if origin == originAPI {
		if err := sm.save(); err != nil {
			sm.mu.Lock()
			delete(sm.streams, spec.Name)
			sm.mu.Unlock()
			return nil, err
		}
	}
	ms.Start()
	sm.log.Info("stream added", "stream", spec.Name, "url", spec.redacted().URL,
		"window", opts.window, "stride", opts.stride, "enabled", opts.enabled)
	return ms.proto(), nil
}

// Get returns one stream.
func (sm *StreamManager) Get(name string) (*actiondv1.Stream, error) {
	ms, err := sm.lookup(name)
	if err != nil {
		return nil, err
	}
	return ms.proto(), nil
}

func (sm *StreamManager) lookup(name string) (*managedStream, error) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	ms := sm.streams[name]
	if ms == nil {
		if name == "" {
			return nil, FieldErrors{{Field: "name", Problem: "required: the stream's name"}}
		}
		return nil, fmt.Errorf("stream %q: %w (ListStreams shows the streams)", name, ErrStreamNotFound)
	}
	return ms, nil
}

// All returns every stream, ordered by name.
func (sm *StreamManager) All() []*actiondv1.Stream {
	sm.mu.Lock()
	list := make([]*managedStream, 0, len(sm.streams))
	for _, ms := range sm.streams {
		list = append(list, ms)
	}
	sm.mu.Unlock()
	slices.SortFunc(list, func(a, b *managedStream) int { return strings.Compare(a.name, b.name) })
	out := make([]*actiondv1.Stream, len(list))
	for i, ms := range list {
		out[i] = ms.proto()
	}
	return out
}

// Page sizes of List.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// List returns a page of streams ordered by name: those after the name the
// token holds.
func (sm *StreamManager) List(pageSize int32, token string) ([]*actiondv1.Stream, string, error) {
	switch {
	case pageSize < 0:
		return nil, "", FieldErrors{{Field: "page_size", Problem: fmt.Sprintf("must not be negative, got %d", pageSize)}}
	case pageSize == 0:
		pageSize = defaultPageSize
	case pageSize > maxPageSize:
		pageSize = maxPageSize
	}
	after := ""
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || !strings.HasPrefix(string(b), "after:") {
			return nil, "", FieldErrors{{Field: "page_token", Problem: "not a next_page_token of ListStreams"}}
		}
		after = strings.TrimPrefix(string(b), "after:")
	}
	sm.mu.Lock()
	var names []string
	for name := range sm.streams {
		if name > after {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	more := len(names) > int(pageSize)
	if more {
		names = names[:pageSize]
	}
	list := make([]*managedStream, len(names))
	for i, name := range names {
		list[i] = sm.streams[name]
	}
	sm.mu.Unlock()
	out := make([]*actiondv1.Stream, len(list))
	for i, ms := range list {
		out[i] = ms.proto()
	}
	next := ""
	if more {
		next = base64.RawURLEncoding.EncodeToString([]byte("after:" + names[len(names)-1]))
	}
	return out, next, nil
}

// streamUpdate is an UpdateStream request: nil fields stay as they are.
type streamUpdate func(spec *StreamSpec)

// Update changes a stream (UpdateStream). fieldPrefix names the options in
// errors.
func (sm *StreamManager) Update(name string, change streamUpdate) (*actiondv1.Stream, error) {
	sm.change.Lock()
	defer sm.change.Unlock()
	ms, err := sm.lookup(name)
	if err != nil {
		return nil, err
	}
	spec, _ := ms.snapshot()
	spec.LabelAllowlist = slices.Clone(spec.LabelAllowlist)
	change(&spec)
	opts, icfg, err := spec.resolve(sm.deps.cfg, sm.deps.model)
	if err != nil {
		return nil, err
	}
	if !ms.update(spec, opts, icfg) {
		return nil, ErrShuttingDown
	}
	switch ms.origin {
	case originAPI:
		if err := sm.save(); err != nil {
			return nil, err
		}
	case originConfig:
		sm.log.Warn("stream of the configuration changed over the API: the change lasts until the server restarts",
			"stream", name)
	}
	return ms.proto(), nil
}

// Remove stops watching a stream and forgets it (RemoveStream).
func (sm *StreamManager) Remove(name string) error {
	sm.change.Lock()
	defer sm.change.Unlock()
	ms, err := sm.lookup(name)
	if err != nil {
		return err
	}
	sm.mu.Lock()
	delete(sm.streams, name)
	sm.mu.Unlock()
	ms.Close()
	if ms.origin == originConfig {
		sm.log.Warn("stream of the configuration removed over the API: it comes back when the server restarts, unless it is taken out of the configuration",
			"stream", name)
	} else if err := sm.save(); err != nil {
		return err
	}
	sm.log.Info("stream removed", "stream", name)
	return nil
}

// save writes the API streams to the state file.
func (sm *StreamManager) save() error {
	if sm.state == nil {
		return nil
	}
	sm.mu.Lock()
	var specs []StreamSpec
	for _, ms := range sm.streams {
		if ms.origin == originAPI {
			spec, _ := ms.snapshot()
			specs = append(specs, spec)
		}
	}
	sm.mu.Unlock()
	slices.SortFunc(specs, func(a, b StreamSpec) int { return strings.Compare(a.Name, b.Name) })
	if err := sm.state.Save(specs); err != nil {
		return fmt.Errorf("keep streams in %s: %w", sm.state.Path(), err)
	}
	return nil
}

// Close stops every stream's camera, calls drain (the scheduler stops: its
// waiting windows are dropped, its runs in flight ended), then ends the
// streams: their actions end and their last status is STOPPED. The state
// file keeps them.
func (sm *StreamManager) Close(drain func()) {
	sm.change.Lock()
	defer sm.change.Unlock()
	sm.mu.Lock()
	sm.closed = true
	list := make([]*managedStream, 0, len(sm.streams))
	for _, ms := range sm.streams {
		list = append(list, ms)
	}
	clear(sm.streams)
	sm.mu.Unlock()
	slices.SortFunc(list, func(a, b *managedStream) int { return strings.Compare(a.name, b.name) })
	var wg sync.WaitGroup
	for _, ms := range list {
		wg.Go(ms.stopIngest)
	}
	wg.Wait()
	if drain != nil {
		drain()
	}
	for _, ms := range list {
		ms.finish()
	}
}

func asFieldErrors(err error, target *FieldErrors) bool {
	fe, ok := err.(FieldErrors)
	if ok {
		*target = fe
	}
	return ok
}
