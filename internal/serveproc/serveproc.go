// Package serveproc runs `actiond serve` as a child process, for the
// benchmark (actionbench) and the soak (actionsoak): in its own process
// group, killed by the kernel should the caller die, its output in a log
// file, and the addresses it prints read back. Linux only; it must not
// import the server: it measures actiond from outside.
package serveproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is one running `actiond serve`.
type Proc struct {
	Cmd *exec.Cmd
	// GRPC, Metrics and Pprof are the addresses (host:port) it printed;
	// Pprof is empty without --pprof-listen.
	GRPC, Metrics, Pprof string
	// LogPath is the file with its standard output and error.
	LogPath string

	log  *os.File
	done chan struct{} // closed once it has exited
	err  error         // how it exited, once done
}

// Start runs bin with args (`serve --config …`, with the gRPC and metrics
// listeners on port 0 if the caller likes: the child picks), its output
// into a new file at logPath, and returns once it has printed where it
// serves gRPC and metrics. It fails when the child exits first, ctx ends,
// or timeout passes.
func Start(ctx context.Context, bin string, args []string, logPath string, timeout time.Duration) (*Proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	// Its own process group: a Ctrl-C in the terminal reaches only the
	// caller, which then stops the child itself (SIGTERM, then SIGKILL).
	// Pdeathsig kills it should the caller itself be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Proc{Cmd: cmd, LogPath: logPath, log: logf, done: make(chan struct{})}
	type addrs struct{ grpc, metrics, pprof string }
	ready := make(chan addrs, 1)
	go func() {
		// Its stdout says where it listens; all of it goes to the log.
		var a addrs
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if v, ok := strings.CutPrefix(line, "actiond: pprof on http://"); ok {
				a.pprof = strings.TrimSuffix(v, "/debug/pprof/")
			}
			if v, ok := strings.CutPrefix(line, "actiond: serving gRPC on "); ok {
				a.grpc = v
			}
			if v, ok := strings.CutPrefix(line, "actiond: metrics on http://"); ok {
				a.metrics = strings.TrimSuffix(v, "/metrics")
			}
			if a.grpc != "" && a.metrics != "" {
				ready <- a
				a.grpc = "" // once
			}
		}
		_, _ = io.Copy(logf, stdout)
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-ready:
		p.GRPC, p.Metrics, p.Pprof = a.grpc, a.metrics, a.pprof
		return p, nil
	case <-p.done:
		logf.Close()
		return nil, fmt.Errorf("actiond serve exited before serving (%v); see %s: %s", p.err, logPath, Tail(logPath))
	case <-ctx.Done():
		p.Stop(0)
		return nil, fmt.Errorf("actiond serve did not start: %w", context.Cause(ctx))
	case <-time.After(timeout):
		p.Stop(0)
		return nil, fmt.Errorf("actiond serve did not say where it serves within %v; see %s: %s", timeout, logPath, Tail(logPath))
	}
}

// Done is closed once the child has exited; Err then says how.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the child exited, once Done is closed: nil for exit status 0.
func (p *Proc) Err() error { return p.err }

// Exited says whether the child has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM and waits up to grace for a graceful exit, then
// kills the child's process group. It returns how the child exited: nil
// is a clean, graceful exit; an exit before Stop is an error too.
func (p *Proc) Stop(grace time.Duration) error {
	defer p.log.Close()
	if done, err := p.Exited(); done {
		return fmt.Errorf("exited early: %w", orExit0(err))
	}
	if grace > 0 {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return p.err
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("killed after %v without exiting", grace)
}

func orExit0(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// Tail is the end of a log file, for errors.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}
