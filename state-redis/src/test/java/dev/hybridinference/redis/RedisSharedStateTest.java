package dev.hybridinference.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.spi.SharedState;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;

/** The store's operations against a real Redis, each test under a key prefix of its own. */
@Timeout(30)
class RedisSharedStateTest {
    private String prefix;
    private RedisSharedState state;
    private RedisSharedState other;

    @BeforeEach
    void start(TestInfo test) {
        RedisTests.assumeReachable();
        prefix = RedisTests.uniquePrefix(test.getTestMethod().orElseThrow().getName());
        state = RedisSharedState.builder(RedisTests.URL).prefix(prefix).build();
        other = RedisSharedState.builder(RedisTests.URL).prefix(prefix).build();
    }

    @AfterEach
    void stop() {
        if (state != null) {
            state.close();
            other.close();
            RedisTests.deleteAll(prefix);
        }
    }

    @Test
    void countersAddExactlyAndAtomicallyAcrossConnections() throws Exception {
        assertThat(state.get("spend")).isZero();
        assertThat(state.add("spend", 300_000_000_000L, Duration.ofMinutes(1))).isEqualTo(300_000_000_000L);
        assertThat(other.add("spend", -100_000_000_000L, Duration.ofMinutes(1))).isEqualTo(200_000_000_000L);
        ExecutorService pool = Executors.newFixedThreadPool(16);
        try {
            List<Future<Long>> adds = new ArrayList<>();
            for (int i = 0; i < 1_000; i++) {
                RedisSharedState s = i % 2 == 0 ? state : other;
                adds.add(pool.submit(() -> s.add("spend", 7, Duration.ofMinutes(1))));
            }
            Set<Long> totals = new HashSet<>();
            for (Future<Long> f : adds) {
                totals.add(f.get(10, TimeUnit.SECONDS));
            }
            assertThat(totals).as("every add saw a total of its own").hasSize(1_000);
        } finally {
            pool.shutdownNow();
        }
        assertThat(state.get("spend")).isEqualTo(200_000_000_000L + 7_000);
        // A total near a long's limit stays exact: no floating point on the way.
        long big = Long.MAX_VALUE - 10;
        assertThat(state.add("big", big, Duration.ofMinutes(1))).isEqualTo(big);
        assertThat(state.add("big", 3, Duration.ofMinutes(1))).isEqualTo(big + 3);
    }

    @Test
    void aCounterLivesForItsTimeToLiveAfterItsLastAdd() throws Exception {
        state.add("short", 5, Duration.ofMillis(100));
        RedisTests.await(5, "the counter to expire", () -> state.get("short") == 0);
        assertThat(state.add("short", 2, Duration.ofMinutes(1))).isEqualTo(2);
    }

    @Test
    void anOpenCircuitIsSeenByOthersForItsCooldown() throws Exception {
        assertThat(other.circuitOpen("circuit:m")).isEmpty();
        state.openCircuit("circuit:m", Duration.ofSeconds(30));
        Optional<Duration> left = other.circuitOpen("circuit:m");
        assertThat(left).isPresent();
        assertThat(left.get()).isGreaterThan(Duration.ofSeconds(25)).isLessThanOrEqualTo(Duration.ofSeconds(30));
        state.closeCircuit("circuit:m");
        assertThat(other.circuitOpen("circuit:m")).isEmpty();
        state.openCircuit("circuit:m", Duration.ofMillis(100));
        RedisTests.await(
                5, "the cooldown to end", () -> other.circuitOpen("circuit:m").isEmpty());
    }

    @Test
    void slotsAreLeasedUpToTheLimitAndReleasedOrLapsed() throws Exception {
        Optional<String> a = state.acquireSlot("slots:m", 2, Duration.ofMinutes(1));
        Optional<String> b = other.acquireSlot("slots:m", 2, Duration.ofMinutes(1));
        assertThat(a).isPresent();
        assertThat(b).isPresent();
        assertThat(a).isNotEqualTo(b);
        assertThat(state.acquireSlot("slots:m", 2, Duration.ofMinutes(1))).isEmpty();
        assertThat(other.slotsHeld("slots:m")).isEqualTo(2);
        other.releaseSlot("slots:m", a.get());
        other.releaseSlot("slots:m", a.get());
        assertThat(state.slotsHeld("slots:m")).isEqualTo(1);
        Optional<String> c = state.acquireSlot("slots:m", 2, Duration.ofMillis(200));
        assertThat(c).isPresent();
        assertThat(state.acquireSlot("slots:m", 2, Duration.ofMinutes(1))).isEmpty();
        // The short lease lapses without a release, and its slot comes free.
        RedisTests.await(5, "the lease to lapse", () -> state.slotsHeld("slots:m") == 1);
        assertThat(other.acquireSlot("slots:m", 2, Duration.ofMinutes(1))).isPresent();
    }

