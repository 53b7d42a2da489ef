package actiondv1

import (
	_ "embed"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// descriptorSet is the API's .proto files and their imports, compiled with
// their comments (`buf build --as-file-descriptor-set`, by `make proto`).
// protoc-gen-go leaves comments out of the descriptors it generates, so
// server reflection built on them gives grpcurl describe no documentation.
//
//go:embed actiond.binpb
var descriptorSet []byte

var documented = sync.OnceValues(func() (*protoregistry.Files, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(descriptorSet, &set); err != nil {
		return nil, fmt.Errorf("read embedded actiond.v1 descriptors: %w", err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("read embedded actiond.v1 descriptors: %w", err)
	}
	return files, nil
})

// DocumentedFiles resolves descriptors as protoregistry.GlobalFiles does,
// but the API's own files (and the well-known types they import) come with
// their comments. Give it to server reflection as its DescriptorResolver,
// so that `grpcurl describe` shows the documentation:
//
//	reflection.NewServerV1(reflection.ServerOptions{
//		Services:           srv,
//		DescriptorResolver: actiondv1.DocumentedFiles(),
//	})
//
// Files the API does not contain (grpc.health.v1, the reflection service)
// come from protoregistry.GlobalFiles.
func DocumentedFiles() protodesc.Resolver { return documentedResolver{} }

type documentedResolver struct{}

func (documentedResolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if files, err := documented(); err == nil {
		if fd, err := files.FindFileByPath(path); err == nil {
			return fd, nil
		}
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (documentedResolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if files, err := documented(); err == nil {
		if d, err := files.FindDescriptorByName(name); err == nil {
			return d, nil
		}
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}
