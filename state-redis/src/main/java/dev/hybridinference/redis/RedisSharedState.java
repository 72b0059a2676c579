package dev.hybridinference.redis;

import dev.hybridinference.core.spi.Deadline;
import dev.hybridinference.core.spi.SharedState;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.SetArgs;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.DefaultClientResources;
import io.lettuce.core.resource.Delay;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * {@link SharedState} in Redis (standalone, or through Sentinel with a {@code redis-sentinel://} URL), on
 * Lettuce. Every key starts with the {@linkplain Builder#prefix prefix}; each operation is one round trip:
 *
 * <ul>
 *   <li>a counter is a string that a script adds to with {@code INCRBY} and keeps for its time to live with
 *       {@code PEXPIRE}, in one atomic step;
 *   <li>an open circuit is a key set with {@code PX} for the cooldown; {@code PTTL} says how long it stays
 *       open;
 *   <li>the slots of a member are a sorted set of lease ids scored by their expiry on the server's clock
 *       ({@code TIME}), so that no two instances' clocks need agree: a script drops the lapsed ones and adds a
 *       lease only while fewer than the limit remain;
 *   <li>a claim is {@code SET NX PX}.
 * </ul>
 *
 * <p>Calls never wait long on Redis: each command fails after the {@linkplain Builder#timeout timeout} (100 ms
 * by default), a command sent while the connection is down fails at once rather than queueing, and the first
 * connection is made on first use, within the connect timeout, so that an application starts while Redis is
 * away. Lettuce reconnects by itself, trying again at most a second apart. The client that uses the store
 * falls back to its own state meanwhile.
 *
 * <p>Thread-safe: one connection, shared by every thread. Close it to release the connection and its threads.
 */
public final class RedisSharedState implements SharedState {
    /**
     * Adds ARGV[1] to KEYS[1] and keeps it ARGV[2] ms; returns the total as text. Not INCRBY's own reply: a Lua
     * number is a double, which would round a total past 2^53 units (about nine thousand dollars).
     */
    private static final String ADD = "redis.call('INCRBY', KEYS[1], ARGV[1])\n"
            + "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
            + "return redis.call('GET', KEYS[1])\n";

    /**
     * Drops lapsed leases of KEYS[1], then, when fewer than ARGV[1] remain, adds lease ARGV[3] expiring ARGV[2]
     * ms from now (the server's now) and keeps the set at least that long; returns 1 when it added it.
     */
    private static final String ACQUIRE = "local t = redis.call('TIME')\n"
            + "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
            + "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
            + "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end\n"
            + "local ttl = tonumber(ARGV[2])\n"
            + "redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])\n"
            + "if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
            + "return 1\n";

    /** The leases of KEYS[1] that have not lapsed. */
    private static final String HELD = "local t = redis.call('TIME')\n"
            + "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
            + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')\n";

    private final RedisURI uri;
    private final String prefix;
    private final Duration timeout;
    private final Duration connectTimeout;
    private final String description;
    private final Object lock = new Object();
    private ClientResources resources;
    private RedisClient client;
    private volatile StatefulRedisConnection<String, String> connection;
    private volatile boolean closed;

    private RedisSharedState(Builder b) {
        this.uri = b.uri;
        this.prefix = b.prefix;
        this.timeout = b.timeout;
        this.connectTimeout = b.connectTimeout;
        this.description = describe(b.uri, b.prefix);
    }

    /**
     * A builder for the server at {@code url}: {@code redis://host:6379/0}, {@code rediss://} for TLS,
     * {@code redis://:password@host}, {@code redis-sentinel://host:26379#mymaster}.
     *
     * @throws IllegalArgumentException when the URL is not one
     */
    public static Builder builder(String url) {
        return new Builder(url);
    }

    /** The address and prefix, without a password: {@code redis://127.0.0.1:6379/0 (prefix app:)}. */
    private static String describe(RedisURI uri, String prefix) {
        String where;
        if (!uri.getSentinels().isEmpty()) {
            RedisURI s = uri.getSentinels().get(0);
            where = "redis-sentinel://" + s.getHost() + ":" + s.getPort() + "#" + uri.getSentinelMasterId();
        } else if (uri.getSocket() != null) {
            where = "redis-socket://" + uri.getSocket();
        } else {
            where = (uri.isSsl() ? "rediss://" : "redis://") + uri.getHost() + ":" + uri.getPort();
        }
        return where + "/" + uri.getDatabase() + " (prefix " + prefix + ")";
    }

    /** The prefix before every key. */
    public String prefix() {
        return prefix;
    }

    /** The connection's commands, connecting first when there is no connection yet. */
    private RedisCommands<String, String> redis() {
        StatefulRedisConnection<String, String> c = connection;
        if (c != null) {
            return c.sync();
        }
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException(description + " is closed");
            }
            if (connection == null) {
                if (client == null) {
                    resources = DefaultClientResources.builder()
                            .ioThreadPoolSize(2)
                            .computationThreadPoolSize(2)
                            // Back within a second of Redis returning, however long it was away.
                            .reconnectDelay(Delay.exponential(
                                    Duration.ofMillis(10), Duration.ofSeconds(1), 2, TimeUnit.MILLISECONDS))
                            .build();
                    client = RedisClient.create(resources, uri);
                    client.setOptions(ClientOptions.builder()
                            .autoReconnect(true)
                            .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                            .socketOptions(SocketOptions.builder()
                                    .connectTimeout(connectTimeout)
                                    .build())
                            .timeoutOptions(TimeoutOptions.enabled(timeout))
                            .build());
                }
                StatefulRedisConnection<String, String> opened = client.connect(StringCodec.UTF8);
                opened.setTimeout(timeout);
                connection = opened;
            }
            return connection.sync();
        }
    }

    private String key(String key) {
        return prefix + Objects.requireNonNull(key, "key");
    }

    private static long millis(Duration d) {
        return Math.max(1, Deadline.saturatedMillis(d));
    }

    /** Runs a script by its digest, sending its text only when the server does not have it yet. */
    private <T> T script(Script s, ScriptOutputType type, String key, String... args) {
        RedisCommands<String, String> r = redis();
        String[] keys = {key};
        try {
            return r.evalsha(s.sha1, type, keys, args);
        } catch (RedisNoScriptException e) {
            return r.eval(s.text, type, keys, args);
        }
    }

    @Override
    public long add(String key, long amount, Duration ttl) {
        String total =
                script(ADD_SCRIPT, ScriptOutputType.VALUE, key(key), Long.toString(amount), Long.toString(millis(ttl)));
        return Long.parseLong(total);
    }

    @Override
    public long get(String key) {
        String v = redis().get(key(key));
        return v == null ? 0 : Long.parseLong(v);
    }

    @Override
    public void openCircuit(String key, Duration cooldown) {
        redis().set(key(key), "open", SetArgs.Builder.px(millis(cooldown)));
    }

    @Override
    public void closeCircuit(String key) {
        redis().del(key(key));
    }

    @Override
    public Optional<Duration> circuitOpen(String key) {
        Long left = redis().pttl(key(key));
        // -2: no such key; -1: a key without expiry, which this store never writes.
        return left == null || left <= 0 ? Optional.empty() : Optional.of(Duration.ofMillis(left));
    }

    @Override
    public Optional<String> acquireSlot(String key, int limit, Duration lease) {
        String id = UUID.randomUUID().toString();
        Long added = script(
                ACQUIRE_SCRIPT,
                ScriptOutputType.INTEGER,
                key(key),
                Integer.toString(limit),
                Long.toString(millis(lease)),
                id);
        return added != null && added == 1 ? Optional.of(id) : Optional.empty();
    }

    @Override
    public void releaseSlot(String key, String lease) {
        redis().zrem(key(key), lease);
    }

    @Override
    public int slotsHeld(String key) {
        Long n = script(HELD_SCRIPT, ScriptOutputType.INTEGER, key(key));
        return n == null ? 0 : n.intValue();
    }

    @Override
    public boolean claim(String key, Duration ttl) {
        return "OK".equals(redis().set(key(key), "claimed", SetArgs.Builder.nx().px(millis(ttl))));
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            if (connection != null) {
                connection.close();
                connection = null;
            }
            if (client != null) {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(1));
            }
            if (resources != null) {
                resources.shutdown(0, 1, TimeUnit.SECONDS);
            }
        }
    }

    @Override
    public String toString() {
        return "RedisSharedState[" + description + "]";
    }

    /** A script and its SHA-1 digest, computed here rather than asked of the server. */
    private static final class Script {
        final String text;
        final String sha1;

        Script(String text) {
            this.text = text;
            try {
                this.sha1 = HexFormat.of()
                        .formatHex(MessageDigest.getInstance("SHA-1").digest(text.getBytes(StandardCharsets.UTF_8)));
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-1 is missing from this JVM", e);
            }
        }
    }

    private static final Script ADD_SCRIPT = new Script(ADD);
    private static final Script ACQUIRE_SCRIPT = new Script(ACQUIRE);
    private static final Script HELD_SCRIPT = new Script(HELD);

    /** Builds a {@link RedisSharedState}; each setter checks its value. Not thread-safe. */
    public static final class Builder {
        /** The shortest command timeout: below this a loaded server on the same host times out. */
        public static final Duration MIN_TIMEOUT = Duration.ofMillis(10);

        /** The longest command timeout: a call may wait this long on Redis, once, before it falls back. */
        public static final Duration MAX_TIMEOUT = Duration.ofSeconds(5);

        private final RedisURI uri;
        private String prefix = "hybrid-inference:";
        private Duration timeout = Duration.ofMillis(100);
        private Duration connectTimeout = Duration.ofMillis(200);

        private Builder(String url) {
            Objects.requireNonNull(url, "url");
            try {
                this.uri = RedisURI.create(url);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(
                        "expected a Redis URL such as redis://127.0.0.1:6379, got a value it cannot read ("
                                + e.getClass().getSimpleName() + ")");
            }
        }

        /**
         * What every key starts with, so that applications (and tests) sharing a server keep apart; {@code
         * hybrid-inference:} unless set. Printable characters without spaces, at most 200.
         */
        public Builder prefix(String prefix) {
            Objects.requireNonNull(prefix, "prefix");
            if (prefix.length() > 200 || !prefix.chars().allMatch(c -> c > 32 && c < 127)) {
                throw new IllegalArgumentException(
                        "prefix must be printable ASCII without spaces, at most 200 characters");
            }
            this.prefix = prefix;
            return this;
        }

        /** How long a command may take before it fails (and the client falls back); 100 ms unless set. */
        public Builder timeout(Duration timeout) {
            this.timeout = within("timeout", timeout);
            return this;
        }

        /** How long connecting may take; 200 ms unless set. */
        public Builder connectTimeout(Duration connectTimeout) {
            this.connectTimeout = within("connectTimeout", connectTimeout);
            return this;
        }

        private static Duration within(String name, Duration d) {
            Objects.requireNonNull(d, name);
            if (d.compareTo(MIN_TIMEOUT) < 0 || d.compareTo(MAX_TIMEOUT) > 0) {
                throw new IllegalArgumentException(name + " must be from 10 ms to 5 s, got " + d.toMillis() + " ms");
            }
            return d;
        }

        /** The store; it connects on first use. */
        public RedisSharedState build() {
            return new RedisSharedState(this);
        }
    }
}
