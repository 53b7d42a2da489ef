package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress shows "step i/n: what" on a terminal, redrawn in place. On
// anything that is not a terminal it prints nothing, so pipes and JSON
// output stay clean.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	total int
	start time.Time
	width int
}

// NewProgress returns a progress display for total steps on w. It is active
// only when w is a character device (a terminal).
func NewProgress(w io.Writer, total int) *Progress {
	return &Progress{w: w, on: isTerminal(w), total: total, start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Step shows that step i (1-based) of total is under way.
func (p *Progress) Step(i int, what string) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	step := fmt.Sprintf("%d/%d ", i, p.total)
	if p.total <= 0 {
		step = "" // a step count that is not known yet
	}
	line := fmt.Sprintf("[%s%s] %s", step, time.Since(p.start).Round(100*time.Millisecond), what)
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}

// SetTotal changes the number of steps (0 or less: not known yet).
func (p *Progress) SetTotal(total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = total
}

// Done clears the progress line.
func (p *Progress) Done() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	p.width = 0
}
