package client

import (
	"context"
	"fmt"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// AddStream starts watching the camera at url under name. opts may be nil:
// unset options take the server's defaults. The stream returned is
// CONNECTING (or DISABLED), its options in effect.
func (c *Client) AddStream(ctx context.Context, name, url string, opts *actiondv1.StreamOptions) (*actiondv1.Stream, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: name, Url: url, Options: opts})
	if err != nil {
		return nil, wrap(fmt.Sprintf("add stream %q", name), err)
	}
	return resp.GetStream(), nil
}

// GetStream returns the stream called name.
func (c *Client) GetStream(ctx context.Context, name string) (*actiondv1.Stream, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: name})
	if err != nil {
		return nil, wrap(fmt.Sprintf("get stream %q", name), err)
	}
	return resp.GetStream(), nil
}

// ListStreams returns every stream, ordered by name, reading as many pages
// as the server makes of them. The call timeout applies to each page.
func (c *Client) ListStreams(ctx context.Context) ([]*actiondv1.Stream, error) {
	var all []*actiondv1.Stream
	seen := map[string]bool{}
	token := ""
	for {
		resp, err := c.listPage(ctx, token)
		if err != nil {
			return nil, err
		}
		all = append(all, resp.GetStreams()...)
		token = resp.GetNextPageToken()
		if token == "" {
			return all, nil
		}
		if seen[token] { // a server bug must not loop forever
			return nil, fmt.Errorf("list streams: the server returned page token %q twice", token)
		}
		seen[token] = true
	}
}

func (c *Client) listPage(ctx context.Context, token string) (*actiondv1.ListStreamsResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{PageToken: token})
	return resp, wrap("list streams", err)
}

// UpdateStream changes the stream req names: its url if set, and the
// options that are set (see actiondv1.StreamOptions for how unset and
// zero differ). It returns the stream as it is after the change.
func (c *Client) UpdateStream(ctx context.Context, req *actiondv1.UpdateStreamRequest) (*actiondv1.Stream, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.streams.UpdateStream(ctx, req)
	if err != nil {
		return nil, wrap(fmt.Sprintf("update stream %q", req.GetName()), err)
	}
	return resp.GetStream(), nil
}

// RemoveStream stops watching the stream called name and forgets it.
func (c *Client) RemoveStream(ctx context.Context, name string) error {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	_, err := c.streams.RemoveStream(ctx, &actiondv1.RemoveStreamRequest{Name: name})
	return wrap(fmt.Sprintf("remove stream %q", name), err)
}
