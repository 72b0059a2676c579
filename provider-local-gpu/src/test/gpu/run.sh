#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: runs the CUDA tests, then the decode/prefill benchmark on ~1B-parameter
# generated models (F16, Q8_0, Q4_K) with the launch settings below, and the rate of single products
# (CudaProductRates), and prints the figures. Meant to finish within 6 minutes on a 16-core machine.
#
# Three ways to get the classes and the library:
#   run.sh [maven flags, e.g. -o]     Maven builds the module with its CUDA backend and runs the JUnit tests
#                                     (CudaBackendTest, LocalGpuCudaTest, CudaDecodingTest, LocalGpuDeviceTest).
#   run.sh --bundle ARCHIVE [--rebuild]
#                                     for a machine with CUDA but no JDK or Maven: ARCHIVE is what bundle.sh
#                                     packed on a build machine (a Java runtime, the classes, the test jars and
#                                     the library); GpuTests runs the same JUnit tests. --rebuild builds the
#                                     library here with CMake and nvcc instead of using the packed one.
#   (no Maven, no bundle)             CMake and javac build the library and the few classes the engine needs,
#                                     and CudaCheck runs the main comparisons without JUnit.
# Environment: PROFILE=1 adds Nsight Compute's per-kernel times of one decoding step (when ncu is there) of
# each of PROFILE_TYPES (default f16), with the settings PROFILE_SETTING (comma-separated, default none);
# VARIANTS, settings separated by spaces, runs the benchmark again with each (a setting of several
# variables joins them with commas); by default the settings not yet measured (weights prefetched into L2,
# the integer products of precision fast, RoPE in the Q/K/V product), each alone and all together, and no
# CUDA graphs. TEST_VARIANTS, likewise, runs CudaBackendTest again with each (with --bundle), by default
# with the three new settings on.
set -uo pipefail
module="$(cd "$(dirname "$0")/../../.." && pwd)"
root="$(dirname "$module")"
start=$(date +%s)
elapsed() { echo "[$(($(date +%s) - start)) s]"; }
tests='dev.hybridinference.localgpu.internal.CudaDecodingTest dev.hybridinference.localgpu.internal.CudaBackendTest'
tests="$tests dev.hybridinference.localgpu.LocalGpuCudaTest dev.hybridinference.localgpu.LocalGpuDeviceTest"

echo "== devices $(elapsed)"
nvidia-smi --query-gpu=index,name,memory.total,memory.free,driver_version,clocks.max.memory --format=csv,noheader 2>&1 \
    || echo "nvidia-smi not available"
nvcc --version 2>&1 | tail -1 || echo "nvcc not found: the CUDA backend cannot be built here"
if python3 -c 'import torch' 2> /dev/null; then
    # The card's measured ceilings, for comparison with the peak from its memory clock and bus width: a
    # device-to-device copy (bytes read plus written) and a sum over 4 GiB (bytes read).
    python3 - << 'EOF'
