package fleet

import "errors"

var (
	// ErrDuplicateNode: another live process has this node's name.
	ErrDuplicateNode = errors.New("node name in use")
	// ErrLeaseMismatch: the node's fleet.lease differs from the fleet's.
	ErrLeaseMismatch = errors.New("fleet.lease differs from the fleet's")
	// ErrUnknownNode: no live node has that name.
	ErrUnknownNode = errors.New("no such node")
	// ErrStaleFence: the fence is not that of the stream's current lease.
	ErrStaleFence = errors.New("stale fence")
	// ErrClosed: the fleet membership has ended.
	ErrClosed = errors.New("fleet closed")
)
