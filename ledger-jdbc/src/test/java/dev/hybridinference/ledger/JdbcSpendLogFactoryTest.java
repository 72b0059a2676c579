package dev.hybridinference.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.routing.HybridClient;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code ledger: {type: jdbc}} section: a spend log built from configuration, owned by its client. */
class JdbcSpendLogFactoryTest {
    @TempDir
    Path dir;

    private String url() {
        return "jdbc:h2:file:" + dir.resolve("spend");
    }

    private static InferenceClients.Loader loader() {
        return InferenceClients.loader()
                .env(Map.of())
                .providerFactory(ctx -> new PricedDouble(ctx.id(), ctx.ledger(), ctx.clock()));
    }

    private String config(String ledger) {
        return "providers:\n  only:\n    type: double\nledger:\n  type: jdbc\n" + ledger;
    }

    @Test
    void theLedgerSectionRecordsEveryCallAndClosesWithTheClient() throws Exception {
        Path spool = dir.resolve("spool");
        String yaml = config("  url: " + url() + "\n  tablePrefix: cfg_\n  spoolDirectory: " + spool
                + "\n  flushInterval: 5ms\n  batchSize: 10\n  queueCapacity: 100\n  closeTimeout: 10s\n"
                + "  reconnectInterval: 50ms\n");
        List<Receipt> receipts = new ArrayList<>();
        JdbcSpendLog log;
        try (InferenceClient client = loader().load(yaml)) {
            // One provider and no routing: the loader wraps it in a composite client for the listener.
            HybridClient hybrid = client.unwrap(HybridClient.class).orElseThrow();
            log = hybrid.listeners().stream()
                    .filter(JdbcSpendLog.class::isInstance)
                    .map(JdbcSpendLog.class::cast)
                    .findFirst()
                    .orElseThrow();
            for (int i = 0; i < 5; i++) {
                receipts.add(client.chat(ChatRequest.builder()
                                .user("question number " + i)
                                .options(RequestOptions.builder()
                                        .tag("tenant", i % 2 == 0 ? "acme" : "globex")
                                        .build())
                                .build())
                        .receipt());
            }
        }

        assertThat(log.status().closed()).isTrue();
        assertThat(log.status().spooled()).isZero();
        assertThat(log.status().received()).isEqualTo(5);
        TestDb t = new TestDb(url(), null, null, "cfg_");
        assertThat(t.ids()).isEqualTo(receipts.stream().map(Receipt::id).collect(Collectors.toSet()));
        BigDecimal sum = receipts.stream().map(Receipt::cost).reduce(BigDecimal.ZERO, BigDecimal::add);
        assertThat(sum.signum()).isPositive();
        assertThat(t.costSum()).isEqualByComparingTo(sum);
        assertThat(t.longValue("SELECT COUNT(*) FROM cfg_receipt_tags WHERE tag_key = 'tenant'"))
                .isEqualTo(5);
        // Closed with the client: its spool directory is free for another log.
        JdbcSpendLog.builder()
                .url(url())
                .tablePrefix("cfg_")
                .spoolDirectory(spool)
                .build()
                .close();
    }

    @Test
    void errorsNameTheKeyAndWhatWasExpected() {
        assertThatThrownBy(() -> loader().load(config("  url: " + url() + "\n  batchSize: 0\n")))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageContaining("ledger.batchSize")
                .hasMessageContaining("at least 1");
        assertThatThrownBy(() -> loader().load(config("  url: " + url() + "\n  flushInterval: soon\n")))
                .hasMessageContaining("ledger.flushInterval")
                .hasMessageContaining("duration");
        assertThatThrownBy(() -> loader().load(config("  url: " + url() + "\n  flushIntervall: 1s\n")))
                .hasMessageContaining("ledger.flushIntervall")
                .hasMessageContaining("did you mean 'flushInterval'");
        assertThatThrownBy(() -> loader().load(config("  url: jdbc:mysql://127.0.0.1/spend\n")))
                .hasMessageContaining("ledger.url")
                .hasMessageContaining("jdbc:postgresql");
        assertThatThrownBy(() -> loader().load(config("  url: " + url() + "\n  tablePrefix: 1-bad\n")))
                .hasMessageContaining("ledger.tablePrefix")
                .hasMessageContaining("letter");
        assertThatThrownBy(() -> loader().load(config("  url: " + url() + "\n  queueCapacity: many\n")))
                .hasMessageContaining("ledger.queueCapacity");
    }

    @Test
    void aSpoolDirectoryInUseIsNamed() {
        Path spool = dir.resolve("shared");
        try (JdbcSpendLog first =
                JdbcSpendLog.builder().url(url()).spoolDirectory(spool).build()) {
            assertThatThrownBy(() -> loader().load(config("  url: " + url() + "\n  spoolDirectory: " + spool + "\n")))
                    .isInstanceOf(ConfigurationException.class)
                    .hasMessageContaining("ledger.spoolDirectory")
                    .hasMessageContaining("in use by another spend log");
            assertThat(first.status().closed()).isFalse();
        }
    }

    @Test
    void thePasswordIsNeverInAMessage() {
        String password = "sp3nd-S3cret-value";
        // The driver cannot be found for this URL, and the prefix is wrong: neither message may quote it.
        assertThatThrownBy(() -> loader().load(config("  url: jdbc:oracle:thin:@db:1521/x?password=" + password
                        + "\n  user: spend\n  password: " + password + "\n")))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageContaining("ledger.url")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain(password));
        assertThatThrownBy(() -> loader().load(
                                config("  url: " + url() + "\n  password: " + password + "\n  tablePrefix: \"x y\"\n")))
                .hasMessageContaining("ledger.tablePrefix")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain(password));
        assertThatThrownBy(() -> loader().load(config("  url: " + url() + "\n  password: [" + password + "]\n")))
                .hasMessageContaining("ledger.password")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain(password));
    }
}
