package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Classify labels one clip, sent as content or named by a file:// uri on
// the server, the way `actiond classify` does.
func (c *Client) Classify(ctx context.Context, req *actiondv1.ClassifyRequest) (*actiondv1.ClassifyResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.recognition.Classify(ctx, req)
	if err != nil {
		op := "classify"
		if name := req.GetUri() + req.GetFileName(); name != "" { // one of them, by the oneof
			op += " " + name
		}
		return nil, wrap(op, err)
	}
	return resp, nil
}

// ClassifyFile uploads the file at path and labels it; the response's file
// is the file's base name. topK 0 asks for the server's default (5).
func (c *Client) ClassifyFile(ctx context.Context, path string, topK uint32) (*actiondv1.ClassifyResponse, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	return c.Classify(ctx, &actiondv1.ClassifyRequest{
		Clip:     &actiondv1.ClassifyRequest_Content{Content: content},
		FileName: filepath.Base(path),
		TopK:     topK,
	})
}

// ClassifyURI labels the clip the server finds at uri, a file:// URI of
// an absolute path on the server inside its allowed directories.
func (c *Client) ClassifyURI(ctx context.Context, uri string, topK uint32) (*actiondv1.ClassifyResponse, error) {
	return c.Classify(ctx, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: uri}, TopK: topK})
}

// GetModel describes the model the server runs.
func (c *Client) GetModel(ctx context.Context) (*actiondv1.Model, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.recognition.GetModel(ctx, &actiondv1.GetModelRequest{})
	if err != nil {
		return nil, wrap("get model", err)
	}
	return resp.GetModel(), nil
}

// Health asks grpc.health.v1 how service is doing; "" is the server as a
// whole, "actiond.v1.StreamService" one of its services.
func (c *Client) Health(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		op := "health check"
		if service != "" {
			op += " of " + service
		}
		return healthpb.HealthCheckResponse_UNKNOWN, wrap(op, err)
	}
	return resp.GetStatus(), nil
}
