package dev.hybridinference.vllm;

import static dev.hybridinference.vllm.Closer.await;
import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.testkit.LogCapture;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.logging.Level;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The background monitor outlives whatever its work throws, and picks good values up again. */
@Timeout(30)
class VllmMonitorResilienceTest {
    private final MockWebServer server = new MockWebServer();
    private final AtomicReference<Supplier<MockResponse>> metrics = new AtomicReference<>();
    private final AtomicInteger scrapes = new AtomicInteger();
    private VllmClient client;

    @RegisterExtension
    final Closer closer = new Closer();

    @BeforeEach
    void start() throws Exception {
        server.setDispatcher(new Dispatcher() {
            @Override
            public MockResponse dispatch(RecordedRequest request) {
                if (request.getUrl().encodedPath().equals("/metrics")) {
                    scrapes.incrementAndGet();
                    return metrics.get().get();
                }
                return new MockResponse.Builder().code(200).build();
            }
        });
        closer.closing(server).start();
    }

    private static MockResponse waiting(int n) {
        return new MockResponse.Builder()
                .body("vllm:num_requests_running 1\nvllm:num_requests_waiting " + n + "\n")
                .build();
    }

    private void awaitScrapes(int more) throws InterruptedException {
        int target = scrapes.get() + more;
        await(() -> scrapes.get() >= target);
    }

    private VllmClient monitored(Clock clock) {
        VllmClient.Builder b = VllmClient.builder()
                .baseUrl(server.url("/").toString())
                .model("m")
                .scrapeInterval(Duration.ofMillis(10))
                .scrapeTimeout(Duration.ofSeconds(1));
        if (clock != null) {
            b.clock(clock);
        }
        return closer.closing(b.build());
    }

    @Test
    void garbageErrorsAndCutConnectionsOnMetricsDoNotStopTheMonitor() throws Exception {
        metrics.set(() -> waiting(2));
        client = monitored(null);
        await(() -> client.replicas().get(0).waiting() == 2.0);

        AtomicInteger turn = new AtomicInteger();
        metrics.set(() -> {
            switch (turn.getAndIncrement() % 4) {
                case 0:
                    return new MockResponse.Builder()
                            .body("\u0000\u0001{{{ vllm:num_requests_waiting{ \"unterminated\n# \n=== NaN NaN\n")
                            .build();
                case 1:
                    return new MockResponse.Builder()
                            .code(500)
                            .body("internal error")
                            .build();
                case 2:
                    return new MockResponse.Builder()
                            .onResponseStart(new SocketEffect.CloseSocket(true, false, false))
                            .build();
                default:
                    return new MockResponse.Builder()
                            .body("vllm:num_requests_waiting " + "9".repeat(400) + "\n")
                            .build();
            }
        });
        awaitScrapes(12);
        assertThat(client.replicas().get(0).up()).isTrue();

        metrics.set(() -> waiting(7));
        await(() -> client.replicas().get(0).waiting() == 7.0);
        assertThat(client.replicas().get(0).loadSignal()).isEqualTo("vllm");
    }

    @Test
    void anErrorThrownInsideAPassDoesNotCancelTheScheduleAndIsLoggedOnce() throws Exception {
        // The client's clock dates every scrape; make it throw an Error for a while, as anything deep in a
        // pass might (an OutOfMemoryError on a huge body, say).
        AtomicBoolean broken = new AtomicBoolean(true);
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
                if (broken.get() && Thread.currentThread().getName().contains("monitor")) {
                    throw new AssertionError("simulated failure inside the monitor");
                }
                return Instant.now();
            }
        };
        metrics.set(() -> waiting(4));
        try (LogCapture logs = LogCapture.start()) {
            client = monitored(clock);
            awaitScrapes(10);
            assertThat(client.replicas().get(0).scrapedAt()).isNull();
            assertThat(client.replicas().get(0).loadSignal()).isEqualTo("none");
            assertThat(client.replicas().get(0).loadSignalReason()).contains("AssertionError");

            broken.set(false);
            await(() -> client.replicas().get(0).waiting() == 4.0);
            assertThat(logs.lines(Level.WARNING))
                    .filteredOn(l -> l.contains("monitoring replica") && l.contains("AssertionError"))
                    .hasSize(1);
            // The recovery line is written at the end of the pass that read the values: wait for it.
            await(() -> logs.lines(Level.INFO).stream().anyMatch(l -> l.contains("works again")));
        }
    }
}
