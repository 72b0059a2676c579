package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.RequestOptions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Deadlines on a test clock: saturating arithmetic, and none for anything beyond the horizon. */
class DeadlineTest {
    private static final Instant NOW = Instant.parse("2025-01-01T00:00:00Z");
    // Close to where a nanoTime reading wraps, so that any arithmetic that is not difference-based shows.
    private final AtomicLong nanos = new AtomicLong(Long.MAX_VALUE - 1_000_000_000L);

    private Deadline of(RequestOptions options) {
        return Deadline.of(options, NOW, nanos.get(), nanos::get);
    }

    @Test
    void aTimeoutCountsDownAndExpires() {
        Deadline d = Deadline.after(Duration.ofSeconds(2), nanos::get);
        assertThat(d.isNone()).isFalse();
        assertThat(d.remaining()).contains(Duration.ofSeconds(2));
        nanos.addAndGet(Duration.ofMillis(1500).toNanos()); // wraps past Long.MAX_VALUE
        assertThat(d.remaining()).contains(Duration.ofMillis(500));
        assertThat(d.isExpired()).isFalse();
        assertThat(d.expiresWithin(Duration.ofMillis(499))).isFalse();
        assertThat(d.expiresWithin(Duration.ofMillis(500))).isTrue();
        assertThat(d.limit(Duration.ofSeconds(10))).isEqualTo(Duration.ofMillis(500));
        nanos.addAndGet(Duration.ofSeconds(1).toNanos());
        assertThat(d.isExpired()).isTrue();
        assertThat(d.remaining()).contains(Duration.ofMillis(-500));
        assertThat(d.limit(Duration.ofSeconds(10))).isEqualTo(Duration.ZERO);
    }

    @Test
    void anythingBeyondTheHorizonIsNoDeadline() {
        assertThat(Deadline.after(Duration.ofSeconds(Long.MAX_VALUE), nanos::get)
                        .isNone())
                .isTrue();
        assertThat(Deadline.after(Duration.ofDays(365L * 300), nanos::get).isNone())
                .isTrue();
        assertThat(of(RequestOptions.builder().deadline(Instant.MAX).build()).isNone())
                .isTrue();
        assertThat(of(RequestOptions.builder()
                                .deadline(NOW.plus(Duration.ofDays(365L * 300)))
                                .build())
                        .isNone())
                .isTrue();
        assertThat(of(RequestOptions.builder()
                                .deadline(Instant.parse("9999-12-31T23:59:59Z"))
                                .build())
                        .isNone())
                .isTrue();
        assertThat(of(RequestOptions.builder()
                                .timeout(Duration.ofSeconds(Long.MAX_VALUE))
                                .build())
                        .isNone())
                .isTrue();
        Deadline none = Deadline.none();
        assertThat(none.isExpired()).isFalse();
        assertThat(none.remaining()).isEmpty();
        assertThat(none.remainingNanos()).isEqualTo(Long.MAX_VALUE);
        assertThat(none.expiresWithin(Duration.ofSeconds(Long.MAX_VALUE))).isFalse();
        assertThat(none.limit(Duration.ofSeconds(Long.MAX_VALUE))).isEqualTo(Duration.ofNanos(Long.MAX_VALUE));
        assertThat(none.plus(Duration.ofSeconds(-5)).isNone()).isTrue();
    }

    @Test
    void aPastDeadlineIsExpiredEvenFarInThePast() {
        assertThat(of(RequestOptions.builder().deadline(Instant.MIN).build()).isExpired())
                .isTrue();
        assertThat(of(RequestOptions.builder().deadline(NOW.minusSeconds(1)).build())
                        .isExpired())
                .isTrue();
        assertThat(Deadline.after(Duration.ofSeconds(Long.MIN_VALUE), nanos::get)
                        .isExpired())
                .isTrue();
    }

    @Test
    void theEarlierOfTimeoutAndAbsoluteDeadlineWins() {
        Deadline d = of(RequestOptions.builder()
                .timeout(Duration.ofSeconds(5))
                .deadline(NOW.plusSeconds(3))
                .build());
        assertThat(d.remaining()).contains(Duration.ofSeconds(3));
        Deadline e = of(RequestOptions.builder()
                .timeout(Duration.ofSeconds(5))
                .deadline(Instant.MAX)
                .build());
        assertThat(e.remaining()).contains(Duration.ofSeconds(5));
        assertThat(of(RequestOptions.DEFAULTS).isNone()).isTrue();
    }

    @Test
    void minAndPlusSaturate() {
        Deadline two = Deadline.after(Duration.ofSeconds(2), nanos::get);
        Deadline five = Deadline.after(Duration.ofSeconds(5), nanos::get);
        assertThat(two.min(five)).isSameAs(two);
        assertThat(five.min(two)).isSameAs(two);
        assertThat(two.min(Deadline.none())).isSameAs(two);
        assertThat(Deadline.none().min(five)).isSameAs(five);
        assertThat(two.compareTo(five)).isNegative();
        assertThat(Deadline.none().compareTo(two)).isPositive();
        assertThat(two.plus(Duration.ofSeconds(1)).remaining()).contains(Duration.ofSeconds(3));
        assertThat(two.plus(Duration.ofSeconds(Long.MAX_VALUE)).isNone()).isTrue();
        assertThat(two.plus(Duration.ofDays(365L * 200)).isNone()).isTrue();
        assertThat(two.plus(Duration.ofSeconds(Long.MIN_VALUE)).isExpired()).isTrue();
    }

    @Test
    void durationsConvertWithoutOverflow() {
        assertThat(Deadline.saturatedNanos(Duration.ofSeconds(99_999_999_999L))).isEqualTo(Long.MAX_VALUE);
        assertThat(Deadline.saturatedNanos(Duration.ofSeconds(Long.MIN_VALUE))).isEqualTo(Long.MIN_VALUE);
        assertThat(Deadline.saturatedNanos(Duration.ofMillis(3))).isEqualTo(3_000_000L);
        assertThat(Deadline.saturatedMillis(Duration.ofSeconds(Long.MAX_VALUE))).isEqualTo(Long.MAX_VALUE);
        assertThat(Deadline.saturatedMillis(Duration.ofSeconds(2))).isEqualTo(2000L);
    }

    @Test
    void aCallContextReadsItsDeadlineThroughDeadline() {
        Clock clock = Clock.fixed(NOW, ZoneOffset.UTC);
        CallContext far = new CallContext(
                "p",
                ChatRequest.builder()
                        .user("hi")
                        .options(RequestOptions.builder().deadline(Instant.MAX).build())
                        .build(),
                clock);
        assertThat(far.deadline().isNone()).isTrue();
        assertThat(far.remaining()).isEmpty();
        far.checkActive("e");
        CallContext soon = new CallContext(
                "p",
                ChatRequest.builder()
                        .user("hi")
                        .options(RequestOptions.builder()
                                .timeout(Duration.ofMinutes(1))
                                .build())
                        .build(),
                clock);
        assertThat(soon.remaining().orElseThrow()).isPositive().isLessThanOrEqualTo(Duration.ofMinutes(1));
    }
}
