package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"
)

// PprofServer serves Go's runtime profiles (net/http/pprof: /debug/pprof/,
// profile?seconds=N for CPU, allocs, heap, goroutine, ...) on an address of
// its own, apart from gRPC and /metrics: profiles show code paths and
// stream names in memory, so they are off unless asked for (`actiond serve
// --pprof-listen`), and meant for loopback.
//
// Time spent in C (FFmpeg decoding, ONNX Runtime) is sampled too, but shows
// only as the library it ran in ([libavcodec.so…]), without C function names.
type PprofServer struct {
	srv  *http.Server
	addr string
	done chan error
}

// StartPprof listens on addr (port 0 picks one; Addr says which) and
// serves the profiles until Close.
func StartPprof(addr string, log *slog.Logger) (*PprofServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p := &PprofServer{
		// No write timeout: a CPU profile answers after its seconds.
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan error, 1),
	}
	go func() {
		err := p.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		p.done <- err
	}()
	log.Info("pprof listening", "addr", p.addr)
	return p, nil
}

// redactedCmdline is pprof.Cmdline without credentials: a --stream flag
// carries the camera's URL, password and all.
func redactedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		args[i] = redactSecrets(a)
	}
	fmt.Fprint(w, strings.Join(args, "\x00"))
}

// Addr is the address the profiles are served on.
func (p *PprofServer) Addr() string { return p.addr }

// Close stops serving, cutting any profile in progress, and waits for the
// server's goroutine.
func (p *PprofServer) Close() error {
	err := p.srv.Close()
	return errors.Join(err, <-p.done)
}
