package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.VirtualTime;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The composite client and the provider flow on a {@link dev.hybridinference.core.spi.TimeSource}: backoffs,
 * slot waits and keep-warm pings are tasks on the source's timer, and receipts, meters and the ledger read
 * its clocks. Time moves only when a test advances it, so nothing here sleeps, and every step is seen from
 * the thread that advances time: a future that is done right after an advance was completed by it.
 */
@Timeout(30)
class HybridClientTimeSourceTest {
    private static final Duration NS = Duration.ofNanos(1);
    /** 3 attempts; the first wait 100 ms, no jitter; Retry-After honoured up to 10 s. */
    private static final RetryPolicy RETRY = new RetryPolicy(
            3, Duration.ofMillis(100), Duration.ofSeconds(5), 2.0, 0, Duration.ofSeconds(10), Duration.ofSeconds(30));

    private final VirtualTime time = new VirtualTime();

    private static ChatRequest ask(String text) {
        return ChatRequest.of(text);
    }

    private static Duration ms(long millis) {
        return Duration.ofMillis(millis);
    }

    private static Duration s(long seconds) {
        return Duration.ofSeconds(seconds);
    }

    /** Live threads named as a client's of {@code id} (every client's threads carry its id). */
    private static List<String> threadsOf(String id) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(Thread::isAlive)
                .map(Thread::getName)
                .filter(n -> n.startsWith("hybrid-inference-" + id + "-"))
                .toList();
    }

    private static List<Attempt.Outcome> outcomes(Receipt r) {
        return r.attempts().stream().map(Attempt::outcome).toList();
    }

    /** A routing policy that goes down the members in order and keeps every receipt it is told of. */
    private static final class Recording implements RoutingPolicy {
        final List<Receipt> receipts = new CopyOnWriteArrayList<>();

        @Override
        public Route route(ChatRequest request, Map<String, MemberState> members) {
            return new Route(List.copyOf(members.keySet()), "in order", null);
        }

        @Override
        public void recorded(ChatRequest request, Receipt receipt) {
            receipts.add(receipt);
        }
    }

    // ---- backoff --------------------------------------------------------------------------------

    @Test
    void aRetryRoundStartsOnlyOnceTheBackoffHasPassedInVirtualTime() {
        VirtualMember a =
                VirtualMember.perToken("a", null, time).latency(ms(50)).thenRateLimited(s(2));
        try (HybridClient c = HybridClient.builder()
                .id("backoff-virtual")
                .timeSource(time)
                .retry(RETRY)
                .member("a", a)
                .build()) {
            CompletableFuture<ChatResponse> f = c.chatAsync(ask("hi"));
            time.advance(ms(50));
            // The first attempt failed at 50 ms, asking for 2 s: the next round waits on the timer.
            assertThat(a.calls()).isEqualTo(1);
            assertThat(f).isNotDone();

            time.advance(s(2).minus(NS));
            assertThat(a.calls()).as("calls before the backoff has passed").isEqualTo(1);
            assertThat(f).isNotDone();

            time.advance(NS);
            assertThat(a.calls())
                    .as("the second round starts as the backoff ends")
                    .isEqualTo(2);
            assertThat(f).isNotDone();

            time.advance(ms(50));
            assertThat(f).isCompleted();
            Receipt r = f.join().receipt();
            assertThat(f.join().text()).isEqualTo("from a");
            assertThat(r.startedAt()).isEqualTo(time.epoch());
            assertThat(r.totalTime()).isEqualTo(ms(2100)).isEqualTo(time.elapsed());
            assertThat(outcomes(r)).containsExactly(Attempt.Outcome.FAILED, Attempt.Outcome.SUCCEEDED);
            assertThat(r.attempts().get(1).duration()).isEqualTo(ms(50));
            // No thread of the client's waited out the backoff.
            assertThat(threadsOf("backoff-virtual")).isEmpty();
            assertThat(a.blockingCalls()).isZero();
        }
    }

    @Test
    void cancellingDuringABackoffEndsTheCallAtOnceAndNoRoundFollows() {
        VirtualMember a =
                VirtualMember.perToken("a", null, time).latency(ms(50)).thenRateLimited(s(2));
        Recording policy = new Recording();
        try (HybridClient c = HybridClient.builder()
                .id("cancel-virtual")
                .timeSource(time)
                .retry(RETRY)
                .policy(policy)
                .member("a", a)
                .build()) {
            CompletableFuture<ChatResponse> f = c.chatAsync(ask("hi"));
            time.advance(ms(50));
            time.advance(s(1));
            assertThat(policy.receipts).isEmpty();

            assertThat(f.cancel(true)).isTrue();
            assertThat(f).isCancelled();
            // The call ended at the cancel, a second before its backoff was over: its receipt says so.
            assertThat(policy.receipts).hasSize(1);
            Receipt r = policy.receipts.get(0);
            assertThat(r.totalTime()).isEqualTo(ms(1050));
            assertThat(outcomes(r)).containsExactly(Attempt.Outcome.FAILED);

            time.advance(s(10));
            assertThat(a.calls()).as("the member is not called again").isEqualTo(1);
            assertThat(c.members().get("a").inFlight()).isZero();
            assertThat(policy.receipts).hasSize(1);
        }
    }

    // ---- keep-warm ------------------------------------------------------------------------------

    private HybridClient keptWarm(String id, VirtualMember m, CostLedger ledger) {
        return HybridClient.builder()
                .id(id)
                .timeSource(time)
                .ledger(ledger)
                .member(
                        "s",
                        m,
                        MemberOptions.builder()
                                .idleTimeout(Duration.ofMinutes(5))
                                .keepWarmEvery(s(10))
                                .build())
                .build();
    }

    @Test
    void keepWarmPingsAreTimerTasksSentThroughChatAsyncToAnIdleMemberOnly() {
        CostLedger ledger = new CostLedger(time.clock(), Duration.ofDays(31));
        VirtualMember m = VirtualMember.perToken("s", null, time);
        BigDecimal perCall = new BigDecimal("0.000015"); // 10 in + 5 out at $1 per million
        HybridClient c = keptWarm("kw-virtual", m, ledger);
        try {
            assertThat(threadsOf("kw-virtual")).as("no keep-warm thread").isEmpty();

            time.advance(s(10).minus(NS));
            assertThat(m.calls()).isZero();
            time.advance(NS);
            assertThat(m.calls()).as("a ping after one period").isEqualTo(1);
            ChatRequest ping = m.requests().get(0);
            assertThat(ping.options().tags()).containsEntry("purpose", "keep-warm");
            assertThat(ping.maxTokens()).hasValue(1);
            assertThat(m.blockingCalls()).as("pings go through chatAsync").isZero();
            // The member keeps no ledger: the composite recorded the ping's receipt in its own.
            assertThat(ledger.totals().tag("purpose", "keep-warm")).isEqualByComparingTo(perCall);
            assertThat(ledger.totals().calls()).isEqualTo(1);

            // A call of 15 s from 12 s: the member is busy at 20 s, and idle only 3 s at 30 s.
            time.advanceTo(s(12));
            m.latency(s(15));
            CompletableFuture<ChatResponse> work = c.chatAsync(ask("work"));
            m.latency(Duration.ZERO);
            time.advanceTo(s(20));
            assertThat(m.calls()).as("no ping while busy").isEqualTo(2);
            time.advanceTo(s(27));
            assertThat(work).isCompleted();
            time.advanceTo(s(30));
            assertThat(m.calls()).as("no ping 3 s after a call").isEqualTo(2);
            time.advanceTo(s(40));
            assertThat(m.calls()).as("a ping once idle for a period").isEqualTo(3);
            assertThat(m.requests().get(2).options().tags()).containsEntry("purpose", "keep-warm");
            assertThat(ledger.totals().tag("purpose", "keep-warm")).isEqualByComparingTo(perCall.add(perCall));
            assertThat(threadsOf("kw-virtual")).isEmpty();
        } finally {
            time.advanceTo(s(45));
            c.close();
        }
        time.advanceTo(Duration.ofMinutes(10));
        assertThat(m.calls()).as("no ping after close").isEqualTo(3);
        assertThat(time.pending()).as("the schedule ended").isZero();
        assertThat(m.blockingCalls()).isZero();
    }

    @Test
    void aPingThatTakesTimeDoesNotCostTheMemberItsNextPing() {
        CostLedger ledger = new CostLedger(time.clock(), Duration.ofDays(31));
        VirtualMember m = VirtualMember.perToken("s", null, time).latency(s(1));
        try (HybridClient c = keptWarm("kw-slow", m, ledger)) {
            time.advanceTo(s(10));
            assertThat(m.calls()).isEqualTo(1);
            // The ping ends at 11 s; the member is then idle, and is pinged again a period later at the
            // latest, as it would be by the client's own keep-warm thread.
            time.advanceTo(s(21));
            assertThat(m.calls()).isEqualTo(2);
            time.advanceTo(s(32));
            assertThat(m.calls()).isEqualTo(3);
            assertThat(c.members().get("s").inFlight()).isZero();
        }
    }

    // ---- waiting for a slot ---------------------------------------------------------------------

    private HybridClient spillover(String id, VirtualMember primary, VirtualMember burst, Duration waitForSlot) {
        return HybridClient.builder()
                .id(id)
                .timeSource(time)
                .member(
                        "primary",
                        primary,
                        MemberOptions.builder().maxInFlight(1).build())
                .member("burst", burst)
                .policy(StandardRoutingPolicy.builder()
                        .tier("t", List.of("primary"))
                        .spillover("primary", List.of("burst"), waitForSlot)
                        .build())
                .build();
    }

    @Test
    void aCallWaitsInVirtualTimeForTheFullPrimarysSlotAndTakesItWhenItFrees() {
        VirtualMember primary = VirtualMember.perToken("primary", null, time).latency(ms(12));
        VirtualMember burst = VirtualMember.perToken("burst", null, time);
        try (HybridClient c = spillover("slot-virtual", primary, burst, ms(100))) {
            CompletableFuture<ChatResponse> first = c.chatAsync(ask("1"));
            primary.latency(ms(20));
            CompletableFuture<ChatResponse> second = c.chatAsync(ask("2"));
            assertThat(primary.calls()).isEqualTo(1);
            assertThat(threadsOf("slot-virtual"))
                    .as("no thread waits for the slot")
                    .isEmpty();

            time.advanceTo(ms(14));
            assertThat(first).isCompleted();
            // The slot freed at 12 ms; the wait looks again at 15 ms.
            assertThat(primary.calls()).isEqualTo(1);
            assertThat(second).isNotDone();
            time.advanceTo(ms(15));
            assertThat(primary.calls()).isEqualTo(2);
            time.advanceTo(ms(35));
            assertThat(second).isCompleted();

            Receipt r = second.join().receipt();
            assertThat(r.providerId()).isEqualTo("primary");
            assertThat(r.queueTime()).isEqualTo(ms(15));
            assertThat(r.totalTime()).isEqualTo(ms(35));
            assertThat(r.routeFacts().spilledOver()).isFalse();
            assertThat(burst.calls()).isZero();
            assertThat(primary.blockingCalls()).isZero();
            assertThat(threadsOf("slot-virtual")).isEmpty();
        }
    }

    @Test
    void whenNoSlotFreesWithinWaitForSlotTheCallSpillsToTheOverflowThen() {
        VirtualMember primary = VirtualMember.perToken("primary", null, time).latency(s(1));
        VirtualMember burst = VirtualMember.perToken("burst", null, time);
        try (HybridClient c = spillover("spill-virtual", primary, burst, ms(100))) {
            CompletableFuture<ChatResponse> first = c.chatAsync(ask("1"));
            CompletableFuture<ChatResponse> second = c.chatAsync(ask("2"));

            time.advanceTo(ms(100).minus(NS));
            assertThat(second).isNotDone();
            assertThat(burst.calls()).isZero();
            time.advanceTo(ms(100));
            assertThat(second).isCompleted();

            Receipt r = second.join().receipt();
            assertThat(r.providerId()).isEqualTo("burst");
            assertThat(r.queueTime()).isEqualTo(ms(100));
            assertThat(r.totalTime()).isEqualTo(ms(100));
            assertThat(r.attempts().get(0).providerId()).isEqualTo("primary");
            assertThat(r.attempts().get(0).outcome()).isEqualTo(Attempt.Outcome.SKIPPED);
            assertThat(r.attempts().get(0).error()).startsWith("no free slot");
            assertThat(r.routeFacts().spilledOver()).isTrue();
            assertThat(primary.calls()).isEqualTo(1);
            assertThat(first).isNotDone();
            time.advanceTo(s(1));
            assertThat(first).isCompleted();
            assertThat(threadsOf("spill-virtual")).isEmpty();
        }
    }

    @Test
    void cancellingWhileWaitingForASlotStopsTheWaitAndCallsNoMember() {
        VirtualMember primary = VirtualMember.perToken("primary", null, time).latency(ms(50));
        VirtualMember burst = VirtualMember.perToken("burst", null, time);
        try (HybridClient c = spillover("slot-cancel", primary, burst, s(1))) {
            CompletableFuture<ChatResponse> first = c.chatAsync(ask("1"));
            CompletableFuture<ChatResponse> second = c.chatAsync(ask("2"));
            time.advanceTo(ms(20));
            second.cancel(true);

            time.advanceTo(s(5));
            assertThat(first).isCompleted();
            assertThat(primary.calls())
                    .as("the cancelled call never took the freed slot")
                    .isEqualTo(1);
            assertThat(burst.calls()).isZero();
            assertThat(c.members().get("primary").inFlight()).isZero();
            assertThat(time.pending()).as("the wait stopped looking").isZero();
        }
    }

    // ---- the provider flow ----------------------------------------------------------------------

    @Test
    void aProviderOnATimeSourceDatesTimesAndMetersItsCallsOnIt() {
        CostLedger ledger = new CostLedger(time.clock(), Duration.ofDays(31));
        Pricing.PerInstanceHour hourly = new Pricing.PerInstanceHour(new BigDecimal("3.60"), 1);
        VirtualMember gpu = new VirtualMember("gpu", hourly, ledger, time);

        time.advanceTo(s(10));
        CompletableFuture<ChatResponse> a = gpu.latency(s(4)).chatAsync(ask("a"));
        time.advanceTo(s(12));
        CompletableFuture<ChatResponse> b = gpu.latency(s(2)).chatAsync(ask("b"));
        time.advanceTo(s(14).minus(NS));
        assertThat(a).isNotDone();
        assertThat(b).isNotDone();
        time.advanceTo(s(14));
        assertThat(a).isCompleted();
        assertThat(b).isCompleted();

        Receipt ra = a.join().receipt();
        assertThat(ra.startedAt()).isEqualTo(time.at(s(10)));
        assertThat(ra.totalTime()).isEqualTo(s(4));
        assertThat(ra.computeTime()).isEqualTo(s(4));
        // One instance: alone from 10 s to 12 s, then shared with b until 14 s.
        assertThat(ra.instanceTime()).isEqualTo(s(3));
        assertThat(ra.cost()).isEqualByComparingTo("0.003");
        Receipt rb = b.join().receipt();
        assertThat(rb.startedAt()).isEqualTo(time.at(s(12)));
        assertThat(rb.totalTime()).isEqualTo(s(2));
        assertThat(rb.instanceTime()).isEqualTo(s(1));
        assertThat(rb.cost()).isEqualByComparingTo("0.001");
        // Dated in virtual time, the receipts fall in the ledger's first minute.
        assertThat(ledger.totals(time.epoch(), time.at(Duration.ofMinutes(1))).calls())
                .isEqualTo(2);

        CapacityReport report = ledger.capacity("gpu").orElseThrow();
        assertThat(report.uptime()).isEqualTo(s(14));
        assertThat(report.billed()).isEqualByComparingTo("0.014");
        assertThat(report.attributed()).isEqualByComparingTo("0.004");
        assertThat(report.idle()).isEqualByComparingTo("0.010");

        gpu.close();
        time.advance(Duration.ofHours(1));
        assertThat(ledger.capacity("gpu").orElseThrow().uptime())
                .as("uptime stops at the close, in virtual time")
                .isEqualTo(s(14));
        assertThat(gpu.blockingCalls()).isZero();
    }
}
