package dev.hybridinference.benchmarks;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.util.Statistics;

/**
 * Runs {@link VllmOverheadBenchmark} with 1 and 8 threads and prints the SDK-to-bare ratios of mean and
 * p99 latency, then measures the bytes the calling thread allocates per call for each client.
 *
 * <p>Arguments (all optional): {@code warmupSeconds measureSeconds iterations forks}; defaults {@code 2 3
 * 5 1}. With {@code paired [repeats]} instead, only the paired check and the allocation are run, {@code
 * repeats} times (default 1): about a minute each, for before-and-after comparisons on a noisy machine;
 * with {@code allocation}, only the allocation.
 */
public final class OverheadReport {
    private OverheadReport() {}

    /**
     * Runs the report.
     *
     * @param args optional {@code warmupSeconds measureSeconds iterations forks}
     */
    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("allocation")) {
            System.out.print(allocation());
            return;
        }
        if (args.length > 0 && args[0].equals("paired")) {
            int repeats = args.length > 1 ? Integer.parseInt(args[1]) : 1;
            for (int i = 1; i <= repeats; i++) {
                System.out.println("=== paired run " + i + " of " + repeats + " ===");
                System.out.print(paired());
                System.out.print(allocation());
                System.out.flush();
            }
            return;
        }
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

    /** Rounds of the paired check that are measured, after {@link #WARM_ROUNDS} that are not. */
    private static final int ROUNDS = 40;

    private static final int WARM_ROUNDS = 8;

    /** The variants of each mode: the SDK, bare OkHttp + Jackson as the issue measures it, and strict bare. */
    private static final String[] KINDS = {"Sdk", "Bare", "BareUrl"};

    /**
     * A paired check on 1 and 8 threads. Each round runs a short block of calls of the SDK and of the two
     * baselines in turn, the order rotating, in the same JVM, and times every call; a slow phase of a
     * shared machine (another process's build) then falls on all three alike rather than on one. Blocks
     * rather than single calls alternate so that each client runs warm, as it does in an application
     * that makes many calls: alternating call by call penalizes whichever client has the most code. The
     * baselines are bare OkHttp + Jackson as the issue measures it (the URL given as a string, parsed on
     * each call) and a strict one that parses the URL once, as the SDK does.
     *
     * <p>Prints, against each baseline, the ratio of the mean latencies and of the median latencies over
     * all measured calls, and the quartiles of the per-round ratios of medians: their spread is the noise
     * of the machine during the run. Means carry the rare stalls of a loaded machine (a thread descheduled
     * for milliseconds), medians the typical call.
     */
    static String paired() throws Exception {
        VllmOverheadBenchmark.Env env = new VllmOverheadBenchmark.Env();
        env.setUp();
        try {
            // Compile every client's path before measuring anything: the JIT finishes later on a loaded
            // machine, and the client with the most code would otherwise be measured half-compiled.
            for (String mode : new String[] {"blocking", "streaming"}) {
                for (int i = 0; i < (mode.equals("blocking") ? 20_000 : 8_000); i++) {
                    for (String kind : KINDS) {
                        call(mode + kind, env);
                    }
                }
            }
            StringBuilder out = new StringBuilder(String.format(
                    Locale.ROOT,
                    "%npaired: %d rounds of alternating blocks after 20000 (streaming 8000) warm-up calls of each and"
                            + " %d warm-up rounds, same JVM; sdk/bare ratios of means and of medians, per-round ratio of"
                            + " medians [quartiles]%n",
                    ROUNDS,
                    WARM_ROUNDS));
            for (int threads : new int[] {1, 8}) {
                ExecutorService pool = Executors.newFixedThreadPool(threads);
                try {
                    for (String mode : new String[] {"blocking", "streaming"}) {
                        int calls = mode.equals("blocking") ? 200 : 60;
                        int perRound = calls * threads;
                        long[][] all = new long[KINDS.length][ROUNDS * perRound];
                        double[][] ratios = new double[KINDS.length][ROUNDS];
                        for (int round = 0; round < WARM_ROUNDS + ROUNDS; round++) {
                            long[][] t = timeRound(mode, env, round, calls, threads, pool);
                            if (round >= WARM_ROUNDS) {
                                int r = round - WARM_ROUNDS;
                                for (int k = 0; k < KINDS.length; k++) {
                                    System.arraycopy(t[k], 0, all[k], r * perRound, perRound);
                                    Arrays.sort(t[k]);
                                }
                                for (int k = 1; k < KINDS.length; k++) {
                                    ratios[k][r] = (double) t[0][perRound / 2] / t[k][perRound / 2];
                                }
                            }
                        }
                        double[] mean = new double[KINDS.length];
                        double[] median = new double[KINDS.length];
                        for (int k = 0; k < KINDS.length; k++) {
                            mean[k] = Arrays.stream(all[k]).average().orElse(0) / 1e3;
                            Arrays.sort(all[k]);
                            median[k] = all[k][all[k].length / 2] / 1e3;
                        }
                        out.append(String.format(
                                Locale.ROOT,
                                "  %d thread(s) %-10s sdk mean %.1f us, median %.1f us",
                                threads,
                                mode + ":",
                                mean[0],
                                median[0]));
                        for (int k = 1; k < KINDS.length; k++) {
                            Arrays.sort(ratios[k]);
                            out.append(String.format(
                                    Locale.ROOT,
                                    "%n      %-12s mean %.1f us, median %.1f us; ratio of means %.3f, of medians %.3f,"
                                            + " per round %.3f [%.3f, %.3f]",
                                    k == 1 ? "bare:" : "strict bare:",
                                    mean[k],
                                    median[k],
                                    mean[0] / mean[k],
                                    median[0] / median[k],
                                    ratios[k][ROUNDS / 2],
                                    ratios[k][ROUNDS / 4],
                                    ratios[k][3 * ROUNDS / 4]));
                        }
                        out.append(String.format("%n"));
                    }
                } finally {
                    pool.shutdown();
                }
            }
            return out.toString();
        } finally {
            env.tearDown();
        }
    }

    /**
     * The latency in nanoseconds of every call of each kind ({@link #KINDS} order): on each of {@code
     * threads} threads, a block of {@code calls} calls of each kind in turn, the order rotating with the
     * round and the thread.
     */
    private static long[][] timeRound(
            String mode, VllmOverheadBenchmark.Env env, int round, int calls, int threads, ExecutorService pool)
            throws Exception {
        List<Future<long[][]>> parts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int offset = t;
            parts.add(pool.submit(() -> {
                long[][] nanos = new long[KINDS.length][calls];
                for (int k = 0; k < KINDS.length; k++) {
                    int v = (round + offset + k) % KINDS.length;
                    for (int i = 0; i < calls; i++) {
                        long t0 = System.nanoTime();
                        call(mode + KINDS[v], env);
                        nanos[v][i] = System.nanoTime() - t0;
                    }
                }
                return nanos;
            }));
        }
        long[][] all = new long[KINDS.length][calls * threads];
        for (int t = 0; t < threads; t++) {
            long[][] nanos = parts.get(t).get();
            for (int k = 0; k < KINDS.length; k++) {
                System.arraycopy(nanos[k], 0, all[k], t * calls, calls);
            }
        }
        return all;
    }

    /**
     * Bytes allocated and CPU time used by the calling thread per call, for each client, in alternating
     * blocks as in {@link #paired()}. Allocation does not depend on the machine's load; the calling
     * thread's CPU time (user and system) depends on it much less than latency does, though caches and
     * clock frequency still move it.
     */
    static String allocation() throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        VllmOverheadBenchmark.Env env = new VllmOverheadBenchmark.Env();
        env.setUp();
        try {
            long tid = Thread.currentThread().getId();
            int warmUp = 10_000;
            int calls = 20_000;
            StringBuilder out = new StringBuilder(String.format(
                    Locale.ROOT,
                    "%ncalling thread per call (1 thread, %d calls of each in 20 alternating blocks, after %d warm-up"
                            + " calls):%n",
                    calls,
                    warmUp));
            for (String mode : new String[] {"blocking", "streaming"}) {
                long[] bytes = new long[KINDS.length];
                long[] cpu = new long[KINDS.length];
                for (String kind : KINDS) {
                    for (int i = 0; i < warmUp; i++) {
                        call(mode + kind, env);
                    }
                }
                int block = calls / 20;
                for (int round = 0; round < 20; round++) {
                    for (int k = 0; k < KINDS.length; k++) {
                        int v = (round + k) % KINDS.length;
                        long b0 = mx.getThreadAllocatedBytes(tid);
                        long c0 = mx.getCurrentThreadCpuTime();
                        for (int i = 0; i < block; i++) {
                            call(mode + KINDS[v], env);
                        }
                        cpu[v] += mx.getCurrentThreadCpuTime() - c0;
                        bytes[v] += mx.getThreadAllocatedBytes(tid) - b0;
                    }
                }
                for (int k = 1; k < KINDS.length; k++) {
                    out.append(String.format(
                            Locale.ROOT,
                            "  %-10s %-12s allocated: bare %d B, sdk %d B, ratio %.3f;"
                                    + " cpu: bare %.1f us, sdk %.1f us, ratio %.3f%n",
                            mode + ":",
                            k == 1 ? "bare:" : "strict bare:",
                            bytes[k] / calls,
                            bytes[0] / calls,
                            (double) bytes[0] / bytes[k],
                            cpu[k] / 1e3 / calls,
                            cpu[0] / 1e3 / calls,
                            (double) cpu[0] / cpu[k]));
                }
            }
            return out.toString();
        } finally {
            env.tearDown();
        }
    }

    static void call(String variant, VllmOverheadBenchmark.Env env) throws Exception {
        String text;
        switch (variant) {
            case "blockingBare":
                text = VllmOverheadBenchmark.bareBlocking(env);
                break;
            case "blockingBareUrl":
                text = VllmOverheadBenchmark.bareBlockingUrl(env);
                break;
            case "blockingSdk":
                text = VllmOverheadBenchmark.sdkBlocking(env);
                break;
            case "streamingBareUrl":
                text = VllmOverheadBenchmark.bareStreamingUrl(env);
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
