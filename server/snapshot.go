package server

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/actiond/actiond/ingest"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// frameSnapshot is the decoded frame at the centre of a window, already at
// most events.snapshot_width wide, and where it is in media time.
type frameSnapshot struct {
	img   *ingest.Image
	media time.Duration
}

// snapshotQuality is the JPEG quality of snapshots.
const snapshotQuality = 85

// Object metadata keys of a snapshot.
const (
	snapMetaWidth  = "width"
	snapMetaHeight = "height"
	snapMetaMedia  = "media_time_ns"
)

// encodeJPEG encodes an RGB image as JPEG.
func encodeJPEG(img *ingest.Image) ([]byte, error) {
	rgba := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	for i, j := 0, 0; i+2 < len(img.Pix); i, j = i+3, j+4 {
		rgba.Pix[j], rgba.Pix[j+1], rgba.Pix[j+2], rgba.Pix[j+3] = img.Pix[i], img.Pix[i+1], img.Pix[i+2], 255
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: snapshotQuality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// storeSnapshot stores the snapshot of an action that starts now. It runs
// on the hub's goroutine, before the ActionStarted goes out, and gives up
// quickly while the log is down.
func (e *eventLog) storeSnapshot(id string, snap *frameSnapshot) {
	if !e.up.Load() {
		return
	}
	data, err := encodeJPEG(snap.img)
	if err != nil {
		e.slog.Warn("snapshot not kept: encode", "action_id", id, "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := e.snaps.bucket(ctx)
	if err == nil {
		_, err = b.Put(ctx, jetstream.ObjectMeta{
			Name:        id,
			Description: "image/jpeg",
			Metadata: map[string]string{
				snapMetaWidth:  strconv.Itoa(snap.img.W),
				snapMetaHeight: strconv.Itoa(snap.img.H),
				snapMetaMedia:  strconv.FormatInt(int64(snap.media), 10),
			},
		}, bytes.NewReader(data))
	}
	if err != nil {
		e.slog.Warn("snapshot not kept", "action_id", id, "error", err)
		return
	}
	e.metrics.log.snapshots.Inc()
	e.actions.setSnapshot(id, true)
}

// snapshotResponse is GetSnapshot's answer for a stored snapshot.
func snapshotResponse(data []byte, meta map[string]string) *actiondv1.GetSnapshotResponse {
	w, _ := strconv.Atoi(meta[snapMetaWidth])
	h, _ := strconv.Atoi(meta[snapMetaHeight])
	ns, _ := strconv.ParseInt(meta[snapMetaMedia], 10, 64)
	return &actiondv1.GetSnapshotResponse{
		ContentType: "image/jpeg",
		Data:        data,
		Width:       uint32(w),
		Height:      uint32(h),
		MediaTime:   durationpb.New(time.Duration(ns)),
	}
}

// SnapshotHandler serves GET /snapshots/<action_id>.jpg: an action's
// snapshot, as HistoryService.GetSnapshot returns it. Mount it at
// "/snapshots/" on an HTTP listener; it checks the same bearer tokens as
// the gRPC API (authorization: Bearer <token>).
func (s *Server) SnapshotHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		if s.auth != nil {
			md := metadata.MD{}
			if v := r.Header.Get("Authorization"); v != "" {
				md.Set("authorization", v)
			}
			if err := s.auth.check(metadata.NewIncomingContext(r.Context(), md), actiondv1.HistoryService_GetSnapshot_FullMethodName); err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="actiond"`)
				http.Error(w, status.Convert(err).Message(), http.StatusUnauthorized)
				return
			}
		}
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		id, ok := strings.CutSuffix(name, ".jpg")
		if !ok || id == "" {
			http.NotFound(w, r)
			return
		}
		resp, err := (&historyService{srv: s}).GetSnapshot(r.Context(), &actiondv1.GetSnapshotRequest{ActionId: id})
		if err != nil {
			code := http.StatusInternalServerError
			switch status.Code(err) {
			case codes.NotFound:
				code = http.StatusNotFound
			case codes.Unavailable:
				code = http.StatusServiceUnavailable
			case codes.InvalidArgument:
				code = http.StatusBadRequest
			}
			http.Error(w, status.Convert(err).Message(), code)
			return
		}
		w.Header().Set("Content-Type", resp.GetContentType())
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.GetData())))
		w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
		_, _ = w.Write(resp.GetData())
	})
}
