package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.internal.PulledStream;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** What the provider base class measures and charges, whatever the provider: the receipt's cost facts. */
@Timeout(30)
class CostAccountingTest {
    private static final Instant T0 = Instant.parse("2026-11-27T10:00:00Z");

    /** A clock the test moves by hand. */
    private static final class HandClock extends Clock {
        final AtomicReference<Instant> now = new AtomicReference<>(T0);

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now.get();
        }

        void advance(Duration d) {
            now.updateAndGet(i -> i.plus(d));
        }
    }

    /** A provider that answers what the test supplies, and streams three words. */
    private static final class Provider extends AbstractProviderClient {
        private final Supplier<ProviderResult> answer;

        Provider(String id, Pricing pricing, CostLedger ledger, Clock clock, Supplier<ProviderResult> answer) {
            super(id, "test", DeploymentKind.SERVERLESS, pricing, ledger, clock);
            this.answer = answer;
        }

        @Override
        protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
            return answer.get();
        }

        @Override
        protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
            List<String> words = List.of("one", " two", " three");
            return new ProviderStream() {
                private int i;

                @Override
                public ChatChunk next() {
                    return i == words.size() ? null : new ChatChunk(words.get(i++), null);
                }

                @Override
                public ProviderResult result() {
                    return answer.get().toBuilder()
                            .text(String.join("", words.subList(0, i)))
                            .build();
                }

                @Override
                public void close() {}
            };
        }
    }

    private static ProviderResult plain() {
        return ProviderResult.builder()
                .text("ok")
                .finishReason(FinishReason.STOP)
                .usage(new Usage(10, 3, 0))
                .build();
    }

    @Test
    void instanceCapacityIsRegisteredWhenTheClientIsBuiltAndStoppedWhenItCloses() {
        HandClock clock = new HandClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofDays(1));
        Provider p = new Provider(
                "gpu",
                new Pricing.PerInstanceHour(new BigDecimal("3.60"), 2),
                ledger,
                clock,
                CostAccountingTest::plain);
        Provider api = new Provider(
                "api",
                new Pricing.PerToken(BigDecimal.ONE, BigDecimal.ONE, null),
                ledger,
                clock,
                CostAccountingTest::plain);
        clock.advance(Duration.ofHours(1));
        assertThat(ledger.capacity("gpu").orElseThrow().billed()).isEqualByComparingTo("7.20"); // 2 x $3.60 x 1 h
        assertThat(ledger.capacity("api")).isEmpty();
        p.close();
        api.close();
        clock.advance(Duration.ofHours(1));
        CapacityReport after = ledger.capacity("gpu").orElseThrow();
        assertThat(after.uptime()).isEqualTo(Duration.ofHours(1));
        assertThat(after.billed()).isEqualByComparingTo("7.20");
    }

    @Test
    void aProvidersOwnComputeTimeAndBytesPriceTheCallExactly() {
        Pricing.PerGbSecond pricing = new Pricing.PerGbSecond(
                new BigDecimal("0.00002"),
                new BigDecimal("6"),
                Duration.ofMillis(1),
                Duration.ZERO,
                new BigDecimal("0.016"));
        CostLedger ledger = new CostLedger();
        try (Provider p = new Provider(
                "sls",
                pricing,
                ledger,
                Clock.systemUTC(),
                () -> plain().toBuilder()
                        .computeTime(Duration.ofNanos(1_234_567_800))
                        .requestBytes(1L << 20)
                        .responseBytes(2L << 20)
                        .coldStart(ColdStart.observed(Duration.ofSeconds(2)))
                        .attribute("variant", "AllTraffic")
                        .build())) {
            Receipt r = p.chat(ChatRequest.of("hi")).receipt();
            assertThat(r.computeTime()).isEqualTo(Duration.ofNanos(1_234_567_800));
            assertThat(r.requestBytes()).isEqualTo(1L << 20);
            assertThat(r.responseBytes()).isEqualTo(2L << 20);
            // 1235 ms x 6 GB x $0.00002 + 3 MiB x $0.016/GB = $0.0001482 + $0.000046875
            assertThat(r.cost()).isEqualByComparingTo("0.000195075");
            assertThat(r.costEstimated()).isFalse();
            assertThat(r.coldStart()).isEqualTo(ColdStart.observed(Duration.ofSeconds(2)));
            assertThat(r.attributes()).containsEntry("variant", "AllTraffic");
            assertThat(r.summary()).contains("cost $0.000195075").contains("cold start 2000 ms");
            assertThat(ledger.total()).isEqualByComparingTo("0.000195075");
        }
    }

    @Test
    void withoutTheProvidersFigureComputeTimeLeavesOutTheTimeTheReaderHeldTheStream() throws Exception {
        Pricing.PerComputeTime pricing =
                new Pricing.PerComputeTime(new BigDecimal("0.001"), Duration.ofMillis(1), Duration.ZERO, null);
        try (Provider p = new Provider("sls", pricing, null, Clock.systemUTC(), CostAccountingTest::plain)) {
            long held = 0;
            ChatResponse done;
            try (ChatStream s = p.stream(ChatRequest.of("hi"))) {
                while (true) {
                    long before = System.nanoTime();
                    Thread.sleep(40); // the reader is busy with something else
                    held += System.nanoTime() - before;
                    if (!s.hasNext()) {
                        break;
                    }
                    s.next();
                }
                done = s.response();
            }
            Receipt r = done.receipt();
            assertThat(r.totalTime().toNanos()).isGreaterThanOrEqualTo(held);
            assertThat(r.computeTime()).isLessThanOrEqualTo(r.totalTime().minusNanos(held));
            assertThat(r.costEstimated()).isTrue();
            // The cost is the pricing applied to the receipt's own compute time.
            assertThat(r.cost())
                    .isEqualByComparingTo(
                            pricing.costOf(new Pricing.BillableUsage(r.usage(), r.computeTime(), Duration.ZERO)));
        }
    }

    @Test
    void aStreamClosedWhileHeldIsChargedWithoutTheHoldingTime() throws Exception {
        Pricing.PerComputeTime pricing =
                new Pricing.PerComputeTime(new BigDecimal("0.001"), Duration.ZERO, Duration.ZERO, null);
        try (Provider p = new Provider("sls", pricing, null, Clock.systemUTC(), CostAccountingTest::plain)) {
            ChatStream s = p.stream(ChatRequest.of("hi"));
            assertThat(s.next().text()).isEqualTo("one");
            long before = System.nanoTime();
            Thread.sleep(60);
            long held = System.nanoTime() - before;
            s.close();
            CancelledException cancelled =
                    (CancelledException) ((PulledStream) s).failure().orElseThrow();
            Receipt r = cancelled.partialReceipt().orElseThrow();
            assertThat(r.computeTime()).isLessThanOrEqualTo(r.totalTime().minusNanos(held));
            assertThat(r.usage().outputTokens()).isEqualTo(3); // the partial result's usage
        }
    }

    @Test
    void callsOnOneInstanceShareItsTimeSoTheirChargesNeverExceedIt() throws Exception {
        CountDownLatch bothIn = new CountDownLatch(2);
        CountDownLatch release = new CountDownLatch(1);
        Supplier<ProviderResult> blocking = () -> {
            bothIn.countDown();
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return plain();
        };
        Pricing.PerInstanceHour pricing = new Pricing.PerInstanceHour(new BigDecimal("3600"), 1);
        try (Provider p = new Provider("one", pricing, null, Clock.systemUTC(), blocking)) {
            long start = System.nanoTime();
            var a = p.chatAsync(ChatRequest.of("a"));
            var b = p.chatAsync(ChatRequest.of("b"));
            assertThat(bothIn.await(10, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(20);
            release.countDown();
            Receipt ra = a.get().receipt();
            Receipt rb = b.get().receipt();
            long window = System.nanoTime() - start;
            // Together they occupied at most the one instance for the whole window...
            assertThat(ra.instanceTime().plus(rb.instanceTime()).toNanos()).isLessThanOrEqualTo(window);
            // ...and each less than its own duration, having shared it.
            assertThat(ra.instanceTime()).isLessThan(ra.totalTime());
            assertThat(rb.instanceTime()).isLessThan(rb.totalTime());
            // $3600/h is $1/s: the cost is the instance time in seconds, to 12 places.
            assertThat(ra.cost())
                    .isEqualByComparingTo(
                            pricing.costOf(new Pricing.BillableUsage(ra.usage(), Duration.ZERO, ra.instanceTime())));
            assertThat(ra.costEstimated()).isFalse();
        }
    }

    @Test
    void aBlockingCallThatFailsAfterTheServiceBilledItChargesWhatTheProviderSaidItProduced() {
        Pricing.PerToken pricing = new Pricing.PerToken(new BigDecimal("1"), new BigDecimal("2"), null);
        CostLedger ledger = new CostLedger();
        try (AbstractProviderClient p =
                new AbstractProviderClient(
                        "filtered", "test", DeploymentKind.SERVERLESS, pricing, ledger, Clock.systemUTC()) {
                    @Override
                    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
                        ctx.producedBeforeFailure(plain());
                        throw new dev.hybridinference.core.ContentFilteredException(
                                "answer filtered", "filtered", null, 0, null, null);
                    }

                    @Override
                    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
                        throw new UnsupportedOperationException();
                    }
                }) {
            dev.hybridinference.core.InferenceException e = org.assertj.core.api.Assertions.catchThrowableOfType(
                    dev.hybridinference.core.ContentFilteredException.class, () -> p.chat(ChatRequest.of("hi")));
            Receipt partial = e.partialReceipt().orElseThrow();
            assertThat(partial.usage()).isEqualTo(new Usage(10, 3, 0));
            // 10 input tokens at $1 and 3 output tokens at $2 per million
            assertThat(partial.cost()).isEqualByComparingTo("0.000016");
            assertThat(ledger.totals().total()).isEqualByComparingTo("0.000016");
        }
    }

    @Test
    void aProvidersOwnInstanceTimeWins() {
        Pricing.Amortized pricing = new Pricing.Amortized(new BigDecimal("3600"));
        try (Provider p = new Provider(
                "local",
                pricing,
                null,
                Clock.systemUTC(),
                () -> plain().toBuilder().instanceTime(Duration.ofMillis(250)).build())) {
            Receipt r = p.chat(ChatRequest.of("hi")).receipt();
            assertThat(r.instanceTime()).isEqualTo(Duration.ofMillis(250));
            assertThat(r.cost()).isEqualByComparingTo("0.25"); // 0.25 s at $1/s
        }
    }

    @Test
    void instanceSecondCapacityIsEstimatedAndEachCallPaysItsShare() {
        HandClock clock = new HandClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofDays(1));
        Pricing.PerInstanceSecond pricing =
                Pricing.PerInstanceSecond.perSecond(new BigDecimal("0.0002"), 0, Duration.ofMinutes(15), 5);
        try (Provider p = new Provider(
                "run",
                pricing,
                ledger,
                clock,
                () -> plain().toBuilder().coldStart(ColdStart.OBSERVED).build())) {
            Receipt r = p.chat(ChatRequest.of("hi")).receipt();
            assertThat(r.costEstimated()).isTrue();
            assertThat(r.cost()).isEqualByComparingTo(pricing.instanceCost(r.instanceTime()));
            clock.advance(Duration.ofMinutes(5));
            CapacityReport c = ledger.capacity("run").orElseThrow();
            assertThat(c.estimated()).isTrue();
            assertThat(c.instances()).isEqualTo(1); // the cold start's instance, not yet scaled in
            assertThat(c.instanceTime()).isEqualTo(Duration.ofMinutes(5)); // started at T0, billed up to now
            assertThat(c.billed()).isEqualByComparingTo("0.06"); // 300 s x $0.0002
            assertThat(c.attributed()).isEqualByComparingTo(r.cost());
        }
    }
}
