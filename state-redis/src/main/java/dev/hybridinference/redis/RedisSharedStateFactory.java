package dev.hybridinference.redis;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.SharedState;
import dev.hybridinference.core.spi.SharedStateFactory;
import java.util.Set;

/**
 * The {@code redis} type of the configuration's {@code state:} section:
 *
 * <pre>{@code
 * state:
 *   type: redis
 *   url: ${REDIS_URL:-redis://127.0.0.1:6379}   # required; rediss:// for TLS, redis-sentinel:// too
 *   prefix: "myapp:"                           # before every key; hybrid-inference: by default
 *   timeout: 100ms                             # per command, 10ms to 5s
 *   connectTimeout: 200ms                      # per connection attempt, 10ms to 5s
 * }</pre>
 *
 * A password in the URL is never shown: the loader registers it as a secret, and the store describes itself
 * by host and port only. Nothing connects while the configuration loads.
 */
public final class RedisSharedStateFactory implements SharedStateFactory {
    private static final Set<String> KEYS = Set.of("type", "url", "prefix", "timeout", "connectTimeout");

    /** Used by {@link java.util.ServiceLoader}. */
    public RedisSharedStateFactory() {}

    @Override
    public String type() {
        return "redis";
    }

    @Override
    public SharedState create(Context context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        String url = c.string("url").orElseThrow(() -> c.missing("url", "a Redis URL such as redis://127.0.0.1:6379"));
        RedisSharedState.Builder b;
        try {
            b = RedisSharedState.builder(url);
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.pathOf("url"), e.getMessage());
        }
        c.string("prefix").ifPresent(p -> {
            try {
                b.prefix(p);
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(c.pathOf("prefix"), e.getMessage());
            }
        });
        c.duration("timeout", RedisSharedState.Builder.MIN_TIMEOUT, RedisSharedState.Builder.MAX_TIMEOUT)
                .ifPresent(b::timeout);
        c.duration("connectTimeout", RedisSharedState.Builder.MIN_TIMEOUT, RedisSharedState.Builder.MAX_TIMEOUT)
                .ifPresent(b::connectTimeout);
        return b.build();
    }
}
