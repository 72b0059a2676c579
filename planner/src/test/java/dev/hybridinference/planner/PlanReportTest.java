package dev.hybridinference.planner;

import static dev.hybridinference.planner.PlanFixtures.HYBRID;
import static dev.hybridinference.planner.PlanFixtures.SERVER;
import static dev.hybridinference.planner.PlanFixtures.SERVERLESS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class PlanReportTest {
    private static final ObjectMapper EXACT = JsonMapper.builder()
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .build();

    @Test
    void tableHasARowPerScenarioWithTheCheapestMarked() {
        String table = PlanReport.table(PlanFixtures.results());

        assertThat(row(table, SERVERLESS)).doesNotContain("*").contains("$3.20", "25 (2.5%)");
        assertThat(row(table, HYBRID)).startsWith(HYBRID + " *").contains("$2.45", "$0.80", "62.5%");
        assertThat(row(table, SERVER)).doesNotContain("*").contains("$17.40", "$8.70", "20.0%");
        assertThat(table)
                .contains("* cheapest: hybrid at $2.45/day, $0.75/day (23%) less than all-serverless at $3.20/day");
    }

    @Test
    void tableShowsADashWhereUtilisationDoesNotApply() {
        String table = PlanReport.table(PlanFixtures.results());

        assertThat(row(table, SERVERLESS).strip()).endsWith(" -");
        assertThat(row(table, HYBRID)).doesNotContain(" - ");
    }

    @Test
    void tableShowsLatenciesAndFailures() {
        String row = row(PlanReport.table(PlanFixtures.results()), HYBRID);

        assertThat(row).contains("120 ms", "850 ms", "2.40 s");
        assertThat(row.split("\\s+")).contains("2");
    }

    @Test
    void tableColumnsAreAligned() {
        String table = PlanReport.table(PlanFixtures.results());
        List<String> lines = table.lines().toList();
        String header = lines.get(0);
        int costEnd = header.indexOf("cost/day") + "cost/day".length();
        int failedEnd = header.indexOf("failed") + "failed".length();

        for (String line : lines.subList(2, 5)) {
            assertThat(line.charAt(costEnd - 1)).as(line).isNotEqualTo(' ');
            assertThat(line.charAt(costEnd)).as(line).isEqualTo(' ');
            assertThat(line.charAt(failedEnd - 1)).as(line).isNotEqualTo(' ');
            assertThat(line.charAt(failedEnd)).as(line).isEqualTo(' ');
        }
        assertThat(lines.get(1)).matches("-+").hasSize(header.length());
    }

    @Test
    void smallAmountsKeepTwoSignificantDigits() {
        ScenarioResult tiny = PlanFixtures.day("tiny", "0.004213", "0", Double.NaN);

        assertThat(row(PlanReport.table(List.of(tiny)), "tiny")).contains("$0.0042");
        assertThat(PlanReport.table(List.of(tiny))).contains("* cheapest: tiny at $0.0042/day (the only scenario)");
    }

    @Test
    void aTieIsSaid() {
        String table = PlanReport.table(
                List.of(PlanFixtures.day("a", "5", "0", 0.1), PlanFixtures.day("b", "5.00", "0", 0.1)));

        assertThat(row(table, "a")).startsWith("a *");
        assertThat(table).contains("tied with b");
    }

    @Test
    void sweepTableHasARowPerVolumeWithTheCheapestMarked() {
        String table = PlanReport.sweepTable(PlanFixtures.sweep());
        List<String> lines = table.lines().toList();

        assertThat(lines.get(0)).startsWith("tokens/day").contains(SERVERLESS, HYBRID, SERVER);
        assertThat(lines.subList(2, 8))
                .extracting(line -> line.split("\\s+")[0])
                .containsExactly("10k", "100k", "1M", "10M", "100M", "1B");
        assertThat(lines.get(2)).contains("$0.005 *", "$0.40  ", "$17.40");
        assertThat(lines.get(5)).contains("$5.00  ", "$2.40 *", "$17.40");
        assertThat(lines.get(7)).contains("$500.00  ", "$200.40  ", "$17.40 *");
    }

    @Test
    void sweepTableNamesTheBreakEvens() {
        String table = PlanReport.sweepTable(PlanFixtures.sweep());

        assertThat(table)
                .contains("all-serverless is cheapest below \u2248 1.3M tokens/day; hybrid from there to \u2248 85M;"
                        + " all-server above.");
    }

    @Test
    void sweepTableWithoutBreakEvenSaysWhichWinsThroughout() {
        Sweep sweep = PlanFixtures.sweep();
        Sweep low = new Sweep(sweep.scenarios(), sweep.points().subList(0, 2), List.of());

        assertThat(PlanReport.sweepTable(low))
                .contains("No break-even: all-serverless is cheapest across the sweep (10k to 100k tokens/day).");
    }

    @Test
    void emptyInputIsRefused() {
        assertThatThrownBy(() -> PlanReport.table(List.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no scenario results");
        assertThatThrownBy(() -> PlanReport.sweepTable(new Sweep(List.of(HYBRID), List.of(), List.of())))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no points");
        assertThatThrownBy(() -> PlanReport.json(List.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no scenario results");
    }

    @Test
    void jsonKeepsAmountsExactAndPlain() throws Exception {
        ScenarioResult precise =
                PlanFixtures.day("precise", "0.000000123456789012345678", "0.00000000000000000001", 0.5);

        String json = PlanReport.json(List.of(precise));
        JsonNode scenario = EXACT.readTree(json).get("scenarios").get(0);

        assertThat(json).doesNotContainIgnoringCase("e-").doesNotContain("E+");
        assertThat(scenario.get("cost").decimalValue()).isEqualTo(new BigDecimal("0.000000123456789012345678"));
        assertThat(scenario.get("idleCost").decimalValue()).isEqualTo(new BigDecimal("1E-20"));
        assertThat(scenario.get("timeline").get(0).get("cost").decimalValue())
                .isEqualByComparingTo(new BigDecimal("0.000000123456789012345678").divide(BigDecimal.valueOf(4)));
    }

    @Test
    void jsonHasTheRecordedAndDerivedFigures() throws Exception {
        JsonNode root = EXACT.readTree(PlanReport.json(PlanFixtures.results()));
        JsonNode hybrid = root.get("scenarios").get(1);

        assertThat(root.get("cheapest").asText()).isEqualTo(HYBRID);
        assertThat(hybrid.get("name").asText()).isEqualTo(HYBRID);
        assertThat(hybrid.get("spanMillis").longValue())
                .isEqualTo(Duration.ofDays(1).toMillis());
        assertThat(hybrid.get("requests").longValue()).isEqualTo(1_000);
        assertThat(hybrid.get("failed").longValue()).isEqualTo(2);
        assertThat(hybrid.get("tokens").longValue()).isEqualTo(2_000_000);
        assertThat(hybrid.get("costPerDay").decimalValue()).isEqualByComparingTo("2.45");
        assertThat(hybrid.get("idleCostPerDay").decimalValue()).isEqualByComparingTo("0.80");
        assertThat(hybrid.get("costPerMillionTokens").decimalValue()).isEqualByComparingTo("1.225");
        assertThat(hybrid.get("coldStarts").longValue()).isEqualTo(25);
        assertThat(hybrid.get("coldStartShare").decimalValue()).isEqualByComparingTo("0.025");
        assertThat(hybrid.get("p50Millis").longValue()).isEqualTo(120);
        assertThat(hybrid.get("p95Millis").longValue()).isEqualTo(850);
        assertThat(hybrid.get("p99Millis").longValue()).isEqualTo(2_400);
        assertThat(hybrid.get("serverUtilization").decimalValue()).isEqualByComparingTo("0.625");

        JsonNode timeline = hybrid.get("timeline");
        assertThat(timeline).hasSize(4);
        assertThat(timeline.get(1).get("offsetMillis").longValue())
                .isEqualTo(Duration.ofHours(6).toMillis());
        assertThat(timeline.get(1).get("lengthMillis").longValue())
                .isEqualTo(Duration.ofHours(6).toMillis());
        assertThat(timeline.get(1).get("requests").longValue()).isEqualTo(350);
        assertThat(timeline.get(1).get("p95Millis").longValue()).isEqualTo(900);
    }

    @Test
    void jsonWritesNaNUtilisationAsNull() throws Exception {
        JsonNode serverless = EXACT.readTree(PlanReport.json(PlanFixtures.results()))
                .get("scenarios")
                .get(0);

        assertThat(serverless.has("serverUtilization")).isTrue();
        assertThat(serverless.get("serverUtilization").isNull()).isTrue();
    }

    @Test
    void jsonWritesFractionsOfAMillisecond() throws Exception {
        ScenarioResult r = PlanFixtures.day(HYBRID, "1", "0", 0.5);
        ScenarioResult fine = PlanFixtures.altered(r, Duration.ofNanos(1_500_250), r.timeline(), List.of());

        JsonNode node =
                EXACT.readTree(PlanReport.json(List.of(fine))).get("scenarios").get(0);

        assertThat(node.get("p50Millis").decimalValue()).isEqualByComparingTo("1.50025");
    }

    @Test
    void sweepJsonHasPointsByScenarioAndTheBreakEvens() throws Exception {
        JsonNode root = EXACT.readTree(PlanReport.json(PlanFixtures.sweep()));

        assertThat(root.get("scenarios")).extracting(JsonNode::asText).containsExactly(SERVERLESS, HYBRID, SERVER);
        JsonNode points = root.get("points");
        assertThat(points).hasSize(6);
        JsonNode tenMillion = points.get(3);
        assertThat(tenMillion.get("tokensPerDay").longValue()).isEqualTo(10_000_000L);
        assertThat(tenMillion.get("cheapest").asText()).isEqualTo(HYBRID);
        assertThat(tenMillion.get("results").fieldNames()).toIterable().containsExactly(SERVERLESS, HYBRID, SERVER);
        assertThat(tenMillion.get("results").get(HYBRID).get("costPerDay").decimalValue())
                .isEqualByComparingTo("2.4");
        assertThat(tenMillion
                        .get("results")
                        .get(SERVERLESS)
                        .get("serverUtilization")
                        .isNull())
                .isTrue();
        assertThat(tenMillion.get("results").get(SERVER).get("timeline")).hasSize(4);

        JsonNode breakEvens = root.get("breakEvens");
        assertThat(breakEvens).hasSize(2);
        assertThat(breakEvens.get(1).get("tokensPerDay").decimalValue()).isEqualByComparingTo("85000000");
        assertThat(breakEvens.get(1).get("below").asText()).isEqualTo(HYBRID);
        assertThat(breakEvens.get(1).get("above").asText()).isEqualTo(SERVER);
    }

    @Test
    void aScenarioThatFailsRequestsIsMarkedAndNeverTheCheapest() throws Exception {
        ScenarioResult cheapButFailing = PlanFixtures.altered(
                PlanFixtures.day(SERVER, "1.00", "0", 0.9),
                Duration.ofSeconds(1),
                PlanFixtures.day(SERVER, "1.00", "0", 0.9).timeline(),
                List.of("12 of 1000 requests failed (throttled, refused or timed out)"));
        ScenarioResult dear = PlanFixtures.day(SERVERLESS, "3.20", "0", Double.NaN);
        String table = PlanReport.table(List.of(cheapButFailing, dear));
        assertThat(table).contains("* cheapest: all-serverless at $3.20/day (the only one that serves the traffic)");
        assertThat(table).contains("! all-server: 12 of 1000 requests failed");
        JsonNode root = new ObjectMapper().readTree(PlanReport.json(List.of(cheapButFailing, dear)));
        assertThat(root.get("cheapest").asText()).isEqualTo(SERVERLESS);
        assertThat(root.get("scenarios").get(0).get("viable").asBoolean()).isFalse();
        assertThat(root.get("scenarios").get(0).get("shortfalls").get(0).asText())
                .startsWith("12 of 1000");
        assertThat(PlanReport.json(List.of(cheapButFailing))).contains("\"cheapest\" : null");
    }

    /** The table line for {@code scenario}. */
    private static String row(String table, String scenario) {
        return Arrays.stream(table.split("\n"))
                .filter(line -> line.equals(scenario) || line.startsWith(scenario + " "))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no row for " + scenario + " in\n" + table));
    }
}
