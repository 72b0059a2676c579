package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class OccupancyMeterTest {
    @Test
    void overlappingCallsShareTheTimeTheyOverlap() {
        AtomicLong now = new AtomicLong();
        OccupancyMeter meter = new OccupancyMeter(now::get);
        OccupancyMeter.Ticket a = meter.enter(); // t=0
        now.set(100);
        OccupancyMeter.Ticket b = meter.enter(); // t=100: a alone for 100
        now.set(300); // 200 shared: 100 each
        assertThat(meter.exit(a)).isEqualTo(Duration.ofNanos(200));
        now.set(350); // b alone for 50
        assertThat(meter.exit(b)).isEqualTo(Duration.ofNanos(150));
        assertThat(meter.exit(b)).isEqualTo(Duration.ofNanos(150)); // idempotent
        now.set(1000); // idle time is nobody's
        OccupancyMeter.Ticket c = meter.enter();
        now.set(1010);
        assertThat(meter.exit(c)).isEqualTo(Duration.ofNanos(10));
        assertThat(meter.active()).isZero();
    }

    @Test
    void upToNCallsEachGetAFullInstanceAndBeyondThatShareNInstances() {
        AtomicLong now = new AtomicLong();
        OccupancyMeter meter = new OccupancyMeter(() -> 2, now::get);
        OccupancyMeter.Ticket a = meter.enter(); // t=0
        now.set(100);
        OccupancyMeter.Ticket b = meter.enter(); // 0-100: a alone, full rate: a=100
        now.set(200);
        OccupancyMeter.Ticket c = meter.enter(); // 100-200: two calls on two instances: a=200, b=100
        now.set(500); // 200-500: three calls share two instances, 2/3 each: +200 each
        assertThat(meter.exit(a)).isEqualTo(Duration.ofNanos(400));
        now.set(600); // 500-600: b and c, one instance each: +100 each
        assertThat(meter.exit(b)).isEqualTo(Duration.ofNanos(400));
        assertThat(meter.exit(c)).isEqualTo(Duration.ofNanos(300));
        // 400 + 400 + 300 = 1100 ns of instance time: within 2 instances x 600 ns, and exactly the busy time
        // (0-100: 1 busy, 100-200: 2, 200-500: 2, 500-600: 2 = 100 + 200 + 600 + 200).
    }

    @Test
    void aChangingInstanceCountIsReadAtEachEntryAndExit() {
        AtomicLong now = new AtomicLong();
        AtomicInteger instances = new AtomicInteger(0); // none known yet: a call in flight still has one
        OccupancyMeter meter = new OccupancyMeter(instances::get, now::get);
        OccupancyMeter.Ticket a = meter.enter();
        OccupancyMeter.Ticket b = meter.enter(); // both at t=0 on what counts as one instance
        now.set(100); // 0-100: 1 instance, 2 calls: +50 each
        instances.set(2);
        OccupancyMeter.Ticket c = meter.enter(); // from here, two instances
        now.set(400); // 100-400: 3 calls on 2 instances: +200 each
        assertThat(meter.exit(a)).isEqualTo(Duration.ofNanos(250));
        assertThat(meter.exit(b)).isEqualTo(Duration.ofNanos(250));
        assertThat(meter.exit(c)).isEqualTo(Duration.ofNanos(200));
        assertThatThrownBy(() -> new OccupancyMeter(0)).hasMessageContaining("instances");
    }
}
