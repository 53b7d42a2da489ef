package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/actiond/actiond/models/onnx"
)

// matmulN is the side of the MatMul that stands for ONNX Runtime's
// arithmetic ceiling on this machine: N×N·N×N float32.
const matmulN = 1024

type modelRun struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	Min float64 `json:"min_ms"`
	// GFLOPS and MACs come from actiond only.
	GFLOPS float64 `json:"gflops"`
	MACs   int64   `json:"macs_per_clip"`
}

// pair is one workload on actiond and on raw ONNX Runtime: each a stat of
// per-repeat p50 latencies in ms.
type pair struct {
	Threads     int
	Ours, Peer  stat
	MACs        int64 // per run; 0 if unknown
	OursCommand string
	PeerCommand string
}

func (p pair) ratio() float64 { return p.Ours.Median / p.Peer.Median }

// gflops at the median latency.
func (p pair) gflops(s stat) float64 { return 2 * float64(p.MACs) / (s.Median / 1e3) / 1e9 }

type profileRow struct {
	Kind   string
	Ms     float64 // per run
	Share  float64
	MACs   int64 // per run
	GFLOPS float64
}

type engineResult struct {
	Model    string
	Pipeline []pair // PP-TSMv2 at 1 and 2 threads
	MatMul   []pair
	Profile  []profileRow
	ProfMs   float64
}

func benchEngine(c config) (*engineResult, error) {
	res := &engineResult{Model: filepath.Join(c.work, "pptsmv2-seed1.onnx")}
	progress("building the untrained PP-TSMv2 (%s)", res.Model)
	if err := runQuiet(c.actiond, "model", "build", "pptsmv2", "--random-seed", "1", "--out", res.Model); err != nil {
		return nil, err
	}
	mm := filepath.Join(c.work, fmt.Sprintf("matmul%d.onnx", matmulN))
	if err := writeMatMul(mm); err != nil {
		return nil, err
	}
	for _, t := range []int{1, 2} {
		p, err := benchPair(c, res.Model, t, 0)
		if err != nil {
			return nil, err
		}
		res.Pipeline = append(res.Pipeline, p)
		q, err := benchPair(c, mm, t, int64(matmulN)*matmulN*matmulN)
		if err != nil {
			return nil, err
		}
		res.MatMul = append(res.MatMul, q)
	}
	progress("profiling PP-TSMv2 per node (onnxruntime-node, 1 thread)")
	rows, ms, err := profileModel(c, res.Model)
	if err != nil {
		progress("profile failed (left out of the report): %v", err)
	} else {
		res.Profile, res.ProfMs = rows, ms
	}
	return res, nil
}

func benchPair(c config, model string, threads int, macs int64) (pair, error) {
	it := strconv.Itoa(c.iterations)
	th := strconv.Itoa(threads)
	oursArgs := []string{"model", "bench", "--model", model, "--threads", th, "--batch", "1", "--iterations", it, "--json"}
	peerArgs := []string{filepath.Join(c.work, "ort_bench.js"), model, th, "1", it}
	p := pair{
		Threads: threads, MACs: macs,
		OursCommand: c.actiond + " " + join(oursArgs),
		PeerCommand: "NODE_PATH=" + c.nodeModules + " node " + join(peerArgs),
	}
	var ours, peer []float64
	for i := range c.repeats {
		progress("%s, %d thread(s): repeat %d/%d", filepath.Base(model), threads, i+1, c.repeats)
		// Alternate the two so that drift on a noisy machine hits both.
		var a modelRun
		if err := runJSON(&a, nil, c.actiond, oursArgs...); err != nil {
			return p, err
		}
		var b modelRun
		if err := runJSON(&b, []string{"NODE_PATH=" + c.nodeModules}, "node", peerArgs...); err != nil {
			return p, err
		}
		ours = append(ours, a.P50)
		peer = append(peer, b.P50)
		if p.MACs == 0 {
			p.MACs = a.MACs
		}
	}
	p.Ours, p.Peer = summarise(ours), summarise(peer)
	progress("%s, %d thread(s): actiond %.1f ms, onnxruntime-node %.1f ms (median p50), ratio %.3f",
		filepath.Base(model), threads, p.Ours.Median, p.Peer.Median, p.ratio())
	return p, nil
}

func join(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}

func runQuiet(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, join(args), err, out)
	}
	return nil
}

