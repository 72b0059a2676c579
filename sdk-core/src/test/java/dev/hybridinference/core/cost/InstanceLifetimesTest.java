package dev.hybridinference.core.cost;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.Pricing;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/** The instance-lifetime estimate, with every expected figure worked out by hand from its rules. */
class InstanceLifetimesTest {
    private static final Instant T0 = Instant.parse("2026-11-27T10:00:00Z");

    private static Instant at(long seconds) {
        return T0.plusSeconds(seconds);
    }

    private static Pricing.PerInstanceSecond pricing(int min, int max) {
        return Pricing.PerInstanceSecond.perSecond(new BigDecimal("0.0002"), min, Duration.ofSeconds(60), max);
    }

    @Test
    void aColdStartStartsAnInstanceThatLastsUntilItsLastCallPlusTheScaleInDelay() {
        InstanceLifetimes l = new InstanceLifetimes(pricing(0, 10), T0);
        assertThat(l.live(at(0))).isZero();
        l.record(at(0), at(10), true); // instance A: [0, 10 + 60 = 70)
        assertThat(l.live(at(5))).isEqualTo(1);
        l.record(at(30), at(40), false); // runs on A: A lives to 40 + 60 = 100
        assertThat(l.live(at(99))).isEqualTo(1);
        assertThat(l.live(at(100))).isZero();
        // At 200: A was billed from 0 to 100.
        assertThat(l.instanceTime(at(200))).isEqualTo(Duration.ofSeconds(100));
        // While it lives, only the time up to now counts: at 50, 50 s.
        assertThat(l.instanceTime(at(50))).isEqualTo(Duration.ofSeconds(50));
        // 100 s x $0.0002 = $0.02
        assertThat(l.billed(at(200))).isEqualByComparingTo("0.02");
        assertThat(l.started()).isEqualTo(1);
    }

    @Test
    void aWarmCallWithNoLiveInstanceMeansOneTheSdkDidNotSeeStart() {
        InstanceLifetimes l = new InstanceLifetimes(pricing(0, 10), T0);
        l.record(at(0), at(10), true); // A: [0, 70)
        l.record(at(150), at(155), false); // nothing live at 150: B counted from 150 to 155 + 60 = 215
        // At 300: A 70 s + B 65 s = 135 s; $0.027.
        assertThat(l.instanceTime(at(300))).isEqualTo(Duration.ofSeconds(135));
        assertThat(l.billed(at(300))).isEqualByComparingTo("0.027");
        assertThat(l.started()).isEqualTo(2);
    }

    @Test
    void concurrentColdStartsEachStartAnInstanceAndWarmCallsKeepTheMostRecentOneAlive() {
        InstanceLifetimes l = new InstanceLifetimes(pricing(0, 10), T0);
        l.record(at(0), at(20), true); // A: last call ends 20, lives to 80
        l.record(at(5), at(10), true); // B: lives to 70
        assertThat(l.live(at(6))).isEqualTo(2);
        l.record(at(65), at(90), false); // A (last active at 20) is more recent than B (10): A lives to 150
        assertThat(l.live(at(75))).isEqualTo(1);
        // At 1000: A [0, 150) = 150 s, B [5, 70) = 65 s: 215 s.
        assertThat(l.instanceTime(at(1000))).isEqualTo(Duration.ofSeconds(215));
    }

    @Test
    void minInstancesAreAlwaysBilledAndTakeTheWarmCalls() {
        InstanceLifetimes l = new InstanceLifetimes(pricing(1, 2), T0);
        assertThat(l.live(at(0))).isEqualTo(1);
        l.record(at(0), at(10), true); // a cold start with 1 live: a second instance, to 70
        assertThat(l.live(at(5))).isEqualTo(2);
        l.record(at(5), at(30), true); // 2 live = maxInstances: no new instance; served by the minimum one
        l.record(at(40), at(200), false); // the always-on instance serves it; the started one keeps its 70
        assertThat(l.live(at(100))).isEqualTo(1);
        // At 300: always-on 300 s + started 70 s = 370 s.
        assertThat(l.instanceTime(at(300))).isEqualTo(Duration.ofSeconds(370));
        assertThat(l.started()).isEqualTo(1);
    }

    @Test
    void stoppingEndsTheMinimumButStartedInstancesRunUntilTheyScaleIn() {
        InstanceLifetimes l = new InstanceLifetimes(pricing(2, 5), T0);
        l.record(at(10), at(20), true); // started instance to 80
        l.stop(at(50));
        l.stop(at(60)); // the first stop counts
        assertThat(l.live(at(55))).isEqualTo(1);
        // At 100: 2 x 50 s always-on + 70 s started = 170 s.
        assertThat(l.instanceTime(at(100))).isEqualTo(Duration.ofSeconds(170));
    }

    @Test
    void hourlyRatesApplyToTheTotalInstanceTime() {
        InstanceLifetimes l = new InstanceLifetimes(
                Pricing.PerInstanceSecond.perHour(new BigDecimal("0.67"), 1, Duration.ofMinutes(15), 3), T0);
        // One always-on instance for an hour and a half: 1.5 x $0.67 = $1.005.
        assertThat(l.billed(at(5400))).isEqualByComparingTo("1.005");
    }

    @Test
    void instancesDeadForAnHourAreFoldedIntoTheSum() {
        InstanceLifetimes l = new InstanceLifetimes(pricing(0, 10), T0);
        l.record(at(0), at(10), true); // [0, 70)
        l.record(at(10_000), at(10_010), true); // folds the first: [10000, 10070)
        assertThat(l.instanceTime(at(20_000))).isEqualTo(Duration.ofSeconds(140));
        assertThat(l.started()).isEqualTo(2);
    }
}
