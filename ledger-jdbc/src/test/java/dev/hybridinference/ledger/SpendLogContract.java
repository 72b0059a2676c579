package dev.hybridinference.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.RouteFacts;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.ledger.internal.Database;
import dev.hybridinference.ledger.internal.Migrations;
import dev.hybridinference.ledger.internal.SpendEntry;
import dev.hybridinference.ledger.internal.Spool;
import dev.hybridinference.testkit.LogCapture;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.logging.Level;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a spend log does on any database it supports; each database's test class says how to reach it.
 * Every test takes tables of its own (a fresh prefix) and drops them afterwards. The timeout only keeps a
 * call that blocks (which these tests exist to rule out) from hanging the build.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
abstract class SpendLogContract {
    static final Instant BASE = Instant.parse("2026-11-28T00:00:00Z");
    static final String[] PROVIDERS = {"vllm-main", "azure-burst", "sagemaker-serverless"};
    static final String[] MODELS = {"llama-8b", "llama-70b"};
    static final String[] TENANTS = {"acme", "globex", "initech", "umbrella"};

    /** One over 2^30: a per-GB price divided into bytes carries 30 decimal places. */
    static final BigDecimal PER_BYTE = BigDecimal.ONE.divide(BigDecimal.valueOf(1L << 30));

    @TempDir
    Path dir;

    TestDb db;
    private final List<TestDb> tables = new ArrayList<>();
    private final List<JdbcSpendLog> logs = new ArrayList<>();

    /** The database plain tests use. */
    abstract String url();

    /** Where a proxy in front of the database server forwards to. */
    abstract InetSocketAddress server();

    /** The URL of the server's database through a proxy listening on {@code port}. */
    abstract String urlThrough(int port);

    /** The URL of the same database as {@link #urlThrough}, reached directly. */
    abstract String serverUrl();

    String user() {
        return null;
    }

    String password() {
        return null;
    }

    @BeforeEach
    void freshTables() {
        db = tables(url());
    }

    @AfterEach
    void dropTables() throws Exception {
        for (JdbcSpendLog log : logs) {
            log.close(Duration.ofSeconds(5));
        }
        for (TestDb t : tables) {
            t.drop();
        }
    }

    TestDb tables(String url) {
        TestDb t = new TestDb(url, user(), password(), TestDb.freshPrefix());
        tables.add(t);
        return t;
    }

    /** A builder for a log on {@code t}'s tables with a spool of its own, quick to flush and to reconnect. */
    JdbcSpendLog.Builder log(TestDb t) {
        return JdbcSpendLog.builder()
                .url(t.url())
                .user(user())
                .password(password())
                .tablePrefix(t.prefix())
                .spoolDirectory(dir.resolve("spool-" + UUID.randomUUID()))
                .flushInterval(Duration.ofMillis(5))
                .reconnectInterval(Duration.ofMillis(20))
                .closeTimeout(Duration.ofSeconds(15));
    }

    JdbcSpendLog started(JdbcSpendLog.Builder b) {
        JdbcSpendLog log = b.build();
        logs.add(log);
        return log;
    }

    SpendTotals totals(TestDb t) {
        return SpendTotals.builder()
                .url(t.url())
                .user(user())
                .password(password())
                .tablePrefix(t.prefix())
                .build();
    }

    /** Receipt {@code i}: a provider, a model, a tenant and (four times in five) a feature, an exact cost. */
    static Receipt receipt(int i, Instant startedAt) {
        Map<String, String> tags = new TreeMap<>();
        tags.put("tenant", TENANTS[i % TENANTS.length]);
        if (i % 5 != 0) {
            tags.put("feature", i % 2 == 0 ? "search" : "chat");
        }
        BigDecimal cost = new BigDecimal("0.000000150000000123")
                .multiply(BigDecimal.valueOf(100 + i))
                .add(PER_BYTE.multiply(BigDecimal.valueOf(i)));
        return Receipt.builder()
                .providerId(PROVIDERS[i % PROVIDERS.length])
                .deploymentKind(i % 3 == 0 ? DeploymentKind.SERVER : DeploymentKind.SERVERLESS)
                .model(MODELS[i % MODELS.length])
                .startedAt(startedAt)
                .totalTime(Duration.ofMillis(100 + i))
                .usage(new Usage(100 + i, 10 + i % 7, i % 3 == 0 ? 50 : 0))
                .cost(cost)
                .tags(tags)
                .build();
    }