// writeMatMul writes Y = A·B with A the N×N input and B a seeded N×N
// initializer.
func writeMatMul(path string) error {
	rng := rand.New(rand.NewPCG(3, 4))
	w := make([]float32, matmulN*matmulN)
	for i := range w {
		w[i] = rng.Float32()*2 - 1
	}
	sq := []onnx.Dim{{Value: matmulN}, {Value: matmulN}}
	m := &onnx.Model{
		OpsetImports: []onnx.OpsetID{{Version: 17}},
		ProducerName: "actionbench",
		Graph: onnx.Graph{
			Name:         "matmul",
			Nodes:        []onnx.Node{{Name: "matmul", OpType: "MatMul", Inputs: []string{"A", "B"}, Outputs: []string{"Y"}}},
			Initializers: []onnx.Tensor{onnx.FloatTensor("B", []int64{matmulN, matmulN}, w)},
			Inputs:       []onnx.ValueInfo{{Name: "A", ElemType: onnx.Float, Shape: sq}},
			Outputs:      []onnx.ValueInfo{{Name: "Y", ElemType: onnx.Float, Shape: sq}},
		},
	}
	return m.WriteFile(path)
}

type profileEvent struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Dur  float64
	Args struct {
		Op  string                 `json:"op_name"`
		In  []map[string][]float64 `json:"input_type_shape"`
		Out []map[string][]float64 `json:"output_type_shape"`
	} `json:"args"`
}

// profileModel runs the model under ORT's profiler in onnxruntime-node and
// sums kernel time by kind of node: depthwise, pointwise (1×1) and dense
// k×k convolutions apart, with their MACs taken from the profiled shapes.
func profileModel(c config, model string) ([]profileRow, float64, error) {
	const runs = 5
	prefix := filepath.Join(c.work, "ort_profile")
	old, _ := filepath.Glob(prefix + "_*.json")
	for _, f := range old {
		os.Remove(f)
	}
	var r modelRun
	if err := runJSON(&r, []string{"NODE_PATH=" + c.nodeModules}, "node",
		filepath.Join(c.work, "ort_bench.js"), model, "1", "1", strconv.Itoa(runs-1), prefix); err != nil {
		return nil, 0, err
	}
	files, _ := filepath.Glob(prefix + "_*.json")
	if len(files) == 0 {
		return nil, 0, fmt.Errorf("no profile written under %s_*.json", prefix)
	}
	b, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		return nil, 0, err
	}
	var events []profileEvent
	if err := json.Unmarshal(b, &events); err != nil {
		return nil, 0, fmt.Errorf("profile %s: %v", files[len(files)-1], err)
	}
	durs := map[string]float64{}
	macs := map[string]int64{}
	var total float64
	for _, e := range events {
		if e.Cat != "Node" || len(e.Name) < 12 || e.Name[len(e.Name)-12:] != "_kernel_time" {
			continue
		}
		kind, m := classify(e)
		durs[kind] += e.Dur
		macs[kind] += m
		total += e.Dur
	}
	var rows []profileRow
	for k, d := range durs {
		row := profileRow{Kind: k, Ms: d / 1e3 / runs, Share: d / total, MACs: macs[k] / runs}
		if row.MACs > 0 {
			row.GFLOPS = 2 * float64(row.MACs) / (row.Ms / 1e3) / 1e9
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b profileRow) int {
		switch {
		case a.Ms > b.Ms:
			return -1
		case a.Ms < b.Ms:
			return 1
		}
		return 0
	})
	return rows, total / 1e3 / runs, nil
}

func shapeOf(m map[string][]float64) []float64 {
	for _, v := range m {
		return v
	}
	return nil
}

func classify(e profileEvent) (string, int64) {
	op := e.Args.Op
	if op != "Conv" && op != "FusedConv" && op != "NchwcConv" || len(e.Args.In) < 2 || len(e.Args.Out) < 1 {
		return op, 0
	}
	in, w, out := shapeOf(e.Args.In[0]), shapeOf(e.Args.In[1]), shapeOf(e.Args.Out[0])
	if len(w) != 4 || len(in) != 4 || len(out) < 2 {
		return "Conv (other)", 0
	}
	n := int64(1)
	for _, d := range out {
		n *= int64(d)
	}
	m := n * int64(w[1]*w[2]*w[3])
	switch {
	case w[1] == 1 && in[1] > 1:
		return "Conv depthwise", m
	case w[2]*w[3] == 1:
		return "Conv 1×1 (pointwise)", m
	default:
		return "Conv dense k×k", m
	}
}
