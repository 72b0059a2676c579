package dev.hybridinference.examples;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * The quick start: loads {@code quickstart.yaml}, asks one question and prints the answer, streams a
 * second answer token by token, and prints both receipts with their cost and the ledger's totals.
 *
 * <p>With {@code VLLM_BASE_URL} set it talks to that server; without it, it starts an in-process
 * OpenAI-compatible test server on loopback, so it runs on any machine.
 */
public final class QuickStart {
    private QuickStart() {}

    /**
     * Runs the quick start.
     *
     * @param args ignored
     */
    public static void main(String[] args) throws IOException {
        PrintStream out = System.out;
        Map<String, String> env = new HashMap<>(System.getenv());
        OpenAiCompatibleServer local = null;
        if (env.getOrDefault("VLLM_BASE_URL", "").isBlank()) {
            local = OpenAiCompatibleServer.builder()
                    .model("demo-model")
                    .delayPerChunk(Duration.ofMillis(15))
                    .start();
            env.put("VLLM_BASE_URL", local.baseUrl());
            out.println("VLLM_BASE_URL is not set: started an in-process OpenAI-compatible test server at "
                    + local.baseUrl());
        }
        CostLedger ledger = new CostLedger();
        try (InferenceClient client =
                InferenceClients.loader().env(env).ledger(ledger).load(config())) {
            out.println("Client: " + client.info().id() + " (" + client.info().type() + ", "
                    + client.info().deploymentKind() + ", "
                    + client.info().pricing().describe() + ")");

            ChatRequest first = ChatRequest.builder()
                    .system("You are a concise assistant.")
                    .user("What is the difference between serverless and server-based inference?")
                    .maxTokens(128)
                    .options(RequestOptions.builder()
                            .tag("feature", "quickstart")
                            .build())
                    .build();
            ChatResponse answer = client.chat(first);
            out.println();
            out.println("Answer: " + answer.text());
            printReceipt(out, answer.receipt());

            ChatRequest second = ChatRequest.builder()
                    .user("Name three things a receipt should tell you about an LLM call.")
                    .maxTokens(128)
                    .options(RequestOptions.builder()
                            .sessionId("quickstart-session")
                            .tag("feature", "quickstart")
                            .build())
                    .build();
            out.println();
            out.print("Streaming: ");
            try (ChatStream stream = client.stream(second)) {
                for (ChatChunk chunk : stream) {
                    out.print(chunk.text());
                    out.flush();
                }
                out.println();
                printReceipt(out, stream.response().receipt());
            }

            out.println();
            out.println("Ledger: " + ledger.totals().calls() + " calls, attributed cost "
                    + Pricing.formatUsd(ledger.total()));
            ledger.capacity(client.info().id()).ifPresent(c -> printCapacity(out, c));
        } finally {
            if (local != null) {
                local.close();
            }
        }
    }

    private static String config() throws IOException {
        try (InputStream in = QuickStart.class.getResourceAsStream("/quickstart.yaml")) {
            if (in == null) {
                throw new IOException("quickstart.yaml is missing from the classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static void printReceipt(PrintStream out, Receipt r) {
        out.println("Receipt: " + r.summary());
        out.println("  provider " + r.providerId() + ", " + r.deploymentKind() + ", model " + r.model());
        out.println("  route: " + r.route());
        out.println("  total " + r.totalTime().toMillis() + " ms"
                + r.timeToFirstToken()
                        .map(t -> ", time to first token " + t.toMillis() + " ms")
                        .orElse("")
                + ", compute " + r.computeTime().toMillis() + " ms"
                + ", cold start " + (r.coldStart().observed() ? "yes" : "no"));
        out.println("  tokens: " + r.usage().inputTokens() + " in, " + r.usage().outputTokens() + " out"
                + (r.usage().estimated() ? " (estimated)" : ""));
        if (!r.attributes().isEmpty()) {
            out.println("  attributes: " + r.attributes());
        }
        out.println("  instance time attributed: " + r.instanceTime().toNanos() / 1_000 + " us, cost "
                + Pricing.formatUsd(r.cost()) + (r.costEstimated() ? " (estimated)" : ""));
    }

    private static void printCapacity(PrintStream out, CapacityReport c) {
        out.println("Capacity of " + c.summary());
    }
}
