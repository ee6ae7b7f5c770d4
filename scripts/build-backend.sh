#!/usr/bin/env bash
# Builds one ggml backend (cuda, vulkan or blas) as a run-time loadable library for calft
# and copies it, with the libggml-base it needs, into bin/backends/.
#
#   scripts/build-backend.sh cuda|vulkan|blas
#
# calft links ggml's CPU backend statically; the others are shared libraries that calft
# opens with ggml_backend_load(path). They come from the same pinned ggml sources, built
# through third_party/backends/CMakeLists.txt (GGML_BACKEND_DL, RUNPATH $ORIGIN).
#
# Environment:
#   GGML_SRC               ggml source folder (holds include/ src/ cmake/); default the
#                          pinned module's, third_party/ollama/ml/backend/ggml/ggml. Set it on
#                          a machine without Go, to a copy of that folder.
#   CALFT_BACKEND_OUT      where the libraries go (default <repo>/bin/backends)
#   CALFT_BACKEND_BUILD    root of the build folders (default $XDG_CACHE_HOME/calft/backends
#                          or ~/.cache/calft/backends); one folder per backend, source set
#                          and flags, so a second run with the same sources does nothing.
#   CALFT_CUDA_ARCH        CMAKE_CUDA_ARCHITECTURES for cuda (default 90: H100/H200)
#   CALFT_BACKEND_REBUILD  1: run the CMake build step even when the folder is complete
#
# Missing build tools are installed with apt-get (cmake, ninja-build, g++; pkg-config and
# libopenblas-dev for blas; glslc, libvulkan-dev, mesa-vulkan-drivers for vulkan), only when
# something is missing. The CUDA toolkit is never installed: nvcc must be there already.
set -euo pipefail

die() { echo "build-backend: $*" >&2; exit 1; }
say() { echo "build-backend: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

name=${1:-}
case "$name" in
  cuda|vulkan|blas) ;;
  *) die "usage: $0 cuda|vulkan|blas" ;;
esac
[ $# -eq 1 ] || die "usage: $0 cuda|vulkan|blas"

repo=$(cd "$(dirname "$0")/.." && pwd -P)
cmakelists="$repo/third_party/backends/CMakeLists.txt"
[ -f "$cmakelists" ] || die "missing $cmakelists"

# --- ggml sources --------------------------------------------------------------------
if [ -n "${GGML_SRC:-}" ]; then
  src=$GGML_SRC
else
  src="$repo/third_party/ollama/ml/backend/ggml/ggml"
  if [ ! -f "$src/include/ggml.h" ]; then
    have go || die "no ggml sources at $src and no Go to fetch them: set GGML_SRC to a copy of the ggml folder (include/ src/ cmake/)"
    "$repo/third_party/link.sh"
  fi
fi
[ -f "$src/include/ggml.h" ] && [ -f "$src/src/CMakeLists.txt" ] ||
  die "$src is not a ggml source folder (want include/ggml.h and src/CMakeLists.txt)"
src=$(cd "$src" && pwd -P)

# --- tools -----------------------------------------------------------------------------
# nvcc is looked for in the usual toolkit places too, as CMake itself would not.
if [ "$name" = cuda ] && ! have nvcc && [ -z "${CUDACXX:-}" ]; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin /opt/cuda/bin; do
    if [ -x "$d/nvcc" ]; then PATH="$d:$PATH"; export PATH; break; fi
  done
fi
if [ "$name" = cuda ] && ! have nvcc && [ -z "${CUDACXX:-}" ]; then
  die "nvcc not found: the CUDA backend needs the CUDA toolkit (nvcc, cudart, cuBLAS); put its bin/ on PATH or set CUDACXX"
fi
have_cblas() {
  have pkg-config && { pkg-config --exists openblas || pkg-config --exists openblas64; } && return 0
  return 1
}
have_vulkan_dev() {
  [ -f /usr/include/vulkan/vulkan.hpp ] || [ -n "${VULKAN_SDK:-}" ]
}
have_icd() {
  local f
  for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do
    [ -e "$f" ] && return 0
  done
  return 1
}
need=()
have cmake || need+=(cmake)
have c++ || have g++ || need+=(g++)
case "$name" in
  blas)
    have pkg-config || need+=(pkg-config)
    have_cblas || need+=(libopenblas-dev) ;;
  vulkan)
    have glslc || need+=(glslc)
    have_vulkan_dev || need+=(libvulkan-dev)
    # A Vulkan driver is needed only to run, but without one there is no device at all;
    # Mesa's brings lavapipe (llvmpipe), a Vulkan device running on the CPU.
    have_icd || need+=(mesa-vulkan-drivers) ;;