import torch
x = torch.randn(1 << 30, device="cuda")  # 4 GiB
y = torch.empty_like(x)
def median_rate(f, bytes_moved):
    times = []
    for _ in range(8):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); f(); b.record(); torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    times.sort()
    return bytes_moved / times[len(times) // 2] / 1e9
print("measured: copy %.0f GB/s (read + write), sum %.0f GB/s (read), median of 8"
      % (median_rate(lambda: y.copy_(x), 8 * x.numel()), median_rate(lambda: x.sum(), 4 * x.numel())))
EOF
fi

java=java
classes="$module/target/classes:$module/target/test-classes"
build=1
if [ "${1:-}" = "--bundle" ]; then
    echo "== unpack $2 $(elapsed)"
    work="$(mktemp -d)"
    tar -C "$work" -xJf "$2" || exit 1
    b="$work/gpu-bundle"
    java="$b/java/bin/java"
    if [ "${3:-}" = "--rebuild" ] || ! grep -q cudaGetDeviceCount "$b"/classes/native/*/libhybridinference_local.so; then
        echo "== build the library with CMake $(elapsed)"
        cmake -S "$module/src/main/native" -B "$work/native" -DCMAKE_BUILD_TYPE=Release -DHYBRIDINFERENCE_CUDA=ON \
            -DJAVA_HOME="$b/java" -DJNI_HEADERS="$b/headers" -DOUTPUT_ROOT="$b/classes" > "$work/cmake.log" 2>&1 \
            && cmake --build "$work/native" --parallel "$(nproc)" >> "$work/cmake.log" 2>&1 \
            || { tail -30 "$work/cmake.log"; exit 1; }
    fi
    classes="$b/classes:$b/test-classes:$b/jars/*"
    echo "== CUDA tests (GpuTests) $(elapsed)"
    # shellcheck disable=SC2086
    timeout 120 "$java" -cp "$classes" dev.hybridinference.localgpu.bench.GpuTests $tests
    build=$?
    new_settings=HYBRIDINFERENCE_CUDA_INTEGER=1,HYBRIDINFERENCE_CUDA_PREFETCH=1,HYBRIDINFERENCE_CUDA_FUSE_ROPE=1
    for setting in ${TEST_VARIANTS-$new_settings}; do
        echo "== CudaBackendTest with $setting $(elapsed)"
        env $(echo "$setting" | tr "," " ") timeout 60 "$java" -cp "$classes" dev.hybridinference.localgpu.bench.GpuTests \
            dev.hybridinference.localgpu.internal.CudaBackendTest | grep -v '^ok '
    done
elif command -v mvn > /dev/null; then
    echo "== build and CUDA tests (Maven) $(elapsed)"
    cd "$root"
    timeout 240 mvn -B -ntp -q "$@" -pl sdk-core,testkit,provider-local-gpu verify \
        -Dmaven.javadoc.skip -Dspotless.check.skip=true -Dnative.cuda=ON \
        -Dtest="$(echo $tests | tr ' ' ',')" -Dsurefire.failIfNoSpecifiedTests=false
    build=$?
    for f in "$module"/target/surefire-reports/*.txt; do
        [ -e "$f" ] && grep -h 'Tests run' "$f"
    done
    # A skipped class says why (no device, no driver) in its report.
    grep -ho 'Assumption failed: [^]]*' "$module"/target/surefire-reports/*.xml 2> /dev/null | sort -u | head -5
    if [ "$build" -ne 0 ]; then
        echo "Maven build or tests failed (exit $build); failures, if any ran:"
        grep -h -A8 '<failure\|<error' "$module"/target/surefire-reports/*.xml 2> /dev/null | head -60
    fi
else
    echo "== build without Maven: CMake and javac $(elapsed)"
    work="$(mktemp -d)"
    src="$module/src/main/java/dev/hybridinference/localgpu"
    bench="$module/src/test/java/dev/hybridinference/localgpu/bench"
    javac -d "$work/classes" -h "$work/headers" \
        "$src"/{LocalRuntime,CudaDevice,Precision,KvCacheType}.java \
        "$src"/internal/{NativeLoader,NativeModel,NativeEngine,NativeEngineException,GgufWriter,RandomModels,Sampler}.java \
        "$bench"/{CudaThroughput,CudaProductRates,CudaCheck}.java || exit 1
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
lib=$(ls "${classes%%:*}"/native/*/libhybridinference_local.so 2> /dev/null | head -1)
if [ -n "$lib" ]; then
    echo "library: CUDA runtime linked dynamically: $(ldd "$lib" | grep -c cudart) (0 expected)"
fi

echo "== benchmark $(elapsed)"
models="$(mktemp -d)"
# The card's clocks and load while the benchmarks run, every 100 ms (summed up at the end).
nvidia-smi --query-gpu=clocks.sm,clocks.mem,utilization.gpu,power.draw --format=csv,noheader,nounits -lms 100 \
    > "$models/clocks.csv" 2> /dev/null &
