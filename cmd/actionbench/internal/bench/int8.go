package bench

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// int8Cmd is the Go benchmark of int8 PP-TSMv2 against float32
// (modeltool/pptsmv2_int8_test.go): the seeded model at 224×224, whole and
// back half, the four runs interleaved, one thread each.
var int8Cmd = []string{"go", "test", "./modeltool", "-run", "^$", "-bench", "^BenchmarkPPTSMv2Int8$", "-benchtime", "20x"}

// int8Result is what the benchmark reported: its metrics by unit.
type int8Result struct {
	line    string
	metrics map[string]float64
}

// benchInt8 runs the int8 benchmark and reads its metrics.
func benchInt8() (*int8Result, error) {
	progress("int8: %s", strings.Join(int8Cmd, " "))
	out, err := exec.Command(int8Cmd[0], int8Cmd[1:]...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", strings.Join(int8Cmd, " "), err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "BenchmarkPPTSMv2Int8") {
			return parseInt8(l)
		}
	}
	return nil, fmt.Errorf("%s printed no result:\n%s", strings.Join(int8Cmd, " "), out)
}

// parseInt8 reads "BenchmarkX-2 20 123 ns/op 314.1 back-fp32-p50-ms …".
func parseInt8(line string) (*int8Result, error) {
	f := strings.Fields(line)
	r := &int8Result{line: strings.Join(f, " "), metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("int8 benchmark line %q: %v", line, err)
		}
		r.metrics[f[i+1]] = v
	}
	for _, k := range []string{"whole-fp32-p50-ms", "whole-int8-p50-ms", "back-fp32-p50-ms", "back-int8-p50-ms",
		"whole-speedup", "back-speedup", "max-logit-diff", "max-abs-logit", "min-top5-overlap"} {
		if _, ok := r.metrics[k]; !ok {
			return nil, fmt.Errorf("int8 benchmark line %q lacks %s", line, k)
		}
	}
	return r, nil
}

func int8Markdown(p func(string, ...any), r *int8Result) {
	p("## int8 PP-TSMv2\n\n")
	if r == nil {
		p("Not measured in this run.\n\n")
		return
	}
	m := r.metrics
	p("`actiond model build pptsmv2 --int8` writes the model and its halves in QDQ form: int8 weights per output channel, uint8 activations calibrated (min/max) on the shipped clips and five synthetic scenes, around every conv but the SE layers' and last_conv; ONNX Runtime fuses them into integer convs. ")
	p("The seeded PP-TSMv2 (random weights, seed 1, LTA) at 224×224, float32 and int8 built from the same weights, one intra-op thread, the four runs interleaved in each of 20 iterations (p50s):\n\n")
	p("| | float32 ms | int8 ms | speedup |\n|---|---|---|---|\n")
	p("| whole model, `[1,16,3,224,224]` | %.1f | %.1f | **%.2f×** |\n", m["whole-fp32-p50-ms"], m["whole-int8-p50-ms"], m["whole-speedup"])
	p("| back half, `[1,16,256,28,28]` | %.1f | %.1f | **%.2f×** |\n\n", m["back-fp32-p50-ms"], m["back-int8-p50-ms"], m["back-speedup"])
	p("Goal: the whole model at least 1.3× faster, else no `--int8` flag: %s. ", goal(m["whole-speedup"] >= 1.3))
	p("Agreement with float32 on the three shipped clips (which are also calibration clips): logits within %.3g (the largest logit is %.3g), the top 5 sharing at least %.0f of 5 labels. ", m["max-logit-diff"], m["max-abs-logit"], m["min-top5-overlap"])
	p("That is all that is measured: the weights are random, so nothing is said about Kinetics-400 accuracy, which cannot be measured here.\n\n")
	p("```\n%s\n```\n\n```\n%s\n```\n\n", r.line, strings.Join(int8Cmd, " "))
}
