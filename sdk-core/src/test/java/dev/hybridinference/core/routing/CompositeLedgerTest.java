package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.cost.CostLedger;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link HybridClient.Builder#ledger}: one ledger, set once, for the members' costs and the budgets. */
@Timeout(30)
class CompositeLedgerTest {
    private static HybridClient.Builder builder() {
        return HybridClient.builder().sleeper(d -> {});
    }

    @Test
    void membersWithoutALedgerHaveTheirReceiptsRecordedInTheCompositesAndBudgetsCountThere() {
        CostLedger ledger = new CostLedger();
        // Built in code with no ledger of their own.
        ScriptedMember a = ScriptedMember.perToken("a", null);
        ScriptedMember b = ScriptedMember.perToken("b", null);
        a.thenFail(new ProviderUnavailableException("down", "a", null, 503, null, null));
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("all", List.of("a", "b"))
                .budget(new Budget("daily", Duration.ofDays(1), new BigDecimal("0.00003"), Map.of(), null))
                .build();
        try (HybridClient h = builder()
                .ledger(ledger)
                .member("a", a)
                .member("b", b)
                .policy(policy)
                .build()) {
            assertThat(h.ledger()).containsSame(ledger);
            Receipt first = h.chat(ChatRequest.of("x")).receipt(); // a fails, b answers
            Receipt second = h.chat(ChatRequest.of("x")).receipt();
            // Each member call is one record: the failure and both answers.
            assertThat(ledger.totals().calls()).isEqualTo(3);
            assertThat(ledger.total()).isEqualByComparingTo(first.cost().add(second.cost()));
            assertThat(ledger.totals().provider("b")).isEqualByComparingTo(first.cost());
            assertThat(ledger.total()).isEqualByComparingTo("0.00003");
            assertThatThrownBy(() -> h.chat(ChatRequest.of("x"))).isInstanceOf(BudgetExceededException.class);
        }
    }

    @Test
    void aBudgetStartsFromWhatTheLedgerAlreadyHolds() {
        CostLedger ledger = new CostLedger();
        ScriptedMember earlier = ScriptedMember.perToken("a", ledger);
        earlier.chat(ChatRequest.of("x")); // half the budget, spent before the composite existed
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .budget(new Budget("daily", Duration.ofDays(1), new BigDecimal("0.00003"), Map.of(), null))
                .build();
        try (HybridClient h = builder()
                .ledger(ledger)
                .member("a", ScriptedMember.perToken("a", ledger))
                .policy(policy)
                .build()) {
            h.chat(ChatRequest.of("x"));
            assertThatThrownBy(() -> h.chat(ChatRequest.of("x"))).isInstanceOf(BudgetExceededException.class);
        }
    }

    @Test
    void twoLedgersAreRefused() {
        CostLedger ledger = new CostLedger();
        assertThatThrownBy(() -> builder()
                        .ledger(ledger)
                        .member("a", ScriptedMember.perToken("a", new CostLedger()))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("member \"a\" records into another ledger than this client's");
        StandardRoutingPolicy elsewhere =
                StandardRoutingPolicy.builder().ledger(new CostLedger()).build();
        assertThatThrownBy(() -> builder()
                        .ledger(ledger)
                        .member("a", ScriptedMember.perToken("a", ledger))
                        .policy(elsewhere)
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("the routing policy counts its budgets in another ledger");
    }

    @Test
    void withoutALedgerSetTheCompositeReportsTheOneItsMembersShare() {
        CostLedger ledger = new CostLedger();
        try (HybridClient h = builder()
                .member("a", ScriptedMember.perToken("a", ledger))
                .member("b", ScriptedMember.perToken("b", ledger))
                .build()) {
            assertThat(h.ledger()).containsSame(ledger);
            h.chat(ChatRequest.of("x"));
            assertThat(ledger.totals().calls()).isEqualTo(1);
        }
        try (HybridClient h = builder()
                .member("a", ScriptedMember.perToken("a", ledger))
                .member("b", ScriptedMember.perToken("b", new CostLedger()))
                .build()) {
            assertThat(h.ledger()).isEmpty();
        }
    }

    @Test
    void alwaysOnCapacityWithoutALedgerIsBilledInTheComposites() {
        CostLedger ledger = new CostLedger();
        ScriptedMember server = new ScriptedMember(
                "gpu", DeploymentKind.SERVER, new Pricing.PerInstanceHour(new BigDecimal("3.60"), 1), null);
        try (HybridClient h = builder().ledger(ledger).member("gpu", server).build()) {
            h.chat(ChatRequest.of("x"));
            assertThat(ledger.capacity("gpu")).isPresent();
        }
    }
}
