package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Truncated, corrupted and hostile files are refused with a clear error, and the JVM lives on. */
class HostileFileTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void nativeRuntime() {
        assumeTrue(NativeLoader.unavailabilityCause() == null, "native runtime unavailable");
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private byte[] good() throws IOException {
        return Files.readAllBytes(LlamaCppOracleTest.resource("tiny-f32.gguf"));
    }

    @Test
    void badMagicAndVersionAreRefused() throws IOException {
        byte[] b = good();
        b[0] = 'X';
        assertThatThrownBy(() -> NativeModel.load(write("magic.gguf", b), 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("bad magic");
        byte[] v = good();
        v[4] = 9;
        assertThatThrownBy(() -> NativeModel.load(write("version.gguf", v), 1))
                .hasMessageContaining("unsupported GGUF version 9");
    }

    @Test
    void everyTruncationIsRefusedWithoutACrash() throws IOException {
        byte[] b = good();
        int[] cuts = {0, 10, 23, 24, 100, 1000, 5000, b.length / 2, b.length - 1};
        for (int cut : cuts) {
            byte[] t = java.util.Arrays.copyOf(b, cut);
            assertThatThrownBy(() -> NativeModel.load(write("cut" + cut + ".gguf", t), 1))
                    .as("cut at " + cut)
                    .isInstanceOf(NativeEngineException.class);
        }
    }

    @Test
    void hugeCountsAndOffsetsAreRefused() throws IOException {
        byte[] huge = good();
        ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putLong(8, Long.MAX_VALUE);
        assertThatThrownBy(() -> NativeModel.load(write("tensors.gguf", huge), 1))
                .hasMessageContaining("tensor count");
        byte[] kv = good();
        ByteBuffer.wrap(kv).order(ByteOrder.LITTLE_ENDIAN).putLong(16, -5);
        assertThatThrownBy(() -> NativeModel.load(write("kv.gguf", kv), 1)).hasMessageContaining("metadata count");
        // The first key's string length, just after the header: claim far more bytes than the file has.
        byte[] key = good();
        ByteBuffer.wrap(key).order(ByteOrder.LITTLE_ENDIAN).putLong(24, 1L << 40);
        assertThatThrownBy(() -> NativeModel.load(write("key.gguf", key), 1)).hasMessageContaining("not plausible");
    }

    @Test
    void randomCorruptionNeverTakesTheJvmDown() throws IOException {
        byte[] b = good();
        Random r = new Random(42);
        int refused = 0;
        for (int i = 0; i < 200; i++) {
            byte[] c = b.clone();
            // Corrupt the header and metadata region, where the structure lives.
            for (int k = 0; k < 4; k++) {
                c[r.nextInt(Math.min(c.length, 16_384))] = (byte) r.nextInt(256);
            }
            try (NativeModel m = NativeModel.load(write("rand.gguf", c), 1);
                    NativeModel.Session s = m.newSession(8)) {
                s.eval(new int[] {1}, 0);
            } catch (NativeEngineException e) {
                refused++;
                assertThat(e.getMessage()).isNotBlank();
            }
        }
        assertThat(refused).isPositive();
    }

    @Test
    void badCallsAreRefused() throws IOException {
        try (NativeModel m = NativeModel.load(LlamaCppOracleTest.resource("tiny-f32.gguf"), 1);
                NativeModel.Session s = m.newSession(4)) {
            assertThatThrownBy(() -> s.eval(new int[] {99_999}, 0)).hasMessageContaining("outside the vocabulary");
            assertThatThrownBy(() -> s.eval(new int[] {1, 2, 3, 4, 5}, 0))
                    .hasMessageContaining("exceed the context of 4");
            assertThatThrownBy(() -> NativeModel.load(dir.resolve("absent.gguf"), 1))
                    .hasMessageContaining("cannot open");
        }
    }

    @Test
    void loadAndCloseTwoHundredTimesDoesNotGrowMemory() throws IOException {
        Path file = LlamaCppOracleTest.resource("tiny-f32.gguf");
        long before = rssKb();
        for (int i = 0; i < 200; i++) {
            try (NativeModel m = NativeModel.load(file, 2);
                    NativeModel.Session s = m.newSession(256)) {
                s.eval(new int[] {1, 2}, 0);
            }
        }
        long after = rssKb();
        // Each cycle maps 0.5 MB and allocates a 256-position cache; 200 leaked cycles would be > 100 MB.
        assertThat(after - before).as("resident memory growth in KiB").isLessThan(20_000);
    }

    private static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        return 0;
    }
}
