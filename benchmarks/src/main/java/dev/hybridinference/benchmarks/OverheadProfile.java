package dev.hybridinference.benchmarks;

import java.util.Locale;

/**
 * Runs one variant of {@link VllmOverheadBenchmark} in a loop on one thread, for a profiler to watch:
 * {@code java -XX:StartFlightRecording=filename=sdk.jfr,settings=profile -cp benchmarks.jar
 * dev.hybridinference.benchmarks.OverheadProfile blockingSdk 30}, then {@code jfr print --events
 * jdk.ExecutionSample sdk.jfr}. Variants: {@code blockingBare}, {@code blockingSdk}, {@code streamingBare},
 * {@code streamingSdk}.
 */
public final class OverheadProfile {
    private OverheadProfile() {}

    /**
     * Runs the loop.
     *
     * @param args {@code variant [seconds]} (default 20 s, after 5 s of warm-up)
     */
    public static void main(String[] args) throws Exception {
        String variant = args.length > 0 ? args[0] : "blockingSdk";
        long seconds = args.length > 1 ? Long.parseLong(args[1]) : 20;
        VllmOverheadBenchmark.Env env = new VllmOverheadBenchmark.Env();
        env.setUp();
        try {
            loop(variant, env, 5);
            long calls = loop(variant, env, seconds);
            System.out.printf(Locale.ROOT, "%s: %d calls, %.1f us/call%n", variant, calls, seconds * 1e6 / calls);
        } finally {
            env.tearDown();
        }
    }

    private static long loop(String variant, VllmOverheadBenchmark.Env env, long seconds) throws Exception {
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        long calls = 0;
        while (System.nanoTime() < end) {
            for (int i = 0; i < 100; i++) {
                OverheadReport.call(variant, env);
            }
            calls += 100;
        }
        return calls;
    }
}
