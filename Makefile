# actiond — the two commands a newcomer runs are `make run` and `make test`.
# Both install what is missing first (make setup).

GO      ?= go
BIN     := bin
PKGS    := ./...
GOFLAGS_TEST ?= -race -count=1 -timeout 12m

export CGO_ENABLED := 1

.PHONY: all setup build run demo demo-files test test-short lint fmt tidy-check clean proto bench bench-peers bench-peer screenshots

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
	$(BIN)/actiond demo --files $(wildcard testdata/*.mp4 testdata/*.avi)

demo: run

## test: lint, fuzz-smoke, then every test with the race detector. The
## output ends with each skipped test and its reason, then
## "tests: N passed, N failed, N skipped" (cmd/internal/testreport). Under CI=true a test that
## lacks a tool fails instead of skipping (internal/testenv).
test: setup lint
	@$(MAKE) --no-print-directory fuzz-smoke
	$(GO) run ./cmd/internal/testreport $(GO) test -json $(GOFLAGS_TEST) $(PKGS)

## fuzz-smoke: every fuzz target for FUZZTIME (3s) each: go test takes one
## -fuzz target per run. The full runs are in RELIABILITY.md ("Fuzzing").
FUZZ_TARGETS := ./engine:FuzzReadNPY ./models:FuzzParseLabelList ./models/onnx:FuzzManifest \
	./models/onnx:FuzzParse ./models/paddle:FuzzRead ./server:FuzzConfig ./server:FuzzStreamRequest \
	./ingest:FuzzDepacketizeDecode ./ingest:FuzzSDPParameterSets ./ingest:FuzzWindow
FUZZTIME ?= 3s
.PHONY: fuzz-smoke
fuzz-smoke: setup
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; echo "fuzz-smoke: $$name ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

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

## bench-peers: the peers `make bench` compares against: python3-opencv and
## python3-av from Debian (apt-get, only if missing) and onnxruntime-node
## 1.29.0 from npm into .cache/bench-node (install script skipped: the
## package ships its native binding and libonnxruntime).
BENCH_NODE := .cache/bench-node
bench-peers:
	@if ! /usr/bin/python3 -c 'import cv2, av, PIL, numpy' 2>/dev/null; then \
	  echo "bench-peers: installing python3-opencv python3-av python3-pil python3-numpy"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    python3-opencv python3-av python3-pil python3-numpy; fi
	@if ! (cd $(BENCH_NODE) 2>/dev/null && node -e "const o=require('onnxruntime-node'); if (o.env.versions.node !== '1.29.0') process.exit(1)" 2>/dev/null); then \
	  echo "bench-peers: installing onnxruntime-node@1.29.0 into $(BENCH_NODE)"; \
	  mkdir -p $(BENCH_NODE) && cd $(BENCH_NODE) && \
	  { [ -f package.json ] || echo '{"name":"actiond-bench-node","private":true}' > package.json; } && \
	  npm install --ignore-scripts --no-audit --no-fund --silent onnxruntime-node@1.29.0 && \
	  node -e "require('onnxruntime-node'); console.log('onnxruntime-node', require('onnxruntime-node/package.json').version, 'loads')"; fi

## bench: every speed benchmark beside its peer; rewrites BENCHMARKS.md.
## bench-peer: bin/actiond-peer, actiond as main was before the load issue
## (commit $(PEER_COMMIT)), the live benchmark's side-by-side peer. Built from
## this clone's own history; a clone without that commit benches without it.
PEER_COMMIT ?= 3eff8ab
bench-peer: setup
	@if [ -x $(BIN)/actiond-peer ] && [ "$$(cat $(BIN)/actiond-peer.commit 2>/dev/null)" = "$(PEER_COMMIT)" ]; then exit 0; fi; \
	if ! git cat-file -e $(PEER_COMMIT)^{commit} 2>/dev/null; then \
	  echo "bench-peer: commit $(PEER_COMMIT) is not in this clone's history (shallow?): the live benchmark runs without its peer"; exit 0; fi; \
	src=$$(mktemp -d) && trap 'rm -rf "$$src"' EXIT && \
	echo "bench-peer: building actiond at $(PEER_COMMIT) into $(BIN)/actiond-peer" && \
	git archive $(PEER_COMMIT) | tar -x -C "$$src" && \
	mkdir -p $(BIN) && (cd "$$src" && $(GO) build -o $(CURDIR)/$(BIN)/actiond-peer ./cmd/actiond) && \
	echo $(PEER_COMMIT) > $(BIN)/actiond-peer.commit

## bench: every benchmark, with its peers, into BENCHMARKS.md (about 25 min
## on 2 cores with BENCH_FLAGS as below; run it on an otherwise idle machine).
BENCH_FLAGS ?= -repeats 3 -live-period 25s
bench: build bench-peers bench-peer
	$(GO) run ./cmd/actionbench -actiond $(BIN)/actiond $$([ -x $(BIN)/actiond-peer ] && echo -peer-actiond $(BIN)/actiond-peer) $(BENCH_FLAGS) -out BENCHMARKS.md

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) out

## soak: SOAK_CAMERAS simulated cameras with a fault every SOAK_FAULT_PERIOD
## against a real `actiond serve` for SOAK_DURATION; rewrites the Soak
## section of RELIABILITY.md (and soak/); fails on lost events or RSS drift.
SOAK_DURATION ?= 30m
SOAK_CAMERAS ?= 8
SOAK_FAULT_PERIOD ?= 20s
SOAK_MODEL ?= motion
SOAK_FLAGS ?=
.PHONY: soak
soak: build
	$(BIN)/actionsoak -actiond $(BIN)/actiond -duration $(SOAK_DURATION) -cameras $(SOAK_CAMERAS) \
	  -fault-period $(SOAK_FAULT_PERIOD) -model $(SOAK_MODEL) -out soak -reliability RELIABILITY.md \
	  -command "make soak SOAK_DURATION=$(SOAK_DURATION)" $(SOAK_FLAGS)

## screenshots: the console's pages (docs/console-*.png, shown in the
## README), taken by its browser test against serve --demo.
.PHONY: screenshots
screenshots: setup
	ACTIOND_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestConsoleInBrowser$$' ./cmd/actiond
