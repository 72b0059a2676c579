package dev.hybridinference.examples;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * Spillover ({@code examples/spillover.yaml}): a burst of concurrent requests against an always-on vLLM server
 * with two slots. The server takes what it has room for; the rest spill to a serverless SageMaker endpoint at
 * once instead of queueing. The count comes from the receipts' route facts.
 */
public final class Spillover {
    private Spillover() {}

    /** What the burst did. */
    record Outcome(int calls, int spilled, List<Receipt> receipts) {}

    /**
     * Runs the example.
     *
     * @param args the burst's size (default 12)
     */
    public static void main(String[] args) {
        run(System.out, System.getenv(), args.length > 0 ? Integer.parseInt(args[0]) : 12);
    }

    /** Sends a burst of {@code size} concurrent requests with this environment. */
    static Outcome run(PrintStream out, Map<String, String> environment, int size) {
        try (Emulators emulators = new Emulators(out, environment)
                        .vllm(
                                "VLLM_BASE_URL",
                                b -> b.maxConcurrent(2)
                                        .whenFull(OpenAiCompatibleServer.Overflow.QUEUE)
                                        .tokenLatency(Duration.ofMillis(15)))
                        .sageMaker("SAGEMAKER_ENDPOINT", "SAGEMAKER_ENDPOINT_URL", b -> b);
                InferenceClient client =
                        InferenceClients.loader().env(emulators.env()).load(Emulators.config("spillover.yaml"))) {
            List<CompletableFuture<Receipt>> burst = new ArrayList<>();
            for (int i = 0; i < size; i++) {
                ChatRequest request = ChatRequest.builder()
                        .user("Request " + i + " of the burst: name a prime number.")
                        .maxTokens(16)
                        .build();
                burst.add(client.chatAsync(request).thenApply(r -> r.receipt()));
            }
            List<Receipt> receipts = new ArrayList<>();
            burst.forEach(f -> receipts.add(f.join()));

            int spilled = 0;
            BigDecimal cost = BigDecimal.ZERO;
            for (Receipt r : receipts) {
                if (r.routeFacts().spilledOver()) {
                    spilled++;
                }
                cost = cost.add(r.cost());
            }
            out.println("burst of " + size + ": " + (size - spilled) + " on the server, " + spilled
                    + " spilled over to serverless; cost " + Pricing.formatUsd(cost));
            receipts.stream()
                    .filter(r -> r.routeFacts().spilledOver())
                    .findFirst()
                    .ifPresent(r -> out.println("e.g. " + r.summary()));
            return new Outcome(size, spilled, receipts);
        }
    }
}
