package server

import (
	"context"

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
