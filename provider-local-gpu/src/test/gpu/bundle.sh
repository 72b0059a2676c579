#!/usr/bin/env bash
# Packs what run.sh needs on a GPU machine that has CUDA but neither a JDK nor Maven into one archive: a
# trimmed Java runtime (jlink), the module's classes and test classes with the native library built here
# (with its CUDA backend when this machine has nvcc), the JNI headers, and every jar of the module's test
# classpath. On the GPU machine: run.sh --bundle ARCHIVE. Run from anywhere, on a machine with a JDK 17+,
# Maven and the project's dependencies; ARCHIVE defaults to gpu-bundle.tar.xz in the current folder.
#
#   provider-local-gpu/src/test/gpu/bundle.sh [ARCHIVE] [maven flags, e.g. -o]
set -euo pipefail
module="$(cd "$(dirname "$0")/../../.." && pwd)"
root="$(dirname "$module")"
archive="$(realpath -m "${1:-gpu-bundle.tar.xz}")"
shift || true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
mvn -B -ntp -q "$@" -pl sdk-core,testkit,provider-local-gpu package dependency:build-classpath \
    -DskipTests -Dmaven.javadoc.skip -Dspotless.check.skip=true -Dnative.cuda=AUTO \
    -Dmdep.outputFile="$work/classpath.txt" -Dmdep.includeScope=test
lib=$(ls "$module"/target/classes/native/*/libhybridinference_local.so)
if ! grep -q cudaGetDeviceCount "$lib"; then
    echo "note: this library has no CUDA backend (no nvcc here); run.sh --rebuild builds one on the GPU machine" >&2
fi

bundle="$work/gpu-bundle"
mkdir -p "$bundle/jars"
# The module's own classpath is the last one written: every jar of its tests, sdk-core's and testkit's too.
tr ':' '\n' < "$work/classpath.txt" | while read -r jar; do
    case "$jar" in
        *.jar) cp "$jar" "$bundle/jars/" ;;
    esac
done
cp -r "$module/target/classes" "$bundle/classes"
cp -r "$module/target/test-classes" "$bundle/test-classes"
cp -r "$module/target/native-headers" "$bundle/headers"

jdk="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"
modules=$("$jdk/bin/jdeps" --ignore-missing-deps --multi-release 17 --print-module-deps \
    -cp "$(ls "$bundle"/jars/*.jar | paste -sd:)" "$bundle"/jars/sdk-core-*.jar "$bundle/classes" "$bundle/test-classes" 2> /dev/null)
"$jdk/bin/jlink" --add-modules "$modules,java.logging,jdk.unsupported,jdk.crypto.ec" --strip-debug --no-man-pages \
    --output "$bundle/java"
tar -C "$work" -cJf "$archive" gpu-bundle
echo "$archive: $(du -h "$archive" | cut -f1) (Java modules: $modules)"
