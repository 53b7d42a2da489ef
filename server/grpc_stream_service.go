package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// streamService implements actiond.v1.StreamService on the stream manager.
type streamService struct {
	actiondv1.UnimplementedStreamServiceServer
	srv *Server
}

func (svc *streamService) AddStream(_ context.Context, req *actiondv1.AddStreamRequest) (*actiondv1.AddStreamResponse, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, grpcError(err)
	}
	spec := StreamSpec{Name: req.GetName(), URL: req.GetUrl()}
	var errs FieldErrors
	applyOptions(&spec, req.GetOptions(), &errs)
	if len(errs) > 0 {
		// Report the rest of the request's problems with those of form.
		if fe, ok := apiFields(spec.checkStatic()).(FieldErrors); ok {
			errs = append(fe, errs...)
		}
		return nil, grpcError(errs)
	}
	s, err := c.streams.Add(spec)
	if err != nil {
		return nil, grpcError(apiFields(err))
	}
	return &actiondv1.AddStreamResponse{Stream: s}, nil
}

func (svc *streamService) GetStream(_ context.Context, req *actiondv1.GetStreamRequest) (*actiondv1.GetStreamResponse, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, grpcError(err)
	}
	s, err := c.streams.Get(req.GetName())
	if err != nil {
		return nil, grpcError(err)
	}
	return &actiondv1.GetStreamResponse{Stream: s}, nil
}

func (svc *streamService) ListStreams(_ context.Context, req *actiondv1.ListStreamsRequest) (*actiondv1.ListStreamsResponse, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, grpcError(err)
	}
	list, next, err := c.streams.List(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, grpcError(err)
	}
	return &actiondv1.ListStreamsResponse{Streams: list, NextPageToken: next}, nil
}

func (svc *streamService) UpdateStream(_ context.Context, req *actiondv1.UpdateStreamRequest) (*actiondv1.UpdateStreamResponse, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, grpcError(err)
	}
	var errs FieldErrors
	// Check the request's own form before looking the stream up.
	applyOptions(&StreamSpec{}, req.GetOptions(), &errs)
	if err := errs.err(); err != nil {
		return nil, grpcError(err)
	}
	s, err := c.streams.Update(req.GetName(), func(spec *StreamSpec) {
		if req.Url != nil {
			spec.URL = req.GetUrl()
		}
		if o := req.GetOptions(); o != nil {
			applyOptions(spec, o, &errs)
		}
	})
	if err != nil {
		return nil, grpcError(apiFields(err))
	}
	return &actiondv1.UpdateStreamResponse{Stream: s}, nil
}

func (svc *streamService) RemoveStream(_ context.Context, req *actiondv1.RemoveStreamRequest) (*actiondv1.RemoveStreamResponse, error) {
	c, err := svc.srv.ready()
	if err != nil {
		return nil, grpcError(err)
	}
	if err := c.streams.Remove(req.GetName()); err != nil {
		return nil, grpcError(err)
	}
	return &actiondv1.RemoveStreamResponse{}, nil
}

// applyOptions sets what o sets on spec, as UpdateStream reads options:
// unset stays, zero means the default. AddStream reads them the same way
// on an empty spec. Problems of form (a duration that is no duration) go
// to errs, named options.<field>.
func applyOptions(spec *StreamSpec, o *actiondv1.StreamOptions, errs *FieldErrors) {
	if o == nil {
		return
	}
	duration := func(field string, d *durationpb.Duration, dst *time.Duration) {
		if d == nil {
			return
		}
		if err := d.CheckValid(); err != nil {
			errs.add("options."+field, fmt.Sprintf("not a valid duration: %v", err))
			return
		}
		if d.AsDuration() < 0 {
			errs.add("options."+field, fmt.Sprintf("must be positive, got %v", d.AsDuration()))
			return
		}
		*dst = d.AsDuration()
	}
	duration("window", o.Window, &spec.Window)
	duration("stride", o.Stride, &spec.Stride)
	if o.TopK != nil {
		if o.GetTopK() > maxTopK {
			errs.add("options.top_k", fmt.Sprintf("must be at most %d, got %d", maxTopK, o.GetTopK()))
		} else {
			spec.TopK = int(o.GetTopK())
		}
	}
	if o.OnThreshold != nil {
		spec.OnThreshold = o.GetOnThreshold()
	}
	if o.OffThreshold != nil {
		spec.OffThreshold = o.GetOffThreshold()
	}
	if o.MinConsecutiveWindows != nil {
		if o.GetMinConsecutiveWindows() > maxConsecutive {
			errs.add("options.min_consecutive_windows", fmt.Sprintf("must be at most %d, got %d", maxConsecutive, o.GetMinConsecutiveWindows()))
		} else {
			spec.MinConsecutiveWindows = int(o.GetMinConsecutiveWindows())
		}
	}
	if o.LabelAllowlist != nil {
		spec.LabelAllowlist = append([]string(nil), o.GetLabelAllowlist().GetLabels()...)
	}
	switch o.GetTransport() {
	case actiondv1.Transport_TRANSPORT_UNSPECIFIED:
	case actiondv1.Transport_TRANSPORT_AUTO:
		spec.Transport = "auto"
	case actiondv1.Transport_TRANSPORT_UDP:
		spec.Transport = "udp"
	case actiondv1.Transport_TRANSPORT_TCP:
		spec.Transport = "tcp"
	default:
		errs.add("options.transport", fmt.Sprintf("%v is not a transport: use TRANSPORT_AUTO, TRANSPORT_UDP or TRANSPORT_TCP", o.GetTransport()))
	}
	if o.Enabled != nil {
		enabled := o.GetEnabled()
		spec.Enabled = &enabled
	}
	if o.SkipStatic != nil {
		skip := o.GetSkipStatic()
		spec.SkipStatic = &skip
	}
}

// maxTopK bounds top_k before the model's label count is known.
const maxTopK = 100000

// apiFields names the fields of a StreamSpec problem as the API request
// spells them: name and url at the top, the rest under options.
func apiFields(err error) error {
	var fe FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	out := make(FieldErrors, len(fe))
	for i, e := range fe {
		if e.Field != "name" && e.Field != "url" {
			e.Field = "options." + e.Field
		}
		out[i] = e
	}
	return out
}
