package dev.hybridinference.planner;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/** A traffic written out request by request, for tests. */
final class ListTraffic implements Traffic {
    private final List<TrafficRequest> requests;
    private final Duration span;

    ListTraffic(Duration span, List<TrafficRequest> requests) {
        this.span = span;
        this.requests = List.copyOf(requests);
    }

    /** {@code count} requests of the same size, {@code every} apart from the start, over {@code span}. */
    static ListTraffic evenly(Duration span, Duration every, int in, int out) {
        List<TrafficRequest> rs = new ArrayList<>();
        for (long t = 0; t < span.toNanos(); t += every.toNanos()) {
            rs.add(new TrafficRequest(t, in, out));
        }
        return new ListTraffic(span, rs);
    }

    @Override
    public Duration span() {
        return span;
    }

    @Override
    public Iterator<TrafficRequest> iterator() {
        return requests.iterator();
    }

    @Override
    public String describe() {
        return requests.size() + " requests over " + span;
    }
}
