package dev.hybridinference.cloudrun;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ColdStartTimeoutException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.cloudrun.CloudRunEmulator;
import dev.hybridinference.testkit.cloudrun.GoogleTokenServer;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Cloud Run provider end to end against the emulator and a fake Google token server: ID tokens for the
 * service's audience from a generated service account key, cold starts held and refused, the core's retries
 * within the deadline, streaming, keep-warm, and bills checked by hand.
 */
@Timeout(60)
class CloudRunClientTest {
    private final List<AutoCloseable> closeables = new ArrayList<>();
    private GoogleTokenServer tokens;
    private Path key;

    @TempDir
    Path dir;

    @BeforeEach
    void tokenServer() throws Exception {
        tokens = GoogleTokenServer.start(0);
        closeables.add(tokens);
        key = dir.resolve("sa.json");
        Files.writeString(key, tokens.serviceAccountKeyJson("caller@project.iam.gserviceaccount.com"));
    }

    @AfterEach
    void close() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) {
            closeables.get(i).close();
        }
    }

    private CloudRunEmulator emulator(Consumer<CloudRunEmulator.Builder> setup) {
        CloudRunEmulator.Builder b = CloudRunEmulator.builder().requireIdToken(tokens);
        setup.accept(b);
        CloudRunEmulator e = b.start();
        closeables.add(e);
        return e;
    }

    private CloudRunClient.Builder client(CloudRunEmulator e) {
        return CloudRunClient.builder().id("run").serviceUrl(e.url()).serviceAccountKey(key);
    }

    private <T extends AutoCloseable> T closing(T c) {
        closeables.add(c);
        return c;
    }

    private static String text(ChatStream s) {
        StringBuilder b = new StringBuilder();
        for (ChatChunk c : s) {
            b.append(c.text());
        }
        return b.toString();
    }

    @Test
    void aCallCarriesAnIdTokenForTheServicesAudienceAndTheTokenIsCached() {
        CloudRunEmulator e = emulator(b -> {});
        CloudRunClient c = closing(client(e).build());
        e.answerNext("warm hello");
        assertThat(c.chat(ChatRequest.of("hi")).text()).isEqualTo("warm hello");
        c.chat(ChatRequest.of("again"));
        assertThat(tokens.audiencesRequested()).containsOnly(e.url());
        assertThat(tokens.idTokensIssued()).as("one token serves both calls").isEqualTo(1);
        String auth = e.recorded().get(e.recorded().size() - 1).header("authorization");
        assertThat(auth).startsWith("Bearer ey");
    }

    @Test
    void withoutAKeyTheTokenComesFromTheMetadataServerAsOnGoogleCloud() throws Exception {
        Integer port = Integer.getInteger("gce.metadata.port");
        org.junit.jupiter.api.Assumptions.assumeTrue(port != null, "run by Maven, which reserves the metadata port");
        org.junit.jupiter.api.Assumptions.assumeTrue(
                System.getenv("GOOGLE_APPLICATION_CREDENTIALS") == null
                        && !Files.exists(Path.of(
                                System.getProperty("user.home"),
                                ".config/gcloud/application_default_credentials.json")),
                "application default credentials of this machine would come first");
        GoogleTokenServer metadata = GoogleTokenServer.start(port);
        closeables.add(metadata);
        CloudRunEmulator e = CloudRunEmulator.builder().requireIdToken(metadata).start();
        closeables.add(e);
        CloudRunClient c = closing(CloudRunClient.builder().serviceUrl(e.url()).build());
        e.answerNext("from the metadata server's token");
        assertThat(c.chat(ChatRequest.of("hi")).text()).isEqualTo("from the metadata server's token");
        assertThat(metadata.audiencesRequested()).containsOnly(e.url());
    }

    @Test
    void anExpiredTokenIsRefreshedBeforeTheCall() throws Exception {
        tokens.tokenLifetime(Duration.ofSeconds(1));
        CloudRunEmulator e = emulator(b -> {});
        CloudRunClient c = closing(client(e).build());
        c.chat(ChatRequest.of("one"));
        // The library refreshes a token within minutes of its expiry: a one-second token is refreshed on each call.
        c.chat(ChatRequest.of("two"));
        assertThat(tokens.idTokensIssued()).isGreaterThanOrEqualTo(2);
        assertThat(e.requests()).isEqualTo(2);
    }

    @Test
    void aServiceThatRefusesTheTokenIsAnAuthenticationError() {
        CloudRunEmulator e = emulator(b -> b.audience("https://another-service.run.app"));
        CloudRunClient c = closing(client(e).build());
        assertThatThrownBy(() -> c.chat(ChatRequest.of("hi")))
                .isInstanceOf(dev.hybridinference.core.AuthenticationException.class);
    }

    @Test
    void aHeldColdStartIsObservedWithItsDurationAndTheNextCallIsWarm() {
        CloudRunEmulator e = emulator(b -> b.coldStart(Duration.ofMillis(1500)));
        CloudRunClient c =
                closing(client(e).coldStartThreshold(Duration.ofMillis(700)).build());
        Receipt cold = c.chat(ChatRequest.of("wake up")).receipt();
        assertThat(cold.coldStart().predicted())
                .as("the first call of a service that scales to zero")
                .isTrue();
        assertThat(cold.coldStart().observed()).isTrue();
        assertThat(cold.coldStart().duration().orElseThrow()).isGreaterThan(Duration.ofMillis(700));
        assertThat(e.coldStarts()).isEqualTo(1);
        Receipt warm = c.chat(ChatRequest.of("again")).receipt();
        assertThat(warm.coldStart().any()).isFalse();
    }

    @Test
    void a429WhileAnInstanceStartsIsRetriedWithinTheDeadlineAndTheColdStartRecorded() {
        CloudRunEmulator e = emulator(b -> b.coldStart(Duration.ofMillis(800)).holdLimit(Duration.ofMillis(100)));
        InferenceClient c = closing(InferenceClients.fromConfig(config(e, "")
                + "retry: {maxAttempts: 30, initialBackoff: 50ms, maxBackoff: 200ms, maxTotalWait: 20s}\n"));
        ChatResponse r = c.chat(ChatRequest.builder()
                .user("wake up")
                .options(
                        RequestOptions.builder().timeout(Duration.ofSeconds(20)).build())
                .build());
        Receipt receipt = r.receipt();
        assertThat(receipt.attempts().size()).isGreaterThan(1);
        assertThat(receipt.attempts().get(0).error()).contains(ColdStartTimeoutException.class.getSimpleName());
        assertThat(receipt.coldStart().observed()).isTrue();
        assertThat(receipt.coldStart().duration().orElseThrow()).isGreaterThanOrEqualTo(Duration.ofMillis(600));
    }

    @Test
    void unavailablePastTheDeadlineEndsWithAClearErrorAndAPartialReceipt() {
        CloudRunEmulator e = emulator(b -> b.coldStart(Duration.ofSeconds(30))
                .holdLimit(Duration.ofMillis(50))
                .startupFailure(503, "Service Unavailable"));
        InferenceClient c = closing(InferenceClients.fromConfig(
                config(e, "") + "retry: {maxAttempts: 50, initialBackoff: 50ms, maxBackoff: 100ms}\n"));
        assertThatThrownBy(() -> c.chat(ChatRequest.builder()
                        .user("wake up")
                        .options(RequestOptions.builder()
                                .timeout(Duration.ofMillis(1500))
                                .build())
                        .build()))
                .isInstanceOfAny(ColdStartTimeoutException.class, InferenceTimeoutException.class)
                .satisfies(t -> {
                    InferenceException ie = (InferenceException) t;
                    assertThat(ie.getMessage()).containsAnyOf("no instance was available", "deadline");
                    Receipt partial = ie.partialReceipt().orElseThrow();
                    assertThat(partial.attempts()).hasSizeGreaterThan(1);
                    // The ledger holds each attempt's own receipt.
                    assertThat(c.ledger().orElseThrow().totals().calls())
                            .isEqualTo(partial.attempts().size());
                });
    }

    @Test
    void aStreamIsReadAsItComesAndItsColdStartRecorded() {
        CloudRunEmulator e = emulator(b -> b.coldStart(Duration.ofMillis(1200)).tokenLatency(Duration.ofMillis(5)));
        CloudRunClient c =
                closing(client(e).coldStartThreshold(Duration.ofMillis(500)).build());
        try (ChatStream s =
                c.stream(ChatRequest.builder().user("stream").maxTokens(20).build())) {
            String text = text(s);
            assertThat(text.split(" ")).hasSize(20);
            ChatResponse end = s.response();
            assertThat(end.usage().outputTokens()).isEqualTo(20);
            assertThat(end.receipt().coldStart().observed()).isTrue();
            assertThat(end.receipt().timeToFirstToken()).isPresent();
        }
    }

    @Test
    void everyReceiptNamesTheServiceItRanOn() {
        CloudRunEmulator e = emulator(b -> b.minInstances(1));
        CloudRunClient c = closing(client(e).build());
        String url = e.url() + "/";
        assertThat(c.chat(ChatRequest.of("hi")).receipt().attributes()).containsExactly(Map.entry("service", e.url()));
        assertThat(c.chat(ChatRequest.of("again")).receipt().attributes())
                .containsExactly(Map.entry("service", e.url()));
        try (ChatStream s = c.stream(ChatRequest.of("stream"))) {
            text(s);
            assertThat(s.response().receipt().attributes()).containsExactly(Map.entry("service", e.url()));
        }
        CloudRunClient slash = closing(CloudRunClient.builder()
                .id("run2")
                .serviceUrl(url)
                .serviceAccountKey(key)
                .build());
        assertThat(slash.chat(ChatRequest.of("hi")).receipt().attributes())
                .as("the URL as the service's label, without the trailing slash")
                .containsExactly(Map.entry("service", e.url()));
    }

    @Test
    void minimumInstancesMeanNoColdStartIsPredictedOrMet() {
        CloudRunEmulator e = emulator(b -> b.minInstances(1).coldStart(Duration.ofSeconds(2)));
        CloudRunClient c = closing(client(e).minInstances(1).build());
        assertThat(c.info().coldStart().predictsColdAfter()).isEmpty();
        Receipt r = c.chat(ChatRequest.of("hi")).receipt();
        assertThat(r.coldStart().any()).isFalse();
        assertThat(e.coldStarts()).isZero();
    }

    @Test
    void instanceTimeIsBilledFromTheColdStartToScaleInAndItsCostSplitsIntoCallsAndIdle() {
        AtomicReference<Instant> now = new AtomicReference<>(Instant.parse("2026-03-01T10:00:00Z"));
        Clock clock = new Clock() {
            @Override
            public ZoneId getZone() {
                return ZoneOffset.UTC;
            }

            @Override
            public Clock withZone(ZoneId zone) {
                return this;
            }

            @Override
            public Instant instant() {
                return now.get();
            }
        };
        CostLedger ledger = new CostLedger(clock, Duration.ofHours(24));
        BigDecimal perSecond = new BigDecimal("0.0002");
        Pricing pricing = Pricing.PerInstanceSecond.perSecond(perSecond, 0, Duration.ofMinutes(15), 10);
        CloudRunEmulator e = emulator(b -> b.coldStart(Duration.ofMillis(1200)));
        CloudRunClient c = closing(client(e)
                .clock(clock)
                .ledger(ledger)
                .pricing(pricing)
                .coldStartThreshold(Duration.ofMillis(500))
                .build());
        Receipt r = c.chat(ChatRequest.of("cold")).receipt();
        assertThat(r.coldStart().observed()).isTrue();
        assertThat(r.costEstimated()).isTrue();
        // The call alone occupied the instance it started: its cost is its own time at the instance rate.
        assertThat(r.cost()).isEqualByComparingTo(perSecond.multiply(seconds(r.instanceTime())));

        // Five minutes later the instance is still billed (idle, before scale-in); twenty minutes later it has
        // been billed for the call plus the fifteen-minute scale-in delay, and no more.
        now.set(now.get().plus(Duration.ofMinutes(5)));
        CapacityReport at5 = ledger.capacity("run").orElseThrow();
        assertThat(at5.instanceTime()).isEqualTo(Duration.ofMinutes(5));
        now.set(now.get().plus(Duration.ofMinutes(15)));
        CapacityReport at20 = ledger.capacity("run").orElseThrow();
        Duration expected = r.totalTime().plus(Duration.ofMinutes(15));
        assertThat(at20.instanceTime()).isEqualTo(expected);
        assertThat(at20.billed()).isEqualByComparingTo(perSecond.multiply(seconds(expected)));
        assertThat(at20.attributed()).isEqualByComparingTo(r.cost());
        assertThat(at20.idle()).isEqualByComparingTo(at20.billed().subtract(r.cost()));
    }

    @Test
    void keepWarmPingsHoldAnInstanceAndSayWhatThatCosts() throws Exception {
        CloudRunEmulator e = emulator(b -> b.idleTimeout(Duration.ofMillis(600)).coldStart(Duration.ofMillis(300)));
        CloudRunClient c = closing(client(e)
                .idleTimeout(Duration.ofMillis(600))
                .keepWarm(Duration.ofMillis(150))
                .pricing(Pricing.PerInstanceSecond.perSecond(new BigDecimal("0.0002"), 0, Duration.ofMillis(600), 10))
                .build());
        assertThat(c.keepWarmCostPerDay().orElseThrow())
                .isEqualByComparingTo(new BigDecimal("17.28")); // 0.0002 x 86400
        assertThat(c.info().coldStart().predictsColdAfter())
                .as("held warm: no cold start predicted")
                .isEmpty();
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (c.keepWarmPings() < 6 && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertThat(c.keepWarmPings()).isGreaterThanOrEqualTo(6);
        assertThat(e.coldStarts())
                .as("one instance started by the first ping, then kept")
                .isEqualTo(1);
        assertThat(c.chat(ChatRequest.of("warm")).receipt().coldStart().observed())
                .isFalse();
    }

    @Test
    void aPublicServiceTakesNoToken() {
        CloudRunEmulator e = CloudRunEmulator.builder().start();
        closeables.add(e);
        CloudRunClient c =
                closing(CloudRunClient.builder().serviceUrl(e.url()).noAuth().build());
        c.chat(ChatRequest.of("hi"));
        assertThat(e.recorded().get(0).header("authorization")).isNull();
    }

    private static BigDecimal seconds(Duration d) {
        return BigDecimal.valueOf(d.toNanos()).movePointLeft(9);
    }

    private String config(CloudRunEmulator e, String extra) {
        return "providers:\n"
                + "  run:\n"
                + "    type: cloudrun\n"
                + "    serviceUrl: " + e.url() + "\n"
                + "    credentialsFile: " + key + "\n"
                + "    coldStartThreshold: 300ms\n"
                + extra;
    }
}
