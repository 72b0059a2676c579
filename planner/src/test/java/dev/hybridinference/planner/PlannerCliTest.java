package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line, run as a user would, on the example configuration the README uses. */
class PlannerCliTest {
    private static final Path EXAMPLES = Path.of("examples");

    @TempDir
    Path dir;

    private record Run(int status, String out, String err) {}

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = PlannerCli.run(
                args,
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static String[] example(String... more) {
        String[] base = {
            "--config", EXAMPLES.resolve("inference.yaml").toString(),
            "--deployments", EXAMPLES.resolve("deployments.yaml").toString()
        };
        String[] all = new String[base.length + more.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(more, 0, all, base.length, more.length);
        return all;
    }

    @Test
    void planPrintsEveryScenarioMarksTheCheapestAndDrawsTheChart() throws Exception {
        Path chart = dir.resolve("plan.png");
        Run r = run(example("--tokens-per-day", "2M", "--pattern", "bursty", "--chart", chart.toString()));
        assertThat(r.status()).as(r.err()).isZero();
        for (String s : Planner.SCENARIOS) {
            assertThat(r.out()).contains(s);
        }
        assertThat(r.out()).contains("* cheapest: all-serverless");
        assertThat(r.err()).contains("planning for bursty, 2M tokens/day");
        assertThat(ImageIO.read(chart.toFile())).isNotNull();
    }

    @Test
    void sweepFindsTheBreakEvenAndWritesJson() throws Exception {
        Path json = dir.resolve("sweep.json");
        Path svg = dir.resolve("sweep.svg");
        Run r = run(example(
                "--sweep",
                "1M..1B",
                "--points-per-decade",
                "1",
                "--mean-input",
                "4000",
                "--mean-output",
                "1000",
                "--scenarios",
                "all-serverless,all-server-peak,hybrid",
                "--json",
                json.toString(),
                "--chart",
                svg.toString(),
                "--quiet"));
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(r.err()).isEmpty();
        assertThat(r.out()).contains("all-serverless is cheapest below");
        JsonNode root = new ObjectMapper()
                .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
                .readTree(json.toFile());
        assertThat(root.get("points")).hasSize(4);
        assertThat(root.get("points").get(0).get("cheapest").asText()).isEqualTo("all-serverless");
        assertThat(root.get("breakEvens")).isNotEmpty();
        assertThat(Files.readString(svg)).contains("<svg");
    }

    @Test
    void jsonToStandardOutputIsTheWholeOutput() throws Exception {
        Run r = run(example("--tokens-per-day", "100k", "--json", "-", "--quiet", "--scenarios", "all-serverless"));
        assertThat(r.status()).as(r.err()).isZero();
        JsonNode root = new ObjectMapper().readTree(r.out());
        assertThat(root.get("cheapest").asText()).isEqualTo("all-serverless");
        assertThat(r.err()).contains("all-serverless");
    }

    @Test
    void aTraceIsReplayedAndScaled() throws Exception {
        Path trace = dir.resolve("trace.csv");
        Files.writeString(trace, """
                timestamp,input_tokens,output_tokens,tags
                2026-11-02T09:00:00Z,1200,300,tenant=a
                2026-11-02T09:00:05Z,800,200,
                2026-11-02T09:01:00Z,1000,250,tenant=b
                """);
        Run r = run(example("--trace", trace.toString(), "--scale-to", "10M", "--quiet"));
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(r.out()).contains("your-policy");
    }

    @Test
    void usageErrorsNameTheOptionAndExitWithTwo() {
        assertThat(run().out()).contains("Usage: planner");
        assertThat(run("--help").status()).isZero();
        Run missing = run("--tokens-per-day", "5M");
        assertThat(missing.status()).isEqualTo(2);
        assertThat(missing.err()).contains("--config is required");
        Run badVolume = run(example("--tokens-per-day", "lots"));
        assertThat(badVolume.status()).isEqualTo(2);
        assertThat(badVolume.err()).contains("--tokens-per-day");
        Run badPattern = run(example("--pattern", "spiky"));
        assertThat(badPattern.status()).isEqualTo(2);
        assertThat(badPattern.err()).contains("--pattern").contains("bursty");
        Run unknown = run(example("--colour", "red"));
        assertThat(unknown.status()).isEqualTo(2);
        assertThat(unknown.err()).contains("unknown option \"--colour\"");
        Run badSweep = run(example("--sweep", "1B..1M"));
        assertThat(badSweep.status()).isEqualTo(2);
        assertThat(badSweep.err()).contains("--sweep");
        Run mixed = run(example("--trace", "x.csv", "--pattern", "steady"));
        assertThat(mixed.status()).isEqualTo(2);
        Run noFile = run("--config", dir.resolve("absent.yaml").toString());
        assertThat(noFile.status()).isEqualTo(2);
        assertThat(noFile.err()).contains("--config: no such file");
    }

    @Test
    void aBadConfigurationNamesItsKey() throws Exception {
        Path config = dir.resolve("bad.yaml");
        Files.writeString(config, """
                providers:
                  vllm:
                    type: vllm
                    pricing: {type: per-instance-hour, perHour: -1}
                """);
        Run r = run("--config", config.toString());
        assertThat(r.status()).isEqualTo(2);
        assertThat(r.err()).contains("providers.vllm.pricing.perHour");
        Path deployments = dir.resolve("d.yaml");
        Files.writeString(deployments, "deployments:\n  nosuch: {concurrency: 4}\n");
        Run d = run("--config", EXAMPLES.resolve("inference.yaml").toString(), "--deployments", deployments.toString());
        assertThat(d.status()).isEqualTo(2);
        assertThat(d.err()).contains("deployments.nosuch").contains("vllm, azure, cloudrun");
    }

    @Test
    void volumesAreEvenOnALogScaleAndEndAtBothBounds() {
        assertThat(PlannerCli.volumes("10k..1B", 1))
                .containsExactly(10_000L, 100_000L, 1_000_000L, 10_000_000L, 100_000_000L, 1_000_000_000L);
        assertThat(PlannerCli.volumes("1M..10M", 2)).containsExactly(1_000_000L, 3_162_278L, 10_000_000L);
    }
}
