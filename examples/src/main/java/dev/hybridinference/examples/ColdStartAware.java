package dev.hybridinference.examples;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Cold-start-aware routing with keep-warm ({@code examples/cold-start.yaml}). The serverless endpoint goes
 * first because it is cheaper, but it starts scaled to zero: a latency-sensitive request, whose objective a
 * cold start would break, goes to the always-on server instead. While traffic is quiet, a keep-warm ping (a
 * one-token call tagged {@code purpose=keep-warm}) brings the endpoint up and holds it; the next
 * latency-sensitive request runs there, warm. The ledger says what the pings cost.
 */
public final class ColdStartAware {
    private ColdStartAware() {}

    /** What the example saw. */
    record Outcome(Receipt whileCold, Receipt afterKeepWarm, BigDecimal keepWarmCost) {}

    /**
     * Runs the example.
     *
     * @param args how many seconds the quiet period lasts (default 12; keep-warm pings go out every 10)
     */
    public static void main(String[] args) {
        run(System.out, System.getenv(), Duration.ofSeconds(args.length > 0 ? Long.parseLong(args[0]) : 12));
    }

    /** Runs the example with this environment and quiet period. */
    static Outcome run(PrintStream out, Map<String, String> environment, Duration quiet) {
        CostLedger ledger = new CostLedger();
        try (Emulators emulators = new Emulators(out, environment)
                        .vllm("VLLM_BASE_URL", b -> b)
                        .sageMaker(
                                "SAGEMAKER_ENDPOINT",
                                "SAGEMAKER_ENDPOINT_URL",
                                b -> b.startCold(true)
                                        .coldStart(Duration.ofSeconds(1), SageMakerEmulator.ColdStartMode.HOLD)
                                        .idleTimeout(Duration.ofSeconds(15)));
                InferenceClient client = InferenceClients.loader()
                        .env(emulators.env())
                        .ledger(ledger)
                        .load(Emulators.config("cold-start.yaml"))) {
            // Wants an answer within two seconds: a predicted cold start (20 s) would break that.
            ChatRequest interactive = ChatRequest.builder()
                    .user("Autocomplete: the quick brown fox")
                    .maxTokens(8)
                    .options(RequestOptions.builder()
                            .latencyObjective(Duration.ofSeconds(2))
                            .build())
                    .build();

            Receipt whileCold = client.chat(interactive).receipt();
            out.println("while the endpoint is cold: " + whileCold.providerId() + " (" + whileCold.route() + ")");

            out.println("quiet for " + quiet.toSeconds() + " s: keep-warm pings go out while the endpoint is idle");
            BigDecimal keepWarm = waitForKeepWarm(ledger, quiet);

            Receipt afterKeepWarm = client.chat(interactive).receipt();
            out.println("after keep-warm: " + afterKeepWarm.providerId() + ", cold start "
                    + (afterKeepWarm.coldStart().observed() ? "yes" : "no") + " (" + afterKeepWarm.route() + ")");
            out.println("keep-warm cost so far: " + Pricing.formatUsd(keepWarm)
                    + " (ledger.totals().tag(\"purpose\", \"keep-warm\")); calls that met a cold start: "
                    + List.of(whileCold, afterKeepWarm).stream()
                            .filter(r -> r.coldStart().observed())
                            .count());
            return new Outcome(whileCold, afterKeepWarm, keepWarm);
        }
    }

    /** Sleeps through the quiet period, and up to 15 s more if no keep-warm ping has been recorded yet. */
    private static BigDecimal waitForKeepWarm(CostLedger ledger, Duration quiet) {
        long end = System.nanoTime() + quiet.toNanos();
        long latest = end + Duration.ofSeconds(15).toNanos();
        BigDecimal cost = BigDecimal.ZERO;
        while (System.nanoTime() < end || (cost.signum() == 0 && System.nanoTime() < latest)) {
            sleep(Duration.ofMillis(200));
            cost = ledger.totals().tag("purpose", "keep-warm");
        }
        return cost;
    }

    private static void sleep(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
