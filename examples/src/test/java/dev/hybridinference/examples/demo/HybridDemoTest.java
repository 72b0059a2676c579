package dev.hybridinference.examples.demo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.Receipt;
import dev.hybridinference.localgpu.LocalRuntime;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The hybrid demo's short run: it succeeds, every deployment takes part, its printed figures are the sums of
 * its receipts, and it writes a chart; on a machine without the native library the router skips the local
 * member with the reason and the run still succeeds.
 */
class HybridDemoTest {
    private static final String NO_NATIVE_LIBRARY = "unavailable: the local runtime is unavailable";

    @TempDir
    Path dir;

    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void theShortRunSucceedsAndItsSummaryIsTheSumOfItsReceipts() throws IOException {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        Path chart = dir.resolve("chart.png");
        HybridDemo.Result r;
        try (PrintStream out = new PrintStream(buffer, true, StandardCharsets.UTF_8)) {
            r = HybridDemo.run(List.of("--short", "--chart", chart.toString()), out);
        }
        String output = buffer.toString(StandardCharsets.UTF_8);
        System.out.print(output);

        assertThat(r.failures()).as(output).isEmpty();
        assertThat(r.exitCode()).as(output).isZero();
        List<Receipt> receipts = r.receipts();
        DemoSummary s = r.summary();

        // Every deployment answered; the local runtime when it is there, else it was skipped with the reason.
        List<String> providers = new ArrayList<>();
        s.providers().forEach(p -> providers.add(p.provider()));
        assertThat(providers).contains("vllm", "sagemaker", "cloudrun", "azure");
        if (LocalRuntime.isAvailable()) {
            assertThat(providers).contains("local");
            assertThat(output).contains("random weights");
        } else {
            assertThat(s.skipReasons().get("local"))
                    .anySatisfy(why -> assertThat(why).startsWith(NO_NATIVE_LIBRARY));
        }
        // The burst spilled over from the full server, and the long-context and tools requests skipped it.
        assertThat(s.spillovers()).isPositive();
        assertThat(s.skipReasons().get("vllm"))
                .anySatisfy(why -> assertThat(why).contains("exceeds its context"))
                .anySatisfy(why -> assertThat(why).isEqualTo("no tool calling"));
        assertThat(s.coldStarts()).isPositive();

        // The summary's figures are the sums over the receipts.
        assertThat(s.calls()).isEqualTo(receipts.size());
        assertThat(s.inputTokens())
                .isEqualTo(receipts.stream()
                        .mapToLong(x -> x.usage().inputTokens())
                        .sum());
        assertThat(s.outputTokens())
                .isEqualTo(receipts.stream()
                        .mapToLong(x -> x.usage().outputTokens())
                        .sum());
        assertThat(s.coldStarts()).isEqualTo((int)
                receipts.stream().filter(x -> x.coldStart().observed()).count());
        BigDecimal sum = receipts.stream().map(Receipt::cost).reduce(BigDecimal.ZERO, BigDecimal::add);
        assertThat(s.totalCost()).isEqualTo(sum);
        BigDecimal rows =
                s.providers().stream().map(DemoSummary.ProviderRow::cost).reduce(BigDecimal.ZERO, BigDecimal::add);
        assertThat(rows).isEqualTo(sum);
        assertThat(s.providers().stream()
                        .mapToInt(DemoSummary.ProviderRow::calls)
                        .sum())
                .isEqualTo(receipts.size());
        assertThat(s.spillovers()).isEqualTo((int)
                receipts.stream().filter(x -> x.routeFacts().spilledOver()).count());
        assertThat(s.fallbacks()).isEqualTo((int)
                receipts.stream().filter(x -> x.routeFacts().fellBack()).count());
        int skips =
                receipts.stream().mapToInt(x -> x.routeFacts().skipped().size()).sum();
        assertThat(s.skipped().values().stream().mapToInt(Integer::intValue).sum())
                .isEqualTo(skips);
        // And the printed total is the receipts' sum, as displayed.
        assertThat(output).contains("total").contains(DemoSummary.usd(sum));

        // The chart is a real PNG.
        assertThat(r.chart()).isEqualTo(chart);
        BufferedImage image = ImageIO.read(chart.toFile());
        assertThat(image).isNotNull();
        assertThat(image.getWidth()).isGreaterThan(0);
        assertThat(output).contains("Chart: " + chart.toAbsolutePath().normalize());
    }

    /**
     * The native library is loaded once per JVM, so a machine without it is played by a fresh JVM started with
     * {@code --no-local}, on this test's class path.
     */
    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void withoutTheNativeLibraryTheLocalMemberIsSkippedWithTheReasonAndTheRunSucceeds()
            throws IOException, InterruptedException {
        Path chart = dir.resolve("no-local.png");
        Path log = dir.resolve("no-local.txt");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(
                        java.toString(),
                        "-cp",
                        System.getProperty("java.class.path"),
                        HybridDemo.class.getName(),
                        "--short",
                        "--no-local",
                        "--chart",
                        chart.toString())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        if (!p.waitFor(150, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the demo did not finish:\n" + Files.readString(log));
        }
        String output = Files.readString(log);

        assertThat(p.exitValue()).as(output).isZero();
        assertThat(output)
                .contains("local      UNAVAILABLE, the router will skip it: the local runtime is unavailable")
                .containsPattern("skipped: .*local \\d+x \\(" + NO_NATIVE_LIBRARY)
                .contains("-Dhybridinference.native.disable");
        // Nothing was answered locally.
        assertThat(output).doesNotContainPattern("(?m)^local +\\d+ ");
        assertThat(ImageIO.read(chart.toFile())).isNotNull();
    }

    @Test
    void aBadOptionIsAUsageError() {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        try (PrintStream out = new PrintStream(buffer, true, StandardCharsets.UTF_8)) {
            assertThat(HybridDemo.run(List.of("--fast"), out).exitCode()).isEqualTo(2);
            assertThat(HybridDemo.run(List.of("--chart"), out).exitCode()).isEqualTo(2);
        }
        assertThat(buffer.toString(StandardCharsets.UTF_8))
                .contains("unknown option --fast")
                .contains("--chart needs a path");
    }
}
