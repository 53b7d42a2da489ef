package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testenv"
	"github.com/chromedp/chromedp"
)

// The web console in a real browser (Debian's chromium, headless) against
// a real `actiond serve --demo` with a token: one server, one browser, the
// pages a user visits in the order a user visits them. With
// ACTIOND_SCREENSHOTS=DIR the screenshots of each page are written there
// (make screenshots: docs/); otherwise to the test's temporary directory.

var buildActionctl = sync.OnceValues(func() (string, error) {
	p := filepath.Join(filepath.Dir(actiond), "actionctl")
	out, err := exec.Command("go", "build", "-o", p, "../actionctl").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build actionctl: %v\n%s", err, out)
	}
	return p, nil
})

// waitJS polls expr in the page until it is true.
func waitJS(what, expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, tg)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: not seen: %w", what, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

func TestConsoleInBrowser(t *testing.T) {
	browser := testenv.Tool(t, "chromium")
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := buildActionctl()
	if err != nil {
		t.Fatal(err)
	}
	const token = "console-test-token-1234"
	// A fixed HTTP address and data_dir, so that the server can come back
	// where the page looks for it, with its log.
	env := []string{"ACTIOND_TOKENS=" + token, "ACTIOND_DATA_DIR=" + t.TempDir()}
	args := []string{"serve", "--demo", "--model", model, "--listen", "127.0.0.1:0", "--http-listen", testenv.FreeAddr(t),
		"--camera-listen", "127.0.0.1:0"}
	p := startServe(t, env, args...)
	consoleURL := waitLine(t, p, regexp.MustCompile(`Open the console in a browser: (\S+)`))
	grpcAddr := waitLine(t, p, regexp.MustCompile(`serving gRPC on (\S+)`))

	shots := os.Getenv("ACTIOND_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// What the page logs: its console.error and console.warn calls, its
	// uncaught exceptions, and the browser's warnings and errors about it
	// (a refused script or style, say), but not the network log, which
	// notes the 401 of the wrong token and the refused connections while
	// the server is away: the page expects those.
	var mu sync.Mutex
	var pageErrors []string
	messages := chromedp.Console(bctx) // starts the browser
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Source != "network" && (m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException()) {
				mu.Lock()
				pageErrors = append(pageErrors, m.String())
				mu.Unlock()
			}
		}
	}()
	defer func() { cancelBrowser(); <-listening }()
	ctx, cancel := context.WithTimeout(bctx, 6*time.Minute)
	defer cancel()

	shotTo := func(path string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(path, png, 0o644)
		})
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return shotTo(filepath.Join(shots, "console-"+name+".png"))
	}
	failed := filepath.Join(os.TempDir(), "actiond-console-failed.png") // never among the docs
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			_ = chromedp.Do(ctx, shotTo(failed))
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v\nthe page (screenshot %s):\n%s", what, err, failed, html)
		}
	}

	// The server wants a token: the prompt; a wrong one brings it back
	// with the server's message; the right one opens the Cameras page.
	step("token prompt", chromedp.Navigate(consoleURL),
		waitJS("the token prompt", `document.getElementById('token-dialog').open`))
	step("wrong token", chromedp.SendKeys(chromedp.CSS("#token-input"), "not-the-token"), chromedp.Click(chromedp.CSS("#token-form button[type=submit]")),
		waitJS("the prompt again, with the server's message",
			`document.getElementById('token-dialog').open && document.getElementById('token-error').textContent.includes('invalid bearer token')`),
		shot("token"))
	step("right token", chromedp.SendKeys(chromedp.CSS("#token-input"), token), chromedp.Click(chromedp.CSS("#token-form button[type=submit]")),
		waitJS("the prompt closed", `!document.getElementById('token-dialog').open`),
		waitJS("demo PLAYING on the Cameras page",
			`!!document.querySelector('.camera-card[data-stream="demo"][data-state="STREAM_STATE_PLAYING"] .state-playing')`))

	// Its top label changes between moving_left and moving_right.
	seen := map[string]bool{}
	deadline := time.Now().Add(90 * time.Second)
	for !(seen["moving_left"] && seen["moving_right"]) {
		if time.Now().After(deadline) {
			t.Fatalf("the demo card's top label was only %v within 90s", seen)
		}
		top, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('.camera-card[data-stream="demo"] .bar-label')||{}).textContent||''`))
		if err != nil {
			t.Fatal(err)
		}
		if top != "" {
			seen[top] = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	step("cameras screenshot", waitJS("an open action on the card", `!!document.querySelector('.camera-card[data-stream="demo"] .open-action')`),
		waitJS("the resolution and fps on the card", `/320×240 · [0-9.]+ fps/.test(document.querySelector('.camera-card[data-stream="demo"] .meta').textContent)`),
		shot("cameras"))

	// The camera's timeline: an ended span, its snapshot loads. (For the
	// committed screenshots, a fuller timeline.)
	spans := 1
	if os.Getenv("ACTIOND_SCREENSHOTS") != "" {
		spans = 8
	}
	step("timeline", chromedp.Navigate(consoleURL+"#/camera/demo?span=2m"),
		waitJS("an ended span on the timeline", fmt.Sprintf(`document.querySelectorAll('.timeline rect.span:not(.open)').length >= %d`, spans)),
		waitJS("a click on the span", `document.querySelector('.timeline rect.span:not(.open)').dispatchEvent(new MouseEvent('click', {bubbles: true})) || true`),
		waitJS("the span's snapshot loaded", `(() => { const i = document.querySelector('#detail img#snapshot'); return !!i && i.complete && i.naturalWidth > 0; })()`),
		waitJS("window results below", `document.querySelectorAll('.windows tbody tr').length > 0`),
		shot("camera"))

	// The history, with thumbnails.
	step("actions", chromedp.Navigate(consoleURL+"#/actions?range=1h"),
		waitJS("actions listed", `document.querySelectorAll('table.actions tbody tr').length > 0`),
		waitJS("a thumbnail", `[...document.querySelectorAll('.thumb img')].some(i => i.complete && i.naturalWidth > 0)`),
		shot("actions"))

	// Streams: a bad URL shows the API's message at the URL field; a good
	// one adds the stream, which actionctl then lists.
	step("add stream form", chromedp.Navigate(consoleURL+"#/streams"),
		waitJS("the streams table", `!!document.querySelector('tr[data-stream="demo"]')`),
		chromedp.Click(chromedp.CSS("#add-stream")),
		chromedp.WaitVisible(chromedp.CSS("#sf-name")),
		chromedp.SendKeys(chromedp.CSS("#sf-name"), "lobby"),
		chromedp.SendKeys(chromedp.CSS("#sf-url"), "http://camera.invalid/lobby"),
		chromedp.Click(chromedp.CSS(".stream-form button[type=submit]")),
		waitJS("the API's message at the URL field",
			`document.getElementById('sf-url-err').textContent.includes('must start with rtsp:// or rtsps://') && document.getElementById('sf-url').getAttribute('aria-invalid') === 'true'`),
		shot("streams"))
	step("add stream", chromedp.SetValue(chromedp.CSS("#sf-url"), "rtsp://127.0.0.1:9/lobby"),
		chromedp.Click(chromedp.CSS(".stream-form button[type=submit]")),
		waitJS("lobby in the table", `!!document.querySelector('tr[data-stream="lobby"]')`))
	out, err := exec.Command(ctl, "--server", grpcAddr, "--token", token, "streams", "ls").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lobby") {
		t.Fatalf("actionctl streams ls does not list the stream added in the console: %v\n%s", err, out)
	}
	step("disable, enable", chromedp.Click(chromedp.CSS(`tr[data-stream="lobby"] .row-actions button:nth-child(2)`)),
		waitJS("lobby DISABLED", `!!document.querySelector('tr[data-stream="lobby"] .state-disabled')`),
		chromedp.Click(chromedp.CSS(`tr[data-stream="lobby"] .row-actions button:nth-child(2)`)),
		waitJS("lobby enabled again", `!document.querySelector('tr[data-stream="lobby"] .state-disabled') && document.querySelector('tr[data-stream="lobby"] .row-actions button:nth-child(2)').textContent === 'Disable'`))
	step("edit", chromedp.Click(chromedp.CSS(`tr[data-stream="lobby"] .row-actions button:nth-child(1)`)),
		chromedp.WaitVisible(chromedp.CSS("#sf-window")),
		chromedp.SetValue(chromedp.CSS("#sf-window"), "0.5"),
		chromedp.Click(chromedp.CSS(".stream-form button[type=submit]")),
		waitJS("the API's message at the window field", `document.getElementById('sf-window-err').textContent.includes('must be between 1s and 10m')`),
		chromedp.SetValue(chromedp.CSS("#sf-window"), "5"),
		chromedp.Click(chromedp.CSS(".stream-form button[type=submit]")),
		waitJS("the new window in the table", `(document.querySelector('tr[data-stream="lobby"]')||{}).textContent?.includes('5 s /')`))
	step("remove", chromedp.Click(chromedp.CSS(`button[data-remove="lobby"]`)),
		waitJS("asked again", `document.querySelector('button[data-remove="lobby"]').textContent === 'Remove lobby?'`),
		chromedp.Click(chromedp.CSS(`button[data-remove="lobby"]`)),
		waitJS("lobby gone", `!document.querySelector('tr[data-stream="lobby"]')`))
	if out, err := exec.Command(ctl, "--server", grpcAddr, "--token", token, "streams", "ls").CombinedOutput(); err != nil || strings.Contains(string(out), "lobby") {
		t.Fatalf("actionctl streams ls after the console removed lobby: %v\n%s", err, out)
	}

	step("model", chromedp.Navigate(consoleURL+"#/model"),
		waitJS("the manifest", `document.querySelectorAll('.labels li').length === 5`),
		shot("model"))

	// A phone's width.
	step("phone", chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(consoleURL+"#/cameras"),
		waitJS("the demo card", `!!document.querySelector('.camera-card[data-stream="demo"] .bar-label')`),
		waitJS("no sideways scrolling", `document.documentElement.scrollWidth <= 390`),
		shot("cameras-phone"),
		chromedp.Navigate(consoleURL+"#/camera/demo?span=2m"),
		waitJS("a span on the phone's timeline", `!!document.querySelector('.timeline rect.span')`),
		waitJS("no sideways scrolling on the camera page", `document.documentElement.scrollWidth <= 390`),
		shot("camera-phone"))

	// The server goes away: the page says so, and that it retries.
	step("back to cameras", chromedp.EmulateViewport(1280, 800), waitJS("the Cameras page", `(location.hash = '#/cameras') && !!document.querySelector('.camera-card')`))
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	step("unreachable", waitJS("the unreachable banner",
		`!document.getElementById('banner').hidden && document.getElementById('banner').textContent.includes('Server unreachable')`))

	// It comes back: the page resumes its Subscribe after the last
	// position it saw, and every position since arrives (no gap).
	before, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.position`))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("actiond did not stop within 30s of SIGTERM")
	}
	startServe(t, env, args...)
	step("back", waitJS("the banner gone", `document.getElementById('banner').hidden`),
		waitJS("demo PLAYING again", `!!document.querySelector('.camera-card[data-stream="demo"][data-state="STREAM_STATE_PLAYING"]')`),
		waitJS("resumed after position "+before, fmt.Sprintf(
			`Number(document.body.dataset.resumes) >= 1 && Number(document.body.dataset.position) > %s + 10`, before)))
	gaps, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.gaps`))
	if err != nil || gaps != "0" {
		t.Errorf("positions the page missed: %s (%v)", gaps, err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(pageErrors) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(pageErrors, "\n"))
	}
}

// waitLine waits for a line of p's output that re matches and returns its
// first group.
func waitLine(t *testing.T, p *serveProc, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.stdout.String()); m != nil {
			return m[1]
		}
		select {
		case <-p.done:
			t.Fatalf("actiond exited: %v", p.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no line matching %s within 60s", re)
	return ""
}
