package dev.hybridinference.vllm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Model aliases and what a vLLM member serves, end to end against loopback servers. The test server answers
 * with the model name it received, so a receipt's model is what reached the server.
 */
@Timeout(60)
class VllmModelAliasTest {
    private static ChatRequest ask(String model, String text) {
        return ChatRequest.builder().model(model).user(text).build();
    }

    @Test
    void anAliasOnAProviderUsedAloneReachesTheServerAsTheServedName() {
        try (OpenAiCompatibleServer server =
                OpenAiCompatibleServer.builder().model("llama-8b").start()) {
            String yaml = "providers:\n"
                    + "  main:\n"
                    + "    type: vllm\n"
                    + "    baseUrl: ${URL}\n"
                    + "    model: llama-8b\n"
                    + "    scrapeInterval: 0s\n"
                    + "    modelAliases: {small: llama-8b}\n";
            try (InferenceClient c = InferenceClients.loader()
                    .env(Map.of("URL", server.baseUrl()))
                    .load(yaml)) {
                assertThat(c.chat(ask("small", "hi")).receipt().model()).isEqualTo("llama-8b");
                assertThat(c.unwrap(VllmClient.class)).isPresent();
                // A name it neither serves nor maps never reaches the server (a real vLLM would answer 404).
                assertThatThrownBy(() -> c.chat(ask("gpt-x", "hi")))
                        .isInstanceOf(InvalidRequestException.class)
                        .hasMessageContaining("main: does not serve model gpt-x (serves llama-8b, small)");
                assertThat(server.requestCount()).isEqualTo(1);
            }
        }
    }

    @Test
    void routingMapsAliasesPerMemberAndSkipsMembersThatDoNotServeTheModel() {
        try (OpenAiCompatibleServer small =
                        OpenAiCompatibleServer.builder().model("llama-8b").start();
                OpenAiCompatibleServer big =
                        OpenAiCompatibleServer.builder().model("llama-70b").start()) {
            String yaml = "providers:\n"
                    + "  small: {type: vllm, baseUrl: '${SMALL}', model: llama-8b, scrapeInterval: 0s}\n"
                    + "  big:\n"
                    + "    type: vllm\n"
                    + "    baseUrl: ${BIG}\n"
                    + "    model: llama-70b\n"
                    + "    scrapeInterval: 0s\n"
                    + "    modelAliases: {big-llama: llama-70b, big-fast: llama-70b}\n"
                    + "routing:\n"
                    + "  members:\n"
                    + "    big: {modelAliases: {big-fast: llama-70b-fp8}}\n"
                    + "  tiers: {default: [small, big], large: [big]}\n"
                    + "  rules: [{model: \"big-*\", tier: large}]\n"
                    + "  defaultTier: default\n";
            try (InferenceClient c = InferenceClients.loader()
                    .env(Map.of("SMALL", small.baseUrl(), "BIG", big.baseUrl()))
                    .load(yaml)) {
                Receipt byRule = c.chat(ask("big-llama", "hi")).receipt();
                assertThat(byRule.providerId()).isEqualTo("big");
                assertThat(byRule.model()).isEqualTo("llama-70b");
                assertThat(byRule.route())
                        .contains("tier large by rule model big-*", "model big-llama served by big as llama-70b");
                // The member's own mapping wins over the provider's.
                assertThat(c.chat(ask("big-fast", "hi")).receipt().model()).isEqualTo("llama-70b-fp8");
                // By tier hint, the small member comes first but does not serve the alias.
                Receipt hinted = c.chat(ChatRequest.builder()
                                .model("big-llama")
                                .user("hi")
                                .options(dev.hybridinference.core.RequestOptions.builder()
                                        .tierHint("default")
                                        .build())
                                .build())
                        .receipt();
                assertThat(hinted.providerId()).isEqualTo("big");
                assertThat(hinted.attempts().get(0).outcome()).isEqualTo(Attempt.Outcome.SKIPPED);
                assertThat(hinted.attempts().get(0).error())
                        .isEqualTo("does not serve model big-llama (serves llama-8b)");
                assertThat(small.requestCount()).isZero();
                // The served name of the small model goes to it as it is.
                assertThat(c.chat(ask("llama-8b", "hi")).receipt().providerId()).isEqualTo("small");
            }
        }
    }

    @Test
    void aContextLengthInTheProvidersSectionSendsLongPromptsElsewhere() {
        try (OpenAiCompatibleServer shortCtx = OpenAiCompatibleServer.builder().start();
                OpenAiCompatibleServer longCtx =
                        OpenAiCompatibleServer.builder().start()) {
            String yaml = "providers:\n"
                    + "  short: {type: vllm, baseUrl: '${A}', model: test-model, scrapeInterval: 0s,"
                    + " capabilities: {contextLength: 64}}\n"
                    + "  long: {type: vllm, baseUrl: '${B}', model: test-model, scrapeInterval: 0s,"
                    + " capabilities: {contextLength: 131072}}\n"
                    + "routing:\n"
                    + "  tiers: {default: [short, long]}\n";
            try (InferenceClient c = InferenceClients.loader()
                    .env(Map.of("A", shortCtx.baseUrl(), "B", longCtx.baseUrl()))
                    .load(yaml)) {
                assertThat(c.chat(ChatRequest.of("a short question")).receipt().providerId())
                        .isEqualTo("short");
                Receipt r = c.chat(ChatRequest.of("many words ".repeat(100))).receipt();
                assertThat(r.providerId()).isEqualTo("long");
                assertThat(r.attempts().get(0).error())
                        .isEqualTo("prompt of about 279 tokens exceeds its context of 64");
                assertThat(c.info().capabilities().contextLength()).isEqualTo(131072);
            }
        }
    }

    @Test
    void aServerThatHasNotListedItsModelYetTakesAnyNameUntilItHas() {
        try (OpenAiCompatibleServer server =
                OpenAiCompatibleServer.builder().model("discovered").start()) {
            String yaml =
                    "providers:\n" + "  a: {type: vllm, baseUrl: '${URL}', scrapeInterval: 0s}\n" + "routing: {}\n";
            try (InferenceClient c = InferenceClients.loader()
                    .env(Map.of("URL", server.baseUrl()))
                    .load(yaml)) {
                // Before discovery the provider lists nothing: the name goes to the server unchanged.
                assertThat(c.chat(ask("anything", "hi")).receipt().model()).isEqualTo("anything");
                // A call without a model discovers it; from then on other names are known not to be served.
                assertThat(c.chat(ChatRequest.of("hi")).receipt().model()).isEqualTo("discovered");
                assertThatThrownBy(() -> c.chat(ask("anything", "hi")))
                        .isInstanceOf(InvalidRequestException.class)
                        .hasMessageContaining("does not serve model anything (serves discovered)");
            }
        }
    }
}
