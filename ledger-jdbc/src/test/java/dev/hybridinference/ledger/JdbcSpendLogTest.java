package dev.hybridinference.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RouteFacts;
import dev.hybridinference.ledger.internal.SettingException;
import dev.hybridinference.ledger.internal.SpendEntry;
import dev.hybridinference.ledger.internal.Spool;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The spend log's settings, its spool files and what comes after close, on the embedded H2 default. */
class JdbcSpendLogTest {
    @TempDir
    Path dir;

    private String url() {
        return "jdbc:h2:file:" + dir.resolve("spend");
    }

    private JdbcSpendLog.Builder log(Path spool) {
        return JdbcSpendLog.builder()
                .url(url())
                .spoolDirectory(spool)
                .flushInterval(Duration.ofMillis(5))
                .reconnectInterval(Duration.ofMillis(20));
    }

    @Test
    void settingsAreCheckedAsTheyAreSetAndNamed() {
        assertThatThrownBy(() -> JdbcSpendLog.builder().url(" "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("url: ");
        assertThatThrownBy(() -> JdbcSpendLog.builder().queueCapacity(0)).hasMessageStartingWith("queueCapacity: ");
        assertThatThrownBy(() -> JdbcSpendLog.builder().batchSize(10_001)).hasMessageStartingWith("batchSize: ");
        assertThatThrownBy(() -> JdbcSpendLog.builder().flushInterval(Duration.ZERO))
                .hasMessageStartingWith("flushInterval: ");
        assertThatThrownBy(() -> JdbcSpendLog.builder().reconnectInterval(Duration.ofDays(2)))
                .hasMessageStartingWith("reconnectInterval: ");
        assertThatThrownBy(() -> JdbcSpendLog.builder().closeTimeout(Duration.ofSeconds(-1)))
                .hasMessageStartingWith("closeTimeout: ");
        assertThatThrownBy(() -> JdbcSpendLog.builder().tablePrefix("spend; DROP TABLE x"))
                .hasMessageStartingWith("tablePrefix: ");
        assertThatThrownBy(() -> JdbcSpendLog.builder().tablePrefix("a".repeat(33)))
                .hasMessageStartingWith("tablePrefix: ");
        assertThatThrownBy(() -> JdbcSpendLog.builder()
                        .url("jdbc:sqlite:spend.db")
                        .spoolDirectory(dir.resolve("never"))
                        .build())
                .isInstanceOf(SettingException.class)
                .hasMessageStartingWith("url: ")
                .hasMessageContaining("jdbc:h2:");
        assertThat(dir.resolve("never")).doesNotExist();
    }

    @Test
    void aSpoolDirectoryServesOneLogAtATime() {
        Path spool = dir.resolve("spool");
        try (JdbcSpendLog first = log(spool).build()) {
            assertThatThrownBy(() -> log(spool).tablePrefix("other_").build())
                    .isInstanceOf(SettingException.class)
                    .hasMessageStartingWith("spoolDirectory: ")
                    .hasMessageContaining("in use by another spend log");
            assertThat(first.status().closed()).isFalse();
        }
        log(spool).build().close();
    }

    @Test
    void aTornLineLeftInTheSpoolIsRejectedAndTheRestWritten() throws Exception {
        Path spool = dir.resolve("spool");
        Files.createDirectories(spool);
        Receipt a = SpendLogContract.receipt(1, SpendLogContract.BASE);
        Receipt b = SpendLogContract.receipt(2, SpendLogContract.BASE);
        String torn = SpendEntry.of(b, null, Instant.EPOCH).toJson().substring(0, 40);
        Files.writeString(
                spool.resolve("replay-7.jsonl"),
                SpendEntry.of(a, null, Instant.EPOCH).toJson() + "\n" + torn,
                StandardCharsets.UTF_8);
        Files.writeString(
                spool.resolve(Spool.CURRENT),
                SpendEntry.of(b, null, Instant.EPOCH).toJson() + "\n",
                StandardCharsets.UTF_8);

        JdbcSpendLog log = log(spool).build();
        assertThat(log.status().spooled()).isEqualTo(3);
        JdbcSpendLog.Status status = log.close(Duration.ofSeconds(10));

        assertThat(status.spooled()).isZero();
        assertThat(status.rejected()).isEqualTo(1);
        assertThat(new TestDb(url(), null, null, JdbcSpendLog.DEFAULT_TABLE_PREFIX).ids())
                .containsExactlyInAnyOrder(a.id(), b.id());
        assertThat(Files.readString(spool.resolve(Spool.REJECTED), StandardCharsets.UTF_8))
                .contains("not a receipt")
                .contains(torn.replace("\"", "\\\""));
        assertThat(SpendLogContract.spoolFiles(spool)).isEmpty();
    }

    @Test
    void aReceiptThatComesAfterCloseIsSpooledForTheNextLog() throws Exception {
        Path spool = dir.resolve("spool");
        JdbcSpendLog log = log(spool).build();
        log.close();
        Receipt late = SpendLogContract.receipt(3, SpendLogContract.BASE);
        log.append(late);
        assertThat(log.status().spooled()).isEqualTo(1);
        assertThat(log.status().closed()).isTrue();

        log(spool).build().close();
        assertThat(new TestDb(url(), null, null, JdbcSpendLog.DEFAULT_TABLE_PREFIX).ids())
                .containsExactly(late.id());
    }

    @Test
    void aSpoolLineKeepsEveryFactExactly() {
        Receipt r = SpendLogContract.receipt(4, Instant.parse("2026-11-28T10:00:00.123456789Z")).toBuilder()
                .routeFacts(RouteFacts.builder().tier("small").fellBack(true).build())
                .timeToFirstToken(Duration.ofNanos(1_234_567))
                .coldStart(ColdStart.predicted(Duration.ofSeconds(3)))
                .sessionId("s-1")
                .attributes(Map.of("region", "eu-west-1", "note", "line\nbreak \"quoted\""))
                .tags(Map.of("tenant", "a\u00e9b", "feature", "x=y;z"))
                .build();
        SpendEntry entry = SpendEntry.of(r, null, Instant.parse("2026-11-28T10:00:01Z"));
        String line = entry.toJson();

        assertThat(line).doesNotContain("\n");
        SpendEntry back = SpendEntry.fromJson(line);
        assertThat(back).isEqualTo(entry);
        assertThat(back.cost()).isEqualTo(r.cost());
        assertThat(back.tier()).isEqualTo("small");
        assertThat(back.timeToFirstTokenUs()).isEqualTo(1_234L);
        assertThat(back.coldStartUs()).isEqualTo(3_000_000L);
        assertThat(Optional.ofNullable(back.errorType())).isEmpty();
        assertThatThrownBy(() -> SpendEntry.fromJson("{\"v\":2}"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("format version");
    }
}
