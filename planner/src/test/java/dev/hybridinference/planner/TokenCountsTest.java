package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class TokenCountsTest {
    @ParameterizedTest
    @CsvSource({
        "5M, 5000000",
        "5m, 5000000",
        "10k, 10000",
        "10K, 10000",
        "1.5B, 1500000000",
        "1.5b, 1500000000",
        "250000, 250000",
        "0, 0",
        "' 7k ', 7000",
        "2.25k, 2250",
        "1_000_000, 1000000",
        "9223372036854775807, 9223372036854775807",
    })
    void parsesSuffixesInAnyCaseAndPlainWholeNumbers(String text, long expected) {
        assertThat(TokenCounts.parse(text)).isEqualTo(expected);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "abc", "5X", "-5", "5MM", "M", "1.5", "1e6", "_5", "5_", "1,000"})
    void refusesAnythingElseQuotingIt(String text) {
        assertThatThrownBy(() -> TokenCounts.parse(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("expected a token count such as 250000, 10k, 5M or 1.5B")
                .hasMessageContaining("\"" + text + "\"");
    }

    @Test
    void refusesFractionsOfATokenAndOverflow() {
        assertThatThrownBy(() -> TokenCounts.parse("1.2345k"))
                .hasMessage("expected a token count such as 250000, 10k, 5M or 1.5B that comes to a whole number of"
                        + " tokens, got \"1.2345k\" (1234.5)");
        assertThatThrownBy(() -> TokenCounts.parse("10000000000B"))
                .hasMessageContaining("of at most 9223372036854775807");
        assertThatThrownBy(() -> TokenCounts.parse(null)).hasMessageEndingWith("got nothing");
    }

    @ParameterizedTest
    @CsvSource({
        "0, 0",
        "999, 999",
        "1000, 1k",
        "10000, 10k",
        "2500, 2.5k",
        "5000000, 5M",
        "1500000000, 1.5B",
        "1234567, 1.23M",
        "999999, 1M",
        "999999999, 1B",
        "2000000000000, 2000B",
    })
    void formatsShortly(long count, String expected) {
        assertThat(TokenCounts.format(count)).isEqualTo(expected);
    }

    @Test
    void parseReadsBackWhatFormatWrites() {
        for (long count : new long[] {0, 7, 1_000, 12_500, 5_000_000, 1_500_000_000L, 750_000_000_000L}) {
            assertThat(TokenCounts.parse(TokenCounts.format(count))).isEqualTo(count);
        }
        assertThatThrownBy(() -> TokenCounts.format(-1)).hasMessage("count must not be negative, got -1");
    }
}
