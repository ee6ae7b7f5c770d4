#!/usr/bin/env bash
# Installs the build prerequisites when they are missing: a C/C++ compiler for cgo, make
# and git (Debian/Ubuntu package names). Go itself (1.26 or newer) must be on PATH.
#   --mpi   also Open MPI (mpirun, mpicc, libmpi) for bin/calft-mpi (make mpi)
set -euo pipefail
mpi=0
for a in "$@"; do
  case "$a" in
    --mpi) mpi=1 ;;
    *) echo "install-deps: unknown option $a (use --mpi)" >&2; exit 2 ;;
  esac
done
need=()
if [ "$mpi" = 1 ]; then
  command -v mpirun >/dev/null || need+=(openmpi-bin)
  command -v mpicc >/dev/null || need+=(libopenmpi-dev)
fi
command -v gcc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi
if ! command -v go >/dev/null; then
  echo "install-deps: Go is not on PATH; install Go 1.26 or newer and retry" >&2
  exit 1
fi
go mod download