    static InferenceListener.Call call(Receipt r) {
        return new InferenceListener.Call(r.id(), "client", ChatRequest.of("hello"), r.startedAt(), false);
    }

    static BigDecimal sum(Collection<Receipt> receipts) {
        return receipts.stream().map(Receipt::cost).reduce(BigDecimal.ZERO, BigDecimal::add);
    }

    static Set<String> ids(Collection<Receipt> receipts) {
        return receipts.stream().map(Receipt::id).collect(Collectors.toSet());
    }

    @Test
    void storesEveryFactOfAReceiptWithItsExactCostTagsAndRouteFacts() throws Exception {
        // 32 decimal places: beyond what NUMERIC(38,18) would keep.
        BigDecimal cost = new BigDecimal("0.000000000000000123")
                .add(new BigDecimal("0.09").multiply(BigDecimal.valueOf(12_345)).multiply(PER_BYTE));
        assertThat(cost.scale()).isGreaterThan(30);
        Receipt full = Receipt.builder()
                .providerId("azure-burst")
                .deploymentKind(DeploymentKind.SERVERLESS)
                .model("llama-70b")
                .route("tier large; spilled over: vllm-main at 64/64 in flight")
                .routeFacts(RouteFacts.builder()
                        .tier("large")
                        .spilledOver(true)
                        .fellBack(true)
                        .build())
                .attempt(new Attempt(
                        "vllm-main", "", "primary", Attempt.Outcome.FAILED, Duration.ofMillis(3), "HTTP 503"))
                .attempt(new Attempt(
                        "azure-burst", "", "overflow", Attempt.Outcome.SUCCEEDED, Duration.ofSeconds(1), null))
                .startedAt(Instant.parse("2026-11-28T10:15:30.123456789Z"))
                .totalTime(Duration.ofMillis(1234).plusNanos(567_891))
                .timeToFirstToken(Duration.ofMillis(250))
                .queueTime(Duration.ofMillis(7))
                .computeTime(Duration.ofMillis(1100))
                .coldStart(new ColdStart(true, true, Optional.of(Duration.ofSeconds(4))))
                .usage(new Usage(1200, 345, 200))
                .instanceTime(Duration.ofMillis(1150))
                .requestBytes(4096)
                .responseBytes(2048)
                .cost(cost)
                .costEstimated(true)
                .sessionId("session-42")
                .tags(Map.of("tenant", "acme", "feature", "search"))
                .attributes(Map.of("region", "eu-west-1"))
                .build();
        Receipt partial = Receipt.builder()
                .providerId("vllm-main")
                .deploymentKind(DeploymentKind.SERVER)
                .model("llama-8b")
                .startedAt(Instant.parse("2026-11-28T10:16:00Z"))
                .usage(Usage.estimated(40, 3))
                .cost(new BigDecimal("0.000000000001"))
                .tags(Map.of("tenant", "globex"))
                .build();

        JdbcSpendLog log = started(log(db));
        log.onCompleted(call(full), full);
        log.onFailed(
                call(partial),
                new RateLimitedException("slow down", "vllm-main", null, 429, null, null).withPartialReceipt(partial));
        log.onFailed(call(partial), new RateLimitedException("no receipt", "vllm-main", null, 429, null, null));
        JdbcSpendLog.Status status = log.close(Duration.ofSeconds(15));

        assertThat(status.received()).isEqualTo(2);
        assertThat(status.spooled()).isZero();
        assertThat(status.databaseReachable()).isTrue();
        try (Connection c = db.open();
                PreparedStatement p = c.prepareStatement("SELECT * FROM " + db.table("receipts") + " WHERE id = ?")) {
            p.setString(1, full.id());
            try (ResultSet r = p.executeQuery()) {
                assertThat(r.next()).isTrue();
                assertThat(r.getBigDecimal("cost")).isEqualByComparingTo(cost);
                assertThat(r.getBigDecimal("cost").stripTrailingZeros()).isEqualTo(cost.stripTrailingZeros());
                assertThat(r.getObject("started_at", OffsetDateTime.class).toInstant())
                        .isEqualTo(full.startedAt().truncatedTo(ChronoUnit.MICROS));
                assertThat(r.getString("provider_id")).isEqualTo("azure-burst");
                assertThat(r.getString("deployment_kind")).isEqualTo("SERVERLESS");
                assertThat(r.getString("model")).isEqualTo("llama-70b");
                assertThat(r.getString("route")).isEqualTo(full.route());
                assertThat(r.getString("tier")).isEqualTo("large");
                assertThat(r.getBoolean("spilled_over")).isTrue();
                assertThat(r.getBoolean("fell_back")).isTrue();
                assertThat(r.getInt("attempts")).isEqualTo(2);
                assertThat(r.getString("outcome")).isEqualTo("completed");
                assertThat(r.getString("error_type")).isNull();
                assertThat(r.getLong("total_time_us")).isEqualTo(1_234_567);
                assertThat(r.getLong("time_to_first_token_us")).isEqualTo(250_000);
                assertThat(r.getLong("queue_time_us")).isEqualTo(7_000);
                assertThat(r.getLong("compute_time_us")).isEqualTo(1_100_000);
                assertThat(r.getLong("instance_time_us")).isEqualTo(1_150_000);
                assertThat(r.getBoolean("cold_start_predicted")).isTrue();
                assertThat(r.getBoolean("cold_start_observed")).isTrue();
                assertThat(r.getLong("cold_start_us")).isEqualTo(4_000_000);
                assertThat(r.getLong("input_tokens")).isEqualTo(1200);
                assertThat(r.getLong("output_tokens")).isEqualTo(345);
                assertThat(r.getLong("cached_input_tokens")).isEqualTo(200);
                assertThat(r.getBoolean("tokens_estimated")).isFalse();
                assertThat(r.getLong("request_bytes")).isEqualTo(4096);
                assertThat(r.getLong("response_bytes")).isEqualTo(2048);
                assertThat(r.getBoolean("cost_estimated")).isTrue();
                assertThat(r.getString("session_id")).isEqualTo("session-42");
            }
            p.setString(1, partial.id());
            try (ResultSet r = p.executeQuery()) {
                assertThat(r.next()).isTrue();
                assertThat(r.getString("outcome")).isEqualTo("failed");
                assertThat(r.getString("error_type")).isEqualTo("RateLimitedException");
                assertThat(r.getBigDecimal("cost")).isEqualByComparingTo("0.000000000001");
                assertThat(r.getBoolean("tokens_estimated")).isTrue();
                assertThat(r.getObject("time_to_first_token_us")).isNull();
                assertThat(r.getObject("tier")).isNull();
            }
        }
        assertThat(db.rows("SELECT receipt_id, tag_key, tag_value FROM " + db.table("receipt_tags")
                        + " ORDER BY receipt_id, tag_key"))
                .containsExactlyInAnyOrder(
                        List.of(full.id(), "feature", "search"),
                        List.of(full.id(), "tenant", "acme"),
                        List.of(partial.id(), "tenant", "globex"));
        assertThat(db.rows("SELECT receipt_id, attribute_key, attribute_value FROM " + db.table("receipt_attributes")))
                .containsExactly(List.of(full.id(), "region", "eu-west-1"));
        assertThat(db.count()).isEqualTo(2);
    }

