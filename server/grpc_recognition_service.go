package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/actiond/actiond/classify"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// recognitionService implements actiond.v1.RecognitionService: the hub's
// events, the Classify path of `actiond classify`, and the model.
type recognitionService struct {
	actiondv1.UnimplementedRecognitionServiceServer
	srv *Server
}

// Subscribe is the subscriber's one sender goroutine: it takes events from
// the subscriber's queue (which the hub fills without waiting) and sends
// them, so that a slow client only ever holds up itself.
func (svc *recognitionService) Subscribe(req *actiondv1.SubscribeRequest, stream grpc.ServerStreamingServer[actiondv1.SubscribeResponse]) error {
	c, err := svc.srv.ready()
	if err != nil {
		return grpcError(err)
	}
	f, err := newSubscriptionFilter(req, c.classifier.Manifest().Labels)
	if err != nil {
		return grpcError(err)
	}
	if req.ResumeAfter != nil {
		if err := c.events.checkResume(stream.Context(), req.GetResumeAfter()); err != nil {
			return grpcError(err)
		}
	}
	sub, err := c.hub.subscribe(f)
	if err != nil {
		return grpcError(err)
	}
	defer c.hub.unsubscribe(sub)
	// The headers tell the client that the subscription is in place: the
	// events from now on are its.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	var skip uint64
	if req.ResumeAfter != nil {
		if skip, err = c.events.replay(stream.Context(), req, &f, sub, stream.Send); err != nil {
			return grpcError(err)
		}
	}
	return sendEvents(stream.Context(), sub.queue, skip, stream.Send)
}

// sendEvents sends the queue's events until it is closed (the server is
// shutting down: the call ends UNAVAILABLE) or ctx ends. Logged events at
// or before position skip were replayed already and are left out.
func sendEvents(ctx context.Context, q *subscriberQueue, skip uint64, send func(*actiondv1.SubscribeResponse) error) error {
	for {
		ev, ok, err := q.next(ctx)
		if err != nil {
			return grpcError(err)
		}
		if !ok {
			return grpcError(ErrShuttingDown)
		}
		if ev.GetPosition() != 0 && ev.GetPosition() <= skip {
			continue
		}
		if err := send(&actiondv1.SubscribeResponse{Event: ev}); err != nil {
			return err
		}
	}
}

func (svc *recognitionService) Classify(ctx context.Context, req *actiondv1.ClassifyRequest) (*actiondv1.ClassifyResponse, error) {
	resp, err := svc.classify(ctx, req)
	err = grpcError(err)
	svc.srv.metrics.classifyRequests.WithLabelValues(status.Code(err).String()).Inc()
	return resp, err
}

func (svc *recognitionService) classify(ctx context.Context, req *actiondv1.ClassifyRequest) (*actiondv1.ClassifyResponse, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, err
	}
	cfg := &svc.srv.cfg.Classify
	labels := len(c.classifier.Manifest().Labels)
	topK := int(req.GetTopK())
	if topK == 0 {
		topK = DefaultTopK
	}
	if topK > labels {
		return nil, FieldError{Field: "top_k", Problem: fmt.Sprintf("must be at most %d (the model's label count), got %d", labels, topK)}
	}
	var path, file string
	switch clip := req.GetClip().(type) {
	case *actiondv1.ClassifyRequest_Content:
		if n := len(clip.Content); int64(n) > int64(cfg.MaxContentSize) {
			return nil, fmt.Errorf("%w: content is %d bytes, over this server's limit of %v (classify.max_content_size)",
				ErrContentTooLarge, n, cfg.MaxContentSize)
		}
		if len(clip.Content) == 0 {
			return nil, FieldError{Field: "content", Problem: "empty: send the clip's bytes"}
		}
	case *actiondv1.ClassifyRequest_Uri:
		if path, err = allowedPath(clip.Uri, cfg.AllowedDirs); err != nil {
			return nil, err
		}
		file = path
	default:
		return nil, FieldError{Field: "clip", Problem: "set content (the clip's bytes) or uri (file:///path on the server)"}
	}
	// Decoding takes memory and cores, an upload disk: a few at a time,
	// and nothing written before the call's turn.
	if err := c.classifyGate.enter(ctx); err != nil {
		return nil, err
	}
	defer c.classifyGate.leave()
	if content := req.GetContent(); content != nil {
		tmp, err := writeUpload(cfg.TempDir, req.GetFileName(), content)
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp)
		path, file = tmp, req.GetFileName()
		if file == "" {
			file = "upload"
		}
	}
	r, err := c.classifier.ClassifyFile(ctx, path, classify.ClassifyOptions{TopK: topK, MaxFramePixels: int(svc.srv.cfg.Ingest.MaxFramePixels)})
	if err != nil {
		if errors.Is(err, ErrUnreadableClip) {
			// The temporary file's name means nothing to the client.
			msg := strings.ReplaceAll(err.Error(), path, file)
			return nil, fmt.Errorf("%w: %s", ErrUnreadableClip, msg)
		}
		return nil, err
	}
	r.File = file
	return clipResultProto(r), nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// writeUpload writes an uploaded clip to a private temporary file, keeping
