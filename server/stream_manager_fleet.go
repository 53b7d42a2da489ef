package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

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
// stream stays known, for another node to play.
func (sm *StreamManager) Release(name string) {
	sm.own.Lock()
	defer sm.own.Unlock()
	sm.mu.Lock()
	ms := sm.streams[name]
	sm.mu.Unlock()
	if ms == nil || !ms.started.Load() {
		return
	}
	ms.Close()
	v := ms.view.Load()
	sm.mu.Lock()
	if sm.streams[name] == ms && !sm.closed {
		sm.gen++
		sm.streams[name] = newManagedStream(v.spec, v.opts, v.icfg, sm.gen, ms.origin, sm.deps)
	}
	sm.mu.Unlock()
	sm.log.Info("stream released: stopped here", "stream", name)
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
// registry, until ctx ends.
func (sm *StreamManager) watchRegistry(ctx context.Context, reg *streamRegistry) error {
	w, err := reg.kv.WatchAll(ctx)
	if err != nil {
		return err
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
				if e != nil && !strings.HasPrefix(e.Key(), "=") {
					sm.applyRegistry(reg, e)
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
		sm.own.Lock()
		sm.mu.Lock()
		delete(sm.streams, name)
		sm.mu.Unlock()
		ms.Close()
		sm.own.Unlock()
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
		if ms.origin != originAPI {
			return // the configuration's stream wins on this node
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