    @Test
    void totalsByProviderModelTagAndWindowEqualTheSumsOverTheReceipts() throws Exception {
        List<Receipt> all = new ArrayList<>();
        Set<String> failed = new HashSet<>();
        JdbcSpendLog log = started(log(db));
        for (int i = 0; i < 60; i++) {
            Receipt r = receipt(i, BASE.plus(Duration.ofMinutes(67L * i)));
            all.add(r);
            if (i % 7 == 3) {
                failed.add(r.id());
                log.append(r, new RateLimitedException("busy", r.providerId(), null, 429, null, null));
            } else {
                log.append(r);
            }
        }
        log.close(Duration.ofSeconds(15));
        SpendTotals totals = totals(db);
        Instant from = BASE.plus(Duration.ofDays(1));
        Instant to = BASE.plus(Duration.ofDays(2));
        List<Receipt> inWindow = all.stream()
                .filter(r -> !r.startedAt().isBefore(from) && r.startedAt().isBefore(to))
                .collect(Collectors.toList());
        assertThat(inWindow).hasSizeBetween(15, 30);
        SpendTotals.Window window = SpendTotals.Window.between(from, to);

        assertThat(totals.total(SpendTotals.Window.all())).isEqualTo(expected(all, failed));
        assertThat(totals.total(window)).isEqualTo(expected(inWindow, failed));
        assertThat(totals.total(SpendTotals.Window.since(to)))
                .isEqualTo(expected(all.stream().filter(r -> !r.startedAt().isBefore(to)), failed));
        assertThat(totals.total(SpendTotals.Window.until(from)))
                .isEqualTo(expected(all.stream().filter(r -> r.startedAt().isBefore(from)), failed));

        assertThat(asMap(totals.byProvider(window))).isEqualTo(expectedBy(inWindow, failed, Receipt::providerId));
        assertThat(asMap(totals.byModel(SpendTotals.Window.all()))).isEqualTo(expectedBy(all, failed, Receipt::model));
        assertThat(asMap(totals.byTag("tenant", window)))
                .isEqualTo(expectedBy(inWindow, failed, r -> r.tags().get("tenant")));
        List<Receipt> withFeature =
                inWindow.stream().filter(r -> r.tags().containsKey("feature")).collect(Collectors.toList());
        assertThat(asMap(totals.byTag("feature", window)))
                .isEqualTo(expectedBy(withFeature, failed, r -> r.tags().get("feature")));
        assertThat(totals.withoutTag("feature", window))
                .isEqualTo(expected(inWindow.stream().filter(r -> !r.tags().containsKey("feature")), failed));
        assertThat(totals.withoutTag("tenant", window).calls()).isZero();
        assertThat(totals.byTag("no-such-tag", window)).isEmpty();

        // Groups come most expensive first.
        List<SpendTotals.Group> byProvider = totals.byProvider(SpendTotals.Window.all());
        assertThat(byProvider).extracting(g -> g.totals().cost()).isSortedAccordingTo((a, b) -> b.compareTo(a));
    }

