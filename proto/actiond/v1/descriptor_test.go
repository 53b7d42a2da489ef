package actiondv1

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The embedded descriptors must be the generated ones plus comments: a
// mismatch means actiond.binpb is stale (run make proto).
func TestDocumentedFilesMatchGenerated(t *testing.T) {
	files, err := documented()
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range []protoreflect.FileDescriptor{
		File_actiond_v1_event_proto,
		File_actiond_v1_fleet_service_proto,
		File_actiond_v1_model_proto,
		File_actiond_v1_recognition_service_proto,
		File_actiond_v1_stream_proto,
		File_actiond_v1_stream_service_proto,
	} {
		t.Run(gen.Path(), func(t *testing.T) {
			doc, err := files.FindFileByPath(gen.Path())
			if err != nil {
				t.Fatalf("not embedded: %v (run make proto)", err)
			}
			want := protodesc.ToFileDescriptorProto(gen)
			got := protodesc.ToFileDescriptorProto(doc)
			got.SourceCodeInfo = nil
			if !proto.Equal(got, want) {
				t.Errorf("embedded descriptor differs from the generated one (run make proto)")
			}
		})
	}
}

func TestDocumentedFilesHaveComments(t *testing.T) {
	r := DocumentedFiles()
	for _, name := range []protoreflect.FullName{
		"actiond.v1.StreamService",
		"actiond.v1.StreamService.UpdateStream",
		"actiond.v1.FleetService.DrainNode",
		"actiond.v1.StreamOptions.top_k",
		"actiond.v1.Event",
		"actiond.v1.ClassifyRequest.uri",
		"actiond.v1.STREAM_STATE_PLAYING", // enum values are scoped like their enum,
	} {
		d, err := r.FindDescriptorByName(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		loc := d.ParentFile().SourceLocations().ByDescriptor(d)
		if strings.TrimSpace(loc.LeadingComments) == "" {
			t.Errorf("%s has no comment", name)
		}
	}
	// Files outside the API still resolve, from the global registry.
	if _, err := r.FindFileByPath("google/protobuf/descriptor.proto"); err != nil {
		t.Errorf("fallback to the global registry: %v", err)
	}
}
