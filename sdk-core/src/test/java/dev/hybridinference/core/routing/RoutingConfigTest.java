package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.RequestOptions;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The {@code routing:} section, with the test provider type {@code echo}. */
class RoutingConfigTest {
    private static final String PROVIDERS = "providers:\n"
            + "  local: {type: echo}\n"
            + "  remote: {type: echo, pricing: {type: per-token, inputPerMillion: 3, outputPerMillion: 15}}\n";

    private static String error(String yaml) {
        try (InferenceClient c = InferenceClients.loader().env(Map.of()).load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void aRoutingSectionBuildsAHybridClientOverTheProviders() {
        String yaml = PROVIDERS
                + "routing:\n"
                + "  id: front\n"
                + "  members:\n"
                + "    local: {maxInFlight: 4, contextLength: 8192}\n"
                + "    remote: {idleTimeout: 15m, coldStartLatency: 20s, contextLength: 200000}\n"
                + "  tiers:\n"
                + "    small: [local, remote]\n"
                + "    large: [remote]\n"
                + "  rules:\n"
                + "    - {tag: {feature: legal}, tier: large}\n"
                + "    - {minPromptTokens: 2001, tier: large}\n"
                + "    - {model: \"big-*\", tier: large}\n"
                + "  defaultTier: small\n"
                + "  costAware: false\n"
                + "  retry: {maxAttempts: 3, initialBackoff: 50ms, maxBackoff: 1s, jitter: 0.1, maxRetryAfter: 5s,"
                + " maxTotalWait: 4s}\n"
                + "  circuitBreaker: {failureThreshold: 3, cooldown: 10s}\n"
                + "  budgets:\n"
                + "    - {name: legal-daily, period: 1d, limit: 25, tags: {feature: legal}, downgradeTo: small}\n";
        try (InferenceClient c = InferenceClients.loader().env(Map.of()).load(yaml)) {
            assertThat(c).isInstanceOf(HybridClient.class);
            assertThat(c.info().id()).isEqualTo("front");
            HybridClient h = (HybridClient) c;
            assertThat(h.members().get("local").options().maxInFlight()).isEqualTo(4);
            assertThat(h.members().get("remote").options().idleTimeout()).hasMinutes(15);
            assertThat(c.chat(ChatRequest.of("hello")).receipt().providerId()).isEqualTo("local");
            assertThat(c.chat(ChatRequest.builder()
                                    .user("hello")
                                    .options(RequestOptions.builder()
                                            .tag("feature", "legal")
                                            .build())
                                    .build())
                            .receipt()
                            .providerId())
                    .isEqualTo("remote");
            assertThat(c.chat(ChatRequest.builder().model("big-1").user("x").build())
                            .receipt()
                            .route())
                    .startsWith("tier large by rule model big-*");
        }
    }

    @Test
    void badRoutingSectionsNameTheKey() {
        assertThat(error(PROVIDERS + "routing:\n  tiers: {small: [locl]}\n"))
                .isEqualTo(
                        "routing.tiers.small[0]: names \"locl\", which is not a provider; expected one of local, remote");
        assertThat(error(PROVIDERS + "routing:\n  tiers: {small: [local]}\n  rules: [{tag: {a: b}, tier: huge}]\n"))
                .isEqualTo("routing.rules[0].tier: names tier \"huge\", which is not defined under routing.tiers");
        assertThat(error(PROVIDERS + "routing:\n  tiers: {small: [local]}\n  rules: [{tier: small}]\n"))
                .startsWith("routing.rules[0]: expected exactly one condition");
        assertThat(error(PROVIDERS + "routing:\n  members: {local: {maxInflight: 3}}\n"))
                .startsWith("routing.members.local.maxInflight: unknown key (did you mean 'maxInFlight'?)");
        assertThat(error(PROVIDERS + "routing:\n  budgets: [{period: 1d}]\n"))
                .isEqualTo("routing.budgets[0].limit: is required: expected USD per period");
        assertThat(error(PROVIDERS + "routing:\n  retry: {jitter: 2}\n"))
                .isEqualTo("routing.retry.jitter: expected a fraction from 0 to 1, got 2.0");
        assertThat(error(PROVIDERS + "default: local\nrouting: {}\n"))
                .isEqualTo("default: set either default or routing, not both");
        assertThat(error(PROVIDERS + "routing:\n  spillover: {overflow: [remote]}\n"))
                .isEqualTo("routing.spillover.primary: is required: expected a value");
    }
}
