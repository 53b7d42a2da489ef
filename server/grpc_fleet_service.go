package server

import (
	"context"
	"fmt"
	"os"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/fleet"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fleetService implements actiond.v1.FleetService on this node's fleet
// membership; outside a fleet it lists the node itself.
type fleetService struct {
	actiondv1.UnimplementedFleetServiceServer
	fleet *fleet.Fleet
	// local describes this node when it is not in a fleet.
	local func() *actiondv1.Node
}

// NewFleetService serves FleetService from f. When f is nil (a node
// outside a fleet), ListNodes answers local() alone and DrainNode fails
// with FAILED_PRECONDITION.
func NewFleetService(f *fleet.Fleet, local func() *actiondv1.Node) actiondv1.FleetServiceServer {
	return &fleetService{fleet: f, local: local}
}

func (svc *fleetService) ListNodes(context.Context, *actiondv1.ListNodesRequest) (*actiondv1.ListNodesResponse, error) {
	if svc.fleet == nil {
		var nodes []*actiondv1.Node
		if svc.local != nil {
			nodes = append(nodes, svc.local())
		}
		return &actiondv1.ListNodesResponse{Nodes: nodes}, nil
	}
	resp := &actiondv1.ListNodesResponse{Fleet: svc.fleet.FleetName()}
	for _, n := range svc.fleet.Nodes() {
		resp.Nodes = append(resp.Nodes, nodeProto(n))
	}
	return resp, nil
}

func (svc *fleetService) DrainNode(ctx context.Context, req *actiondv1.DrainNodeRequest) (*actiondv1.DrainNodeResponse, error) {
	if svc.fleet == nil {
		return nil, grpcError(ErrNotInFleet)
	}
	if req.GetName() == "" {
		return nil, grpcError(FieldError{Field: "name", Problem: "required"})
	}
	if err := svc.fleet.DrainNode(ctx, req.GetName()); err != nil {
		return nil, grpcError(err)
	}
	for _, n := range svc.fleet.Nodes() {
		if n.Name == req.GetName() {
			n.Draining = true // it is, even if its next heartbeat is not here yet
			return &actiondv1.DrainNodeResponse{Node: nodeProto(n)}, nil
		}
	}
	return &actiondv1.DrainNodeResponse{Node: &actiondv1.Node{Name: req.GetName(), Draining: true}}, nil
}

func nodeProto(n fleet.Node) *actiondv1.Node {
	return &actiondv1.Node{
		Name:          n.Name,
		Address:       n.Address,
		Version:       n.ServerVersion,
		StreamsOwned:  n.Streams,
		CpuLoad:       n.Load.CPU,
		InferenceLoad: n.Load.Inference,
		LastHeartbeat: timestamppb.New(n.Time),
		Draining:      n.Draining,
		MaxStreams:    uint32(n.MaxStreams),
	}
}

// serverFleetService is FleetService on the server: it serves from the
// fleet once the node has joined it, and lists this node alone outside a
// fleet.
type serverFleetService struct {
	actiondv1.UnimplementedFleetServiceServer
	srv *Server
}

func (svc *serverFleetService) get() (actiondv1.FleetServiceServer, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, err
	}
	if svc.srv.cfg.InFleet() {
		f := c.fleet.Load()
		if f == nil {
			return nil, fmt.Errorf("%w: this node has not joined fleet %q yet (is NATS up?)", ErrNotReady, svc.srv.cfg.Fleet.Name)
		}
		return NewFleetService(f, nil), nil
	}
	return NewFleetService(nil, func() *actiondv1.Node {
		name, _ := os.Hostname()
		return &actiondv1.Node{Name: name, Address: svc.srv.Addr(), Version: svc.srv.cfg.Version,
			StreamsOwned: c.streams.names(), LastHeartbeat: timestamppb.Now()}
	}), nil
}

func (svc *serverFleetService) ListNodes(ctx context.Context, req *actiondv1.ListNodesRequest) (*actiondv1.ListNodesResponse, error) {
	f, err := svc.get()
	if err != nil {
		return nil, grpcError(err)
	}
	return f.ListNodes(ctx, req)
}

func (svc *serverFleetService) DrainNode(ctx context.Context, req *actiondv1.DrainNodeRequest) (*actiondv1.DrainNodeResponse, error) {
	f, err := svc.get()
	if err != nil {
		return nil, grpcError(err)
	}
	return f.DrainNode(ctx, req)
}
