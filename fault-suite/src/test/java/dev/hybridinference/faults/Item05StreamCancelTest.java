package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Item 5: cancelling a stream, at any point and from any number of threads at once, ends it exactly once:
 * a pushed stream's handler gets exactly one terminal callback, a pulled stream's reader one outcome, and
 * a cancelled call carries a partial receipt that is recorded in the ledger once.
 */
@FaultItem(value = 5, title = "Push-stream cancel")
class Item05StreamCancelTest extends FaultTestBase {
    private final ScheduledExecutorService timer = Executors.newScheduledThreadPool(4, r -> {
        Thread t = new Thread(r, "cancel-timer");
        t.setDaemon(true);
        return t;
    });
    private FaultServer server;
    private InferenceClient client;

    @BeforeEach
    void start() {
        server = server().answerTokens(20).chunkDelay(Duration.ofMillis(4));
        CostLedger ledger = new CostLedger();
        client = load(Yaml.single(server.baseUrl()), ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);
    }

    @AfterEach
    void stopTimer() {
        timer.shutdownNow();
    }

    @Test
    void sixtyCancelsAtRandomPointsEachEndTheStreamOnce() {
        Random random = new Random(20260527);
        List<PushRecorder> pushes = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            PushRecorder p = probe.startPush(client, ask("stream " + i));
            pushes.add(p);
            if (p.handle == null) {
                continue;
            }
            if (i % 6 == 0) {
                p.handle.cancel(); // before the stream has even opened
            } else {
                timer.schedule(p.handle::cancel, random.nextInt(120), TimeUnit.MILLISECONDS);
            }
            Probe.sleep(random.nextInt(15));
        }
        probe.finishPushes(pushes, Duration.ofSeconds(3));
        Probe.sleep(100); // a second terminal callback would come now
        List<String> bad = new ArrayList<>();
        for (int i = 0; i < pushes.size(); i++) {
            PushRecorder p = pushes.get(i);
            if (p.terminals() != 1) {
                bad.add("stream " + i + ": " + p.terminals() + " terminal callbacks (" + p.describe() + ")");
            } else if (p.error() != null && p.error().partialReceipt().isEmpty()) {
                bad.add("stream " + i + ": " + p.describe() + " without a partial receipt");
            }
        }
        assertThat(bad).as("streams cancelled at random points").isEmpty();
    }

    @Test
    void tenThreadsCancellingOnePushStreamAtOnce() {
        server.answerTokens(100); // 400 ms: long enough that the ten threads always find it running
        List<String> bad = new ArrayList<>();
        for (int round = 0; round < 5; round++) {
            PushRecorder p = probe.startPush(client, ask("round " + round));
            long deadline = System.nanoTime() + Duration.ofSeconds(2).toNanos();
            while (p.chunks() < 3 && p.terminals() == 0 && System.nanoTime() < deadline) {
                Probe.sleep(1);
            }
            if (p.handle != null) {
                Callers.together(10, Duration.ofSeconds(5), n -> p.handle.cancel());
            }
            probe.finishPush(p, Duration.ofSeconds(3));
            Probe.sleep(50);
            if (p.terminals() != 1) {
                bad.add("round " + round + ": " + p.terminals() + " terminal callbacks (" + p.describe() + ")");
            } else if (!(p.error() instanceof CancelledException)) {
                bad.add("round " + round + ": expected onError(CancelledException), got " + p.describe());
            } else if (p.error().partialReceipt().isEmpty()) {
                bad.add("round " + round + ": cancelled without a partial receipt");
            }
        }
        assertThat(bad).as("push streams cancelled by ten threads at once").isEmpty();
    }

    @Test
    void tenThreadsClosingOnePulledStreamWhileItIsRead() {
        server.answerTokens(100);
        List<String> bad = new ArrayList<>();
        for (int round = 0; round < 5; round++) {
            AtomicInteger chunks = new AtomicInteger();
            CountDownLatch reading = new CountDownLatch(1);
            ChatStream[] opened = new ChatStream[1];
            Thread closers = new Thread(() -> {
                try {
                    if (reading.await(3, TimeUnit.SECONDS)) {
                        Callers.together(10, Duration.ofSeconds(5), n -> opened[0].close());
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            closers.setDaemon(true);
            closers.start();
            String prompt = "pull " + round;
            Probe.Outcome<ChatResponse> o = probe.run("pulled stream closed by ten threads", LIMIT, () -> {
                ChatStream s = client.stream(ask(prompt));
                opened[0] = s;
                for (ChatChunk c : s) {
                    if (chunks.incrementAndGet() == 3) {
                        reading.countDown();
                    }
                }
                return s.response();
            });
            if (o.ok()) {
                // it ended before the closers got in: a response is a fine outcome too
                probe.receipt("pulled stream receipt", o.value().receipt());
            } else if (!(o.error() instanceof CancelledException)) {
                bad.add("round " + round + ": the reader got " + o.describe());
            } else if (o.failure().partialReceipt().isEmpty()) {
                bad.add("round " + round + ": cancelled without a partial receipt");
            }
        }
        probe.expectRecords(5);
        assertThat(bad)
                .as("pulled streams closed by ten threads while being read")
                .isEmpty();
    }
}
