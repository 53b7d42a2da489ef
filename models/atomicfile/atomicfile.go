// Package atomicfile writes files that a reader, or a crash, never sees half
// written: the bytes go to a temporary file beside the target, which is
// synced and then renamed over it, and the directory is synced so that the
// rename itself is durable where the file system allows it.
//
// It is shared by every writer of model files, tensors and state; it knows
// nothing of what they hold.
package atomicfile

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Write creates or replaces path with what write writes, with permissions
// perm. On any error the target is untouched and no temporary file is left.
func Write(path string, perm os.FileMode, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file private; give it the mode asked for.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // not every file system can
		d.Close()
	}
	return nil
}

// tempPrefix starts the names of the temporary files of path.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// RemoveTemps removes the temporary files that writes of path left behind
// when the process was killed mid-write (Write removes its own on every
// error it sees). Only the one writer of path may call it, before it
// writes: a temporary file of a write in progress would go too. It returns
// how many it removed.
func RemoveTemps(path string) (int, error) {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), tempPrefix(path)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, err
		}
		n++
	}
	return n, nil
}
