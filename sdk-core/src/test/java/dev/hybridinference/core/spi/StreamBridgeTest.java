package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.Usage;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The push-to-pull bridge: its bound, its order, its cancellation, its deadline, under many threads. */
@Timeout(30)
class StreamBridgeTest {
    private static CallContext ctx(Duration timeout) {
        RequestOptions options = timeout == null
                ? RequestOptions.DEFAULTS
                : RequestOptions.builder().timeout(timeout).build();
        return new CallContext(
                "p", ChatRequest.builder().user("four score").options(options).build(), Clock.systemUTC());
    }

    private static ChatChunk chunk(int i) {
        return new ChatChunk("t" + i, null);
    }

    private static ProviderResult done(String text) {
        return ProviderResult.builder()
                .text(text)
                .finishReason(FinishReason.STOP)
                .usage(new Usage(2, 3, 0))
                .model("m")
                .build();
    }

    /** Waits until {@code t} is parked, so that a test knows a blocking call is really blocked. */
    private static void awaitParked(Thread t) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (t.getState() != Thread.State.WAITING && t.getState() != Thread.State.TIMED_WAITING) {
            assertThat(System.nanoTime()).as("thread parked in time").isLessThan(until);
            Thread.sleep(1);
        }
    }

    @Test
    void aBlockingProducerFasterThanTheReaderIsHeldAtTheCapacity() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 8);
        AtomicInteger handedOver = new AtomicInteger();
        AtomicInteger mostHeld = new AtomicInteger();
        Thread producer = new Thread(() -> {
            for (int i = 0; i < 500; i++) {
                if (!bridge.put(chunk(i))) {
                    return;
                }
                handedOver.incrementAndGet();
                mostHeld.accumulateAndGet(bridge.buffered(), Math::max);
            }
            bridge.onComplete(done("all"));
        });
        producer.start();
        // Nobody reads: the producer hands over exactly the capacity, then waits.
        awaitParked(producer);
        assertThat(handedOver).hasValue(8);
        assertThat(bridge.buffered()).isEqualTo(8);

        List<String> got = new ArrayList<>();
        ChatChunk c;
        while ((c = bridge.next()) != null) {
            got.add(c.text());
            mostHeld.accumulateAndGet(bridge.buffered(), Math::max);
        }
        producer.join();
        assertThat(got).hasSize(500).startsWith("t0", "t1").endsWith("t499");
        assertThat(mostHeld.get()).isLessThanOrEqualTo(8);
        assertThat(bridge.result().text()).isEqualTo("all");
    }

    /** A producer that honours demand, as a Reactive-Streams publisher does, on a thread of its own. */
    private static final class DemandProducer implements Runnable {
        final StreamBridge bridge;
        final int total;
        final AtomicLong demand = new AtomicLong();
        final AtomicLong requestedInAll = new AtomicLong();
        final AtomicInteger requests = new AtomicInteger();
        final AtomicInteger refused = new AtomicInteger();
        final AtomicInteger mostHeld = new AtomicInteger();
        private boolean cancelled;

        DemandProducer(StreamBridge bridge, int total) {
            this.bridge = bridge;
            this.total = total;
        }

        void request(long n) {
            assertThat(n).isPositive();
            requests.incrementAndGet();
            requestedInAll.addAndGet(n);
            synchronized (this) {
                demand.addAndGet(n);
                notifyAll();
            }
        }

        /** The subscription's cancel: the producer stops. */
        synchronized void cancel() {
            cancelled = true;
            notifyAll();
        }

        @Override
        public void run() {
            try {
                for (int i = 0; i < total; i++) {
                    synchronized (this) {
                        while (demand.get() == 0 && !cancelled) {
                            wait();
                        }
                        if (cancelled) {
                            return;
                        }
                        demand.decrementAndGet();
                    }
                    if (!bridge.onChunk(chunk(i))) {
                        refused.incrementAndGet();
                        return;
                    }
                    mostHeld.accumulateAndGet(bridge.buffered(), Math::max);
                }
                bridge.onComplete(done("all"));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Test
    void demandGoesUpstreamAsTheReaderMakesRoomAndNeverPastTheCapacity() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 16);
        DemandProducer p = new DemandProducer(bridge, 1000);
        bridge.onDemand(p::request);
        assertThat(p.requestedInAll).as("the first request is the whole room").hasValue(16);
        Thread producer = new Thread(p);
        producer.start();
        int read = 0;
        ChatChunk c;
        while ((c = bridge.next()) != null) {
            assertThat(c.text()).isEqualTo("t" + read);
            read++;
            // Everything requested is either read, waiting in the bridge, or still to come: never more
            // than the reader has room for.
            assertThat(p.requestedInAll.get() - read).isLessThanOrEqualTo(16);
            if (read % 100 == 0) {
                Thread.sleep(2); // a slow reader now and then
            }
        }
        producer.join();
        assertThat(read).isEqualTo(1000);
        assertThat(p.refused).hasValue(0);
        assertThat(p.mostHeld.get()).isLessThanOrEqualTo(16);
        // Demand goes up in batches, not one request per chunk.
        assertThat(p.requests.get()).isLessThan(1000 / 4);
    }

    @Test
    void aProducerThatOverrunsItsDemandFailsTheStreamAfterTheChunksBeforeAndIsCancelled() {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 4);
        AtomicInteger cancels = new AtomicInteger();
        bridge.onCancel(cancels::incrementAndGet);
        bridge.onDemand(n -> {});
        for (int i = 0; i < 4; i++) {
            assertThat(bridge.onChunk(chunk(i))).isTrue();
        }
        assertThat(bridge.onChunk(chunk(4))).isFalse();
        assertThat(bridge.onChunk(chunk(5))).isFalse();
        assertThat(cancels).hasValue(1);
        for (int i = 0; i < 4; i++) {
            assertThat(bridge.next().text()).isEqualTo("t" + i);
        }
        assertThatThrownBy(bridge::next)
                .isInstanceOf(InferenceException.class)
                .hasMessageContaining("more than the 4 chunks");
    }

    @Test
    void anElementWithoutAChunkGivesItsDemandBack() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 2);
        AtomicLong requested = new AtomicLong();
        bridge.onDemand(requested::addAndGet);
        assertThat(requested).hasValue(2);
        bridge.onEmpty();
        bridge.onEmpty();
        // Both units came back empty: the room is whole again and is asked for again.
        assertThat(requested).hasValue(4);
        assertThat(bridge.onChunk(chunk(0))).isTrue();
        bridge.onComplete(done("x"));
        assertThat(bridge.next().text()).isEqualTo("t0");
        assertThat(bridge.next()).isNull();
    }

    @Test
    void closingReachesTheCancelHookExactlyOnceAndWakesTheReaderAndTheProducer() throws Exception {
        for (int round = 0; round < 50; round++) {
            StreamBridge bridge = new StreamBridge(ctx(null), "e", 1);
            AtomicInteger cancels = new AtomicInteger();
            bridge.onCancel(cancels::incrementAndGet);
            bridge.put(chunk(0));
            CompletableFuture<Boolean> blockedPut = CompletableFuture.supplyAsync(() -> bridge.put(chunk(1)));
            bridge.next(); // makes room; the blocked put fills it again
            assertThat(blockedPut.get(10, TimeUnit.SECONDS)).isTrue();
            CompletableFuture<Boolean> blockedAgain = CompletableFuture.supplyAsync(() -> bridge.put(chunk(2)));
            int closers = 8;
            CyclicBarrier together = new CyclicBarrier(closers);
            ExecutorService pool = Executors.newFixedThreadPool(closers);
            try {
                List<Future<?>> all = new ArrayList<>();
                for (int i = 0; i < closers; i++) {
                    all.add(pool.submit(() -> {
                        together.await();
                        bridge.close();
                        return null;
                    }));
                }
                for (Future<?> f : all) {
                    f.get(10, TimeUnit.SECONDS);
                }
            } finally {
                pool.shutdownNow();
            }
            assertThat(blockedAgain.get(10, TimeUnit.SECONDS)).isFalse();
            assertThatThrownBy(bridge::next).isInstanceOf(CancelledException.class);
            assertThat(cancels).hasValue(1);
            assertThat(bridge.onChunk(chunk(3))).isFalse();
            bridge.onError(new IOException("late"));
            assertThat(cancels).hasValue(1);
        }
    }

    @Test
    void aCloseWakesAReaderWaitingOnAnotherThread() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 4);
        AtomicInteger cancels = new AtomicInteger();
        bridge.onCancel(cancels::incrementAndGet);
        CompletableFuture<Throwable> reader = CompletableFuture.supplyAsync(() -> {
            try {
                bridge.next();
                return null;
            } catch (RuntimeException e) {
                return e;
            }
        });
        Thread.sleep(50);
        bridge.close();
        assertThat(reader.get(10, TimeUnit.SECONDS)).isInstanceOf(CancelledException.class);
        bridge.close();
        assertThat(cancels).hasValue(1);
    }

    @Test
    void aCancelHookRegisteredAfterTheCloseRunsAtOnceAndOnce() {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 4);
        bridge.close();
        AtomicInteger cancels = new AtomicInteger();
        bridge.onCancel(cancels::incrementAndGet);
        assertThat(cancels).hasValue(1);
        bridge.onCancel(cancels::incrementAndGet);
        bridge.close();
        assertThat(cancels).hasValue(1);
    }

    @Test
    void noCancelReachesAProducerThatEndedByItselfNorAfterTheEndWasRead() {
        StreamBridge done = new StreamBridge(ctx(null), "e", 4);
        AtomicInteger cancels = new AtomicInteger();
        done.onCancel(cancels::incrementAndGet);
        done.onChunk(chunk(0));
        done.onComplete(done("t0"));
        done.close(); // the reader leaves early, but the producer had finished
        assertThat(cancels).hasValue(0);
        assertThat(done.result().text()).as("the whole result, for the receipt").isEqualTo("t0");

        StreamBridge read = new StreamBridge(ctx(null), "e", 4);
        read.onCancel(cancels::incrementAndGet);
        read.onComplete(done(""));
        assertThat(read.next()).isNull();
        read.close();
        assertThat(cancels).hasValue(0);
    }

    @Test
    void anErrorAfterNChunksReachesTheReaderAfterThoseN() {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 16);
        AtomicInteger cancels = new AtomicInteger();
        bridge.onCancel(cancels::incrementAndGet);
        for (int i = 0; i < 5; i++) {
            bridge.onChunk(chunk(i));
        }
        IOException cause = new IOException("connection reset");
        bridge.onError(cause);
        bridge.onChunk(chunk(99)); // after the end: dropped
        bridge.onComplete(done("ignored"));
        for (int i = 0; i < 5; i++) {
            assertThat(bridge.next().text()).isEqualTo("t" + i);
        }
        assertThatThrownBy(bridge::next)
                .isExactlyInstanceOf(InferenceException.class)
                .hasMessageContaining("p (e)")
                .hasMessageContaining("IOException: connection reset")
                .hasCause(cause);
        // The producer ended by itself: nothing to cancel.
        assertThat(cancels).hasValue(0);
    }

    @Test
    void theProvidersOwnErrorsPassThroughAndOthersAreMappedByItsTable() {
        StreamBridge own = new StreamBridge(ctx(null), "e", 4);
        RateLimitedException limited = new RateLimitedException("slow down", "p", "e", 429, null, null);
        own.onError(limited);
        assertThatThrownBy(own::next).isSameAs(limited);

        StreamBridge mapped = new StreamBridge(ctx(null), "e", 4);
        mapped.mapErrors(t -> t instanceof IOException
                ? new dev.hybridinference.core.ProviderUnavailableException("i/o", "p", "e", 0, null, t)
                : null);
        mapped.onError(new IOException("reset"));
        assertThatThrownBy(mapped::next).isInstanceOf(dev.hybridinference.core.ProviderUnavailableException.class);
    }

    @Test
    void aStalledProducerMeetsTheDeadlineWithATimeoutThatSaysSo() {
        StreamBridge bridge = new StreamBridge(ctx(Duration.ofMillis(150)), "e", 4);
        AtomicInteger cancels = new AtomicInteger();
        bridge.onCancel(cancels::incrementAndGet);
        bridge.onChunk(chunk(0));
        assertThat(bridge.next().text()).isEqualTo("t0");
        long start = System.nanoTime();
        assertThatThrownBy(bridge::next)
                .isInstanceOfSatisfying(
                        InferenceTimeoutException.class,
                        e -> assertThat(e.isDeadlineExceeded()).isTrue())
                .hasMessageContaining("1 chunks received");
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start))
                .as("a sanity bound against a hang")
                .isLessThan(10_000);
        assertThat(cancels).hasValue(1);
        // Later reads say the same; the producer is told the stream is over.
        assertThatThrownBy(bridge::next).isInstanceOf(InferenceTimeoutException.class);
        assertThat(bridge.onChunk(chunk(1))).isFalse();
    }

    @Test
    void aProducerWaitingForRoomIsLetGoAtTheDeadline() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(Duration.ofMillis(150)), "e", 1);
        AtomicInteger cancels = new AtomicInteger();
        bridge.onCancel(cancels::incrementAndGet);
        assertThat(bridge.put(chunk(0))).isTrue();
        assertThat(bridge.put(chunk(1))).as("no room until the deadline").isFalse();
        assertThat(cancels).hasValue(1);
        assertThatThrownBy(bridge::next)
                .isInstanceOfSatisfying(
                        InferenceTimeoutException.class,
                        e -> assertThat(e.isDeadlineExceeded()).isTrue());
    }

    @Test
    void aFinishedAnswerIsReadInFullEvenPastTheDeadline() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(Duration.ofMillis(20)), "e", 4);
        bridge.onChunk(chunk(0));
        bridge.onComplete(done("t0"));
        Thread.sleep(60);
        assertThat(bridge.next().text()).isEqualTo("t0");
        assertThat(bridge.next()).isNull();
    }

    @Test
    void anInterruptedReaderCancelsTheStream() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 4);
        AtomicInteger cancels = new AtomicInteger();
        bridge.onCancel(cancels::incrementAndGet);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicReference<Boolean> flagKept = new AtomicReference<>();
        Thread reader = new Thread(() -> {
            try {
                bridge.next();
            } catch (RuntimeException e) {
                failure.set(e);
                flagKept.set(Thread.currentThread().isInterrupted());
            }
        });
        reader.start();
        awaitParked(reader);
        reader.interrupt();
        reader.join(10_000);
        assertThat(failure.get()).isInstanceOf(CancelledException.class);
        assertThat(flagKept.get()).isTrue();
        assertThat(cancels).hasValue(1);
    }

    @Test
    void beforeTheEndTheResultIsTheProvidersPartialOrAnEstimate() {
        StreamBridge estimated = new StreamBridge(ctx(null), "e", 4);
        assertThat(estimated.result().usage()).isEqualTo(Usage.ZERO);
        estimated.onChunk(new ChatChunk("a", null));
        estimated.onChunk(new ChatChunk("", null));
        estimated.onChunk(new ChatChunk("b", null));
        Usage u = estimated.result().usage();
        assertThat(u.estimated()).isTrue();
        assertThat(u.outputTokens()).as("chunks with text").isEqualTo(2);
        assertThat(u.inputTokens())
                .as("'four score' at four characters a token")
                .isEqualTo(3);

        StreamBridge exact = new StreamBridge(ctx(null), "e", 4);
        exact.partialResult(() -> done("so far"));
        assertThat(exact.result().text()).isEqualTo("so far");
        exact.onComplete(done("whole"));
        assertThat(exact.result().text()).isEqualTo("whole");
    }

    @Test
    void aCapacityOutOfRangeIsRefused() {
        assertThatThrownBy(() -> new StreamBridge(ctx(null), "e", 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new StreamBridge(ctx(null), "e", StreamBridge.MAX_CAPACITY + 1))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void manyStreamsOnManyThreadsEachEndOnceInOrder() throws Exception {
        int streams = 64;
        // A thread for every producer and every reader: a blocked one never holds up another.
        ExecutorService pool = Executors.newCachedThreadPool();
        try {
            List<Future<String>> outcomes = new ArrayList<>();
            for (int s = 0; s < streams; s++) {
                boolean closeEarly = s % 3 == 0;
                boolean fail = s % 3 == 1;
                boolean demand = s % 2 == 0;
                StreamBridge bridge = new StreamBridge(ctx(null), "e", 1 + s % 7);
                AtomicInteger cancels = new AtomicInteger();
                CountDownLatch producerDone = new CountDownLatch(1);
                DemandProducer dp = new DemandProducer(bridge, 300);
                bridge.onCancel(() -> {
                    cancels.incrementAndGet();
                    dp.cancel();
                });
                if (demand) {
                    bridge.onDemand(dp::request);
                }
                pool.submit(() -> {
                    try {
                        if (demand) {
                            dp.run();
                        } else {
                            for (int i = 0; i < 300; i++) {
                                if (fail && i == 200) {
                                    bridge.onError(new IOException("cut"));
                                    return;
                                }
                                if (!bridge.put(chunk(i))) {
                                    return;
                                }
                            }
                            bridge.onComplete(done("all"));
                        }
                    } finally {
                        producerDone.countDown();
                    }
                });
                outcomes.add(pool.submit(() -> {
                    int read = 0;
                    try {
                        ChatChunk c;
                        while ((c = bridge.next()) != null) {
                            assertThat(c.text()).isEqualTo("t" + read);
                            read++;
                            if (closeEarly
                                    && read == 50 + ThreadLocalRandom.current().nextInt(50)) {
                                bridge.close();
                            }
                        }
                    } catch (CancelledException e) {
                        assertThat(closeEarly).isTrue();
                        assertThat(producerDone.await(10, TimeUnit.SECONDS)).isTrue();
                        assertThat(cancels).hasValue(1);
                        return "closed";
                    } catch (InferenceException e) {
                        assertThat(fail && !demand).isTrue();
                        assertThat(read).isEqualTo(200);
                        return "failed";
                    }
                    assertThat(read).isEqualTo(300);
                    assertThat(cancels).hasValue(0);
                    return "done";
                }));
            }
            List<String> seen = new ArrayList<>();
            for (Future<String> f : outcomes) {
                seen.add(f.get(20, TimeUnit.SECONDS));
            }
            assertThat(seen).contains("closed", "failed", "done");
        } finally {
            pool.shutdownNow();
        }
    }

    // ---------------------------------------------------------------- batches

    @Test
    void aBurstIsTakenInOneTurnAndHandedOutInOrder() {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 16);
        for (int i = 0; i < 10; i++) {
            assertThat(bridge.onChunk(chunk(i))).isTrue();
        }
        assertThat(bridge.next().text()).isEqualTo("t0");
        // The rest of the burst is the reader's batch now; what the producer adds meanwhile queues behind it.
        assertThat(bridge.onChunk(chunk(10))).isTrue();
        assertThat(bridge.onChunk(chunk(11))).isTrue();
        for (int i = 1; i < 12; i++) {
            assertThat(bridge.next().text()).isEqualTo("t" + i);
        }
        bridge.onComplete(done("all"));
        assertThat(bridge.next()).isNull();
        assertThat(bridge.result().text()).isEqualTo("all");
    }

    @Test
    void aBatchHoldsItsRoomUntilHandedOutThenTheRoomGoesBackAsOneRequest() {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 8);
        List<Long> requests = new ArrayList<>();
        bridge.onDemand(requests::add);
        assertThat(requests).containsExactly(8L);
        for (int i = 0; i < 8; i++) {
            assertThat(bridge.onChunk(chunk(i))).isTrue();
        }
        for (int read = 0; read < 5; read++) {
            assertThat(bridge.next().text()).isEqualTo("t" + read);
            // The batch's chunks not yet handed out still count against the bound: no new demand yet.
            assertThat(requests).containsExactly(8L);
            assertThat(bridge.buffered()).isLessThanOrEqualTo(8);
        }
        // Half the room handed out since the reader took the batch: its next turn of the lock gives back the
        // six handed out, in one request.
        assertThat(bridge.next().text()).isEqualTo("t5");
        assertThat(requests).containsExactly(8L, 6L);
        for (int i = 8; i < 14; i++) {
            assertThat(bridge.onChunk(chunk(i))).isTrue();
        }
        assertThat(bridge.buffered()).isEqualTo(8);
        int read = 6;
        while (read < 14) {
            assertThat(bridge.next().text()).isEqualTo("t" + read);
            read++;
            long requested = requests.stream().mapToLong(Long::longValue).sum();
            assertThat(requested - read)
                    .as("what was asked for and not read: never past the bound")
                    .isLessThanOrEqualTo(8);
            assertThat(bridge.buffered()).isLessThanOrEqualTo(8);
        }
        assertThat(requests).as("demand in batches, not a request per chunk").hasSizeLessThanOrEqualTo(4);
        bridge.onComplete(done("all"));
        assertThat(bridge.next()).isNull();
    }

    @Test
    void aBlockedProducerGetsTheRoomOfABatchOnceItIsHandedOut() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 4);
        for (int i = 0; i < 4; i++) {
            assertThat(bridge.put(chunk(i))).isTrue();
        }
        assertThat(bridge.next().text()).isEqualTo("t0");
        // t0 was handed out: its room is free. t1 to t3 are the reader's batch and still hold theirs.
        assertThat(bridge.put(chunk(4))).isTrue();
        AtomicReference<Boolean> put = new AtomicReference<>();
        Thread producer = new Thread(() -> put.set(bridge.put(chunk(5))));
        producer.start();
        awaitParked(producer);
        assertThat(bridge.next().text()).isEqualTo("t1");
        assertThat(bridge.next().text()).isEqualTo("t2");
        assertThat(bridge.buffered()).isEqualTo(4);
        // The last of the batch: the reader's turn of the lock frees the batch's room and takes t4.
        assertThat(bridge.next().text()).isEqualTo("t3");
        producer.join(10_000);
        assertThat(put.get()).isTrue();
        assertThat(bridge.next().text()).isEqualTo("t4");
        assertThat(bridge.next().text()).isEqualTo("t5");
        assertThat(bridge.buffered()).isZero();
    }

    @Test
    void aCloseWhileTheProducerIsMidBurstCancelsAndEndsTheReadersBatch() throws Exception {
        for (int round = 0; round < 20; round++) {
            StreamBridge bridge = new StreamBridge(ctx(null), "e", 64);
            DemandProducer p = new DemandProducer(bridge, 100_000);
            AtomicInteger cancels = new AtomicInteger();
            bridge.onCancel(() -> {
                cancels.incrementAndGet();
                p.cancel();
            });
            bridge.onDemand(p::request);
            Thread producer = new Thread(p);
            producer.start();
            int read = 0;
            while (read < 30) {
                assertThat(bridge.next().text()).isEqualTo("t" + read);
                read++;
            }
            // The reader's batch may still hold chunks: a close ends the stream for it all the same.
            bridge.close();
            assertThatThrownBy(bridge::next).isInstanceOf(CancelledException.class);
            producer.join(10_000);
            assertThat(producer.isAlive()).isFalse();
            assertThat(cancels).hasValue(1);
            assertThat(p.mostHeld.get()).isLessThanOrEqualTo(64);
            assertThatThrownBy(bridge::next).isInstanceOf(CancelledException.class);
        }
    }

    @Test
    void anErrorAfterABurstComesAfterEveryChunkOfTheBurst() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 32);
        AtomicLong requested = new AtomicLong();
        bridge.onDemand(requested::addAndGet);
        CountDownLatch firstRead = new CountDownLatch(1);
        IOException cause = new IOException("reset mid-burst");
        Thread producer = new Thread(() -> {
            for (int i = 0; i < 20; i++) {
                bridge.onChunk(chunk(i));
                if (i == 5) {
                    try {
                        firstRead.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
            bridge.onError(cause);
        });
        producer.start();
        List<String> got = new ArrayList<>();
        Throwable failure = null;
        try {
            ChatChunk c;
            while ((c = bridge.next()) != null) {
                got.add(c.text());
                firstRead.countDown();
            }
        } catch (InferenceException e) {
            failure = e;
        }
        producer.join(10_000);
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            expected.add("t" + i);
        }
        assertThat(got).isEqualTo(expected);
        assertThat(failure).isNotNull().hasCause(cause);
        assertThat(requested.get()).isLessThanOrEqualTo(32 + 20);
    }

    @Test
    void aSlowProducerIsWaitedForAndTheReaderParksRatherThanSpinning() throws Exception {
        StreamBridge bridge = new StreamBridge(ctx(null), "e", 8);
        List<String> got = new ArrayList<>();
        Thread reader = new Thread(() -> {
            ChatChunk c;
            while ((c = bridge.next()) != null) {
                synchronized (got) {
                    got.add(c.text());
                }
            }
        });
        reader.start();
        for (int i = 0; i < 5; i++) {
            // Nothing comes: the reader's spin is bounded, so it parks.
            awaitParked(reader);
            assertThat(bridge.onChunk(chunk(i))).isTrue();
            Thread.sleep(2);
        }
        bridge.onComplete(done("slow"));
        reader.join(10_000);
        assertThat(reader.isAlive()).isFalse();
        assertThat(got).containsExactly("t0", "t1", "t2", "t3", "t4");
        assertThat(bridge.result().text()).isEqualTo("slow");
    }
}
