package dev.hybridinference.planner;

import java.time.Duration;
import java.util.Iterator;

/**
 * A sequence of requests in arrival order, generated or read from a trace. Iterating twice yields the same
 * requests (a generated traffic re-seeds), so that several scenarios replay exactly the same traffic, and
 * iterators are independent of each other, so that scenarios can replay it on several threads at once.
 */
public interface Traffic extends Iterable<TrafficRequest> {
    /** The time the traffic covers, from its start; every request's offset is below it. */
    Duration span();

    /** The requests in non-decreasing order of offset. */
    @Override
    Iterator<TrafficRequest> iterator();

    /** A short description for reports: {@code bursty, 5M tokens/day over 1 day, mean 1000 in / 250 out, seed 42}. */
    String describe();
}
