package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The history of the shared server's camera (a disk moving right), as
// actionctl and grpcurl show it: the moving_right action with its
// snapshot, the JPEG itself, and a watch that replays from the log.
func TestHistory(t *testing.T) {
	t.Parallel()
	srv, _ := sharedServer(t)

	var action map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for action == nil {
		out := mustCtl(t, srv, "actions", "ls", "--stream", "right", "--json")
		for line := range strings.Lines(out) {
			var a map[string]any
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("actions ls --json printed %q: %v", line, err)
			}
			if a["label"] == "moving_right" && a["has_snapshot"] == true {
				action = a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no moving_right action with a snapshot within 60s:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	id := action["action_id"].(string)

	if out := mustCtl(t, srv, "actions", "ls", "--stream", "right"); !strings.Contains(out, "ACTION ID") || !strings.Contains(out, id) {
		t.Errorf("actions ls:\n%s", out)
	}
	if out := mustCtl(t, srv, "actions", "get", id); !strings.Contains(out, "moving_right") || !strings.Contains(out, "snapshot") {
		t.Errorf("actions get:\n%s", out)
	}
	jpg := filepath.Join(t.TempDir(), "start.jpg")
	if out := mustCtl(t, srv, "actions", "snapshot", id, "-o", jpg); !strings.Contains(out, "160x120 image/jpeg") {
		t.Errorf("actions snapshot: %s", out)
	}
	checkJPEG(t, "the snapshot file", mustRead(t, jpg))
	if r := runCtl(t, srv, nil, "actions", "get", "no-such-action"); r.code != 1 || !strings.Contains(r.stderr, "NotFound") {
		t.Errorf("actions get of an unknown id: exit %d, %s", r.code, r.stderr)
	}

	// watch --resume-after 0: the log's ActionStarted of the stream first.
	w, err := start("actionctl watch --resume-after", []string{"ACTIOND_TOKEN="}, actionctl, "--server", srv.addr, "watch",
		"--resume-after", "0", "--stream", "right", "--kinds", "started", "--json")
	if err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, w)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(w.out.String(), id); time.Sleep(100 * time.Millisecond) {
		if w.exited() || time.Now().After(deadline) {
			t.Fatalf("watch --resume-after 0 did not replay %s:\n%s", id, w.out)
		}
	}
	w.stop(os.Interrupt)
	first, _, _ := strings.Cut(w.out.String(), "\n")
	var ev map[string]any
	if err := json.Unmarshal([]byte(first), &ev); err != nil || ev["position"] == nil || ev["logged"] != true || get(ev, "action_started", "action_id") == nil {
		t.Errorf("watch --resume-after 0 --json: first line %q (%v)", first, err)
	}

	// The README's grpcurl calls.
	out := grpcurlOK(t, srv, "", "-d", `{"streams": ["right"], "page_size": 1}`, "ADDR", "actiond.v1.HistoryService/ListActions")
	list := jsonObjects(t, out)
	acts, _ := get(list[0], "actions").([]any)
	if len(acts) != 1 || get(acts[0], "hasSnapshot") != true || get(list[0], "nextPageToken") == nil && len(acts) == 0 {
		t.Errorf("ListActions: %s", out)
	}
	out = grpcurlOK(t, srv, "", "-d", `{"action_id": "`+id+`"}`, "ADDR", "actiond.v1.HistoryService/GetAction")
	if a := jsonObjects(t, out); get(a[0], "action", "label") != "moving_right" {
		t.Errorf("GetAction: %s", out)
	}
	out = grpcurlOK(t, srv, "", "-d", `{"action_id": "`+id+`"}`, "ADDR", "actiond.v1.HistoryService/GetSnapshot")
	snap := jsonObjects(t, out)
	data, err := base64.StdEncoding.DecodeString(get(snap[0], "data").(string))
	if err != nil || get(snap[0], "contentType") != "image/jpeg" {
		t.Fatalf("GetSnapshot: %v\n%.300s", err, out)
	}
	checkJPEG(t, "GetSnapshot's data", data)
	// Subscribe with resume_after replays, then waits for live events:
	// grpcurl stops at -max-time.
	r := grpcurlRun(t, srv, "", "-max-time", "3", "-d", `{"streams": ["right"], "kinds": ["EVENT_KIND_ACTION_STARTED"], "resume_after": "0"}`,
		"ADDR", "actiond.v1.RecognitionService/Subscribe")
	if evs := jsonObjects(t, r.stdout); len(evs) == 0 || get(evs[0], "event", "position") == nil || get(evs[0], "event", "actionStarted", "actionId") == nil {
		t.Errorf("Subscribe with resume_after: %s%s", r.stdout, r.stderr)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkJPEG(t *testing.T, what string, b []byte) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if img.Bounds().Dx() != 160 || img.Bounds().Dy() != 120 {
		t.Errorf("%s is %v, want 160x120 (the camera's)", what, img.Bounds())
	}
}
