package dev.hybridinference.ledger;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceListenerFactory;
import dev.hybridinference.core.spi.Secrets;
import dev.hybridinference.ledger.internal.SettingException;
import java.time.Duration;
import java.util.Set;

/**
 * Builds a {@link JdbcSpendLog} from configuration, type {@code jdbc}: the top-level {@code ledger} section
 * (or an entry of {@code listeners}).
 *
 * <pre>{@code
 * ledger:
 *   type: jdbc
 *   url: ${SPEND_DB_URL:-jdbc:h2:./hybrid-spend}
 *   user: spend
 *   password: ${SPEND_DB_PASSWORD}
 *   tablePrefix: spend_
 *   queueCapacity: 10000
 *   batchSize: 200
 *   flushInterval: 500ms
 *   spoolDirectory: /var/lib/myapp/spend-spool
 *   closeTimeout: 10s
 *   reconnectInterval: 5s
 * }</pre>
 *
 * <p>Every key but {@code type} is optional; the defaults are {@link JdbcSpendLog}'s. The client built from
 * the configuration closes the log when it closes. Errors name the key's path ({@code ledger.batchSize}); the
 * password never appears in them. Receipts are dated with the configuration's clock.
 */
public final class JdbcSpendLogFactory implements InferenceListenerFactory {
    private static final Set<String> KEYS = Set.of(
            "type",
            "url",
            "user",
            "password",
            "tablePrefix",
            "queueCapacity",
            "batchSize",
            "flushInterval",
            "spoolDirectory",
            "closeTimeout",
            "reconnectInterval");

    /** The factory, as {@link java.util.ServiceLoader} creates it. */
    public JdbcSpendLogFactory() {}

    /** {@code jdbc}. */
    @Override
    public String type() {
        return "jdbc";
    }

    @Override
    public InferenceListener create(Context context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        c.string("password").ifPresent(Secrets::register);
        JdbcSpendLog.Builder b = JdbcSpendLog.builder().clock(context.time().clock());
        try {
            if (c.has("url")) {
                b.url(c.requireString("url"));
            }
            c.string("user").ifPresent(b::user);
            c.string("password").ifPresent(b::password);
            if (c.has("tablePrefix")) {
                b.tablePrefix(c.requireString("tablePrefix"));
            }
            c.integer("queueCapacity", 1, 10_000_000).ifPresent(b::queueCapacity);
            c.integer("batchSize", 1, 10_000).ifPresent(b::batchSize);
            c.duration("flushInterval", Duration.ofMillis(1), Duration.ofHours(1))
                    .ifPresent(b::flushInterval);
            if (c.has("spoolDirectory")) {
                b.spoolDirectory(c.requireString("spoolDirectory"));
            }
            c.duration("closeTimeout", Duration.ZERO, Duration.ofHours(1)).ifPresent(b::closeTimeout);
            c.duration("reconnectInterval", Duration.ofMillis(1), Duration.ofHours(1))
                    .ifPresent(b::reconnectInterval);
            return b.build();
        } catch (SettingException e) {
            throw new ConfigurationException(c.pathOf(e.setting()), Secrets.redact(e.problem()));
        } catch (IllegalStateException e) {
            throw new ConfigurationException(c.pathOf("tablePrefix"), Secrets.redact(e.getMessage()));
        }
    }
}
