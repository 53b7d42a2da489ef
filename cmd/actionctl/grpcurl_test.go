package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// grpcurlRun runs `grpcurl -plaintext ARGS` with the argument "ADDR" replaced
// by srv's address, and stdin (for -d @).
func grpcurlRun(t *testing.T, srv *server, stdin string, args ...string) result {
	t.Helper()
	argv := []string{grpcurl, "-plaintext"}
	for _, a := range args {
		if a == "ADDR" {
			a = srv.addr
		}
		argv = append(argv, a)
	}
	return run(t, nil, stdin, argv...)
}

// grpcurlOK runs grpcurl and wants it to succeed.
func grpcurlOK(t *testing.T, srv *server, stdin string, args ...string) string {
	t.Helper()
	r := grpcurlRun(t, srv, stdin, args...)
	if r.code != 0 {
		t.Fatalf("grpcurl %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// grpcurlFails wants the call to fail with code, as grpcurl prints it.
func grpcurlFails(t *testing.T, srv *server, code string, args ...string) string {
	t.Helper()
	r := grpcurlRun(t, srv, "", args...)
	if r.code == 0 || !strings.Contains(r.stderr, "Code: "+code+"\n") {
		t.Errorf("grpcurl %s: exit %d, stderr %q; want Code: %s", strings.Join(args, " "), r.code, r.stderr, code)
	}
	return r.stderr
}

// jsonObjects decodes the JSON objects grpcurl prints one after another.
func jsonObjects(t *testing.T, s string) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var out []map[string]any
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("grpcurl printed something that is not JSON objects: %v\n%s", err, s)
		}
		out = append(out, m)
	}
}

// get walks a decoded JSON object by keys.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// archeryIndices are the frames the reference samples from archery.avi
// (131 frames: avg 8, frames 3, 11, ..., 123).
var archeryIndices = func() []int {
	var idx []int
	for i := range 16 {
		idx = append(idx, 3+8*i)
	}
	return idx
}()

