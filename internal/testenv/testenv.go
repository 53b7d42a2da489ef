// Package testenv decides what a test does when the machine lacks something
// that it needs (a tool, a codec, a /proc file): in CI (CI=true, as CI
// services set it) the test fails, so that a CI run never passes by
// skipping; elsewhere it skips with the reason and the fix. Tests only.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CI reports whether the tests run in CI (the environment has CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test for want of something the machine lacks: it fails
// under CI and skips elsewhere. The message says what is missing; Missing
// adds the fix.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	format += " (make setup installs it)"
	if CI() {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// Tool returns the path of the command-line tool name, ending the test
// through Missing when it is not on PATH.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not installed: %v", name, err)
	}
	return p
}

// FFmpegEncoder returns the path of ffmpeg, ending the test through Missing
// when ffmpeg is not installed or was built without the encoder (Debian's
// ffmpeg has libx264 and libx265).
func FFmpegEncoder(t testing.TB, encoder string) string {
	t.Helper()
	ffmpeg := Tool(t, "ffmpeg")
	out, err := exec.Command(ffmpeg, "-hide_banner", "-encoders").Output()
	if err != nil {
		Missing(t, "%s -encoders: %v", ffmpeg, err)
	}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == encoder {
			return ffmpeg
		}
	}
	Missing(t, "%s has no %s encoder", ffmpeg, encoder)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// program that must be told its port before it listens.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort's address: 127.0.0.1:PORT.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// WaitFor polls cond every 20ms until it holds, failing the test when d
// passes first: a deadline that only catches hangs.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
