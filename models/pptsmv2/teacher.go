package pptsmv2

import "strconv"

// teacherKeys lists the distillation teacher's state dict, as the DML
// checkpoint stores it under "Teacher.": ResNetTweaksTSM-50 (ResNet-50-vd:
// a three-conv stem, bottlenecks of depths 3, 4, 6, 3 with a projection
// shortcut in each stage's first block) and its ppTSMHead fc 2048→400. The
// loader ignores all of it; RandomCheckpoint writes it so that tests load
// files of the real size and key set.
func teacherKeys() []key {
	var ks []key
	convBN := func(path string, cin, cout, k int) {
		ks = append(ks, key{name: path + "._conv.weight", shape: []int{cout, cin, k, k}, role: roleWeight})
		for i, s := range []string{"weight", "bias", "_mean", "_variance"} {
			ks = append(ks, key{name: path + "._batch_norm." + s, shape: []int{cout}, role: roleGamma + role(i)})
		}
	}
	const p = "Teacher.0."
	convBN(p+"conv1_1", 3, 32, 3)
	convBN(p+"conv1_2", 32, 32, 3)
	convBN(p+"conv1_3", 32, 64, 3)
	cin := 64
	for s, depth := range []int{3, 4, 6, 3} {
		mid := 64 << s
		for i := range depth {
			b := p + "bb_" + strconv.Itoa(s) + "_" + strconv.Itoa(i) + "."
			convBN(b+"conv0", cin, mid, 1)
			convBN(b+"conv1", mid, mid, 3)
			convBN(b+"conv2", mid, 4*mid, 1)
			if i == 0 {
				convBN(b+"short", cin, 4*mid, 1)
			}
			cin = 4 * mid
		}
	}
	return append(ks, convBiasKeys("Teacher.1.fc", []int{cin, NumClasses}, NumClasses, roleBias)...)
}
