package dev.hybridinference.benchmarks;

import java.util.LinkedHashMap;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.util.Statistics;

/**
 * How long the report mains run JMH, read from their arguments: {@code warmupSeconds measureSeconds
 * iterations forks}, each optional.
 *
 * @param warmupSeconds length of one warm-up iteration
 * @param measureSeconds length of one measured iteration
 * @param iterations warm-up and measured iterations each
 * @param forks JVM forks per benchmark
 */
record RunLength(int warmupSeconds, int measureSeconds, int iterations, int forks) {
    /** Reads the arguments, falling back to {@code defaults} for those not given. */
    static RunLength parse(String[] args, RunLength defaults) {
        return new RunLength(
                args.length > 0 ? Integer.parseInt(args[0]) : defaults.warmupSeconds,
                args.length > 1 ? Integer.parseInt(args[1]) : defaults.measureSeconds,
                args.length > 2 ? Integer.parseInt(args[2]) : defaults.iterations,
                args.length > 3 ? Integer.parseInt(args[3]) : defaults.forks);
    }

    /** JMH options for the benchmarks matching {@code include}, on {@code threads} threads. */
    ChainedOptionsBuilder options(String include, int threads) {
        return new OptionsBuilder()
                .include(include)
                .threads(threads)
                .forks(forks)
                .warmupIterations(iterations)
                .warmupTime(TimeValue.seconds(warmupSeconds))
                .measurementIterations(iterations)
                .measurementTime(TimeValue.seconds(measureSeconds))
                .jvmArgsAppend("-Xms1g", "-Xmx1g");
    }

    /** Runs JMH and returns each benchmark's primary statistics by method name. */
    static Map<String, Statistics> run(Options options) throws RunnerException {
        Map<String, Statistics> out = new LinkedHashMap<>();
        for (RunResult r : new Runner(options).run()) {
            String label = r.getParams().getBenchmark();
            out.put(
                    label.substring(label.lastIndexOf('.') + 1),
                    r.getPrimaryResult().getStatistics());
        }
        return out;
    }
}
