package dev.hybridinference.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.routing.SharedStateStatus;
import dev.hybridinference.core.spi.SharedState;
import dev.hybridinference.core.spi.VirtualTime;
import dev.hybridinference.testkit.LogCapture;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;

/**
 * Composite clients in one process, each with its own connection to Redis, as instances of an application
 * would be: circuits and keep-warm pings are shared, and Redis going away (a proxy between them cut) fails no
 * call.
 */
@Timeout(60)
class RedisFleetTest {
    private final List<AutoCloseable> toClose = new ArrayList<>();
    private String prefix;

    @BeforeEach
    void start(TestInfo test) {
        RedisTests.assumeReachable();
        prefix = RedisTests.uniquePrefix(test.getTestMethod().orElseThrow().getName());
    }

    @AfterEach
    void stop() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        if (prefix != null) {
            RedisTests.deleteAll(prefix);
        }
    }

    private <T extends AutoCloseable> T keep(T c) {
        toClose.add(c);
        return c;
    }

    private RedisSharedState state(String url) {
        return keep(RedisSharedState.builder(url).prefix(prefix).build());
    }

    @Test
    void aCircuitOpenedInOneInstanceIsOpenInAnother() throws Exception {
        FixedCostClient failing = new FixedCostClient("m", BigDecimal.ZERO);
        failing.failure = () -> new ProviderUnavailableException("down", "m", null, 503, null, null);
        FixedCostClient healthy = new FixedCostClient("m", BigDecimal.ZERO);
        List<InferenceListener.CircuitChange> heard = new CopyOnWriteArrayList<>();
        HybridClient a = keep(FleetInstance.client(state(RedisTests.URL))
                .member("m", failing)
                .circuitBreaker(2, Duration.ofSeconds(2))
                .build());
        HybridClient b = keep(FleetInstance.client(state(RedisTests.URL))
                .member("m", healthy)
                .circuitBreaker(2, Duration.ofSeconds(2))
                .listener(new InferenceListener() {
                    @Override
                    public void onCircuitChanged(CircuitChange change) {
                        heard.add(change);
                    }
                })
                .build());
        assertThat(b.chat(ChatRequest.of("before")).text()).isEqualTo("from m");
        for (int i = 0; i < 2; i++) {
            assertThatThrownBy(() -> a.chat(ChatRequest.of("x"))).isInstanceOf(ProviderUnavailableException.class);
        }
        assertThatThrownBy(() -> b.chat(ChatRequest.of("skipped")))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("all members' circuits are open: m (half-opens in ");
        assertThat(healthy.calls())
                .as("b sent nothing to the member a found down")
                .isEqualTo(1);
        assertThat(heard).singleElement().satisfies(ch -> {
            assertThat(ch.open()).isTrue();
            assertThat(ch.reason()).isEqualTo("opened by another instance");
        });
        // The cooldown a published ends for b too.
        RedisTests.await(10, "the shared cooldown to end", () -> {
            try {
                return b.chat(ChatRequest.of("after")).text().equals("from m");
            } catch (ProviderUnavailableException e) {
                return false;
            }
        });
        assertThat(heard).extracting(InferenceListener.CircuitChange::open).containsExactly(true, false);
        assertThat(b.sharedStateStatus().fallbacks()).isZero();
    }

    @Test
    void onlyOneOfTwoInstancesSendsEachPeriodsKeepWarmPing() {
        VirtualTime time = new VirtualTime();
        MemberOptions warm = MemberOptions.builder()
                .idleTimeout(Duration.ofMinutes(5))
                .keepWarmEvery(Duration.ofSeconds(10))
                .build();
        List<FixedCostClient> members = new ArrayList<>();
        List<HybridClient> clients = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            FixedCostClient m = new FixedCostClient("m", BigDecimal.ZERO);
            m.clock = time.clock();
            members.add(m);
            clients.add(keep(FleetInstance.client(state(RedisTests.URL))
                    .timeSource(time)
                    .member("m", m, warm)
                    .build()));
        }
        time.advance(Duration.ofSeconds(100));
        List<Instant> pings = new ArrayList<>();
        members.forEach(m -> pings.addAll(m.pings));
        Map<Long, Long> perPeriod = pings.stream()
                .collect(Collectors.groupingBy(t -> Math.floorDiv(t.toEpochMilli(), 10_000L), Collectors.counting()));
        assertThat(perPeriod).hasSize(10);
        assertThat(perPeriod.values())
                .as("one ping in each period, from either instance")
                .containsOnly(1L);
        for (HybridClient c : clients) {
            assertThat(c.sharedStateStatus().fallbacks()).isZero();
        }
    }

    @Test
    void redisGoingAwayFailsNoCallAndItsReturnIsNoticed() throws Exception {
        BigDecimal cost = new BigDecimal("0.01");
        FixedCostClient member = new FixedCostClient("m", cost);
        try (LogCapture log = LogCapture.start();
                TcpProxy proxy = new TcpProxy(RedisTests.HOST, RedisTests.PORT)) {
            RedisSharedState viaProxy = state(proxy.url());
            HybridClient client = keep(FleetInstance.client(viaProxy)
                    .member("m", member, MemberOptions.builder().maxInFlight(8).build())
                    .policy(FleetInstance.budget(new BigDecimal("100")))
                    .build());
            AtomicInteger answered = new AtomicInteger();
            for (int i = 0; i < 20; i++) {
                client.chat(ChatRequest.of("before"));
                answered.incrementAndGet();
            }
            assertThat(client.sharedStateStatus().reachable()).isTrue();

            proxy.cut();
            ExecutorService threads = Executors.newFixedThreadPool(8);
            try {
                List<Future<?>> calls = new ArrayList<>();
                for (int i = 0; i < 200; i++) {
                    calls.add(threads.submit(() -> {
                        client.chat(ChatRequest.of("during"));
                        answered.incrementAndGet();
                    }));
                }
                for (Future<?> f : calls) {
                    f.get(20, TimeUnit.SECONDS);
                }
            } finally {
                threads.shutdownNow();
            }
            SharedStateStatus away = client.sharedStateStatus();
            assertThat(away.degraded()).isTrue();
            assertThat(away.since()).isPresent();
            assertThat(away.lastError()).isNotBlank();
            assertThat(away.fallbacks()).isPositive();
            assertThat(log.lines(Level.WARNING))
                    .as("one warning, however many calls")
                    .filteredOn(l -> l.contains("cannot be reached"))
                    .hasSize(1);

            proxy.restore();
            RedisTests.await(15, "the client to use Redis again", () -> {
                client.chat(ChatRequest.of("after"));
                answered.incrementAndGet();
                return client.sharedStateStatus().reachable();
            });
            assertThat(log.text()).contains("answers again");
            try (RedisSharedState direct =
                    RedisSharedState.builder(RedisTests.URL).prefix(prefix).build()) {
                long window = Math.floorDiv(
                        System.currentTimeMillis(), Duration.ofDays(1).toMillis());
                long units = direct.get(
                        "fleet:budget:fleet-daily:" + Duration.ofDays(1).toMillis() + ":" + window);
                assertThat(SharedState.usd(units))
                        .as("every call's cost, those made while Redis was away included")
                        .isEqualByComparingTo(cost.multiply(BigDecimal.valueOf(answered.get())));
            }
        }
    }
}
