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
        NativeRuntimeTests.assumeLoaded();
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
        // Warm up first, so that one-time costs (JIT, the heap growing) are not counted as growth.
        for (int i = 0; i < 20; i++) {
            try (NativeModel m = NativeModel.load(file, 2);
                    NativeModel.Session s = m.newSession(256)) {
                s.eval(new int[] {1, 2}, 0);
            }
        }
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

    @Test
    void aTensorOfAnUnsupportedTypeIsNamed() throws IOException {
        Path p = dir.resolve("q4_0.gguf");
        RandomModels.Shape shape = new RandomModels.Shape("llama", 256, 1, 4, 2, 256, 32, 300, true);
        RandomModels.write(p, shape, GgufWriter.F32, 1);
        byte[] b = Files.readAllBytes(p);
        int at = indexOf(b, "token_embd.weight".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        // name, then n_dims (4), two dims (16), then the type id: make token_embd Q5_0 (type 6).
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at + 17 + 4 + 16, 6);
        assertThatThrownBy(() -> NativeModel.load(write("retyped.gguf", b), 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("token_embd.weight has type Q5_0, which is not supported")
                .hasMessageContaining("F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K");
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at + 17 + 4 + 16, 99);
        assertThatThrownBy(() -> NativeModel.load(write("unknown-type.gguf", b), 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("token_embd.weight");
    }

    @Test
    void anOffsetPastTheEndIsRefused() throws IOException {
        Path p = dir.resolve("offset.gguf");
        RandomModels.write(p, new RandomModels.Shape("llama", 256, 1, 4, 2, 256, 32, 300, true), GgufWriter.F32, 1);
        byte[] b = Files.readAllBytes(p);
        int at = indexOf(b, "output_norm.weight".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        // name (18), n_dims (4), one dim (8), type (4), then the offset.
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at + 18 + 4 + 8 + 4, 1L << 40);
        assertThatThrownBy(() -> NativeModel.load(write("offset-bad.gguf", b), 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("output_norm.weight: data runs past the end of the file");
    }

    /** A small valid model, changed by {@code edit} before it is written. */
    private Path model(String name, java.util.function.Consumer<GgufWriter> edit) throws IOException {
        Path p = dir.resolve(name);
        RandomModels.write(p, new RandomModels.Shape("llama", 64, 1, 4, 4, 64, 32, 300, true), GgufWriter.F32, 1, edit);
        return p;
    }

    @Test
    void aContextLengthPastThirtyOneBitsIsRefused() throws IOException {
        // 2^31 as UINT32: a 32-bit signed context would turn negative.
        assertThatThrownBy(() -> NativeModel.load(model("ctx31.gguf", w -> w.put("llama.context_length", 1 << 31)), 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("context_length 2147483648 is not plausible");
        assertThatThrownBy(() ->
                        NativeModel.load(model("ctx64.gguf", w -> w.put("llama.context_length", Long.MAX_VALUE)), 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("context_length 9223372036854775807 is not plausible");
        // The largest that fits is a valid trained context; the provider runs at most 4096 unless told.
        Path widest = model("ctx-max.gguf", w -> w.put("llama.context_length", Integer.MAX_VALUE));
        try (NativeModel m = NativeModel.load(widest, 1)) {
            assertThat(m.trainedContext()).isEqualTo(Integer.MAX_VALUE);
        }
        try (dev.hybridinference.localgpu.LocalGpuClient c = dev.hybridinference.localgpu.LocalGpuClient.builder()
                .device("cpu")
                .modelPath(widest)
                .threads(1)
                .build()) {
            assertThat(c.contextSize()).isEqualTo(4096);
        }
    }

    @Test
    void aTensorWhoseElementCountOverflowsIsRefused() throws IOException {
        long d = 1L << 40;
        // 2^160 elements: the old 128-bit byte count wrapped to zero and the tensor passed as empty.
        Path f32 = model(
                "4d.gguf", w -> w.rawTensor("huge.weight", GgufWriter.F32, new long[] {d, d, d, d}, new byte[32]));
        assertThatThrownBy(() -> NativeModel.load(f32, 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("tensor huge.weight: shape 1099511627776 x 1099511627776 x 1099511627776"
                        + " x 1099511627776 has more than 2^48 elements");
        // A type the engine does not compute is never sized, but its shape is checked all the same.
        Path q40 = model("4d-q4_0.gguf", w -> w.rawTensor("huge.weight", 2, new long[] {d, 1, d, d}, new byte[32]));
        assertThatThrownBy(() -> NativeModel.load(q40, 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("has more than 2^48 elements");
        // Under the bound, a shape whose bytes the file does not hold is refused as before.
        Path big = model(
                "big.gguf",
                w -> w.rawTensor("big.weight", GgufWriter.F32, new long[] {1 << 24, 1 << 24}, new byte[32]));
        assertThatThrownBy(() -> NativeModel.load(big, 1)).hasMessageContaining("big.weight: data runs past the end");
    }

    @Test
    void headSizesWhoseProductWrapsAroundAreRefused() throws IOException {
        // 4 heads of 2^62 + 16: the product wraps to 64, the width the tensors have, so only the bound on
        // the head size stops the attention from running past its buffers.
        long wraps = (1L << 62) + 16;
        Path p = model(
                "heads.gguf",
                w -> w.put("llama.attention.key_length", wraps).put("llama.attention.value_length", wraps));
        assertThatThrownBy(() -> NativeModel.load(p, 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("head size 4611686018427387920 is not plausible");
        Path heads = model(
                "head-count.gguf",
                w -> w.put("llama.attention.head_count", 1 << 20).put("llama.attention.head_count_kv", 1 << 20));
        assertThatThrownBy(() -> NativeModel.load(heads, 1))
                .hasMessageContaining("head_count 1048576 is not plausible");
        Path ffn = model("ffn.gguf", w -> w.put("llama.feed_forward_length", -1));
        assertThatThrownBy(() -> NativeModel.load(ffn, 1))
                .hasMessageContaining("feed_forward_length 4294967295 is not plausible");
    }

    @Test
    void aVocabularyPastThirtyOneBitsIsRefused() throws IOException {
        String fs = Files.getFileStore(dir).type();
        assumeTrue(
                java.util.Set.of("ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs")
                        .contains(fs),
                "needs a file system with sparse files, got " + fs);
        // 2^31 rows of two F16 values: 8 GiB of embeddings, held by a sparse file.
        long rows = 1L << 31;
        GgufWriter w = new GgufWriter()
                .put("general.architecture", "llama")
                .put("llama.context_length", 8)
                .put("llama.embedding_length", 2)
                .put("llama.block_count", 1)
                .put("llama.feed_forward_length", 2)
                .put("llama.attention.head_count", 1)
                .put("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .rawTensor("token_embd.weight", GgufWriter.F16, new long[] {2, rows}, new byte[32]);
        Path p = dir.resolve("vocab.gguf");
        w.write(p);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(f.length() + rows * 4);
        }
        assertThatThrownBy(() -> NativeModel.load(p, 1))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("vocabulary of 2147483648 tokens is not plausible");
    }

    @Test
    void aKvCacheLargerThanTheMachinesMemoryIsRefused() throws IOException {
        Path tiny = LlamaCppOracleTest.resource("tiny-f32.gguf");
        try (NativeModel m = NativeModel.load(tiny, 1)) {
            assertThat(m.sessionBytes(256)).isPositive();
            // layers x 2^31 positions x the KV width: terabytes, and more than 32 bits of bytes.
            assertThatThrownBy(() -> m.newSession(Integer.MAX_VALUE))
                    .isInstanceOf(NativeEngineException.class)
                    .hasMessageContaining("a context of 2147483647 tokens needs")
                    .hasMessageContaining("of KV cache, more than this machine's");
            assertThatThrownBy(() -> m.sessionBytes(0)).hasMessageContaining("context size 0 must be between 1");
        }
        // The provider refuses such a context when it is built, not at its first call.
        assertThatThrownBy(() -> dev.hybridinference.localgpu.LocalGpuClient.builder()
                        .device("cpu")
                        .modelPath(tiny)
                        .threads(1)
                        .contextSize(Integer.MAX_VALUE)
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("a context of 2147483647 tokens needs");
    }

    @Test
    void theJavaMetadataReaderRefusesHostileFilesToo() throws IOException {
        byte[] huge = good();
        ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putLong(24, 1L << 40);
        assertThatThrownBy(() -> dev.hybridinference.localgpu.GgufMetadata.read(write("jkey.gguf", huge)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("exceeds the file");
        byte[] cut = java.util.Arrays.copyOf(good(), 2000);
        assertThatThrownBy(() -> dev.hybridinference.localgpu.GgufMetadata.read(write("jcut.gguf", cut)))
                .isInstanceOf(IllegalArgumentException.class);
        var meta = dev.hybridinference.localgpu.GgufMetadata.read(LlamaCppOracleTest.resource("tiny-f32.gguf"));
        assertThat(meta.string("general.architecture")).contains("llama");
        assertThat(meta.strings("tokenizer.ggml.tokens").orElseThrow()).hasSize(292);
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
