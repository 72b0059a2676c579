#!/usr/bin/env bash
# The llama.cpp baseline for LocalTokensPerSecond: builds llama.cpp's CPU benchmark tool (llama-bench)
# and runs it on the same GGUF files with the same sizes as the harness (prefill 128, decode 64,
# 1 and 2 threads), printing its table.
#
# llama.cpp's source comes from the npm package node-llama-cpp, which ships it as a git bundle
# (llama/gitRelease.bundle); it is fetched with `npm pack` through whatever npm registry is configured.
# Everything is built under benchmarks/target/llama-cpp/ and nothing of it is committed.
#
# Usage: benchmarks/llama-cpp-baseline.sh MODEL.gguf [MODEL.gguf ...]
#   (write the harness's models with: java -cp benchmarks/target/benchmarks.jar
#    dev.hybridinference.benchmarks.LocalTokensPerSecond --save=DIR, then pass DIR/*.gguf)
# Environment:
#   NODE_LLAMA_CPP_VERSION  the node-llama-cpp version whose llama.cpp to build (default below)
#   JOBS                    parallel compile jobs (default 2)
#   THREADS                 llama-bench thread counts (default 1,2)
#   REPS                    llama-bench repetitions per test (default 3)
#   LLAMA_BENCH_ARGS        further llama-bench arguments, e.g. "--delay 2"
#   LLAMA_AMX               1 to build llama.cpp's AMX kernels on a processor that has AMX (default 0:
#                           built with GCC 12 on two AMX Xeons, they stopped llama-bench on the first
#                           quantized model at their first tile instruction, with SIGILL on one and
#                           SIGSEGV at LDTILECFG on the other)
# When the models' folder also holds the harness's local-tps.csv (written with --save) and
# benchmarks/target/benchmarks.jar is built, it then prints the ratio table, ours over llama.cpp.
set -euo pipefail

VERSION="${NODE_LLAMA_CPP_VERSION:-3.22.1}"
JOBS="${JOBS:-2}"
THREADS="${THREADS:-1,2}"
REPS="${REPS:-3}"

if [ "$#" -eq 0 ]; then
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
for m in "$@"; do
    if [ ! -f "$m" ]; then
        echo "no such GGUF file: $m" >&2
        exit 2
    fi
done

HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$HERE/target/llama-cpp"
SRC="$WORK/src-$VERSION"
AMX="${LLAMA_AMX:-0}"
BUILD="$WORK/build-$VERSION"
CFLAGS_EXTRA=""
if [ "$AMX" != "1" ] && grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
    BUILD="$WORK/build-$VERSION-noamx"
    CFLAGS_EXTRA="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
BENCH="$BUILD/bin/llama-bench"

if [ ! -x "$BENCH" ]; then
    for tool in npm tar git cmake c++; do
        command -v "$tool" >/dev/null || { echo "llama-cpp-baseline needs $tool on the PATH" >&2; exit 1; }
    done
    mkdir -p "$WORK"
    if [ ! -d "$SRC" ]; then
        echo "fetching node-llama-cpp@$VERSION (ships llama.cpp's source as a git bundle)" >&2
        rm -rf "$WORK/pkg-$VERSION"
        mkdir -p "$WORK/pkg-$VERSION"
        (cd "$WORK/pkg-$VERSION" && npm pack --silent "node-llama-cpp@$VERSION" >/dev/null)
        tar -xzf "$WORK/pkg-$VERSION"/node-llama-cpp-*.tgz -C "$WORK/pkg-$VERSION"
        bundle="$WORK/pkg-$VERSION/package/llama/gitRelease.bundle"
        if [ ! -f "$bundle" ]; then
            echo "node-llama-cpp@$VERSION has no llama/gitRelease.bundle; pick another NODE_LLAMA_CPP_VERSION" >&2
            exit 1
        fi
        git -c advice.detachedHead=false clone --quiet "$bundle" "$SRC.tmp"
        cp "$WORK/pkg-$VERSION/package/llama/llama.cpp.info.json" "$SRC.tmp/" 2>/dev/null || true
        mv "$SRC.tmp" "$SRC"
    fi
    echo "building llama-bench (CPU only, native ISA${CFLAGS_EXTRA:+ without AMX}, Release, -j$JOBS): this takes a while" >&2
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DCMAKE_C_FLAGS="$CFLAGS_EXTRA" -DCMAKE_CXX_FLAGS="$CFLAGS_EXTRA" \
        -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENMP=ON \
        -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DBUILD_SHARED_LIBS=OFF >"$WORK/cmake-$VERSION.log" 2>&1 \
        || { tail -40 "$WORK/cmake-$VERSION.log" >&2; exit 1; }
    cmake --build "$BUILD" --target llama-bench -j "$JOBS" >"$WORK/build-$VERSION.log" 2>&1 \
        || { tail -40 "$WORK/build-$VERSION.log" >&2; exit 1; }
fi

echo "llama.cpp from node-llama-cpp@$VERSION${CFLAGS_EXTRA:+ (AMX kernels not built)}, commit $(git -C "$SRC" rev-parse --short HEAD)" \
    "($(git -C "$SRC" log -1 --format=%cs)), $(grep -o '"tag": *"[^"]*"' "$SRC/llama.cpp.info.json" 2>/dev/null || echo 'no tag')"
args=()
for m in "$@"; do
    args+=(-m "$m")
done
# The table goes to stdout; the same results as JSON lines go to stderr, kept for the ratio table.
OUTDIR="$(cd "$(dirname "$1")" && pwd)"
RAW="$WORK/llama-bench.stderr"
# shellcheck disable=SC2086
if ! "$BENCH" "${args[@]}" -p 128 -n 64 -t "$THREADS" -r "$REPS" -o md -oe jsonl ${LLAMA_BENCH_ARGS:-} 2>"$RAW"; then
    tail -40 "$RAW" >&2
    exit 1
fi
grep '^{' "$RAW" >"$OUTDIR/llama-bench.jsonl" || true
echo "llama-bench results as JSON lines: $OUTDIR/llama-bench.jsonl"

# With the harness's figures for the same files beside them, the ratio table.
JAR="$HERE/target/benchmarks.jar"
if [ -f "$OUTDIR/local-tps.csv" ] && [ -f "$JAR" ]; then
    echo
    echo "ours / llama.cpp ($OUTDIR/local-tps.csv over llama-bench.jsonl):"
    java -cp "$JAR" dev.hybridinference.benchmarks.LlamaCppRatios "$OUTDIR/local-tps.csv" "$OUTDIR/llama-bench.jsonl"
fi
