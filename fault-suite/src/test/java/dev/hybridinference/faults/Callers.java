package dev.hybridinference.faults;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;

/** Many callers at once: the stampedes and races several fault items set up. */
final class Callers {
    private Callers() {}

    /**
     * Runs {@code caller} on {@code n} daemon threads (each given its number, from 0) released at the
     * same moment, and waits up to {@code wait} for all of them.
     *
     * @return whether every caller finished in time; {@code false} also when the waiting thread is
     *     interrupted (its interrupt flag is then set again)
     */
    static boolean together(int n, Duration wait, IntConsumer caller) {
        CountDownLatch go = new CountDownLatch(1);
        CountDownLatch done = new CountDownLatch(n);
        for (int i = 0; i < n; i++) {
            int number = i;
            Thread t = new Thread(() -> {
                try {
                    go.await();
                    caller.accept(number);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    done.countDown();
                }
            });
            t.setDaemon(true);
            t.start();
        }
        go.countDown();
        try {
            return done.await(wait.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
