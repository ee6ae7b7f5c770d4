#!/usr/bin/env bash
# The CUDA check, in two halves, for a GPU machine that has CMake, ninja and nvcc but no
# Go and no network (the NVIDIA H200 machine this project is lent at times).
#
#   scripts/device-check.sh pack   on a machine with Go: builds calft and the llava and
#                                  train test binaries for any x86-64-v3 CPU, and copies
#                                  the pinned ggml sources, into out/device/ (≈ 50 MB)
#   scripts/device-check.sh run    on the GPU machine, from the repository root with
#                                  out/device/ beside it: builds libggml-cuda.so there
#                                  (sm_90 by default: CALFT_CUDA_ARCH), runs the decoder parity
#                                  and gradient tests on CUDA, then calft bench (smol135
#                                  and llama1b; cal and ce) on CUDA and, for the ratio,
#                                  smol135 on that machine's CPU. Results go to $OUT (or
#                                  out/device/results): log.txt and bench.jsonl.
#
# `run` keeps to BUDGET seconds (default 480) in all: each step is given what is left,
# and steps that no longer fit are reported as skipped. Without nvcc (or when the build
# fails) it still runs the tests and benchmarks that need no GPU, on the CPU path.
set -uo pipefail
cd "$(dirname "$0")/.."
DEV=${CALFT_DEVICE_DIR:-out/device}

pack() {
  set -e
  make deps
  # The GPU machine's CPU is not this one: no -march=native.
  export CGO_CFLAGS="-O3 -march=x86-64-v3" CGO_CXXFLAGS="-O3 -march=x86-64-v3"
  [ -d "$DEV" ] && chmod -R u+w "$DEV"
  rm -rf "$DEV" && mkdir -p "$DEV"
  # A module of its own, so that the ggml copy's Go files stay out of this one's ./...
  printf 'module calft-device-check\n' >"$DEV/go.mod"
  go build -trimpath -ldflags="-s -w" -o "$DEV/calft" ./cmd/calft
  for p in llava train; do
    go test -c -trimpath -ldflags="-s -w" -o "$DEV/$p.test" "./$p"
  done
  cp -rL third_party/ollama/ml/backend/ggml/ggml "$DEV/ggml"
  chmod -R u+w "$DEV/ggml"
  du -sh "$DEV"/*
}

run() {
  local out=${OUT:-$DEV/results} budget=${BUDGET:-480} status=0
  mkdir -p "$out"
  exec > >(tee -a "$out/log.txt") 2>&1
  left() { echo $((budget - SECONDS)); }
  # step NAME SECONDS CMD...: runs CMD with at most SECONDS (less when less is left).
  step() {
    local name=$1 want=$2
    shift 2
    local t
    t=$(left)
    [ "$t" -gt "$want" ] && t=$want
    if [ "$t" -lt 20 ]; then
      echo "== $name: skipped ($(left) s left)"
      return 1
    fi
    echo "== $name (at most ${t}s)"
    local t0=$SECONDS
    timeout -k 5 "$t" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0))s"
    [ $rc -eq 0 ] || status=1
    return $rc
  }
  nvidia-smi -L 2>/dev/null || echo "no nvidia-smi: no GPU here"
  export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  export CALFT_BACKEND_DIR=$PWD/$DEV/backends
  local be=cpu
  if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=$PATH:/usr/local/cuda/bin
    if step "build libggml-cuda.so (sm_${CALFT_CUDA_ARCH:-90})" "${BUILD_MAX:-420}" \
      env GGML_SRC="$PWD/$DEV/ggml" CALFT_BACKEND_OUT="$CALFT_BACKEND_DIR" ./scripts/build-backend.sh cuda; then
      be=cuda
    fi
  else
    echo "== no nvcc: the CPU path only"
  fi
  "$DEV/calft" info --backends
  local tests="TestLogitsMatchLibllama|TestImageAbsentPass|TestVariantLogitsMatchLibllama|TestMRoPELogitsMatchLibllama|TestGemma3LogitsMatchLibllama"
  # The whole output goes to a file; the log keeps the results and the figures.
  local figures='^(---|ok|FAIL|PASS|panic|SIG)|relative|Δlogit|within|worst|→'
  step "llava parity on $be" 90 env CALFT_TEST_BACKEND=$be sh -c "cd llava && ../$DEV/llava.test -test.run '$tests' -test.v >'$out/llava-test.txt' 2>&1; rc=\$?; grep -E '$figures' '$out/llava-test.txt' | head -60; exit \$rc"
  tests="TestLoRAGradientsMatchFiniteDifferences|TestBackendsMatchCPU|TestAdamWDrivesLossDown|TestGradientsOnQ8_0Base"
  step "train gradients on $be" 120 env CALFT_TEST_BACKEND=$be sh -c "cd train && ../$DEV/train.test -test.run '$tests' -test.v >'$out/train-test.txt' 2>&1; rc=\$?; grep -E '$figures' '$out/train-test.txt' | head -60; exit \$rc"
  local p o
  for p in smol135 llama1b; do
    for o in cal ce; do
      local rows=()
      [ "$o" = ce ] && rows=(--image-rows 0)
      step "bench $p $o on $be" 60 sh -c "'$DEV/calft' bench --backend $be --preset $p --objective $o ${rows[*]} --steps 3 --warmup 1 | tee -a '$out/bench.jsonl'"
    done
  done
  [ "$be" = cpu ] || step "bench smol135 cal on this machine's CPU" 45 \
    sh -c "'$DEV/calft' bench --backend cpu --preset smol135 --objective cal --steps 3 --warmup 1 | tee -a '$out/bench.jsonl'"
  echo "== done in ${SECONDS}s, backend $be, status $status"
  return $status
}

case "${1:-}" in
pack) pack ;;
run) run ;;
*)
  echo "usage: $0 pack|run (see the comment at the top)" >&2
  exit 2
  ;;
esac
