package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.cost.LedgerTotals;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import dev.hybridinference.testkit.azure.AzureEmulator;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator;
import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The planner's promise, checked against real clients: a trace recorded from a run against the emulators,
 * replayed by the planner with deployments that describe those emulators, is planned at what the run's own
 * ledger billed, provider by provider.
 *
 * <p>One configuration, the SDK's real provider types and pricing sections: an always-on vLLM server billed
 * per instance hour, an Azure deployment billed per token, and a serverless SageMaker endpoint billed per
 * GB-second. Requests are routed by a tag alone, so the replay (which keeps the tags) routes each request
 * where the real run did, whatever the timing. The emulators count tokens as words and answer exactly {@code
 * max_tokens} words, so each request's usage is the one it asked for.
 */
class PlanAgainstEmulatorsTest {
    private static final int REQUESTS = 30;
    private static final Duration SPACING = Duration.ofMillis(80);
    private static final Duration VLLM_PER_TOKEN = Duration.ofMillis(5);
    private static final Duration AZURE_PER_TOKEN = Duration.ofMillis(2);
    private static final Duration SAGEMAKER_PER_TOKEN = Duration.ofMillis(20);

    private static final BigDecimal SERVER_PER_HOUR = new BigDecimal("4.10");
    private static final BigDecimal AZURE_IN_PER_MILLION = new BigDecimal("0.15");
    private static final BigDecimal AZURE_OUT_PER_MILLION = new BigDecimal("0.60");
    private static final BigDecimal PER_GB_SECOND = new BigDecimal("0.0000200");
    private static final BigDecimal MEMORY_GB = new BigDecimal("6");
    private static final BigDecimal PER_GB_PROCESSED = new BigDecimal("0.016");

    /**
     * The emulators as deployments: their per-token pace as the output rate, and no first-token latency; a
     * prefill rate at the planner's maximum (the emulators spend no time on the prompt), which adds at most
     * 4 microseconds for these prompts. The vLLM server is one always-on instance that never queues a
     * request here, the SageMaker endpoint one warm instance (the emulator is never cold) with room for
     * every request at once.
     */
    private static final String DEPLOYMENTS = """
            deployments:
              server:
                kind: server
                instances: 1
                concurrency: 64
                firstTokenLatency: 0ms
                prefillTokensPerSecond: 10000000
                outputTokensPerSecond: 200
              azure:
                kind: api
                firstTokenLatency: 0ms
                prefillTokensPerSecond: 10000000
                outputTokensPerSecond: 500
              burst:
                kind: serverless
                minInstances: 1
                maxInstances: 1
                concurrency: 64
                startupTime: 0ms
                firstTokenLatency: 0ms
                prefillTokensPerSecond: 10000000
                outputTokensPerSecond: 50
            """;

    /** Where request {@code i} goes: the tag value that routes it. */
    private static String feature(int i) {
        return switch (i % 3) {
            case 0 -> "chat";
            case 1 -> "legal";
            default -> "batch";
        };
    }

    /** Prompt words of request {@code i}: 12 to 40. */
    private static int inputWords(int i) {
        return 12 + (i % 5) * 7;
    }

    /** Answer words of request {@code i}: 6 to 18 (at most 360 ms on the SageMaker emulator). */
    private static int outputWords(int i) {
        return 6 + (i % 4) * 4;
    }

    private static ChatRequest request(int i) {
        return ChatRequest.builder()
                .user(String.join(" ", Collections.nCopies(inputWords(i), "word")))
                .maxTokens(outputWords(i))
                .options(RequestOptions.builder().tag("feature", feature(i)).build())
                .build();
    }

