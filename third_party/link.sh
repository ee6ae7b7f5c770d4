#!/usr/bin/env bash
# Makes the pinned llama.cpp/ggml sources reachable from cgo's ${SRCDIR}.
#
# cgo can only name include paths relative to a package directory, but the sources live
# in the Go module cache (github.com/ollama/ollama, pinned in go.mod). This script points
# third_party/ollama at that module directory; nothing is copied into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
go mod download github.com/ollama/ollama
dir=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
if [ -z "$dir" ] || [ ! -d "$dir/ml/backend/ggml/ggml/include" ]; then
  echo "third_party/link.sh: cannot find the ollama module sources (got '$dir')" >&2
  exit 1
fi
ln -sfn "$dir" third_party/ollama
