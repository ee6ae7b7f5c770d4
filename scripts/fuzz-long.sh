#!/usr/bin/env bash
# The long fuzz runs behind the README's table: every Fuzz target of the repository, one
# at a time, until it has made EXECS executions or run for LIMIT seconds, whichever comes
# first (issue: a million executions, or ten minutes where a target is slower). It prints
# one table row per target: executions, seconds, new interesting inputs.
#
#   scripts/fuzz-long.sh                       every target, 1M executions or 600 s
#   EXECS=2000000 LIMIT=900 PARALLEL=2 scripts/fuzz-long.sh
#
# The count is the budget (-fuzztime=Nx), so the toolchain's deadline race
# (golang/go#75804, see fuzz-short.sh) cannot occur; the time limit interrupts the run
# with SIGINT, after which Go's fuzzing stops cleanly and prints PASS. A failure prints
# the run's output and the input it wrote under the package's testdata/fuzz/FuzzX/.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
EXECS=${EXECS:-1000000}
LIMIT=${LIMIT:-600}
PARALLEL=${PARALLEL:-1}
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export GOTMPDIR=${GOTMPDIR:-/tmp} TMPDIR=/dev/shm
fi

bin=$(mktemp -d "${GOTMPDIR:-/tmp}/fuzz-long.XXXXXX")
trap 'rm -rf "$bin"' EXIT
cache=$("$GO" env GOCACHE)/fuzz
echo "| target | executions | seconds | new inputs |"
echo "| --- | --- | --- | --- |"
for dir in $(find . -name '*_test.go' -not -path './third_party/*' -exec dirname {} \; | sort -u); do
  targets=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$dir"/*_test.go)
  [ -n "$targets" ] || continue
  pkg=$("$GO" list -f '{{.ImportPath}}' "$dir")
  exe="$bin/$(echo "${dir#./}" | tr / _).test"
  "$GO" test -c -fuzz=. -o "$exe" "$dir" 2>"$bin/build.log" || { cat "$bin/build.log"; exit 1; }
  for t in $targets; do
    log="$bin/$t.log"
    start=$(date +%s)
    rc=0
    (cd "$dir" && timeout -s INT "$LIMIT" "$exe" -test.run='^$' -test.fuzz="^$t\$" \
      -test.fuzztime="${EXECS}x" -test.parallel="$PARALLEL" -test.paniconexit0 \
      -test.fuzzcachedir="$cache/$pkg") >"$log" 2>&1 || rc=$?
    secs=$(($(date +%s) - start))
    # 124: the time limit interrupted it; a clean stop still ends in PASS.
    if [ "$rc" -ne 0 ] && ! { [ "$rc" -eq 124 ] && tail -1 "$log" | grep -qx PASS; }; then
      cat "$log"
      echo "fuzz-long: $dir $t failed (exit $rc)" >&2
      exit 1
    fi
    last=$(grep -o 'execs: [0-9]*.*' "$log" | tail -1)
    execs=$(echo "$last" | grep -o '^execs: [0-9]*' | grep -o '[0-9]*')
    new=$(echo "$last" | sed -n 's/.*new interesting: \([0-9]*\).*/\1/p')
    echo "| \`$t\` (${dir#./}) | $execs | $secs | $new |"
  done
done
