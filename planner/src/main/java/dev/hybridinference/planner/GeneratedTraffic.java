package dev.hybridinference.planner;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * Synthetic traffic: requests arriving as a Poisson process whose rate follows a {@link TrafficPattern},
 * scaled so that an average day carries {@link #tokensPerDay()} tokens, with request sizes drawn from
 * lognormal distributions around the given means.
 *
 * <p>The rate is held constant within each minute (the pattern's value at the middle of the minute) and
 * arrivals are drawn exactly for that piecewise-constant rate, so the expected number of requests over any
 * whole day (whole week for {@link TrafficPattern#WEEKLY}) is exactly {@code tokensPerDay / (meanInputTokens +
 * meanOutputTokens)}. Requests are generated as they are iterated, in constant memory; a month at a billion
 * tokens a day (some 25 million requests) costs no more memory than an hour.
 *
 * <p>The same settings and seed give the same requests, every time the traffic is iterated. The arrival
 * times, the request sizes and the times of {@link TrafficPattern#BURSTY} spikes are drawn from separate
 * streams of the seed, so {@link #withTokensPerDay(long)} keeps the spikes where they were.
 *
 * <p>Immutable and thread-safe; each iterator is independent and is not thread-safe.
 */
public final class GeneratedTraffic implements Traffic {
    private static final long NANOS_PER_MINUTE = 60_000_000_000L;
    private static final long NANOS_PER_DAY = 86_400_000_000_000L;
    private static final int MINUTES_PER_DAY = 1_440;
    private static final Duration MAX_SPAN = Duration.ofDays(366);

    // DIURNAL: 1 + a cos(2 pi (h - 16) / 24), its mean over a day 1; a = 7/9 makes peak / trough = 8.
    private static final double DIURNAL_PEAK_TO_TROUGH = 8;
    private static final double DIURNAL_PEAK_HOUR = 16;
    private static final double[] DIURNAL = diurnalMinutes();

    // BURSTY: one spike in each quarter of a day, starting on a random minute of it.
    private static final int SPIKE_SLOT_MINUTES = MINUTES_PER_DAY / 4;
    private static final int SPIKE_MINUTES = 10;
    private static final double SPIKE_FACTOR = 20;
    // Baseline such that a day averages 1: 1440 minutes = b (1440 - 40) + 20 b 40.
    private static final double BURSTY_BASELINE =
            (double) MINUTES_PER_DAY / (MINUTES_PER_DAY - 4 * SPIKE_MINUTES + SPIKE_FACTOR * 4 * SPIKE_MINUTES);

    // WEEKLY: five weekdays at 1 and two weekend days at 0.3 of a weekday average 1 over the week.
    private static final double WEEKEND_SHARE = 0.3;
    private static final double WEEKDAY_FACTOR = 7 / (5 + 2 * WEEKEND_SHARE);
    private static final double WEEKEND_FACTOR = WEEKEND_SHARE * WEEKDAY_FACTOR;

    private final TrafficPattern pattern;
    private final long tokensPerDay;
    private final Duration span;
    private final long seed;
    private final int meanInputTokens;
    private final int meanOutputTokens;
    private final double sizeSpread;
    private final Map<String, String> tags;

    private final long spanNanos;
    private final double requestsPerNano;
    private final double inputMu;
    private final double outputMu;

    private GeneratedTraffic(Builder b) {
        this.pattern = b.pattern;
        this.tokensPerDay = b.tokensPerDay;
        this.span = b.span;
        this.seed = b.seed;
        this.meanInputTokens = b.meanInputTokens;
        this.meanOutputTokens = b.meanOutputTokens;
        this.sizeSpread = b.sizeSpread;
        this.tags = b.tags;
        this.spanNanos = span.toNanos();
        double requestsPerDay = (double) tokensPerDay / ((double) meanInputTokens + meanOutputTokens);
        this.requestsPerNano = requestsPerDay / NANOS_PER_DAY;
        // A lognormal's mean is exp(mu + sigma^2 / 2): this mu keeps the requested mean.
        double halfVariance = sizeSpread * sizeSpread / 2;
        this.inputMu = Math.log(meanInputTokens) - halfVariance;
        this.outputMu = Math.log(meanOutputTokens) - halfVariance;
    }

    /** A builder with the defaults: one day, seed 1, 1000 input and 250 output tokens, spread 0.5, no tags. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this traffic's settings, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.pattern = pattern;
        b.tokensPerDay = tokensPerDay;
        b.span = span;
        b.seed = seed;
        b.meanInputTokens = meanInputTokens;
        b.meanOutputTokens = meanOutputTokens;
        b.sizeSpread = sizeSpread;
        b.tags = tags;
        return b;
    }

    /**
     * The same traffic at another volume: same pattern, span, seed and sizes (and, for {@link
     * TrafficPattern#BURSTY}, the same spike times).
     *
     * @throws IllegalArgumentException when {@code tokensPerDay} is below 1
     */
    public GeneratedTraffic withTokensPerDay(long tokensPerDay) {
        return toBuilder().tokensPerDay(tokensPerDay).build();
    }

    /** The shape of the rate over time. */
    public TrafficPattern pattern() {
        return pattern;
    }

    /** Input plus output tokens an average day carries, in expectation. */
    public long tokensPerDay() {
        return tokensPerDay;
    }

    /** The seed all random draws come from. */
    public long seed() {
        return seed;
    }

    /** Mean input tokens of a request. */
    public int meanInputTokens() {
        return meanInputTokens;
    }

    /** Mean output tokens of a request. */
    public int meanOutputTokens() {
        return meanOutputTokens;
    }

    /** The sigma of the lognormal request sizes; 0 when every request has exactly the means. */
    public double sizeSpread() {
        return sizeSpread;
    }

    /** The tags every request carries; empty for none. */
    public Map<String, String> tags() {
        return tags;
    }

    /**
     * The expected number of requests per average day: {@code tokensPerDay / (meanInputTokens +
     * meanOutputTokens)}, not rounded.
     */
    public double requestsPerDay() {
        return requestsPerNano * NANOS_PER_DAY;
    }

    @Override
    public Duration span() {
        return span;
    }

    /** The requests, drawn afresh from the seed: every iterator yields the same sequence. */
    @Override
    public Iterator<TrafficRequest> iterator() {
        return new Arrivals();
    }

    /**
     * For example {@code bursty, 5M tokens/day over 1 day, mean 1000 in / 250 out, seed 42}; a size spread
     * other than the default and tags are named too.
     */
    @Override
    public String describe() {
        StringBuilder sb = new StringBuilder()
                .append(pattern.id())
                .append(", ")
                .append(TokenCounts.format(tokensPerDay))
                .append(" tokens/day over ")
                .append(TrafficText.duration(span))
                .append(", mean ")
                .append(meanInputTokens)
                .append(" in / ")
                .append(meanOutputTokens)
                .append(" out");
        if (sizeSpread != Builder.DEFAULT_SPREAD) {
            sb.append(", size spread ")
                    .append(BigDecimal.valueOf(sizeSpread).stripTrailingZeros().toPlainString());
        }
        if (!tags.isEmpty()) {
            sb.append(", tags ")
                    .append(new TreeMap<>(tags)
                            .entrySet().stream()
                                    .map(e -> e.getKey() + "=" + e.getValue())
                                    .collect(Collectors.joining(";")));
        }
        return sb.append(", seed ").append(seed).toString();
    }

    /** The same as {@link #describe()}. */
    @Override
    public String toString() {
        return describe();
    }

    private static double[] diurnalMinutes() {
        double trough = 2 / (DIURNAL_PEAK_TO_TROUGH + 1); // 1 - a with (1 + a) / (1 - a) = ratio
        double amplitude = 1 - trough;
        double[] shape = new double[MINUTES_PER_DAY];
        for (int m = 0; m < MINUTES_PER_DAY; m++) {
            double hour = (m + 0.5) / 60;
            shape[m] = 1 + amplitude * Math.cos(2 * Math.PI * (hour - DIURNAL_PEAK_HOUR) / 24);
        }
        // Midpoints of whole periods sum the cosine to zero up to rounding; make the mean exactly 1.
        double sum = 0;
        for (double v : shape) {
            sum += v;
        }
        for (int m = 0; m < MINUTES_PER_DAY; m++) {
            shape[m] *= MINUTES_PER_DAY / sum;
        }
        return shape;
    }

    /**
     * Walks the minutes of the span. Within a minute the rate is constant, so the gap to the next arrival is
     * exponential; a gap that runs past the minute's end carries its unused part (in units of expected
     * arrivals) into the next minute, which draws arrivals exactly for the piecewise-constant rate.
     */
    private final class Arrivals implements Iterator<TrafficRequest> {
        private final SplittableRandom arrivals;
        private final SplittableRandom sizes;
        private final SplittableRandom spikes;
        private final int[] spikeStarts = new int[4];
        private long spikeDay = -1;

        private long minute = -1;
        private long minuteStart;
        private long minuteLength;
        private double rate; // requests per nanosecond in the current minute
        private double position; // nanoseconds into the current minute of the last arrival
        private double pending; // expected arrivals still to pass before the next one

        private TrafficRequest next;
        private boolean done;

        Arrivals() {
            SplittableRandom root = new SplittableRandom(seed);
            this.spikes = root.split();
            this.sizes = root.split();
            this.arrivals = root;
            this.pending = arrivals.nextExponential();
            enterMinute(0);
        }

        @Override
        public boolean hasNext() {
            if (next == null && !done) {
                advance();
            }
            return next != null;
        }

        @Override
        public TrafficRequest next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            TrafficRequest r = next;
            next = null;
            return r;
        }

        private void advance() {
            while (minuteStart < spanNanos) {
                if (rate > 0) {
                    double at = position + pending / rate;
                    if (at < minuteLength) {
                        position = at;
                        pending = arrivals.nextExponential();
                        long offset = minuteStart + Math.min((long) at, minuteLength - 1);
                        next = new TrafficRequest(
                                offset, size(inputMu, meanInputTokens), size(outputMu, meanOutputTokens), tags);
                        return;
                    }
                    pending = Math.max(0, pending - rate * (minuteLength - position));
                }
                enterMinute(minute + 1);
            }
            done = true;
        }

        private void enterMinute(long m) {
            minute = m;
            minuteStart = m * NANOS_PER_MINUTE;
            minuteLength = Math.min(NANOS_PER_MINUTE, spanNanos - minuteStart);
            position = 0;
            rate = minuteStart < spanNanos ? requestsPerNano * shape(m) : 0;
        }

        private double shape(long m) {
            int ofDay = (int) (m % MINUTES_PER_DAY);
            long day = m / MINUTES_PER_DAY;
            switch (pattern) {
                case STEADY:
                    return 1;
                case DIURNAL:
                    return DIURNAL[ofDay];
                case WEEKLY:
                    return DIURNAL[ofDay] * (day % 7 >= 5 ? WEEKEND_FACTOR : WEEKDAY_FACTOR);
                case BURSTY:
                    if (day != spikeDay) {
                        // Days are entered in order, so the spike stream is read in the same order every time.
                        for (int i = 0; i < spikeStarts.length; i++) {
                            spikeStarts[i] = spikes.nextInt(SPIKE_SLOT_MINUTES - SPIKE_MINUTES + 1);
                        }
                        spikeDay = day;
                    }
                    int slot = ofDay / SPIKE_SLOT_MINUTES;
                    int intoSpike = ofDay - slot * SPIKE_SLOT_MINUTES - spikeStarts[slot];
                    boolean spiking = intoSpike >= 0 && intoSpike < SPIKE_MINUTES;
                    return spiking ? SPIKE_FACTOR * BURSTY_BASELINE : BURSTY_BASELINE;
                default:
                    throw new AssertionError(pattern);
            }
        }

        private int size(double mu, int mean) {
            if (sizeSpread == 0) {
                return mean;
            }
            long tokens = Math.round(Math.exp(mu + sizeSpread * sizes.nextGaussian()));
            return (int) Math.max(1, Math.min(Integer.MAX_VALUE, tokens));
        }
    }

    /**
     * Settings of a {@link GeneratedTraffic}. Each setter rejects a bad value at once, naming the setting.
     * Not thread-safe.
     */
    public static final class Builder {
        static final double DEFAULT_SPREAD = 0.5;

        private TrafficPattern pattern;
        private long tokensPerDay;
        private Duration span = Duration.ofDays(1);
        private long seed = 1;
        private int meanInputTokens = 1_000;
        private int meanOutputTokens = 250;
        private double sizeSpread = DEFAULT_SPREAD;
        private Map<String, String> tags = Map.of();

        private Builder() {}

        /** The shape of the rate over time. Required. */
        public Builder pattern(TrafficPattern pattern) {
            this.pattern = Objects.requireNonNull(pattern, "pattern");
            return this;
        }

        /**
         * Input plus output tokens an average day carries, in expectation. Required.
         *
         * @throws IllegalArgumentException when below 1
         */
        public Builder tokensPerDay(long tokensPerDay) {
            if (tokensPerDay < 1) {
                throw new IllegalArgumentException("tokensPerDay must be at least 1, got " + tokensPerDay);
            }
            this.tokensPerDay = tokensPerDay;
            return this;
        }

        /**
         * How long the traffic lasts, from 00:00 of day 0 (a Monday). Default one day.
         *
         * @throws IllegalArgumentException unless more than zero and at most 366 days
         */
        public Builder span(Duration span) {
            Objects.requireNonNull(span, "span");
            if (span.isNegative() || span.isZero() || span.compareTo(MAX_SPAN) > 0) {
                throw new IllegalArgumentException("span must be more than zero and at most 366 days, got " + span);
            }
            this.span = span;
            return this;
        }

        /** The seed all random draws come from. Default 1. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Mean input (prompt) tokens of a request. Default 1000.
         *
         * @throws IllegalArgumentException when below 1
         */
        public Builder meanInputTokens(int meanInputTokens) {
            if (meanInputTokens < 1) {
                throw new IllegalArgumentException("meanInputTokens must be at least 1, got " + meanInputTokens);
            }
            this.meanInputTokens = meanInputTokens;
            return this;
        }

        /**
         * Mean output tokens of a request. Default 250.
         *
         * @throws IllegalArgumentException when below 1
         */
        public Builder meanOutputTokens(int meanOutputTokens) {
            if (meanOutputTokens < 1) {
                throw new IllegalArgumentException("meanOutputTokens must be at least 1, got " + meanOutputTokens);
            }
            this.meanOutputTokens = meanOutputTokens;
            return this;
        }

        /**
         * The sigma of the lognormal distributions of input and output sizes, which keep the means; 0 gives
         * every request exactly the means. Default 0.5. Sizes are rounded to whole tokens, at least 1.
         *
         * @throws IllegalArgumentException unless from 0 to 3
         */
        public Builder sizeSpread(double sigma) {
            if (!(sigma >= 0 && sigma <= 3)) {
                throw new IllegalArgumentException("sizeSpread must be from 0 to 3, got " + sigma);
            }
            this.sizeSpread = sigma;
            return this;
        }

        /** Tags every request carries. Default none. */
        public Builder tags(Map<String, String> tags) {
            this.tags = Map.copyOf(Objects.requireNonNull(tags, "tags"));
            return this;
        }

        /**
         * The traffic.
         *
         * @throws IllegalStateException when the pattern or the tokens per day were not set
         */
        public GeneratedTraffic build() {
            if (pattern == null) {
                throw new IllegalStateException("pattern is required: steady, diurnal, bursty or weekly");
            }
            if (tokensPerDay < 1) {
                throw new IllegalStateException("tokensPerDay is required: at least 1");
            }
            return new GeneratedTraffic(this);
        }
    }
}
