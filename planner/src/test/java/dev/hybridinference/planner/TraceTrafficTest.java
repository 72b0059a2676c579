package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;
import static org.assertj.core.groups.Tuple.tuple;

import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.Usage;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TraceTrafficTest {
    private static final long SECOND = 1_000_000_000L;

    private static TraceTraffic read(String csv) throws IOException {
        return TraceTraffic.readCsv(new StringReader(csv), "trace.csv");
    }

    private static List<TrafficRequest> list(Traffic traffic) {
        List<TrafficRequest> out = new ArrayList<>();
        traffic.forEach(out::add);
        return out;
    }

    private static void assertRefused(String csv, String message) {
        assertThatThrownBy(() -> read(csv))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage(message);
    }

    /** A trace of {@code n} requests over a day, 100 in / 20 out each, at seeded random times. */
    private static TraceTraffic dayOfRequests(int n) throws IOException {
        SplittableRandom random = new SplittableRandom(9);
        StringBuilder csv = new StringBuilder("timestamp,input_tokens,output_tokens\n");
        long start = 1_795_860_000_000L;
        csv.append(start).append(",100,20\n");
        for (int i = 1; i < n; i++) {
            csv.append(start + random.nextLong(86_399_000)).append(",100,20\n");
        }
        return read(csv.toString());
    }

    @Test
    void readsIsoAndEpochTimestampsWithColumnsInAnyOrder() throws IOException {
        TraceTraffic t = read("output_tokens,model,timestamp,input_tokens,tags\n"
                + "20,m1,2026-11-28T10:00:00Z,100,team=search;tier=free\n"
                + "30,m2,2026-11-28T10:00:01.5Z,200,\n"
                + "40,m3," + Instant.parse("2026-11-28T10:00:03Z").toEpochMilli() + ",300,team=ads\n"
                + "50,m4,2026-11-28T11:00:04+01:00,400\n");

        assertThat(list(t))
                .containsExactly(
                        new TrafficRequest(0, 100, 20, Map.of("team", "search", "tier", "free")),
                        new TrafficRequest(1_500_000_000L, 200, 30),
                        new TrafficRequest(3 * SECOND, 300, 40, Map.of("team", "ads")),
                        new TrafficRequest(4 * SECOND, 400, 50));
        assertThat(t.start()).isEqualTo(Instant.parse("2026-11-28T10:00:00Z"));
        assertThat(t.span()).isEqualTo(Duration.ofSeconds(5));
        assertThat(t.recordedRequests()).isEqualTo(4);
    }

    @Test
    void headerNamesIgnoreCaseSpacesAndAByteOrderMark() throws IOException {
        TraceTraffic t = read("\uFEFF Timestamp ,INPUT_TOKENS, Output_Tokens\r\n1000,5,6\r\n\r\n2000,7,8\r\n");

        assertThat(list(t)).containsExactly(new TrafficRequest(0, 5, 6), new TrafficRequest(SECOND, 7, 8));
    }

    @Test
    void unsortedRowsAreSortedByTimeKeepingTheOrderOfEqualTimes() throws IOException {
        TraceTraffic t = read("timestamp,input_tokens,output_tokens\n"
                + "5000,1,1\n"
                + "1000,2,1\n"
                + "3000,3,1\n"
                + "1000,4,1\n"
                + "3000,5,1\n"
                + "1000,6,1\n");

        assertThat(list(t))
                .extracting(TrafficRequest::offsetNanos, TrafficRequest::inputTokens)
                .containsExactly(
                        tuple(0L, 2),
                        tuple(0L, 4),
                        tuple(0L, 6),
                        tuple(2 * SECOND, 3),
                        tuple(2 * SECOND, 5),
                        tuple(4 * SECOND, 1));
    }

    @Test
    void aLargeShuffledTraceComesOutSorted() throws IOException {
        TraceTraffic t = dayOfRequests(20_000);

        long previous = -1;
        int count = 0;
        for (TrafficRequest r : t) {
            assertThat(r.offsetNanos())
                    .isGreaterThanOrEqualTo(previous)
                    .isLessThan(t.span().toNanos());
            previous = r.offsetNanos();
            count++;
        }
        assertThat(count).isEqualTo(20_000);
    }

    @Test
    void quotedCellsMayHoldCommasQuotesAndLineBreaks() throws IOException {
        TraceTraffic t = read("timestamp,input_tokens,output_tokens,tags,note\n"
                + "1000,1,1,\"a=x,y\",\"said \"\"hi\"\"\nand left\"\n"
                + "2000,2,2,b=1,\n");

        assertThat(list(t))
                .containsExactly(
                        new TrafficRequest(0, 1, 1, Map.of("a", "x,y")),
                        new TrafficRequest(SECOND, 2, 2, Map.of("b", "1")));
    }

    @Test
    void aBadNumberIsNamedByLineAndColumn() {
        assertRefused(
                "timestamp,input_tokens,output_tokens\n1000,1,1\n\n2000,5,abc\n",
                "trace.csv line 4, column output_tokens: expected a whole number of at least 1, got \"abc\"");
        assertRefused(
                "input_tokens,timestamp,output_tokens\n0,1000,1\n",
                "trace.csv line 2, column input_tokens: expected a whole number of at least 1, got \"0\"");
        assertRefused(
                "timestamp,input_tokens,output_tokens\n1000,1,-4\n",
                "trace.csv line 2, column output_tokens: expected a whole number of at least 1, got \"-4\"");
        assertRefused(
                "timestamp,input_tokens,output_tokens\n1000,3000000000,1\n",
                "trace.csv line 2, column input_tokens: expected a whole number of at least 1 and at most 2147483647,"
                        + " got \"3000000000\"");
        assertRefused(
                "timestamp,input_tokens,output_tokens\n1000,1\n",
                "trace.csv line 2, column output_tokens: expected a whole number of at least 1, got nothing");
    }

    @Test
    void aBadTimestampIsNamedByLineAndColumn() {
        assertRefused(
                "timestamp,input_tokens,output_tokens\n2026-11-28 10:00:00,1,1\n",
                "trace.csv line 2, column timestamp: expected an ISO-8601 instant such as 2026-11-28T10:00:00Z or"
                        + " whole epoch milliseconds, got \"2026-11-28 10:00:00\"");
        assertRefused(
                "timestamp,input_tokens,output_tokens\n,1,1\n",
                "trace.csv line 2, column timestamp: expected an ISO-8601 instant such as 2026-11-28T10:00:00Z or"
                        + " whole epoch milliseconds, got nothing");
        assertRefused(
                "timestamp,input_tokens,output_tokens\n9999999999999999,1,1\n",
                "trace.csv line 2, column timestamp: expected a time between the years 1678 and 2261, got"
                        + " \"9999999999999999\"");
    }

    @Test
    void aQuotedCellThatSpansLinesCountsThemForLaterErrors() {
        assertRefused(
                "timestamp,input_tokens,output_tokens,tags\n1000,1,1,\"a=1\n2\n3\"\n2000,1,x,\n",
                "trace.csv line 5, column output_tokens: expected a whole number of at least 1, got \"x\"");
    }

    @Test
    void theHeaderMustNameTheRequiredColumns() {
        assertRefused(
                "timestamp,input_tokens,tokens_out\n1000,1,1\n",
                "trace.csv line 1: the header has no column output_tokens; expected the columns timestamp,"
                        + " input_tokens and output_tokens (and optionally tags), in any order, got"
                        + " \"timestamp,input_tokens,tokens_out\"");
        assertRefused(
                "1000,1,1\n",
                "trace.csv line 1: the header has no column timestamp; expected the columns timestamp, input_tokens"
                        + " and output_tokens (and optionally tags), in any order, got \"1000,1,1\"");
        assertRefused(
                "timestamp,input_tokens,output_tokens,input_tokens\n",
                "trace.csv line 1: the column input_tokens appears twice in the header");
    }

    @Test
    void anEmptyTraceIsRefused() {
        assertRefused(
                "",
                "trace.csv is empty; expected a header row naming the columns timestamp, input_tokens and"
                        + " output_tokens");
        assertRefused(
                "timestamp,input_tokens,output_tokens\n\n",
                "trace.csv holds no requests; expected rows of timestamp, input_tokens and output_tokens after the"
                        + " header");
    }

    @Test
    void malformedRowsAreRefused() {
        assertRefused(
                "timestamp,input_tokens,output_tokens,tags\n1000,1,1,a=1,2\n",
                "trace.csv line 2: expected at most 4 cells as in the header, got 5 (a cell holding a comma must be"
                        + " in double quotes)");
        assertRefused(
                "timestamp,input_tokens,output_tokens,tags\n1000,1,1,\"a=1\n",
                "trace.csv line 2, column tags: a quoted cell is not closed before the end of the input");
        assertRefused(
                "timestamp,input_tokens,output_tokens,tags\n1000,1,1,\"a=1\"x\n",
                "trace.csv line 2, column tags: expected a comma or the end of the line after a quoted cell");
    }

    @Test
    void anOverLongLineIsRefusedNamingIt() {
        String csv = "timestamp,input_tokens,output_tokens,note\n1000,1,1,ok\n2000,1,1," + "x".repeat(70_000) + "\n";

        assertRefused(csv, "trace.csv line 3: longer than 65536 characters; is this a CSV file?");
    }

    @Test
    void tooManyRowsAreRefused() throws IOException {
        String csv = "timestamp,input_tokens,output_tokens\n1000,1,1\n2000,1,1\n3000,1,1\n4000,1,1\n";

        assertThat(TraceTraffic.readCsv(new StringReader(csv), "t.csv", 4).recordedRequests())
                .isEqualTo(4);
        assertThatThrownBy(() -> TraceTraffic.readCsv(new StringReader(csv), "t.csv", 3))
                .hasMessage("t.csv line 5: more than 3 requests; a trace may hold at most 3");
    }

    @Test
    void badTagsAreNamedWithoutShowingOtherTags() {
        assertRefused(
                "timestamp,input_tokens,output_tokens,tags\n1000,1,1,team=a;broken;user=secret-42\n",
                "trace.csv line 2, column tags: expected key=value pairs separated by ';', got \"broken\" without '='");
        assertRefused(
                "timestamp,input_tokens,output_tokens,tags\n1000,1,1,team=a;team=b\n",
                "trace.csv line 2, column tags: the tag key \"team\" appears twice");
        assertThatThrownBy(() -> read("timestamp,input_tokens,output_tokens,tags\n1000,1,oops,user=secret-42\n"))
                .hasMessageNotContaining("secret-42")
                .hasMessageContaining("column output_tokens");
    }

    @Test
    void tagsMayBeEmptyAndEscapedWithPercent() throws IOException {
        TraceTraffic t = read("timestamp,input_tokens,output_tokens,tags\n"
                + "1000,1,1,\n"
                + "2000,1,1,;a=1;;\n"
                + "3000,1,1,k%3Dx=v%3B%25%C3%A9;p=100%\n");

        assertThat(list(t))
                .extracting(TrafficRequest::tags)
                .containsExactly(Map.of(), Map.of("a", "1"), Map.of("k=x", "v;%é", "p", "100%"));
    }

    @Test
    void receiptsWrittenAsATraceReadBackAsTheSameRequests() throws IOException {
        Instant t0 = Instant.parse("2026-11-28T10:00:00Z");
        Map<String, String> awkward = Map.of(
                "team;x", "a=b",
                "q\"uote", "comma, here",
                "lines", "one\ntwo\r\nthree\r",
                "pct", "100%25 %",
                "é", " spaced ",
                "empty", "");
        List<Receipt> receipts = List.of(
                receipt(t0.plusMillis(2_500), 120, 30, awkward),
                receipt(t0, 100, 20, Map.of()),
                receipt(t0.plusNanos(1_234_567), 90, 0, Map.of()), // failed: no output
                receipt(t0.plusSeconds(1), 10, 5, Map.of("purpose", "keep-warm")),
                receipt(t0.plusSeconds(1), 80, 10, Map.of("purpose", "chat")),
                receipt(t0.plusNanos(7), 70, 9, Map.of("team", "search")));
        StringWriter out = new StringWriter();

        long written = TraceTraffic.writeCsv(receipts, out);
        TraceTraffic read = read(out.toString());

        assertThat(written).isEqualTo(4);
        assertThat(out.toString()).startsWith("timestamp,input_tokens,output_tokens,tags\n");
        assertThat(out.toString().lines()).hasSize(5);
        assertThat(read.start()).isEqualTo(t0);
        assertThat(list(read))
                .containsExactly(
                        new TrafficRequest(0, 100, 20),
                        new TrafficRequest(7, 70, 9, Map.of("team", "search")),
                        new TrafficRequest(SECOND, 80, 10, Map.of("purpose", "chat")),
                        new TrafficRequest(2_500_000_000L, 120, 30, awkward));
    }

    private static Receipt receipt(Instant at, long in, long out, Map<String, String> tags) {
        return Receipt.builder()
                .providerId("p")
                .deploymentKind(DeploymentKind.SERVERLESS)
                .startedAt(at)
                .usage(new Usage(in, out, 0))
                .tags(tags)
                .build();
    }

    @Test
    void readsAFileNamingItInErrors(@TempDir Path dir) throws IOException {
        Path good = dir.resolve("good.csv");
        Files.writeString(
                good, "timestamp,input_tokens,output_tokens\n2026-01-01T00:00:00Z,3,4\n", StandardCharsets.UTF_8);
        Path bad = dir.resolve("bad.csv");
        Files.writeString(bad, "timestamp,input_tokens,output_tokens\n2026-01-01T00:00:00Z,3,four\n");

        assertThat(list(TraceTraffic.readCsv(good))).containsExactly(new TrafficRequest(0, 3, 4));
        assertThatThrownBy(() -> TraceTraffic.readCsv(bad))
                .hasMessageStartingWith("bad.csv line 2, column output_tokens:");
    }

    @Test
    void tokensPerDayIsTheVolumeOverTheSpanScaledToADay() throws IOException {
        TraceTraffic t = read("timestamp,input_tokens,output_tokens\n"
                + "2026-11-28T10:00:00Z,1000,200\n"
                + "2026-11-28T10:59:59Z,600,200\n");

        // 2000 tokens over one hour.
        assertThat(t.span()).isEqualTo(Duration.ofHours(1));
        assertThat(t.tokensPerDay()).isCloseTo(48_000, within(1e-6));
        assertThat(t.withSpan(Duration.ofDays(1)).tokensPerDay()).isCloseTo(2_000, within(1e-6));
        assertThat(t.withSpan(Duration.ofDays(1)).span()).isEqualTo(Duration.ofDays(1));
        assertThatThrownBy(() -> t.withSpan(Duration.ofMinutes(59)))
                .hasMessage(
                        "span must be longer than the latest request's offset PT59M59S from the earliest, got PT59M");
    }

    @Test
    void scalingDownKeepsAboutThatShareOfRequests() throws IOException {
        TraceTraffic t = dayOfRequests(20_000);
        TraceTraffic quarter = t.scaled(0.25, 5);

        List<TrafficRequest> kept = list(quarter);

        assertThat(kept.size()).isCloseTo(5_000, within(250));
        assertThat(quarter.tokensPerDay()).isCloseTo(t.tokensPerDay() / 4, within(1e-6));
        assertThat(list(t)).containsAll(kept);
        assertThat(list(quarter)).isEqualTo(kept);
        assertThat(list(t.scaled(0.25, 5))).isEqualTo(kept);
        assertThat(list(t.scaled(0.25, 6))).isNotEqualTo(kept);
    }

    @Test
    void scalingUpRepeatsRequestsWithinASecondInOrderAndBelowTheSpan() throws IOException {
        TraceTraffic t = dayOfRequests(10_000);
        TraceTraffic scaled = t.scaled(2.5, 11);

        List<TrafficRequest> requests = list(scaled);

        assertThat(requests.size()).isCloseTo(25_000, within(500));
        assertThat(list(scaled)).isEqualTo(requests);
        assertThat(list(t.scaled(2.5, 12))).isNotEqualTo(requests);
        long previous = -1;
        for (TrafficRequest r : requests) {
            assertThat(r.offsetNanos())
                    .isGreaterThanOrEqualTo(previous)
                    .isLessThan(scaled.span().toNanos());
            previous = r.offsetNanos();
        }
        assertThat(requests.stream()
                        .mapToLong(TrafficRequest::offsetNanos)
                        .distinct()
                        .count())
                .isGreaterThan(24_000);
    }

    @Test
    void repeatsOfTheLastRequestStayBelowAShortSpan() throws IOException {
        TraceTraffic single = read("timestamp,input_tokens,output_tokens\n1000,1,1\n2000,1,1\n");
        TraceTraffic tight = single.withSpan(Duration.ofMillis(1_000).plusNanos(10));

        List<TrafficRequest> requests = list(tight.scaled(50, 1));

        assertThat(requests).hasSize(100);
        assertThat(requests).allSatisfy(r -> assertThat(r.offsetNanos()).isLessThan(SECOND + 10));
        assertThat(requests.get(0).offsetNanos()).isZero();
    }

    @Test
    void scaledToReachesTheTargetVolume() throws IOException {
        TraceTraffic t = dayOfRequests(10_000); // 1.2M tokens a day
        TraceTraffic target = t.scaledTo(3_000_000, 3);

        long tokens = 0;
        for (TrafficRequest r : target) {
            tokens += r.tokens();
        }

        assertThat(t.tokensPerDay()).isCloseTo(1_200_000, within(1_000.0));
        assertThat(target.tokensPerDay()).isCloseTo(3_000_000, within(1e-3));
        assertThat(target.scaleFactor()).isCloseTo(2.5, within(0.01));
        assertThat((double) tokens).isCloseTo(3_000_000, within(60_000.0));
        assertThat(target.scaledTo(600_000, 4).tokensPerDay()).isCloseTo(600_000, within(1e-3));
    }

    @Test
    void scaleFactorOneIsTheTraceAsRecorded() throws IOException {
        TraceTraffic t = dayOfRequests(1_000);

        assertThat(list(t.scaled(1, 99))).isEqualTo(list(t));
        assertThat(list(t.scaled(2, 1).scaled(0.5, 1))).isEqualTo(list(t));
    }

    @Test
    void badScalesAreRefused() throws IOException {
        TraceTraffic t = dayOfRequests(10);

        assertThatThrownBy(() -> t.scaled(0, 1)).hasMessage("factor must be a finite number above 0, got 0.0");
        assertThatThrownBy(() -> t.scaled(Double.NaN, 1)).hasMessage("factor must be a finite number above 0, got NaN");
        assertThatThrownBy(() -> t.scaled(Double.POSITIVE_INFINITY, 1)).hasMessageContaining("got Infinity");
        assertThatThrownBy(() -> t.scaledTo(0, 1)).hasMessage("tokensPerDay must be at least 1, got 0");
    }

    @Test
    void describesItselfInOneLine() throws IOException {
        TraceTraffic t = read("timestamp,input_tokens,output_tokens\n"
                + "2026-11-28T10:00:00Z,1000,200\n"
                + "2026-11-28T11:59:59Z,600,200\n");

        assertThat(t.describe())
                .isEqualTo("trace.csv, 2 requests over 2 hours from 2026-11-28T10:00:00Z, 24k tokens/day");
        assertThat(t.scaled(2.5, 7).describe())
                .isEqualTo("trace.csv scaled x2.5 (seed 7), 2 requests over 2 hours from 2026-11-28T10:00:00Z, 60k"
                        + " tokens/day");
    }
}
