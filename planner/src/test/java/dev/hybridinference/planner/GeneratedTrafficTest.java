package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class GeneratedTrafficTest {
    private static final long NANOS_PER_MINUTE = 60_000_000_000L;
    private static final long NANOS_PER_HOUR = 60 * NANOS_PER_MINUTE;
    private static final long NANOS_PER_DAY = 24 * NANOS_PER_HOUR;

    private static GeneratedTraffic.Builder traffic(TrafficPattern pattern, long tokensPerDay) {
        return GeneratedTraffic.builder()
                .pattern(pattern)
                .tokensPerDay(tokensPerDay)
                .seed(42);
    }

    private static List<TrafficRequest> list(Traffic traffic) {
        List<TrafficRequest> out = new ArrayList<>();
        traffic.forEach(out::add);
        return out;
    }

    /** Requests per bucket of the given width, over the span. */
    private static long[] counts(Traffic traffic, long bucketNanos) {
        long[] counts = new long[(int) ((traffic.span().toNanos() + bucketNanos - 1) / bucketNanos)];
        for (TrafficRequest r : traffic) {
            counts[(int) (r.offsetNanos() / bucketNanos)]++;
        }
        return counts;
    }

    @ParameterizedTest
    @EnumSource(TrafficPattern.class)
    void overWholeWeeksEveryPatternCarriesTheRequestedTokensPerDay(TrafficPattern pattern) {
        GeneratedTraffic t =
                traffic(pattern, 5_000_000).span(Duration.ofDays(14)).build();

        long tokens = 0;
        long requests = 0;
        for (TrafficRequest r : t) {
            tokens += r.tokens();
            requests++;
        }

        assertThat(tokens / 14.0).isCloseTo(5_000_000, within(150_000.0));
        assertThat(requests / 14.0).isCloseTo(t.requestsPerDay(), within(t.requestsPerDay() * 0.03));
        assertThat(t.requestsPerDay()).isEqualTo(4_000.0);
    }

    @Test
    void aHighVolumeOverAMonthKeepsItsVolume() {
        GeneratedTraffic t = traffic(TrafficPattern.DIURNAL, 200_000_000)
                .span(Duration.ofDays(30))
                .build();

        long tokens = 0;
        for (TrafficRequest r : t) {
            tokens += r.tokens();
        }

        assertThat(tokens / 30.0).isCloseTo(200_000_000, within(2_000_000.0));
    }

    @Test
    void diurnalBusiestHourIsTheAfternoonAndAboutEightTimesTheQuietest() {
        GeneratedTraffic t = traffic(TrafficPattern.DIURNAL, 20_000_000)
                .span(Duration.ofDays(7))
                .build();
        long[] byHourOfDay = new long[24];
        for (TrafficRequest r : t) {
            byHourOfDay[(int) (r.offsetNanos() % NANOS_PER_DAY / NANOS_PER_HOUR)]++;
        }

        int busiest = IntStream.range(0, 24)
                .boxed()
                .max((a, b) -> Long.compare(byHourOfDay[a], byHourOfDay[b]))
                .orElseThrow();
        int quietest = IntStream.range(0, 24)
                .boxed()
                .min((a, b) -> Long.compare(byHourOfDay[a], byHourOfDay[b]))
                .orElseThrow();

        assertThat(busiest).isBetween(15, 16);
        assertThat(quietest).isBetween(3, 4);
        assertThat((double) byHourOfDay[busiest] / byHourOfDay[quietest]).isBetween(6.0, 10.0);
    }

    @Test
    void burstyPeaksFarAboveSteadyAtTheSameVolume() {
        long[] steady = counts(traffic(TrafficPattern.STEADY, 5_000_000).build(), NANOS_PER_MINUTE);
        long[] bursty = counts(traffic(TrafficPattern.BURSTY, 5_000_000).build(), NANOS_PER_MINUTE);

        long steadyPeak = Arrays.stream(steady).max().orElseThrow();
        long burstyPeak = Arrays.stream(bursty).max().orElseThrow();

        assertThat(Arrays.stream(bursty).sum()).isCloseTo(Arrays.stream(steady).sum(), within(200L));
        assertThat(burstyPeak).isGreaterThan(3 * steadyPeak);
    }

    @Test
    void burstyHasFourTenMinuteSpikesADayThatStayPutWhenTheVolumeChanges() {
        GeneratedTraffic low = traffic(TrafficPattern.BURSTY, 50_000_000)
                .span(Duration.ofDays(2))
                .build();
        GeneratedTraffic high = low.withTokensPerDay(100_000_000);

        Set<Integer> lowSpikes = spikeMinutes(counts(low, NANOS_PER_MINUTE), 100);
        Set<Integer> highSpikes = spikeMinutes(counts(high, NANOS_PER_MINUTE), 200);

        // Baseline about 18 (36) requests a minute, spikes about 360 (720): the thresholds sit well between.
        assertThat(lowSpikes).hasSize(2 * 4 * 10).isEqualTo(highSpikes);
        for (int quarter = 0; quarter < 8; quarter++) {
            int from = quarter * 360;
            assertThat(lowSpikes.stream().filter(m -> m >= from && m < from + 360))
                    .as("spike minutes in quarter %d", quarter)
                    .hasSize(10);
        }
    }

    private static Set<Integer> spikeMinutes(long[] perMinute, long threshold) {
        Set<Integer> minutes = new TreeSet<>();
        for (int m = 0; m < perMinute.length; m++) {
            if (perMinute[m] > threshold) {
                minutes.add(m);
            }
        }
        return minutes;
    }

    @Test
    void weeklyWeekendDaysCarryAboutThirtyPercentOfAWeekday() {
        GeneratedTraffic t = traffic(TrafficPattern.WEEKLY, 10_000_000)
                .span(Duration.ofDays(14))
                .build();
        long[] perDay = counts(t, NANOS_PER_DAY);

        double weekdayMean = IntStream.range(0, 14)
                .filter(d -> d % 7 < 5)
                .mapToLong(d -> perDay[d])
                .average()
                .orElseThrow();
        for (int d = 0; d < 14; d++) {
            if (d % 7 >= 5) {
                assertThat(perDay[d] / weekdayMean).as("day %d", d).isBetween(0.25, 0.35);
            } else {
                assertThat(perDay[d] / weekdayMean).as("day %d", d).isBetween(0.9, 1.1);
            }
        }
        // A weekday is 7 / 5.6 = 1.25 times the average day of 8000 requests.
        assertThat(weekdayMean).isCloseTo(10_000.0, within(300.0));
    }

    @Test
    void theSameSettingsAndSeedGiveTheSameRequestsAndAnotherSeedOthers() {
        GeneratedTraffic a = traffic(TrafficPattern.BURSTY, 5_000_000).build();
        GeneratedTraffic b = traffic(TrafficPattern.BURSTY, 5_000_000).build();
        GeneratedTraffic c = a.toBuilder().seed(43).build();

        List<TrafficRequest> first = list(a);

        assertThat(first).hasSizeGreaterThan(3_000);
        assertThat(list(a)).as("iterated again").isEqualTo(first);
        assertThat(list(b)).as("built again").isEqualTo(first);
        assertThat(list(c)).isNotEqualTo(first);
    }

    @Test
    void twoIteratorsAtOnceAreIndependent() {
        GeneratedTraffic t = traffic(TrafficPattern.DIURNAL, 1_000_000).build();
        var one = t.iterator();
        var two = t.iterator();
        one.next();
        one.next();

        assertThat(two.next()).isEqualTo(t.iterator().next());
    }

    @ParameterizedTest
    @EnumSource(TrafficPattern.class)
    void offsetsAreSortedAndBelowTheSpan(TrafficPattern pattern) {
        Duration span = Duration.ofHours(25).plusSeconds(17).plusNanos(3);
        GeneratedTraffic t = traffic(pattern, 20_000_000).span(span).build();

        long previous = 0;
        long last = -1;
        for (TrafficRequest r : t) {
            assertThat(r.offsetNanos()).isGreaterThanOrEqualTo(previous);
            previous = r.offsetNanos();
            last = r.offsetNanos();
        }

        assertThat(last).isBetween(span.toNanos() - NANOS_PER_MINUTE, span.toNanos() - 1);
    }

    @Test
    void tenThousandTokensADayIsAHandfulOfRequests() {
        GeneratedTraffic oneDay =
                traffic(TrafficPattern.STEADY, 10_000).sizeSpread(0).build();
        GeneratedTraffic hundredDays =
                oneDay.toBuilder().span(Duration.ofDays(100)).build();

        assertThat(list(oneDay)).hasSizeBetween(2, 20);
        assertThat(list(hundredDays).size()).isCloseTo(800, within(80));
    }

    @Test
    void withoutSpreadEveryRequestHasExactlyTheMeans() {
        GeneratedTraffic t = traffic(TrafficPattern.STEADY, 1_000_000)
                .meanInputTokens(300)
                .meanOutputTokens(77)
                .sizeSpread(0)
                .build();

        assertThat(list(t)).isNotEmpty().allSatisfy(r -> {
            assertThat(r.inputTokens()).isEqualTo(300);
            assertThat(r.outputTokens()).isEqualTo(77);
        });
    }

    @Test
    void withSpreadSizesVaryAroundTheMeans() {
        GeneratedTraffic t = traffic(TrafficPattern.STEADY, 100_000_000)
                .meanInputTokens(2_000)
                .meanOutputTokens(100)
                .sizeSpread(0.5)
                .build();
        List<TrafficRequest> requests = list(t);

        double meanIn = requests.stream()
                .mapToInt(TrafficRequest::inputTokens)
                .average()
                .orElseThrow();
        double meanOut = requests.stream()
                .mapToInt(TrafficRequest::outputTokens)
                .average()
                .orElseThrow();
        long distinctInputs = requests.stream()
                .mapToInt(TrafficRequest::inputTokens)
                .distinct()
                .count();

        assertThat(meanIn).isCloseTo(2_000, within(40.0));
        assertThat(meanOut).isCloseTo(100, within(2.0));
        assertThat(distinctInputs).isGreaterThan(1_000);
        assertThat(requests).allSatisfy(r -> assertThat(r.outputTokens()).isPositive());
    }

    @Test
    void everyRequestCarriesTheTags() {
        GeneratedTraffic t = traffic(TrafficPattern.STEADY, 100_000)
                .tags(Map.of("team", "search"))
                .build();

        assertThat(list(t))
                .isNotEmpty()
                .allSatisfy(r -> assertThat(r.tags()).containsExactly(Map.entry("team", "search")));
    }

    @Test
    void withTokensPerDayScalesTheVolumeAndKeepsTheRest() {
        GeneratedTraffic base = traffic(TrafficPattern.DIURNAL, 1_000_000)
                .span(Duration.ofDays(3))
                .meanInputTokens(500)
                .build();
        GeneratedTraffic tenfold = base.withTokensPerDay(10_000_000);

        assertThat(tenfold.tokensPerDay()).isEqualTo(10_000_000);
        assertThat(tenfold.span()).isEqualTo(base.span());
        assertThat(tenfold.meanInputTokens()).isEqualTo(500);
        assertThat(tenfold.pattern()).isEqualTo(TrafficPattern.DIURNAL);
        assertThat((double) list(tenfold).size() / list(base).size()).isCloseTo(10, within(0.5));
    }

    @Test
    void describesItselfInOneLine() {
        GeneratedTraffic t = GeneratedTraffic.builder()
                .pattern(TrafficPattern.BURSTY)
                .tokensPerDay(5_000_000)
                .seed(42)
                .build();

        assertThat(t.describe()).isEqualTo("bursty, 5M tokens/day over 1 day, mean 1000 in / 250 out, seed 42");
        assertThat(t.toBuilder()
                        .span(Duration.ofDays(7).plusHours(6))
                        .sizeSpread(0)
                        .tokensPerDay(1_500_000_000)
                        .build()
                        .describe())
                .isEqualTo("bursty, 1.5B tokens/day over 7 days 6 hours, mean 1000 in / 250 out, size spread 0,"
                        + " seed 42");
    }

    @Test
    void defaultsAreADayWithSeedOneAndTheStatedSizes() {
        GeneratedTraffic t = GeneratedTraffic.builder()
                .pattern(TrafficPattern.STEADY)
                .tokensPerDay(1_000)
                .build();

        assertThat(t.span()).isEqualTo(Duration.ofDays(1));
        assertThat(t.seed()).isEqualTo(1);
        assertThat(t.meanInputTokens()).isEqualTo(1_000);
        assertThat(t.meanOutputTokens()).isEqualTo(250);
        assertThat(t.sizeSpread()).isEqualTo(0.5);
        assertThat(t.tags()).isEmpty();
    }

    @Test
    void badSettingsAreRefusedNamingTheSetting() {
        GeneratedTraffic.Builder b = GeneratedTraffic.builder();

        assertThatThrownBy(() -> b.tokensPerDay(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tokensPerDay must be at least 1, got 0");
        assertThatThrownBy(() -> b.span(Duration.ZERO))
                .hasMessage("span must be more than zero and at most 366 days, got PT0S");
        assertThatThrownBy(() -> b.span(Duration.ofDays(-1))).hasMessageStartingWith("span must be more than zero");
        assertThatThrownBy(() -> b.span(Duration.ofDays(367)))
                .hasMessage("span must be more than zero and at most 366 days, got PT8808H");
        assertThatThrownBy(() -> b.meanInputTokens(0)).hasMessage("meanInputTokens must be at least 1, got 0");
        assertThatThrownBy(() -> b.meanOutputTokens(-3)).hasMessage("meanOutputTokens must be at least 1, got -3");
        assertThatThrownBy(() -> b.sizeSpread(-0.1)).hasMessage("sizeSpread must be from 0 to 3, got -0.1");
        assertThatThrownBy(() -> b.sizeSpread(3.5)).hasMessage("sizeSpread must be from 0 to 3, got 3.5");
        assertThatThrownBy(() -> b.sizeSpread(Double.NaN)).hasMessage("sizeSpread must be from 0 to 3, got NaN");
        assertThatThrownBy(() -> GeneratedTraffic.builder().tokensPerDay(5).build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("pattern is required: steady, diurnal, bursty or weekly");
        assertThatThrownBy(() -> GeneratedTraffic.builder()
                        .pattern(TrafficPattern.STEADY)
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("tokensPerDay is required: at least 1");

        assertThat(b.span(Duration.ofDays(366)).sizeSpread(3).sizeSpread(0)).isSameAs(b);
    }
}