func TestGrpcurl(t *testing.T) {
	t.Parallel()
	srv, simURL := sharedServer(t)
	waitWindows(t, srv.addr, "right")

	t.Run("list", func(t *testing.T) {
		out := grpcurlOK(t, srv, "", "ADDR", "list")
		services := strings.Fields(out)
		for _, want := range []string{"actiond.v1.StreamService", "actiond.v1.RecognitionService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
			if !slices.Contains(services, want) {
				t.Errorf("list lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("describe shows the comments", func(t *testing.T) {
		out := grpcurlOK(t, srv, "", "ADDR", "describe", "actiond.v1.StreamService")
		for _, want := range []string{
			"// StreamService manages the camera feeds the server watches.",
			"// AddStream starts watching a camera.",
			"rpc AddStream ( .actiond.v1.AddStreamRequest ) returns ( .actiond.v1.AddStreamResponse );",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("describe lacks %q:\n%s", want, out)
			}
		}
		if out := grpcurlOK(t, srv, "", "ADDR", "describe", "actiond.v1.StreamOptions"); !strings.Contains(out, "// How many labels each WindowResult carries") {
			t.Errorf("describe of a message lacks its field comments:\n%s", out)
		}
	})

	t.Run("streams", func(t *testing.T) {
		add := `{"name":"cam1","url":"` + simURL + `/right"}`
		out := grpcurlOK(t, srv, "", "-d", add, "ADDR", "actiond.v1.StreamService/AddStream")
		got := jsonObjects(t, out)
		if len(got) != 1 || get(got[0], "stream", "name") != "cam1" || get(got[0], "stream", "status", "state") != "STREAM_STATE_CONNECTING" {
			t.Errorf("AddStream printed %s", out)
		}
		// camelCase names, every default filled in.
		if get(got[0], "stream", "options", "topK") != 5.0 || get(got[0], "stream", "options", "window") != "10s" {
			t.Errorf("AddStream options: %v", get(got[0], "stream", "options"))
		}

		grpcurlFails(t, srv, "AlreadyExists", "-d", add, "ADDR", "actiond.v1.StreamService/AddStream")
		grpcurlFails(t, srv, "NotFound", "-d", `{"name":"nope"}`, "ADDR", "actiond.v1.StreamService/GetStream")
		if msg := grpcurlFails(t, srv, "InvalidArgument", "-d", `{"name":"bad","url":"http://127.0.0.1/x"}`, "ADDR", "actiond.v1.StreamService/AddStream"); !strings.Contains(msg, "url") {
			t.Errorf("the InvalidArgument message does not name the field: %q", msg)
		}

		list := jsonObjects(t, grpcurlOK(t, srv, "", "ADDR", "actiond.v1.StreamService/ListStreams"))
		var names []string
		for _, s := range get(list[0], "streams").([]any) {
			names = append(names, get(s, "name").(string))
		}
		if !slices.Contains(names, "cam1") || !slices.Contains(names, "right") || !slices.IsSorted(names) {
			t.Errorf("ListStreams names %v: want cam1 and right, sorted", names)
		}
		grpcurlOK(t, srv, "", "-d", `{"name":"cam1"}`, "ADDR", "actiond.v1.StreamService/RemoveStream")
		grpcurlFails(t, srv, "NotFound", "-d", `{"name":"cam1"}`, "ADDR", "actiond.v1.StreamService/GetStream")
	})

	t.Run("GetModel", func(t *testing.T) {
		m := jsonObjects(t, grpcurlOK(t, srv, "", "ADDR", "actiond.v1.RecognitionService/GetModel"))
		labels, _ := get(m[0], "model", "labels").([]any)
		if get(m[0], "model", "name") != "motion" || len(labels) != 5 || labels[1] != "moving_right" {
			t.Errorf("GetModel: %v", m)
		}
	})

	t.Run("Subscribe", func(t *testing.T) {
		r := grpcurlRun(t, srv, "", "-max-time", "4", "-d", `{"streams":["right"],"kinds":["EVENT_KIND_WINDOW_RESULT"]}`,
			"ADDR", "actiond.v1.RecognitionService/Subscribe")
		events := jsonObjects(t, r.stdout)
		if len(events) < 2 {
			t.Fatalf("Subscribe for 4s: %d events (exit %d, %s)", len(events), r.code, r.stderr)
		}
		labels := []any{"moving_left", "moving_right", "moving_up", "moving_down", "still"}
		for _, e := range events {
			ev := get(e, "event")
			// All five labels, best first: moving_right, but not when the
			// window spans the scene's loop point (every 30 s), where the
			// disk jumps back left.
			top, _ := get(ev, "windowResult", "top").([]any)
			if get(ev, "stream") != "right" || len(top) != 5 || !slices.Contains(labels, get(top[0], "label")) {
				t.Errorf("event %v: want a WindowResult of stream right with 5 labels", e)
			}
			if _, ok := get(ev, "sequence").(string); !ok { // uint64 is a JSON string
				t.Errorf("sequence %#v is not a string", get(ev, "sequence"))
			}
		}
		if !strings.Contains(r.stderr, "DeadlineExceeded") {
			t.Errorf("grpcurl -max-time should end the call with DeadlineExceeded: exit %d, %q", r.code, r.stderr)
		}
	})

	t.Run("Classify", func(t *testing.T) {
		clip, err := filepath.Abs(filepath.Join(testdata, "archery.avi"))
		if err != nil {
			t.Fatal(err)
		}
		content, err := os.ReadFile(clip)
		if err != nil {
			t.Fatal(err)
		}
		resolved, err := filepath.EvalSymlinks(clip) // a server may report the real path
		if err != nil {
			t.Fatal(err)
		}
		check := func(out string, files ...string) {
			t.Helper()
			r := jsonObjects(t, out)[0]
			var idx []int
			for _, v := range get(r, "frameIndices").([]any) {
				idx = append(idx, int(v.(float64)))
			}
			file, _ := get(r, "file").(string)
			if !slices.Contains(files, file) || get(r, "framesTotal") != 131.0 || !slices.Equal(idx, archeryIndices) || get(r, "model") != "motion" {
				t.Errorf("Classify printed %s", out)
			}
			if top, _ := get(r, "top").([]any); len(top) != 2 {
				t.Errorf("top_k 2: top %v", top)
			}
		}
		upload := `{"content":"` + base64.StdEncoding.EncodeToString(content) + `","file_name":"archery.avi","top_k":2}`
		check(grpcurlOK(t, srv, upload, "-d", "@", "ADDR", "actiond.v1.RecognitionService/Classify"), "archery.avi")
		check(grpcurlOK(t, srv, "", "-d", `{"uri":"file://`+clip+`","top_k":2}`, "ADDR", "actiond.v1.RecognitionService/Classify"), clip, resolved)
		grpcurlFails(t, srv, "PermissionDenied", "-d", `{"uri":"file:///etc/passwd"}`, "ADDR", "actiond.v1.RecognitionService/Classify")
		grpcurlFails(t, srv, "InvalidArgument", "-d", `{"content":"bm90IGEgdmlkZW8=","file_name":"junk.mp4"}`, "ADDR", "actiond.v1.RecognitionService/Classify")
	})

	t.Run("health", func(t *testing.T) {
		h := jsonObjects(t, grpcurlOK(t, srv, "", "ADDR", "grpc.health.v1.Health/Check"))
		if get(h[0], "status") != "SERVING" {
			t.Errorf("health: %v", h)
		}
	})
}
