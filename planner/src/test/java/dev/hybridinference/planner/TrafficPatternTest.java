package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class TrafficPatternTest {
    @Test
    void parsesTheLowerCaseNamesAndTheWeeklyAlias() {
        assertThat(TrafficPattern.parse("steady")).isEqualTo(TrafficPattern.STEADY);
        assertThat(TrafficPattern.parse("diurnal")).isEqualTo(TrafficPattern.DIURNAL);
        assertThat(TrafficPattern.parse("bursty")).isEqualTo(TrafficPattern.BURSTY);
        assertThat(TrafficPattern.parse("weekly")).isEqualTo(TrafficPattern.WEEKLY);
        assertThat(TrafficPattern.parse("weekday-weekend")).isEqualTo(TrafficPattern.WEEKLY);
        assertThat(TrafficPattern.parse(" Bursty ")).isEqualTo(TrafficPattern.BURSTY);
    }

    @Test
    void idIsTheNameParseAccepts() {
        for (TrafficPattern p : TrafficPattern.values()) {
            assertThat(TrafficPattern.parse(p.id())).isEqualTo(p);
            assertThat(p.id()).isLowerCase();
        }
    }

    @Test
    void anUnknownNameIsRefusedListingTheAcceptedOnes() {
        assertThatThrownBy(() -> TrafficPattern.parse("spiky"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unknown traffic pattern \"spiky\"; expected one of steady, diurnal, bursty, weekly"
                        + " (or weekday-weekend)");
        assertThatThrownBy(() -> TrafficPattern.parse(null)).hasMessageStartingWith("unknown traffic pattern null;");
    }
}
