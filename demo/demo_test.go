package demo

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunDemoLabelsEveryScene(t *testing.T) {
	var out, errb bytes.Buffer
	if err := RunDemo(DemoOptions{Threads: 1, Out: &out, Err: &errb}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"left → moving_left: correct", "right → moving_right: correct", "up → moving_up: correct",
		"down → moving_down: correct", "still → still: correct", "all 5 synthetic scenes labelled correctly",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	if errb.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", errb.String())
	}
}
