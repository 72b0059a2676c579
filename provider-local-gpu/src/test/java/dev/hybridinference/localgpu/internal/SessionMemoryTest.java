package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.localgpu.KvCacheType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A session's KV cache (and its attention scratch) takes the process's memory as its positions fill, not
 * when the session is made: making one costs no time however long its context, and a client can hold many
 * whose contexts are long while their conversations are short.
 */
class SessionMemoryTest {
    /** 2 layers x 2 KV heads x 64 values x 4 bytes, keys and values: 2 KiB a position, 195 MiB in all. */
    private static final int CONTEXT = 100_000;

    private static final long MIB = 1 << 20;

    @TempDir
    static Path dir;

    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
        assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "no /proc/self/status to read the memory from");
    }

    @Test
    void aSessionsCacheTakesMemoryAsItsPositionsFill() throws IOException {
        Path file = dir.resolve("memory.gguf");
        RandomModels.write(
                file, new RandomModels.Shape("llama", 256, 2, 4, 2, 512, 256, 300, false), GgufWriter.F32, 9);
        int[] prompt = IntStream.range(0, 64).map(i -> 1 + i * 7 % 299).toArray();
        try (NativeModel m = NativeModel.load(file, 1)) {
            assertThat(m.sessionBytes(CONTEXT, KvCacheType.F32)).isGreaterThan(195 * MIB);
            long before = rssBytes();
            try (NativeModel.Session a = m.newSession(CONTEXT);
                    NativeModel.Session b = m.newSession(CONTEXT, KvCacheType.F16)) {
                assertThat(rssBytes() - before)
                        .as("the memory two new sessions of %d positions took", CONTEXT)
                        .isLessThan(32 * MIB);
                float[] logits = a.eval(prompt, 0);
                float[] halves = b.eval(prompt, 0);
                assertThat(rssBytes() - before)
                        .as("the memory two sessions of %d positions took after 64 of them", CONTEXT)
                        .isLessThan(32 * MIB);
                // The long caches compute what a short one does.
                try (NativeModel.Session small = m.newSession(128);
                        NativeModel.Session smallHalves = m.newSession(128, KvCacheType.F16)) {
                    assertThat(logits).containsExactly(small.eval(prompt, 0));
                    assertThat(halves).containsExactly(smallHalves.eval(prompt, 0));
                }
            }
        }
    }

    private static long rssBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }
}
