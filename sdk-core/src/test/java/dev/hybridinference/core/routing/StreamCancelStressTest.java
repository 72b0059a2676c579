package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.cost.CostLedger;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Streams cancelled at random moments (before they open, while they open, mid-stream, after their end)
 * from one to three threads at once. Every push stream must end with exactly one terminal callback, soon;
 * a cancelled one with a {@link CancelledException}; every call a provider saw is in the ledger once.
 * Random but reproducible: the seed is fixed, and each failure names its try.
 */
@Timeout(120)
class StreamCancelStressTest {
    private static final int TRIES = 200;
    private static final String TEXT = "one two three four five six seven eight nine ten eleven twelve thirteen";

    private final CostLedger ledger = new CostLedger();
    private final ExecutorService cancellers = Executors.newCachedThreadPool();
    private final Random random = new Random(20250101L);

    @AfterEach
    void stopCancellers() {
        cancellers.shutdownNow();
    }

    /** What one push stream's handler saw. */
    private static final class Seen implements StreamHandler {
        final AtomicInteger chunks = new AtomicInteger();
        final AtomicInteger terminals = new AtomicInteger();
        final AtomicReference<Object> end = new AtomicReference<>();
        final CountDownLatch ended = new CountDownLatch(1);
        volatile Cancellable handle;
        volatile int cancelAtChunk = -1;

        @Override
        public void onChunk(ChatChunk chunk) {
            if (chunks.incrementAndGet() == cancelAtChunk) {
                while (handle == null) {
                    Thread.onSpinWait();
                }
                handle.cancel();
            }
        }

        @Override
        public void onComplete(ChatResponse response) {
            terminal(response);
        }

        @Override
        public void onError(InferenceException error) {
            terminal(error);
        }

        private void terminal(Object what) {
            terminals.incrementAndGet();
            end.compareAndSet(null, what);
            ended.countDown();
        }
    }

    /** Spins for up to {@code maxMicros}: finer than a sleep, so that cancels land anywhere. */
    private static void spin(long micros) {
        long until = System.nanoTime() + micros * 1000;
        while (System.nanoTime() < until) {
            Thread.onSpinWait();
        }
    }

    /** Runs {@link #TRIES} push streams with cancels at random points; returns what each handler saw. */
    private List<Seen> pushAndCancel(InferenceClient client) throws Exception {
        List<Seen> all = new ArrayList<>();
        for (int t = 0; t < TRIES; t++) {
            Seen seen = new Seen();
            int how = random.nextInt(4);
            int threads = 1 + random.nextInt(3);
            long delayMicros = random.nextInt(400);
            if (how == 2) {
                seen.cancelAtChunk = 1 + random.nextInt(12);
            }
            seen.handle = client.stream(ChatRequest.of(TEXT), seen);
            if (how == 0) {
                seen.handle.cancel(); // most likely before the stream opens
            } else if (how == 1) {
                CyclicBarrier start = new CyclicBarrier(threads);
                List<Future<?>> fs = new ArrayList<>();
                for (int i = 0; i < threads; i++) {
                    fs.add(cancellers.submit(() -> {
                        start.await();
                        spin(delayMicros);
                        seen.handle.cancel();
                        return null;
                    }));
                }
                for (Future<?> f : fs) {
                    f.get(5, TimeUnit.SECONDS);
                }
            }
            assertThat(seen.ended.await(5, TimeUnit.SECONDS))
                    .as("try %d (way %d, %d threads): a terminal callback within 5 s", t, how, threads)
                    .isTrue();
            if (how == 3) {
                seen.handle.cancel(); // after the end: must add nothing
                seen.handle.cancel();
            }
            all.add(seen);
        }
        Thread.sleep(50); // room for a wrong second callback to arrive before counting
        for (int t = 0; t < all.size(); t++) {
            Seen s = all.get(t);
            assertThat(s.terminals).as("try %d: terminal callbacks", t).hasValue(1);
            Object end = s.end.get();
            if (end instanceof InferenceException) {
                assertThat(end).as("try %d", t).isInstanceOf(CancelledException.class);
            } else {
                assertThat(((ChatResponse) end).text()).as("try %d", t).isEqualTo(TEXT);
            }
        }
        // The random cancels must have hit every phase: before any chunk, mid-stream, and not at all.
        assertThat(all).anySatisfy(s -> assertThat(s.end.get()).isInstanceOf(ChatResponse.class));
        assertThat(all).anySatisfy(s -> {
            assertThat(s.end.get()).isInstanceOf(CancelledException.class);
            assertThat(s.chunks.get()).isPositive();
        });
        assertThat(all).anySatisfy(s -> {
            assertThat(s.end.get()).isInstanceOf(CancelledException.class);
            assertThat(s.chunks.get()).isZero();
        });
        return all;
    }

    private static boolean cancelledBeforeOpening(Seen s) {
        return s.end.get() instanceof CancelledException
                && ((CancelledException) s.end.get()).getMessage().contains("before it opened");
    }

    /** A routing policy that counts the calls it is told of. */
    private static final class CountingPolicy implements RoutingPolicy {
        final AtomicInteger recorded = new AtomicInteger();

        @Override
        public Route route(ChatRequest request, Map<String, MemberState> members) {
            return new Route(List.copyOf(members.keySet()), "members in order", null);
        }

        @Override
        public void recorded(ChatRequest request, Receipt receipt) {
            recorded.incrementAndGet();
        }
    }

