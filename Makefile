# calft build. The C/C++ parts (ggml, libllama, mtmd) compile from the pinned
# github.com/ollama/ollama module through cgo; third_party/link.sh makes them reachable.
#
# Portable build: make CPU_FLAGS="-O3"   (default tunes for this machine's CPU)
CPU_FLAGS ?= -O3 -march=native $(NO_AMX)
# ggml's AMX kernels (ggml-cpu/amx/) are not part of the module's cgo package, yet
# ggml-cpu.cpp calls them when the compiler targets AMX: on an x86 CPU that has AMX
# (Sapphire Rapids and later) -march=native would leave the link one symbol short.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif
export CGO_ENABLED := 1
export CGO_CFLAGS := $(CPU_FLAGS)
export CGO_CXXFLAGS := $(CPU_FLAGS)
GO ?= go
TEST_TIMEOUT ?= 30m

.PHONY: all build mpi mpi-vet test test-vulkan vet fmt-check demo bench clean deps

all: build

# Installs what is missing (compilers, make, git; Go modules) and re-points the sources,
# always (it takes a moment), so a go.mod change can never leave a stale link.
deps:
	@./scripts/install-deps.sh
	@./third_party/link.sh

build: deps
	$(GO) build -o bin/calft ./cmd/calft

# GPU and BLAS backends: shared libraries that calft loads at run time, built from the
# same pinned ggml sources into bin/backends/ (scripts/build-backend.sh; a second run
# with unchanged sources does nothing). On a machine without Go, run the script with
# GGML_SRC set to a copy of the ggml folder.
.PHONY: cuda vulkan blas
cuda vulkan blas: deps
	./scripts/build-backend.sh $@

# bin/calft-mpi: calft with data-parallel train and score over MPI (build tag mpi),
# installing Open MPI first when it is missing. Only package bindings/mpi gets MPI's
# flags (scripts/mpi-flags.sh), so ggml and llama.cpp keep their cached objects.
mpi: deps
	./scripts/install-deps.sh --mpi
	./scripts/mpi-flags.sh
	$(GO) build -tags mpi -o bin/calft-mpi ./cmd/calft

# make test builds (and vets) bin/calft-mpi too, installing Open MPI when missing, so
# that the MPI tests run (they build their own copy).
mpi-vet: mpi
	$(GO) vet -tags mpi ./bindings/mpi ./train ./cmd/calft

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './third_party/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet: deps
	$(GO) vet ./...

# The tests find backend libraries in bin/backends; make test builds the BLAS one (seconds)
# and requires it, so that the scheduler's CPU-fallback path runs in CI.
BACKEND_ENV := CALFT_BACKEND_DIR=$(CURDIR)/bin/backends

test: build blas mpi-vet fmt-check vet
	@# One test binary at a time: each runs ggml on every core, and two at once make
	@# ggml's spinning threads wait on each other (tens of times slower).
	$(BACKEND_ENV) CALFT_TEST_DEVICES=blas CALFT_REQUIRE_BACKENDS=blas \
		$(GO) test -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./...
	@# Every fuzz target for a few seconds (under a minute in all).
	GO=$(GO) ./scripts/fuzz-short.sh

# The Vulkan tests on Mesa's lavapipe (a Vulkan device on the CPU, which ggml uses only
# when GGML_VK_VISIBLE_DEVICES names it): decoder parity with libllama, gradients and a
# 20-step run against the CPU's, calft train --backend vulkan. Not part of make test:
# see the README (lavapipe runs sometimes end in a heap corruption inside the driver).
test-vulkan: build vulkan
	$(BACKEND_ENV) CALFT_TEST_DEVICES=vulkan CALFT_REQUIRE_BACKENDS=vulkan GGML_VK_VISIBLE_DEVICES=0 \
		$(GO) test -count=1 -p 1 -timeout $(TEST_TIMEOUT) -run 'TestBackendsMatchCPU|TestTrainOnDevices' ./train ./cmd/calft
	$(BACKEND_ENV) CALFT_TEST_BACKEND=vulkan GGML_VK_VISIBLE_DEVICES=0 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) \
		-run 'TestLogitsMatchLibllama|TestImageAbsentPass|TestMRoPELogitsMatchLibllama|TestFamilySamplesMatchLibllama' ./llava

demo: build
	./bin/calft demo --out out/demo

bench: build
	./bin/calft bench --preset smol135 --objective cal
	./bin/calft bench --preset smol135 --objective ce --image-rows 0

clean:
	rm -rf bin out
