package client

import (
	"context"
	"fmt"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// ListNodes returns the fleet's live nodes by name, and the fleet's name
// ("" for a node outside a fleet, which lists itself).
func (c *Client) ListNodes(ctx context.Context) ([]*actiondv1.Node, string, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := actiondv1.NewFleetServiceClient(c.conn).ListNodes(ctx, &actiondv1.ListNodesRequest{})
	if err != nil {
		return nil, "", wrap("list nodes", err)
	}
	return resp.GetNodes(), resp.GetFleet(), nil
}

// DrainNode makes the named node hand its streams over and take no new
// ones; it returns once the node has begun.
func (c *Client) DrainNode(ctx context.Context, name string) (*actiondv1.Node, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := actiondv1.NewFleetServiceClient(c.conn).DrainNode(ctx, &actiondv1.DrainNodeRequest{Name: name})
	if err != nil {
		return nil, wrap(fmt.Sprintf("drain node %q", name), err)
	}
	return resp.GetNode(), nil
}