    /** A scripted member: its chunks are all there at once, so cancels race with a reader that never waits. */
    private InferenceClient scripted() {
        ScriptedMember member = ScriptedMember.perToken("m", ledger);
        for (int i = 0; i < TRIES; i++) {
            member.then(() -> TEXT);
        }
        return member;
    }

    /** Whether the call reached the member: it answered, or its partial receipt has an attempt. */
    private static boolean reachedTheMember(Object end) {
        return !(end instanceof InferenceException)
                || !((InferenceException) end)
                        .partialReceipt()
                        .orElseThrow()
                        .attempts()
                        .isEmpty();
    }

    private void pushThroughTheCompositeClient(InferenceClient member) throws Exception {
        CountingPolicy policy = new CountingPolicy();
        List<Seen> all;
        try (HybridClient c =
                HybridClient.builder().member("m", member).policy(policy).build()) {
            all = pushAndCancel(c);
            for (int t = 0; t < all.size(); t++) {
                Object end = all.get(t).end.get();
                if (end instanceof InferenceException) {
                    assertThat(((InferenceException) end).partialReceipt())
                            .as("try %d: partial receipt", t)
                            .isPresent();
                }
            }
            assertThat(policy.recorded).as("calls the policy heard of").hasValue(TRIES);
            assertThat(c.members().get("m").inFlight()).isZero();
        }
        long reached = all.stream().filter(s -> reachedTheMember(s.end.get())).count();
        assertThat(ledger.totals().calls()).as("ledger entries").isEqualTo(reached);
    }

    @Test
    void pushStreamsOfTheCompositeClientEndOnceWithAPartialReceipt() throws Exception {
        pushThroughTheCompositeClient(scripted());
    }

    @Test
    void pushStreamsOfTheCompositeClientOverABlockingProviderEndOnceWithAPartialReceipt() throws Exception {
        pushThroughTheCompositeClient(echo());
    }

    @Test
    void pushStreamsOfAProviderEndOnceAndAreRecordedOnce() throws Exception {
        try (InferenceClient echo = echo()) {
            List<Seen> all = pushAndCancel(echo);
            long neverOpened = all.stream()
                    .filter(StreamCancelStressTest::cancelledBeforeOpening)
                    .count();
            assertThat(ledger.totals().calls()).as("ledger entries").isEqualTo(TRIES - neverOpened);
        }
    }

    @Test
    void pushStreamsOfAProviderCancelledAfterOpeningCarryAPartialReceipt() throws Exception {
        try (InferenceClient echo = echo()) {
            List<Seen> all = pushAndCancel(echo);
            for (int t = 0; t < all.size(); t++) {
                Seen s = all.get(t);
                if (s.end.get() instanceof InferenceException && !cancelledBeforeOpening(s)) {
                    assertThat(((InferenceException) s.end.get()).partialReceipt())
                            .as("try %d: partial receipt", t)
                            .isPresent();
                }
            }
        }
    }

    private InferenceClient echo() {
        return InferenceClients.loader()
                .ledger(ledger)
                .load("providers:\n  e: {type: echo, delay: 1ms,"
                        + " pricing: {type: per-token, inputPerMillion: 1, outputPerMillion: 1}}\n");
    }

    /** Reads a pull stream on one thread while another closes it at a random moment. */
    private Object readWhileClosing(InferenceClient client) throws Exception {
        ChatStream s = client.stream(ChatRequest.of(TEXT));
        long delayMicros = random.nextInt(300);
        Future<Object> reader = cancellers.submit(() -> {
            StringBuilder sb = new StringBuilder();
            try {
                for (ChatChunk chunk : s) {
                    sb.append(chunk.text());
                }
                return sb.length() == TEXT.length() ? s.response() : "closed after " + sb.length() + " chars";
            } catch (InferenceException e) {
                return e;
            }
        });
        spin(delayMicros);
        s.close();
        return reader.get(5, TimeUnit.SECONDS);
    }

    private void pullThroughTheCompositeClient(InferenceClient member) throws Exception {
        CountingPolicy policy = new CountingPolicy();
        try (HybridClient c =
                HybridClient.builder().member("m", member).policy(policy).build()) {
            for (int t = 0; t < TRIES / 2; t++) {
                Object end = readWhileClosing(c);
                if (end instanceof InferenceException) {
                    assertThat(end).as("try %d", t).isInstanceOf(CancelledException.class);
                    assertThat(((InferenceException) end).partialReceipt())
                            .as("try %d: partial receipt", t)
                            .isPresent();
                }
            }
            assertThat(policy.recorded).hasValue(TRIES / 2);
            assertThat(c.members().get("m").inFlight()).isZero();
        }
        assertThat(ledger.totals().calls()).isEqualTo(TRIES / 2);
    }

    @Test
    void aPullStreamClosedWhileReadIsRecordedOnceWithAPartialReceipt() throws Exception {
        pullThroughTheCompositeClient(scripted());
    }

    @Test
    void aPullStreamOverABlockingProviderClosedWhileReadIsRecordedOnceWithAPartialReceipt() throws Exception {
        pullThroughTheCompositeClient(echo());
    }

    @Test
    void aProvidersPullStreamClosedWhileReadIsRecordedOnce() throws Exception {
        try (InferenceClient echo = echo()) {
            for (int t = 0; t < TRIES / 4; t++) {
                Object end = readWhileClosing(echo);
                if (end instanceof InferenceException) {
                    assertThat(end).as("try %d", t).isInstanceOf(CancelledException.class);
                }
            }
        }
        assertThat(ledger.totals().calls()).isEqualTo(TRIES / 4);
    }
}
