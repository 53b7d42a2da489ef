# actiond — the two commands a newcomer runs are `make run` and `make test`.
# Both install what is missing first (make setup).

GO      ?= go
BIN     := bin
PKGS    := ./...
GOFLAGS_TEST ?= -race -count=1 -timeout 12m

export CGO_ENABLED := 1

.PHONY: all setup build run demo demo-files test test-short lint fmt tidy-check clean proto

all: build

## setup: install Debian packages and ONNX Runtime 1.29.0 where missing (idempotent).
setup:
	@./.ci/setup

## build: build bin/actiond and bin/actionctl.
build: setup
	$(GO) build -o $(BIN)/ ./cmd/...

## run: the server on the embedded default: the motion model watching a demo
## camera (no camera, no weights needed); watch it from a second terminal.
run: build
	$(BIN)/actiond serve --demo

## demo-files: classify the synthetic scenes and the shared clips, then exit.
demo-files: build
	$(BIN)/actiond demo --files $(wildcard ../shared/testdata/*.mp4 ../shared/testdata/*.avi)

demo: run

## test: lint, then every test with the race detector.
test: setup lint
	$(GO) test $(GOFLAGS_TEST) $(PKGS)

## lint: gofmt, go vet, staticcheck, and go.mod tidiness.
lint: setup
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	$(GO) tool buf lint
	$(GO) mod tidy -diff

## tidy-check: fail if go mod tidy would change go.mod or go.sum.
tidy-check:
	$(GO) mod tidy -diff

## proto: regenerate the Go code beside proto/actiond/v1/*.proto (buf,
## protoc-gen-go and protoc-gen-go-grpc, pinned as tool lines in go.mod).
proto:
	$(GO) tool buf lint
	rm -f proto/actiond/v1/*.pb.go
	$(GO) tool buf generate
	$(GO) tool buf build --as-file-descriptor-set -o proto/actiond/v1/actiond.binpb

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) out
