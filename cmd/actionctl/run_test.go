package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/client"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

type result struct {
	stdout, stderr string
	code           int
}

// run runs a program to its end (60 s at most) with env added and stdin.
func run(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return result{out.String(), errb.String(), code}
}

// runCtl runs actionctl against srv, with its environment stripped of
// ACTIOND_TOKEN unless env sets it.
func runCtl(t *testing.T, srv *server, env []string, args ...string) result {
	t.Helper()
	return run(t, append([]string{"ACTIOND_TOKEN="}, env...), "", append([]string{actionctl, "--server", srv.addr}, args...)...)
}

// mustCtl runs actionctl and wants exit status 0.
func mustCtl(t *testing.T, srv *server, args ...string) string {
	t.Helper()
	r := runCtl(t, srv, nil, args...)
	if r.code != 0 {
		t.Fatalf("actionctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// wantFail wants actionctl to exit 1 with the status code in stderr.
func wantFail(t *testing.T, r result, code string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stderr, ": "+code+": ") {
		t.Errorf("exit %d, stderr %q; want exit 1 and %s", r.code, r.stderr, code)
	}
}

// unmarshalLines reads one protojson message per line, as actionctl
// --json prints them.
func unmarshalLines[M proto.Message](t *testing.T, s string, newM func() M) []M {
	t.Helper()
	var out []M
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := newM()
		if err := protojson.Unmarshal([]byte(line), m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func dialT(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitWindows waits until stream has made windows, so that its events
// flow at every stride.
func waitWindows(t *testing.T, addr, stream string) *actiondv1.Stream {
	t.Helper()
	c := dialT(t, addr)
	deadline := time.Now().Add(40 * time.Second)
	for {
		s, err := c.GetStream(t.Context(), stream)
		if err == nil && s.GetStatus().GetWindowCount() > 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %q made no window within 40s: %v, %v", stream, s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
