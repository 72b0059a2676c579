package dev.hybridinference.faults;

import java.util.Optional;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Ties each test class to its row of the {@link FaultReport}: times the class, counts its tests and
 * failures (with the first line of each failure), and rewrites the report file when the class ends.
 */
final class FaultWatcher implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback, TestWatcher {
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(FaultWatcher.class);

    static FaultReport.Row rowOf(Class<?> testClass) {
        FaultItem item = testClass.getAnnotation(FaultItem.class);
        if (item == null) {
            throw new IllegalStateException(testClass.getName() + " has no @FaultItem");
        }
        return FaultReport.row(item.value(), item.title());
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        FaultReport.Row row = rowOf(context.getRequiredTestClass());
        FaultReport.current(row);
        context.getStore(NS).put("start", System.nanoTime());
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        FaultReport.current(rowOf(context.getRequiredTestClass()));
    }

    @Override
    public void afterAll(ExtensionContext context) {
        FaultReport.Row row = rowOf(context.getRequiredTestClass());
        Long start = context.getStore(NS).get("start", Long.class);
        if (start != null) {
            row.nanos.addAndGet(System.nanoTime() - start);
        }
        FaultReport.current(null);
        FaultReport.write();
    }

    @Override
    public void testSuccessful(ExtensionContext context) {
        rowOf(context.getRequiredTestClass()).tests.incrementAndGet();
    }

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        FaultReport.Row row = rowOf(context.getRequiredTestClass());
        row.tests.incrementAndGet();
        row.failed.incrementAndGet();
        row.failure(context.getRequiredTestMethod().getName() + ": " + firstLine(cause));
    }

    @Override
    public void testAborted(ExtensionContext context, Throwable cause) {
        rowOf(context.getRequiredTestClass()).tests.incrementAndGet();
    }

    @Override
    public void testDisabled(ExtensionContext context, Optional<String> reason) {}

    private static String firstLine(Throwable t) {
        String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
        for (String line : m.split("\n")) {
            if (!line.isBlank()) {
                String s = line.strip();
                return s.length() > 220 ? s.substring(0, 220) + "..." : s;
            }
        }
        return t.getClass().getSimpleName();
    }
}
