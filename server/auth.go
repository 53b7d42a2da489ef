package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tokenAuth checks bearer tokens on every call but grpc.health.v1's (load
// balancers and orchestrators probe health without credentials). It keeps
// only the tokens' hashes and compares them in constant time.
type tokenAuth struct {
	hashes [][sha256.Size]byte
}

// newTokenAuth returns nil when there are no tokens: no authentication.
func newTokenAuth(tokens []string) *tokenAuth {
	if len(tokens) == 0 {
		return nil
	}
	a := &tokenAuth{}
	for _, t := range tokens {
		a.hashes = append(a.hashes, sha256.Sum256([]byte(t)))
	}
	return a
}

const healthPrefix = "/grpc.health.v1.Health/"

// check returns the status error for a call without an accepted token.
func (a *tokenAuth) check(ctx context.Context, method string) error {
	if strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	if len(values) == 0 {
		return status.Error(codes.Unauthenticated, "missing bearer token: send 'authorization: Bearer <token>'")
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return status.Error(codes.Unauthenticated, "malformed authorization header: send 'authorization: Bearer <token>'")
	}
	h := sha256.Sum256([]byte(token))
	match := 0
	for _, want := range a.hashes {
		match |= subtle.ConstantTimeCompare(h[:], want[:])
	}
	if match != 1 {
		return status.Error(codes.Unauthenticated, "invalid bearer token: it is none of the server's tokens (auth.tokens)")
	}
	return nil
}

func (a *tokenAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *tokenAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}
