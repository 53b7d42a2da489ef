package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/actiond/actiond/server/eventlog"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"
)

// streamStore keeps the streams added over the API across restarts: the
// stream registry, or a state file.
type streamStore interface {
	// Load returns the streams kept.
	Load() ([]StreamSpec, error)
	// Save makes specs the streams kept.
	Save(specs []StreamSpec) error
	// Path names where they are kept, for logs and errors.
	Path() string
}

// registryBucket is the JetStream KV bucket of the stream registry: one
// key per stream added over the API (its name), the value its spec as
// YAML (the configuration's stream keys, credentials included).
const registryBucket = "ACTIOND_STREAMS"

// importedKey marks a registry into which the state file was imported
// (or that never needed it): '=' is in no stream name.
const importedKey = "=state_file_imported"

// streamRegistry is the stream registry: a KV bucket of the event log's
// JetStream. It replaces the state file, which it imports once. Save
// writes only the keys that changed since this server read or wrote them.
type streamRegistry struct {
	kv   jetstream.KeyValue
	last map[string][]byte // what this server last read or wrote, by name
}

// openStreamRegistry opens (or makes) the registry; on its first start it
// imports the streams of the state file at stateFile (if any), which is
// then left alone.
func openStreamRegistry(ctx context.Context, js jetstream.JetStream, stateFile string, replicas int, log *slog.Logger) (*streamRegistry, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      registryBucket,
		Description: "actiond: the streams added over the API (with camera credentials)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: stream registry: %w", eventlog.ErrUnavailable, err)
	}
	r := &streamRegistry{kv: kv, last: map[string][]byte{}}
	if _, err := kv.Get(ctx, importedKey); err == nil {
		return r, nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: stream registry: %w", eventlog.ErrUnavailable, err)
	}
	note := "nothing to import"
	if stateFile != "" {
		f := NewStateFile(stateFile)
		specs, err := f.Load()
		if err != nil {
			return nil, fmt.Errorf("import state_file into the stream registry: %w", err)
		}
		if err := r.Save(specs); err != nil {
			return nil, fmt.Errorf("import state_file into the stream registry: %w", err)
		}
		note = fmt.Sprintf("%d streams from %s", len(specs), stateFile)
		if len(specs) > 0 {
			log.Info("state_file imported into the stream registry; it is no longer read or written", "state_file", stateFile, "streams", len(specs))
		}
	}
	if _, err := kv.Put(ctx, importedKey, []byte(time.Now().UTC().Format(time.RFC3339)+" "+note)); err != nil {
		return nil, fmt.Errorf("%w: stream registry: %w", eventlog.ErrUnavailable, err)
	}
	return r, nil
}

func (r *streamRegistry) Path() string {
	return "the stream registry (KV bucket " + registryBucket + ")"
}

func registryContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// Load returns the registry's streams, in name order.
func (r *streamRegistry) Load() ([]StreamSpec, error) {
	ctx, cancel := registryContext()
	defer cancel()
	all, err := r.kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("%w: stream registry: %w", eventlog.ErrUnavailable, err)
	}
	var keys []string
	for _, k := range all {
		if !strings.HasPrefix(k, "=") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // restored in name order, as the state file was

	var specs []StreamSpec
	for _, k := range keys {
		e, err := r.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("%w: stream registry: %s: %w", eventlog.ErrUnavailable, k, err)
		}
		spec, err := decodeRegistrySpec(e.Value())
		if err != nil {
			return nil, fmt.Errorf("stream registry: %s: %w", k, err)
		}
		r.last[k] = e.Value()
		specs = append(specs, spec)
	}
	return specs, nil
}

// Save makes specs the registry's streams: it puts those that changed and
// deletes those that are gone, of the ones this server knows.
func (r *streamRegistry) Save(specs []StreamSpec) error {
	ctx, cancel := registryContext()
	defer cancel()
	next := make(map[string][]byte, len(specs))
	for _, s := range specs {
		b, err := yaml.Marshal(s)
		if err != nil {
			return err
		}
		next[s.Name] = b
	}
	for name, b := range next {
		if old, ok := r.last[name]; ok && bytes.Equal(old, b) {
			continue
		}
		if _, err := r.kv.Put(ctx, name, b); err != nil {
			return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
		}
		r.last[name] = b
	}
	for name := range r.last {
		if _, ok := next[name]; ok {
			continue
		}
		if err := r.kv.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
		}
		delete(r.last, name)
	}
	return nil
}

