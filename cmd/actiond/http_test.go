package main

import (
	"context"
	"encoding/binary"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testcert"
	"github.com/actiond/actiond/internal/testenv"
)

// The API over HTTP/JSON, as the README shows it: curl (the real one)
// against `actiond serve --demo` with a token and TLS, on the HTTP
// listener's own port.
func TestServeHTTPJSONWithCurl(t *testing.T) {
	curlPath := testenv.Tool(t, "curl")
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	certs, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const token = "http-json-token-5521"
	p := startServe(t, []string{"ACTIOND_TOKENS=" + token, "ACTIOND_DATA_DIR=" + t.TempDir(),
		"ACTIOND_TLS_CERT_FILE=" + certs.Cert, "ACTIOND_TLS_KEY_FILE=" + certs.Key},
		"serve", "--demo", "--model", model, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--camera-listen", "127.0.0.1:0")
	base := waitLine(t, p, regexp.MustCompile(`Open the console in a browser: (https://\S+)`))

	curl := func(stdin string, args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args = append([]string{"-sS", "--cacert", certs.CA, "-w", "\n%{http_code}"}, args...)
		cmd := exec.CommandContext(ctx, curlPath, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		s := strings.TrimRight(string(out), "\n")
		i := strings.LastIndexByte(s, '\n')
		code := 0
		for _, c := range s[i+1:] {
			code = code*10 + int(c-'0')
		}
		return s[:max(i, 0)], code
	}
	auth := []string{"-H", "authorization: Bearer " + token}
	json := []string{"-H", "content-type: application/json"}

	// Wait until the model is loaded and the demo camera plays.
	deadline := time.Now().Add(60 * time.Second)
	for {
		body, code := curl("", append(append(auth, json...), "-d", `{"name":"demo"}`, base+"actiond.v1.StreamService/GetStream")...)
		if code == 200 && strings.Contains(body, `"STREAM_STATE_PLAYING"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not PLAYING over HTTP/JSON within 60s: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"the README's line, with the token", append(append(auth, json...), "-d", "{}", base+"actiond.v1.StreamService/ListStreams"),
			200, []string{`"name":"demo"`, `"url":"rtsp://127.0.0.1:`}},
		{"no token", append(json, "-d", "{}", base+"actiond.v1.StreamService/ListStreams"),
			401, []string{`"code":"unauthenticated"`, "missing bearer token"}},
		{"a wrong token", append(append([]string{"-H", "authorization: Bearer nope"}, json...), "-d", "{}", base+"actiond.v1.StreamService/ListStreams"),
			401, []string{`"code":"unauthenticated"`, "invalid bearer token"}},
		{"the API's validation message", append(append(auth, json...), "-d", `{"name":"lobby","url":"http://camera/lobby"}`, base+"actiond.v1.StreamService/AddStream"),
			400, []string{`"code":"invalid_argument"`, "url: must start with rtsp:// or rtsps://"}},
		{"REST-style GET", append(auth, base+"v1/streams/demo"), 200, []string{`"name":"demo"`}},
		{"REST-style GET of the model", append(auth, base+"v1/model"), 200, []string{`"moving_left"`}},
		{"REST-style history", append(auth, base+"v1/actions?streams=demo&pageSize=5"), 200, []string{`"actions"`}},
		{"health needs no token", append(json, "-d", "{}", base+"grpc.health.v1.Health/Check"), 200, []string{`"status":"SERVING"`}},
		{"metrics on the HTTP listener", []string{base + "metrics"}, 200, []string{"actiond_model_loaded 1"}},
		{"the console", []string{base}, 200, []string{"<title>actiond</title>", `src="app.js"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, code := curl("", tc.args...)
			if code != tc.code {
				t.Errorf("HTTP %d, want %d: %s", code, tc.code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.ReplaceAll(body, `", "`, `","`), w) {
					t.Errorf("the answer lacks %q:\n%.600s", w, body)
				}
			}
		})
	}

	// Server streaming: Subscribe over the Connect protocol, one
	// enveloped JSON message per event.
	t.Run("Subscribe streams events", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, curlPath, append(append([]string{"-sSN", "--cacert", certs.CA, "--data-binary", "@-",
			"-H", "content-type: application/connect+json"}, auth...), base+"actiond.v1.RecognitionService/Subscribe")...)
		req := `{"kinds":["EVENT_KIND_WINDOW_RESULT"]}`
		envelope := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(req)))
		cmd.Stdin = strings.NewReader(string(envelope) + req)
		var out testenv.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		for !strings.Contains(out.String(), `"windowResult"`) || !strings.Contains(out.String(), `"position"`) {
			if ctx.Err() != nil {
				t.Fatalf("no window result streamed within 30s:\n%.600s", out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
