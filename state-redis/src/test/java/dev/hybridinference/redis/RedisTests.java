package dev.hybridinference.redis;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** The Redis the tests run against, a key prefix of each test's own, and waiting for a condition. */
final class RedisTests {
    static final String HOST = "127.0.0.1";
    static final int PORT = 6379;
    static final String URL = "redis://" + HOST + ":" + PORT;

    private RedisTests() {}

    /** Skips the test, saying why, when nothing answers at {@link #URL}. */
    static void assumeReachable() {
        String why = null;
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(HOST, PORT), 500);
        } catch (IOException e) {
            why = e.getClass().getSimpleName() + ": " + e.getMessage();
        }
        assumeTrue(why == null, "Redis at " + URL + " cannot be reached (" + why + "); these tests need it");
    }

    /** A prefix no other test run uses. */
    static String uniquePrefix(String test) {
        return "hi-test:" + test + ":" + UUID.randomUUID() + ":";
    }

    /** Deletes every key under {@code prefix}. */
    static void deleteAll(String prefix) {
        RedisClient client = RedisClient.create(URL);
        try (StatefulRedisConnection<String, String> c = client.connect()) {
            List<String> keys = c.sync().keys(prefix + "*");
            if (!keys.isEmpty()) {
                c.sync().del(keys.toArray(new String[0]));
            }
        } finally {
            client.shutdown();
        }
    }

    /** Waits until {@code condition} holds, failing after {@code seconds}. */
    static void await(int seconds, String what, BooleanSupplier condition) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - until > 0) {
                throw new AssertionError("not within " + seconds + " s: " + what);
            }
            Thread.sleep(5);
        }
    }
}
