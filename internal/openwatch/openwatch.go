// Package openwatch tells tests which files of a directory were opened, by
// anyone in the system (Linux inotify): a test can show that a file was
// never read, not merely that an answer did not show it.
package openwatch

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"unsafe"
)

// Watch records the opens in one directory from Start to Opened.
type Watch struct {
	fd int
}

// Start watches dir for files being opened.
func Start(dir string) (*Watch, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_OPEN); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("inotify: watch %s: %w", dir, err)
	}
	return &Watch{fd: fd}, nil
}

// Opened ends the watch and returns the names of the files in the
// directory that were opened since Start (in order, with repeats; "" is
// the directory itself).
func (w *Watch) Opened() ([]string, error) {
	defer syscall.Close(w.fd)
	var names []string
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(w.fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return names, nil
		}
		if err != nil {
			return names, fmt.Errorf("inotify: read: %w", err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			if ev.Mask&syscall.IN_OPEN != 0 {
				names = append(names, string(bytes.TrimRight(name, "\x00")))
			}
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
