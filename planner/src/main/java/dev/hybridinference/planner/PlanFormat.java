package dev.hybridinference.planner;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.time.Duration;
import java.util.Locale;

/**
 * Short display forms shared by the tables and the charts. Display only: rounded for reading, never for
 * arithmetic (the JSON keeps the exact amounts).
 */
final class PlanFormat {
    private static final BigDecimal ONE_THOUSAND = BigDecimal.valueOf(1000);
    private static final String[] TOKEN_UNITS = {"", "k", "M", "B", "T"};

    private PlanFormat() {}

    /**
     * Dollars for a table: cents from one dollar up ({@code $1,234.50}), two significant digits below
     * ({@code $0.42}, {@code $0.0042}, {@code $0.05}), so that small amounts do not all read {@code $0.00}.
     * Halves round up, as people round.
     */
    static String usd(BigDecimal amount) {
        BigDecimal abs = amount.abs();
        String sign = amount.signum() < 0 ? "-" : "";
        if (abs.signum() == 0) {
            return "$0.00";
        }
        if (abs.compareTo(BigDecimal.ONE) >= 0) {
            return sign + "$" + decimalFormat("#,##0.00").format(abs.setScale(2, RoundingMode.HALF_UP));
        }
        BigDecimal rounded = abs.round(new MathContext(2, RoundingMode.HALF_UP)).stripTrailingZeros();
        if (rounded.scale() < 2) {
            rounded = rounded.setScale(2, RoundingMode.UNNECESSARY);
        }
        return sign + "$" + rounded.toPlainString();
    }

    /**
     * Dollars for an axis tick: zero and whole amounts without cents ({@code $0}, {@code $1}, {@code $1,000}),
     * otherwise as {@link #usd(BigDecimal)}.
     */
    static String usdTick(double amount) {
        if (!Double.isFinite(amount)) {
            return "";
        }
        BigDecimal value = new BigDecimal(amount).round(new MathContext(6, RoundingMode.HALF_EVEN));
        if (value.signum() == 0) {
            return "$0";
        }
        if (value.abs().compareTo(BigDecimal.ONE) >= 0
                && value.remainder(BigDecimal.ONE).signum() == 0) {
            return (value.signum() < 0 ? "-" : "") + "$"
                    + decimalFormat("#,##0").format(value.abs());
        }
        return usd(value);
    }

    /**
     * A token count in short form: {@code 950}, {@code 10k}, {@code 1.5M}, {@code 85M}, {@code 1B}. One
     * decimal below ten units, none from ten up.
     */
    static String tokens(double count) {
        if (!Double.isFinite(count)) {
            return String.valueOf(count);
        }
        String sign = count < 0 ? "-" : "";
        BigDecimal abs = new BigDecimal(Math.abs(count));
        int unit = 0;
        while (unit < TOKEN_UNITS.length - 1 && abs.compareTo(ONE_THOUSAND) >= 0) {
            abs = abs.divide(ONE_THOUSAND);
            unit++;
        }
        BigDecimal shown = abs.setScale(abs.compareTo(BigDecimal.TEN) < 0 ? 1 : 0, RoundingMode.HALF_UP);
        // 999.6k rounds to 1000k: say 1M instead.
        if (shown.compareTo(ONE_THOUSAND) >= 0 && unit < TOKEN_UNITS.length - 1) {
            shown = BigDecimal.ONE;
            unit++;
        }
        return sign + shown.stripTrailingZeros().toPlainString() + TOKEN_UNITS[unit];
    }

    /** A latency: {@code 850 ms}, {@code 1.25 s}, {@code 312 s}. */
    static String latency(Duration latency) {
        long nanos = latency.toNanos();
        if (nanos < 1_000_000_000L) {
            return BigDecimal.valueOf(nanos, 6).setScale(0, RoundingMode.HALF_UP) + " ms";
        }
        BigDecimal seconds = BigDecimal.valueOf(nanos, 9);
        return seconds.setScale(seconds.compareTo(BigDecimal.valueOf(100)) < 0 ? 2 : 0, RoundingMode.HALF_UP) + " s";
    }

    /** A share from 0 to 1 as a percentage with one decimal: {@code 42.5%}. */
    static String percent(double share) {
        return String.format(Locale.ROOT, "%.1f%%", share * 100);
    }

    private static DecimalFormat decimalFormat(String pattern) {
        return new DecimalFormat(pattern, DecimalFormatSymbols.getInstance(Locale.ROOT));
    }
}
