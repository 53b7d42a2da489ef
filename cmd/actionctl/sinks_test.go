package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// `actionctl sinks ls` shows the configured sinks and their figures, and
// no credential: not the broker's password, not the webhook's secret nor
// the token in its query.
func TestSinksLs(t *testing.T) {
	t.Parallel()
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hook.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "actiond.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `
sinks:
  - {name: plc, type: mqtt, url: "mqtt://%s", username: bridge, password: hunter2}
  - {name: tickets, type: webhook, url: "%s/hook?token=hunter2", secret: hunter2}
`, testenv.FreeAddr(t), hook.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(testenv.FreeAddr(t), config, []string{"ACTIOND_DATA_DIR=" + filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop(syscall.SIGTERM)

	table := mustCtl(t, srv, "sinks", "ls")
	if !regexp.MustCompile(`(?m)^NAME\s+TYPE\s+UP\s+DELIVERED\s+PENDING\s+RETRIES\s+DEAD\s+POSITION\s+TARGET\s+LAST ERROR$`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^plc\s+mqtt\s+no\s+0\s+`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^tickets\s+webhook\s+`+`(yes|no)\s+0\s+0\s+0\s+0\s+\d+\s+`+regexp.QuoteMeta(hook.URL+"/hook")+`\s`).MatchString(table) {
		t.Errorf("sinks ls:\n%s", table)
	}
	lines := mustCtl(t, srv, "sinks", "ls", "--json")
	sinks := unmarshalLines(t, lines, func() *actiondv1.Sink { return &actiondv1.Sink{} })
	if len(sinks) != 2 || sinks[0].GetName() != "plc" || sinks[1].GetName() != "tickets" || sinks[1].GetTarget() != hook.URL+"/hook" {
		t.Errorf("sinks ls --json: %s", lines)
	}
	// grpcurl, as the README shows it.
	r := run(t, nil, "", grpcurl, "-plaintext", srv.addr, "actiond.v1.SinkService/ListSinks")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "plc"`) || !strings.Contains(r.stdout, `"name": "tickets"`) {
		t.Errorf("grpcurl ListSinks: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for what, text := range map[string]string{"sinks ls": table, "sinks ls --json": lines, "grpcurl": r.stdout, "the server's log": srv.out.String()} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("%s shows a credential:\n%s", what, text)
		}
	}
}
