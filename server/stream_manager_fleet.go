package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/actiond/actiond/ingest"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/fleet"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
)

// In a fleet (nats.url), the stream manager knows every stream of the
// fleet (the configuration's and the shared stream registry's), but plays
// only those the fleet gives this node: a stream starts at Acquire and
// stops at Release. Outside a fleet every stream plays from the start, as
// if acquired with fence 0.

// Acquire starts playing stream, which this node now owns; its events
// carry fence. It is the fleet's Handler.
func (sm *StreamManager) Acquire(name string, fence uint64) {
	sm.own.Lock()
	defer sm.own.Unlock()
	sm.mu.Lock()
	ms, closed := sm.streams[name], sm.closed
	sm.mu.Unlock()
	switch {
	case closed:
		return
	case ms == nil:
		sm.log.Warn("fleet gave this node a stream it does not know (yet)", "stream", name)
		return
	case ms.started.Load():
		return
	}
	ms.fence = fence
	ms.Start()
	sm.log.Info("stream acquired: playing it here", "stream", name, "fence", fence)
}

// Release stops playing stream here and returns once it has stopped; the
// stream stays known, for another node to play. The stream is replaced by
// one that does not play at once, and stopped outside sm.own: a camera
// slow to hang up holds up neither the Acquire of another stream nor a
// change of this one (which goes to the replacement).
func (sm *StreamManager) Release(name string) {
	sm.own.Lock()
	sm.mu.Lock()
	ms := sm.streams[name]
	sm.mu.Unlock()
	if ms == nil || !ms.started.Load() {
		sm.own.Unlock()
		return
	}
	v := ms.view.Load()
	sm.mu.Lock()
	if sm.streams[name] == ms && !sm.closed {
		sm.gen++
		sm.streams[name] = newManagedStream(v.spec, v.opts, v.icfg, sm.gen, ms.origin, sm.deps)
	}
	sm.mu.Unlock()
	sm.own.Unlock()
	if sm.releaseHook != nil {
		sm.releaseHook(name)
	}
	ms.Close()
	sm.log.Info("stream released: stopped here", "stream", name)
}

// Cut hangs up stream's camera at once, without waiting for anything (a
// socket closed on the caller's goroutine): the fleet calls it, before
// Release, when this node is losing the stream's lease (it could not
// renew it, or another node has it), so that the camera is let go of
// before the lease can expire even when the rest of the stop is slow.
func (sm *StreamManager) Cut(name string) {
	sm.mu.Lock()
	ms := sm.streams[name]
	sm.mu.Unlock()
	if ms != nil {
		ms.cut()
	}
	sm.log.Info("stream cut: its camera hung up at once, as this node is losing its lease", "stream", name)
}

// names returns every stream's name, sorted.
func (sm *StreamManager) names() []string {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	names := make([]string, 0, len(sm.streams))
	for n := range sm.streams {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// syncFleet gives the fleet the streams to place. It must not be called
// with sm.own held (the fleet's goroutine may be waiting for it).
func (sm *StreamManager) syncFleet() {
	if f := sm.fleet.Load(); f != nil {
		f.SetStreams(sm.names())
	}
}

// setFleet makes f the fleet that places the streams, and hands it their
// names.
func (sm *StreamManager) setFleet(f *fleet.Fleet) {
	sm.fleet.Store(f)
	sm.change.Lock()
	defer sm.change.Unlock()
	sm.syncFleet()
}

// proto returns ms as the API shows it: in a fleet, a stream another node
// plays has the status its owner's last heartbeat gave (at most a
// heartbeat old), and every status names the owner.
func (sm *StreamManager) proto(ms *managedStream) *actiondv1.Stream {
	p := ms.proto()
	if !sm.inFleet {
		return p
	}
	if ms.started.Load() {
		p.Status.Node = sm.deps.cfg.Node.Name
		return p
	}
	f := sm.fleet.Load()
	if f == nil {
		return p
	}
	node, raw, _, ok := f.StreamStatus(ms.name)
	if ok {
		st := &actiondv1.StreamStatus{}
		if err := protojson.Unmarshal(raw, st); err == nil {
			p.Status = st
		}
	}
	p.Status.Node = node
	return p
}

// fleetStatus describes the streams this node plays, for its heartbeat.
func (sm *StreamManager) fleetStatus(names []string) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(names))
	for _, n := range names {
		sm.mu.Lock()
		ms := sm.streams[n]
		sm.mu.Unlock()
		if ms == nil || !ms.started.Load() {
			continue
		}
		st := ms.proto().GetStatus()
		st.Node = sm.deps.cfg.Node.Name
		if b, err := protojson.Marshal(st); err == nil {
			out[n] = b
		}
	}
	return out
}

