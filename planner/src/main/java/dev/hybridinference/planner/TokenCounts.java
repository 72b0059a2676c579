package dev.hybridinference.planner;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Token counts in the short form people write them in: {@code 10k}, {@code 5M}, {@code 1.5B}. A suffix
 * {@code k}, {@code M} or {@code B} (any case) multiplies by a thousand, a million or a billion; a plain
 * whole number is taken as it is. Stateless and thread-safe.
 */
public final class TokenCounts {
    private static final long[] UNITS = {1_000_000_000L, 1_000_000L, 1_000L};
    private static final String[] SUFFIXES = {"B", "M", "k"};
    private static final Pattern FORM = Pattern.compile("([0-9]+(?:_[0-9]+)*)(?:\\.([0-9]+))?\\s*([kKmMbB])?");
    private static final String EXPECTED = "expected a token count such as 250000, 10k, 5M or 1.5B";

    private TokenCounts() {}

    /**
     * Reads a token count: a whole number ({@code 250000}), or a number with a suffix {@code k}, {@code M}
     * or {@code B} in any case ({@code 10k}, {@code 5m}, {@code 1.5B}). A decimal point is allowed before a
     * suffix as long as the result is a whole number of tokens; underscores between digits are ignored
     * ({@code 1_000_000}).
     *
     * @param text the count as written
     * @return the count, not negative
     * @throws IllegalArgumentException when the text is not such a count, is not a whole number of tokens,
     *     is negative or does not fit in a {@code long}; the message quotes the text
     */
    public static long parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException(EXPECTED + ", got nothing");
        }
        Matcher m = FORM.matcher(text.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException(EXPECTED + ", got \"" + text + "\"");
        }
        String number = m.group(1).replace("_", "") + (m.group(2) == null ? "" : "." + m.group(2));
        long multiplier = 1;
        if (m.group(3) != null) {
            char suffix = Character.toLowerCase(m.group(3).charAt(0));
            multiplier = suffix == 'k' ? 1_000L : suffix == 'm' ? 1_000_000L : 1_000_000_000L;
        }
        BigDecimal value = new BigDecimal(number).multiply(BigDecimal.valueOf(multiplier));
        if (value.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
            throw new IllegalArgumentException(EXPECTED + " of at most " + Long.MAX_VALUE + ", got \"" + text + "\"");
        }
        try {
            return value.longValueExact();
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(EXPECTED + " that comes to a whole number of tokens, got \"" + text
                    + "\" (" + value.stripTrailingZeros().toPlainString() + ")");
        }
    }

    /**
     * Writes a count in the short form: {@code 999}, {@code 10k}, {@code 5M}, {@code 1.5B}, with at most two
     * decimals ({@code 1234567} is written {@code 1.23M}). Counts below a thousand are written in full.
     * {@link #parse(String)} reads every form this writes; the value read back is exact for counts with at
     * most three significant digits, and rounded otherwise.
     *
     * @param count the count, not negative
     * @return the short form
     * @throws IllegalArgumentException for a negative count
     */
    public static String format(long count) {
        if (count < 0) {
            throw new IllegalArgumentException("count must not be negative, got " + count);
        }
        if (count < 1_000) {
            return Long.toString(count);
        }
        for (int i = 0; i < UNITS.length; i++) {
            if (count >= UNITS[i]) {
                BigDecimal scaled =
                        BigDecimal.valueOf(count).divide(BigDecimal.valueOf(UNITS[i]), 2, RoundingMode.HALF_UP);
                // 999_999 is 1000.00k after rounding: written as one of the next unit up.
                if (i > 0 && scaled.compareTo(BigDecimal.valueOf(1_000)) >= 0) {
                    return "1" + SUFFIXES[i - 1];
                }
                return scaled.stripTrailingZeros().toPlainString() + SUFFIXES[i];
            }
        }
        throw new AssertionError("unreachable");
    }
}
