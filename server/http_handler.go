package server

import (
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"connectrpc.com/vanguard"
	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/genproto/googleapis/api/annotations"
)

// The HTTP listener (http_listen) serves, on one port:
//
//   - /actiond.v1.<Service>/<Method> and /grpc.health.v1.Health/Check: the
//     whole gRPC API over the Connect protocol (JSON or binary, unary and
//     server streaming) and gRPC-Web, transcoded by vanguard into calls of
//     the gRPC server itself, so that tokens, interceptors, validation and
//     error messages are the same as over gRPC;
//   - /v1/...: REST-style routes for the unary calls (restRules);
//   - /snapshots/<action_id>.jpg: the picture of an action
//     (HistoryService.GetSnapshot), with the same tokens;
//   - /metrics, unless metrics_listen sets it apart;
//   - everything else: the web console (console/).

// restRules are the REST-style routes: GET to read, POST to add, PATCH to
// change, DELETE to remove; query parameters fill the request's fields.
func restRules() []*annotations.HttpRule {
	rule := func(method, pattern, body string) *annotations.HttpRule {
		r := &annotations.HttpRule{Selector: method, Body: body}
		verb, path, _ := strings.Cut(pattern, " ")
		switch verb {
		case "GET":
			r.Pattern = &annotations.HttpRule_Get{Get: path}
		case "POST":
			r.Pattern = &annotations.HttpRule_Post{Post: path}
		case "PATCH":
			r.Pattern = &annotations.HttpRule_Patch{Patch: path}
		case "DELETE":
			r.Pattern = &annotations.HttpRule_Delete{Delete: path}
		}
		return r
	}
	return []*annotations.HttpRule{
		rule("actiond.v1.StreamService.ListStreams", "GET /v1/streams", ""),
		rule("actiond.v1.StreamService.GetStream", "GET /v1/streams/{name}", ""),
		rule("actiond.v1.StreamService.AddStream", "POST /v1/streams", "*"),
		rule("actiond.v1.StreamService.UpdateStream", "PATCH /v1/streams/{name}", "*"),
		rule("actiond.v1.StreamService.RemoveStream", "DELETE /v1/streams/{name}", ""),
		rule("actiond.v1.RecognitionService.GetModel", "GET /v1/model", ""),
		rule("actiond.v1.RecognitionService.Classify", "POST /v1/classify", "*"),
		rule("actiond.v1.HistoryService.ListActions", "GET /v1/actions", ""),
		rule("actiond.v1.HistoryService.GetAction", "GET /v1/actions/{action_id}", ""),
	}
}

// httpHandler builds the HTTP listener's handler.
func (s *Server) httpHandler() (http.Handler, error) {
	services := s.grpc.GetServiceInfo()
	var rules []*annotations.HttpRule
	for _, r := range restRules() {
		if _, ok := services[r.Selector[:strings.LastIndex(r.Selector, ".")]]; ok {
			rules = append(rules, r)
		}
	}
	api, err := vanguardgrpc.NewTranscoder(s.grpc, vanguard.WithRules(rules...),
		vanguard.WithDefaultServiceOptions(
			vanguard.WithMaxMessageBufferBytes(uint32(s.cfg.Classify.MaxContentSize)+1<<20)))
	if err != nil {
		return nil, fmt.Errorf("http_listen: %w", err)
	}
	assets, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	rpc := connectUnary(api)
	for name := range services {
		mux.Handle("/"+name+"/", rpc)
	}
	mux.Handle("/v1/", api)
	mux.Handle("/snapshots/", s.SnapshotHandler())
	if s.cfg.MetricsListen == "" {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	mux.Handle("/", consoleHandler(http.FileServerFS(assets)))
	return mux, nil
}

// connectUnary lets a plain POST of JSON (or binary proto) to
// /<service>/<method> be a Connect unary call without the
// Connect-Protocol-Version header, which curl users do not send: on those
// paths nothing else is meant (vanguard would look for a REST route).
func connectUnary(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if r.Method == http.MethodPost && r.Header.Get("Connect-Protocol-Version") == "" &&
			(strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "application/proto")) {
			r.Header.Set("Connect-Protocol-Version", "1")
		}
		api.ServeHTTP(w, r)
	})
}

// consoleHandler serves the console's files; they change with the binary,
// so the browser checks before it reuses them.
func consoleHandler(files http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read with GET; the API is at /actiond.v1.<Service>/<Method>", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		files.ServeHTTP(w, r)
	})
}
