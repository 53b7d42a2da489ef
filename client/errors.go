package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a call that failed: what the client was doing, and the status
// the server (or the gRPC transport) answered with. status.Code and
// status.FromError see the status through it, and errors.Is matches it
// against the code sentinels (ErrNotFound, ...) and, for Canceled and
// DeadlineExceeded, against context.Canceled and context.DeadlineExceeded.
type Error struct {
	// Op is what the client was doing, e.g. `add stream "dock-3"`.
	Op string
	// Status is the call's status; never nil, never OK.
	Status *status.Status
	err    error
}

// Error reads "OP: CODE: MESSAGE", e.g.
// `get stream "dock-3": NotFound: stream "dock-3" not found`.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Op, e.Status.Code(), e.Status.Message())
}

// Code is the status code.
func (e *Error) Code() codes.Code { return e.Status.Code() }

// GRPCStatus makes status.Code and status.FromError see the call's status.
func (e *Error) GRPCStatus() *status.Status { return e.Status }

// Unwrap returns the error the call returned.
func (e *Error) Unwrap() error { return e.err }

// Is matches the code sentinels and the context errors.
func (e *Error) Is(target error) bool {
	switch target {
	case context.Canceled:
		return e.Code() == codes.Canceled
	case context.DeadlineExceeded:
		return e.Code() == codes.DeadlineExceeded
	}
	c, ok := target.(codeError)
	return ok && codes.Code(c) == e.Code()
}

// codeError is a sentinel for one status code.
type codeError codes.Code

func (c codeError) Error() string { return codes.Code(c).String() }

// Sentinels for the status codes actiond answers with, for errors.Is.
var (
	// ErrInvalidArgument: a request field is wrong; the message names it.
	ErrInvalidArgument error = codeError(codes.InvalidArgument)
	// ErrNotFound: no stream has that name.
	ErrNotFound error = codeError(codes.NotFound)
	// ErrAlreadyExists: a stream already has that name.
	ErrAlreadyExists error = codeError(codes.AlreadyExists)
	// ErrPermissionDenied: the token may not do this, or a Classify uri
	// is outside the server's allowed directories.
	ErrPermissionDenied error = codeError(codes.PermissionDenied)
	// ErrUnauthenticated: no token, or a wrong one.
	ErrUnauthenticated error = codeError(codes.Unauthenticated)
	// ErrResourceExhausted: over a server limit (a clip too big, too
	// many subscribers).
	ErrResourceExhausted error = codeError(codes.ResourceExhausted)
	// ErrUnavailable: the server cannot be reached, or is shutting down.
	ErrUnavailable error = codeError(codes.Unavailable)
	// ErrUnimplemented: the server does not have this call.
	ErrUnimplemented error = codeError(codes.Unimplemented)
)

// wrap turns a call's error into an *Error that says what the call was.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return fmt.Errorf("%s: %w", op, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err) // Unknown unless err is a context error
	}
	return &Error{Op: op, Status: st, err: err}
}
