package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Client talks to one actiond server. Its methods are safe for concurrent
// use. Close it when done.
type Client struct {
	addr        string
	conn        *grpc.ClientConn
	streams     actiondv1.StreamServiceClient
	recognition actiondv1.RecognitionServiceClient
	history     actiondv1.HistoryServiceClient
	health      healthpb.HealthClient
	callTimeout time.Duration
}

// Dial connects to the actiond server at addr ("host:port", or any gRPC
// target such as "unix:///run/actiond.sock") and returns once the server
// has answered: an address nobody listens on, or a TLS handshake that
// fails, is an *Error with code Unavailable (DeadlineExceeded after the
// dial timeout). After that the connection is re-established by itself
// when it drops; calls made while it is down fail with Unavailable.
//
// The connection is plaintext unless a TLS option is given.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	dialOpts, err := o.dialOptions(addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	c := &Client{
		addr:        addr,
		conn:        conn,
		streams:     actiondv1.NewStreamServiceClient(conn),
		recognition: actiondv1.NewRecognitionServiceClient(conn),
		history:     actiondv1.NewHistoryServiceClient(conn),
		health:      healthpb.NewHealthClient(conn),
		callTimeout: o.callTimeout,
	}
	if err := c.probe(ctx, o.dialTimeout); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// probe waits until the server answers a health check. Any answer proves
// the connection, even Unimplemented or Unauthenticated: those are for
// the calls to report.
func (c *Client) probe(ctx context.Context, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	_, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{})
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return wrap("connect to "+c.addr, err)
	}
	return nil
}

// Close closes the connection; calls in flight fail with Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// Addr is the address the client was dialled with.
func (c *Client) Addr() string { return c.addr }

// Conn is the client's gRPC connection, for calls the client has no
// method for. The token and TLS options apply to it.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// callContext bounds a unary call by the call timeout.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.callTimeout > 0 {
		return context.WithTimeout(ctx, c.callTimeout)
	}
	return context.WithCancel(ctx)
}

func (o *options) dialOptions(addr string) ([]grpc.DialOption, error) {
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if o.tls {
		cfg, err := o.tlsClientConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  250 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   max(o.reconnectWait, 250*time.Millisecond),
			},
			MinConnectTimeout: 20 * time.Second,
		}),
	}
	if o.token != "" {
		if !o.tls && !isLoopback(addr) {
			return nil, errors.New("without TLS, a token is sent only to a loopback address")
		}
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearerToken{token: o.token, secure: o.tls}))
	}
	return append(dialOpts, o.grpcOptions...), nil
}

func (o *options) tlsClientConfig() (*tls.Config, error) {
	if o.tlsConfig != nil {
		return o.tlsConfig, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.skipVerify}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// isLoopback says whether a gRPC target names this machine: a loopback
// IP, localhost, or a unix socket.
func isLoopback(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	if _, rest, ok := strings.Cut(target, ":///"); ok { // dns:///host:port, passthrough:///host:port
		target = rest
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// bearerToken is per-call credentials: "authorization: Bearer TOKEN".
type bearerToken struct {
	token  string
	secure bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false only for plaintext to loopback, which
// dialOptions has checked.
func (b bearerToken) RequireTransportSecurity() bool { return b.secure }
