package dev.hybridinference.sagemaker;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The map from callers' session ids to the platform's: expiry, closing and its bound. */
class SessionsTest {
    private final AtomicReference<Instant> now = new AtomicReference<>(Instant.parse("2026-01-01T00:00:00Z"));
    private final Clock clock = new Clock() {
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
    };

    @Test
    void aSessionLastsUntilTheExpiryTheContainerGave() {
        Sessions s = new Sessions(10, clock);
        assertThat(s.lookup("alice")).isNull();
        s.opened("alice", "sess-1; Expires=2026-01-01T00:10:00Z");
        assertThat(s.lookup("alice")).isEqualTo("sess-1");
        now.set(Instant.parse("2026-01-01T00:10:00Z"));
        assertThat(s.lookup("alice")).isNull();
        assertThat(s.size()).isZero();
    }

    @Test
    void aSessionWithoutAReadableExpiryStaysUntilClosed() {
        Sessions s = new Sessions(10, clock);
        s.opened("bob", "sess-2; Expires=whenever");
        s.opened("carol", "sess-3");
        now.set(Instant.parse("2030-01-01T00:00:00Z"));
        assertThat(s.lookup("bob")).isEqualTo("sess-2");
        s.closed("sess-2");
        assertThat(s.lookup("bob")).isNull();
        assertThat(s.lookup("carol")).isEqualTo("sess-3");
        s.forget("carol");
        assertThat(s.lookup("carol")).isNull();
    }

    @Test
    void beyondTheBoundTheLeastRecentlyUsedIsForgotten() {
        Sessions s = new Sessions(2, clock);
        s.opened("a", "1");
        s.opened("b", "2");
        s.lookup("a"); // a is now more recent than b
        s.opened("c", "3");
        assertThat(s.lookup("b")).isNull();
        assertThat(s.lookup("a")).isEqualTo("1");
        assertThat(s.lookup("c")).isEqualTo("3");
        assertThat(s.size()).isEqualTo(2);
    }
}
