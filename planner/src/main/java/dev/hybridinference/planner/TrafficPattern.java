package dev.hybridinference.planner;

import java.util.Locale;

/**
 * The shape over time of a {@link GeneratedTraffic}'s request rate. Every shape is scaled so that an
 * average day carries the requested volume; the shape only says when in the day (or week) it arrives. Day 0
 * of a traffic starts at 00:00 and is a Monday.
 */
public enum TrafficPattern {
    /** A constant rate, day and night. */
    STEADY,
    /** A smooth daily cycle: quietest at 04:00, busiest at 16:00, the peak rate eight times the trough. */
    DIURNAL,
    /** A low baseline with four 10-minute spikes a day at twenty times the baseline, at seeded random times. */
    BURSTY,
    /** The diurnal cycle on weekdays; Saturdays and Sundays (days 5 and 6 of each week) at 30 % of a weekday. */
    WEEKLY;

    /**
     * The name as written on a command line: {@code steady}, {@code diurnal}, {@code bursty} or {@code
     * weekly}.
     */
    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The pattern with the given {@linkplain #id() name}; {@code weekday-weekend} is another name for {@link
     * #WEEKLY}. Case and surrounding spaces are ignored.
     *
     * @throws IllegalArgumentException for any other name, listing those accepted
     */
    public static TrafficPattern parse(String name) {
        String key = name == null ? "" : name.strip().toLowerCase(Locale.ROOT);
        if (key.equals("weekday-weekend")) {
            return WEEKLY;
        }
        for (TrafficPattern p : values()) {
            if (p.id().equals(key)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown traffic pattern " + (name == null ? "null" : "\"" + name + "\"")
                + "; expected one of steady, diurnal, bursty, weekly (or weekday-weekend)");
    }
}