// tombstonePrefix begins the registry key of a stream removed over the
// API in a fleet ("=removed=<name>", dots written "=2E"): no node's
// configuration brings it back while its entry for the stream is what was
// removed (removedStream).
const tombstonePrefix = "=removed="

// removedStream is a tombstone's value: when the stream was removed, by
// which node, and the configuration entries it stands for (configHash of
// each node's entry for the stream, as each node that had one added it).
// Readers ignore fields they do not know (FormatVersion's rule).
type removedStream struct {
	Version int       `json:"version"`
	Node    string    `json:"node"`
	Time    time.Time `json:"time"`
	Config  []string  `json:"config,omitempty"`
}

func tombstoneKey(name string) string { return tombstonePrefix + strings.ReplaceAll(name, ".", "=2E") }

// sharedPrefix begins the registry key ("=config=<name>", dots written
// "=2E") that says which configuration entries a stream's record has
// taken in (sharedConfig), in a fleet, where every node puts the streams
// of its configuration into the registry (share).
const sharedPrefix = "=config="

// sharedConfig is the value of a stream's "=config=" key: the
// configuration entries (configHash) that the stream's record has taken
// in, oldest first. An entry not among them is new to the fleet (added or
// changed in a node's file) and replaces the record; one among them was
// replaced since (by a later entry or over the API) and does not.
// Readers ignore fields they do not know (FormatVersion's rule).
type sharedConfig struct {
	Version int      `json:"version"`
	Config  []string `json:"config"`
}

// maxSharedConfig bounds sharedConfig.Config: the oldest entries go first.
const maxSharedConfig = 64

// share puts a configuration's entry for a stream (spec, whose configHash
// is hash) into the registry, where its record is what every node of the
// fleet plays: it creates the record if there is none, and replaces one
// that differs only when the fleet has not seen this entry yet (it is new
// or changed in this node's file). It returns the record that applies
// and whether it is spec's.
func (r *streamRegistry) share(spec StreamSpec, hash string) (record []byte, own bool, err error) {
	ctx, cancel := registryContext()
	defer cancel()
	b, err := yaml.Marshal(spec)
	if err != nil {
		return nil, false, err
	}
	key := sharedPrefix + strings.ReplaceAll(spec.Name, ".", "=2E")
	var taken sharedConfig
	meta, err := r.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		meta = nil
	case err != nil:
		return nil, false, fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
	default:
		if err := json.Unmarshal(meta.Value(), &taken); err != nil {
			return nil, false, fmt.Errorf("stream registry: %s: %w", key, err)
		}
	}
	seen := slices.Contains(taken.Config, hash)
	written := false
	for range 10 {
		e, err := r.kv.Get(ctx, spec.Name)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = r.kv.Create(ctx, spec.Name, b)
		case err != nil:
		case bytes.Equal(e.Value(), b):
		case seen:
			r.last[spec.Name] = slices.Clone(e.Value())
			return e.Value(), false, nil
		default:
			_, err = r.kv.Update(ctx, spec.Name, b, e.Revision())
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // written meanwhile: look again
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
		}
		written = true
		break
	}
	if !written {
		return nil, false, fmt.Errorf("%w: the record of stream %q changed ten times meanwhile", eventlog.ErrUnavailable, spec.Name)
	}
	r.last[spec.Name] = b
	if seen {
		return b, true, nil
	}
	// Taken in: from now on this entry no longer replaces the record. A
	// node adding its own entry meanwhile makes this one try again once.
	for range 2 {
		taken.Version = 1
		taken.Config = append(taken.Config, hash)
		if n := len(taken.Config); n > maxSharedConfig {
			taken.Config = taken.Config[n-maxSharedConfig:]
		}
		v, _ := json.Marshal(taken)
		if meta == nil {
			_, err = r.kv.Create(ctx, key, v)
		} else {
			_, err = r.kv.Update(ctx, key, v, meta.Revision())
		}
		if err == nil || !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			break
		}
		if meta, err = r.kv.Get(ctx, key); err != nil {
			break
		}
		taken = sharedConfig{}
		if err = json.Unmarshal(meta.Value(), &taken); err != nil || slices.Contains(taken.Config, hash) {
			break
		}
	}
	if err != nil {
		return b, true, fmt.Errorf("record written, but not that it took this configuration entry in (it replaces the record again at the next start): %w", err)
	}
	return b, true, nil
}

