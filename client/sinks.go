package client

import (
	"context"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// ListSinks returns the server's sinks (MQTT brokers, webhooks) with their
// delivery figures, in configuration order. No credentials come with them.
func (c *Client) ListSinks(ctx context.Context) ([]*actiondv1.Sink, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := actiondv1.NewSinkServiceClient(c.conn).ListSinks(ctx, &actiondv1.ListSinksRequest{})
	if err != nil {
		return nil, wrap("list sinks", err)
	}
	return resp.GetSinks(), nil
}
