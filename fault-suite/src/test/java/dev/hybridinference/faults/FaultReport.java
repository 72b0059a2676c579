package dev.hybridinference.faults;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The fault report: one row per hardening item, filled in by the tests as they run (calls made, hangs,
 * untyped exceptions, receipts lost or double-counted, secrets found, tests failed) and written to {@code
 * target/fault-report.md} after every test class; printed once when the run ends. Thread-safe.
 */
final class FaultReport {
    /** When the first test class touched the report: the suite's start, near enough. */
    static final long STARTED = System.nanoTime();

    private static final Map<Integer, Row> ROWS = new ConcurrentSkipListMap<>();
    private static final AtomicBoolean PRINTED = new AtomicBoolean();
    private static volatile Row current;

    static {
        elsewhere(13, "Local runtime deadlines", "tested in provider-local-gpu (LocalGpuDeadlineTest)");
        elsewhere(16, "Native bounds (context length, tensor sizes)", "tested in provider-local-gpu (HostileFileTest)");
        Thread.UncaughtExceptionHandler previous = Thread.getDefaultUncaughtExceptionHandler();
        // An exception that escapes an SDK thread reaches no caller at all: count it as untyped.
        Thread.setDefaultUncaughtExceptionHandler((thread, error) -> {
            Row r = current;
            if (r != null) {
                r.untyped.incrementAndGet();
                r.finding("uncaught " + error.getClass().getSimpleName() + " on thread " + thread.getName());
            }
            if (previous != null) {
                previous.uncaughtException(thread, error);
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(FaultReport::finishRun, "fault-report"));
    }

    private FaultReport() {}

    private static void elsewhere(int item, String title, String note) {
        Row r = new Row(item, title);
        r.elsewhere = note;
        ROWS.put(item, r);
    }

    /** The row of an item, created on first use. */
    static Row row(int item, String title) {
        return ROWS.computeIfAbsent(item, i -> new Row(i, title));
    }

    /** The row of the item whose test runs now, or null between classes. */
    static Row current() {
        return current;
    }

    static void current(Row row) {
        current = row;
    }

    /** The report as Markdown. */
    static String markdown() {
        double total = (System.nanoTime() - STARTED) / 1e9;
        double items = 0;
        long calls = 0;
        long hangs = 0;
        long untyped = 0;
        long lost = 0;
        long doubled = 0;
        long secrets = 0;
        long tests = 0;
        long failed = 0;
        StringBuilder sb = new StringBuilder();
        sb.append("# Fault suite report\n\n");
        sb.append("| # | item | tests failed | calls | hangs | untyped | receipts lost | double-counted | secrets"
                + " | time (s) | findings |\n");
        sb.append("|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Row r : ROWS.values()) {
            if (r.elsewhere != null) {
                sb.append("| ")
                        .append(r.item)
                        .append(" | ")
                        .append(r.title)
                        .append(" | ")
                        .append(r.elsewhere)
                        .append(" | | | | | | | | |\n");
                continue;
            }
            double seconds = r.nanos.get() / 1e9;
            items += seconds;
            calls += r.calls.get();
            hangs += r.hangs.get();
            untyped += r.untyped.get();
            lost += r.lost.get();
            doubled += r.doubled.get();
            secrets += r.secrets.get();
            tests += r.tests.get();
            failed += r.failed.get();
            sb.append("| ")
                    .append(r.item)
                    .append(" | ")
                    .append(r.title)
                    .append(" | ")
                    .append(r.failed.get())
                    .append('/')
                    .append(r.tests.get())
                    .append(" | ")
                    .append(r.calls.get())
                    .append(" | ")
                    .append(r.hangs.get())
                    .append(" | ")
                    .append(r.untyped.get())
                    .append(" | ")
                    .append(r.lost.get())
                    .append(" | ")
                    .append(r.doubled.get())
                    .append(" | ")
                    .append(r.secrets.get())
                    .append(" | ")
                    .append(String.format(Locale.ROOT, "%.1f", seconds))
                    .append(" | ")
                    .append(cell(r.findings()))
                    .append(" |\n");
        }
        sb.append(String.format(
                Locale.ROOT,
                "| | **total** | %d/%d | %d | %d | %d | %d | %d | %d | %.1f | |\n",
                failed,
                tests,
                calls,
                hangs,
                untyped,
                lost,
                doubled,
                secrets,
                items));
        sb.append(String.format(Locale.ROOT, "%nSuite wall time: %.1f s (JVM included).%n", total));
        List<String> failures = new ArrayList<>();
        for (Row r : ROWS.values()) {
            for (String f : r.failures()) {
                failures.add("- item " + r.item + ": " + f);
            }
        }
        if (!failures.isEmpty()) {
            sb.append("\n## Failing checks\n\n");
            for (String f : failures) {
                sb.append(f).append('\n');
            }
        }
        return sb.toString();
    }

    private static String cell(List<String> findings) {
        String s = String.join("; ", findings).replace('|', '/').replace('\n', ' ');
        return s.length() > 400 ? s.substring(0, 400) + "..." : s;
    }

    /** Writes the report file (the {@code faultReport} system property, else target/fault-report.md). */
    static synchronized void write() {
        Path file = Path.of(System.getProperty("faultReport", "target/fault-report.md"));
        try {
            if (file.getParent() != null) {
                Files.createDirectories(file.getParent());
            }
            Files.writeString(file, markdown(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** At the end of the run: writes the file and prints the table, once. */
    static void finishRun() {
        boolean anyRun = ROWS.values().stream().anyMatch(r -> r.elsewhere == null);
        if (!anyRun || !PRINTED.compareAndSet(false, true)) {
            return;
        }
        write();
        System.out.println();
        System.out.println(markdown());
        System.out.println("(written to " + System.getProperty("faultReport", "target/fault-report.md") + ")");
        System.out.flush();
    }

    /** One item's figures. */
    static final class Row {
        final int item;
        final String title;
        final AtomicLong calls = new AtomicLong();
        final AtomicLong hangs = new AtomicLong();
        final AtomicLong untyped = new AtomicLong();
        final AtomicLong lost = new AtomicLong();
        final AtomicLong doubled = new AtomicLong();
        final AtomicLong secrets = new AtomicLong();
        final AtomicLong tests = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        final AtomicLong nanos = new AtomicLong();
        private final List<String> findings = Collections.synchronizedList(new ArrayList<>());
        private final List<String> failures = Collections.synchronizedList(new ArrayList<>());
        volatile String elsewhere;

        Row(int item, String title) {
            this.item = item;
            this.title = title;
        }

        /** Notes something seen (an untyped exception, a leak), once per distinct text, up to ten. */
        void finding(String text) {
            synchronized (findings) {
                if (!findings.contains(text) && findings.size() < 10) {
                    findings.add(text);
                }
            }
        }

        void failure(String text) {
            failures.add(text);
        }

        List<String> findings() {
            synchronized (findings) {
                return List.copyOf(findings);
            }
        }

        List<String> failures() {
            synchronized (failures) {
                return List.copyOf(failures);
            }
        }
    }
}
