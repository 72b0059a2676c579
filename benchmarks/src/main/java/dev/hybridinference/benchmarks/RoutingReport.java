package dev.hybridinference.benchmarks;

import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.util.Statistics;

/**
 * Runs {@link HybridRoutingBenchmark} and prints the median cost of a routing decision, of a call through
 * the composite client over the direct call, and the composite client's throughput with 1 and 8 threads.
 *
 * <p>Arguments (all optional): {@code warmupSeconds measureSeconds iterations forks}; defaults {@code 1 2 5 1}.
 */
public final class RoutingReport {
    private RoutingReport() {}

    /**
     * Runs the report.
     *
     * @param args optional {@code warmupSeconds measureSeconds iterations}
     */
    public static void main(String[] args) throws Exception {
        RunLength length = RunLength.parse(args, new RunLength(1, 2, 5, 1));
        Map<String, Statistics> latency = run(Mode.SampleTime, 1, length);
        StringBuilder out = new StringBuilder();
        out.append(String.format(Locale.ROOT, "%-20s %10s %10s %10s%n", "benchmark", "p50 ns", "mean ns", "p99 ns"));
        for (Map.Entry<String, Statistics> e : latency.entrySet()) {
            Statistics s = e.getValue();
            out.append(String.format(
                    Locale.ROOT,
                    "%-20s %10.0f %10.0f %10.0f%n",
                    e.getKey(),
                    s.getPercentile(50),
                    s.getMean(),
                    s.getPercentile(99)));
        }
        double direct = latency.get("direct").getPercentile(50);
        out.append(String.format(
                Locale.ROOT,
                "%nrouting decision, median: %.0f ns%n"
                        + "composite client over the direct call, median: %.0f ns (routing + slot + receipt + bookkeeping)%n"
                        + "with one fallback, median: %.0f ns over the direct call%n",
                latency.get("routeOnly").getPercentile(50),
                latency.get("hybrid").getPercentile(50) - direct,
                latency.get("hybridWithFallback").getPercentile(50) - direct));
        for (int threads : new int[] {1, 8}) {
            Map<String, Statistics> tput = run(Mode.Throughput, threads, length);
            out.append(String.format(
                    Locale.ROOT,
                    "throughput, %d thread(s): composite %.2f M calls/s, direct %.2f M calls/s%n",
                    threads,
                    tput.get("hybrid").getMean() / 1e6,
                    tput.get("direct").getMean() / 1e6));
        }
        System.out.println();
        System.out.println("=== HybridClient routing and bookkeeping (5 no-op members) ===");
        System.out.print(out);
    }

    private static Map<String, Statistics> run(Mode mode, int threads, RunLength length) throws Exception {
        boolean latency = mode == Mode.SampleTime;
        String names = latency ? "(direct|routeOnly|hybrid|hybridWithFallback)" : "(direct|hybrid)";
        Options opts = length.options(HybridRoutingBenchmark.class.getName() + "\\." + names + "$", threads)
                .mode(mode)
                .timeUnit(latency ? TimeUnit.NANOSECONDS : TimeUnit.SECONDS)
                .build();
        return RunLength.run(opts);
    }
}
