package dev.hybridinference.benchmarks;

import dev.hybridinference.localgpu.LocalRuntime;
import dev.hybridinference.localgpu.Precision;
import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.NativeModel;
import dev.hybridinference.localgpu.internal.RandomModels;
import dev.hybridinference.localgpu.internal.Sampler;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Tokens per second of the local runtime: prefill of 128 tokens and decode of 64, with 1 and 2 threads,
 * the memory the model takes, and decode speed as a fraction of the memory-bandwidth bound (weight
 * bytes read per token against a read bandwidth measured in the same run).
 *
 * <p>With GGUF paths as arguments it measures those; without, it generates random-weight llama models
 * of dim 768, 12 layers, 12 heads, 4 KV heads, FFN 2048, context 1024 and a 300-token vocabulary in
 * F32, F16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K, in a temporary folder it deletes afterwards. Models with
 * quantized weights are measured in both precisions, exact and fast.
 */
public final class LocalTokensPerSecond {
    private static final int PREFILL = 128;
    private static final int DECODE = 64;

    private LocalTokensPerSecond() {}

    /**
     * Runs the harness.
     *
     * @param args GGUF files to measure; none for the generated set
     */
    public static void main(String[] args) throws Exception {
        LocalRuntime.ensureAvailability();
        System.out.println("CPU kernels: " + LocalRuntime.cpuFeatures() + ", cores: "
                + Runtime.getRuntime().availableProcessors());
        System.out.printf(
                Locale.ROOT,
                "read bandwidth of a 512 MB buffer: %.1f GB/s with 1 thread, %.1f GB/s with 2%n"
                        + "(each row's bound uses the bandwidth measured over a buffer the size of that model's weights,%n"
                        + " with the same thread count: a model that fits in the last-level cache is read from there)%n%n",
                NativeModel.readBandwidth(512L << 20, 1, 5),
                NativeModel.readBandwidth(512L << 20, 2, 5));
        List<Path> models = new ArrayList<>();
        Path tmp = null;
        if (args.length > 0) {
            for (String a : args) {
                models.add(Path.of(a));
            }
        } else {
            tmp = Files.createTempDirectory("tps-models");
            RandomModels.Shape shape = new RandomModels.Shape("llama", 768, 12, 12, 4, 2048, 1024, 300, false);
            String[] names = {"F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"};
            int[] types = {
                GgufWriter.F32,
                GgufWriter.F16,
                GgufWriter.Q8_0,
                GgufWriter.Q4_0,
                GgufWriter.Q4_K,
                GgufWriter.Q5_K,
                GgufWriter.Q6_K
            };
            for (int i = 0; i < types.length; i++) {
                Path p = tmp.resolve("llama-768x12-" + names[i] + ".gguf");
                RandomModels.write(p, shape, types[i], 42);
                models.add(p);
            }
        }
        System.out.printf(
                Locale.ROOT,
                "%-26s %9s %7s %10s %12s %12s %10s %10s %12s%n",
                "model",
                "precision",
                "threads",
                "weights MB",
                "prefill t/s",
                "decode t/s",
                "RSS +MB",
                "BW GB/s",
                "of BW bound");
        try {
            for (Path p : models) {
                String name = p.getFileName().toString();
                boolean floats = name.contains("F32") || name.contains("F16");
                for (Precision precision : floats ? new Precision[] {Precision.FAST} : Precision.values()) {
                    for (int threads : new int[] {1, 2}) {
                        measure(p, threads, precision);
                    }
                }
            }
        } finally {
            if (tmp != null) {
                for (Path p : models) {
                    Files.deleteIfExists(p);
                }
                Files.deleteIfExists(tmp);
            }
        }
    }

    private static void measure(Path file, int threads, Precision precision) throws IOException {
        long before = rssKb();
        try (NativeModel m = NativeModel.load(file, threads, precision);
                NativeModel.Session s = m.newSession(PREFILL + DECODE + 8)) {
            int[] prompt = new Random(1).ints(PREFILL, 0, m.vocabSize()).toArray();
            // Warm up the caches and the thread pool on a short run first.
            try (NativeModel.Session warm = m.newSession(8)) {
                warm.eval(new int[] {1, 2, 3, 4}, 0);
            }
            long t0 = System.nanoTime();
            float[] logits = s.eval(prompt, 0);
            long t1 = System.nanoTime();
            int pos = PREFILL;
            for (int i = 0; i < DECODE; i++) {
                int next = Sampler.argmax(logits);
                logits = s.eval(new int[] {next}, pos++);
            }
            long t2 = System.nanoTime();
            double prefill = PREFILL / ((t1 - t0) / 1e9);
            double decode = DECODE / ((t2 - t1) / 1e9);
            double bandwidth = NativeModel.readBandwidth(Math.max(m.weightBytes(), 1L << 20), threads, 5);
            double bound = bandwidth * 1e9 / m.weightBytes();
            long rss = rssKb() - before;
            System.out.printf(
                    Locale.ROOT,
                    "%-26s %9s %7d %10.1f %12.1f %12.1f %10.1f %10.1f %11.0f%%%n",
                    file.getFileName(),
                    precision.configName(),
                    threads,
                    m.weightBytes() / 1e6,
                    prefill,
                    decode,
                    rss / 1024.0,
                    bandwidth,
                    100 * decode / bound);
        }
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
