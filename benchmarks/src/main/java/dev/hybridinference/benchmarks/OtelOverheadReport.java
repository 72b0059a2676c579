package dev.hybridinference.benchmarks;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.otel.OpenTelemetryListener;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.metrics.MeterProvider;
import io.opentelemetry.api.trace.TracerProvider;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.metrics.InstrumentType;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.data.AggregationTemporality;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.metrics.export.MetricExporter;
import io.opentelemetry.sdk.metrics.export.PeriodicMetricReader;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.lang.management.ManagementFactory;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the OpenTelemetry listener adds to a call: one composite client over a member that does no work
 * ({@link NoOpMember}), built six ways and called in the same JVM in paired, interleaved blocks:
 *
 * <ul>
 *   <li>{@code off}: no listener, the baseline every ratio is taken against;
 *   <li>{@code empty}: a listener that does nothing, the core's own cost of telling listeners (a call id,
 *       the call object, the events);
 *   <li>{@code noop}: the OpenTelemetry listener over {@link OpenTelemetry#noop()}, what a library user
 *       pays when the application installed no SDK;
 *   <li>{@code sdk}: the OpenTelemetry listener over an SDK with a batch span processor and a periodic metric
 *       reader, both exporting to exporters that drop what they get, a span per call and per attempt;
 *   <li>{@code sdkCallSpans}: the same without attempt spans;
 *   <li>{@code sdkMetrics}: the same SDK's metrics with a no-op tracer provider, the metrics' share.
 * </ul>
 *
 * Each round runs a block of calls of every variant in turn on every thread, the order rotating with the
 * round and the thread, and times each call. Printed per variant: the mean and the median of every call,
 * the ratio of medians to {@code off}, the median [quartiles] of the per-round ratios (each round's median
 * over the same round's {@code off} median, which compares calls made microseconds apart), the added time
 * per call, and the bytes allocated per call on the calling thread. The ratios are the figures to read: a
 * call here takes a few microseconds, so they bound the listener's share of a real call, which waits on a
 * network and a model for milliseconds to seconds.
 *
 * <p>Run: {@code mvn -B -q -pl benchmarks -am -DskipTests -Dnative.skip=true package && java -cp
 * benchmarks/target/benchmarks.jar dev.hybridinference.benchmarks.OtelOverheadReport [rounds]} (default
 * 300 rounds).
 */
public final class OtelOverheadReport {
    private static final String[] VARIANTS = {"off", "empty", "noop", "sdk", "sdkCallSpans", "sdkMetrics"};
    private static final int BLOCK = 50;
    private static final int WARM_ROUNDS = 40;
    private static final int WARM_CALLS = 50_000;
    private static final int ALLOCATION_CALLS = 20_000;

    private OtelOverheadReport() {}

    /**
     * Runs the report.
     *
     * @param args optional {@code rounds}
     */
    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 300;
        CountingSpanExporter spans = new CountingSpanExporter();
        DroppingMetricExporter metrics = new DroppingMetricExporter();
        OpenTelemetrySdk sdk = OpenTelemetrySdk.builder()
                .setTracerProvider(SdkTracerProvider.builder()
                        // A queue long enough that no span is dropped, so that every call pays for its spans.
                        .addSpanProcessor(BatchSpanProcessor.builder(spans)
                                .setMaxQueueSize(1 << 20)
                                .setMaxExportBatchSize(8192)
                                .build())
                        .build())
                .setMeterProvider(SdkMeterProvider.builder()
                        .registerMetricReader(PeriodicMetricReader.builder(metrics)
                                .setInterval(Duration.ofSeconds(1))
                                .build())
                        .build())
                .build();
        ChatRequest request = ChatRequest.builder()
                .model("m")
                .user("Summarize the trade-offs of serverless inference in three sentences.")
                .maxTokens(128)
                .options(RequestOptions.builder()
                        .tag("tenant", "acme")
                        .tag("feature", "summaries")
                        .sessionId("session-1")
                        .build())
                .build();
        List<AutoCloseable> owned = new ArrayList<>();
        HybridClient[] clients = new HybridClient[VARIANTS.length];
        for (int v = 0; v < VARIANTS.length; v++) {
            InferenceListener listener = listener(VARIANTS[v], sdk);
            if (listener instanceof AutoCloseable) {
                owned.add((AutoCloseable) listener);
            }
            HybridClient.Builder b = HybridClient.builder()
                    .member("vllm-main", new NoOpMember("vllm-main", tokens(), false))
                    .circuitBreaker(Integer.MAX_VALUE, Duration.ofSeconds(1));
            if (listener != null) {
                b.listener(listener);
            }
            clients[v] = b.build();
        }
        try {
            System.out.printf(
                    Locale.ROOT,
                    "OpenTelemetry listener overhead: a composite client over one no-op member, %s;"
                            + " %d rounds of %d calls of each variant per thread, after %d warm-up rounds%n",
                    String.join(", ", VARIANTS),
                    rounds,
                    BLOCK,
                    WARM_ROUNDS);
            long t0 = System.nanoTime();
            for (int i = 0; i < WARM_CALLS; i++) {
                for (HybridClient c : clients) {
                    call(c, request);
                }
            }
            System.out.printf(
                    Locale.ROOT,
                    "warm-up: %d calls of each variant, %.1f s%n",
                    WARM_CALLS,
                    (System.nanoTime() - t0) / 1e9);
            int cores = Runtime.getRuntime().availableProcessors();
            System.out.printf(Locale.ROOT, "%d processors%n", cores);
            for (int threads : new int[] {1, Math.min(4, cores)}) {
                System.out.print(paired(clients, request, rounds, threads));
            }
            System.out.print(allocation(clients, request));
            System.out.printf(
                    Locale.ROOT,
                    "(the sdk variants' exporter received %d spans; their metric exports ran %d times)%n",
                    spans.count.get(),
                    metrics.exports.get());
        } finally {
            for (HybridClient c : clients) {
                c.close();
            }
            for (AutoCloseable c : owned) {
                c.close();
            }
            sdk.close();
        }
    }

    private static Pricing tokens() {
        return new Pricing.PerToken(new BigDecimal("0.5"), new BigDecimal("1.5"), null);
    }

    private static InferenceListener listener(String variant, OpenTelemetry sdk) {
        switch (variant) {
            case "off":
                return null;
            case "empty":
                return new InferenceListener() {};
            case "noop":
                return OpenTelemetryListener.builder()
                        .openTelemetry(OpenTelemetry.noop())
                        .metricTags("tenant")
                        .build();
            case "sdk":
                return OpenTelemetryListener.builder()
                        .openTelemetry(sdk)
                        .metricTags("tenant")
                        .build();
            case "sdkMetrics":
                return OpenTelemetryListener.builder()
                        .openTelemetry(metricsOnly(sdk))
                        .metricTags("tenant")
                        .build();
            case "sdkCallSpans":
                return OpenTelemetryListener.builder()
                        .openTelemetry(sdk)
                        .metricTags("tenant")
                        .attemptSpans(false)
                        .build();
            default:
                throw new IllegalArgumentException(variant);
        }
    }

    /** {@code sdk}'s meter provider and no tracing. */
    private static OpenTelemetry metricsOnly(OpenTelemetry sdk) {
        return new OpenTelemetry() {
            @Override
            public TracerProvider getTracerProvider() {
                return TracerProvider.noop();
            }

            @Override
            public MeterProvider getMeterProvider() {
                return sdk.getMeterProvider();
            }

            @Override
            public ContextPropagators getPropagators() {
                return ContextPropagators.noop();
            }
        };
    }

    private static void call(HybridClient client, ChatRequest request) {
        ChatResponse r = client.chat(request);
        if (r.receipt().cost().signum() <= 0) {
            throw new IllegalStateException(
                    "a call came back without its cost: " + r.receipt().summary());
        }
    }

    /**
     * The paired check on {@code threads} threads: each round, every thread runs a block of each variant in an
     * order that rotates with the round and the thread, timing every call.
     */
    private static String paired(HybridClient[] clients, ChatRequest request, int rounds, int threads)
            throws Exception {
        int n = VARIANTS.length;
        long[][] all = new long[n][rounds * BLOCK * threads];
        double[][] ratios = new double[n][rounds];
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        long t0 = System.nanoTime();
        try {
            for (int round = 0; round < WARM_ROUNDS + rounds; round++) {
                List<Future<long[][]>> parts = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int offset = round + t;
                    parts.add(pool.submit(() -> {
                        long[][] nanos = new long[n][BLOCK];
                        for (int k = 0; k < n; k++) {
                            int v = (offset + k) % n;
                            for (int i = 0; i < BLOCK; i++) {
                                long s = System.nanoTime();
                                call(clients[v], request);
                                nanos[v][i] = System.nanoTime() - s;
                            }
                        }
                        return nanos;
                    }));
                }
                long[][] roundNanos = new long[n][BLOCK * threads];
                for (int t = 0; t < threads; t++) {
                    long[][] nanos = parts.get(t).get();
                    for (int v = 0; v < n; v++) {
                        System.arraycopy(nanos[v], 0, roundNanos[v], t * BLOCK, BLOCK);
                    }
                }
                if (round >= WARM_ROUNDS) {
                    int r = round - WARM_ROUNDS;
                    double base = median(roundNanos[0]);
                    for (int v = 0; v < n; v++) {
                        System.arraycopy(roundNanos[v], 0, all[v], r * BLOCK * threads, BLOCK * threads);
                        ratios[v][r] = median(roundNanos[v]) / base;
                    }
                }
            }
        } finally {
            pool.shutdown();
        }
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT, "%n%d thread(s), per call:%n", threads));
        out.append(String.format(
                Locale.ROOT,
                "  %-13s %9s %9s %9s %24s %9s%n",
                "variant",
                "mean ns",
                "median ns",
                "/off",
                "per-round /off [IQR]",
                "added ns"));
        double offMedian = median(all[0]);
        for (int v = 0; v < n; v++) {
            double mean = Arrays.stream(all[v]).average().orElse(0);
            double med = median(all[v]);
            double[] r = ratios[v].clone();
            Arrays.sort(r);
            out.append(String.format(
                    Locale.ROOT,
                    "  %-13s %9.0f %9.0f %9.3f %9.3f [%5.3f, %5.3f] %9.0f%n",
                    VARIANTS[v],
                    mean,
                    med,
                    med / offMedian,
                    median(r),
                    r[r.length / 4],
                    r[3 * r.length / 4],
                    med - offMedian));
        }
        out.append(String.format(Locale.ROOT, "  (took %.1f s)%n", (System.nanoTime() - t0) / 1e9));
        return out.toString();
    }

    /** Bytes allocated per call on the calling thread, in alternating blocks of each variant. */
    private static String allocation(HybridClient[] clients, ChatRequest request) {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        int n = VARIANTS.length;
        long[] bytes = new long[n];
        int blocks = 20;
        int perBlock = ALLOCATION_CALLS / blocks;
        for (int b = 0; b < blocks; b++) {
            for (int k = 0; k < n; k++) {
                int v = (b + k) % n;
                long before = mx.getThreadAllocatedBytes(tid);
                for (int i = 0; i < perBlock; i++) {
                    call(clients[v], request);
                }
                bytes[v] += mx.getThreadAllocatedBytes(tid) - before;
            }
        }
        StringBuilder out = new StringBuilder(String.format(
                Locale.ROOT,
                "%nallocated per call on the calling thread (%d calls of each variant):%n",
                ALLOCATION_CALLS));
        for (int v = 0; v < n; v++) {
            out.append(String.format(
                    Locale.ROOT,
                    "  %-13s %7d B  (%+d B over off)%n",
                    VARIANTS[v],
                    bytes[v] / ALLOCATION_CALLS,
                    (bytes[v] - bytes[0]) / ALLOCATION_CALLS));
        }
        return out.toString();
    }

    /** The median of {@code v} (a sorted copy): the mean of the middle two for an even count. */
    private static double median(long[] v) {
        long[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
    }

    private static double median(double[] sorted) {
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    }

    /** Counts the spans it is given and drops them. */
    private static final class CountingSpanExporter implements SpanExporter {
        final AtomicLong count = new AtomicLong();

        @Override
        public CompletableResultCode export(Collection<SpanData> spans) {
            count.addAndGet(spans.size());
            return CompletableResultCode.ofSuccess();
        }

        @Override
        public CompletableResultCode flush() {
            return CompletableResultCode.ofSuccess();
        }

        @Override
        public CompletableResultCode shutdown() {
            return CompletableResultCode.ofSuccess();
        }
    }

    /** Drops the metrics it is given, cumulative as most backends read them. */
    private static final class DroppingMetricExporter implements MetricExporter {
        final AtomicLong exports = new AtomicLong();

        @Override
        public CompletableResultCode export(Collection<MetricData> metrics) {
            exports.incrementAndGet();
            return CompletableResultCode.ofSuccess();
        }

        @Override
        public AggregationTemporality getAggregationTemporality(InstrumentType instrumentType) {
            return AggregationTemporality.CUMULATIVE;
        }

        @Override
        public CompletableResultCode flush() {
            return CompletableResultCode.ofSuccess();
        }

        @Override
        public CompletableResultCode shutdown() {
            return CompletableResultCode.ofSuccess();
        }
    }
}
