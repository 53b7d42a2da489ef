package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/actiond/actiond/internal/openwatch"
)

// `actiond classify` shares the file path with the Classify RPC: an HLS
// playlist and an ffconcat list that point at a real clip elsewhere are
// refused naming their container, and the clip is never opened.
func TestClassifyRefusesPlaylists(t *testing.T) {
	model := buildMotion(t)
	outside := t.TempDir()
	b, err := os.ReadFile(filepath.Join(testdata, "arm_wrestling.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(outside, "clip.mp4")
	if err := os.WriteFile(clip, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	hls := filepath.Join(dir, "p.m3u8")
	concat := filepath.Join(dir, "list.ffconcat")
	os.WriteFile(hls, []byte("#EXTM3U\n#EXT-X-TARGETDURATION:11\n#EXTINF:10.0,\n"+clip+"\n#EXT-X-ENDLIST\n"), 0o644)
	os.WriteFile(concat, []byte("ffconcat version 1.0\nfile 'sub/clip.mp4'\n"), 0o644)

	w, err := openwatch.Start(outside)
	if err != nil {
		t.Fatal(err)
	}
	r := runActiond(t, nil, "classify", "--model", model, "--json", hls, concat)
	opened, err := w.Opened()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(opened, "clip.mp4") {
		t.Errorf("actiond classify opened the clip a playlist points at\nstdout: %s", r.stdout)
	}
	if r.code != 1 || r.stdout != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing classified", r.code, r.stdout)
	}
	for _, want := range []string{`p.m3u8": container not allowed: the file is hls (`, `list.ffconcat": container not allowed: the file is concat (`,
		"actiond reads only single-file containers: MP4/MOV, Matroska/WebM, AVI, MPEG-TS, FLV, raw H.264, raw H.265", "2 of 2 files could not be classified"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}
