package dev.hybridinference.core;

import dev.hybridinference.core.spi.InferenceListenerFactory;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A test listener factory, type {@code recording}: builds a {@link RecordingListener} named by the section's
 * required {@code name}, one that closes unless {@code closeable: false}, and refuses any other key. What it
 * built and what closed are kept in static lists, since the service loader makes the factory; tests clear
 * them first.
 */
public final class RecordingListenerFactory implements InferenceListenerFactory {
    /** Every listener built, in order, with the context it was built from. */
    public static final List<Built> BUILT = new CopyOnWriteArrayList<>();

    /** What closed, in order: {@code listener <name>}, and whatever else a test adds ({@code provider <id>}). */
    public static final List<String> CLOSED = new CopyOnWriteArrayList<>();

    /** A listener built, and what it was built from. */
    public record Built(Context context, Named listener) {}

    /** Forgets what was built and closed. */
    public static void reset() {
        BUILT.clear();
        CLOSED.clear();
    }

    @Override
    public String type() {
        return "recording";
    }

    @Override
    public InferenceListener create(Context context) {
        context.config().allowOnly(Set.of("type", "name", "closeable"));
        String name = context.config().requireString("name");
        Named l = context.config().bool("closeable").orElse(true) ? new Closing(name) : new Named(name);
        BUILT.add(new Built(context, l));
        return l;
    }

    /** A recording listener with a name. */
    public static class Named extends RecordingListener {
        private final String name;

        Named(String name) {
            this.name = name;
        }

        /** The section's name. */
        public String name() {
            return name;
        }
    }

    /** A named recording listener that writes its close down in {@link #CLOSED}. */
    public static final class Closing extends Named implements AutoCloseable {
        Closing(String name) {
            super(name);
        }

        @Override
        public void close() {
            CLOSED.add("listener " + name());
        }
    }
}
