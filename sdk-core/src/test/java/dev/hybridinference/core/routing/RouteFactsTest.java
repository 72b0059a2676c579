package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RouteFacts;
import dev.hybridinference.core.cost.CostLedger;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The routing decision as facts on the composite client's receipts, next to the route in words. */
@Timeout(30)
class RouteFactsTest {
    private final CostLedger ledger = new CostLedger();
    private final AtomicLong now = new AtomicLong(1_000_000_000L);

    private HybridClient.Builder builder() {
        return HybridClient.builder().sleeper(d -> {}).random(() -> 0.5).nanoTime(now::get);
    }

    private static InferenceException unavailable(String id) {
        return new ProviderUnavailableException("down", id, null, 503, null, null);
    }

    @Test
    void aCallThatSpillsOverSaysSoAndNamesTheFullPrimary() throws Exception {
        CountDownLatch busy = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ScriptedMember primary = ScriptedMember.perToken("primary", ledger).then(() -> {
            busy.countDown();
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return "held";
        });
        ScriptedMember burst = ScriptedMember.perToken("burst", ledger);
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("small", List.of("primary"))
                .spillover("primary", List.of("burst"), Duration.ZERO)
                .build();
        try (HybridClient c = builder()
                .member(
                        "primary",
                        primary,
                        MemberOptions.builder().maxInFlight(1).build())
                .member("burst", burst)
                .policy(policy)
                .build()) {
            CompletableFuture<?> first = c.chatAsync(ChatRequest.of("1"));
            assertThat(busy.await(10, TimeUnit.SECONDS)).isTrue();
            Receipt r = c.chat(ChatRequest.of("2")).receipt();
            release.countDown();
            first.get(10, TimeUnit.SECONDS);

            assertThat(r.providerId()).isEqualTo("burst");
            RouteFacts f = r.routeFacts();
            assertThat(f.tier()).contains("small");
            assertThat(f.spilledOver()).isTrue();
            assertThat(f.fellBack()).isFalse();
            // The policy put the full primary last, so the overflow answered before it came up.
            assertThat(f.skipped()).isEmpty();
            assertThat(r.route()).contains("spilled over: primary");
        }
    }

    @Test
    void aPrimaryFoundFullWhenItsTurnComesIsListedAsSkipped() throws Exception {
        CountDownLatch busy = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ScriptedMember primary = ScriptedMember.perToken("primary", ledger).then(() -> {
            busy.countDown();
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return "held";
        });
        ScriptedMember burst = ScriptedMember.perToken("burst", ledger);
        // No spillover in the policy: the full primary is skipped by the client, and the next member answers.
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("primary", "burst"))
                .build();
        try (HybridClient c = builder()
                .member(
                        "primary",
                        primary,
                        MemberOptions.builder().maxInFlight(1).build())
                .member("burst", burst)
                .policy(policy)
                .build()) {
            CompletableFuture<?> first = c.chatAsync(ChatRequest.of("1"));
            assertThat(busy.await(10, TimeUnit.SECONDS)).isTrue();
            RouteFacts f = c.chat(ChatRequest.of("2")).receipt().routeFacts();
            release.countDown();
            first.get(10, TimeUnit.SECONDS);
            assertThat(f.skipped()).hasSize(1);
            assertThat(f.skipped().get(0).member()).isEqualTo("primary");
            assertThat(f.skipped().get(0).reason()).startsWith("no free slot").contains("1/1");
            assertThat(f.spilledOver()).isFalse(); // no spillover was configured
        }
    }

    @Test
    void aCallThatFellBackSaysSoAndAnUneventfulOneSaysNothing() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).thenFail(unavailable("a"));
        ScriptedMember b = ScriptedMember.perToken("b", ledger);
        StandardRoutingPolicy policy =
                StandardRoutingPolicy.builder().tier("t", List.of("a", "b")).build();
        try (HybridClient c =
                builder().member("a", a).member("b", b).policy(policy).build()) {
            RouteFacts fell = c.chat(ChatRequest.of("1")).receipt().routeFacts();
            assertThat(fell.fellBack()).isTrue();
            assertThat(fell.spilledOver()).isFalse();
            assertThat(fell.skipped()).isEmpty();
            assertThat(fell.tier()).contains("t");

            RouteFacts plain = c.chat(ChatRequest.of("2")).receipt().routeFacts();
            assertThat(plain.fellBack()).isFalse();
            assertThat(plain.skipped()).isEmpty();
        }
    }

    @Test
    void aFailedCallTellsWhetherItFellBackBeforeFailing() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).thenFail(unavailable("a"));
        ScriptedMember b = ScriptedMember.perToken("b", ledger).thenFail(unavailable("b"));
        StandardRoutingPolicy policy =
                StandardRoutingPolicy.builder().tier("t", List.of("a", "b")).build();
        try (HybridClient c = builder()
                .member("a", a)
                .member("b", b)
                .policy(policy)
                .retry(new RetryPolicy(2, Duration.ZERO, Duration.ZERO, 2, 0, Duration.ZERO, Duration.ofMinutes(1)))
                .build()) {
            assertThatThrownBy(() -> c.chat(ChatRequest.of("1")))
                    .isInstanceOfSatisfying(InferenceException.class, e -> {
                        RouteFacts f = e.partialReceipt().orElseThrow().routeFacts();
                        assertThat(f.fellBack()).isTrue();
                        assertThat(f.tier()).contains("t");
                    });
        }
    }

    @Test
    void membersSkippedForAnOpenCircuitAreListedWithTheReason() {
        ScriptedMember flaky = ScriptedMember.perToken("flaky", ledger).thenFail(unavailable("flaky"));
        ScriptedMember backup = ScriptedMember.perToken("backup", ledger);
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("flaky", "backup"))
                .build();
        try (HybridClient c = builder()
                .member("flaky", flaky)
                .member("backup", backup)
                .policy(policy)
                .circuitBreaker(1, Duration.ofMinutes(1))
                .build()) {
            c.chat(ChatRequest.of("opens the circuit"));
            RouteFacts f = c.chat(ChatRequest.of("skips flaky")).receipt().routeFacts();
            assertThat(f.skipped())
                    .containsExactly(new RouteFacts.Skip("flaky", "circuit open after repeated failures"));
            assertThat(f.spilledOver()).isFalse();
            assertThat(f.fellBack()).isFalse();
        }
    }

    @Test
    void theMembersOwnFactsCarryOverToTheCompositeReceipt() {
        RawMember raw = new RawMember("sls");
        raw.extra = b -> b.computeTime(Duration.ofMillis(1234))
                .requestBytes(100)
                .responseBytes(200)
                .coldStart(ColdStart.observed(Duration.ofSeconds(3)))
                .attribute("region", "europe-west1")
                .costEstimated(true);
        try (HybridClient c = builder().member("sls", raw).build()) {
            Receipt r = c.chat(ChatRequest.of("hi")).receipt();
            assertThat(r.computeTime()).isEqualTo(Duration.ofMillis(1234));
            assertThat(r.requestBytes()).isEqualTo(100);
            assertThat(r.responseBytes()).isEqualTo(200);
            assertThat(r.attributes()).containsEntry("region", "europe-west1");
            assertThat(r.coldStart()).isEqualTo(ColdStart.observed(Duration.ofSeconds(3)));
            assertThat(r.costEstimated()).isTrue();
        }
    }
}
