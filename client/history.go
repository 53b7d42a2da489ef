package client

import (
	"context"
	"fmt"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// ListActions lists one page of the actions the server's event log keeps,
// newest start first; pass the response's next_page_token as
// req.page_token for the next page.
func (c *Client) ListActions(ctx context.Context, req *actiondv1.ListActionsRequest) (*actiondv1.ListActionsResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.history.ListActions(ctx, req)
	if err != nil {
		return nil, wrap("list actions", err)
	}
	return resp, nil
}

// GetAction returns one action of the history.
func (c *Client) GetAction(ctx context.Context, id string) (*actiondv1.Action, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.history.GetAction(ctx, &actiondv1.GetActionRequest{ActionId: id})
	if err != nil {
		return nil, wrap(fmt.Sprintf("get action %q", id), err)
	}
	return resp.GetAction(), nil
}

// GetSnapshot returns the picture taken when the action started (a JPEG).
func (c *Client) GetSnapshot(ctx context.Context, id string) (*actiondv1.GetSnapshotResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.history.GetSnapshot(ctx, &actiondv1.GetSnapshotRequest{ActionId: id})
	if err != nil {
		return nil, wrap(fmt.Sprintf("get snapshot of %q", id), err)
	}
	return resp, nil
}
