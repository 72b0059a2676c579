package dev.hybridinference.localgpu.bench;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

/**
 * Runs JUnit test classes without Maven and prints one line per test (ok with its time, FAIL with the
 * failure's message, or SKIP with the assumption that skipped it): {@code src/test/gpu/run.sh} uses it on a GPU machine that has
 * a Java runtime but no build tool. Arguments: fully qualified test class names. Exits 1 when a test failed,
 * 2 when none ran.
 */
public final class GpuTests {
    private GpuTests() {}

    public static void main(String[] args) throws ClassNotFoundException {
        LauncherDiscoveryRequestBuilder request = LauncherDiscoveryRequestBuilder.request();
        for (String name : args) {
            request.selectors(selectClass(Class.forName(name)));
        }
        LauncherDiscoveryRequest discovery = request.build();
        AtomicInteger passed = new AtomicInteger();
        AtomicInteger skipped = new AtomicInteger();
        List<String> failed = new ArrayList<>();
        Map<String, Long> started = new ConcurrentHashMap<>();
        TestExecutionListener listener = new TestExecutionListener() {
            @Override
            public void executionStarted(TestIdentifier test) {
                started.put(test.getUniqueId(), System.nanoTime());
            }

            @Override
            public void executionSkipped(TestIdentifier test, String reason) {
                skipped.incrementAndGet();
                System.out.println("SKIP  " + test.getDisplayName() + ": " + reason);
            }

            @Override
            public void executionFinished(TestIdentifier test, TestExecutionResult result) {
                Long from = started.remove(test.getUniqueId());
                String name = test.getLegacyReportingName()
                        + (from == null
                                ? ""
                                : String.format(Locale.ROOT, " (%.1f s)", (System.nanoTime() - from) / 1e9));
                Throwable cause = result.getThrowable().orElse(null);
                switch (result.getStatus()) {
                    case SUCCESSFUL:
                        if (test.isTest()) {
                            passed.incrementAndGet();
                            System.out.println("ok    " + name);
                        }
                        break;
                    case ABORTED:
                        skipped.incrementAndGet();
                        System.out.println("SKIP  " + name + ": " + (cause == null ? "" : cause.getMessage()));
                        break;
                    default:
                        failed.add(name);
                        System.out.println("FAIL  " + name + ": " + cause);
                        if (cause != null) {
                            StackTraceElement[] trace = cause.getStackTrace();
                            for (int i = 0; i < Math.min(trace.length, 6); i++) {
                                System.out.println("        at " + trace[i]);
                            }
                        }
                }
            }
        };
        LauncherFactory.create().execute(discovery, listener);
        System.out.printf("%d passed, %d failed, %d skipped%n", passed.get(), failed.size(), skipped.get());
        System.exit(!failed.isEmpty() ? 1 : passed.get() == 0 ? 2 : 0);
    }
}
