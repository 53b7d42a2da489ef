package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/actiond/actiond/models/atomicfile"
)

// StateFile keeps the streams added over the API across restarts. It is
// YAML with the same keys as the configuration's streams:
//
//	# written by actiond; streams added over the API
//	streams:
//	  - name: dock-3
//	    url: rtsp://user:pass@192.0.2.7/stream1
//	    window: 10s
//
// It holds the cameras' credentials, so it is written readable by its owner
// only. Writes are atomic: a temporary file beside it, synced, renamed over
// it, and the directory synced, so that a crash leaves the old file or the
// new one, never a mix.
type StateFile struct {
	path string
}

// NewStateFile returns the state file at path; it need not exist yet.
func NewStateFile(path string) *StateFile { return &StateFile{path: path} }

// Path returns where the file is.
func (f *StateFile) Path() string { return f.path }

type stateDoc struct {
	Streams []StreamSpec `yaml:"streams"`
}

// Load returns the streams in the file; none when it does not exist.
func (f *StateFile) Load() ([]StreamSpec, error) {
	if _, err := os.Stat(f.path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("state file %s: %w", f.path, err)
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	var doc stateDoc
	var errs FieldErrors
	decodeNode(root.Content[0], reflect.ValueOf(&doc).Elem(), "", &errs)
	if err := errs.err(); err != nil {
		return nil, fmt.Errorf("state file %s: %w", f.path, err)
	}
	return doc.Streams, nil
}

// RemoveTemps removes the temporary files of writes that a crash cut
// short (the file itself is whole: the old or the new one). The server
// calls it at start, before it writes.
func (f *StateFile) RemoveTemps() (int, error) { return atomicfile.RemoveTemps(f.path) }

// Save replaces the file's streams with specs, atomically.
func (f *StateFile) Save(specs []StreamSpec) error {
	var buf bytes.Buffer
	buf.WriteString("# Written by actiond: the streams added over the API. It holds camera\n# credentials: keep it private.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(stateDoc{Streams: specs}); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return atomicfile.Write(f.path, 0o600, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err })
}
