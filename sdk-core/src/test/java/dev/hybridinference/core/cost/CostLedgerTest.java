package dev.hybridinference.core.cost;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class CostLedgerTest {
    private static final Instant T0 = Instant.parse("2026-11-27T10:00:00Z");

    static Receipt receipt(String provider, String model, String tenant, BigDecimal cost, Instant at) {
        return Receipt.builder()
                .providerId(provider)
                .deploymentKind(DeploymentKind.SERVER)
                .model(model)
                .startedAt(at)
                .totalTime(Duration.ofMillis(5))
                .cost(cost)
                .tags(Map.of("tenant", tenant))
                .build();
    }

    /** A clock the test moves by hand. */
    static final class MutableClock extends Clock {
        final AtomicReference<Instant> now = new AtomicReference<>(T0);

        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
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

    @Test
    void totalsAreExactUnder32ThreadsTimes1000Receipts() throws Exception {
        MutableClock clock = new MutableClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofDays(1));
        int threads = 32;
        int perThread = 1000;
        CountDownLatch start = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int thread = t;
            futures.add(pool.submit(() -> {
                start.await();
                for (int i = 0; i < perThread; i++) {
                    // Costs with many decimal places, so that any lost or doubled update shows.
                    BigDecimal cost = new BigDecimal("0.000000123456789").multiply(BigDecimal.valueOf(i % 7 + 1));
                    ledger.record(
                            receipt("p" + (thread % 4), "m" + (i % 3), "t" + (i % 5), cost, T0.plusSeconds(i % 120)));
                }
                return null;
            }));
        }
        start.countDown();
        for (Future<?> f : futures) {
            f.get();
        }
        pool.shutdown();

        BigDecimal unit = new BigDecimal("0.000000123456789");
        BigDecimal perThreadSum = BigDecimal.ZERO;
        for (int i = 0; i < perThread; i++) {
            perThreadSum = perThreadSum.add(unit.multiply(BigDecimal.valueOf(i % 7 + 1)));
        }
        BigDecimal expectedTotal = perThreadSum.multiply(BigDecimal.valueOf(threads));
        LedgerTotals totals = ledger.totals();
        assertThat(totals.calls()).isEqualTo(32_000);
        assertThat(totals.total()).isEqualByComparingTo(expectedTotal);
        assertThat(ledger.total()).isEqualByComparingTo(expectedTotal);
        assertThat(totals.provider("p0")).isEqualByComparingTo(perThreadSum.multiply(BigDecimal.valueOf(8)));
        assertThat(totals.byModel().values().stream().reduce(BigDecimal.ZERO, BigDecimal::add))
                .isEqualByComparingTo(expectedTotal);
        assertThat(totals.byTag().get("tenant").values().stream().reduce(BigDecimal.ZERO, BigDecimal::add))
                .isEqualByComparingTo(expectedTotal);

        // Minute windows: the first minute holds the receipts with i % 120 < 60.
        long inFirstMinute = 0;
        for (int i = 0; i < perThread; i++) {
            inFirstMinute += i % 120 < 60 ? 1 : 0;
        }
        LedgerTotals firstMinute = ledger.totals(T0, T0.plusSeconds(60));
        assertThat(firstMinute.calls()).isEqualTo(inFirstMinute * threads);
        LedgerTotals both = ledger.totals(T0, T0.plusSeconds(120));
        assertThat(both.total()).isEqualByComparingTo(expectedTotal);
        assertThat(ledger.totals(T0.plusSeconds(300), T0.plusSeconds(600)).calls())
                .isZero();
    }

    @Test
    void capacityReportSplitsTheBillIntoAttributedAndIdle() {
        MutableClock clock = new MutableClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofDays(1));
        ledger.record(receipt("vllm", "m", "a", new BigDecimal("0.5"), T0));
        ledger.registerCapacity("vllm", new Pricing.PerInstanceHour(new BigDecimal("2.00"), 2));
        clock.advance(Duration.ofMinutes(30));
        ledger.record(receipt("vllm", "m", "a", new BigDecimal("0.25"), clock.instant()));
        ledger.record(receipt("other", "m", "a", new BigDecimal("9"), clock.instant()));

        CapacityReport report = ledger.capacity("vllm").orElseThrow();
        assertThat(report.uptime()).isEqualTo(Duration.ofMinutes(30));
        assertThat(report.billed()).isEqualByComparingTo("2.00"); // 2 instances x $2/h x 0.5 h
        assertThat(report.attributed()).isEqualByComparingTo("0.25"); // the earlier receipt predates it
        assertThat(report.idle()).isEqualByComparingTo("1.75");
        assertThat(report.attributed().add(report.idle())).isEqualByComparingTo(report.billed());

        ledger.stopCapacity("vllm");
        clock.advance(Duration.ofHours(5));
        assertThat(ledger.capacity("vllm").orElseThrow().billed()).isEqualByComparingTo("2.00");
        assertThat(ledger.capacity("nobody")).isEmpty();
    }

    @Test
    void oldMinutesArePrunedAfterRetentionButAllTimeTotalsStay() {
        MutableClock clock = new MutableClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofHours(1));
        ledger.record(receipt("p", "m", "a", BigDecimal.ONE, T0));
        clock.advance(Duration.ofHours(2));
        ledger.record(receipt("p", "m", "a", BigDecimal.ONE, clock.instant()));
        assertThat(ledger.totals(T0, T0.plusSeconds(60)).calls()).isZero();
        assertThat(ledger.totals().calls()).isEqualTo(2);
    }

    @Test
    void aReceiptForAMinuteThatWasPrunedLandsInAFreshBucket() {
        MutableClock clock = new MutableClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofMinutes(2));
        Instant minute5 = T0.plus(Duration.ofMinutes(5));
        clock.advance(Duration.ofMinutes(5));
        ledger.record(receipt("p", "m", "a", BigDecimal.ONE, minute5));
        assertThat(ledger.totals(minute5, minute5.plusSeconds(60)).calls()).isEqualTo(1);

        // Four minutes on, a late receipt dated minute 5: recording it prunes minute 5, the one it went to.
        clock.advance(Duration.ofMinutes(4));
        ledger.record(receipt("p", "m", "a", BigDecimal.ONE, minute5));
        assertThat(ledger.totals(minute5, minute5.plusSeconds(60)).calls()).isZero();

        // Another one dated minute 5 is counted in the window again, in a bucket the ledger still holds.
        ledger.record(receipt("p", "m", "a", BigDecimal.TEN, minute5));
        LedgerTotals window = ledger.totals(minute5, minute5.plusSeconds(60));
        assertThat(window.calls()).isEqualTo(1);
        assertThat(window.total()).isEqualByComparingTo("10");
        assertThat(ledger.totals().calls()).isEqualTo(3);
    }

    @Test
    void receiptsAlternatingBetweenMinutesAreCountedInTheirOwnMinute() {
        MutableClock clock = new MutableClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofDays(1));
        for (int i = 0; i < 10; i++) {
            ledger.record(receipt("p", "m", "a", BigDecimal.ONE, T0.plusSeconds(i % 2 == 0 ? 10 : 70)));
        }
        ledger.record(receipt("p", "m", "a", BigDecimal.ONE, T0.plusSeconds(20)));
        assertThat(ledger.totals(T0, T0.plusSeconds(60)).calls()).isEqualTo(6);
        assertThat(ledger.totals(T0.plusSeconds(60), T0.plusSeconds(120)).calls())
                .isEqualTo(5);
    }

    @Test
    void instanceHourCapacityReportsItsInstanceTimeAndIsNoEstimate() {
        MutableClock clock = new MutableClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofDays(1));
        assertThat(ledger.registerCapacity("vllm", new Pricing.PerInstanceHour(new BigDecimal("4.10"), 2)))
                .isTrue();
        assertThat(ledger.registerCapacity("api", new Pricing.PerToken(BigDecimal.ONE, BigDecimal.ONE, null)))
                .isFalse();
        clock.advance(Duration.ofMinutes(15));
        ledger.record(receipt("vllm", "m", "a", new BigDecimal("0.0465000"), clock.instant()));
        CapacityReport r = ledger.capacity("vllm").orElseThrow();
        assertThat(r.instanceTime()).isEqualTo(Duration.ofMinutes(30)); // 2 instances x 15 min
        assertThat(r.billed()).isEqualByComparingTo("2.05"); // 0.25 h x 2 x $4.10
        assertThat(r.instances()).isEqualTo(2);
        assertThat(r.estimated()).isFalse();
        assertThat(r.summary())
                .isEqualTo(
                        "vllm: billed $2.05 = attributed $0.0465 + idle $2.0035 over 900000 ms of uptime, 2 instances");
        assertThat(ledger.capacity("api")).isEmpty();
        ledger.stopCapacity("vllm");
        assertThat(ledger.capacity("vllm").orElseThrow().instances()).isZero();
    }

    @Test
    void instanceSecondCapacityIsEstimatedFromTheRecordedCalls() {
        MutableClock clock = new MutableClock();
        CostLedger ledger = new CostLedger(clock, Duration.ofDays(1));
        Pricing.PerInstanceSecond pricing =
                Pricing.PerInstanceSecond.perSecond(new BigDecimal("0.0002"), 0, Duration.ofSeconds(60), 10);
        ledger.registerCapacity("run", pricing);
        // A call at 0-10 s that hit a cold start: an instance from 0 to 70 s. Its receipt was charged 10 s.
        ledger.record(Receipt.builder()
                .providerId("run")
                .deploymentKind(DeploymentKind.SERVERLESS)
                .startedAt(T0)
                .totalTime(Duration.ofSeconds(10))
                .coldStart(ColdStart.observed(Duration.ofSeconds(8)))
                .instanceTime(Duration.ofSeconds(10))
                .cost(pricing.instanceCost(Duration.ofSeconds(10)))
                .costEstimated(true)
                .build());
        clock.advance(Duration.ofSeconds(30));
        CapacityReport live = ledger.capacity("run").orElseThrow();
        assertThat(live.instances()).isEqualTo(1);
        assertThat(live.instanceTime()).isEqualTo(Duration.ofSeconds(30));
        assertThat(live.estimated()).isTrue();
        clock.advance(Duration.ofSeconds(100));
        CapacityReport after = ledger.capacity("run").orElseThrow();
        // 70 s x $0.0002 = $0.014 billed; $0.002 attributed; $0.012 idle.
        assertThat(after.instances()).isZero();
        assertThat(after.instanceTime()).isEqualTo(Duration.ofSeconds(70));
        assertThat(after.billed()).isEqualByComparingTo("0.014");
        assertThat(after.attributed()).isEqualByComparingTo("0.002");
        assertThat(after.idle()).isEqualByComparingTo("0.012");
        assertThat(after.summary()).endsWith("0 instances (estimated)");
    }
}