esac
# Ninja is optional (make works too): fetched only when apt runs anyway, or without make.
if ! have ninja && { [ ${#need[@]} -gt 0 ] || ! have make; }; then need+=(ninja-build); fi
if [ ${#need[@]} -gt 0 ]; then
  have apt-get || die "missing ${need[*]} and no apt-get to install them; install them and retry"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    have sudo || die "missing ${need[*]}; need root (or sudo) to install them with apt-get"
    sudo="sudo"
  fi
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "${need[@]}"; } ||
    die "apt-get could not install ${need[*]} (no network?); install them and retry"
fi
have cmake || die "cmake not found"
if [ "$name" = vulkan ]; then
  have glslc || die "glslc not found: the Vulkan backend compiles its shaders with glslc (Debian: apt-get install glslc)"
  have_vulkan_dev || die "Vulkan headers not found (Debian: apt-get install libvulkan-dev)"
fi
if [ "$name" = blas ]; then
  have_cblas || die "OpenBLAS not found through pkg-config (Debian: apt-get install libopenblas-dev pkg-config)"
fi
for t in readelf nm; do have "$t" || die "$t not found (binutils)"; done

if have ninja; then gen=Ninja; else gen="Unix Makefiles"; fi
jobs=$(nproc 2>/dev/null || echo 2)

# --- Vulkan's glslc probes ---------------------------------------------------------------
# ggml-vulkan/CMakeLists.txt compiles four probe shaders from
# vulkan-shaders/feature-tests/ to learn which GLSL extensions this glslc knows, and turns
# a feature off only when glslc answers "extension not supported: <name>". The module
# snapshot lacks that folder, and a missing file would switch every feature ON (the error
# is a different one). These are our own probes: one small compute shader per extension.
probe_coopmat='#version 450
// GL_KHR_cooperative_matrix: subgroup-scope matrix multiply-add (ggml: mul_mm coopmat path)
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
layout(local_size_x = 32) in;
layout(std430, binding = 0) readonly buffer In { float16_t x[]; };
layout(std430, binding = 1) writeonly buffer Out { float y[]; };
void main() {
    coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a;
    coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB> b;
    coopMatLoad(a, x, 0, 16, gl_CooperativeMatrixLayoutRowMajor);
    coopMatLoad(b, x, 256, 16, gl_CooperativeMatrixLayoutRowMajor);
    coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> c =
        coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0);
    c = coopMatMulAdd(a, b, c);
    coopMatStore(c, y, 0, 16, gl_CooperativeMatrixLayoutRowMajor);
}
'
probe_coopmat2='#version 450
// GL_NV_cooperative_matrix2: workgroup-scope matrices loaded through tensor layouts
// (ggml: the *_cm2 matmul and flash-attention shaders)
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float16_t x[]; };
layout(std430, binding = 1) writeonly buffer Out { float y[]; };
void main() {
    tensorLayoutNV<2> t = createTensorLayoutNV(2);
    t = setTensorLayoutDimensionNV(t, 32, 32);
    coopmat<float16_t, gl_ScopeWorkgroup, 32, 32, gl_MatrixUseA> a;
    coopmat<float16_t, gl_ScopeWorkgroup, 32, 32, gl_MatrixUseB> b;
    coopMatLoadTensorNV(a, x, 0, sliceTensorLayoutNV(t, 0, 32, 0, 32));
    coopMatLoadTensorNV(b, x, 0, sliceTensorLayoutNV(t, 0, 32, 0, 32));
    coopmat<float, gl_ScopeWorkgroup, 32, 32, gl_MatrixUseAccumulator> c =
        coopmat<float, gl_ScopeWorkgroup, 32, 32, gl_MatrixUseAccumulator>(0.0);
    c = coopMatMulAdd(a, b, c);
    coopMatStoreTensorNV(c, y, 0, sliceTensorLayoutNV(t, 0, 32, 0, 32));
}
'
probe_integer_dot='#version 450
// GL_EXT_integer_dot_product: packed 4x int8 dot products (ggml: the q8_1 matmul shaders)
#extension GL_EXT_integer_dot_product : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { int x[]; };
layout(std430, binding = 1) writeonly buffer Out { int y[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    y[i] = dotPacked4x8EXT(x[2u * i], x[2u * i + 1u]);
}
'
probe_bfloat16='#version 450
// GL_EXT_bfloat16: the bfloat16_t type (ggml: bf16 matmul shaders)
#extension GL_EXT_bfloat16 : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { bfloat16_t x[]; };
layout(std430, binding = 1) writeonly buffer Out { float y[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    y[i] = float(x[i]);
}
'

# --- build folder keyed on the sources and flags ------------------------------------------
cuda_arch=${CALFT_CUDA_ARCH:-90}
cmake_flags=(-G "$gen" -DCMAKE_BUILD_TYPE=Release "-DCALFT_BACKEND=$name")
[ "$name" = cuda ] && cmake_flags+=("-DCALFT_CUDA_ARCHITECTURES=$cuda_arch")
hash_input() {
  (cd "$src" && find . -type f -printf '%p %s\n' | LC_ALL=C sort)
  printf '%s\n' "${cmake_flags[@]}"
  cat "$repo"/third_party/backends/*  # CMakeLists.txt and the headers it brings in
  if [ "$name" = vulkan ]; then
    printf '%s' "$probe_coopmat" "$probe_coopmat2" "$probe_integer_dot" "$probe_bfloat16"
  fi
}
key=$(hash_input | sha256sum | cut -c1-12)
root=${CALFT_BACKEND_BUILD:-${XDG_CACHE_HOME:-$HOME/.cache}/calft/backends}
dir="$root/$name-$key"
case "$dir/" in
  "$repo"/*) die "the build folder $dir must be outside the repository" ;;
  "$src"/*)  die "the build folder $dir must be outside the ggml sources" ;;
esac
lib="$dir/build/lib/libggml-$name.so"
stamp="$dir/complete"

if [ -f "$stamp" ] && [ -f "$lib" ] && [ "${CALFT_BACKEND_REBUILD:-0}" != 1 ]; then
  say "$name: up to date in $dir"
else
  mkdir -p "$dir"
  rm -f "$stamp"
  # A private copy of the sources (about 9 MB): the module cache is read-only and Vulkan
  # needs the probe files beside its CMakeLists.txt. Made once per folder.
  if [ ! -f "$dir/ggml/.copied" ]; then
    rm -rf "$dir/ggml"
    mkdir -p "$dir/ggml"
    cp -R "$src/." "$dir/ggml/"
    chmod -R u+w "$dir/ggml"
    if [ "$name" = vulkan ]; then
      ft="$dir/ggml/src/ggml-vulkan/vulkan-shaders/feature-tests"
      if [ ! -d "$ft" ]; then
        mkdir -p "$ft"
        printf '%s' "$probe_coopmat" >"$ft/coopmat.comp"
        printf '%s' "$probe_coopmat2" >"$ft/coopmat2.comp"
        printf '%s' "$probe_integer_dot" >"$ft/integer_dot.comp"
        printf '%s' "$probe_bfloat16" >"$ft/bfloat16.comp"
      fi
    fi
    touch "$dir/ggml/.copied"
  fi
  if [ ! -f "$dir/build/CMakeCache.txt" ]; then
    say "$name: configuring in $dir/build ($gen)"
    cmake -S "$repo/third_party/backends" -B "$dir/build" "${cmake_flags[@]}" \
      "-DGGML_SOURCE_DIR=$dir/ggml" || { rm -rf "$dir/build"; die "$name: CMake configure failed"; }
  fi
  say "$name: building with $jobs jobs (Vulkan takes minutes: ~140 shaders)"
  start=$(date +%s)
  cmake --build "$dir/build" --target "ggml-$name" --parallel "$jobs" || die "$name: build failed"
  say "$name: built in $(( $(date +%s) - start )) s"
  [ -f "$lib" ] || die "$name: the build made no $lib"
  touch "$stamp"
fi

# --- copy the library and the libggml-* it needs ---------------------------------------------
out=${CALFT_BACKEND_OUT:-$repo/bin/backends}
mkdir -p "$out"
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
# Each file is written under a temporary name and renamed, so a running calft that has the
# old one mapped keeps a valid file.
put() {
  cp -L "$1" "$out/.$2.tmp"
  mv -f "$out/.$2.tmp" "$out/$2"
}
copied=()
todo=("libggml-$name.so")
while [ ${#todo[@]} -gt 0 ]; do
  f=${todo[0]}
  todo=("${todo[@]:1}")
  case " ${copied[*]} " in *" $f "*) continue ;; esac
  [ -e "$dir/build/lib/$f" ] || die "$f is needed but was not built in $dir/build/lib"
  put "$dir/build/lib/$f" "$f"
  copied+=("$f")
  for n in $(needed "$dir/build/lib/$f"); do
    case "$n" in libggml*) todo+=("$n") ;; esac
  done
done

# The CUDA runtime and cuBLAS come from the toolkit; when the loader cannot find them on
# this machine, put copies beside the backend (RUNPATH $ORIGIN finds them there).
if [ "$name" = cuda ] && have ldd; then
  nvcc_bin=$(command -v nvcc || echo "${CUDACXX:-}")
  cuda_root=$(cd "$(dirname "$nvcc_bin")/.." 2>/dev/null && pwd -P || true)
  for m in $(ldd "$out/libggml-cuda.so" | sed -n 's/^[[:space:]]*\(lib[^ ]*\) => not found.*/\1/p'); do
    found=""
    for d in "$cuda_root/lib64" "$cuda_root/lib" "$cuda_root"/targets/*/lib; do
      if [ -e "$d/$m" ]; then found="$d/$m"; break; fi
    done
    if [ -n "$found" ]; then
      say "copying $m from the CUDA toolkit (the loader does not find it otherwise)"
      put "$found" "$m"
      copied+=("$m")
    fi
  done
fi

# --- checks --------------------------------------------------------------------------------
b="$out/libggml-$name.so"
nm -D --defined-only "$b" | grep -w ggml_backend_init >/dev/null ||
  die "$b does not export ggml_backend_init (not a GGML_BACKEND_DL build?)"
rp=$(readelf -d "$b" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
[ "$rp" = '$ORIGIN' ] || die "$b has RUNPATH '$rp', want \$ORIGIN"
if have ldd && ldd "$b" | grep 'not found' >/dev/null; then
  say "warning: some libraries of $b are not found on this machine:"
  ldd "$b" | grep 'not found' >&2
fi
say "$name: ${copied[*]} -> $out (NEEDED: $(needed "$b" | tr '\n' ' '))"