    @Test
    void concurrentAcquiresNeverPassTheLimit() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(32);
        try {
            List<Future<Optional<String>>> tries = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                RedisSharedState s = i % 2 == 0 ? state : other;
                tries.add(pool.submit(() -> s.acquireSlot("slots:x", 17, Duration.ofMinutes(1))));
            }
            int granted = 0;
            for (Future<Optional<String>> f : tries) {
                granted += f.get(10, TimeUnit.SECONDS).isPresent() ? 1 : 0;
            }
            assertThat(granted).isEqualTo(17);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aClaimIsTakenOnceUntilItExpires() throws Exception {
        assertThat(state.claim("keep-warm:m:1", Duration.ofMillis(200))).isTrue();
        assertThat(other.claim("keep-warm:m:1", Duration.ofMillis(200))).isFalse();
        assertThat(state.claim("keep-warm:m:1", Duration.ofMillis(200)))
                .as("not even by its holder")
                .isFalse();
        assertThat(other.claim("keep-warm:m:2", Duration.ofMillis(200))).isTrue();
        RedisTests.await(5, "the claim to expire", () -> other.claim("keep-warm:m:1", Duration.ofMinutes(1)));
    }

    @Test
    void prefixesKeepApplicationsApart() {
        try (RedisSharedState elsewhere = RedisSharedState.builder(RedisTests.URL)
                .prefix(prefix + "other:")
                .build()) {
            state.add("spend", 5, Duration.ofMinutes(1));
            assertThat(elsewhere.get("spend")).isZero();
            state.openCircuit("circuit:m", Duration.ofMinutes(1));
            assertThat(elsewhere.circuitOpen("circuit:m")).isEmpty();
        }
    }

    @Test
    void itDescribesItselfWithoutItsPasswordAndConnectsOnlyWhenUsed() {
        try (RedisSharedState s = RedisSharedState.builder("redis://:s3cret-pass@127.0.0.1:1/2")
                .prefix("app:")
                .timeout(Duration.ofMillis(50))
                .connectTimeout(Duration.ofMillis(50))
                .build()) {
            assertThat(s.description()).isEqualTo("redis://127.0.0.1:1/2 (prefix app:)");
            assertThat(s.toString()).doesNotContain("s3cret");
            // Nothing listens on port 1: the first use fails, within the connect timeout, and says so.
            assertThatThrownBy(() -> s.get("x")).isInstanceOf(RuntimeException.class);
        }
    }

    @Test
    void theBuilderChecksItsValues() {
        assertThatThrownBy(() -> RedisSharedState.builder("http://x")).hasMessageStartingWith("expected a Redis URL");
        assertThatThrownBy(() -> RedisSharedState.builder(RedisTests.URL).timeout(Duration.ofSeconds(6)))
                .hasMessage("timeout must be from 10 ms to 5 s, got 6000 ms");
        assertThatThrownBy(() -> RedisSharedState.builder(RedisTests.URL).prefix("has space"))
                .hasMessageStartingWith("prefix must be printable ASCII without spaces");
    }

    private static String error(String state) {
        String yaml = "providers:\n  a: {type: fixed-test}\nrouting: {}\nstate: " + state + "\n";
        try (InferenceClient c = InferenceClients.loader().env(Map.of()).load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void theRedisTypeOfTheStateSection() {
        String yaml = "providers:\n  a: {type: fixed-test}\nrouting: {members: {a: {maxInFlight: 3}}}\n"
                + "state: {type: redis, url: \"" + RedisTests.URL + "\", prefix: \"" + prefix
                + "\", timeout: 150ms, connectTimeout: 300ms, slotLease: 20s}\n";
        try (InferenceClient c = InferenceClients.loader().env(Map.of()).load(yaml)) {
            HybridClient h = (HybridClient) c;
            assertThat(h.sharedStateStatus().store()).isEqualTo("redis://127.0.0.1:6379/0 (prefix " + prefix + ")");
            assertThat(c.chat(dev.hybridinference.core.ChatRequest.of("hi")).text())
                    .isEqualTo("from a");
            assertThat(h.sharedStateStatus().reachable()).isTrue();
        }
        assertThat(error("{type: redis}")).startsWith("state.url: is required");
        assertThat(error("{type: redis, url: \"ftp://x\"}")).startsWith("state.url: expected a Redis URL");
        assertThat(error("{type: redis, url: \"redis://x\", timeout: 1ms}"))
                .startsWith("state.timeout: expected a duration from 10ms to 5s");
        assertThat(error("{type: redis, url: \"redis://x\", prefix: \"a b\"}"))
                .startsWith("state.prefix: prefix must be printable ASCII");
        assertThat(error("{type: redis, url: \"redis://x\", database: 2}")).startsWith("state.database: unknown key");
        assertThat(error("{type: redis, url: \"redis://:hunter2-secret@x\", timeout: 1ms}"))
                .doesNotContain("hunter2-secret");
    }

    @Test
    void unitsOfDollars() {
        assertThat(SharedState.units(new java.math.BigDecimal("0.0123"))).isEqualTo(12_300_000_000L);
    }
}
