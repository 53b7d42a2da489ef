package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real `go test -json` run over a module of passing, failing, skipped
// and unbuildable tests: the report prints what plain go test prints for
// them, ends with the counts and the skips with their reasons, and fails.
func TestReportOfARealRun(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err) // the go command runs this test
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.24\n",
		"a/a_test.go": `package a

import "testing"

func TestPass(t *testing.T) { t.Log("quiet when it passes") }

func TestFail(t *testing.T) { t.Error("the answer is 41") }

func TestSkip(t *testing.T) {
	t.Log("looked for the camera")
	t.Skip("no camera on this machine")
}

func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Fatal("sub broke") })
}
`,
		"b/b_test.go": "package b\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
		"c/c_test.go": "package c\n\nimport \"testing\"\n\nfunc TestBuild(t *testing.T) { undefined() }\n",
		"d/d_test.go": "package d\n\nimport (\n\t\"testing\"\n\t\"time\"\n)\n\nfunc TestQuick(t *testing.T) {}\n\nfunc TestHang(t *testing.T) { time.Sleep(time.Minute) }\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)

	var out, errOut strings.Builder
	code := run([]string{gobin, "test", "-json", "-count=1", "./a", "./b", "./c"}, &out, &errOut)
	got := out.String()
	t.Logf("exit %d; stdout:\n%s\nstderr:\n%s", code, got, errOut.String())
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, want := range []string{
		"--- FAIL: TestFail", "the answer is 41", "sub broke", // a failing test's output
		"FAIL\texample.com/m/a", "ok  \texample.com/m/b", // closing lines
		"undefined: undefined",                     // the build error
		"\ntests: 3 passed, 3 failed, 1 skipped\n", // the line CI reads
		"skipped: example.com/m/a TestSkip: a_test.go:10: looked for the camera / a_test.go:11: no camera on this machine\n",
		"failed: example.com/m/a TestFail\n", "failed: example.com/m/a TestSub/bad\n", "failed: example.com/m/a TestSub\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, unwanted := range []string{"quiet when it passes", "=== RUN", "\nPASS\n"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("report has %q, which plain go test does not print", unwanted)
		}
	}
	if !strings.Contains(got, "failed: example.com/m/c [example.com/m/c.test] (build failed)\n") {
		t.Errorf("report lacks the package whose build failed")
	}
	if !strings.HasSuffix(got, "\ntests: 3 passed, 3 failed, 1 skipped\n") {
		t.Errorf("the report does not end with the summary")
	}

	// A test that hangs until the timeout fails with its package.
	out.Reset()
	if code := run([]string{gobin, "test", "-json", "-count=1", "-timeout", "1s", "./d"}, &out, &errOut); code != 1 ||
		!strings.Contains(out.String(), "panic: test timed out after 1s") ||
		!strings.Contains(out.String(), "tests: 1 passed, 1 failed, 0 skipped\n") ||
		!strings.Contains(out.String(), "failed: example.com/m/d TestHang") {
		t.Errorf("timeout: exit %d, report:\n%s", code, out.String())
	}

	// All passing: status 0.
	out.Reset()
	if code := run([]string{gobin, "test", "-json", "-count=1", "./b"}, &out, &errOut); code != 0 || !strings.HasSuffix(out.String(), "tests: 1 passed, 0 failed, 0 skipped\n") {
		t.Errorf("passing package: exit %d, report:\n%s", code, out.String())
	}
}
