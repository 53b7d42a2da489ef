package client

import (
	"crypto/tls"
	"time"

	"google.golang.org/grpc"
)

// Option configures Dial.
type Option func(*options)

type options struct {
	token         string
	tls           bool
	tlsConfig     *tls.Config
	caFile        string
	skipVerify    bool
	dialTimeout   time.Duration
	callTimeout   time.Duration
	grpcOptions   []grpc.DialOption
	reconnectWait time.Duration
}

func defaultOptions() options {
	return options{dialTimeout: 10 * time.Second, reconnectWait: 5 * time.Second}
}

// WithToken sends "authorization: Bearer TOKEN" with every call. Over
// plaintext it is only sent to a loopback address (127.0.0.0/8, ::1,
// localhost, a unix socket): to any other address Dial refuses it without
// TLS.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS connects with TLS, verifying the server against the system's
// root certificates (unless WithCAFile or WithInsecureSkipVerify says
// otherwise). Without any TLS option the connection is plaintext.
func WithTLS() Option { return func(o *options) { o.tls = true } }

// WithCAFile connects with TLS, verifying the server against the PEM
// certificates in path instead of the system's roots.
func WithCAFile(path string) Option {
	return func(o *options) { o.tls, o.caFile = true, path }
}

// WithInsecureSkipVerify connects with TLS without verifying the server's
// certificate: for tests only.
func WithInsecureSkipVerify() Option {
	return func(o *options) { o.tls, o.skipVerify = true, true }
}

// WithTLSConfig connects with TLS configured by cfg (it is cloned); the
// other TLS options are ignored.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tls, o.tlsConfig = true, cfg.Clone() }
}

// WithDialTimeout bounds how long Dial waits for the server to answer.
// It defaults to 10s; Dial's context can end it sooner.
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithCallTimeout gives every unary call (not Subscribe) a deadline of d,
// unless its context ends sooner. It defaults to 0: only the context
// bounds a call.
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithReconnectWait caps the wait between attempts to reconnect to a
// server that went away (gRPC's connection backoff, which starts at
// 250ms). It defaults to 5s.
func WithReconnectWait(d time.Duration) Option { return func(o *options) { o.reconnectWait = d } }

// WithGRPCOptions adds gRPC dial options, after the client's own.
func WithGRPCOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.grpcOptions = append(o.grpcOptions, opts...) }
}
