package dev.hybridinference.azure;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;

/**
 * Against a real Azure deployment, only when {@code AZURE_LIVE_ENDPOINT}, {@code AZURE_LIVE_API_KEY} and {@code
 * AZURE_LIVE_MODEL} are set ({@code AZURE_LIVE_API}: {@code openai-v1}, the default, or {@code inference-sdk}).
 * Each run costs a few hundred tokens.
 */
@EnabledIfEnvironmentVariable(named = "AZURE_LIVE_ENDPOINT", matches = "https://.+")
class AzureLiveTest {
    private static AzureClient client() {
        return AzureClient.builder()
                .id("azure-live")
                .api(AzureClient.Api.fromConfig(System.getenv().getOrDefault("AZURE_LIVE_API", "openai-v1"))
                        .orElseThrow())
                .endpoint(System.getenv("AZURE_LIVE_ENDPOINT"))
                .apiKey(System.getenv("AZURE_LIVE_API_KEY"))
                .model(System.getenv("AZURE_LIVE_MODEL"))
                .build();
    }

    @Test
    void aBlockingCallAndAStreamAnswerWithTheServicesUsage() {
        try (AzureClient c = client()) {
            ChatResponse r = c.chat(ChatRequest.builder()
                    .user("Say hello in three words.")
                    .maxTokens(20)
                    .build());
            assertThat(r.text()).isNotBlank();
            assertThat(r.receipt().usage().estimated()).isFalse();
            assertThat(r.receipt().usage().outputTokens()).isPositive();
            StringBuilder text = new StringBuilder();
            try (ChatStream s = c.stream(ChatRequest.builder()
                    .user("Count from one to five.")
                    .maxTokens(30)
                    .build())) {
                s.forEachRemaining(chunk -> text.append(chunk.text()));
                assertThat(s.response().text()).isEqualTo(text.toString()).isNotBlank();
            }
        }
    }
}
