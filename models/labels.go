package models

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed kinetics400_labels.txt
var kinetics400Text string

var kinetics400 = sync.OnceValue(func() []string {
	labels, err := ParseLabelList(strings.NewReader(kinetics400Text))
	if err == nil && len(labels) != 400 {
		err = fmt.Errorf("%d labels, want 400", len(labels))
	}
	if err != nil {
		panic("models: embedded kinetics400_labels.txt: " + err.Error())
	}
	return labels
})

// Kinetics400 returns the 400 Kinetics-400 class names in PP-TSMv2's output
// order, as PaddleVideo writes them (underscores kept: "hurling_(sport)").
// The slice is the caller's own.
func Kinetics400() []string {
	return slices.Clone(kinetics400())
}

// ParseLabelList reads a label list: either "<index> <name>" lines with
// indices 0, 1, 2... in order (PaddleVideo's format; the name is everything
// after the first space), or one name per line. Which one is decided by the
// first line: it is indexed if it starts with "0 ". Blank lines are skipped;
// an empty list and duplicate names are errors.
func ParseLabelList(r io.Reader) ([]string, error) {
	var (
		labels  []string
		indexed bool
		seen    = map[string]int{}
	)
	sc := bufio.NewScanner(r)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if lineNo == 1 {
			line = strings.TrimSpace(strings.TrimPrefix(line, "\ufeff"))
		}
		if line == "" {
			continue
		}
		if len(labels) == 0 {
			indexed = strings.HasPrefix(line, "0 ")
		}
		name := line
		if indexed {
			idx, rest, ok := strings.Cut(line, " ")
			i, err := strconv.Atoi(idx)
			if !ok || err != nil {
				return nil, fmt.Errorf("label list line %d: want \"<index> <name>\", got %q", lineNo, line)
			}
			if i != len(labels) {
				return nil, fmt.Errorf("label list line %d: index %d, want %d", lineNo, i, len(labels))
			}
			name = strings.TrimSpace(rest)
			if name == "" {
				return nil, fmt.Errorf("label list line %d: index %d has no name", lineNo, i)
			}
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("label list line %d: %q repeats label %d", lineNo, name, prev)
		}
		seen[name] = len(labels)
		labels = append(labels, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read label list: %w", err)
	}
	if len(labels) == 0 {
		return nil, errors.New("label list is empty")
	}
	return labels, nil
}
