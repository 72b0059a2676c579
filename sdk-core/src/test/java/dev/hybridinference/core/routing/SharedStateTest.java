package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.CapacityExceededException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.MemoryStateFactory;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.spi.SharedState;
import dev.hybridinference.core.spi.VirtualTime;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Clients sharing one {@link SharedState} behave as one: a budget counts everyone's spend (and the calls in
 * progress), a circuit one opens the others skip, an in-flight limit holds across them and a dead one's
 * slots lapse, keep-warm pings go out once a period; a store that fails never fails a call, and what was
 * spent meanwhile reaches it when it is back.
 */
@Timeout(30)
class SharedStateTest {
    private static final RetryPolicy ONCE =
            new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1, 0, Duration.ZERO, Duration.ZERO);
    private static final BigDecimal CALL = new BigDecimal("0.30");

    private final VirtualTime time = new VirtualTime();
    private final FlakyState store = new FlakyState(SharedState.inMemory(time));
    private final List<HybridClient> clients = new ArrayList<>();
    private final ExecutorService threads = Executors.newCachedThreadPool();

    @AfterEach
    void closeAll() {
        threads.shutdownNow();
        clients.forEach(HybridClient::close);
    }

    /** A store that throws while it is down, and counts what it was asked. */
    static final class FlakyState implements SharedState {
        private final SharedState inner;
        final AtomicInteger asked = new AtomicInteger();
        volatile boolean down;

        FlakyState(SharedState inner) {
            this.inner = inner;
        }

        private void check() {
            asked.incrementAndGet();
            if (down) {
                throw new IllegalStateException("connection refused");
            }
        }

        @Override
        public long add(String key, long amount, Duration ttl) {
            check();
            return inner.add(key, amount, ttl);
        }

        @Override
        public long get(String key) {
            check();
            return inner.get(key);
        }

        @Override
        public void openCircuit(String key, Duration cooldown) {
            check();
            inner.openCircuit(key, cooldown);
        }

        @Override
        public void closeCircuit(String key) {
            check();
            inner.closeCircuit(key);
        }

        @Override
        public Optional<Duration> circuitOpen(String key) {
            check();
            return inner.circuitOpen(key);
        }

        @Override
        public Optional<String> acquireSlot(String key, int limit, Duration lease) {
            check();
            return inner.acquireSlot(key, limit, lease);
        }

        @Override
        public void releaseSlot(String key, String lease) {
            check();
            inner.releaseSlot(key, lease);
        }

        @Override
        public int slotsHeld(String key) {
            check();
            return inner.slotsHeld(key);
        }

        @Override
        public boolean claim(String key, Duration ttl) {
            check();
            return inner.claim(key, ttl);
        }

        @Override
        public String description() {
            return "flaky";
        }

        @Override
        public void close() {}
    }

    private HybridClient.Builder builder() {
        return HybridClient.builder().id("fleet").timeSource(time).retry(ONCE).sharedState(store);
    }

    private HybridClient keep(HybridClient c) {
        clients.add(c);
        return c;
    }

    private static StandardRoutingPolicy budget(String limit) {
        return StandardRoutingPolicy.builder()
                .budget(new Budget("daily", Duration.ofDays(1), new BigDecimal(limit), Map.of(), null))
                .build();
    }

    private HybridClient budgeted(FixedCostMember m, String limit) {
        StandardRoutingPolicy p = StandardRoutingPolicy.builder()
                .clock(time.clock())
                .budget(new Budget("daily", Duration.ofDays(1), new BigDecimal(limit), Map.of(), null))
                .build();
        return keep(builder().member("m", m).policy(p).build());
    }

    /** The spend of the budget's window now, as the store holds it. */
    private BigDecimal spent() {
        long window = Math.floorDiv(time.clock().millis(), Duration.ofDays(1).toMillis());
        return SharedState.usd(
                store.inner.get("fleet:budget:daily:" + Duration.ofDays(1).toMillis() + ":" + window));
    }

    private static void await(BooleanSupplier condition) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > until) {
                throw new AssertionError("condition not met in 10 s");
            }
            Thread.sleep(2);
        }
    }

    @Test
    void aBudgetCountsTheSpendOfEveryClientSharingTheState() {
        HybridClient a = budgeted(new FixedCostMember("m", CALL), "1.00");
        HybridClient b = budgeted(new FixedCostMember("m", CALL), "1.00");
        for (int i = 0; i < 4; i++) {
            assertThat((i % 2 == 0 ? a : b).chat(ChatRequest.of("x")).receipt().cost())
                    .isEqualByComparingTo(CALL);
        }
        // 1.20 spent: past the limit by less than one call, and refused by either client.
        assertThat(spent()).isEqualByComparingTo("1.20");
        assertThatThrownBy(() -> a.chat(ChatRequest.of("x")))
                .isInstanceOf(BudgetExceededException.class)
                .hasMessageContaining("budget daily spent ($1.2 of $1 this period");
        assertThatThrownBy(() -> b.chat(ChatRequest.of("x"))).isInstanceOf(BudgetExceededException.class);
        assertThat(spent()).as("refused calls hold nothing back").isEqualByComparingTo("1.20");
    }

    @Test
    void callsInProgressHoldTheirExpectedCostSoConcurrentCallsPassABudgetByOneCallAtMost() throws Exception {
        FixedCostMember m = new FixedCostMember("m", CALL).hold();
        HybridClient c = budgeted(m, "1.00");
        List<Future<?>> calls = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            calls.add(threads.submit(() -> c.chat(ChatRequest.of("x"))));
        }
        // Four calls hold 1.20 between them; every other is refused before any has finished.
        await(() -> calls.stream().filter(Future::isDone).count() == 8 && m.inFlight() == 4);
        assertThat(spent()).isEqualByComparingTo("1.20");
        m.open();
        int answered = 0;
        int refused = 0;
        for (Future<?> f : calls) {
            try {
                f.get(10, TimeUnit.SECONDS);
                answered++;
            } catch (java.util.concurrent.ExecutionException e) {
                assertThat(e.getCause()).isInstanceOf(BudgetExceededException.class);
                refused++;
            }
        }
        assertThat(answered).isEqualTo(4);
        assertThat(refused).isEqualTo(8);
        assertThat(spent()).isEqualByComparingTo("1.20");
    }

    @Test
    void aReceiptReplacesWhatItsCallHeldBack() {
        // Expected at $0.50 (its pricing), charged $0.20.
        HybridClient c = budgeted(new FixedCostMember("m", new BigDecimal("0.20"), new BigDecimal("0.50")), "1.00");
        c.chat(ChatRequest.of("x"));
        assertThat(spent()).isEqualByComparingTo("0.20");
        FixedCostMember failing = new FixedCostMember("m", CALL);
        failing.failure = () -> new ProviderUnavailableException("down", "m", null, 503, null, null);
        HybridClient d = budgeted(failing, "1.00");
        assertThatThrownBy(() -> d.chat(ChatRequest.of("x"))).isInstanceOf(ProviderUnavailableException.class);
        assertThat(spent())
                .as("a failed call costs nothing and gives its hold back")
                .isEqualByComparingTo("0.20");
    }

    @Test
    void aCircuitOneClientOpensIsSkippedByTheOthersUntilItsCooldownEnds() {
        RawMember failing = new RawMember("m");
        failing.behaviour = () -> {
            throw new ProviderUnavailableException("down", "m", null, 503, null, null);
        };
        RawMember healthy = new RawMember("m");
        List<InferenceListener.CircuitChange> heardByB = new CopyOnWriteArrayList<>();
        HybridClient a = keep(builder()
                .member("m", failing)
                .circuitBreaker(2, Duration.ofSeconds(30))
                .build());
        HybridClient b = keep(builder()
                .member("m", healthy)
                .circuitBreaker(2, Duration.ofSeconds(30))
                .listener(new InferenceListener() {
                    @Override
                    public void onCircuitChanged(CircuitChange change) {
                        heardByB.add(change);
                    }
                })
                .build());
        assertThat(b.chat(ChatRequest.of("before")).text()).isEqualTo("from m");
        for (int i = 0; i < 2; i++) {
            assertThatThrownBy(() -> a.chat(ChatRequest.of("x"))).isInstanceOf(ProviderUnavailableException.class);
        }
        time.advance(Duration.ofSeconds(10));
        assertThatThrownBy(() -> b.chat(ChatRequest.of("skipped")))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("all members' circuits are open: m (half-opens in 20 s)");
        assertThat(healthy.calls()).isEqualTo(1);
        assertThat(b.members().get("m").circuitOpen()).isTrue();
        assertThat(heardByB).singleElement().satisfies(ch -> {
            assertThat(ch.open()).isTrue();
            assertThat(ch.reason()).isEqualTo("opened by another instance");
            assertThat(ch.cooldown()).isEqualTo(Duration.ofSeconds(20));
        });
        time.advance(Duration.ofSeconds(20));
        assertThat(b.chat(ChatRequest.of("after")).text()).isEqualTo("from m");
        assertThat(heardByB).extracting(InferenceListener.CircuitChange::open).containsExactly(true, false);
    }

    @Test
    void anInFlightLimitHoldsAcrossClients() throws Exception {
        MemberOptions two = MemberOptions.builder().maxInFlight(2).build();
        FixedCostMember busy = new FixedCostMember("m", BigDecimal.ZERO).hold();
        FixedCostMember idle = new FixedCostMember("m", BigDecimal.ZERO);
        HybridClient a = keep(builder().member("m", busy, two).build());
        HybridClient b = keep(builder().member("m", idle, two).build());
        List<Future<?>> held = List.of(
                threads.submit(() -> a.chat(ChatRequest.of("1"))), threads.submit(() -> a.chat(ChatRequest.of("2"))));
        await(() -> busy.inFlight() == 2);
        assertThatThrownBy(() -> b.chat(ChatRequest.of("3")))
                .isInstanceOf(CapacityExceededException.class)
                .satisfies(e -> assertThat(((CapacityExceededException) e)
                                .partialReceipt()
                                .orElseThrow()
                                .attempts()
                                .get(0)
                                .error())
                        .isEqualTo("no free slot: 0/2 in flight here, 2/2 across instances"));
        assertThat(idle.calls()).isZero();
        busy.open();
        for (Future<?> f : held) {
            f.get(10, TimeUnit.SECONDS);
        }
        assertThat(b.chat(ChatRequest.of("4")).text()).isEqualTo("from m");
        assertThat(store.inner.slotsHeld("fleet:slots:m")).isZero();
    }

    @Test
    void theSlotsOfAClientThatStoppedComeFreeWhenTheirLeaseLapses() throws Exception {
        MemberOptions one = MemberOptions.builder().maxInFlight(1).build();
        FixedCostMember stuck = new FixedCostMember("m", BigDecimal.ZERO).hold();
        HybridClient a = keep(builder()
                .member("m", stuck, one)
                .sharedSlotLease(Duration.ofMinutes(1))
                .build());
        HybridClient b = keep(builder()
                .member("m", new FixedCostMember("m", BigDecimal.ZERO), one)
                .sharedSlotLease(Duration.ofMinutes(1))
                .build());
        Future<?> hung = threads.submit(() -> a.chat(ChatRequest.of("hangs")));
        await(() -> stuck.inFlight() == 1);
        assertThatThrownBy(() -> b.chat(ChatRequest.of("x"))).isInstanceOf(CapacityExceededException.class);
        time.advance(Duration.ofSeconds(59));
        assertThatThrownBy(() -> b.chat(ChatRequest.of("x"))).isInstanceOf(CapacityExceededException.class);
        time.advance(Duration.ofSeconds(1));
        assertThat(b.chat(ChatRequest.of("x")).text()).isEqualTo("from m");
        stuck.open();
        hung.get(10, TimeUnit.SECONDS);
    }

    @Test
    void keepWarmPingsGoOutOncePerPeriodAcrossClients() {
        MemberOptions warm = MemberOptions.builder()
                .idleTimeout(Duration.ofMinutes(5))
                .keepWarmEvery(Duration.ofSeconds(10))
                .build();
        FixedCostMember first = new FixedCostMember("m", BigDecimal.ZERO);
        FixedCostMember second = new FixedCostMember("m", BigDecimal.ZERO);
        keep(builder().member("m", first, warm).build());
        keep(builder().member("m", second, warm).build());
        time.advance(Duration.ofSeconds(100));
        assertThat(first.pings() + second.pings()).as("one ping per period").isEqualTo(10);

        // Without shared state, each client pings every period.
        VirtualTime other = new VirtualTime();
        FixedCostMember third = new FixedCostMember("m", BigDecimal.ZERO);
        FixedCostMember fourth = new FixedCostMember("m", BigDecimal.ZERO);
        keep(HybridClient.builder().timeSource(other).member("m", third, warm).build());
        keep(HybridClient.builder().timeSource(other).member("m", fourth, warm).build());
        other.advance(Duration.ofSeconds(100));
        assertThat(third.pings() + fourth.pings()).isEqualTo(20);
    }

    @Test
    void aStoreThatFailsNeverFailsACallAndGetsWhatWasSpentWhenItIsBack() {
        HybridClient c = budgeted(new FixedCostMember("m", CALL), "1.00");
        c.chat(ChatRequest.of("shared"));
        assertThat(c.sharedStateStatus().reachable()).isTrue();
        store.down = true;
        int before = store.asked.get();
        c.chat(ChatRequest.of("during 1"));
        assertThat(c.sharedStateStatus()).satisfies(s -> {
            assertThat(s.configured()).isTrue();
            assertThat(s.reachable()).isFalse();
            assertThat(s.degraded()).isTrue();
            assertThat(s.since()).contains(time.clock().instant());
            assertThat(s.lastError()).isEqualTo("IllegalStateException: connection refused");
            assertThat(s.store()).isEqualTo("flaky");
        });
        int askedOnce = store.asked.get();
        assertThat(askedOnce - before).as("one failed request, then none").isEqualTo(1);
        c.chat(ChatRequest.of("during 2"));
        c.chat(ChatRequest.of("during 3"));
        assertThat(store.asked.get()).as("the store is left alone for a second").isEqualTo(askedOnce);
        // Counted here from the last total read (0.30 before the call that failed over): 1.20 now.
        assertThatThrownBy(() -> c.chat(ChatRequest.of("during 4"))).isInstanceOf(BudgetExceededException.class);
        assertThat(c.sharedStateStatus().fallbacks()).isPositive();

        store.down = false;
        time.advance(Duration.ofSeconds(1));
        assertThatThrownBy(() -> c.chat(ChatRequest.of("after"))).isInstanceOf(BudgetExceededException.class);
        assertThat(c.sharedStateStatus().reachable()).isTrue();
        assertThat(c.sharedStateStatus().since()).isEmpty();
        assertThat(spent()).as("what was spent meanwhile reached the store").isEqualByComparingTo("1.20");
    }

    @Test
    void aStoreThatIsDownFromTheStartLeavesEachClientItsOwnState() {
        store.down = true;
        MemberOptions one = MemberOptions.builder()
                .maxInFlight(1)
                .keepWarmEvery(Duration.ofSeconds(10))
                .build();
        FixedCostMember m = new FixedCostMember("m", BigDecimal.ZERO);
        HybridClient c = keep(builder().member("m", m, one).build());
        assertThat(c.chat(ChatRequest.of("x")).text()).isEqualTo("from m");
        time.advance(Duration.ofSeconds(30));
        assertThat(m.pings()).as("pings as without shared state").isEqualTo(3);
        assertThat(c.sharedStateStatus().degraded()).isTrue();
    }

    @Test
    void theConfigurationBuildsTheStoreOfItsTypeAndClosesItWithTheClient() {
        int closed = MemoryStateFactory.CLOSED.get();
        String yaml = "providers:\n  a: {type: echo}\nrouting:\n  members: {a: {maxInFlight: 2}}\n"
                + "state: {type: memory, slotLease: 30s}\n";
        try (InferenceClient c = InferenceClients.loader().env(Map.of()).load(yaml)) {
            SharedStateStatus s = ((HybridClient) c).sharedStateStatus();
            assertThat(s.configured()).isTrue();
            assertThat(s.store()).isEqualTo("memory (test)");
            assertThat(c.chat(ChatRequest.of("hi")).text()).isNotEmpty();
        }
        assertThat(MemoryStateFactory.CLOSED.get()).isEqualTo(closed + 1);
        try (InferenceClient c =
                InferenceClients.loader().env(Map.of()).load("providers:\n  a: {type: echo}\nrouting: {}\n")) {
            assertThat(((HybridClient) c).sharedStateStatus()).isEqualTo(SharedStateStatus.none());
        }
    }

    private static String error(String yaml) {
        try (InferenceClient c = InferenceClients.loader().env(Map.of()).load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void badStateSectionsNameTheKey() {
        String routed = "providers:\n  a: {type: echo}\nrouting: {}\n";
        assertThat(error(routed + "state: {type: redys}\n"))
                .isEqualTo("state.type: unknown state type \"redys\"; types on the classpath: memory (each state"
                        + " type comes in its own module, such as state-redys)");
        assertThat(error(routed + "state: {url: x}\n")).startsWith("state.type: is required");
        assertThat(error(routed + "state: {type: memory, slotLease: 0s}\n"))
                .startsWith("state.slotLease: expected a duration from 1s to 24h");
        assertThat(error(routed + "state: {type: memory, url: x}\n")).startsWith("state.url: unknown key");
        assertThat(error("providers:\n  a: {type: echo}\nstate: {type: memory}\n"))
                .startsWith("state: shared state is the composite client's: it needs a routing section");
        assertThat(error(routed + "state: redis\n")).startsWith("state: expected a mapping");
    }

    @Test
    void moneyCountsInWholeTrillionthsOfADollarRoundedUp() {
        assertThat(SharedState.units(new BigDecimal("0.30"))).isEqualTo(300_000_000_000L);
        assertThat(SharedState.units(new BigDecimal("0.0000000000001"))).isEqualTo(1);
        assertThat(SharedState.usd(1_200_000_000_000L)).isEqualByComparingTo("1.2");
        assertThatThrownBy(() -> SharedState.units(new BigDecimal("10000000"))).isInstanceOf(ArithmeticException.class);
        assertThatThrownBy(() -> HybridClient.builder()
                        .member("m", new RawMember("m"))
                        .policy(budget("10000000"))
                        .sharedState(store)
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is beyond what shared state counts");
    }
}
