package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/client"
	"github.com/actiond/actiond/internal/testenv"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// These tests run the real programs against each other on loopback: the
// actiond server (`actiond serve`) watching a camera of `actiond sim`,
// talked to by the actionctl binary, by grpcurl and by the client library.

var (
	binDir    string // actiond, actionctl, grpcurl, motion.onnx
	actiond   string
	actionctl string
	grpcurl   string
	motion    string
)

const testdata = "../../testdata"

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	var err error
	if binDir, err = os.MkdirTemp("", "actionctl-e2e-"); err != nil {
		return 0, err
	}
	actiond = filepath.Join(binDir, "actiond")
	actionctl = filepath.Join(binDir, "actionctl")
	grpcurl = filepath.Join(binDir, "grpcurl")
	motion = filepath.Join(binDir, "motion.onnx")
	steps := []*exec.Cmd{
		exec.Command("go", "build", "-o", actiond, "./cmd/actiond"),
		exec.Command("go", "build", "-o", actionctl, "./cmd/actionctl"),
		// grpcurl, pinned, from the module cache (or the proxy).
		exec.Command("go", "install", "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"),
		exec.Command(actiond, "model", "build", "motion", "--out", motion),
	}
	for _, c := range steps {
		c.Dir = "../.." // the repository root
		c.Env = append(os.Environ(), "GOBIN="+binDir)
		if out, err := c.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, out)
		}
	}
	code := m.Run()
	stopShared()
	return code, nil
}

// proc is a program the tests started; its output is kept for when a test
// fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
}

func start(name string, env []string, args ...string) (*proc, error) {
	p := &proc{name: name, cmd: exec.Command(args[0], args[1:]...), out: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// Should the test binary die (a panic, -timeout), so do its servers.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop ends p with sig, and kills it if it has not exited within 15 s.
func (p *proc) stop(sig os.Signal) {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startSim runs `actiond sim` with a camera "right" (a disk moving right,
// 160x120 at 10 fps) and waits until it serves; it returns its rtsp:// base.
func startSim() (*proc, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := l.Addr().String()
	l.Close()
	p, err := start("sim", nil, actiond, "sim", "--listen", addr, "--size", "160x120", "--fps", "10", "--scene", "right=right")
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.out.String(), "publish with") {
		if p.exited() || time.Now().After(deadline) {
			p.stop(syscall.SIGKILL)
			return nil, "", fmt.Errorf("actiond sim did not start:\n%s", p.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, "rtsp://" + addr, nil
}

// server is a running `actiond serve`.
type server struct {
	*proc
	addr   string
	config string
	env    []string
}

// writeConfig writes a configuration file for `actiond serve` into dir:
// the simulator's camera "right" as stream "right" with window (5s for
// labels that mean something: the motion model needs the disk to move 4%
// of the picture), the shared test clips allowed for Classify uris, its
// data_dir in dir, and extra YAML.
func writeConfig(dir, simURL string, window time.Duration, extra string) (string, error) {
	clips, err := filepath.Abs(testdata)
	if err != nil {
		return "", err
	}
	cfg := fmt.Sprintf("data_dir: %q\nstreams:\n  - name: right\n    url: %s/right\n    window: %s\nclassify:\n  allowed_dirs: [%q]\n%s",
		filepath.Join(dir, "data"), simURL, window, clips, extra)
	path := filepath.Join(dir, "actiond.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// startServer runs `actiond serve` on addr with the motion model and the
// configuration file config, and waits until its health is SERVING.
func startServer(addr, config string, env []string) (*server, error) {
	p, err := start("actiond serve", env, actiond, "serve", "--listen", addr, "--model", motion, "--config", config)
	if err != nil {
		return nil, err
	}
	s := &server{proc: p, addr: addr, config: config, env: env}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if p.exited() {
			return nil, fmt.Errorf("actiond serve exited:\n%s", p.out)
		}
		if serving(addr) {
			return s, nil
		}
		if time.Now().After(deadline) {
			p.stop(syscall.SIGKILL)
			return nil, fmt.Errorf("actiond serve was not SERVING within 60s:\n%s", p.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func serving(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.WithDialTimeout(time.Second))
	if err != nil {
		return false
	}
	defer c.Close()
	st, err := c.Health(ctx, "")
	return err == nil && st == healthpb.HealthCheckResponse_SERVING
}

// logOnFailure prints a program's output when the test fails.
func logOnFailure(t *testing.T, p *proc) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, p.out)
		}
	})
}

// shared is one simulator and one server for the tests that need nothing
// of their own; each test uses stream names of its own.
var shared struct {
	once   sync.Once
	err    error
	dir    string
	sim    *proc
	simURL string
	srv    *server
}

func sharedServer(t *testing.T) (*server, string) {
	t.Helper()
	shared.once.Do(func() {
		if shared.sim, shared.simURL, shared.err = startSim(); shared.err != nil {
			return
		}
		if shared.dir, shared.err = os.MkdirTemp("", "actiond-shared-"); shared.err != nil {
			return
		}
		cfg, err := writeConfig(shared.dir, shared.simURL, 5*time.Second, "")
		if err != nil {
			shared.err = err
			return
		}
		shared.srv, shared.err = startServer(testenv.FreeAddr(t), cfg, nil)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	logOnFailure(t, shared.srv.proc)
	return shared.srv, shared.simURL
}

func stopShared() {
	if shared.srv != nil {
		shared.srv.stop(syscall.SIGTERM)
	}
	if shared.sim != nil {
		shared.sim.stop(syscall.SIGTERM)
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}
