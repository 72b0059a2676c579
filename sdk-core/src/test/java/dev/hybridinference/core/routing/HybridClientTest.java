package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The composite client with scripted in-process members; no test sleeps for backoff. */
@Timeout(60)
class HybridClientTest {
    private final CostLedger ledger = new CostLedger();
    private final List<Duration> sleeps = new CopyOnWriteArrayList<>();
    private final AtomicLong now = new AtomicLong(1_000_000_000L);

    private HybridClient.Builder builder() {
        return HybridClient.builder().sleeper(sleeps::add).random(() -> 0.5).nanoTime(now::get);
    }

    private static ChatRequest ask(String text) {
        return ChatRequest.of(text);
    }

    private static InferenceException unavailable(String id) {
        return new ProviderUnavailableException("down", id, null, 503, null, null);
    }

    private static List<Attempt.Outcome> outcomes(Receipt r) {
        List<Attempt.Outcome> out = new ArrayList<>();
        r.attempts().forEach(a -> out.add(a.outcome()));
        return out;
    }

    @Test
    void tiersAreChosenByAliasSizeTagAndHint() {
        ScriptedMember small = ScriptedMember.perToken("small", ledger);
        ScriptedMember large = ScriptedMember.perToken("large", ledger);
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("small", List.of("small"))
                .tier("large", List.of("large"))
                .rule(TierRule.model("big-*", "large"))
                .rule(TierRule.tag("feature", "legal", "large"))
                .rule(TierRule.promptTokensAbove(100, "large"))
                .defaultTier("small")
                .build();
        try (HybridClient c = builder()
                .member("small", small)
                .member("large", large)
                .policy(policy)
                .build()) {
            assertThat(c.chat(ask("hi")).text()).isEqualTo("from small");
            ChatResponse byAlias =
                    c.chat(ChatRequest.builder().model("big-70b").user("hi").build());
            assertThat(byAlias.text()).isEqualTo("from large");
            assertThat(byAlias.receipt().route()).startsWith("tier large by rule model big-*");
            ChatResponse byTag = c.chat(ChatRequest.builder()
                    .user("hi")
                    .options(RequestOptions.builder().tag("feature", "legal").build())
                    .build());
            assertThat(byTag.text()).isEqualTo("from large");
            ChatResponse bySize = c.chat(ask("x".repeat(1000)));
            assertThat(bySize.text()).isEqualTo("from large");
            assertThat(bySize.receipt().route()).startsWith("tier large by rule prompt > 100 tokens");
            ChatResponse byHint = c.chat(ChatRequest.builder()
                    .user("x".repeat(1000))
                    .options(RequestOptions.builder().tierHint("small").build())
                    .build());
            assertThat(byHint.text()).isEqualTo("from small");
            assertThat(c.chat(TierRuleCustom.REQUEST).text()).isEqualTo("from small");
        }
    }

    /** A request no rule matches. */
    private static final class TierRuleCustom {
        static final ChatRequest REQUEST =
                ChatRequest.builder().model("tiny").user("hello").build();
    }

