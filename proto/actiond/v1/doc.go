// Package actiondv1 is actiond's gRPC API, version 1: StreamService
// (the camera feeds a server watches) and RecognitionService (live events,
// one-shot clip classification, the model).
//
// The *.pb.go files are generated from the *.proto files beside them by
// `make proto`; edit the .proto files, never the generated code. This
// package holds the API only: no server or client logic.
package actiondv1