func tombstoneStream(key string) string {
	return strings.ReplaceAll(strings.TrimPrefix(key, tombstonePrefix), "=2E", ".")
}

// configHash identifies a configuration's entry for a stream, without
// its credentials.
func configHash(spec StreamSpec) string {
	b, _ := yaml.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// bury writes the tombstone of stream name, removed by node (fresh),
// with hash if not ""; or adds hash to the one there, compare-and-set, so
// that nodes adding theirs at once all count.
func (r *streamRegistry) bury(name, node, hash string, fresh bool) error {
	ctx, cancel := registryContext()
	defer cancel()
	key := tombstoneKey(name)
	for range 10 {
		rec, rev := removedStream{Version: 1, Node: node, Time: time.Now().UTC()}, uint64(0)
		if !fresh {
			e, err := r.kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				return nil // added again meanwhile: nothing to add to
			case err != nil:
				return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
			}
			if json.Unmarshal(e.Value(), &rec) == nil && slices.Contains(rec.Config, hash) {
				return nil
			}
			rev = e.Revision()
		}
		if hash != "" {
			rec.Config = append(rec.Config, hash)
		}
		b, _ := json.Marshal(rec)
		var err error
		if rev == 0 {
			_, err = r.kv.Put(ctx, key, b)
		} else {
			_, err = r.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("%w: the tombstone of stream %q changed ten times meanwhile", eventlog.ErrUnavailable, name)
}

// unbury removes the tombstone of stream name (it was added again).
func (r *streamRegistry) unbury(name string) error {
	ctx, cancel := registryContext()
	defer cancel()
	if err := r.kv.Delete(ctx, tombstoneKey(name)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
	}
	return nil
}

// decodeRegistrySpec reads one stream's YAML as the configuration is
// read, except that keys it does not know are left out: a node of the
// next minor release may have written them (the registry's records are
// the configuration's stream keys, which are only ever added to, with
// omitempty, so a record has a new key only where it is set).
func decodeRegistrySpec(b []byte) (StreamSpec, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return StreamSpec{}, err
	}
	var spec StreamSpec
	if len(root.Content) == 0 {
		return spec, errors.New("empty")
	}
	var errs FieldErrors
	decodeNode(root.Content[0], reflect.ValueOf(&spec).Elem(), "", &errs)
	errs = slices.DeleteFunc(errs, func(e FieldError) bool { return strings.HasPrefix(e.Problem, "unknown key") })
	return spec, errs.err()
}

// lateRegistry stands for a registry that could not be opened at start
// (NATS down): it restores nothing, and opens the registry at the first
// change, failing the change while it cannot. The streams it already
// keeps are watched again at the next start.
type lateRegistry struct {
	open func() (*streamRegistry, error)
	reg  *streamRegistry
}

func (l *lateRegistry) Load() ([]StreamSpec, error) { return nil, nil }

func (l *lateRegistry) Save(specs []StreamSpec) error {
	if l.reg == nil {
		reg, err := l.open()
		if err != nil {
			return err
		}
		l.reg = reg
	}
	return l.reg.Save(specs)
}

func (l *lateRegistry) Path() string { return "the stream registry (KV bucket " + registryBucket + ")" }

// opened returns the registry, opening it if it is not yet. The caller
// holds the stream manager's change lock, as Save's callers do.
func (l *lateRegistry) opened() (*streamRegistry, bool, error) {
	if l.reg != nil {
		return l.reg, false, nil
	}
	reg, err := l.open()
	if err != nil {
		return nil, false, err
	}
	l.reg = reg
	return reg, true, nil
}
