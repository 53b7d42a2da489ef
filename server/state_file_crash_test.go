package server

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stateWriterEnv makes the test binary a process that writes the state
// file named by it over and over (see TestMain), for the crash test.
const stateWriterEnv = "ACTIOND_TEST_STATE_WRITER"

// crashState is the k-th state the writer saves: 100 to 500 streams whose
// names and URLs say k, so that a file that mixes two states, or holds
// part of one, is told from a whole one.
func crashState(k int) []StreamSpec {
	specs := make([]StreamSpec, 100+k%5*100)
	for j := range specs {
		specs[j] = StreamSpec{
			Name:      fmt.Sprintf("s%d-%03d", k, j),
			URL:       fmt.Sprintf("rtsp://user%d:pass-%d@192.0.2.%d:554/stream%d", k, j, j%250+1, j),
			TopK:      1 + k%5,
			Transport: "tcp",
		}
	}
	return specs
}

// writeStatesForever is the writer process: it saves crashState(0), (1),
// … until it is killed (or a minute passes, should its parent be gone),
// saying "saved K" after each.
func writeStatesForever(path string) {
	f := NewStateFile(path)
	deadline := time.Now().Add(time.Minute)
	for k := 0; time.Now().Before(deadline); k++ {
		if err := f.Save(crashState(k)); err != nil {
			fmt.Fprintln(os.Stderr, "save:", err)
			os.Exit(1)
		}
		fmt.Printf("saved %d\n", k)
	}
	os.Exit(0)
}

// A process that writes the state file over and over, killed (SIGKILL) at
// random points: each time, the file parses and holds one whole state,
// the old one or the new one, never one older than a save that had
// finished, and what the cut-short write left (a
// temporary file) is removed at the next start.
func TestStateFileSurvivesKillMidWrite(t *testing.T) {
	t.Parallel()
	const kills = 30
	path := filepath.Join(t.TempDir(), "state.yaml")
	f := NewStateFile(path)
	rng := rand.New(rand.NewPCG(1, 2))
	var states []int
	midWrite := 0
	for i := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), stateWriterEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it after its save number m, at a random point of the save
		// after: one save takes about as long as the last one did.
		m := rng.IntN(4)
		saved := make(chan time.Duration, 1)
		go func() {
			sc := bufio.NewScanner(out)
			last := time.Now()
			for k := 0; sc.Scan(); k++ {
				took := time.Since(last)
				last = time.Now()
				if k == m {
					saved <- took
				}
			}
			close(saved)
		}()
		select {
		case took, ok := <-saved:
			if !ok {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("kill %d: the writer ended before save %d", i, m)
			}
			time.Sleep(time.Duration(rng.Int64N(int64(took) + 1)))
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("kill %d: the writer did not save %d within 60s", i, m)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("kill %d: the writer ended %v before it was killed", i, err)
		}

		got, err := f.Load()
		if err != nil {
			t.Fatalf("kill %d: the state file does not load: %v", i, err)
		}
		k := -1
		if len(got) > 0 {
			fmt.Sscanf(got[0].Name, "s%d-", &k)
		}
		if k < 0 || !reflect.DeepEqual(got, crashState(k)) {
			t.Fatalf("kill %d: the state file holds %d streams that are no whole state (first %+v)", i, len(got), got[0])
		}
		if k < m {
			t.Fatalf("kill %d: the state file holds state %d, but state %d was saved before the kill", i, k, m)
		}
		states = append(states, k)
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("kill %d: the state file's mode %v, want 0600", i, st.Mode().Perm())
		}
		n, err := f.RemoveTemps()
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			midWrite++
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Fatalf("kill %d: %d files beside the state file after RemoveTemps", i, len(entries)-1)
		}
	}
	t.Logf("%d kills, %d of them mid-write (a temporary file left); the file held states %v", kills, midWrite, states)
}
