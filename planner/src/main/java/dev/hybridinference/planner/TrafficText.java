package dev.hybridinference.planner;

import java.time.Duration;

/** Words for the figures a traffic's description holds. */
final class TrafficText {
    private TrafficText() {}

    /** {@code 1 day}, {@code 7 days}, {@code 1 day 6 hours}, {@code 90 minutes} is {@code 1 hour 30 minutes}. */
    static String duration(Duration d) {
        long seconds = d.getSeconds();
        if (seconds == 0) {
            long millis = d.toMillis();
            return millis > 0 ? millis + " ms" : d.toNanos() + " ns";
        }
        StringBuilder sb = new StringBuilder();
        append(sb, seconds / 86_400, "day");
        append(sb, seconds / 3_600 % 24, "hour");
        append(sb, seconds / 60 % 60, "minute");
        append(sb, seconds % 60, "second");
        return sb.toString();
    }

    private static void append(StringBuilder sb, long n, String unit) {
        if (n == 0) {
            return;
        }
        if (sb.length() > 0) {
            sb.append(' ');
        }
        sb.append(n).append(' ').append(unit);
        if (n != 1) {
            sb.append('s');
        }
    }
}
