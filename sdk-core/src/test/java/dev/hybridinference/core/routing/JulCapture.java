package dev.hybridinference.core.routing;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Records what one logger writes while it is open, through {@code java.util.logging}, where the tests'
 * SLF4J binding sends the SDK's logging; every level is enabled meanwhile. Thread-safe.
 */
final class JulCapture implements AutoCloseable {
    private final Logger logger;
    private final Level previous;
    private final boolean parentHandlers;
    private final List<LogRecord> records = new ArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord record) {
            synchronized (records) {
                records.add(record);
            }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    private JulCapture(String name) {
        this.logger = Logger.getLogger(name);
        this.previous = logger.getLevel();
        this.parentHandlers = logger.getUseParentHandlers();
        handler.setLevel(Level.ALL);
        logger.setLevel(Level.ALL);
        logger.addHandler(handler);
        logger.setUseParentHandlers(false);
    }

    /** Starts recording what the logger named {@code name} writes. */
    static JulCapture of(String name) {
        return new JulCapture(name);
    }

    /** The messages logged at warning level, in order. */
    List<String> warnings() {
        return messages(Level.WARNING);
    }

    /** The messages logged at debug level ({@link Level#FINE}), in order. */
    List<String> debugs() {
        return messages(Level.FINE);
    }

    private List<String> messages(Level level) {
        List<String> out = new ArrayList<>();
        synchronized (records) {
            for (LogRecord r : records) {
                if (r.getLevel().equals(level)) {
                    out.add(r.getMessage());
                }
            }
        }
        return out;
    }

    @Override
    public void close() {
        logger.removeHandler(handler);
        logger.setLevel(previous);
        logger.setUseParentHandlers(parentHandlers);
    }
}
