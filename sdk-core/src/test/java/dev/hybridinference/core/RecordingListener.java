package dev.hybridinference.core;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A listener that writes down every event it hears, in order, with the call and what came with it, for
 * tests that specify what a composite client tells its listeners. Thread-safe.
 */
public class RecordingListener implements InferenceListener {
    /**
     * One event.
     *
     * @param name the method's name without {@code on}, first letter lower-case ({@code attemptStarted})
     * @param call the call, or null for a circuit change
     * @param detail what came with it: an {@link AttemptStart}, {@link AttemptEnd}, {@link Duration},
     *     {@link Receipt}, {@link InferenceException}, {@link Spillover}, {@link BudgetExceededException} or
     *     {@link CircuitChange}; null for a call's start
     */
    public record Event(String name, Call call, Object detail) {}

    /** What a spillover came with. */
    public record Spillover(String primary, String reason) {}

    private final List<Event> events = new CopyOnWriteArrayList<>();

    /** Every event so far. */
    public List<Event> events() {
        return List.copyOf(events);
    }

    /** The events' names so far, in order. */
    public List<String> names() {
        List<String> out = new ArrayList<>();
        for (Event e : events) {
            out.add(e.name());
        }
        return out;
    }

    /** The details of the events named {@code name}, in order. */
    public <T> List<T> details(String name, Class<T> type) {
        List<T> out = new ArrayList<>();
        for (Event e : events) {
            if (e.name().equals(name)) {
                out.add(type.cast(e.detail()));
            }
        }
        return out;
    }

    /** The detail of the only event named {@code name}; fails when there is none or more than one. */
    public <T> T only(String name, Class<T> type) {
        List<T> all = details(name, type);
        if (all.size() != 1) {
            throw new AssertionError("expected one " + name + " event, got " + all.size() + " in " + names());
        }
        return all.get(0);
    }

    /** Forgets what it heard. */
    public void clear() {
        events.clear();
    }

    private void add(String name, Call call, Object detail) {
        events.add(new Event(name, call, detail));
    }

    @Override
    public void onCallStarted(Call call) {
        add("callStarted", call, null);
    }

    @Override
    public void onAttemptStarted(Call call, AttemptStart attempt) {
        add("attemptStarted", call, attempt);
    }

    @Override
    public void onAttemptEnded(Call call, AttemptEnd attempt) {
        add("attemptEnded", call, attempt);
    }

    @Override
    public void onFirstToken(Call call, Duration timeToFirstToken) {
        add("firstToken", call, timeToFirstToken);
    }

    @Override
    public void onCompleted(Call call, Receipt receipt) {
        add("completed", call, receipt);
    }

    @Override
    public void onFailed(Call call, InferenceException error) {
        add("failed", call, error);
    }

    @Override
    public void onSpillover(Call call, String primary, String reason) {
        add("spillover", call, new Spillover(primary, reason));
    }

    @Override
    public void onBudgetRefused(Call call, BudgetExceededException refusal) {
        add("budgetRefused", call, refusal);
    }

    @Override
    public void onCircuitChanged(CircuitChange change) {
        add("circuitChanged", null, change);
    }
}
