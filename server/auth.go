package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tokenAuth checks bearer tokens on every call but grpc.health.v1's (load
// balancers and orchestrators probe health without credentials). It keeps
// only the tokens' hashes and compares them in constant time. The set can
// be replaced while calls are checked (SIGHUP rereads auth.tokens_file).
type tokenAuth struct {
	hashes atomic.Pointer[[][sha256.Size]byte]
}

// newTokenAuth returns nil when there are no tokens: no authentication.
func newTokenAuth(tokens []string) *tokenAuth {
	if len(tokens) == 0 {
		return nil
	}
	a := &tokenAuth{}
	a.set(tokens)
	return a
}

// set replaces the accepted tokens; calls already under way go on.
func (a *tokenAuth) set(tokens []string) {
	hashes := make([][sha256.Size]byte, len(tokens))
	for i, t := range tokens {
		hashes[i] = sha256.Sum256([]byte(t))
	}
	a.hashes.Store(&hashes)
}

// errNoTokenReload: SIGHUP came, but there is no tokens file to reread.
var errNoTokenReload = errors.New("nothing to reload")

// ReloadTokens rereads auth.tokens_file (on SIGHUP): from then on, the
// tokens of the configuration and those now in the file are accepted, and
// tokens taken out of the file no longer are. Calls already open, such as
// Subscribe, go on. When the file cannot be read or holds no token, the
// tokens stay as they were. Authentication cannot be turned on or off
// this way: that takes a restart.
func (s *Server) ReloadTokens() error {
	switch {
	case s.auth == nil:
		return fmt.Errorf("%w: the server started without tokens (auth is off); restart it to turn auth on", errNoTokenReload)
	case s.tokensFile == "":
		return fmt.Errorf("%w: the server has no auth.tokens_file; auth.tokens change with a restart", errNoTokenReload)
	}
	fromFile, err := readTokensFile(s.tokensFile)
	if err != nil {
		return fmt.Errorf("reread auth.tokens_file: %w", err)
	}
	for i, t := range fromFile {
		if strings.ContainsAny(t, " \t") {
			return fmt.Errorf("reread auth.tokens_file: %s: token %d has a space in it", s.tokensFile, i+1)
		}
	}
	s.auth.set(append(slices.Clone(s.staticTokens), fromFile...))
	s.log.Info("tokens reloaded", "tokens_file", s.tokensFile, "tokens", len(s.staticTokens)+len(fromFile))
	return nil
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
	for _, want := range *a.hashes.Load() {
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
