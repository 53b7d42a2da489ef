package pptsmv2

import "testing"

// The figures of PPTSMV2.md §5.1 and §5.2.
func TestCountMatchesSpec(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		lta                            bool
		folded, bn4, training, perClip int64
	}{
		{"no LTA", false, 5_847_504, 5_871_888, 6_072_592, 9_482_039_296},
		{"LTA", true, 5_847_776, 5_872_160, 6_072_864, 9_482_039_296 + 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Count(DefaultInputSize, tc.lta)
			for _, f := range []struct {
				what      string
				got, want int64
			}{
				{"params folded", c.ParamsFolded, tc.folded},
				{"params BN as 4 tensors", c.ParamsBN4, tc.bn4},
				{"params training", c.ParamsTraining, tc.training},
				{"MACs per frame", c.MACsPerFrame, 592_595_456},
				{"MACs per frame, training form", c.MACsPerFrameTraining, 598_792_192},
				{"MACs per clip", c.MACsPerClip, tc.perClip},
			} {
				if f.got != f.want {
					t.Errorf("%s = %d, want %d", f.what, f.got, f.want)
				}
			}
		})
	}
}

func TestCountStagesMatchSpec(t *testing.T) {
	want := []StageCount{
		{Name: "stem", ParamsFolded: 3_328, ParamsBN4: 3_712, MACsPerFrame: 40_140_800},
		{Name: "stage1", ParamsFolded: 26_752, ParamsBN4: 28_096, MACsPerFrame: 82_489_344},
		{Name: "stage2", ParamsFolded: 102_656, ParamsBN4: 105_344, MACsPerFrame: 79_779_840},
		{Name: "stage3", ParamsFolded: 2_276_800, ParamsBN4: 2_290_624, MACsPerFrame: 309_922_816, ExtraTrainingMACs: 5_469_184},
		{Name: "stage4", ParamsFolded: 1_614_848, ParamsBN4: 1_620_992, MACsPerFrame: 78_951_936, ExtraTrainingMACs: 727_552},
		{Name: "last_conv", ParamsFolded: 1_310_720, ParamsBN4: 1_310_720, MACsPerFrame: 1_310_720},
		{Name: "fc", ParamsFolded: 512_400, ParamsBN4: 512_400, MACsPerClip: 512_000},
		{Name: "lta", ParamsFolded: 272, ParamsBN4: 272, MACsPerClip: 256},
	}
	for i := range want {
		if want[i].MACsPerClip == 0 {
			want[i].MACsPerClip = Segments * want[i].MACsPerFrame
		}
	}
	got := Count(DefaultInputSize, true).Stages
	if len(got) != len(want) {
		t.Fatalf("got %d stages %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		t.Run(want[i].Name, func(t *testing.T) {
			if got[i] != want[i] {
				t.Errorf("got %+v\nwant %+v", got[i], want[i])
			}
		})
	}
	if n := len(Count(DefaultInputSize, false).Stages); n != len(want)-1 {
		t.Errorf("without LTA: %d stages, want %d", n, len(want)-1)
	}
	// The SE 1×1s of stage 3 (§5.2): 688,128 MACs per frame.
	var se int64
	for _, b := range blocks() {
		if b.se {
			for _, c := range b.seConvs() {
				se += c.macs(1)
			}
		}
	}
	if se != 688_128 {
		t.Errorf("SE MACs per frame = %d, want 688128", se)
	}
}

// The layer table of §1.3 gives each conv's MACs; spot-check a few rows and
// the 8-frame figure of §5.2.
func TestCountSmallSizes(t *testing.T) {
	c := Count(64, false)
	if c.MACsPerClip != Segments*c.MACsPerFrame+512_000 {
		t.Errorf("64×64: MACs per clip %d is not 16·%d + 512000", c.MACsPerClip, c.MACsPerFrame)
	}
	if c.ParamsFolded != Count(DefaultInputSize, false).ParamsFolded {
		t.Error("params depend on the input size")
	}
	if got := 8*Count(DefaultInputSize, false).MACsPerFrame + 512_000; got != 4_741_275_648 {
		t.Errorf("8-frame clip: %d MACs, want 4741275648", got)
	}
}
