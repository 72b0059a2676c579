package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
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
}
