package dev.hybridinference.vllm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * End to end through the configuration: an always-on vLLM member at capacity spills to a second member,
 * both real HTTP servers on loopback.
 */
@Timeout(60)
class HybridSpilloverTest {
    private static String config(int maxInFlight, String extraPrimary) {
        return "providers:\n"
                + "  vllm-main:\n"
                + "    type: vllm\n"
                + "    baseUrl: ${MAIN}\n"
                + "    model: test-model\n"
                + "    scrapeInterval: 0s\n"
                + "    pricing: {perHour: 3.60}\n"
                + "  burst:\n"
                + "    type: vllm\n"
                + "    baseUrl: ${BURST}\n"
                + "    model: test-model\n"
                + "    scrapeInterval: 0s\n"
                + "    pricing: {type: per-token, inputPerMillion: 0.5, outputPerMillion: 1.5}\n"
                + "routing:\n"
                + "  members:\n"
                + "    vllm-main: {maxInFlight: " + maxInFlight + extraPrimary + "}\n"
                + "  tiers:\n"
                + "    default: [vllm-main]\n"
                + "  spillover: {primary: vllm-main, overflow: [burst]}\n";
    }

    @Test
    void theAlwaysOnServerSpillsToTheBurstMemberWhenFull() throws Exception {
        try (OpenAiCompatibleServer main = OpenAiCompatibleServer.builder()
                        .responder(q -> "main answers with several words to take a while")
                        .delayPerChunk(Duration.ofMillis(20))
                        .start();
                OpenAiCompatibleServer burst = OpenAiCompatibleServer.builder()
                        .responder(q -> "burst answers")
                        .start()) {
            CostLedger ledger = new CostLedger();
            try (InferenceClient client = InferenceClients.loader()
                    .env(Map.of("MAIN", main.baseUrl(), "BURST", burst.baseUrl()))
                    .ledger(ledger)
                    .load(config(2, ""))) {
                assertThat(client).isInstanceOf(HybridClient.class);
                List<CompletableFuture<ChatResponse>> calls = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    calls.add(client.chatAsync(ChatRequest.of("question " + i)));
                }
                int spilled = 0;
                BigDecimal sum = BigDecimal.ZERO;
                for (CompletableFuture<ChatResponse> f : calls) {
                    ChatResponse r = f.get();
                    sum = sum.add(r.receipt().cost());
                    if (r.receipt().providerId().equals("burst")) {
                        spilled++;
                        assertThat(r.text()).isEqualTo("burst answers");
                        assertThat(r.receipt().route()).contains("vllm-main");
                    }
                }
                assertThat(spilled).isPositive();
                assertThat(main.maxConcurrentRequests()).isLessThanOrEqualTo(2);
                assertThat(main.requestCount() + burst.requestCount()).isEqualTo(8);
                assertThat(ledger.total()).isEqualByComparingTo(sum);
            }
        }
    }

    @Test
    void aLongQueueOnThePrimarySpillsByItsLoadSignal() {
        try (OpenAiCompatibleServer main =
                        OpenAiCompatibleServer.builder().responder(q -> "main").start();
                OpenAiCompatibleServer burst =
                        OpenAiCompatibleServer.builder().responder(q -> "burst").start()) {
            main.setWaiting(12);
            try (InferenceClient client = InferenceClients.loader()
                    .env(Map.of("MAIN", main.baseUrl(), "BURST", burst.baseUrl()))
                    .load(config(64, ", maxWaiting: 8"))) {
                HybridClient hybrid = (HybridClient) client;
                ((VllmClient) hybrid.members().get("vllm-main").client()).refreshLoad();
                ChatResponse r = client.chat(ChatRequest.of("hi"));
                assertThat(r.text()).isEqualTo("burst");
                assertThat(r.receipt().route()).contains("spilled over: vllm-main at 0/64 in flight, 12 waiting");
                main.setWaiting(0);
                ((VllmClient) hybrid.members().get("vllm-main").client()).refreshLoad();
                assertThat(client.chat(ChatRequest.of("hi")).text()).isEqualTo("main");
            }
        }
    }

    @Test
    void routingErrorsNameTheKey() {
        String bad = config(2, "").replace("overflow: [burst]", "overflow: [brust]");
        try (InferenceClient c = InferenceClients.loader()
                .env(Map.of("MAIN", "http://127.0.0.1:1", "BURST", "http://127.0.0.1:2"))
                .load(bad)) {
            throw new AssertionError("expected an error, got " + c);
        } catch (ConfigurationException e) {
            assertThat(e.getMessage())
                    .isEqualTo("routing.spillover.overflow[0]: names \"brust\", which is not a provider;"
                            + " expected one of vllm-main, burst");
        }
    }
}
