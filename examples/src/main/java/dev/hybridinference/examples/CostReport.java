package dev.hybridinference.examples;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.cost.LedgerTotals;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A cost report from the ledger ({@code examples/cost-report.yaml}): calls from two tenants and two features
 * over an always-on server and a serverless endpoint, then the totals by provider and by tag, and the server's
 * capacity bill split into what calls used and what sat idle. The ledger's total is the exact sum of the
 * receipts.
 */
public final class CostReport {
    private CostReport() {}

    /** What the report was made of. */
    record Outcome(List<Receipt> receipts, LedgerTotals totals, CapacityReport serverCapacity) {}

    /**
     * Runs the example.
     *
     * @param args ignored
     */
    public static void main(String[] args) {
        run(System.out, System.getenv());
    }

    /** Runs the example with this environment. */
    static Outcome run(PrintStream out, Map<String, String> environment) {
        CostLedger ledger = new CostLedger();
        List<Receipt> receipts = new ArrayList<>();
        try (Emulators emulators = new Emulators(out, environment)
                        .vllm("VLLM_BASE_URL", b -> b)
                        .sageMaker("SAGEMAKER_ENDPOINT", "SAGEMAKER_ENDPOINT_URL", b -> b);
                InferenceClient client = InferenceClients.loader()
                        .env(emulators.env())
                        .ledger(ledger)
                        .load(Emulators.config("cost-report.yaml"))) {
            String[][] traffic = {
                {"acme", "chat"}, {"acme", "chat"}, {"acme", "nightly-summaries"},
                {"globex", "chat"}, {"globex", "nightly-summaries"}, {"globex", "nightly-summaries"}
            };
            for (String[] call : traffic) {
                receipts.add(client.chat(ChatRequest.builder()
                                .user("A " + call[1] + " request from " + call[0] + ".")
                                .maxTokens(32)
                                .options(RequestOptions.builder()
                                        .tag("tenant", call[0])
                                        .tag("feature", call[1])
                                        .build())
                                .build())
                        .receipt());
            }

            LedgerTotals totals = ledger.totals();
            out.println(totals.calls() + " calls, " + Pricing.formatUsd(totals.total()) + " in all");
            new TreeMap<>(totals.byProvider())
                    .forEach(
                            (provider, cost) -> out.println("  provider " + provider + ": " + Pricing.formatUsd(cost)));
            for (String key : List.of("tenant", "feature")) {
                new TreeMap<>(totals.byTag().getOrDefault(key, Map.of()))
                        .forEach((value, cost) ->
                                out.println("  " + key + "=" + value + ": " + Pricing.formatUsd(cost)));
            }
            BigDecimal sum = receipts.stream().map(Receipt::cost).reduce(BigDecimal.ZERO, BigDecimal::add);
            out.println("sum of the receipts: " + Pricing.formatUsd(sum) + " (the ledger's total, exactly)");
            CapacityReport server = ledger.capacity("server").orElseThrow();
            out.println("capacity " + server.summary());
            out.printf(
                    "  utilization %.2f%%: the idle part is what always-on capacity costs while nobody calls%n",
                    server.utilization() * 100);
            return new Outcome(receipts, totals, server);
        }
    }
}
