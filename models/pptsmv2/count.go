package pptsmv2

// Counts are the size and cost of PP-TSMv2, derived from the architecture
// table (PPTSMV2.md §5). A MAC is one multiply-accumulate of a convolution
// or a linear layer; pooling, BatchNorm, biases and activations are not
// counted.
type Counts struct {
	// ParamsFolded counts the inference graph's weights with every
	// BatchNorm folded into its conv's bias (what Build writes).
	ParamsFolded int64
	// ParamsBN4 counts the inference form with each BatchNorm kept as four
	// tensors (Paddle's convention: gamma, beta, mean, variance).
	ParamsBN4 int64
	// ParamsTraining counts the elements of the backbone's training
	// checkpoint: rep branches and the stale dw_conv included.
	ParamsTraining int64
	// MACsPerFrame is the backbone and last_conv cost of one frame.
	MACsPerFrame int64
	// MACsPerFrameTraining is the same for the un-folded training form,
	// which runs every rep branch separately.
	MACsPerFrameTraining int64
	// MACsPerClip is Segments frames plus fc, and the LTA linear when on.
	MACsPerClip int64
	// Stages breaks the totals down: "stem", "stage1" … "stage4",
	// "last_conv", "fc", and "lta" when on.
	Stages []StageCount
}

// StageCount is one part of Counts.
type StageCount struct {
	Name                    string
	ParamsFolded, ParamsBN4 int64
	// MACsPerFrame is 0 for the parts that run once per clip (fc, lta).
	MACsPerFrame int64
	// ExtraTrainingMACs is what the un-folded rep branches add per frame.
	ExtraTrainingMACs int64
	// MACsPerClip is Segments·MACsPerFrame, or the part's cost per clip.
	MACsPerClip int64
}

// Count returns the counts for square frames of inputSize pixels, with or
// without LTA.
func Count(inputSize int, lta bool) Counts {
	var stages []StageCount
	stage := func(name string) *StageCount {
		if len(stages) == 0 || stages[len(stages)-1].Name != name {
			stages = append(stages, StageCount{Name: name})
		}
		return &stages[len(stages)-1]
	}
	// convBN adds a conv whose bias comes from a BatchNorm: one folded
	// bias, or four tensors.
	convBN := func(s *StageCount, c conv, in int) {
		w := int64(numel(c.weightShape()))
		s.ParamsFolded += w + int64(c.cout)
		s.ParamsBN4 += w + 4*int64(c.cout)
		s.MACsPerFrame += c.macs(in)
	}
	// convBias adds a conv with a plain bias (SE, folded rep dw_conv).
	convBias := func(s *StageCount, c conv, in int) {
		w := int64(numel(c.weightShape())) + int64(c.cout)
		s.ParamsFolded += w
		s.ParamsBN4 += w
		s.MACsPerFrame += c.macs(in)
	}

	size := inputSize
	convBN(stage("stem"), stem0, size)
	size = stem0.outSize(size)
	for _, b := range blocks() {
		s := stage(b.stage)
		dw := b.dw()
		if b.rep {
			convBias(s, dw, size)
			for _, br := range b.repBranches() {
				s.ExtraTrainingMACs += br.macs(size)
			}
			s.ExtraTrainingMACs -= dw.macs(size)
		} else {
			convBN(s, dw, size)
		}
		size = dw.outSize(size)
		if b.se {
			// The SE convs see the pooled 1×1 vector.
			for _, c := range b.seConvs() {
				convBias(s, c, 1)
			}
		}
		for _, c := range b.pw() {
			convBN(s, c, size)
		}
	}
	head := stage("last_conv")
	w := int64(numel(lastConv.weightShape()))
	head.ParamsFolded, head.ParamsBN4, head.MACsPerFrame = w, w, lastConv.macs(1)

	c := Counts{}
	for i := range stages {
		stages[i].MACsPerClip = Segments * stages[i].MACsPerFrame
		c.MACsPerFrame += stages[i].MACsPerFrame
		c.MACsPerFrameTraining += stages[i].MACsPerFrame + stages[i].ExtraTrainingMACs
	}
	linear := func(name string, in, out int) {
		p := int64(in*out + out)
		stages = append(stages, StageCount{Name: name, ParamsFolded: p, ParamsBN4: p, MACsPerClip: int64(in * out)})
	}
	linear("fc", lastChannels, NumClasses)
	if lta {
		linear("lta", Segments, Segments)
	}
	for _, s := range stages {
		c.ParamsFolded += s.ParamsFolded
		c.ParamsBN4 += s.ParamsBN4
		c.MACsPerClip += s.MACsPerClip
	}
	for _, k := range checkpointKeys(lta) {
		c.ParamsTraining += int64(numel(k.shape))
	}
	c.Stages = stages
	return c
}
