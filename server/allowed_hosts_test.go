package server

import (
	"strings"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc/codes"
)

// ingest.allowed_hosts over real gRPC: a host outside the list is
// PERMISSION_DENIED on AddStream and UpdateStream, naming the key; a camera
// inside an allowed CIDR plays; a name that resolves to a refused address
// (localhost, against 192.0.2.0/24) is added but connects nowhere: the
// stream retries with a last_error naming the key. Configured streams are
// checked when the configuration is.
func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	sim, _ := startCamera(t, "", "")
	fast := IngestConfig{BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
	loop := fast
	loop.AllowedHosts = []string{"cam-1.site", "127.0.0.0/8"}
	doc := fast
	doc.AllowedHosts = []string{"192.0.2.0/24"}
	ts := startServer(t, Config{Ingest: loop})
	tsDoc := startServer(t, Config{Ingest: doc})
	ctx := ctxT(t, 60*time.Second)
	tcp := &actiondv1.StreamOptions{Transport: actiondv1.Transport_TRANSPORT_TCP}

	_, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "far", Url: "rtsp://user:pw-5521@10.1.2.3:554/x"})
	wantCode(t, "AddStream outside the list", err, codes.PermissionDenied,
		`stream "far": url: host not allowed: 10.1.2.3 is not in ingest.allowed_hosts`)
	if err != nil && strings.Contains(err.Error(), "pw-5521") {
		t.Errorf("the refusal shows the password: %v", err)
	}
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "near", Url: sim.URL("bounce"), Options: tcp}); err != nil {
		t.Fatalf("AddStream inside 127.0.0.0/8: %v", err)
	}
	_, err = ts.streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "near", Url: ptr("rtsp://other.example:554/x")})
	// A name is judged at connect when the list has addresses; an IP now.
	if err != nil {
		t.Errorf("UpdateStream to a name: %v", err)
	}
	_, err = ts.streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "near", Url: ptr("rtsp://192.0.2.9/x")})
	wantCode(t, "UpdateStream outside the list", err, codes.PermissionDenied, "host not allowed: 192.0.2.9 is not in ingest.allowed_hosts")
	if _, err := ts.streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "near", Url: ptr(sim.URL("bounce"))}); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := ts.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: "near"})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetStream().GetStatus().GetState() == actiondv1.StreamState_STREAM_STATE_PLAYING {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the camera inside 127.0.0.0/8 never played: %v", r.GetStream().GetStatus())
		case <-time.After(50 * time.Millisecond):
		}
	}

	local := strings.Replace(sim.URL("bounce"), "127.0.0.1", "localhost", 1)
	if _, err := tsDoc.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "local", Url: local, Options: tcp}); err != nil {
		t.Fatalf("AddStream of a name, with addresses listed: %v", err)
	}
	last := waitLastError(t, ctx, tsDoc, "local", "ingest.allowed_hosts")
	if !strings.Contains(last, "host not allowed: localhost resolves to ") || !strings.Contains(last, "which is not in ingest.allowed_hosts") {
		t.Errorf("last_error %q, want it to say where localhost resolved", last)
	}

	_, err = New(Config{Model: motionModel, Ingest: doc, Streams: []StreamSpec{{Name: "a", URL: "rtsp://u:pw-5521@127.0.0.1/x"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "streams[0].url: host not allowed: 127.0.0.1 is not in ingest.allowed_hosts") || strings.Contains(err.Error(), "pw-5521") {
		t.Errorf("a configured stream outside the list: %v", err)
	}
	_, err = New(Config{Model: motionModel, Ingest: IngestConfig{AllowedHosts: []string{"10.0.0.0/8", "cam one"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `ingest.allowed_hosts: [1]: "cam one" is not a host name, an IP address or a CIDR prefix`) {
		t.Errorf("a bad entry: %v", err)
	}
}
