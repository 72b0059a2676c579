package dev.hybridinference.testkit;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

/**
 * Records every log line the SDK writes while it is open, for tests that check what was logged (a
 * warning for a degraded state, and never a secret). The SDK logs through the SLF4J API; this module
 * brings the {@code java.util.logging} binding, so the lines arrive here fully formatted, with the
 * stack traces of attached exceptions. Thread-safe; close it to stop recording.
 */
public final class LogCapture implements AutoCloseable {
    private final Logger root;
    private final Level previous;
    private final List<LogRecord> records = new ArrayList<>();
    private final SimpleFormatter formatter = new SimpleFormatter();
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

    private LogCapture(String loggerName) {
        this.root = Logger.getLogger(loggerName);
        this.previous = root.getLevel();
        handler.setLevel(Level.ALL);
        root.setLevel(Level.ALL);
        root.addHandler(handler);
    }

    /** Starts recording everything logged under the SDK's package, {@code dev.hybridinference}. */
    public static LogCapture start() {
        return new LogCapture("dev.hybridinference");
    }

    /** The lines so far, each formatted with its level, message and any exception's stack trace. */
    public List<String> lines() {
        List<String> out = new ArrayList<>();
        synchronized (records) {
            for (LogRecord r : records) {
                out.add(formatter.format(r));
            }
        }
        return out;
    }

    /** The lines so far at {@code level} or above. */
    public List<String> lines(Level level) {
        List<String> out = new ArrayList<>();
        synchronized (records) {
            for (LogRecord r : records) {
                if (r.getLevel().intValue() >= level.intValue()) {
                    out.add(formatter.format(r));
                }
            }
        }
        return out;
    }

    /** All lines joined, for a quick {@code contains} check. */
    public String text() {
        return String.join("", lines());
    }

    @Override
    public void close() {
        root.removeHandler(handler);
        root.setLevel(previous);
    }
}
