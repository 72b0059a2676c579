package dev.hybridinference.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.Usage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The spend report on the command line, over an embedded H2 spend log. */
class SpendReportTest {
    @TempDir
    Path dir;

    private String url;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private static Receipt receipt(String provider, String model, String cost, long in, long out, String at) {
        return Receipt.builder()
                .providerId(provider)
                .deploymentKind(DeploymentKind.SERVERLESS)
                .model(model)
                .startedAt(Instant.parse(at))
                .usage(new Usage(in, out, 0))
                .cost(new BigDecimal(cost))
                .build();
    }

    @BeforeEach
    void aDayOfSpend() {
        url = "jdbc:h2:file:" + dir.resolve("spend");
        try (JdbcSpendLog log = JdbcSpendLog.builder()
                .url(url)
                .spoolDirectory(dir.resolve("spool"))
                .flushInterval(Duration.ofMillis(5))
                .build()) {
            log.append(receipt("vllm-main", "llama-8b", "0.000465", 1000, 200, "2026-11-28T10:00:00Z").toBuilder()
                    .tags(Map.of("tenant", "acme"))
                    .build());
            log.append(
                    receipt("vllm-main", "llama-70b", "0.0000000000015", 500, 100, "2026-11-28T10:30:00Z").toBuilder()
                            .tags(Map.of("tenant", "globex"))
                            .build());
            log.append(
                    receipt("azure-burst", "llama-70b", "0.0021", 2000, 400, "2026-11-28T11:00:00Z").toBuilder()
                            .tags(Map.of("tenant", "acme"))
                            .build(),
                    new RateLimitedException("busy", "azure-burst", null, 429, null, null));
            log.append(receipt("azure-burst", "llama-8b", "0.0001", 10, 5, "2026-11-28T12:00:00Z"));
            log.append(receipt("sagemaker", "llama-8b", "5", 10, 5, "2026-11-29T00:00:00Z"));
        }
    }

    private int run(String... args) {
        return SpendReport.run(
                args,
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8),
                Map.of("SPEND_PASSWORD", ""));
    }

    private List<String> lines() {
        return out.toString(StandardCharsets.UTF_8).lines().toList();
    }

    private static List<String> cells(String line) {
        return Arrays.asList(line.strip().split("\\s{2,}"));
    }

    @Test
    void printsTotalsByProviderInTheWindowAsATable() {
        assertThat(run("--url", url, "--from", "2026-11-28", "--to", "2026-11-29T00:00:00Z", "--by", "provider"))
                .isZero();

        List<String> lines = lines();
        assertThat(lines.get(0)).isEqualTo("Spend by provider, from 2026-11-28T00:00:00Z until 2026-11-29T00:00:00Z");
        assertThat(lines.get(1)).isEmpty();
        List<String> table = lines.subList(2, lines.size());
        assertThat(table).hasSize(4);
        assertThat(cells(table.get(0)))
                .containsExactly("provider", "calls", "failed", "input_tokens", "output_tokens", "cost_usd");
        // Most expensive first; amounts exact, every digit.
        assertThat(cells(table.get(1))).containsExactly("azure-burst", "2", "1", "2010", "405", "0.0022");
        assertThat(cells(table.get(2))).containsExactly("vllm-main", "2", "0", "1500", "300", "0.0004650000015");
        assertThat(cells(table.get(3))).containsExactly("TOTAL", "4", "1", "3510", "705", "0.0026650000015");
        // Numbers are right-aligned: every row ends in the same column.
        assertThat(table).extracting(String::length).containsOnly(table.get(0).length());
        assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    }

    @Test
    void printsTotalsByModelAndByTagWithTheUntaggedApart() {
        assertThat(run("--url", url, "--by", "model")).isZero();
        List<String> byModel = lines();
        assertThat(byModel.get(0)).isEqualTo("Spend by model, all time");
        assertThat(cells(byModel.get(3))).containsExactly("llama-8b", "3", "0", "1020", "210", "5.000565");
        assertThat(cells(byModel.get(4))).containsExactly("llama-70b", "2", "1", "2500", "500", "0.0021000000015");

        out.reset();
        assertThat(run("--url=" + url, "--to", "2026-11-29", "--by", "tag:tenant"))
                .isZero();
        List<String> byTag = lines();
        assertThat(byTag.get(0)).isEqualTo("Spend by tag tenant, until 2026-11-29T00:00:00Z");
        assertThat(cells(byTag.get(2)).get(0)).isEqualTo("tag tenant");
        assertThat(cells(byTag.get(3))).containsExactly("acme", "2", "1", "3000", "600", "0.002565");
        assertThat(cells(byTag.get(4))).containsExactly("globex", "1", "0", "500", "100", "0.0000000000015");
        assertThat(cells(byTag.get(5))).containsExactly("(untagged)", "1", "0", "10", "5", "0.0001");
        assertThat(cells(byTag.get(6))).containsExactly("TOTAL", "4", "1", "3510", "705", "0.0026650000015");
    }

    @Test
    void writesTheWindowAsATraceForThePlanner() throws Exception {
        Path trace = dir.resolve("trace.csv");
        assertThat(run(
                        "--url",
                        url,
                        "--from",
                        "2026-11-28T10:15:00Z",
                        "--to",
                        "2026-11-29",
                        "--trace",
                        trace.toString()))
                .isZero();

        assertThat(Files.readString(trace, StandardCharsets.UTF_8))
                .isEqualTo("timestamp,input_tokens,output_tokens,tags\n"
                        + "2026-11-28T10:30:00Z,500,100,tenant=globex\n"
                        + "2026-11-28T11:00:00Z,2000,400,tenant=acme\n"
                        + "2026-11-28T12:00:00Z,10,5,\n");
        assertThat(lines()).last().isEqualTo("trace: 3 requests written to " + trace);
    }

    @Test
    void badOptionsSayWhichAndExitWith2() {
        assertThat(run("--by", "provider")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8))
                .contains("--url is required")
                .contains("usage:");

        err.reset();
        assertThat(run("--url", url, "--by", "colour")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("--by expects provider, model or tag:KEY");

        err.reset();
        assertThat(run("--url", url, "--from", "yesterday")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("--from expects an ISO-8601 instant");

        err.reset();
        assertThat(run("--url", url, "--from", "2026-11-29", "--to", "2026-11-28"))
                .isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("--to (2026-11-28T00:00:00Z) is before --from");

        err.reset();
        assertThat(run("--url", url, "--colour", "blue")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("unknown option --colour");

        err.reset();
        assertThat(run("--url", url, "--password-env", "NOT_SET")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("NOT_SET, which is not set");
        assertThat(out.toString(StandardCharsets.UTF_8)).isEmpty();
    }

    @Test
    void aDatabaseFailureExitsWith1() {
        assertThat(run("--url", url, "--table-prefix", "absent_")).isEqualTo(1);
        assertThat(err.toString(StandardCharsets.UTF_8))
                .contains("the database failed")
                .contains("ABSENT_RECEIPTS");
    }
}
