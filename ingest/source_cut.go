package ingest

import (
	"context"
	"errors"
	"net"
	"sync"
)

// errCut is the error of a dial after the stream's connections were cut.
var errCut = errors.New("connection cut: the stream is letting go of its camera")

// connSet holds a stream's open connections to its camera, so that Cut
// can close them from any goroutine at once, without the RTSP goodbye
// (TEARDOWN) and without waiting for the stream's goroutine, which may be
// starved of CPU or blocked. The zero value is ready; a nil *connSet
// tracks nothing.
type connSet struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	cut   bool
}

// dialer wraps dial so that the connections it makes are in the set, and
// none is made once the set was cut.
func (c *connSet) dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if c == nil {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cut {
			conn.Close()
			return nil, errCut
		}
		if c.conns == nil {
			c.conns = map[net.Conn]struct{}{}
		}
		c.conns[conn] = struct{}{}
		return &trackedConn{Conn: conn, set: c}, nil
	}
}

// closeAll closes every connection of the set, now and from now on. It
// does not block: closing a TCP socket sends its FIN (or RST) and returns.
func (c *connSet) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

// trackedConn leaves its set when closed.
type trackedConn struct {
	net.Conn
	set *connSet
}

func (t *trackedConn) Close() error {
	t.set.mu.Lock()
	delete(t.set.conns, t.Conn)
	t.set.mu.Unlock()
	return t.Conn.Close()
}
