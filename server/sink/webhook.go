package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/actiond/actiond/ingest/hostlist"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// webhook POSTs each event's JSON to a URL. 2xx is delivered; 408, 429
// and 5xx, and no answer, are retried; any other answer is a dead letter.
type webhook struct {
	spec   Spec
	client *http.Client
	st     *stats
}

func newWebhook(spec Spec, allowed *hostlist.List, st *stats) *webhook {
	host := ""
	if u, err := url.Parse(spec.URL); err == nil {
		host = u.Hostname()
	}
	tr := &http.Transport{
		// No proxy: the address dialled is the one allowed_hosts checks.
		Proxy:                 nil,
		DialContext:           allowed.Dialer(host).DialContext,
		TLSHandshakeTimeout:   spec.Timeout,
		ResponseHeaderTimeout: spec.Timeout,
		MaxIdleConnsPerHost:   1,
	}
	return &webhook{spec: spec, st: st, client: &http.Client{
		Transport: tr,
		Timeout:   spec.Timeout,
		// A redirect is an answer, not a place to go: allowed_hosts
		// checks one address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (w *webhook) wantsAll() bool          { return false }
func (w *webhook) wake() <-chan struct{}   { return nil }
func (w *webhook) refresh(context.Context) {}
func (w *webhook) close()                  { w.client.CloseIdleConnections() }

// Sign is the X-Actiond-Signature of body for secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// EventID is the X-Actiond-Event-Id of ev: the action id and kind for an
// action ("<action_id>/started"), else the stream and position. It is the
// same on every delivery of the event, for de-duplication.
func EventID(ev *actiondv1.Event, kind string) string {
	switch k := ev.Kind.(type) {
	case *actiondv1.Event_ActionStarted:
		return k.ActionStarted.GetActionId() + "/" + kind
	case *actiondv1.Event_ActionEnded:
		return k.ActionEnded.GetActionId() + "/" + kind
	}
	return fmt.Sprintf("%s/%s/%d", ev.GetStream(), kind, ev.GetPosition())
}

func (w *webhook) deliver(ctx context.Context, d *delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.spec.URL, bytes.NewReader(d.body))
	if err != nil {
		return &deadLetter{fmt.Errorf("webhook request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "actiond")
	req.Header.Set("X-Actiond-Event-Id", EventID(d.ev, d.kind))
	req.Header.Set("X-Actiond-Position", strconv.FormatUint(d.ev.GetPosition(), 10))
	if w.spec.Secret != "" {
		req.Header.Set("X-Actiond-Signature", Sign(w.spec.Secret, d.body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.st.up.Store(false)
		return fmt.Errorf("webhook %s: %w", w.spec.Target(), redactURLErr(err))
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	w.st.up.Store(true)
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return fmt.Errorf("webhook %s answered %d: %s", w.spec.Target(), code, printable(head))
	}
	return &deadLetter{fmt.Errorf("webhook %s answered %d: %s", w.spec.Target(), code, printable(head))}
}

// redactURLErr keeps the URL (its query may hold a token) out of an error.
func redactURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// printable is the start of an answer's body, safe for a log line.
func printable(b []byte) string {
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%d bytes, not text)", len(b))
	}
	return strconv.Quote(string(b))
}
