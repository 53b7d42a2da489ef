package pptsmv2

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/actiond/actiond/models/paddle"
)

// RandomWeights returns inference weights folded from RandomCheckpoint(seed,
// lta, LayoutPlain), through the same path as LoadWeights, with Layout
// LayoutRandom. The same seed gives the same weights.
func RandomWeights(seed int64, lta bool) *Weights {
	keys, tensors := RandomCheckpoint(seed, lta, LayoutPlain)
	w, err := LoadWeights(&paddle.Checkpoint{Keys: keys, Tensors: tensors})
	if err != nil {
		panic("pptsmv2: random checkpoint does not load: " + err.Error())
	}
	w.Layout = LayoutRandom
	return w
}

// RandomCheckpoint returns a training checkpoint of PP-TSMv2 with seeded
// random values, as paddle.save would hold it: the keys in state-dict order
// and the float32 tensors by key, under the prefix of layout (LayoutPlain,
// LayoutDML or LayoutStudent; any other panics). LayoutDML puts the 277
// teacher tensors first, as PaddleVideo does. Every key is there, the rep
// branches with their BatchNorm statistics and the stale dw_conv of rep
// blocks (given wild values, since a loader must not read them).
//
// The backbone's values depend only on seed, not on layout or lta (the LTA
// keys come last). They are scaled so that activations keep their size
// through the network: He-normal convs, rep branches scaled down by their
// count, BatchNorm close to the identity, SE gates mostly open.
func RandomCheckpoint(seed int64, lta bool, layout string) (keys []string, tensors map[string]paddle.Tensor) {
	prefix := ""
	for _, l := range layouts {
		if l.name == layout {
			prefix = l.prefix
		}
	}
	if prefix == "" {
		panic(fmt.Sprintf("pptsmv2: RandomCheckpoint: unknown layout %q", layout))
	}
	tensors = make(map[string]paddle.Tensor)
	if layout == LayoutDML {
		rng := rand.New(rand.NewPCG(uint64(seed), 0x7465616368)) // "teach"
		for _, k := range teacherKeys() {
			keys = append(keys, k.name)
			tensors[k.name] = paddle.Float32Tensor(k.shape, tiledValues(rng, k))
		}
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x7074736d)) // "ptsm"
	for _, k := range checkpointKeys(lta) {
		keys = append(keys, prefix+k.name)
		tensors[prefix+k.name] = paddle.Float32Tensor(k.shape, randomValues(rng, k, numel(k.shape)))
	}
	return keys, tensors
}

// tiledValues fills a tensor with a short random run of its role's values,
// repeated from a random offset. The teacher's 24 million values are never
// read, and drawing each one would make every DML test file slow to make.
func tiledValues(rng *rand.Rand, k key) []float32 {
	const run = 4093
	n := numel(k.shape)
	if n <= run {
		return randomValues(rng, k, n)
	}
	pattern := randomValues(rng, k, run)
	v := make([]float32, n)
	for i := copy(v, pattern[rng.IntN(run):]); i < n; i += copy(v[i:], pattern) {
	}
	return v
}

// randomValues draws n values distributed as the tensor k's should be,
// according to its role and shape.
func randomValues(rng *rand.Rand, k key, n int) []float32 {
	v := make([]float32, n)
	normal := func(mean, std float64) {
		for i := range v {
			v[i] = float32(mean + std*rng.NormFloat64())
		}
	}
	uniform := func(lo, hi float64) {
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
	}
	switch k.role {
	case roleWeight:
		if len(k.shape) == 2 {
			// Linear [in, out], not followed by ReLU.
			normal(0, math.Sqrt(1/float64(k.shape[0])))
			break
		}
		// He: a conv followed by ReLU keeps the second moment.
		fanIn := numel(k.shape) / k.shape[0]
		gain := 2.0
		if k.branches > 1 {
			gain /= float64(k.branches)
		}
		normal(0, math.Sqrt(gain/float64(fanIn)))
	case roleBias, roleBeta:
		normal(0, 0.05)
	case roleGateBias:
		// sigmoid(2) ≈ 0.88: six SE layers in a row would otherwise halve
		// the activations each time.
		normal(2, 0.1)
	case roleGamma:
		uniform(0.8, 1.2)
	case roleMean:
		normal(0, 0.1)
	case roleVariance:
		uniform(0.7, 1.3)
	case roleStale:
		normal(0, 1)
	}
	return v
}