sampler=$!
timeout 150 "$java" -Xmx24g -cp "$classes" dev.hybridinference.localgpu.bench.CudaThroughput f16,q8_0,q4_k "$models"
bench=$?
[ "$bench" -ne 0 ] && echo "benchmark exit $bench (124: cut at its cap)"
echo "== one product at a time $(elapsed)"
timeout 60 "$java" -cp "$classes" dev.hybridinference.localgpu.bench.CudaProductRates || echo "product rates exit $?"
# The same with other settings, one run each.
default_variants="HYBRIDINFERENCE_CUDA_PREFETCH=1 HYBRIDINFERENCE_CUDA_INTEGER=1 HYBRIDINFERENCE_CUDA_FUSE_ROPE=1"
default_variants="$default_variants HYBRIDINFERENCE_CUDA_PREFETCH=1,HYBRIDINFERENCE_CUDA_INTEGER=1,HYBRIDINFERENCE_CUDA_FUSE_ROPE=1"
default_variants="$default_variants HYBRIDINFERENCE_CUDA_GRAPHS=0"
for setting in ${VARIANTS-$default_variants}; do
    echo "== the same with $setting $(elapsed)"
    env $(echo "$setting" | tr "," " ") timeout 60 "$java" -Xmx24g -DcudaThroughput.warmupSeconds=1 -cp "$classes" \
        dev.hybridinference.localgpu.bench.CudaThroughput f16,q8_0,q4_k "$models" | tail -3
done
if [ "${PROFILE:-0}" = "1" ] && command -v ncu > /dev/null; then
    for type in ${PROFILE_TYPES:-f16}; do
        echo "== kernel times of one $type decoding step (Nsight Compute) $(elapsed)"
        # Skipped: the warm-up's 64-token pass (110 kernels: embedding, 18 layers of 6, the output) and
        # decoding step, and the one-token prompt before the first measured decoding (one kernel fewer a
        # layer with RoPE in the Q/K/V product); profiled: the first measured decoding step.
        step=110
        case "${PROFILE_SETTING:-}" in *FUSE_ROPE=1*) step=92 ;; esac
        env $(echo "${PROFILE_SETTING:-}" | tr "," " ") \
            timeout 90 ncu --clock-control none --launch-skip $((110 + 2 * step)) --launch-count $step --csv --print-units base \
            --metrics gpu__time_duration.sum,dram__bytes_read.sum \
            "$java" -Xmx24g -DcudaThroughput.warmupSeconds=0 -cp "$classes" dev.hybridinference.localgpu.bench.CudaThroughput \
            "$type" "$models" 64 4 \
            > "$models/ncu.csv" 2> "$models/ncu.err"
        echo "ncu exit $?"
        python3 - "$models/ncu.csv" << 'EOF' || tail -5 "$models/ncu.err"
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head, rows = rows[0], rows[1:]
ki, mi, vi = head.index("Kernel Name"), head.index("Metric Name"), head.index("Metric Value")
agg = collections.defaultdict(lambda: collections.defaultdict(float))
count = collections.Counter()
for r in rows:
    name = r[ki].split("(")[0].split("<")[0].split("::")[-1]
    key = name + ("<" + r[ki].split("<", 1)[1].split(">")[0] + ">" if "<" in r[ki] else "")
    agg[key][r[mi]] += float(r[vi].replace(",", ""))
    if r[mi] == "gpu__time_duration.sum":
        count[key] += 1
print("%-40s %6s %10s %10s %8s" % ("kernel", "count", "total us", "MB read", "GB/s"))
total = 0
for k, v in sorted(agg.items(), key=lambda kv: -kv[1]["gpu__time_duration.sum"]):
    t = v["gpu__time_duration.sum"] / 1e3
    total += t
    mb = v["dram__bytes_read.sum"] / 1e6
    print("%-40s %6d %10.1f %10.1f %8.0f" % (k[:40], count[k], t, mb, mb / t * 1e3 if t else 0))
print("all kernels: %.1f us" % total)
EOF
    done
fi
kill "$sampler" 2> /dev/null
python3 - "$models/clocks.csv" << 'EOF' 2> /dev/null
import sys
rows = [[float(v) for v in line.split(",")] for line in open(sys.argv[1]) if line.count(",") == 3]
busy = [r for r in rows if r[2] >= 50]
if busy:
    sm = sorted(r[0] for r in busy)
    print("while busy (%d samples of 100 ms at >= 50%% load): SM clock %d to %d MHz (median %d), memory %d MHz, %d W at most"
          % (len(busy), sm[0], sm[-1], sm[len(sm) // 2], busy[0][1], max(r[3] for r in busy)))
EOF
rm -rf "$models"
echo "== done $(elapsed)"
[ "$build" -eq 0 ] && [ "$bench" -eq 0 ]
