package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeFFmpeg writes an ffmpeg that lists libx264 only, in a directory of
// its own, and returns both.
func fakeFFmpeg(t *testing.T) (dir, path string) {
	dir = t.TempDir()
	path = filepath.Join(dir, "ffmpeg")
	script := "#!/bin/sh\nprintf 'Encoders:\\n ------\\n V....D libx264              libx264 H.264\\n'\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// What a missing tool or encoder does to a test, seen from outside: this
// test binary run again as a child (TESTENV_CHILD names the case) with and
// without CI=true. In CI the test fails, elsewhere it skips; the message
// says what is missing and how to get it.
func TestMissingFailsInCI(t *testing.T) {
	switch os.Getenv("TESTENV_CHILD") {
	case "tool":
		Tool(t, "actiond-no-such-tool")
		t.Fatal("Tool returned for a tool that is not installed")
	case "encoder":
		FFmpegEncoder(t, "libx265")
		t.Fatal("FFmpegEncoder returned for an encoder that ffmpeg does not list")
	}
	dir, _ := fakeFFmpeg(t)
	for _, tc := range []struct{ child, ci, want, line string }{
		{"tool", "true", "--- FAIL: TestMissingFailsInCI", "CI=true: actiond-no-such-tool not installed"},
		{"tool", "", "--- SKIP: TestMissingFailsInCI", "actiond-no-such-tool not installed"},
		{"encoder", "true", "--- FAIL: TestMissingFailsInCI", "CI=true: " + dir + "/ffmpeg has no libx265 encoder"},
		{"encoder", "false", "--- SKIP: TestMissingFailsInCI", dir + "/ffmpeg has no libx265 encoder"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMissingFailsInCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD="+tc.child, "CI="+tc.ci, "PATH="+dir)
		out, _ := cmd.CombinedOutput()
		for _, w := range []string{tc.want, tc.line, "(make setup installs it)"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s, CI=%q: want %q in:\n%s", tc.child, tc.ci, w, out)
			}
		}
	}
}

// FFmpegEncoder returns ffmpeg when it lists the encoder.
func TestFFmpegEncoder(t *testing.T) {
	dir, fake := fakeFFmpeg(t)
	t.Setenv("PATH", dir)
	if got := FFmpegEncoder(t, "libx264"); got != fake {
		t.Errorf("FFmpegEncoder(libx264) = %q, want %q", got, fake)
	}
}

// FreeAddr is a loopback address a server can listen on; WaitFor returns
// once its condition holds.
func TestFreeAddrAndWaitFor(t *testing.T) {
	addr := FreeAddr(t)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreeAddr's %s: %v", addr, err)
	}
	l.Close()
	n := 0
	WaitFor(t, 10*time.Second, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("polled %d times, want 3", n)
	}
}
