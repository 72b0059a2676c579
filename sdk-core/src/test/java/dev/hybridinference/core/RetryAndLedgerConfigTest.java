package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.FlakyProviderFactory.FlakyClient;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import java.math.BigDecimal;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The top-level {@code retry:} section (retries for a provider used alone, one layer with routing) and the
 * one way to reach the costs of a loaded client: {@link InferenceClient#ledger()}.
 */
@Timeout(30)
class RetryAndLedgerConfigTest {
    private static final String PER_TOKEN = "pricing: {type: per-token, inputPerMillion: 1, outputPerMillion: 1}";

    private static InferenceClient load(String yaml) {
        return InferenceClients.loader().env(Map.of()).load(yaml);
    }

    private static String error(String yaml) {
        try (InferenceClient c = load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    private static List<Attempt.Outcome> outcomes(Receipt r) {
        return r.attempts().stream().map(Attempt::outcome).toList();
    }

    @Test
    void aRetrySectionRetriesAProviderUsedAloneAndTheReceiptShowsEveryAttempt() {
        String yaml = "providers:\n  main: {type: flaky, failures: 2, " + PER_TOKEN + "}\n"
                + "retry: {maxAttempts: 3, initialBackoff: 0ms, maxBackoff: 0ms}\n";
        try (InferenceClient c = load(yaml)) {
            ChatResponse r = c.chat(ChatRequest.of("hello"));

            assertThat(r.text()).isEqualTo("ok");
            assertThat(r.receipt().providerId()).isEqualTo("main");
            assertThat(outcomes(r.receipt()))
                    .containsExactly(Attempt.Outcome.FAILED, Attempt.Outcome.FAILED, Attempt.Outcome.SUCCEEDED);
            assertThat(r.receipt().route()).startsWith("main alone");
            FlakyClient provider = c.unwrap(FlakyClient.class).orElseThrow();
            assertThat(provider.requests()).hasSize(3);
            // Every attempt was recorded once by the provider; the receipt's cost is their sum.
            CostLedger ledger = c.ledger().orElseThrow();
            assertThat(ledger.totals().calls()).isEqualTo(3);
            assertThat(ledger.total()).isEqualByComparingTo(r.receipt().cost());
            assertThat(r.receipt().cost()).isEqualByComparingTo("0.000011");
        }
    }

    @Test
    void attemptsStopAtMaxAttemptsAndTheFailureCarriesThemAll() {
        String yaml = "providers:\n  main: {type: flaky, failures: 5}\n"
                + "retry: {maxAttempts: 2, initialBackoff: 0ms, maxBackoff: 0ms}\n";
        try (InferenceClient c = load(yaml)) {
            assertThatThrownBy(() -> c.chat(ChatRequest.of("hello")))
                    .isInstanceOfSatisfying(
                            ProviderUnavailableException.class,
                            e -> assertThat(outcomes(e.partialReceipt().orElseThrow()))
                                    .containsExactly(Attempt.Outcome.FAILED, Attempt.Outcome.FAILED));
            assertThat(c.unwrap(FlakyClient.class).orElseThrow().requests()).hasSize(2);
        }
    }

    @Test
    void withoutARetrySectionALoneProviderIsReturnedAsItIsAndTriedOnce() {
        try (InferenceClient c = load("providers:\n  main: {type: flaky, failures: 1}\n")) {
            assertThat(c).isInstanceOf(FlakyClient.class);
            assertThatThrownBy(() -> c.chat(ChatRequest.of("hello"))).isInstanceOf(ProviderUnavailableException.class);
            assertThat(((FlakyClient) c).requests()).hasSize(1);
            assertThat(c.ledger()).isPresent();
        }
    }

    @Test
    void withRoutingTheTopLevelRetrySectionIsTheCompositesOnlyRetryLayer() {
        String providers = "providers:\n  a: {type: flaky, failures: 1}\n";
        // Routing's default would retry; a top-level maxAttempts of 1 means one attempt in all.
        try (InferenceClient c = load(providers + "routing: {}\nretry: {maxAttempts: 1}\n")) {
            assertThatThrownBy(() -> c.chat(ChatRequest.of("x"))).isInstanceOf(ProviderUnavailableException.class);
            assertThat(c.unwrap(FlakyClient.class).orElseThrow().requests()).hasSize(1);
        }
        try (InferenceClient c = load(providers + "routing: {}\nretry: {maxAttempts: 2, initialBackoff: 0ms}\n")) {
            assertThat(c.chat(ChatRequest.of("x")).text()).isEqualTo("ok");
        }
        assertThat(error(providers + "routing: {retry: {maxAttempts: 2}}\nretry: {maxAttempts: 3}\n"))
                .isEqualTo("routing.retry: set retry once: at the top level or under routing, not both (the"
                        + " composite client is the one layer that retries)");
        assertThat(error(providers + "retry: {maxAtempts: 3}\n"))
                .startsWith("retry.maxAtempts: unknown key (did you" + " mean 'maxAttempts'?)");
        assertThat(error(providers + "retry: {maxAttempts: 0}\n")).startsWith("retry.maxAttempts:");
    }

    @Test
    void theLoadedClientsLedgerHoldsEveryCallAndTheBudgetsCountInIt() {
        String yaml = "providers:\n"
                + "  a: {type: flaky, " + PER_TOKEN + "}\n"
                + "routing:\n"
                + "  budgets: [{name: tiny, period: 1d, limit: 0.00002}]\n";
        try (InferenceClient c = load(yaml)) {
            CostLedger ledger = c.ledger().orElseThrow();
            BigDecimal first = c.chat(ChatRequest.of("x")).receipt().cost();
            BigDecimal second = c.chat(ChatRequest.of("x")).receipt().cost();
            assertThat(ledger.total()).isEqualByComparingTo(first.add(second));
            assertThat(ledger.totals().provider("a")).isEqualByComparingTo("0.000022");
            // The budget's spend is what that same ledger holds.
            assertThatThrownBy(() -> c.chat(ChatRequest.of("x")))
                    .isInstanceOf(BudgetExceededException.class)
                    .hasMessageContaining("budget tiny spent");
        }
        CostLedger mine = new CostLedger();
        try (InferenceClient c =
                InferenceClients.loader().env(Map.of()).ledger(mine).load(yaml)) {
            assertThat(c.ledger()).containsSame(mine);
            c.chat(ChatRequest.of("x"));
            assertThat(mine.totals().calls()).isEqualTo(1);
        }
    }

    @Test
    void modelAliasesOnAProviderUsedAloneAreMappedBeforeItSeesTheRequest() {
        String yaml = "providers:\n" + "  main: {type: flaky, served: [llama-70b], modelAliases: {big: llama-70b}}\n";
        try (InferenceClient c = load(yaml)) {
            assertThat(c).isInstanceOf(HybridClient.class);
            ChatResponse r = c.chat(ChatRequest.builder().model("big").user("x").build());
            assertThat(c.unwrap(FlakyClient.class)
                            .orElseThrow()
                            .requests()
                            .get(0)
                            .model())
                    .contains("llama-70b");
            assertThat(r.receipt().model()).isEqualTo("llama-70b");
            assertThat(c.info().acceptsModel("big")).isTrue();
            assertThatThrownBy(() -> c.chat(
                            ChatRequest.builder().model("small").user("x").build()))
                    .isInstanceOf(InvalidRequestException.class)
                    .hasMessage("main: no member can take this request: main: does not serve model small (serves big,"
                            + " llama-70b)");
        }
    }
}