    static SpendTotals.Totals expected(Collection<Receipt> receipts, Set<String> failed) {
        return expected(receipts.stream(), failed);
    }

    static SpendTotals.Totals expected(java.util.stream.Stream<Receipt> receipts, Set<String> failed) {
        List<Receipt> list = receipts.collect(Collectors.toList());
        return new SpendTotals.Totals(
                list.size(),
                list.stream().filter(r -> failed.contains(r.id())).count(),
                list.stream().mapToLong(r -> r.usage().inputTokens()).sum(),
                list.stream().mapToLong(r -> r.usage().outputTokens()).sum(),
                list.stream().mapToLong(r -> r.usage().cachedInputTokens()).sum(),
                SpendTotals.plain(sum(list)));
    }

    static Map<String, SpendTotals.Totals> expectedBy(
            List<Receipt> receipts, Set<String> failed, Function<Receipt, String> key) {
        Map<String, List<Receipt>> groups = receipts.stream().collect(Collectors.groupingBy(key));
        Map<String, SpendTotals.Totals> out = new TreeMap<>();
        groups.forEach((k, v) -> out.put(k, expected(v, failed)));
        return out;
    }

    static Map<String, SpendTotals.Totals> asMap(List<SpendTotals.Group> groups) {
        Map<String, SpendTotals.Totals> out = new TreeMap<>();
        groups.forEach(g -> out.put(g.key(), g.totals()));
        return out;
    }

