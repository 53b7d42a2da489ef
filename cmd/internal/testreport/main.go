// Command testreport runs `go test -json …` (the command line it is
// given), prints what plain `go test` prints (a failing test's output,
// every package's closing ok/FAIL line, build errors), then a summary:
// every skipped test with its reason, every failed one, and last the line
// CI reads, "tests: N passed, N failed, N skipped". It exits 1 when the command fails or a test fails.
//
//	go run ./cmd/internal/testreport go test -json -race ./...
//
// `make test` runs it; tests that lack a tool fail under CI=true
// (internal/testenv), so the skips it lists in CI are those by design.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run runs the command line args, reports on its output to stdout, and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprintln(stderr, "usage: testreport go test -json [flags] [packages]")
		return 2
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stderr = os.Stdin, stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintln(stderr, "testreport:", err)
		return 2
	}
	s := report(out, stdout)
	runErr := cmd.Wait()
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		fmt.Fprintln(stderr, "testreport:", runErr)
		s.failures = append(s.failures, "("+runErr.Error()+")")
	}
	s.print(stdout)
	if runErr != nil || !s.ok() {
		return 1
	}
	return 0
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

// skip is a skipped test and why.
type skip struct{ pkg, test, reason string }

// summary is what a run of go test came to.
type summary struct {
	passed, failed, skipped int
	skips                   []skip
	failures                []string // package test, or the package
}

func (s summary) ok() bool { return s.failed == 0 && len(s.failures) == 0 }

// print writes the summary: the skipped tests with their reasons, the
// failed ones, and last the count line, so that it ends the output.
func (s summary) print(w io.Writer) {
	fmt.Fprintln(w)
	for _, k := range s.skips {
		fmt.Fprintf(w, "skipped: %s %s: %s\n", k.pkg, k.test, k.reason)
	}
	for _, f := range s.failures {
		fmt.Fprintf(w, "failed: %s\n", f)
	}
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
}

// report reads go test's JSON events from r and writes what plain go test
// would print to w: a test's output only when it fails, each package's
// closing line, build output, and any line that is not an event.
func report(r io.Reader, w io.Writer) summary {
	var s summary
	type key struct{ pkg, test string }
	running := map[key]*bytes.Buffer{} // each running test's output
	var order []key                    // the tests in running, oldest first
	done := func(k key) string {
		b := running[k]
		delete(running, k)
		order = slices.DeleteFunc(order, func(o key) bool { return o == k })
		if b == nil {
			return ""
		}
		return b.String()
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := key{ev.Package, ev.Test}
		switch {
		case ev.Action == "build-output":
			io.WriteString(w, ev.Output)
		case ev.Action == "build-fail":
			s.failures = append(s.failures, ev.ImportPath+" (build failed)")
		case ev.Test == "" && ev.Action == "output":
			if ev.Output != "PASS\n" {
				io.WriteString(w, ev.Output)
			}
		case ev.Test == "" && ev.Action == "fail":
			// Tests still running when their package failed (a panic, a
			// timeout) failed with it.
			for _, o := range slices.Clone(order) {
				if o.pkg == ev.Package {
					io.WriteString(w, testOutput(done(o)))
					s.failed++
					s.failures = append(s.failures, o.pkg+" "+o.test+" (did not finish)")
				}
			}
			if !slices.ContainsFunc(s.failures, func(f string) bool { return strings.HasPrefix(f, ev.Package+" ") }) {
				s.failures = append(s.failures, ev.Package)
			}
		case ev.Test == "":
		case ev.Action == "run":
			if running[k] == nil {
				running[k] = &bytes.Buffer{}
				order = append(order, k)
			}
		case ev.Action == "output":
			if b := running[k]; b != nil {
				b.WriteString(ev.Output)
			} else {
				io.WriteString(w, ev.Output)
			}
		case ev.Action == "pass":
			done(k)
			s.passed++
		case ev.Action == "skip":
			s.skipped++
			s.skips = append(s.skips, skip{ev.Package, ev.Test, skipReason(done(k))})
		case ev.Action == "fail":
			io.WriteString(w, testOutput(done(k)))
			s.failed++
			s.failures = append(s.failures, ev.Package+" "+ev.Test)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(w, "testreport: reading go test's output: %v\n", err)
		s.failures = append(s.failures, "(go test's output unreadable)")
	}
	for _, o := range order {
		s.failed++
		s.failures = append(s.failures, o.pkg+" "+o.test+" (no result)")
	}
	return s
}

// testOutput is a test's output as plain go test prints it: without the
// === lines of -v.
func testOutput(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(strings.TrimLeft(line, " "), "=== ") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// skipReason is what a skipped test logged (its t.Skip message and any
// log before it), on one line.
func skipReason(out string) string {
	var parts []string
	for line := range strings.Lines(out) {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		parts = append(parts, l)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}
