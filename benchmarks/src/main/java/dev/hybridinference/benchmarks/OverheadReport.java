package dev.hybridinference.benchmarks;

import java.lang.management.ManagementFactory;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.util.Statistics;

/**
 * Runs {@link VllmOverheadBenchmark} with 1 and 8 threads and prints the SDK-to-bare ratios of mean and
 * p99 latency, then measures the bytes the calling thread allocates per call for each client.
 *
 * <p>Arguments (all optional): {@code warmupSeconds measureSeconds iterations forks}; defaults {@code 2 3
 * 5 1}.
 */
public final class OverheadReport {
    private OverheadReport() {}

    /**
     * Runs the report.
     *
     * @param args optional {@code warmupSeconds measureSeconds iterations forks}
     */
    public static void main(String[] args) throws Exception {
        RunLength length = RunLength.parse(args, new RunLength(2, 3, 5, 1));
        StringBuilder report = new StringBuilder();
        report.append(String.format(
                Locale.ROOT,
                "%-10s %-8s %12s %12s %12s %12s %8s %8s%n",
                "mode",
                "threads",
                "bare mean",
                "sdk mean",
                "bare p99",
                "sdk p99",
                "mean x",
                "p99 x"));
        for (int threads : new int[] {1, 8}) {
            Map<String, Statistics> stats = run(threads, length);
            for (String mode : new String[] {"blocking", "streaming"}) {
                Statistics bare = stats.get(mode + "Bare");
                Statistics sdk = stats.get(mode + "Sdk");
                report.append(String.format(
                        Locale.ROOT,
                        "%-10s %-8d %10.1fus %10.1fus %10.1fus %10.1fus %8.3f %8.3f%n",
                        mode,
                        threads,
                        bare.getMean(),
                        sdk.getMean(),
                        bare.getPercentile(99),
                        sdk.getPercentile(99),
                        sdk.getMean() / bare.getMean(),
                        sdk.getPercentile(99) / bare.getPercentile(99)));
            }
        }
        report.append(paired());
        report.append(allocation());
        System.out.println();
        System.out.println("=== vLLM provider overhead against bare OkHttp + Jackson (same loopback server) ===");
        System.out.print(report);
    }

    private static Map<String, Statistics> run(int threads, RunLength length) throws RunnerException {
        Options opts = length.options(VllmOverheadBenchmark.class.getName() + "\\.", threads)
                .build();
        return RunLength.run(opts);
    }

    /**
     * A paired check on 1 and 8 threads: rounds alternate bare and SDK calls in the same JVM, so slow
     * phases of the machine hit both alike; the first rounds warm up and are dropped.
     */
    private static String paired() throws Exception {
        VllmOverheadBenchmark.Env env = new VllmOverheadBenchmark.Env();
        env.setUp();
        try {
            StringBuilder out = new StringBuilder(
                    String.format(Locale.ROOT, "%npaired: 24 alternating rounds after 6 warm-up rounds, same JVM%n"));
            for (int threads : new int[] {1, 8}) {
                for (String mode : new String[] {"blocking", "streaming"}) {
                    int calls = mode.equals("blocking") ? 2000 : 600;
                    double bare = 0;
                    double sdk = 0;
                    for (int round = 0; round < 30; round++) {
                        double b = timeRound(mode + "Bare", env, calls, threads);
                        double s = timeRound(mode + "Sdk", env, calls, threads);
                        if (round >= 6) {
                            bare += b;
                            sdk += s;
                        }
                    }
                    out.append(String.format(
                            Locale.ROOT,
                            "  %d thread(s) %-10s bare %.1f us/call, sdk %.1f us/call, ratio %.3f%n",
                            threads,
                            mode + ":",
                            bare / 24,
                            sdk / 24,
                            sdk / bare));
                }
            }
            return out.toString();
        } finally {
            env.tearDown();
        }
    }

    /** Mean latency in microseconds of one variant's calls, {@code calls} per thread on {@code threads} threads. */
    private static double timeRound(String variant, VllmOverheadBenchmark.Env env, int calls, int threads)
            throws Exception {
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(threads);
        try {
            java.util.List<java.util.concurrent.Future<Long>> parts = new java.util.ArrayList<>();
            for (int t = 0; t < threads; t++) {
                parts.add(pool.submit(() -> {
                    long t0 = System.nanoTime();
                    for (int i = 0; i < calls; i++) {
                        call(variant, env);
                    }
                    return System.nanoTime() - t0;
                }));
            }
            long total = 0;
            for (java.util.concurrent.Future<Long> f : parts) {
                total += f.get();
            }
            return total / 1e3 / calls / threads;
        } finally {
            pool.shutdown();
        }
    }

    /** Bytes allocated by the calling thread per call, after a warm-up, for each client. */
    private static String allocation() throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        VllmOverheadBenchmark.Env env = new VllmOverheadBenchmark.Env();
        env.setUp();
        try {
            long tid = Thread.currentThread().getId();
            Map<String, Long> perCall = new LinkedHashMap<>();
            int calls = 20_000;
            for (String variant : new String[] {"blockingBare", "blockingSdk", "streamingBare", "streamingSdk"}) {
                for (int i = 0; i < calls; i++) {
                    call(variant, env);
                }
                long before = mx.getThreadAllocatedBytes(tid);
                for (int i = 0; i < calls; i++) {
                    call(variant, env);
                }
                perCall.put(variant, (mx.getThreadAllocatedBytes(tid) - before) / calls);
            }
            return String.format(
                    Locale.ROOT,
                    "%nallocated by the calling thread per call (1 thread, %d calls after %d warm-up calls):%n"
                            + "  blocking:  bare %d B, sdk %d B, ratio %.3f%n"
                            + "  streaming: bare %d B, sdk %d B, ratio %.3f%n",
                    calls,
                    calls,
                    perCall.get("blockingBare"),
                    perCall.get("blockingSdk"),
                    (double) perCall.get("blockingSdk") / perCall.get("blockingBare"),
                    perCall.get("streamingBare"),
                    perCall.get("streamingSdk"),
                    (double) perCall.get("streamingSdk") / perCall.get("streamingBare"));
        } finally {
            env.tearDown();
        }
    }

    private static void call(String variant, VllmOverheadBenchmark.Env env) throws Exception {
        String text;
        switch (variant) {
            case "blockingBare":
                text = VllmOverheadBenchmark.bareBlocking(env);
                break;
            case "blockingSdk":
                text = VllmOverheadBenchmark.sdkBlocking(env);
                break;
            case "streamingBare":
                text = VllmOverheadBenchmark.bareStreaming(env);
                break;
            default:
                text = VllmOverheadBenchmark.sdkStreaming(env);
                break;
        }
        if (!text.startsWith("word0")) {
            throw new IllegalStateException(variant + " returned an unexpected answer: " + text);
        }
    }
}
