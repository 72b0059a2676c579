package dev.hybridinference.vllm;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Closes what a test opened once the test ends, newest first, so a client goes before the servers it
 * talks to. Register it on an instance field with {@code @RegisterExtension}; each test gets its own.
 *
 * <p>Also holds {@link #await}, the bounded poll these tests use instead of fixed sleeps.
 */
final class Closer implements AfterEachCallback {
    private final List<AutoCloseable> open = new ArrayList<>();

    /** Registers {@code resource} to be closed after the test and returns it. */
    <T extends AutoCloseable> T closing(T resource) {
        open.add(resource);
        return resource;
    }

    /**
     * Closes everything in reverse order of registration. One failing close does not keep the others
     * open: the first failure is rethrown with the later ones suppressed.
     */
    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        Exception first = null;
        for (int i = open.size() - 1; i >= 0; i--) {
            try {
                open.get(i).close();
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        open.clear();
        if (first != null) {
            throw first;
        }
    }

    /** Polls {@code condition} every 10 ms; fails the test if it does not hold within 10 s. */
    static void await(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within 10 s");
            }
            Thread.sleep(10);
        }
    }
}
