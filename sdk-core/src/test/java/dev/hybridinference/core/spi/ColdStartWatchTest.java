package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ColdStart;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Cold starts predicted from idle time and observed from not-ready answers and held requests, on a virtual clock. */
class ColdStartWatchTest {
    private static final long MS = 1_000_000L;
    private static final long S = 1000 * MS;

    private static ColdStartWatch watch(Duration idle, int min) {
        return new ColdStartWatch(ClientInfo.ColdStartProfile.scalesToZero(idle, min), Duration.ofSeconds(1));
    }

    @Test
    void aNotReadyAnswerThenSuccessIsOneObservedColdStartFromTheFirstSignal() {
        ColdStartWatch w = watch(Duration.ofMinutes(5), 0);
        w.notReady(10 * S);
        w.notReady(12 * S); // a retry, still provisioning
        ColdStart c = w.succeeded(14 * S, 200 * MS, 14 * S + 200 * MS);
        assertThat(c.observed()).isTrue();
        assertThat(c.duration()).contains(Duration.ofMillis(4200));
        // The next call is warm.
        assertThat(w.succeeded(15 * S, 200 * MS, 15 * S + 200 * MS).observed()).isFalse();
    }

    @Test
    void theFirstCallAndACallAfterTheIdleTimeoutArePredictedColdUnlessInstancesStayWarm() {
        ColdStartWatch w = watch(Duration.ofMinutes(5), 0);
        assertThat(w.predictsCold(0)).isTrue();
        w.succeeded(0, 100 * MS, 100 * MS);
        assertThat(w.predictsCold(60 * S)).isFalse();
        assertThat(w.predictsCold(100 * MS + 301 * S)).isTrue();

        ColdStartWatch warm = watch(Duration.ofMinutes(5), 1);
        assertThat(warm.predictsCold(0)).isFalse();
        ColdStartWatch never = new ColdStartWatch(ClientInfo.ColdStartProfile.NONE, Duration.ofSeconds(1));
        assertThat(never.predictsCold(0)).isFalse();
        assertThat(never.succeeded(0, 50 * S, 50 * S).observed())
                .as("an always-on server never cold starts")
                .isFalse();
    }

    @Test
    void aHeldRequestFarAboveTheWarmLatencyIsObservedWithTheExcessAsItsDuration() {
        ColdStartWatch w = watch(null, 0);
        long t = 0;
        w.succeeded(t, 100 * MS, t + 100 * MS); // first call, fast: warm baseline
        for (int i = 0; i < 3; i++) {
            t += S;
            assertThat(w.succeeded(t, 100 * MS, t + 100 * MS).observed()).isFalse();
        }
        t += S;
        ColdStart slow = w.succeeded(t, 5100 * MS, t + 5100 * MS);
        assertThat(slow.observed()).isTrue();
        assertThat(slow.duration().orElseThrow().toMillis()).isBetween(4990L, 5000L);
        // A little slower than warm is not a cold start.
        t += 10 * S;
        assertThat(w.succeeded(t, 400 * MS, t + 400 * MS).observed()).isFalse();
    }

    @Test
    void aFailureCountsAsActivityForThePlatformsIdleClock() {
        ColdStartWatch w = watch(Duration.ofSeconds(10), 0);
        w.succeeded(0, MS, MS);
        w.failed(9 * S);
        assertThat(w.predictsCold(15 * S)).isFalse();
        assertThat(w.predictsCold(20 * S)).isTrue();
    }
}
