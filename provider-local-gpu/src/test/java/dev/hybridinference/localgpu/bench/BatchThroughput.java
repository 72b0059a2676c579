package dev.hybridinference.localgpu.bench;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.localgpu.KvCacheType;
import dev.hybridinference.localgpu.LocalGpuClient;
import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.RandomModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Aggregate decode tokens per second of 1, 2, 4 and 8 concurrent streams on one client (continuous
 * batching), on a generated 76M-parameter llama model. Not a test: run it by hand, on a quiet machine.
 * Arguments: [threads] [tokens per stream] [f32|f16].
 */
public final class BatchThroughput {
    private BatchThroughput() {}

    public static void main(String[] args) throws Exception {
        int threads = args.length > 0
                ? Integer.parseInt(args[0])
                : Runtime.getRuntime().availableProcessors();
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 32;
        KvCacheType kv = args.length > 2 ? KvCacheType.of(args[2]) : KvCacheType.F32;
        Path file = Path.of(System.getProperty("java.io.tmpdir"), "batch-throughput-llama-768x12.gguf");
        if (!Files.exists(file)) {
            RandomModels.write(
                    file, new RandomModels.Shape("llama", 768, 12, 12, 4, 2048, 1024, 300, false), GgufWriter.F32, 42);
        }
        try (LocalGpuClient c = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(file)
                .threads(threads)
                .contextSize(512)
                .maxBatch(8)
                .kvCacheType(kv)
                .build()) {
            run(c, 1, 8); // warm-up
            System.out.printf(
                    Locale.ROOT,
                    "threads %d, %d tokens per stream, KV %s%n%8s %14s %18s %16s %10s%n",
                    threads,
                    tokens,
                    kv.configName(),
                    "streams",
                    "aggregate t/s",
                    "ms/token/stream",
                    "x one stream",
                    "shortest");
            double single = 0;
            for (int n : new int[] {1, 2, 4, 8}) {
                double[] r = run(c, n, tokens);
                if (n == 1) {
                    single = r[0];
                }
                System.out.printf(Locale.ROOT, "%8d %14.1f %18.1f %16.2f %10.0f%n", n, r[0], r[1], r[0] / single, r[2]);
            }
        }
    }

    /**
     * {aggregate tokens/s from the first stream's first chunk to the last stream's end, mean ms per token
     * of one stream from its first chunk to its end, shortest stream in tokens}. Counting from the first
     * chunk leaves most of the prompts out. Tokens are counted from the usage, as a chunk may hold none
     * (bytes of an unfinished character wait for the rest).
     */
    private static double[] run(LocalGpuClient c, int n, int tokens) throws Exception {
        long[] first = new long[n];
        long[] end = new long[n];
        long[] out = new long[n];
        List<Thread> readers = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ChatRequest r = ChatRequest.builder()
                    .user("stream " + i + " says")
                    .maxTokens(tokens)
                    .temperature(1.0) // greedy decoding of random weights soon reaches the end token
                    .seed(i)
                    .build();
            ChatStream s = c.stream(r);
            int k = i;
            Thread reader = new Thread(() -> {
                try (s) {
                    for (ChatChunk ch : s) {
                        if (first[k] == 0) {
                            first[k] = System.nanoTime();
                        }
                    }
                    end[k] = System.nanoTime();
                    out[k] = s.response().usage().outputTokens();
                }
            });
            reader.start();
            readers.add(reader);
        }
        for (Thread t : readers) {
            t.join();
        }
        long from = Long.MAX_VALUE;
        long to = 0;
        long total = 0;
        double perToken = 0;
        long shortest = Long.MAX_VALUE;
        for (int i = 0; i < n; i++) {
            from = Math.min(from, first[i]);
            to = Math.max(to, end[i]);
            total += out[i];
            shortest = Math.min(shortest, out[i]);
            perToken += (end[i] - first[i]) / 1e6 / Math.max(1, out[i] - 1) / n;
        }
        return new double[] {total / ((to - from) / 1e9), perToken, shortest};
    }
}