    @Test
    void theSameReceiptTwiceIsOneRowWhetherAppendedAgainOrReplayedFromTheSpool() throws Exception {
        Receipt r = receipt(1, BASE);
        Receipt other = receipt(2, BASE.plusSeconds(1));
        JdbcSpendLog first = started(log(db));
        first.append(r);
        first.append(r);
        first.onCompleted(call(r), r);
        first.close();
        JdbcSpendLog second = started(log(db));
        second.append(r);
        second.close();

        assertThat(db.count()).isEqualTo(1);
        assertThat(db.costSum()).isEqualByComparingTo(r.cost());
        assertThat(db.longValue("SELECT COUNT(*) FROM " + db.table("receipt_tags")))
                .isEqualTo(r.tags().size());

        // A spool left by a run whose last batch did reach the database: replayed, nothing doubles.
        Path spool = dir.resolve("left-over");
        Files.createDirectories(spool);
        String line = SpendEntry.of(r, null, BASE).toJson();
        Files.writeString(
                spool.resolve(Spool.CURRENT),
                line + "\n" + line + "\n" + SpendEntry.of(other, null, BASE).toJson() + "\n",
                StandardCharsets.UTF_8);
        JdbcSpendLog third = started(log(db).spoolDirectory(spool));
        JdbcSpendLog.Status status = third.close(Duration.ofSeconds(15));

        assertThat(status.spooled()).isZero();
        assertThat(db.ids()).containsExactlyInAnyOrder(r.id(), other.id());
        assertThat(db.costSum()).isEqualByComparingTo(r.cost().add(other.cost()));
        assertThat(db.longValue("SELECT COUNT(*) FROM " + db.table("receipt_tags")))
                .isEqualTo(r.tags().size() + other.tags().size());
        assertThat(spoolFiles(spool)).isEmpty();
    }