    @Test
    void retryableErrorsFallBackAndTheReceiptTellsEveryAttempt() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).thenFail(unavailable("a"));
        ScriptedMember b = ScriptedMember.perToken("b", ledger);
        try (HybridClient c = builder().member("a", a).member("b", b).build()) {
            ChatResponse r = c.chat(ask("hi"));
            assertThat(r.text()).isEqualTo("from b");
            assertThat(r.receipt().providerId()).isEqualTo("b");
            assertThat(outcomes(r.receipt())).containsExactly(Attempt.Outcome.FAILED, Attempt.Outcome.SUCCEEDED);
            assertThat(r.receipt().attempts().get(0).providerId()).isEqualTo("a");
            assertThat(r.receipt().route()).contains("fell back to b after ProviderUnavailableException");
            assertThat(sleeps).isEmpty();
        }
        assertThat(ledger.total()).isEqualByComparingTo(new BigDecimal("0.000015"));
    }

    @Test
    void invalidRequestsAndAuthenticationErrorsNeverFallBack() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger)
                .thenFail(new InvalidRequestException("bad", "a", null, 400, null, null))
                .thenFail(new AuthenticationException("no", "a", null, 401, null, null));
        ScriptedMember b = ScriptedMember.perToken("b", ledger);
        try (HybridClient c = builder().member("a", a).member("b", b).build()) {
            assertThatThrownBy(() -> c.chat(ask("hi")))
                    .isInstanceOf(InvalidRequestException.class)
                    .satisfies(e -> assertThat(((InferenceException) e).partialReceipt())
                            .isPresent());
            assertThatThrownBy(() -> c.chat(ask("hi"))).isInstanceOf(AuthenticationException.class);
            assertThat(b.calls()).isZero();
        }
    }

    @Test
    void contextOverflowMovesToALongerContextMember() {
        ScriptedMember shortCtx = ScriptedMember.perToken("short", ledger)
                .thenFail(new ContextLengthExceededException("too long", "short", null, 400, null, null));
        ScriptedMember alsoShort = ScriptedMember.perToken("also-short", ledger);
        ScriptedMember longCtx = ScriptedMember.perToken("long", ledger);
        try (HybridClient c = builder()
                .member(
                        "short",
                        shortCtx,
                        MemberOptions.builder().contextLength(4096).build())
                .member(
                        "also-short",
                        alsoShort,
                        MemberOptions.builder().contextLength(4096).build())
                .member(
                        "long",
                        longCtx,
                        MemberOptions.builder().contextLength(131072).build())
                .build()) {
            ChatResponse r = c.chat(ask("a very long prompt"));
            assertThat(r.text()).isEqualTo("from long");
            assertThat(alsoShort.calls()).isZero();
            assertThat(r.receipt().route()).contains("context overflow on short");
        }
    }

    @Test
    void retryAfterIsHonouredUpToItsCapAndTheDeadline() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger)
                .thenFail(new RateLimitedException("slow down", "a", null, 429, Duration.ofSeconds(3), null));
        try (HybridClient c = builder().member("a", a).build()) {
            assertThat(c.chat(ask("hi")).text()).isEqualTo("from a");
            assertThat(sleeps).containsExactly(Duration.ofSeconds(3));
        }
        sleeps.clear();
        ScriptedMember capped = ScriptedMember.perToken("a", ledger)
                .thenFail(new RateLimitedException("slow down", "a", null, 429, Duration.ofMinutes(5), null));
        RetryPolicy retry = new RetryPolicy(
                3, Duration.ofMillis(100), Duration.ofSeconds(1), 2, 0, Duration.ofSeconds(2), Duration.ofMinutes(1));
        try (HybridClient c = builder().member("a", capped).retry(retry).build()) {
            c.chat(ask("hi"));
            assertThat(sleeps).containsExactly(Duration.ofSeconds(2));
        }
        sleeps.clear();
        ScriptedMember late = ScriptedMember.perToken("a", ledger)
                .thenFail(new RateLimitedException("slow down", "a", null, 429, Duration.ofSeconds(5), null));
        try (HybridClient c = builder().member("a", late).build()) {
            ChatRequest withDeadline = ChatRequest.builder()
                    .user("hi")
                    .options(RequestOptions.builder()
                            .timeout(Duration.ofSeconds(1))
                            .build())
                    .build();
            assertThatThrownBy(() -> c.chat(withDeadline)).isInstanceOf(RateLimitedException.class);
            assertThat(sleeps).isEmpty();
        }
    }

    /** A member that fails four times in a row with a retryable error. */
    private ScriptedMember failingFourTimes() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger);
        for (int i = 0; i < 4; i++) {
            a.thenFail(unavailable("a"));
        }
        return a;
    }

    /** One member under {@code retry}, with a circuit breaker that never opens. */
    private HybridClient retrying(ScriptedMember a, RetryPolicy retry) {
        return builder()
                .member("a", a)
                .retry(retry)
                .circuitBreaker(100, Duration.ofSeconds(1))
                .build();
    }

    @Test
    void backoffGrowsExponentiallyWithJitterUntilTheAttemptsRunOut() {
        ScriptedMember a = failingFourTimes();
        RetryPolicy retry = new RetryPolicy(
                4,
                Duration.ofMillis(100),
                Duration.ofSeconds(10),
                2,
                0.2,
                Duration.ofSeconds(10),
                Duration.ofMinutes(1));
        try (HybridClient c = retrying(a, retry)) {
            assertThatThrownBy(() -> c.chat(ask("hi")))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .satisfies(e -> assertThat(((InferenceException) e)
                                    .partialReceipt()
                                    .orElseThrow()
                                    .attempts())
                            .hasSize(4));
            // jitter 0.2 with random 0.5: 0.9 of 100, 200, 400 ms
            assertThat(sleeps).containsExactly(Duration.ofMillis(90), Duration.ofMillis(180), Duration.ofMillis(360));
            assertThat(a.calls()).isEqualTo(4);
        }
    }

    /** Two members; the circuit opens after 2 failures in a row and stays open 30 s. */
    private HybridClient circuitClient(ScriptedMember flaky, ScriptedMember backup) {
        return builder()
                .member("flaky", flaky)
                .member("backup", backup)
                .circuitBreaker(2, Duration.ofSeconds(30))
                .build();
    }

    @Test
    void theTotalWaitIsCapped() {
        ScriptedMember a = failingFourTimes();
        // Waits would be 100, 200, 400 ms; a 250 ms cap allows the first only.
        RetryPolicy retry = new RetryPolicy(
                4,
                Duration.ofMillis(100),
                Duration.ofSeconds(10),
                2,
                0,
                Duration.ofSeconds(10),
                Duration.ofMillis(250));
        try (HybridClient c = retrying(a, retry)) {
            assertThatThrownBy(() -> c.chat(ask("hi")))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .satisfies(e -> assertThat(((InferenceException) e)
                                    .partialReceipt()
                                    .orElseThrow()
                                    .route())
                            .contains("gave up: waiting again would pass maxTotalWait 250 ms"));
            assertThat(sleeps).containsExactly(Duration.ofMillis(100));
            assertThat(a.calls()).isEqualTo(2);
        }
    }

    @Test
    void theCircuitOpensAfterRepeatedFailuresAndAProbeClosesIt() {
        ScriptedMember flaky = ScriptedMember.perToken("flaky", ledger)
                .thenFail(unavailable("flaky"))
                .thenFail(unavailable("flaky"));
        ScriptedMember backup = ScriptedMember.perToken("backup", ledger);
        try (HybridClient c = circuitClient(flaky, backup)) {
            c.chat(ask("1"));
            c.chat(ask("2"));
            assertThat(c.members().get("flaky").circuitOpen()).isTrue();
            ChatResponse skipped = c.chat(ask("3"));
            assertThat(skipped.text()).isEqualTo("from backup");
            assertThat(outcomes(skipped.receipt())).containsExactly(Attempt.Outcome.SKIPPED, Attempt.Outcome.SUCCEEDED);
            assertThat(skipped.receipt().attempts().get(0).error()).contains("circuit open");
            assertThat(flaky.calls()).isEqualTo(2);

            now.addAndGet(Duration.ofSeconds(31).toNanos());
            ChatResponse probe = c.chat(ask("4"));
            assertThat(probe.text()).isEqualTo("from flaky");
            assertThat(c.members().get("flaky").circuitOpen()).isFalse();
            assertThat(c.chat(ask("5")).text()).isEqualTo("from flaky");
        }
    }

    @Test
    void aFailedProbeOpensTheCircuitAgain() {
        ScriptedMember flaky = ScriptedMember.perToken("flaky", ledger);
        for (int i = 0; i < 3; i++) {
            flaky.thenFail(unavailable("flaky"));
        }
        ScriptedMember backup = ScriptedMember.perToken("backup", ledger);
        try (HybridClient c = circuitClient(flaky, backup)) {
            c.chat(ask("1"));
            c.chat(ask("2"));
            now.addAndGet(Duration.ofSeconds(31).toNanos());
            c.chat(ask("probe fails"));
            assertThat(flaky.calls()).isEqualTo(3);
            assertThat(c.members().get("flaky").circuitOpen()).isTrue();
            c.chat(ask("skipped again"));
            assertThat(flaky.calls()).isEqualTo(3);
        }
    }

    @Test
    void aMemberPredictedColdIsSkippedWhenItWouldBreakTheObjective() {
        ScriptedMember serverless = new ScriptedMember("serverless", DeploymentKind.SERVERLESS, Pricing.FREE, ledger);
        ScriptedMember server = ScriptedMember.perToken("server", ledger);
        MemberOptions cold = MemberOptions.builder()
                .idleTimeout(Duration.ofMinutes(10))
                .coldStartLatency(Duration.ofSeconds(20))
                .build();
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("serverless", "server"))
                .build();
        try (HybridClient c = builder()
                .member("serverless", serverless, cold)
                .member("server", server)
                .policy(policy)
                .build()) {
            ChatRequest fast = ChatRequest.builder()
                    .user("hi")
                    .options(RequestOptions.builder()
                            .latencyObjective(Duration.ofSeconds(2))
                            .build())
                    .build();
            ChatResponse r = c.chat(fast);
            assertThat(r.text()).isEqualTo("from server");
            assertThat(r.receipt().route()).contains("skipped cold serverless (expected 20000 ms > 2000 ms allowed)");

            // Without an objective the serverless member is called, cold start predicted.
            ChatResponse slow = c.chat(ask("hi"));
            assertThat(slow.text()).isEqualTo("from serverless");
            assertThat(slow.receipt().coldStart().predicted()).isTrue();

            // Now warm: the objective no longer rules it out.
            assertThat(c.chat(fast).text()).isEqualTo("from serverless");
            now.addAndGet(Duration.ofMinutes(11).toNanos());
            assertThat(c.members().get("serverless").predictedCold()).isTrue();
            assertThat(c.chat(fast).text()).isEqualTo("from server");
        }
    }

    @Test
    void coldStartLatencyIsLearnedFromReceipts() {
        ScriptedMember serverless = new ScriptedMember("s", DeploymentKind.SERVERLESS, Pricing.FREE, ledger);
        MemberOptions cold = MemberOptions.builder()
                .idleTimeout(Duration.ofMinutes(10))
                .coldStartLatency(Duration.ofSeconds(20))
                .build();
        try (HybridClient c = builder().member("s", serverless, cold).build()) {
            c.chat(ask("first call, predicted cold"));
            MemberState s = c.members().get("s");
            // The first call was quick, so the learned cold start moves from 20 s towards what was seen.
            assertThat(s.coldStartLatency()).isLessThan(Duration.ofSeconds(20));
        }
    }

    @Test
    void costAwarenessPrefersTheCheapestMemberThatMeetsTheObjective() {
        ScriptedMember pricey = new ScriptedMember(
                "pricey",
                DeploymentKind.SERVERLESS,
                new Pricing.PerToken(new BigDecimal("10"), new BigDecimal("30"), null),
                ledger);
        ScriptedMember cheap = new ScriptedMember(
                "cheap",
                DeploymentKind.SERVERLESS,
                new Pricing.PerToken(new BigDecimal("0.1"), new BigDecimal("0.3"), null),
                ledger);
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("pricey", "cheap"))
                .costAware(true)
                .build();
        try (HybridClient c = builder()
                .member("pricey", pricey)
                .member("cheap", cheap)
                .policy(policy)
                .build()) {
            ChatResponse r = c.chat(ask("hi"));
            assertThat(r.text()).isEqualTo("from cheap");
            assertThat(r.receipt().route()).contains("cheapest expected: cheap");
        }
    }

    @Test
    void aSpentBudgetRefusesOrDowngrades() {
        ScriptedMember big = ScriptedMember.perToken("big", ledger);
        ScriptedMember small = ScriptedMember.perToken("small", ledger);
        StandardRoutingPolicy refuse = StandardRoutingPolicy.builder()
                .tier("main", List.of("big"))
                .budget(new Budget(
                        "acme-daily", Duration.ofDays(1), new BigDecimal("0.00002"), Map.of("tenant", "acme"), null))
                .ledger(ledger)
                .build();
        ChatRequest acme = ChatRequest.builder()
                .user("hi")
                .options(RequestOptions.builder().tag("tenant", "acme").build())
                .build();
        try (HybridClient c =
                builder().member("big", big).policy(refuse).closeMembers(false).build()) {
            c.chat(acme); // $0.000015
            c.chat(acme); // $0.000030: now over
            assertThatThrownBy(() -> c.chat(acme))
                    .isInstanceOf(BudgetExceededException.class)
                    .hasMessageContaining("budget acme-daily spent ($0.00003 of $0.00002 this period");
            assertThat(c.chat(ask("other tenants are not limited")).text()).isEqualTo("from big");
        }
        StandardRoutingPolicy downgrade = StandardRoutingPolicy.builder()
                .tier("main", List.of("big"))
                .tier("cheap", List.of("small"))
                .defaultTier("main")
                .budget(new Budget("all", Duration.ofHours(1), new BigDecimal("0.00001"), Map.of(), "cheap"))
                .build();
        try (HybridClient c = builder()
                .member("big", big)
                .member("small", small)
                .policy(downgrade)
                .build()) {
            assertThat(c.chat(ask("hi")).text()).isEqualTo("from big");
            ChatResponse r = c.chat(ask("hi"));
            assertThat(r.text()).isEqualTo("from small");
            assertThat(r.receipt().route()).contains("budget all spent").contains("downgraded to tier cheap");
        }
    }

    @Test
    void aBudgetStartsFromWhatTheLedgerAlreadyHolds() {
        ScriptedMember big = ScriptedMember.perToken("big", ledger);
        big.chat(ChatRequest.builder()
                .user("spent elsewhere")
                .options(RequestOptions.builder().tag("tenant", "acme").build())
                .build());
        StandardRoutingPolicy refuse = StandardRoutingPolicy.builder()
                .tier("main", List.of("big"))
                .budget(new Budget(
                        "acme", Duration.ofDays(1), new BigDecimal("0.00001"), Map.of("tenant", "acme"), null))
                .ledger(ledger)
                .build();
        try (HybridClient c = builder().member("big", big).policy(refuse).build()) {
            assertThatThrownBy(() -> c.chat(ChatRequest.builder()
                            .user("hi")
                            .options(RequestOptions.builder()
                                    .tag("tenant", "acme")
                                    .build())
                            .build()))
                    .isInstanceOf(BudgetExceededException.class);
        }
    }

    @Test
    void sixtyFourCallersNeverExceedThePrimarysLimitAndTheLedgerMatchesTheReceipts() throws Exception {
        ScriptedMember primary = ScriptedMember.perToken("primary", ledger).latency(Duration.ofMillis(5));
        ScriptedMember burst = ScriptedMember.perToken("burst", ledger).latency(Duration.ofMillis(5));
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("primary"))
                .spillover("primary", List.of("burst"), Duration.ZERO)
                .build();
        BigDecimal[] sum = {BigDecimal.ZERO};
        try (HybridClient c = HybridClient.builder()
                .member(
                        "primary",
                        primary,
                        MemberOptions.builder().maxInFlight(4).build())
                .member("burst", burst)
                .policy(policy)
                .build()) {
            ExecutorService pool = Executors.newFixedThreadPool(64);
            List<Future<List<Receipt>>> futures = new ArrayList<>();
            for (int t = 0; t < 64; t++) {
                futures.add(pool.submit(() -> {
                    List<Receipt> mine = new ArrayList<>();
                    for (int i = 0; i < 10; i++) {
                        mine.add(c.chat(ask("hi")).receipt());
                    }
                    return mine;
                }));
            }
            int spilled = 0;
            for (Future<List<Receipt>> f : futures) {
                for (Receipt r : f.get()) {
                    sum[0] = sum[0].add(r.cost());
                    if (r.providerId().equals("burst")) {
                        spilled++;
                        assertThat(r.attempts().get(0).outcome())
                                .isIn(Attempt.Outcome.SKIPPED, Attempt.Outcome.SUCCEEDED);
                    }
                }
            }
            pool.shutdown();
            assertThat(primary.maxInFlight()).isLessThanOrEqualTo(4);
            assertThat(primary.calls()).isPositive();
            assertThat(spilled).isPositive();
            assertThat(primary.calls() + burst.calls()).isEqualTo(640);
            assertThat(c.members().get("primary").inFlight()).isZero();
        }
        assertThat(ledger.total()).isEqualByComparingTo(sum[0]);
        assertThat(ledger.totals().calls()).isEqualTo(640);
    }

    @Test
    void theSpilloverPrimaryMayWaitForASlot() throws Exception {
        ScriptedMember primary = ScriptedMember.perToken("primary", ledger).latency(Duration.ofMillis(50));
        ScriptedMember burst = ScriptedMember.perToken("burst", ledger);
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("primary"))
                .spillover("primary", List.of("burst"), Duration.ofSeconds(5))
                .build();
        try (HybridClient c = HybridClient.builder()
                .member(
                        "primary",
                        primary,
                        MemberOptions.builder().maxInFlight(1).build())
                .member("burst", burst)
                .policy(policy)
                .build()) {
            var first = c.chatAsync(ask("1"));
            var second = c.chatAsync(ask("2"));
            assertThat(first.get().text()).isEqualTo("from primary");
            ChatResponse r = second.get();
            assertThat(r.text()).isEqualTo("from primary");
            assertThat(burst.calls()).isZero();
            assertThat(primary.maxInFlight()).isEqualTo(1);
        }
    }

    @Test
    void aStreamFailsOverBeforeItsFirstChunkButNotAfter() {
        ScriptedMember broken =
                ScriptedMember.perToken("broken", ledger).then(() -> "!fail at once", () -> "!fail again");
        ScriptedMember good =
                ScriptedMember.perToken("good", ledger).then(() -> "hello world", () -> "hello !fail later");
        try (HybridClient c =
                builder().member("broken", broken).member("good", good).build()) {
            List<String> got = new ArrayList<>();
            try (ChatStream s = c.stream(ask("hi"))) {
                for (ChatChunk chunk : s) {
                    got.add(chunk.text());
                }
                assertThat(s.response().receipt().providerId()).isEqualTo("good");
                assertThat(outcomes(s.response().receipt()))
                        .containsExactly(Attempt.Outcome.FAILED, Attempt.Outcome.SUCCEEDED);
                assertThat(s.response().receipt().timeToFirstToken()).isPresent();
            }
            assertThat(got).containsExactly("hello", " world");

            try (ChatStream s = c.stream(
                    ChatRequest.builder().addMessage(Message.user("again")).build())) {
                assertThat(s.next().text()).isEqualTo("hello");
                assertThatThrownBy(s::hasNext)
                        .isInstanceOf(ProviderUnavailableException.class)
                        .satisfies(e -> assertThat(((InferenceException) e).partialReceipt())
                                .isPresent());
            }
            // The second stream failed over once (broken, before its first chunk), then not again.
            assertThat(broken.calls()).isEqualTo(2);
            assertThat(good.calls()).isEqualTo(2);
            assertThat(c.members().get("good").inFlight()).isZero();
        }
    }

    @Test
    void aHybridClientCanBeAMemberOfAnother() {
        ScriptedMember inner1 = ScriptedMember.perToken("inner1", ledger).thenFail(unavailable("inner1"));
        ScriptedMember inner2 = ScriptedMember.perToken("inner2", ledger);
        HybridClient inner = builder()
                .id("inner")
                .member("inner1", inner1)
                .member("inner2", inner2)
                .build();
        ScriptedMember outerFirst = ScriptedMember.perToken("first", ledger).thenFail(unavailable("first"));
        try (HybridClient outer = builder()
                .id("outer")
                .member("first", outerFirst)
                .member("inner", inner)
                .build()) {
            ChatResponse r = outer.chat(ask("hi"));
            assertThat(r.text()).isEqualTo("from inner2");
            assertThat(outcomes(r.receipt()))
                    .containsExactly(Attempt.Outcome.FAILED, Attempt.Outcome.FAILED, Attempt.Outcome.SUCCEEDED);
            assertThat(outer.info().type()).isEqualTo("hybrid");
        }
    }

    @Test
    void keepWarmPingsAreSentToIdleMembersAndRecordedAsKeepWarmCost() throws Exception {
        ScriptedMember serverless = ScriptedMember.perToken("serverless", ledger);
        try (HybridClient c = HybridClient.builder()
                .member(
                        "serverless",
                        serverless,
                        MemberOptions.builder()
                                .idleTimeout(Duration.ofMinutes(5))
                                .keepWarmEvery(Duration.ofMillis(30))
                                .build())
                .build()) {
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (serverless.calls() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertThat(serverless.calls()).isGreaterThanOrEqualTo(2);
            assertThat(serverless.requests().get(0).maxTokens().getAsInt()).isEqualTo(1);
        }
        assertThat(ledger.totals().tag("purpose", "keep-warm")).isPositive();
    }
}
