package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func (c command) classify(ctx context.Context, args []string) error {
	fs := c.flags("classify")
	topK := fs.Uint("top-k", 5, "how many labels to print, best first")
	asJSON := fs.Bool("json", false, "print one JSON object per clip and line, as `actiond classify --json` does")
	clips, cl, err := c.connect(ctx, fs, args, 1, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	var failed []error
	for _, clip := range clips {
		var r *actiondv1.ClassifyResponse
		if strings.HasPrefix(clip, "file://") {
			r, err = cl.ClassifyURI(ctx, clip, uint32(*topK))
		} else {
			r, err = cl.ClassifyFile(ctx, clip, uint32(*topK))
		}
		if err != nil {
			// Reported now; the other clips are still classified.
			fmt.Fprintf(c.env.Stderr, "actionctl: %v\n", err)
			failed = append(failed, err)
			continue
		}
		if *asJSON {
			if err := writeJSON(c.env.Stdout, r, true); err != nil {
				return err
			}
		} else {
			writeClip(c.env.Stdout, r)
		}
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return errReported{failed[0]}
	default:
		return errReported{fmt.Errorf("%d of %d clips failed: %w", len(failed), len(clips), errors.Join(failed...))}
	}
}

// errReported is an error already printed: Run only sets the exit status.
type errReported struct{ error }

func (e errReported) Unwrap() error { return e.error }

func (c command) model(ctx context.Context, args []string) error {
	fs := c.flags("model")
	asJSON := fs.Bool("json", false, "print the model as JSON")
	_, cl, err := c.connect(ctx, fs, args, 0, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := cl.GetModel(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.env.Stdout, m, false)
	}
	writeModel(c.env.Stdout, m)
	return nil
}

// errNotServing: the health check answered, but not SERVING.
var errNotServing = errors.New("not serving")

func (c command) health(ctx context.Context, args []string) error {
	fs := c.flags("health")
	pos, err := c.parse(fs, args, 0, true)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageErrorf("health takes at most one SERVICE, got %q", pos)
	}
	service := ""
	if len(pos) == 1 {
		service = pos[0]
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.Health(ctx, service)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.env.Stdout, st)
	if st != healthpb.HealthCheckResponse_SERVING {
		return errReported{errNotServing}
	}
	if service == "" {
		// The event log's state is HistoryService's; live events go on
		// without it (unlogged), so it does not change the exit status.
		log, err := cl.Health(ctx, actiondv1.HistoryService_ServiceDesc.ServiceName)
		switch {
		case err != nil:
			fmt.Fprintf(c.env.Stdout, "event log: unknown (%v)\n", err)
		case log == healthpb.HealthCheckResponse_SERVING:
			fmt.Fprintln(c.env.Stdout, "event log: SERVING")
		default:
			fmt.Fprintf(c.env.Stdout, "event log: %v: live events go on unlogged (logged: false); history and resume unavailable\n", log)
		}
	}
	return nil
}