    @Test
    void eightThreadsAppendingInBatchesStoreEveryReceiptOnce() throws Exception {
        JdbcSpendLog log = started(log(db).batchSize(50).queueCapacity(4_096));
        int threads = 8;
        int each = 250;
        ConcurrentLinkedQueue<Receipt> appended = new ConcurrentLinkedQueue<>();
        CountDownLatch start = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    start.await();
                    for (int i = 0; i < each; i++) {
                        Receipt r = receipt(thread * each + i, BASE.plusMillis(thread * 10_000L + i));
                        log.onCompleted(call(r), r);
                        appended.add(r);
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> f : done) {
                f.get(30, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        JdbcSpendLog.Status status = log.close(Duration.ofSeconds(15));

        assertThat(status.received()).isEqualTo(threads * each);
        assertThat(status.queued()).isZero();
        assertThat(status.spooled()).isZero();
        assertThat(status.lost()).isZero();
        assertThat(status.rejected()).isZero();
        assertThat(db.count()).isEqualTo(threads * each);
        assertThat(db.costSum()).isEqualByComparingTo(sum(appended));
        assertThat(db.ids()).isEqualTo(ids(appended));
    }

    @Test
    void theDatabaseCutMidRunLosesNothingAndWritesNothingTwice() throws Exception {
        TestDb served = tables(serverUrl());
        try (TcpProxy proxy = new TcpProxy(server())) {
            JdbcSpendLog log = started(
                    log(served).url(urlThrough(proxy.port())).batchSize(20).queueCapacity(10_000));
            ConcurrentLinkedQueue<Receipt> returned = new ConcurrentLinkedQueue<>();
            AtomicBoolean stop = new AtomicBoolean();
            try (HybridClient client = HybridClient.builder()
                    .member("only", new PricedDouble("double", null, Clock.systemUTC()))
                    .listener(log)
                    .build()) {
                ExecutorService callers = Executors.newFixedThreadPool(8);
                List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < 8; t++) {
                    int thread = t;
                    done.add(callers.submit(() -> {
                        for (int i = 0; !stop.get(); i++) {
                            ChatRequest request = ChatRequest.builder()
                                    .user("question " + thread + "-" + i + " " + "x".repeat(i % 50))
                                    .options(RequestOptions.builder()
                                            .tag("tenant", TENANTS[thread % TENANTS.length])
                                            .build())
                                    .build();
                            returned.add(client.chat(request).receipt());
                            Thread.sleep(1); // paces the callers; the phases below wait on what happened
                        }
                        return null;
                    }));
                }
                TestDb.await("receipts reach the database", () -> log.status().stored() >= 100);
                proxy.cut();
                TestDb.await(
                        "receipts are spooled while the database is away",
                        () -> log.status().spooled() >= 100);
                assertThat(log.status().databaseReachable()).isFalse();
                assertThat(log.status().lastError()).isPresent();
                proxy.restore();
                TestDb.await(
                        "the spool is replayed once the database is back",
                        () -> log.status().spooled() == 0 && log.status().databaseReachable());
                long afterReplay = returned.size();
                TestDb.await("more calls are recorded", () -> returned.size() >= afterReplay + 100);
                stop.set(true);
                for (Future<?> f : done) {
                    f.get(30, TimeUnit.SECONDS);
                }
                callers.shutdown();
            }
            JdbcSpendLog.Status status = log.close(Duration.ofSeconds(15));

            assertThat(status.received()).isEqualTo(returned.size());
            assertThat(status.spooled()).isZero();
            assertThat(status.queued()).isZero();
            assertThat(status.lost()).isZero();
            assertThat(status.rejected()).isZero();
            assertThat(served.count()).isEqualTo(returned.size());
            assertThat(served.costSum()).isEqualByComparingTo(sum(returned));
            assertThat(served.ids()).isEqualTo(ids(returned));
            assertThat(spoolFiles(log.spoolDirectory())).isEmpty();
        }
    }

    @Test
    void listenerCallsReturnWhileTheDatabaseHangsAndTheOverflowGoesToTheSpool() throws Exception {
        TestDb served = tables(serverUrl());
        try (TcpProxy proxy = new TcpProxy(server())) {
            JdbcSpendLog log = started(
                    log(served).url(urlThrough(proxy.port())).batchSize(10).queueCapacity(50));
            List<Receipt> appended = new ArrayList<>();
            proxy.pause();
            Receipt first = receipt(0, BASE);
            log.onCompleted(call(first), first);
            appended.add(first);
            // The writer took it and sent it; the database's answer is held: it cannot reply.
            assertThat(proxy.awaitHeld()).isTrue();

            for (int i = 1; i <= 300; i++) {
                Receipt r = receipt(i, BASE.plusSeconds(i));
                log.onCompleted(call(r), r);
                appended.add(r);
            }
            // Every call above returned while nothing could come back from the database: none waited on it.
            assertThat(proxy.holding()).isTrue();
            JdbcSpendLog.Status held = log.status();
            assertThat(held.stored()).isZero();
            assertThat(held.queued() + held.spooled()).isEqualTo(301);
            assertThat(held.spooled()).isGreaterThanOrEqualTo(300 - 51);

            proxy.resume();
            JdbcSpendLog.Status status = log.close(Duration.ofSeconds(15));
            assertThat(status.spooled()).isZero();
            assertThat(served.count()).isEqualTo(301);
            assertThat(served.costSum()).isEqualByComparingTo(sum(appended));
            assertThat(served.ids()).isEqualTo(ids(appended));
        }
    }

    @Test
    void aConnectionDroppedBetweenBatchesIsReplacedWithoutSpooling() throws Exception {
        TestDb served = tables(serverUrl());
        try (TcpProxy proxy = new TcpProxy(server());
                LogCapture logs = LogCapture.start()) {
            JdbcSpendLog log = started(log(served).url(urlThrough(proxy.port())));
            Receipt a = receipt(1, BASE);
            Receipt b = receipt(2, BASE.plusSeconds(1));
            log.append(a);
            TestDb.await("the first receipt is stored", () -> log.status().stored() == 1);
            // The server side of the idle connection goes away, and the server is there again at once.
            proxy.cut();
            proxy.restore();
            log.append(b);
            TestDb.await("the second receipt is stored", () -> log.status().stored() == 2);

            assertThat(log.status().spooled()).isZero();
            assertThat(log.status().databaseReachable()).isTrue();
            assertThat(logs.lines(Level.WARNING)).noneMatch(line -> line.contains(served.prefix()));
            log.close();
            assertThat(served.ids()).containsExactlyInAnyOrder(a.id(), b.id());
        }
    }

    @Test
    void whatTheDatabaseCannotTakeByCloseStaysInTheSpoolForTheNextLog() throws Exception {
        TestDb served = tables(serverUrl());
        Path spool = dir.resolve("kept");
        try (TcpProxy proxy = new TcpProxy(server())) {
            JdbcSpendLog log = started(log(served).url(urlThrough(proxy.port())).spoolDirectory(spool));
            proxy.cut();
            List<Receipt> appended = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                Receipt r = receipt(i, BASE.plusSeconds(i));
                log.append(r);
                appended.add(r);
            }
            JdbcSpendLog.Status closed = log.close(Duration.ofSeconds(15));
            assertThat(closed.spooled()).isEqualTo(30);
            assertThat(closed.stored()).isZero();
            assertThat(closed.databaseReachable()).isFalse();
            assertThat(served.count()).isZero();

            proxy.restore();
            JdbcSpendLog next =
                    started(log(served).url(urlThrough(proxy.port())).spoolDirectory(spool));
            assertThat(next.status().spooled()).isEqualTo(30);
            JdbcSpendLog.Status status = next.close(Duration.ofSeconds(15));
            assertThat(status.spooled()).isZero();
            assertThat(served.count()).isEqualTo(30);
            assertThat(served.costSum()).isEqualByComparingTo(sum(appended));
            assertThat(spoolFiles(spool)).isEmpty();
        }
    }

