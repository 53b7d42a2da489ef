package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeServer is a small in-process actiond for the client's own tests: real
// gRPC over loopback, the generated service interfaces, in-memory streams,
// and a scripted Subscribe. The real server is exercised end to end by
// cmd/actionctl's tests; this one lets the tests here produce what the
// real one rarely does (tiny pages, chosen errors, a dropped connection).
type fakeServer struct {
	actiondv1.UnimplementedStreamServiceServer
	actiondv1.UnimplementedRecognitionServiceServer

	token    string // required bearer token, if set
	pageSize int    // ListStreams page size

	mu         sync.Mutex
	streams    map[string]*actiondv1.Stream
	subscribes int // Subscribe calls so far
	requests   []*actiondv1.SubscribeRequest
	subscribe  func(n int, srv actiondv1.RecognitionService_SubscribeServer) error
	classified []*actiondv1.ClassifyRequest
	lastAuth   []string
}

func newFakeServer() *fakeServer {
	return &fakeServer{streams: map[string]*actiondv1.Stream{}, pageSize: 3}
}

// serve starts a gRPC server for f on lis (plaintext unless cert is set)
// and stops it when the test ends.
func (f *fakeServer) serve(t *testing.T, lis net.Listener, cert *tls.Certificate) *grpc.Server {
	t.Helper()
	opts := []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := f.auth(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := f.auth(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(cert)))
	}
	s := grpc.NewServer(opts...)
	actiondv1.RegisterStreamServiceServer(s, f)
	actiondv1.RegisterRecognitionServiceServer(s, f)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return s
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func (f *fakeServer) auth(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.lastAuth = md.Get("authorization")
	f.mu.Unlock()
	if f.token == "" || strings.HasPrefix(method, "/grpc.health.v1.") {
		return nil
	}
	if !slices.Equal(md.Get("authorization"), []string{"Bearer " + f.token}) {
		return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
	}
	return nil
}

func (f *fakeServer) AddStream(_ context.Context, req *actiondv1.AddStreamRequest) (*actiondv1.AddStreamResponse, error) {
	if !strings.HasPrefix(req.GetUrl(), "rtsp://") {
		return nil, status.Error(codes.InvalidArgument, "'url' must be rtsp:// or rtsps://")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.streams[req.GetName()]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "stream %q already exists", req.GetName())
	}
	s := &actiondv1.Stream{Name: req.GetName(), Url: req.GetUrl(), Options: req.GetOptions(),
		Status: &actiondv1.StreamStatus{State: actiondv1.StreamState_STREAM_STATE_CONNECTING}}
	f.streams[req.GetName()] = s
	return &actiondv1.AddStreamResponse{Stream: s}, nil
}

func (f *fakeServer) GetStream(_ context.Context, req *actiondv1.GetStreamRequest) (*actiondv1.GetStreamResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.streams[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "stream %q not found", req.GetName())
	}
	return &actiondv1.GetStreamResponse{Stream: s}, nil
}

// ListStreams pages by offset; the token is the offset.
func (f *fakeServer) ListStreams(_ context.Context, req *actiondv1.ListStreamsRequest) (*actiondv1.ListStreamsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range f.streams {
			if !yield(n) {
				return
			}
		}
	})
	off := 0
	if req.GetPageToken() != "" {
		var err error
		if off, err = strconv.Atoi(req.GetPageToken()); err != nil {
			return nil, status.Error(codes.InvalidArgument, "bad page_token")
		}
	}
	end := min(off+f.pageSize, len(names))
	resp := &actiondv1.ListStreamsResponse{}
	for _, n := range names[off:end] {
		resp.Streams = append(resp.Streams, f.streams[n])
	}
	if end < len(names) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

func (f *fakeServer) RemoveStream(_ context.Context, req *actiondv1.RemoveStreamRequest) (*actiondv1.RemoveStreamResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.streams[req.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "stream %q not found", req.GetName())
	}
	delete(f.streams, req.GetName())
	return &actiondv1.RemoveStreamResponse{}, nil
}

func (f *fakeServer) Subscribe(req *actiondv1.SubscribeRequest, srv actiondv1.RecognitionService_SubscribeServer) error {
	f.mu.Lock()
	f.subscribes++
	f.requests = append(f.requests, req)
	n, script := f.subscribes, f.subscribe
	f.mu.Unlock()
	if script == nil {
		<-srv.Context().Done()
		return nil
	}
	return script(n, srv)
}

func (f *fakeServer) subscribeCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subscribes
}

func (f *fakeServer) Classify(_ context.Context, req *actiondv1.ClassifyRequest) (*actiondv1.ClassifyResponse, error) {
	f.mu.Lock()
	f.classified = append(f.classified, req)
	f.mu.Unlock()
	file := req.GetFileName()
	if u := req.GetUri(); u != "" {
		file = strings.TrimPrefix(u, "file://")
	}
	return &actiondv1.ClassifyResponse{File: file, Model: "fake", FramesTotal: int32(len(req.GetContent())),
		Top: []*actiondv1.LabelScore{{Index: 1, Label: "moving_right", Score: 1}}[:min(int(req.GetTopK()), 1)]}, nil
}

func (f *fakeServer) GetModel(context.Context, *actiondv1.GetModelRequest) (*actiondv1.GetModelResponse, error) {
	return &actiondv1.GetModelResponse{Model: &actiondv1.Model{Name: "fake", Labels: []string{"moving_left", "moving_right"}}}, nil
}

// windowEvent is a WindowResult event of stream "cam" numbered seq.
func windowEvent(seq uint64) *actiondv1.SubscribeResponse {
	return &actiondv1.SubscribeResponse{Event: &actiondv1.Event{Stream: "cam", Sequence: seq,
		Kind: &actiondv1.Event_WindowResult{WindowResult: &actiondv1.WindowResult{
			Top: []*actiondv1.LabelScore{{Label: fmt.Sprint("label", seq), Score: 0.5}}}}}}
}
