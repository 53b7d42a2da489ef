// Package ctl is actionctl: its commands, flags and output, on top of the
// client library. main only wires it to the process; tests run it
// in-process or as the built binary.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/actiond/actiond/client"
)

// Exit statuses.
const (
	exitOK    = 0 // done
	exitError = 1 // the server or a call failed (or a local file could not be read)
	exitUsage = 2 // the command line is wrong
)

const usage = `actionctl: talks to an actiond server.

Usage:
  actionctl [GLOBAL FLAGS] COMMAND [ARGS] [FLAGS]

Commands:
  streams add NAME URL [STREAM FLAGS] [--disabled]
  streams ls [--json]
  streams get NAME [--json]
  streams update NAME [STREAM FLAGS] [--url URL] [--enable | --disable]
                      (only the flags given change; 0 or "" resets an option)
  streams rm NAME
  watch [--stream NAME]... [--label LABEL]... [--min-score S]
        [--kinds window,started,ended,status] [--resume-after POSITION] [--json]
        (after a reconnect it resumes where it was: nothing is missed)
  actions ls [--stream NAME]... [--label LABEL]... [--since 2h] [--min-score S]
             [--limit 50] [--json]
  actions get ACTION_ID [--json]
  actions snapshot ACTION_ID [-o FILE.jpg | -o -]
  classify FILE|file:///PATH... [--top-k K] [--json]
  model [--json]
  sinks ls [--json]
  health [SERVICE]
  nodes ls [--json]               (the fleet's nodes; a single node lists itself)
  nodes drain NAME [--wait]       (hand the node's streams over; --wait until it owns none)
  version

Stream flags:
  --window 10s  --stride 1.25s  --top-k N  --on 0.6  --off 0.4  --min-windows 2
  --labels a,b  --transport auto|udp|tcp

Global flags (before or after the command):
  --server ADDR     the server (default 127.0.0.1:50051)
  --token T         bearer token (default $ACTIOND_TOKEN)
  --tls             connect with TLS, verifying with the system's roots
  --ca FILE         connect with TLS, verifying with the CA in FILE
  --tls-skip-verify connect with TLS without verifying (tests only)
  --timeout D       deadline of each call, not of watch (default 1m)

Exit status: 0 ok, 1 server or call error (its status code and message are
printed), 2 usage.
`

// Env is what one run of actionctl talks to.
type Env struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment (ACTIOND_TOKEN, NO_COLOR, TERM).
	Getenv func(string) string
	// Terminal says that Stdout is a terminal: watch then highlights
	// actions and keeps a status line.
	Terminal bool
}

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// Run runs actionctl with args (the program name left out) and returns
// its exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	err := run(ctx, args, env)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(errReported)):
		return exitError
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.Stderr, "actionctl: %s\nRun 'actionctl help' for usage.\n", strings.TrimPrefix(err.Error(), "usage: "))
		return exitUsage
	default:
		fmt.Fprintf(env.Stderr, "actionctl: %v\n", err)
		return exitError
	}
}

func run(ctx context.Context, args []string, env Env) error {
	g := globals{server: "127.0.0.1:50051", timeout: time.Minute}
	top := newFlagSet("actionctl", env, &g)
	if err := top.Parse(args); err != nil { // stops at the command
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Stdout, usage)
			return err
		}
		return usageErrorf("%v", err)
	}
	args = top.Args()
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return usageErrorf("no command")
	}
	cmd := command{env: env, g: &g}
	switch name, rest := args[0], args[1:]; name {
	case "streams", "stream":
		return cmd.streams(ctx, rest)
	case "watch":
		return cmd.watch(ctx, rest)
	case "classify":
		return cmd.classify(ctx, rest)
	case "model":
		return cmd.model(ctx, rest)
	case "actions", "action":
		return cmd.actions(ctx, rest)
	case "sinks", "sink":
		return cmd.sinks(ctx, rest)
	case "health":
		return cmd.health(ctx, rest)
	case "nodes", "node":
		return cmd.nodes(ctx, rest)
	case "version":
		fmt.Fprintln(env.Stdout, "actionctl dev")
		return nil
	case "help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	default:
		return usageErrorf("unknown command %q", name)
	}
}

// globals are the flags every command takes.
type globals struct {
	server     string
	token      string
	tls        bool
	ca         string
	skipVerify bool
	timeout    time.Duration
}

// command is one run: its environment and global flags.
type command struct {
	env Env
	g   *globals
}

// newFlagSet makes a flag set that has the global flags, bound to g, so
// that they may come before or after the command.
func newFlagSet(name string, env Env, g *globals) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Errors are reported once, by Run; --help prints usage to stdout.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	// The values so far are the defaults: a command's flag set must not
	// undo global flags given before the command.
	fs.StringVar(&g.server, "server", g.server, "the server's address")
	fs.StringVar(&g.token, "token", g.token, "bearer token (default $ACTIOND_TOKEN)")
	fs.BoolVar(&g.tls, "tls", g.tls, "connect with TLS")
	fs.StringVar(&g.ca, "ca", g.ca, "connect with TLS, verifying the server with the CA certificates in this PEM file")
	fs.BoolVar(&g.skipVerify, "tls-skip-verify", g.skipVerify, "connect with TLS without verifying the server (tests only)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline of each call (not of watch)")
	return fs
}

func (c command) flags(name string) *flag.FlagSet { return newFlagSet(name, c.env, c.g) }

// parse parses flags that come before, between or after the positional
// arguments, and checks their number: want of them, or at least want when
// more is true.
func (c command) parse(fs *flag.FlagSet, args []string, want int, more bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(c.env.Stdout, usage)
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) < want || len(pos) > want && !more {
		return nil, usageErrorf("%s wants %d argument(s), got %d: %q", fs.Name(), want, len(pos), pos)
	}
	return pos, nil
}

// connect is every command's preamble: parse its flags and arguments (as
// parse does) and dial the server (as dial does). The caller closes the
// client. A command that checks its flags further calls parse, checks,
// then dial, so that a usage error needs no server.
func (c command) connect(ctx context.Context, fs *flag.FlagSet, args []string, want int, more bool) ([]string, *client.Client, error) {
	pos, err := c.parse(fs, args, want, more)
	if err != nil {
		return nil, nil, err
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	return pos, cl, nil
}

// dial connects to the server the global flags name.
func (c command) dial(ctx context.Context) (*client.Client, error) {
	var opts []client.Option
	token := c.g.token
	if token == "" {
		token = c.env.Getenv("ACTIOND_TOKEN")
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	switch {
	case c.g.ca != "":
		opts = append(opts, client.WithCAFile(c.g.ca))
	case c.g.skipVerify:
		opts = append(opts, client.WithInsecureSkipVerify())
	case c.g.tls:
		opts = append(opts, client.WithTLS())
	}
	if c.g.timeout > 0 {
		opts = append(opts, client.WithCallTimeout(c.g.timeout))
	}
	return client.Dial(ctx, c.g.server, opts...)
}
