package dev.hybridinference.vllm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import java.math.BigDecimal;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The vLLM provider as users get it: from a configuration document. */
class VllmConfigTest {
    private static String error(String yaml, Map<String, String> env) {
        try (InferenceClient c = InferenceClients.loader().env(env).load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    private static String error(String yaml) {
        return error(yaml, Map.of());
    }

    @Test
    void aConfiguredClientTalksToTheServerWithTheKeyFromTheEnvironment() {
        try (OpenAiCompatibleServer server = OpenAiCompatibleServer.builder()
                .apiKey("sk-env")
                .responder(q -> "ok")
                .start()) {
            CostLedger ledger = new CostLedger();
            String yaml = "providers:\n"
                    + "  main:\n"
                    + "    type: vllm\n"
                    + "    baseUrls: [\"${URL}\"]\n"
                    + "    apiKey: ${KEY}\n"
                    + "    model: test-model\n"
                    + "    scrapeInterval: 0s\n"
                    + "    readTimeout: 30s\n"
                    + "    pricing: {perHour: 7.20}\n";
            try (InferenceClient c = InferenceClients.loader()
                    .env(Map.of("URL", server.baseUrl(), "KEY", "sk-env"))
                    .ledger(ledger)
                    .load(yaml)) {
                assertThat(c).isInstanceOf(VllmClient.class);
                assertThat(c.info().type()).isEqualTo("vllm");
                assertThat(c.info().deploymentKind()).isEqualTo(DeploymentKind.SERVER);
                assertThat(c.info().models()).containsExactly("test-model");
                assertThat(c.info().pricing()).isEqualTo(new Pricing.PerInstanceHour(new BigDecimal("7.20"), 1));
                assertThat(c.chat(ChatRequest.of("hi")).text()).isEqualTo("ok");
                assertThat(ledger.capacity("main")).isPresent();
            }
        }
    }

    @Test
    void pricingDefaultsToInstanceHoursOfEveryReplica() {
        try (InferenceClient c = InferenceClients.fromConfig(
                "providers:\n  a: {type: vllm, baseUrls: [http://127.0.0.1:1, http://127.0.0.1:2], scrapeInterval: 0s}\n")) {
            assertThat(c.info().pricing()).isEqualTo(new Pricing.PerInstanceHour(BigDecimal.ZERO, 2));
        }
        try (InferenceClient c = InferenceClients.fromConfig(
                "providers:\n  a: {type: vllm, baseUrl: http://127.0.0.1:1,"
                        + " scrapeInterval: 0s, pricing: {type: per-token, inputPerMillion: 0.1, outputPerMillion: 0.2}}\n")) {
            assertThat(c.info().pricing()).isInstanceOf(Pricing.PerToken.class);
        }
    }

    @Test
    void badConfigurationsNameTheKeyAndWhatWasExpected() {
        assertThat(error("providers:\n  a: {type: vllm}\n"))
                .isEqualTo("providers.a.baseUrl: is required: expected the server's base URL, such as"
                        + " http://localhost:8000 (or baseUrls: a list)");
        assertThat(error("providers:\n  a: {type: vllm, baseUrl: \"localhost:8000\"}\n"))
                .isEqualTo("providers.a.baseUrl: expected an http:// or https:// URL, got \"localhost:8000\"");
        assertThat(error("providers:\n  a: {type: vllm, baseUrls: [http://ok:1, \"ftp://x\"]}\n"))
                .startsWith("providers.a.baseUrls[1]: expected an http:// or https:// URL");
        assertThat(error("providers:\n  a: {type: vllm, baseUrl: http://h:1, baseUrls: [http://h:2]}\n"))
                .isEqualTo("providers.a.baseUrl: set either baseUrl or baseUrls, not both");
        assertThat(error("providers:\n  a: {type: vllm, baseUrl: http://h:1, pricing: {perHour: -2}}\n"))
                .isEqualTo("providers.a.pricing.perHour: expected a non-negative decimal number, got -2");
        assertThat(error("providers:\n  a: {type: vllm, baseUrl: http://h:1, readTimeout: -5s}\n"))
                .startsWith("providers.a.readTimeout: expected a duration");
        assertThat(error("providers:\n  a: {type: vllm, baseUrl: http://h:1, replicas: 2}\n"))
                .startsWith("providers.a.replicas: unknown key; allowed here: affinityMaxWaiting, apiKey, baseUrl");
        assertThat(error("providers:\n  a: {type: vllm, baseUrl: http://h:1, scrapeIntervall: 1s}\n"))
                .startsWith("providers.a.scrapeIntervall: unknown key (did you mean 'scrapeInterval'?)");
        assertThat(error("providers:\n  a: {type: vllm, baseUrl: \"${VLLM_URL}\"}\n"))
                .startsWith("providers.a.baseUrl: environment variable VLLM_URL is not set");
        assertThat(error("providers:\n  a: {type: vllm, baseUrl: http://h:1, pricing: {perHour: 1, instances: 0}}\n"))
                .isEqualTo("providers.a.pricing.instances: expected a whole number of at least 1, got 0");
    }

    @Test
    void theApiKeyNeverAppearsInErrors() {
        String msg = error("providers:\n  a: {type: vllm, baseUrl: http://h:1, apiKey: sk-live-123, apiKeys: x}\n");
        assertThat(msg).doesNotContain("sk-live-123");
        assertThatThrownBy(() -> InferenceClients.loader()
                        .env(Map.of())
                        .load(
                                "providers:\n  a: {type: vllm, baseUrl: \"http://user:sk-pass@127.0.0.1:1\", scrapeInterval: 0s,"
                                        + " connectTimeout: 200ms}\n")
                        .chat(ChatRequest.of("x")))
                .hasMessageNotContaining("sk-pass");
    }

    @Test
    void limitsFromTheConfigBoundWhatTheServerMaySend() {
        try (OpenAiCompatibleServer server = OpenAiCompatibleServer.builder()
                .responder(q -> "x".repeat(4000))
                .start()) {
            String yaml = "providers:\n"
                    + "  main:\n"
                    + "    type: vllm\n"
                    + "    baseUrl: ${URL}\n"
                    + "    model: m\n"
                    + "    scrapeInterval: 0s\n"
                    + "    connectionIdleTimeout: 2s\n"
                    + "    limits: {maxResponseBytes: 2048}\n";
            try (InferenceClient c = InferenceClients.loader()
                    .env(Map.of("URL", server.baseUrl()))
                    .load(yaml)) {
                assertThatThrownBy(() -> c.chat(ChatRequest.of("hi")))
                        .isInstanceOf(MalformedResponseException.class)
                        .hasMessageContaining("exceeds the limit of 2048 bytes");
            }
        }
    }

    @Test
    void limitsAndIntervalsOutOfRangeAreRefusedWithTheirPath() {
        String base = "providers:\n  main:\n    type: vllm\n    baseUrl: http://127.0.0.1:1\n    model: m\n";
        assertThat(error(base + "    limits: {maxToolCalls: 0}\n")).contains("providers.main.limits.maxToolCalls");
        assertThat(error(base + "    limits: {maxLinBytes: 4096}\n")).contains("providers.main.limits.maxLinBytes");
        assertThat(error(base + "    scrapeInterval: 1ms\n")).contains("providers.main.scrapeInterval");
        assertThat(error(base + "    connectionIdleTimeout: 0s\n")).contains("providers.main.connectionIdleTimeout");
    }
}