    private static String config(OpenAiCompatibleServer vllm, AzureEmulator azure, Path azureCa, SageMakerEmulator sm) {
        return """
                providers:
                  server:
                    type: vllm
                    baseUrl: %s
                    model: llama-3.1-8b-instruct
                    pricing: {type: per-instance-hour, perHour: %s}
                  azure:
                    type: azure
                    endpoint: %s
                    apiKey: emulator-api-key
                    model: gpt-4o-mini
                    caCertificates: %s
                    pricing: {type: per-token, inputPerMillion: %s, outputPerMillion: %s}
                  burst:
                    type: sagemaker
                    endpointName: %s
                    region: us-east-1
                    endpointOverride: %s
                    deployment: serverless
                    credentials: {accessKeyId: AKIDEXAMPLE, secretAccessKey: emulator-secret-access-key}
                    coldStartThreshold: 30s
                    pricing: {type: per-gb-second, perGbSecond: %s, memoryGb: %s, perGbProcessed: %s}
                routing:
                  tiers:
                    chat: [server]
                    legal: [azure]
                    batch: [burst]
                  rules:
                    - {tag: {feature: legal}, tier: legal}
                    - {tag: {feature: batch}, tier: batch}
                  defaultTier: chat
                """.formatted(
                        vllm.baseUrl(),
                        SERVER_PER_HOUR.toPlainString(),
                        azure.openAiV1Url(),
                        azureCa,
                        AZURE_IN_PER_MILLION.toPlainString(),
                        AZURE_OUT_PER_MILLION.toPlainString(),
                        sm.endpointName(),
                        sm.endpoint(),
                        PER_GB_SECOND.toPlainString(),
                        MEMORY_GB.toPlainString(),
                        PER_GB_PROCESSED.toPlainString());
    }

    /** What the real run left: the answers' receipts, the ledger's totals, the server's capacity around the trace. */
    private record RealRun(
            List<Receipt> receipts, LedgerTotals totals, CapacityReport serverBefore, CapacityReport serverAfter) {}

    /**
     * Sends the trace through a client loaded from {@code config}, one request every {@link #SPACING}, and
     * reads the server's capacity just before the first request and once the trace's span (as the planner
     * will see it: to one second after the last request) has passed.
     */
    private static RealRun runTrace(String config) throws Exception {
        CostLedger ledger = new CostLedger();
        try (InferenceClient client = InferenceClients.loader().ledger(ledger).load(config)) {
            CapacityReport before = ledger.capacity("server").orElseThrow();
            long t0 = System.nanoTime();
            List<CompletableFuture<ChatResponse>> calls = new ArrayList<>();
            for (int i = 0; i < REQUESTS; i++) {
                long due = t0 + i * SPACING.toNanos();
                for (long wait = due - System.nanoTime(); wait > 0; wait = due - System.nanoTime()) {
                    LockSupport.parkNanos(wait);
                }
                calls.add(client.chatAsync(request(i)));
            }
            List<Receipt> receipts = new ArrayList<>();
            for (CompletableFuture<ChatResponse> c : calls) {
                receipts.add(c.get(30, TimeUnit.SECONDS).receipt());
            }
            Instant last = receipts.stream()
                    .map(Receipt::startedAt)
                    .max(Instant::compareTo)
                    .orElseThrow();
            Instant spanEnd = last.plusSeconds(1);
            for (Instant now = Instant.now(); now.isBefore(spanEnd); now = Instant.now()) {
                Thread.sleep(Duration.between(now, spanEnd).toMillis() + 1);
            }
            CapacityReport after = ledger.capacity("server").orElseThrow();
            return new RealRun(receipts, ledger.totals(), before, after);
        }
    }

    /**
     * One call per provider through a client with a ledger of its own, so that loading classes and opening
     * the first connections do not land in the measured run's compute times.
     */
    private static void warmUp(String config) throws Exception {
        try (InferenceClient client =
                InferenceClients.loader().ledger(new CostLedger()).load(config)) {
            for (int i = 0; i < 3; i++) {
                client.chatAsync(request(i)).get(30, TimeUnit.SECONDS);
            }
        }
    }

