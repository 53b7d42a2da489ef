package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// writeJSON writes m as one line of protojson with the .proto field names
// (snake_case, as `actiond classify --json` prints), every field when
// all is set.
func writeJSON(w io.Writer, m proto.Message, all bool) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: all}.Marshal(m)
	if err != nil {
		return err
	}
	// protojson puts random spaces in on purpose; lines that stay the same
	// from one build to the next are easier to compare and grep.
	var line bytes.Buffer
	if err := json.Compact(&line, b); err != nil {
		return err
	}
	line.WriteByte('\n')
	_, err = w.Write(line.Bytes())
	return err
}

// writeJSONLines writes each message as writeJSON does.
func writeJSONLines[M proto.Message](w io.Writer, ms []M, all bool) error {
	for _, m := range ms {
		if err := writeJSON(w, m, all); err != nil {
			return err
		}
	}
	return nil
}

// newTable starts a table of rows rows under header (its columns
// tab-separated); with no rows it says "no what" and returns nil. The
// caller flushes it.
func newTable(w io.Writer, rows int, what, header string) *tabwriter.Writer {
	if rows == 0 {
		fmt.Fprintln(w, "no "+what)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

// enumName is an enum value without its type prefix: "PLAYING" for
// STREAM_STATE_PLAYING.
func enumName(v fmt.Stringer, prefix string) string {
	return strings.TrimPrefix(v.String(), prefix)
}

func stateName(s actiondv1.StreamState) string { return enumName(s, "STREAM_STATE_") }

func transportName(t actiondv1.Transport) string {
	return strings.ToLower(enumName(t, "TRANSPORT_"))
}

// seconds prints a media time: "12.50s".
func seconds(d *durationpb.Duration) string {
	return fmt.Sprintf("%.2fs", d.AsDuration().Seconds())
}

// ago prints how long before now t was, to the second: "12s ago".
func ago(t *timestamppb.Timestamp, now time.Time) string {
	return now.Sub(t.AsTime()).Round(time.Second).String() + " ago"
}

// localTime prints t on the local clock, to the millisecond.
func localTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05.000") }

// writeStreamTable prints streams one per line under a header.
func writeStreamTable(w io.Writer, streams []*actiondv1.Stream, now time.Time) {
	tw := newTable(w, len(streams), "streams", "NAME\tSTATE\tSINCE\tEPOCH\tWINDOWS\tWINDOW\tSTRIDE\tURL\tLAST ERROR")
	if tw == nil {
		return
	}
	for _, s := range streams {
		st, o := s.GetStatus(), s.GetOptions()
		since := "-"
		if st.GetSince() != nil {
			since = ago(st.GetSince(), now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", s.GetName(), stateName(st.GetState()), since,
			st.GetEpoch(), st.GetWindowCount(), o.GetWindow().AsDuration(), o.GetStride().AsDuration(),
			s.GetUrl(), oneLine(st.GetLastError()))
	}
	tw.Flush()
}

// oneLine keeps an error message on its line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// fields prints "key: value" lines, the values aligned.
type fields struct{ tw *tabwriter.Writer }

func newFields(w io.Writer) fields { return fields{tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)} }

func (f fields) line(key, format string, args ...any) {
	fmt.Fprintf(f.tw, "%s:\t"+format+"\n", append([]any{key}, args...)...)
}

func (f fields) flush() { f.tw.Flush() }

// writeStream prints one stream, a field per line.
func writeStream(w io.Writer, s *actiondv1.Stream, now time.Time) {
	st, o := s.GetStatus(), s.GetOptions()
	f := newFields(w)
	line := f.line
	line("name", "%s", s.GetName())
	line("url", "%s", s.GetUrl())
	state := stateName(st.GetState())
	if st.GetSince() != nil {
		state += fmt.Sprintf(" since %s (%s)", localTime(st.GetSince().AsTime()), ago(st.GetSince(), now))
	}
	line("state", "%s", state)
	if st.GetNextAttempt() != nil && st.GetState() == actiondv1.StreamState_STREAM_STATE_RETRYING {
		line("next attempt", "%s", localTime(st.GetNextAttempt().AsTime()))
	}
	if st.GetLastError() != "" {
		line("last error", "%s (%s)", oneLine(st.GetLastError()), localTime(st.GetLastErrorTime().AsTime()))
	}
	labels := "all"
	if l := o.GetLabelAllowlist().GetLabels(); len(l) > 0 {
		labels = strings.Join(l, ",")
	}
	enabled := "enabled"
	if !o.GetEnabled() {
		enabled = "disabled"
	}
	line("options", "window %s, stride %s, top-k %d, on %.2f, off %.2f, min windows %d, labels %s, transport %s, %s",
		o.GetWindow().AsDuration(), o.GetStride().AsDuration(), o.GetTopK(), o.GetOnThreshold(), o.GetOffThreshold(),
		o.GetMinConsecutiveWindows(), labels, transportName(o.GetTransport()), enabled)
	if st.GetCodec() != "" {
		line("video", "%s", video(st))
	}
	if st.GetEpoch() > 0 {
		line("epoch", "%d (%s)", st.GetEpoch(), st.GetEpochReason())
	}
	line("model", "%s", st.GetModel())
	line("windows", "%d made, %d dropped", st.GetWindowCount(), st.GetDroppedWindows())
	if st.GetLastWindowEnd() != nil {
		line("last window", "ends at %s of media time", seconds(st.GetLastWindowEnd()))
	}
	line("frames", "%d decoded, %d dropped, %d decode errors, %d RTP packets lost",
		st.GetFramesDecoded(), st.GetDroppedFrames(), st.GetDecodeErrors(), st.GetPacketsLost())
	line("reconnects", "%d", st.GetReconnectCount())
	f.flush()
}

// video describes a stream's video, as far as it is known yet:
// "H264 1280x720 over tcp, 25.0 fps".
func video(st *actiondv1.StreamStatus) string {
	s := st.GetCodec()
	if st.GetWidth() > 0 {
		s += fmt.Sprintf(" %dx%d", st.GetWidth(), st.GetHeight())
	}
	s += " over " + transportName(st.GetTransport())
	if st.GetInputFps() > 0 {
		s += fmt.Sprintf(", %.1f fps", st.GetInputFps())
	}
	return s
}

// untrainedWarning is what actiond prints with every result of a model
// with random weights.
const untrainedWarning = "UNTRAINED MODEL (random weights): these labels mean nothing"

// writeClip prints a Classify response the way `actiond classify` does:
//
//	archery.avi: 131 frames, sampled 3 11 19 … 123 (model motion)
//	  1. moving_right  1.0000  (class 1)
//	  timing: decode 41.2 ms, preprocess 9.8 ms, inference 402.3 ms, total 455.0 ms
func writeClip(w io.Writer, r *actiondv1.ClassifyResponse) {
	idx := make([]string, len(r.GetFrameIndices()))
	for i, v := range r.GetFrameIndices() {
		idx[i] = fmt.Sprint(v)
	}
	file := r.GetFile()
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		file = file[i+1:]
	}
	fmt.Fprintf(w, "%s: %d frames, sampled %s (model %s)\n", file, r.GetFramesTotal(), strings.Join(idx, " "), r.GetModel())
	if r.GetUntrained() {
		fmt.Fprintf(w, "  %s\n", untrainedWarning)
	}
	writeLabels(w, r.GetTop())
	t := r.GetTimingMs()
	fmt.Fprintf(w, "  timing: decode %.1f ms, preprocess %.1f ms, inference %.1f ms, total %.1f ms\n",
		t.GetDecode(), t.GetPreprocess(), t.GetInference(), t.GetTotal())
}

func writeLabels(w io.Writer, top []*actiondv1.LabelScore) {
	width := 0
	for _, l := range top {
		width = max(width, len(l.GetLabel()))
	}
	for i, l := range top {
		fmt.Fprintf(w, "  %d. %-*s  %.4f  (class %d)\n", i+1, width, l.GetLabel(), l.GetScore(), l.GetIndex())
	}
}

// writeModel prints what GetModel says, a field per line; of many labels
// only the first few.
func writeModel(w io.Writer, m *actiondv1.Model) {
	f := newFields(w)
	line := f.line
	line("model", "%s", m.GetName())
	if m.GetDescription() != "" {
		line("description", "%s", m.GetDescription())
	}
	if m.GetUntrained() {
		line("untrained", "%s", untrainedWarning)
	}
	const shown = 10
	labels := m.GetLabels()
	list := strings.Join(labels[:min(len(labels), shown)], ", ")
	if len(labels) > shown {
		list += fmt.Sprintf(", … (%d more; --json lists all)", len(labels)-shown)
	}
	line("labels", "%d: %s", len(labels), list)
	line("segments", "%d", m.GetSegments())
	line("input", "short side %d, centre crop %dx%d", m.GetShortSide(), m.GetInputSize(), m.GetInputSize())
	line("normalise", "mean %v, std %v", m.GetMean(), m.GetStd())
	line("output", "%s", strings.ToLower(enumName(m.GetOutput(), "OUTPUT_KIND_")))
	line("default window", "%s", m.GetDefaultWindow().AsDuration())
	line("params", "%s", thousands(m.GetParams()))
	if m.GetMacsPerClip() > 0 {
		line("MACs per clip", "%s", thousands(m.GetMacsPerClip()))
	}
	f.flush()
}

// thousands prints n with commas: 5,847,776.
func thousands(n int64) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