    @Test
    void aReceiptTheDatabaseRefusesIsRejectedAndTheRestOfItsBatchStored() throws Exception {
        JdbcSpendLog log = started(log(db).batchSize(10).flushInterval(Duration.ofSeconds(1)));
        List<Receipt> good = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            Receipt r = receipt(i, BASE.plusSeconds(i));
            good.add(r);
            log.append(r);
            if (i == 4) {
                // An id longer than the column holds: the database refuses this one receipt.
                log.append(
                        receipt(99, BASE).toBuilder().id("r-" + "f".repeat(300)).build());
            }
        }
        JdbcSpendLog.Status status = log.close(Duration.ofSeconds(15));

        assertThat(status.rejected()).isEqualTo(1);
        assertThat(status.spooled()).isZero();
        assertThat(db.ids()).isEqualTo(ids(good));
        String rejected = Files.readString(log.spoolDirectory().resolve(Spool.REJECTED), StandardCharsets.UTF_8);
        assertThat(rejected).contains("r-" + "f".repeat(300)).hasLineCount(1);
    }

    @Test
    void migrationsRunOnceWhenInstancesStartTogether() throws Exception {
        int instances = 4;
        Database database = new Database(db.url(), user(), password(), db.prefix());
        CyclicBarrier together = new CyclicBarrier(instances);
        ExecutorService pool = Executors.newFixedThreadPool(instances);
        List<Integer> applied = new ArrayList<>();
        try {
            List<Future<List<Integer>>> runs = new ArrayList<>();
            for (int i = 0; i < instances; i++) {
                runs.add(pool.submit(() -> {
                    try (Connection c = database.open()) {
                        together.await();
                        return Migrations.migrate(c, database);
                    }
                }));
            }
            for (Future<List<Integer>> run : runs) {
                applied.addAll(run.get(30, TimeUnit.SECONDS));
            }
        } finally {
            pool.shutdownNow();
        }
        int versions = Migrations.scripts(database.dialect()).size();
        assertThat(applied)
                .containsExactlyInAnyOrderElementsOf(
                        IntStream.rangeClosed(1, versions).boxed().toList());
        assertThat(db.longValue("SELECT COUNT(*) FROM " + db.table("schema_version")))
                .isEqualTo(versions);

        // Two logs started at once on fresh tables both work, on one schema.
        TestDb fresh = tables(url());
        CyclicBarrier both = new CyclicBarrier(2);
        ExecutorService starters = Executors.newFixedThreadPool(2);
        try {
            List<Future<JdbcSpendLog>> started = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                started.add(starters.submit(() -> {
                    JdbcSpendLog.Builder b = log(fresh);
                    both.await();
                    return started(b);
                }));
            }
            int n = 0;
            for (Future<JdbcSpendLog> f : started) {
                JdbcSpendLog log = f.get(30, TimeUnit.SECONDS);
                log.append(receipt(n++, BASE));
                assertThat(log.close(Duration.ofSeconds(15)).spooled()).isZero();
            }
        } finally {
            starters.shutdownNow();
        }
        assertThat(fresh.count()).isEqualTo(2);
        assertThat(fresh.longValue("SELECT COUNT(*) FROM " + fresh.table("schema_version")))
                .isEqualTo(versions);
    }

    @Test
    void aSchemaMigratedByAnotherScriptIsRefusedAtStart() throws Exception {
        started(log(db)).close();
        try (Connection c = db.open();
                Statement s = c.createStatement()) {
            s.executeUpdate("UPDATE " + db.table("schema_version") + " SET checksum = 'changed' WHERE version = 1");
        }
        assertThatThrownBy(() -> started(log(db)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining(db.prefix())
                .hasMessageContaining("V1__receipts");
    }

    @Test
    void exportsTheWindowAsAPlannerTrace() throws Exception {
        Instant t0 = Instant.parse("2026-11-28T10:00:00Z");
        Receipt plain = receipt(1, t0).toBuilder()
                .usage(new Usage(50, 10, 0))
                .tags(Map.of())
                .build();
        Map<String, String> awkward = new LinkedHashMap<>();
        awkward.put("tenant", "a;b");
        awkward.put("note", "x=y,z%\"q\"\r\n");
        Receipt tagged = receipt(2, t0.plusNanos(1_123_456_789)).toBuilder()
                .usage(new Usage(120, 30, 0))
                .tags(awkward)
                .build();
        Receipt failed = receipt(3, t0.plusSeconds(2)).toBuilder()
                .usage(new Usage(80, 0, 0))
                .build();
        Receipt keepWarm = receipt(4, t0.plusSeconds(3)).toBuilder()
                .tags(Map.of("purpose", "keep-warm"))
                .build();
        Receipt later = receipt(5, t0.plus(Duration.ofHours(2)));
        Receipt last = receipt(6, t0.plusSeconds(4)).toBuilder()
                .usage(new Usage(7, 3, 0))
                .tags(Map.of("tenant", "acme", "feature", "search"))
                .build();
        JdbcSpendLog log = started(log(db));
        for (Receipt r : List.of(last, later, keepWarm, failed, tagged, plain)) {
            log.append(r);
        }
        log.close(Duration.ofSeconds(15));

        StringWriter out = new StringWriter();
        long rows = totals(db).exportTrace(SpendTotals.Window.between(t0, t0.plus(Duration.ofHours(1))), out);

        assertThat(rows).isEqualTo(3);
        assertThat(out.toString())
                .isEqualTo("timestamp,input_tokens,output_tokens,tags\n"
                        + "2026-11-28T10:00:00Z,50,10,\n"
                        + "2026-11-28T10:00:01.123456Z,120,30,note=x%3Dy%2Cz%25%22q%22%0D%0A;tenant=a%3Bb\n"
                        + "2026-11-28T10:00:04Z,7,3,feature=search;tenant=acme\n");
    }

    /** The spool's files that hold receipts (the lock file and an empty current file do not). */
    static List<Path> spoolFiles(Path spool) throws Exception {
        Predicate<Path> holdsReceipts = p -> {
            String name = p.getFileName().toString();
            try {
                return (name.startsWith("replay-") || name.equals(Spool.CURRENT)) && Files.size(p) > 0;
            } catch (java.io.IOException e) {
                return true;
            }
        };
        try (var files = Files.list(spool)) {
            return files.filter(holdsReceipts).collect(Collectors.toList());
        }
    }
}