// the extension of its name (some containers are told by it).
func writeUpload(dir, name string, content []byte) (string, error) {
	ext := unsafeName.ReplaceAllString(filepath.Ext(name), "")
	if len(ext) > 16 {
		ext = ""
	}
	f, err := os.CreateTemp(dir, "actiond-upload-*"+ext)
	if err != nil {
		return "", fmt.Errorf("keep the uploaded clip: %w", err)
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("keep the uploaded clip: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("keep the uploaded clip: %w", err)
	}
	return f.Name(), nil
}

// allowedPath returns the file a Classify uri names, if it lies inside one
// of the allowed directories (symbolic links resolved).
func allowedPath(uri string, allowed []string) (string, error) {
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return "", FieldError{Field: "uri", Problem: fmt.Sprintf("does not parse: %v", err)}
	case !strings.EqualFold(u.Scheme, "file"):
		return "", FieldError{Field: "uri", Problem: fmt.Sprintf("only file:// URIs are supported, got %q (send other clips as content)", u.Scheme+":")}
	case u.Host != "" && u.Host != "localhost":
		return "", FieldError{Field: "uri", Problem: fmt.Sprintf("file URIs name files on this server: want file:///path, got host %q", u.Host)}
	case !filepath.IsAbs(u.Path):
		return "", FieldError{Field: "uri", Problem: "want an absolute path: file:///dir/clip.mp4"}
	}
	path := filepath.Clean(u.Path)
	if len(allowed) == 0 {
		return "", fmt.Errorf("%w: this server reads no files for Classify; set classify.allowed_dirs "+
			"(or ACTIOND_CLASSIFY_ALLOWED_DIRS) to the directories it may read, or send the clip as content", ErrURIForbidden)
	}
	forbidden := fmt.Errorf("%w: %s is outside the directories this server reads (classify.allowed_dirs)", ErrURIForbidden, path)
	// The allowed directories are held with their links resolved, so the
	// file is judged by where it really is: a link from outside into an
	// allowed directory is fine, one from inside to elsewhere is not.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		// A missing file is NotFound only inside an allowed directory, so
		// that the answer says nothing about files elsewhere.
		dir, derr := filepath.EvalSymlinks(filepath.Dir(path))
		if errors.Is(err, os.ErrNotExist) && derr == nil && insideAny(filepath.Join(dir, filepath.Base(path)), allowed) {
			return "", fmt.Errorf("uri: %s: %w", path, ErrClipNotFound)
		}
		return "", forbidden
	}
	if !insideAny(real, allowed) {
		return "", forbidden
	}
	if st, err := os.Stat(real); err != nil || !st.Mode().IsRegular() {
		return "", FieldError{Field: "uri", Problem: fmt.Sprintf("%s is not a regular file", path)}
	}
	return real, nil
}

func insideAny(path string, dirs []string) bool {
	for _, d := range dirs {
		if rel, err := filepath.Rel(d, path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && rel != "." {
			return true
		}
	}
	return false
}

func (svc *recognitionService) GetModel(context.Context, *actiondv1.GetModelRequest) (*actiondv1.GetModelResponse, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, grpcError(err)
	}
	return &actiondv1.GetModelResponse{Model: c.model}, nil
}

// clipResultProto is a ClipResult (what `actiond classify --json` prints)
// as the API sends it.
func clipResultProto(r *classify.ClipResult) *actiondv1.ClassifyResponse {
	resp := &actiondv1.ClassifyResponse{
		File:        r.File,
		Model:       r.Model,
		Untrained:   r.Untrained,
		FramesTotal: int32(r.FramesTotal),
		TimingMs: &actiondv1.ClassifyTiming{
			Decode: r.TimingMS.Decode, Preprocess: r.TimingMS.Preprocess,
			Inference: r.TimingMS.Inference, Total: r.TimingMS.Total,
		},
	}
	for _, i := range r.FrameIndices {
		resp.FrameIndices = append(resp.FrameIndices, int32(i))
	}
	for _, l := range r.Top {
		resp.Top = append(resp.Top, &actiondv1.LabelScore{Index: int32(l.Index), Label: l.Label, Score: l.Score})
	}
	return resp
}
