# calft build. The C/C++ parts (ggml, libllama, mtmd) compile from the pinned
# github.com/ollama/ollama module through cgo; third_party/link.sh makes them reachable.
#
# Portable build: make CPU_FLAGS="-O3"   (default tunes for this machine's CPU)
CPU_FLAGS ?= -O3 -march=native
export CGO_ENABLED := 1
export CGO_CFLAGS := $(CPU_FLAGS)
export CGO_CXXFLAGS := $(CPU_FLAGS)
GO ?= go
TEST_TIMEOUT ?= 30m

.PHONY: all build test vet fmt-check demo bench clean deps

all: build

# Always re-pointed (it takes a moment), so a go.mod change can never leave a stale link.
deps:
	@./third_party/link.sh

build: deps
	$(GO) build -o bin/calft ./cmd/calft

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './third_party/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet: deps
	$(GO) vet ./...

test: build fmt-check vet
	@# One test binary at a time: each runs ggml on every core, and two at once make
	@# ggml's spinning threads wait on each other (tens of times slower).
	$(GO) test -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./...

demo: build
	./bin/calft demo --out out/demo

bench: build
	./bin/calft bench --preset smol135 --objective cal
	./bin/calft bench --preset smol135 --objective ce --image-rows 0

clean:
	rm -rf bin out
