package server

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/fleet"
)

// StreamManager is the set of streams the server watches: those of the
// configuration, and those added over the API, which it keeps in the
// stream registry (or a state file). Changes are serialised (one at a
// time, the registry written before the call returns); reads take a short
// lock.
type StreamManager struct {
	deps  *streamDeps
	state streamStore // nil: API streams are not kept
	log   *slog.Logger

	change sync.Mutex // held through a whole change
	// held are the state file's streams that Restore could not start, as
	// the file has them: every save writes them back untouched, and the
	// next start tries them again. Guarded by change.
	held []heldStream
	mu   sync.Mutex // guards streams and gen
	// streams by name.
	streams map[string]*managedStream
	gen     uint64
	closed  bool

	// In a fleet (stream_manager_fleet.go): streams play only between the
	// fleet's Acquire and Release. own serialises starting and stopping
	// them (taken after change, never before it).
	inFleet  bool
	own      sync.Mutex
	fleet    atomic.Pointer[fleet.Fleet]
	watchers sync.WaitGroup
	// configured identifies the configuration's entry of each of its
	// streams (configHash), for the registry's tombstones; since is when
	// the configuration was read.
	configured map[string]string
	since      time.Time
	// In a fleet, the configuration's own entries, which shareConfig puts
	// into the registry; shared says it has (guarded by change).
	configSpecs map[string]StreamSpec
	shared      bool
	// releaseHook, for tests, runs in Release before the stream is
	// stopped (the graceful stop, which a test slows down).
	releaseHook func(name string)
}

// heldStream is a saved stream that is kept but not watched, and why.
type heldStream struct {
	spec   StreamSpec
	reason string
}

// NewStreamManager returns an empty manager.
func NewStreamManager(deps *streamDeps, state streamStore, log *slog.Logger) *StreamManager {
	return &StreamManager{deps: deps, state: state, log: log, streams: map[string]*managedStream{}, inFleet: deps.cfg.InFleet(),
		configured: map[string]string{}, configSpecs: map[string]StreamSpec{}, since: time.Now()}
}

