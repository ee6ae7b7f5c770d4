#!/usr/bin/env bash
# The short fuzz pass of `make test`: every Fuzz target of the repository (found in its
# _test.go files) for FUZZTIME each, one worker, one target at a time (a fuzzing run
# takes one). The seed corpora already ran as ordinary tests; this mutates them a little.
# A failure prints the run's output, with the input it wrote under the package's
# testdata/fuzz/FuzzX/ (commit it with the fix, as a regression test).
#
#   scripts/fuzz-short.sh                                every target, 3 s each
#   FUZZTIME=10m scripts/fuzz-short.sh ./data FuzzLoad   one target, for long
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}
# Minimizing each new input could take a short pass's whole time (the default is 60 s).
MINIMIZE=${MINIMIZE:-1s}
# Several targets write their input to a file, and adapters are written with fsync:
# on a tmpfs that costs nothing. The build keeps its own temporary folder.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export GOTMPDIR=${GOTMPDIR:-/tmp} TMPDIR=/dev/shm
fi

if [ $# -eq 2 ]; then
  exec "$GO" test -run='^$' -fuzz="^$2\$" -fuzztime="$FUZZTIME" -parallel 1 "$1"
fi

# fuzz_one DIR EXE TARGET BUDGET LOG runs one target from its package's folder.
fuzz_one() {
  (cd "$1" && "$2" -test.run='^$' -test.fuzz="^$3\$" -test.fuzztime="$4" \
    -test.fuzzminimizetime="$MINIMIZE" -test.parallel=1 -test.paniconexit0 \
    -test.fuzzcachedir="$cache/$pkg") >"$5" 2>&1
}

bin=$(mktemp -d "${GOTMPDIR:-/tmp}/fuzz-short.XXXXXX")
trap 'rm -rf "$bin"' EXIT
cache=$("$GO" env GOCACHE)/fuzz
# One instrumented test binary per package (what `go test -fuzz` builds), run once per
# target from the package's folder, where testdata/ is.
for dir in $(find . -name '*_test.go' -not -path './third_party/*' -exec dirname {} \; | sort -u); do
  targets=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$dir"/*_test.go)
  [ -n "$targets" ] || continue
  pkg=$("$GO" list -f '{{.ImportPath}}' "$dir")
  exe="$bin/$(echo "${dir#./}" | tr / _).test"
  "$GO" test -c -fuzz=. -o "$exe" "$dir"
  for t in $targets; do
    log="$bin/$t.log"
    if ! fuzz_one "$dir" "$exe" "$t" "$FUZZTIME" "$log"; then
      # Go 1.26's fuzzing coordinator can report its own -fuzztime deadline as a failure
      # ("context deadline exceeded", no input written: golang/go#75804, fixed in 1.27).
      # Run that target again for as many executions as it made, a count-based budget
      # that has no deadline to race; a real failure fails again and writes its input.
      execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
      if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log" &&
        [ "${execs:-0}" -gt 0 ] && fuzz_one "$dir" "$exe" "$t" "${execs}x" "$log"; then
        echo "fuzz $dir $t: the toolchain's deadline race (golang/go#75804); $execs executions again passed"
        continue
      fi
      cat "$log"
      echo "fuzz-short: $dir $t failed" >&2
      exit 1
    fi
    # The last progress line: executions and new interesting inputs.
    echo "fuzz $dir $t: $(grep -o 'execs: [0-9]*.*' "$log" | tail -1)"
  done
done
