package dev.hybridinference.vllm;

import static dev.hybridinference.vllm.VllmClientHttpTest.COMPLETION;
import static dev.hybridinference.vllm.VllmClientHttpTest.USAGE_CHUNK;
import static dev.hybridinference.vllm.VllmClientHttpTest.chunk;
import static dev.hybridinference.vllm.VllmClientHttpTest.sse;
import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The capacity's books balance under concurrent failures: calls are charged their share of instance
 * time, failed attempts included, never their whole duration, so the attributed cost never exceeds the
 * bill and every call is recorded exactly once.
 */
@Timeout(60)
class VllmCostInvariantTest {
    private static final int THREADS = 32;
    private static final int CALLS_PER_THREAD = 15;

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    /** Answers a third of chat calls with a completion (after a short pause), a third 503, a third cut. */
    private MockWebServer flakyReplica() throws Exception {
        MockWebServer s = new MockWebServer();
        toClose.add(s);
        s.setDispatcher(new Dispatcher() {
            @Override
            public MockResponse dispatch(RecordedRequest request) {
                String path = request.getUrl().encodedPath();
                if (!path.equals("/v1/chat/completions")) {
                    return new MockResponse.Builder().code(200).body("").build();
                }
                boolean stream =
                        request.getBody() != null && request.getBody().utf8().contains("\"stream\":true");
                int roll = ThreadLocalRandom.current().nextInt(3);
                MockResponse.Builder b = new MockResponse.Builder()
                        .bodyDelay(ThreadLocalRandom.current().nextInt(2, 15), TimeUnit.MILLISECONDS);
                if (roll == 0) {
                    return b.code(503)
                            .addHeader("Content-Type", "application/json")
                            .body("{\"error\":{\"message\":\"overloaded\",\"code\":503}}")
                            .build();
                }
                if (roll == 1) {
                    return b.onResponseStart(new SocketEffect.CloseSocket(true, false, false))
                            .build();
                }
                if (stream) {
                    return b.addHeader("Content-Type", "text/event-stream")
                            .body(sse(
                                    chunk("{\"role\":\"assistant\",\"content\":\"Hel\"}", null),
                                    chunk("{\"content\":\"lo\"}", "stop"),
                                    USAGE_CHUNK,
                                    "[DONE]"))
                            .build();
                }
                return b.addHeader("Content-Type", "application/json")
                        .body(COMPLETION)
                        .build();
            }
        });
        s.start();
        return s;
    }

    @Test
    void attributedNeverExceedsBilledAndEveryCallIsRecordedOnce() throws Exception {
        MockWebServer a = flakyReplica();
        MockWebServer b = flakyReplica();
        CostLedger ledger = new CostLedger();
        VllmClient client = VllmClient.builder()
                .id("gpu-pool")
                .baseUrls(List.of(a.url("/").toString(), b.url("/").toString()))
                .model("m")
                .scrapeInterval(Duration.ofMillis(50))
                .replicaCooldown(Duration.ofMillis(20))
                .pricing(new Pricing.PerInstanceHour(new BigDecimal("3600"), 2)) // $1 per replica-second
                .ledger(ledger)
                .build();
        toClose.add(client);

        Queue<Receipt> receipts = new ConcurrentLinkedQueue<>();
        Queue<String> violations = new ConcurrentLinkedQueue<>();
        AtomicBoolean running = new AtomicBoolean(true);
        Thread auditor = new Thread(() -> {
            while (running.get()) {
                audit(ledger, violations);
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        auditor.start();

        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<?>> work = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            boolean streaming = t % 2 == 1;
            work.add(pool.submit(() -> {
                go.await();
                for (int i = 0; i < CALLS_PER_THREAD; i++) {
                    receipts.add(streaming ? streamOnce(client) : chatOnce(client));
                }
                return null;
            }));
        }
        go.countDown();
        for (Future<?> f : work) {
            f.get();
        }
        running.set(false);
        auditor.join();
        pool.shutdown();
        audit(ledger, violations);

        assertThat(violations).isEmpty();
        assertThat(receipts).hasSize(THREADS * CALLS_PER_THREAD);
        assertThat(receipts).anyMatch(r -> r.attempts().stream().anyMatch(x -> x.error() != null));
        BigDecimal sum = receipts.stream().map(Receipt::cost).reduce(BigDecimal.ZERO, BigDecimal::add);
        assertThat(ledger.totals().calls()).isEqualTo(THREADS * CALLS_PER_THREAD);
        assertThat(ledger.total()).isEqualByComparingTo(sum);
        CapacityReport report = ledger.capacity("gpu-pool").orElseThrow();
        assertThat(report.attributed()).isEqualByComparingTo(sum);
        assertThat(report.idle().signum()).isGreaterThanOrEqualTo(0);
    }

    private static void audit(CostLedger ledger, Queue<String> violations) {
        CapacityReport r = ledger.capacity("gpu-pool").orElseThrow();
        if (r.attributed().compareTo(r.billed()) > 0 || r.idle().signum() < 0) {
            violations.add("attributed " + r.attributed() + " > billed " + r.billed() + " after " + r.uptime());
        }
    }

    private static Receipt chatOnce(VllmClient client) {
        try {
            return client.chat(ChatRequest.of("hi")).receipt();
        } catch (InferenceException e) {
            return e.partialReceipt().orElseThrow(() -> new AssertionError("failed call without a receipt", e));
        }
    }

    private static Receipt streamOnce(VllmClient client) {
        try (ChatStream s = client.stream(ChatRequest.of("hi"))) {
            for (ChatChunk c : s) {
                assertThat(c).isNotNull();
            }
            return s.response().receipt();
        } catch (InferenceException e) {
            return e.partialReceipt().orElseThrow(() -> new AssertionError("failed stream without a receipt", e));
        }
    }
}