// Restore starts the configured streams, then those of the state file. A
// saved stream that cannot start (the configuration has a stream of its
// name, it no longer passes validation, or max_streams is reached) is
// logged with the reason and kept in the file as it is, to be tried again at
// the next start.
func (sm *StreamManager) Restore(configured []StreamSpec) error {
	var errs FieldErrors
	for i, spec := range configured {
		sm.configured[spec.Name] = configHash(spec)
		sm.configSpecs[spec.Name] = spec
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
	if f, ok := sm.state.(*StateFile); ok {
		if n, err := f.RemoveTemps(); err != nil {
			sm.log.Warn("cannot remove what a cut-short write of the state file left", "state_file", f.Path(), "error", err)
		} else if n > 0 {
			sm.log.Info("removed temporary files of state file writes cut short by a crash", "state_file", f.Path(), "files", n)
		}
	}
	saved, err := sm.state.Load()
	if err != nil {
		return err
	}
	sm.change.Lock()
	defer sm.change.Unlock()
	for _, spec := range saved {
		if sm.sharedFromConfig(spec.Name) {
			continue
		}
		if reason := sm.restore(spec); reason != "" {
			sm.held = append(sm.held, heldStream{spec: spec, reason: reason})
			sm.log.Warn("saved stream not restored: kept as saved, tried again at the next start",
				"stream", spec.Name, "reason", reason, "kept_in", sm.state.Path())
			continue
		}
		sm.log.Info("saved stream restored", "stream", spec.Name, "url", spec.redacted().URL)
	}
	return nil
}

// restore starts a saved stream without writing the file (it has the
// stream already); it returns why it cannot, "" when it started.
func (sm *StreamManager) restore(spec StreamSpec) string {
	sm.mu.Lock()
	ms := sm.streams[spec.Name]
	sm.mu.Unlock()
	switch {
	case ms != nil && ms.origin == originConfig:
		return "the configuration has a stream of the same name; it is restored at the first start after the configuration no longer has it"
	case ms != nil:
		return "the stream registry has another stream of the same name before it"
	}
	if err := sm.start(spec, originAPI, false); err != nil {
		if errors.Is(err, ErrTooManyStreams) {
			return fmt.Sprintf("over max_streams (%d): it is restored at the first start with room for it", sm.deps.cfg.MaxStreams)
		}
		return fmt.Sprintf("%v; it is restored at the first start where it is valid", err)
	}
	return ""
}

// Add starts watching a new stream (AddStream).
func (sm *StreamManager) Add(spec StreamSpec) (*actiondv1.Stream, error) {
	return sm.add(spec, originAPI)
}

func (sm *StreamManager) add(spec StreamSpec, origin streamOrigin) (*actiondv1.Stream, error) {
	sm.change.Lock()
	defer sm.change.Unlock()
	if err := sm.start(spec, origin, origin == originAPI); err != nil {
		return nil, err
	}
	if reg := sm.registry(); sm.inFleet && origin == originAPI && reg != nil {
		// Added again: the configurations may bring it back too.
		if err := reg.unbury(spec.Name); err != nil {
			sm.log.Warn("cannot clear the stream's tombstone: nodes whose configuration has it do not play it until it is cleared", "stream", spec.Name, "error", err)
		}
	}
	sm.syncFleet()
	return sm.Get(spec.Name)
}

// start starts watching spec, first writing it to the state file when
// persist is set; nothing changes when that fails. sm.change is held.
func (sm *StreamManager) start(spec StreamSpec, origin streamOrigin, persist bool) error {
	opts, icfg, err := spec.resolve(sm.deps.cfg, sm.deps.model)
	if err != nil {
		return err
	}
	sm.mu.Lock()
	closed, exists, n := sm.closed, sm.streams[spec.Name] != nil, len(sm.streams)
	sm.mu.Unlock()
	switch {
	case closed:
		return ErrShuttingDown
	case exists:
		return fmt.Errorf("stream %q: %w: choose another name, or UpdateStream or RemoveStream it", spec.Name, ErrStreamExists)
	case persist && sm.heldIndex(spec.Name) >= 0:
		return fmt.Errorf("stream %q: %w: the stream registry keeps a stream of that name that was not restored (%s); RemoveStream it first to replace it",
			spec.Name, ErrStreamExists, sm.held[sm.heldIndex(spec.Name)].reason)
	case n >= sm.deps.cfg.MaxStreams:
		return fmt.Errorf("%w: the server watches %d streams, its max_streams; remove one or raise max_streams",
			ErrTooManyStreams, sm.deps.cfg.MaxStreams)
	}
	if persist {
		if err := sm.save(spec.Name, &spec); err != nil {
			return err
		}
	}
	sm.mu.Lock()
	sm.gen++
	ms := newManagedStream(spec, opts, icfg, sm.gen, origin, sm.deps)
	sm.streams[spec.Name] = ms
	sm.mu.Unlock()
	if !sm.inFleet {
		ms.Start()
	}
	sm.log.Info("stream added", "stream", spec.Name, "url", spec.redacted().URL,
		"window", opts.window, "stride", opts.stride, "enabled", opts.enabled)
	return nil
}

// heldIndex returns the index in held of the saved stream name, -1 if none.
func (sm *StreamManager) heldIndex(name string) int {
	return slices.IndexFunc(sm.held, func(h heldStream) bool { return h.spec.Name == name })
}

// Get returns one stream.
func (sm *StreamManager) Get(name string) (*actiondv1.Stream, error) {
	ms, err := sm.lookup(name)
	if err != nil {
		return nil, err
	}
	return sm.proto(ms), nil
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
		out[i] = sm.proto(ms)
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
		out[i] = sm.proto(ms)
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
		if h := sm.heldIndex(name); h >= 0 {
			return nil, fmt.Errorf("stream %q: %w: the stream registry keeps it but it was not restored (%s)", name, ErrStreamNotFound, sm.held[h].reason)
		}
		return nil, err
	}
	spec, _ := ms.snapshot()
	spec.LabelAllowlist = slices.Clone(spec.LabelAllowlist)
	change(&spec)
	opts, icfg, err := spec.resolve(sm.deps.cfg, sm.deps.model)
	if err != nil {
		return nil, err
	}
	// The file first: a change it cannot keep is not made. In a fleet the
	// registry has every stream, the configuration's too.
	kept := ms.origin == originAPI || sm.inFleet && sm.registry() != nil
	if kept {
		if err := sm.save(name, &spec); err != nil {
			return nil, err
		}
	}
	sm.own.Lock()
	if cur, _ := sm.lookup(name); cur != nil {
		ms = cur // released and replaced meanwhile
	}
	ok := ms.update(spec, opts, icfg)
	sm.own.Unlock()
	if !ok {
		if kept {
			old, _ := ms.snapshot()
			if err := sm.save(name, &old); err != nil {
				sm.log.Error("cannot take back a stream's change in the state file: it applies at the next start",
					"stream", name, "error", err)
			}
		}
		return nil, ErrShuttingDown
	}
	switch {
	case ms.origin == originConfig && kept:
		sm.log.Warn("stream of the configuration changed over the API: the change applies to the whole fleet until a node's configuration entry for it changes",
			"stream", name)
	case ms.origin == originConfig:
		sm.log.Warn("stream of the configuration changed over the API: the change lasts until the server restarts",
			"stream", name)
	}
	return sm.proto(ms), nil
}

