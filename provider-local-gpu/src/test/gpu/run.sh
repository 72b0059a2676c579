#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and nvcc: builds the module with its CUDA backend (HYBRIDINFERENCE_CUDA=ON),
# runs the CUDA tests, then the decode/prefill benchmark on ~1B-parameter generated models (F16, Q8_0,
# Q4_K), and prints the figures. Meant to finish within 6 minutes on a 16-core machine: the build and tests
# are capped at 240 s, the benchmark at 150 s.
#
# With Maven and the project's dependencies at hand, the JUnit tests run (CudaBackendTest, LocalGpuCudaTest,
# CudaDecodingTest, LocalGpuDeviceTest). Without them (no Maven, or no repository to resolve from), it
# builds the library with CMake and the few classes the engine needs with javac, and runs CudaCheck, the
# same comparisons without JUnit.
#
#   provider-local-gpu/src/test/gpu/run.sh [maven flags, e.g. -o]
set -uo pipefail
module="$(cd "$(dirname "$0")/../../.." && pwd)"
root="$(dirname "$module")"
start=$(date +%s)
elapsed() { echo "[$(($(date +%s) - start)) s]"; }

echo "== devices $(elapsed)"
nvidia-smi --query-gpu=index,name,memory.total,memory.free,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi not available"
nvcc --version 2>&1 | tail -1 || echo "nvcc not found: the CUDA backend cannot be built"

classes="$module/target/classes:$module/target/test-classes"
build=1
if command -v mvn > /dev/null; then
    echo "== build and CUDA tests (Maven) $(elapsed)"
    cd "$root"
    tests='CudaDecodingTest,CudaBackendTest,LocalGpuCudaTest,LocalGpuDeviceTest'
    timeout 240 mvn -B -ntp -q "$@" -pl sdk-core,testkit,provider-local-gpu verify \
        -Dmaven.javadoc.skip -Dspotless.check.skip=true -Dnative.cuda=ON \
        -Dtest="$tests" -Dsurefire.failIfNoSpecifiedTests=false
    build=$?
    for f in "$module"/target/surefire-reports/*.txt; do
        [ -e "$f" ] && grep -h 'Tests run' "$f"
    done
    # A skipped class says why (no device, no driver) in its report.
    grep -ho 'Assumption failed: [^]]*' "$module"/target/surefire-reports/*.xml 2>/dev/null | sort -u | head -5
    if [ "$build" -ne 0 ]; then
        echo "Maven build or tests failed (exit $build); failures, if any ran:"
        grep -h -A8 '<failure\|<error' "$module"/target/surefire-reports/*.xml 2>/dev/null | head -60
    fi
fi
if [ ! -e "$module/target/test-classes/dev/hybridinference/localgpu/bench/CudaThroughput.class" ]; then
    echo "== build without Maven: CMake and javac $(elapsed)"
    work="$(mktemp -d)"
    src="$module/src/main/java/dev/hybridinference/localgpu"
    bench="$module/src/test/java/dev/hybridinference/localgpu/bench"
    javac -d "$work/classes" -h "$work/headers" \
        "$src"/{LocalRuntime,CudaDevice,Precision,KvCacheType}.java \
        "$src"/internal/{NativeLoader,NativeModel,NativeEngine,NativeEngineException,GgufWriter,RandomModels}.java \
        "$bench"/{CudaThroughput,CudaCheck}.java || exit 1
    cmake -S "$module/src/main/native" -B "$work/native" -DCMAKE_BUILD_TYPE=Release -DHYBRIDINFERENCE_CUDA=ON \
        -DJAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")" \
        -DJNI_HEADERS="$work/headers" -DOUTPUT_ROOT="$work/classes" > "$work/cmake.log" 2>&1 \
        && cmake --build "$work/native" --parallel "$(nproc)" >> "$work/cmake.log" 2>&1 \
        || { tail -30 "$work/cmake.log"; exit 1; }
    classes="$work/classes"
    echo "== CUDA checks (CudaCheck) $(elapsed)"
    timeout 120 java -cp "$classes" dev.hybridinference.localgpu.bench.CudaCheck
    build=$?
fi
lib=$(ls "${classes%%:*}"/native/*/libhybridinference_local.so 2>/dev/null | head -1)
if [ -n "$lib" ]; then
    echo "library: $lib; CUDA runtime linked dynamically: $(ldd "$lib" | grep -c cudart) (0 expected)"
fi

echo "== benchmark $(elapsed)"
models="$(mktemp -d)"
timeout 150 java -Xmx24g -cp "$classes" dev.hybridinference.localgpu.bench.CudaThroughput f16,q8_0,q4_k "$models"
bench=$?
rm -rf "$models"
[ "$bench" -ne 0 ] && echo "benchmark exit $bench (124: cut at its 150 s cap)"
echo "== done $(elapsed)"
[ "$build" -eq 0 ] && [ "$bench" -eq 0 ]
