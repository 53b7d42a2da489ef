package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// Rotating tokens: ReloadTokens (SIGHUP) rereads auth.tokens_file; a token
// taken out of it is refused from then on, the new one and those of
// auth.tokens are accepted; a file that cannot be read or holds no token
// leaves the tokens as they were.
func TestReloadTokens(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# rotated monthly\nold-token-1234\n")
	ts := startServer(t, Config{Auth: AuthConfig{Tokens: []string{"static-token-1234"}, TokensFile: file}})
	ctx := ctxT(t, 30*time.Second)
	call := func(token string) error {
		_, err := ts.recog.GetModel(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), &actiondv1.GetModelRequest{})
		return err
	}
	accepts := func(when string, tokens ...string) {
		t.Helper()
		for _, tok := range tokens {
			if err := call(tok); err != nil {
				t.Errorf("%s: %s refused: %v", when, tok, err)
			}
		}
	}
	refuses := func(when string, tokens ...string) {
		t.Helper()
		for _, tok := range tokens {
			err := call(tok)
			wantCode(t, when+": "+tok, err, codes.Unauthenticated, "invalid bearer token")
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("%s: the refusal repeats the token: %v", when, err)
			}
		}
	}
	accepts("at start", "old-token-1234", "static-token-1234")
	refuses("at start", "new-token-5678")

	write("new-token-5678\n")
	if err := ts.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	accepts("after the rotation", "new-token-5678", "static-token-1234")
	refuses("after the rotation", "old-token-1234")

	// A bad file changes nothing.
	write("# emptied by mistake\n")
	if err := ts.ReloadTokens(); err == nil || !strings.Contains(err.Error(), "holds no token") {
		t.Errorf("reload of an empty file: %v, want it refused", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := ts.ReloadTokens(); err == nil || !strings.Contains(err.Error(), "reread auth.tokens_file") {
		t.Errorf("reload of a missing file: %v, want it refused", err)
	}
	accepts("after failed reloads", "new-token-5678", "static-token-1234")
	refuses("after failed reloads", "old-token-1234")

	open := startServer(t, Config{})
	if err := open.ReloadTokens(); err == nil || !strings.Contains(err.Error(), "auth is off") {
		t.Errorf("reload without auth: %v", err)
	}
	if logs := ts.logs.String(); strings.Contains(logs, "-token-") || !strings.Contains(logs, "tokens reloaded") {
		t.Errorf("the log shows a token, or not the reload:\n%s", logs)
	}
}