// Remove stops watching a stream and forgets it (RemoveStream). A name that
// only the state file has (a saved stream not restored) is taken out of
// the file.
func (sm *StreamManager) Remove(name string) error {
	sm.change.Lock()
	defer sm.change.Unlock()
	ms, err := sm.lookup(name)
	if err != nil {
		if h := sm.heldIndex(name); h >= 0 {
			gone := sm.held[h]
			sm.held = slices.Delete(sm.held, h, h+1)
			if err := sm.save("", nil); err != nil {
				sm.held = slices.Insert(sm.held, h, gone)
				return err
			}
			sm.log.Info("stream removed from the state file (it was not restored)", "stream", name)
			return nil
		}
		return err
	}
	// In a fleet the tombstone first: no node's configuration brings the
	// stream back (stream_manager_fleet.go).
	reg := sm.registry()
	if sm.inFleet && reg != nil {
		hash := ""
		if ms.origin == originConfig {
			hash = sm.configured[name]
		}
		if err := reg.bury(name, sm.deps.cfg.Node.Name, hash, true); err != nil {
			return fmt.Errorf("remove stream %q from the fleet: %w", name, err)
		}
	}
	// The file first: a removal it cannot keep is not made.
	if ms.origin == originAPI || sm.inFleet && reg != nil {
		if err := sm.save(name, nil); err != nil {
			return err
		}
	}
	sm.forget(name)
	sm.syncFleet()
	if ms.origin == originConfig && sm.inFleet && reg != nil {
		sm.log.Warn("stream of the configuration removed over the API: removed from every node of the fleet; a node brings it back only once its configuration's entry for it changes",
			"stream", name)
	} else if ms.origin == originConfig {
		sm.log.Warn("stream of the configuration removed over the API: it comes back when the server restarts, unless it is taken out of the configuration",
			"stream", name)
	}
	sm.log.Info("stream removed", "stream", name)
	return nil
}

// forget stops stream name and forgets it: the one the name has now,
// which a fleet's Release may have replaced since the caller looked.
// sm.change is held.
func (sm *StreamManager) forget(name string) {
	sm.own.Lock()
	defer sm.own.Unlock()
	sm.mu.Lock()
	ms := sm.streams[name]
	delete(sm.streams, name)
	sm.mu.Unlock()
	if ms != nil {
		ms.Close()
	}
}

// save writes the state file: the API streams, with the stream name's spec
// replaced by spec (or left out when spec is nil), and the saved streams
// that were not restored, untouched. sm.change is held.
func (sm *StreamManager) save(name string, spec *StreamSpec) error {
	if sm.state == nil {
		return nil
	}
	var specs []StreamSpec
	// In a fleet the registry's records of the configuration's streams
	// stay as they are (shareConfig and Update write them).
	reg := sm.registry()
	sm.mu.Lock()
	for n, ms := range sm.streams {
		switch {
		case n == name:
		case ms.origin == originAPI:
			s, _ := ms.snapshot()
			specs = append(specs, s)
		case sm.inFleet && reg != nil && reg.last[n] != nil:
			if s, err := decodeRegistrySpec(reg.last[n]); err == nil {
				specs = append(specs, s)
			}
		}
	}
	sm.mu.Unlock()
	if spec != nil {
		specs = append(specs, *spec)
	}
	for _, h := range sm.held {
		specs = append(specs, h.spec)
	}
	slices.SortStableFunc(specs, func(a, b StreamSpec) int { return strings.Compare(a.Name, b.Name) })
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
