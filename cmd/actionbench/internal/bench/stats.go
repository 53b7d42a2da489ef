package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"

	"github.com/actiond/actiond/engine"
)

// stat is min/median/max over repeated runs, in milliseconds.
type stat struct {
	Min, Median, Max float64
	N                int
}

func summarise(v []float64) stat {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return stat{}
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Min: s[0], Median: med, Max: s[len(s)-1], N: len(s)}
}

func (s stat) String() string {
	return fmt.Sprintf("%.1f / **%.1f** / %.1f", s.Min, s.Median, s.Max)
}

type machine struct {
	CPU, Go, ORT, Node, Python, Kernel string
	Cores                              int
}

func describeMachine(c config) machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), ORT: engine.RuntimeVersion}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if out, err := exec.Command("node", "--version").Output(); err == nil {
		m.Node = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command(c.python, "-c",
		"import sys,cv2,av,PIL,numpy;print('Python %d.%d.%d'%sys.version_info[:3],'OpenCV',cv2.__version__,'PyAV',av.__version__,'Pillow',PIL.__version__,'NumPy',numpy.__version__)").Output(); err == nil {
		m.Python = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

// runJSON runs a command and decodes the last line of its stdout as JSON.
func runJSON(v any, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		return fmt.Errorf("%s %s: output %q: %v", name, strings.Join(args, " "), out, err)
	}
	return nil
}