// watchRegistry applies the changes other nodes make to the shared stream
// registry, until ctx ends. What the registry holds now (tombstones
// among it) is applied before it returns, so that the fleet places
// nothing a tombstone removes.
func (sm *StreamManager) watchRegistry(ctx context.Context, reg *streamRegistry) error {
	w, err := reg.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	apply := func(e jetstream.KeyValueEntry) {
		switch {
		case strings.HasPrefix(e.Key(), tombstonePrefix):
			sm.applyTombstone(reg, e)
		case !strings.HasPrefix(e.Key(), "="):
			sm.applyRegistry(reg, e)
		}
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for initial := true; initial; {
		select {
		case <-ctx.Done():
			w.Stop()
			return ctx.Err()
		case <-timeout.C:
			w.Stop()
			return errors.New("the stream registry's contents did not arrive within 30s")
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return errors.New("the stream registry's watch ended")
			case e == nil:
				initial = false
			default:
				apply(e)
			}
		}
	}
	sm.watchers.Go(func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					apply(e)
				}
			}
		}
	})
	return nil
}

// applyRegistry applies one change of the registry, unless it is what this
// node last read or wrote.
func (sm *StreamManager) applyRegistry(reg *streamRegistry, e jetstream.KeyValueEntry) {
	sm.change.Lock()
	defer sm.change.Unlock()
	name := e.Key()
	sm.mu.Lock()
	ms, closed := sm.streams[name], sm.closed
	sm.mu.Unlock()
	if closed {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		if _, known := reg.last[name]; !known {
			return
		}
		delete(reg.last, name)
		if ms == nil || ms.origin != originAPI {
			return
		}
		sm.forget(name)
		sm.log.Info("stream removed on another node", "stream", name)
		sm.syncFleet()
		return
	}
	if old, ok := reg.last[name]; ok && bytes.Equal(old, e.Value()) {
		return
	}
	spec, err := decodeRegistrySpec(e.Value())
	if err != nil {
		sm.log.Warn("stream registry: ignoring a stream that does not decode", "stream", name, "error", err)
		return
	}
	reg.last[name] = slices.Clone(e.Value())
	if ms != nil {
		if ms.origin == originConfig && !sm.shared {
			return // shareConfig settles which applies
		}
		if ms.origin == originConfig && configHash(spec) != sm.configured[name] {
			sm.log.Warn("stream of this node's configuration changed on another node (its configuration or the API): the fleet's record applies here, not this node's entry",
				"stream", name)
		}
		opts, icfg, err := spec.resolve(sm.deps.cfg, sm.deps.model)
		if err != nil {
			sm.log.Warn("stream changed on another node does not apply here", "stream", name, "error", err)
			return
		}
		sm.own.Lock()
		sm.mu.Lock()
		ms = sm.streams[name]
		sm.mu.Unlock()
		if ms != nil {
			ms.update(spec, opts, icfg)
		}
		sm.own.Unlock()
		sm.log.Info("stream changed on another node", "stream", name)
		return
	}
	if err := sm.start(spec, originAPI, false); err != nil {
		if !errors.Is(err, ErrShuttingDown) {
			sm.log.Warn("stream added on another node cannot be watched here", "stream", name, "error", err)
		}
		return
	}
	sm.syncFleet()
}

// registry returns the stream registry, nil while it is not open.
// sm.change is held.
func (sm *StreamManager) registry() *streamRegistry {
	switch st := sm.state.(type) {
	case *streamRegistry:
		return st
	case *lateRegistry:
		return st.reg
	}
	return nil
}

