package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/nats-io/nats.go/jetstream"
)

// historyService implements actiond.v1.HistoryService from the event log:
// the actions it keeps and their snapshots.
type historyService struct {
	actiondv1.UnimplementedHistoryServiceServer
	srv *Server
}

func (svc *historyService) events() (*eventLog, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, err
	}
	return c.events, nil
}

func (svc *historyService) ListActions(_ context.Context, req *actiondv1.ListActionsRequest) (*actiondv1.ListActionsResponse, error) {
	e, err := svc.events()
	if err != nil {
		return nil, grpcError(err)
	}
	actions, next, err := e.actions.list(req)
	if err != nil {
		return nil, grpcError(err)
	}
	return &actiondv1.ListActionsResponse{Actions: actions, NextPageToken: next}, nil
}

func (svc *historyService) GetAction(_ context.Context, req *actiondv1.GetActionRequest) (*actiondv1.GetActionResponse, error) {
	e, err := svc.events()
	if err != nil {
		return nil, grpcError(err)
	}
	if req.GetActionId() == "" {
		return nil, grpcError(FieldError{Field: "action_id", Problem: "required"})
	}
	a := e.actions.get(req.GetActionId())
	if a == nil {
		return nil, grpcError(fmt.Errorf("%w: %q (ListActions lists those kept)", ErrActionNotFound, req.GetActionId()))
	}
	return &actiondv1.GetActionResponse{Action: a}, nil
}

func (svc *historyService) GetSnapshot(ctx context.Context, req *actiondv1.GetSnapshotRequest) (*actiondv1.GetSnapshotResponse, error) {
	e, err := svc.events()
	if err != nil {
		return nil, grpcError(err)
	}
	if req.GetActionId() == "" {
		return nil, grpcError(FieldError{Field: "action_id", Problem: "required"})
	}
	snap, err := e.snaps.get(ctx, req.GetActionId())
	return snap, grpcError(err)
}

// get reads the snapshot of an action.
func (s *snapshotStore) get(ctx context.Context, id string) (*actiondv1.GetSnapshotResponse, error) {
	b, err := s.bucket(ctx)
	if err != nil {
		return nil, err
	}
	r, err := b.Get(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: no snapshot of action %q", ErrActionNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot %q: %w", eventlog.ErrUnavailable, id, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot %q: %w", eventlog.ErrUnavailable, id, err)
	}
	info, err := r.Info()
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot %q: %w", eventlog.ErrUnavailable, id, err)
	}
	return snapshotResponse(data, info.Metadata), nil
}
