package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// The int8 section from a line the benchmark printed: the table, the goal
// and the agreement, with the command.
func TestInt8Section(t *testing.T) {
	line := "BenchmarkPPTSMv2Int8-2   	      20	1193438516 ns/op	       314.1 back-fp32-p50-ms	       128.3 back-int8-p50-ms	         2.447 back-speedup	         1.545 max-abs-logit	         0.03094 max-logit-diff	         5.000 min-top5-overlap	       464.8 whole-fp32-p50-ms	       271.9 whole-int8-p50-ms	         1.710 whole-speedup"
	if l := os.Getenv("ACTIONBENCH_INT8_LINE"); l != "" {
		line = l // to write the section from another run
	}
	r, err := parseInt8(line)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	int8Markdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, r)
	md := b.String()
	t.Log("\n" + md)
	if os.Getenv("ACTIONBENCH_INT8_LINE") == "" {
		for _, want := range []string{"## int8 PP-TSMv2", "| whole model, `[1,16,3,224,224]` | 464.8 | 271.9 | **1.71×** |",
			"| back half, `[1,16,256,28,28]` | 314.1 | 128.3 | **2.45×** |", "else no `--int8` flag: met", "logits within 0.0309",
			"at least 5 of 5", strings.Join(int8Cmd, " ")} {
			if !strings.Contains(md, want) {
				t.Errorf("section lacks %q", want)
			}
		}
	}
	if _, err := parseInt8("BenchmarkPPTSMv2Int8-2 20 1 ns/op 2.0 whole-speedup"); err == nil {
		t.Error("a line without the timings parsed")
	}
}