// applyTombstone removes here a stream of the configuration that was
// removed over the API on some node (its tombstone; an API stream goes
// with its registry key). A tombstone from before this node read its
// configuration stands only for the configuration entries it names: one
// that differs is a changed configuration, which brings the stream back
// (the tombstone is cleared). A live removal takes this node's entry into
// the tombstone, so that it stays removed when this node restarts with
// the same configuration.
func (sm *StreamManager) applyTombstone(reg *streamRegistry, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		return // added again: the configuration's copy comes back at the next start
	}
	var rec removedStream
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		sm.log.Warn("stream registry: ignoring a tombstone that does not decode", "key", e.Key(), "error", err)
		return
	}
	name := tombstoneStream(e.Key())
	sm.change.Lock()
	defer sm.change.Unlock()
	sm.mu.Lock()
	ms, closed := sm.streams[name], sm.closed
	sm.mu.Unlock()
	if closed || ms == nil || ms.origin != originConfig {
		return
	}
	hash := sm.configured[name]
	if !slices.Contains(rec.Config, hash) {
		if rec.Time.Before(sm.since) {
			sm.log.Info("stream of the configuration removed over the API is back: this node's configuration entry for it changed", "stream", name, "removed_at", rec.Time)
			if err := reg.unbury(name); err != nil {
				sm.log.Warn("cannot clear the stream's tombstone", "stream", name, "error", err)
			}
			return
		}
		if err := reg.bury(name, rec.Node, hash, false); err != nil {
			sm.log.Warn("cannot add this node's configuration to the stream's tombstone: it comes back when this node restarts", "stream", name, "error", err)
		}
	}
	sm.forget(name)
	sm.log.Info("stream of the configuration removed over the API (on this node or another): it stays removed until the configuration's entry for it changes", "stream", name, "removed_by", rec.Node)
	sm.syncFleet()
}

// sharedFromConfig reports whether, in a fleet, name is a stream of this
// node's configuration, whose registry record shareConfig settles (it is
// not restored as a stream added over the API).
func (sm *StreamManager) sharedFromConfig(name string) bool {
	_, ok := sm.configSpecs[name]
	return sm.inFleet && ok
}

// shareConfig puts the streams of this node's configuration into the
// shared registry, so that every node knows them and can play them
// (streamRegistry.share): an entry the fleet has not seen yet (new, or
// changed in this file) becomes the stream's record; otherwise the
// registry's record, changed since on another node or over the API,
// applies here too, with a warning where it differs from this node's
// entry. It runs once the registry's contents (tombstones among them)
// have been applied, so that a stream removed fleet-wide is not shared
// again.
func (sm *StreamManager) shareConfig(reg *streamRegistry) {
	sm.change.Lock()
	defer sm.change.Unlock()
	for _, name := range slices.Sorted(maps.Keys(sm.configSpecs)) {
		sm.mu.Lock()
		ms := sm.streams[name]
		sm.mu.Unlock()
		if ms == nil || ms.origin != originConfig {
			continue // removed over the API, fleet-wide
		}
		record, own, err := reg.share(sm.configSpecs[name], sm.configured[name])
		if err != nil {
			sm.log.Warn("cannot share a stream of the configuration with the fleet: nodes without it in their configuration do not play it until this node restarts",
				"stream", name, "error", err)
		}
		if record == nil || own {
			continue
		}
		spec, err := decodeRegistrySpec(record)
		if err == nil {
			var opts streamOptions
			var icfg ingest.StreamConfig
			if opts, icfg, err = spec.resolve(sm.deps.cfg, sm.deps.model); err == nil {
				sm.own.Lock()
				if cur, _ := sm.lookup(name); cur != nil {
					cur.update(spec, opts, icfg)
				}
				sm.own.Unlock()
			}
		}
		if err != nil {
			sm.log.Warn("the fleet's record of a stream of this node's configuration does not apply here: this node plays its own entry", "stream", name, "error", err)
			continue
		}
		sm.log.Warn("this node's configuration entry for a stream differs from the fleet's record (changed since on another node or over the API): the record applies, here too; change the entry to replace it",
			"stream", name)
	}
	sm.shared = true
}
