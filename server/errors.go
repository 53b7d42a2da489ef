package server

import (
	"context"
	"errors"
	"strings"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/ingest/hostlist"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/actiond/actiond/server/fleet"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors of the server that callers test with errors.Is. grpcError maps
// each to its gRPC code; nothing else picks codes.
var (
	// ErrStreamExists: a stream of that name is already watched.
	ErrStreamExists = errors.New("a stream of that name already exists")
	// ErrStreamNotFound: no stream of that name.
	ErrStreamNotFound = errors.New("no such stream")
	// ErrTooManyStreams: the server watches max_streams streams already.
	ErrTooManyStreams = errors.New("stream limit reached")
	// ErrTooManySubscribers: subscribers.max_subscribers Subscribe calls
	// are open already.
	ErrTooManySubscribers = errors.New("subscriber limit reached (subscribers.max_subscribers)")
	// ErrNotReady: the model is still loading.
	ErrNotReady = errors.New("the model is still loading; retry when grpc.health.v1 says SERVING")
	// ErrShuttingDown: the server is shutting down.
	ErrShuttingDown = errors.New("the server is shutting down")
	// ErrContentTooLarge: a Classify upload over classify.max_content_size.
	ErrContentTooLarge = errors.New("content too large")
	// ErrURIForbidden: a Classify uri outside classify.allowed_dirs.
	ErrURIForbidden = errors.New("uri not allowed")
	// ErrClipNotFound: a Classify uri names no file.
	ErrClipNotFound = errors.New("no such file")
	// ErrUnreadableClip: a clip that cannot be opened or decoded.
	// The same value as classify.ErrUnreadableClip.
	ErrUnreadableClip = classify.ErrUnreadableClip
	// ErrNotInFleet: a fleet call to a node outside a fleet.
	ErrNotInFleet = errors.New("this node is not part of a fleet (set nats.url)")
	// ErrClassifyBusy: classify.max_concurrent calls decode and as many
	// wait already.
	ErrClassifyBusy = errors.New("too many Classify calls")
	// ErrActionNotFound: the event log keeps no action with that id (or
	// no snapshot of it).
	ErrActionNotFound = errors.New("no such action")
)

// FieldError is a problem with one field of a request or one key of the
// configuration; Field names it as the user spells it ("options.window",
// "streams[2].url").
type FieldError struct {
	Field   string
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// FieldErrors are every problem found with one request or configuration.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// add records a problem with field. Credentials in URLs that the problem
// quotes are taken out.
func (es *FieldErrors) add(field, problem string) {
	*es = append(*es, FieldError{Field: field, Problem: redactSecrets(problem)})
}

// prefixed returns es with prefix put before every field name.
func (es FieldErrors) prefixed(prefix string) FieldErrors {
	out := make(FieldErrors, len(es))
	for i, e := range es {
		out[i] = FieldError{Field: prefix + e.Field, Problem: e.Problem}
	}
	return out
}

// err returns es as an error, nil when empty.
func (es FieldErrors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// grpcError is the one place where errors become gRPC status codes. Its
// message is the error's text, which says what to do about it.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var fields FieldErrors
	var field FieldError
	code := codes.Internal
	switch {
	case errors.As(err, &fields), errors.As(err, &field):
		code = codes.InvalidArgument
	case errors.Is(err, ErrStreamExists):
		code = codes.AlreadyExists
	case errors.Is(err, ErrStreamNotFound), errors.Is(err, ErrClipNotFound), errors.Is(err, ErrActionNotFound), errors.Is(err, fleet.ErrUnknownNode):
		code = codes.NotFound
	case errors.Is(err, ErrNotInFleet):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrTooManyStreams), errors.Is(err, ErrTooManySubscribers), errors.Is(err, ErrContentTooLarge),
		errors.Is(err, ErrClassifyBusy):
		code = codes.ResourceExhausted
	case errors.Is(err, ErrURIForbidden), errors.Is(err, hostlist.ErrNotAllowed):
		code = codes.PermissionDenied
	case errors.Is(err, ErrUnreadableClip):
		code = codes.InvalidArgument
	case errors.Is(err, eventlog.ErrOutOfRange):
		code = codes.OutOfRange
	case errors.Is(err, ErrNotReady), errors.Is(err, ErrShuttingDown), errors.Is(err, fleet.ErrClosed), errors.Is(err, eventlog.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}