    /** Requests, input tokens and output tokens per provider. */
    private static Map<String, List<Long>> usageByProvider(List<Receipt> receipts) {
        Map<String, List<Long>> out = new TreeMap<>();
        for (Receipt r : receipts) {
            List<Long> u = out.computeIfAbsent(r.providerId(), k -> new ArrayList<>(List.of(0L, 0L, 0L)));
            u.set(0, u.get(0) + 1);
            u.set(1, u.get(1) + r.usage().inputTokens());
            u.set(2, u.get(2) + r.usage().outputTokens());
        }
        return out;
    }

    private static BigDecimal seconds(Duration d) {
        return BigDecimal.valueOf(d.toNanos()).movePointLeft(9);
    }

    @Test
    void theReplayedTraceIsPlannedAtWhatTheLedgerBilledProviderByProvider(@TempDir Path dir) throws Exception {
        try (OpenAiCompatibleServer vllm = OpenAiCompatibleServer.builder()
                        .model("llama-3.1-8b-instruct")
                        .tokenLatency(VLLM_PER_TOKEN)
                        .start();
                AzureEmulator azure = AzureEmulator.builder()
                        .apiKey("emulator-api-key")
                        .deployment("gpt-4o-mini")
                        .tokenLatency(AZURE_PER_TOKEN)
                        .start();
                SageMakerEmulator sagemaker = SageMakerEmulator.builder()
                        .endpointName("burst")
                        .tokenLatency(SAGEMAKER_PER_TOKEN)
                        .start()) {
            String config = config(vllm, azure, azure.writeCertificatePem(dir), sagemaker);
            warmUp(config);
            RealRun real = runTrace(config);

            // The emulators reported the usage each request asked for.
            long inputWords = 0;
            long outputWords = 0;
            for (int i = 0; i < REQUESTS; i++) {
                inputWords += inputWords(i);
                outputWords += outputWords(i);
            }
            assertThat(real.receipts()).hasSize(REQUESTS);
            assertThat(real.receipts().stream()
                            .mapToLong(r -> r.usage().inputTokens())
                            .sum())
                    .isEqualTo(inputWords);
            assertThat(real.receipts().stream()
                            .mapToLong(r -> r.usage().outputTokens())
                            .sum())
                    .isEqualTo(outputWords);
            assertThat(real.totals().calls()).isEqualTo(REQUESTS);

            // The trace, through its file format and back, replayed by the planner on the same configuration.
            StringWriter csv = new StringWriter();
            assertThat(TraceTraffic.writeCsv(real.receipts(), csv)).isEqualTo(REQUESTS);
            TraceTraffic trace = TraceTraffic.readCsv(new StringReader(csv.toString()), "emulated-run.csv");
            Planner planner = Planner.of(
                    PlannerConfig.of(config, DEPLOYMENTS), List.of(Planner.YOUR_POLICY), Duration.ofSeconds(1));
            Simulation.Detailed plan = planner.runDetailed(Planner.YOUR_POLICY, trace);
            ScenarioResult result = plan.result();
            assertThat(planner.plan(trace))
                    .singleElement()
                    .satisfies(r -> assertThat(r.cost()).isEqualByComparingTo(result.cost()));

            // Same requests, same tokens, on the same providers.
            assertThat(result.requests()).isEqualTo(REQUESTS);
            assertThat(result.failed()).isZero();
            assertThat(result.tokens()).isEqualTo(inputWords + outputWords);
            assertThat(usageByProvider(plan.receipts()))
                    .isEqualTo(usageByProvider(real.receipts()))
                    .containsOnlyKeys("server", "azure", "burst");

            // Per token: the same tokens cost the same, to the last digit.
            List<Long> azureUsage = usageByProvider(real.receipts()).get("azure");
            BigDecimal azureExpected = AZURE_IN_PER_MILLION
                    .multiply(BigDecimal.valueOf(azureUsage.get(1)))
                    .add(AZURE_OUT_PER_MILLION.multiply(BigDecimal.valueOf(azureUsage.get(2))))
                    .movePointLeft(6);
            assertThat(real.totals().provider("azure")).isEqualByComparingTo(azureExpected);
            assertThat(plan.costOf("azure")).isEqualByComparingTo(real.totals().provider("azure"));

            // Per instance hour: the real bill is the capacity from the read before the first request to the
            // read after the span, every call on it having ended by then. The plan bills the capacity over the
            // trace's span: from the first request to one second after the last. The real window is longer by
            // how late the test read the capacity on either side, a gap the ledger measures itself (the two
            // reports' uptimes), and that gap is the only difference timing can make. So the tolerance is the
            // gap's cost at the hourly rate, plus a few units in the 12th decimal place for the rounding of
            // each hourly figure. The gap is the test's own scheduling: a few milliseconds, and far below the
            // 2 s allowed even on a loaded machine.
            BigDecimal realServer =
                    real.serverAfter().billed().subtract(real.serverBefore().billed());
            Duration window =
                    real.serverAfter().uptime().minus(real.serverBefore().uptime());
            Duration gap = window.minus(trace.span());
            assertThat(gap).isBetween(Duration.ZERO, Duration.ofSeconds(2));
            BigDecimal gapCost = SERVER_PER_HOUR
                    .multiply(seconds(gap))
                    .divide(BigDecimal.valueOf(3600), Pricing.HOURLY_SCALE, RoundingMode.HALF_EVEN);
            BigDecimal plannedServer = plan.costOf("server");
            assertThat(plannedServer)
                    .isEqualByComparingTo(new Pricing.PerInstanceHour(SERVER_PER_HOUR, 1).capacityCost(trace.span()));
            assertThat(realServer.subtract(plannedServer).subtract(gapCost).abs())
                    .isLessThanOrEqualTo(new BigDecimal("0.000000000005"));

            // Per GB-second: each real call is billed the compute time the client measured, which is the
            // emulator's pace for its answer (exactly what the deployment plans, to the millisecond the
            // billing rounds up to) plus the call's own overhead: the HTTP round trip, signing, parsing. That
            // overhead is never negative (the emulator sleeps the whole pace before it answers), so the real
            // compute never costs less than the plan. It is about 15 ms a call on a warmed JVM and was under
            // 100 ms with two busy loops on a 2-core machine; the upper bound allows 500 ms a call on average,
            // room for a collection pause or a descheduled thread, and still fails a plan that bills another
            // unit or an instance's start-up as compute. The data processed is billed on the real run from
            // the bytes the client reported; the planner models no bytes, so that part (under a thousandth of
            // the compute here) is taken out before comparing.
            long burstCalls = usageByProvider(real.receipts()).get("burst").get(0);
            long burstBytes = real.receipts().stream()
                    .filter(r -> r.providerId().equals("burst"))
                    .mapToLong(r -> r.requestBytes() + r.responseBytes())
                    .sum();
            BigDecimal dataCharge = PER_GB_PROCESSED
                    .multiply(BigDecimal.valueOf(burstBytes))
                    .divide(BigDecimal.valueOf(Pricing.BYTES_PER_GB));
            BigDecimal realCompute = real.totals().provider("burst").subtract(dataCharge);
            BigDecimal plannedCompute = plan.costOf("burst");
            BigDecimal overheadAllowance = PER_GB_SECOND
                    .multiply(MEMORY_GB)
                    .multiply(seconds(Duration.ofMillis(500)))
                    .multiply(BigDecimal.valueOf(burstCalls));
            assertThat(burstBytes).isPositive();
            assertThat(realCompute).isBetween(plannedCompute, plannedCompute.add(overheadAllowance));

            // Together: the plan's total is its providers' costs, which the checks above tie to the ledger.
            assertThat(result.cost())
                    .isEqualByComparingTo(
                            plan.costOf("azure").add(plannedServer).add(plannedCompute));
        }
    }
}
