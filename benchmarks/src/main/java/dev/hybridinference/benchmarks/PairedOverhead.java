package dev.hybridinference.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The method the emulator-based overhead reports share ({@link SageMakerOverheadReport}, {@link
 * CloudRunOverheadReport}): the provider ({@code Sdk}) and a bare client ({@code Bare}) call the same
 * emulator in the same JVM, in paired, interleaved blocks, blocking and streaming, on 1 and 4 threads; then
 * the bytes and CPU time per call of the calling thread and of every client thread.
 *
 * <p>A report supplies the four calls, each returning the answer's text: the provider and the bare client,
 * blocking and streaming. Every call's answer is checked to have the expected number of words. A variant
 * names a mode and a side: {@code blockingSdk}, {@code blockingBare}, {@code streamingSdk}, {@code
 * streamingBare}.
 */
final class PairedOverhead {
    /** The sides of each mode, in variant names: the provider, then the bare client. */
    static final String[] KINDS = {"Sdk", "Bare"};

    /** The modes, in variant names. */
    static final String[] MODES = {"blocking", "streaming"};

    private static final int[] THREADS = {1, 4};

    /**
     * Rounds of the paired check that are measured, after {@link #WARM_ROUNDS} that are not. Many short rounds
     * rather than a few long ones: the two sides of a round run a few milliseconds apart, so a burst of
     * load from elsewhere on the machine mostly hits both or neither, and a round it hits one side of is
     * an outlier that the median of the per-round ratios ignores.
     */
    private static final int ROUNDS = 300;

    private static final int WARM_ROUNDS = 20;

    /** Calls of each side in a round's block, per thread: blocking, then streaming. */
    private static final int[] BLOCK = {10, 4};

    /** Alternating blocks of each side in the allocation measurement. */
    private static final int ALLOCATION_BLOCKS = 40;

    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** One call of one side; thread-safe. */
    @FunctionalInterface
    interface Call {
        /** Calls once; the answer's text, or empty when the answer was not complete. */
        String text() throws Exception;
    }

    private final int words;
    private final Map<String, Call> variants = new HashMap<>();
    private final int warmBlocking;
    private final int warmStreaming;
    private final String[] emulatorThreads;

    /**
     * @param words the words every answer has
     * @param sdk the provider's calls, blocking then streaming
     * @param bare the bare client's calls, blocking then streaming
     * @param warm blocking, then streaming calls of each side before anything is measured
     * @param emulatorThreads name prefixes of the threads that serve the calls (the emulator's), left out of
     *     the client threads
     */
    PairedOverhead(int words, Call[] sdk, Call[] bare, int[] warm, String... emulatorThreads) {
        this.words = words;
        for (int m = 0; m < MODES.length; m++) {
            variants.put(MODES[m] + KINDS[0], sdk[m]);
            variants.put(MODES[m] + KINDS[1], bare[m]);
        }
        this.warmBlocking = warm[0];
        this.warmStreaming = warm[1];
        this.emulatorThreads = emulatorThreads.clone();
    }

    /** Calls {@code variant} once and fails when its answer does not have the expected words. */
    void call(String variant) throws Exception {
        Call c = variants.get(variant);
        if (c == null) {
            throw new IllegalArgumentException("no variant " + variant + "; one of " + variants.keySet());
        }
        check(variant, c.text(), words);
    }

    /** Fails unless {@code text}, what {@code what} answered, is {@code words} words. */
    static void check(String what, String text, int words) {
        if (text.isEmpty() || text.split(" ", -1).length != words) {
            throw new IllegalStateException(what + " returned an unexpected answer: " + text);
        }
    }

    /**
     * A report's main: with {@code loop variant [seconds]}, calls one variant in a loop on one thread for a
     * profiler to watch (default 20 s, after 5 s of warm-up); otherwise prints {@code header}, warms up, and
     * {@code [repeats]} times (default 1) runs the paired check, the allocation, {@code allocationNote} and
     * {@code extra} (null for none).
     */
    void main(String[] args, Callable<String> header, String allocationNote, Callable<String> extra) throws Exception {
        if (args.length > 0 && args[0].equals("loop")) {
            String variant = args.length > 1 ? args[1] : "blockingSdk";
            long seconds = args.length > 2 ? Long.parseLong(args[2]) : 20;
            loop(variant, 5);
            long n = loop(variant, seconds);
            System.out.printf(Locale.ROOT, "%s: %d calls, %.1f us/call%n", variant, n, seconds * 1e6 / n);
            return;
        }
        int repeats = args.length > 0 ? Integer.parseInt(args[0]) : 1;
        System.out.print(header.call());
        System.out.print(warmUp());
        for (int i = 1; i <= repeats; i++) {
            System.out.printf(Locale.ROOT, "%n=== run %d of %d ===%n", i, repeats);
            System.out.print(paired());
            System.out.flush();
            System.out.print(allocation());
            System.out.print(allocationNote);
            System.out.flush();
            if (extra != null) {
                System.out.print(extra.call());
                System.out.flush();
            }
        }
    }

    /** Calls {@code variant} for {@code seconds}; the number of calls. */
    private long loop(String variant, long seconds) throws Exception {
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        long n = 0;
        while (System.nanoTime() < end) {
            for (int i = 0; i < 100; i++) {
                call(variant);
            }
            n += 100;
        }
        return n;
    }

    /** Compiles every side's path before anything is measured, interleaved so that both warm alike. */
    String warmUp() throws Exception {
        long t0 = System.nanoTime();
        for (String mode : MODES) {
            int n = mode.equals("blocking") ? warmBlocking : warmStreaming;
            for (int i = 0; i < n; i++) {
                for (String kind : KINDS) {
                    call(mode + kind);
                }
            }
        }
        return String.format(
                Locale.ROOT,
                "warm-up: %d blocking and %d streaming calls of each side, %.1f s%n",
                warmBlocking,
                warmStreaming,
                (System.nanoTime() - t0) / 1e9);
    }

    /**
     * The paired check: each round runs a short block of calls of each side in turn on every thread ({@link
     * #BLOCK}), the order alternating with the round and the thread, and times each call. Prints the sdk/bare
     * ratio of the means and of the medians over all measured calls, and the median and quartiles of the
     * per-round ratios (each round's sdk median over its bare median; the spread is the machine's noise).
     * The median of the per-round ratios is the figure to read on a machine that other work shares: it
     * compares calls made milliseconds apart.
     */
    String paired() throws Exception {
        long t0 = System.nanoTime();
        StringBuilder out = new StringBuilder(String.format(
                Locale.ROOT,
                "paired: %d rounds of alternating blocks (%d blocking or %d streaming calls of each side per thread)"
                        + " after %d warm-up rounds, same JVM; sdk/bare ratios of means and of medians over all calls,"
                        + " and the median [quartiles] of the per-round ratios of medians%n",
                ROUNDS,
                BLOCK[0],
                BLOCK[1],
                WARM_ROUNDS));
        for (int threads : THREADS) {
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                for (String mode : MODES) {
                    int block = mode.equals("blocking") ? BLOCK[0] : BLOCK[1];
                    int perRound = block * threads;
                    long[][] all = new long[KINDS.length][ROUNDS * perRound];
                    double[] ratios = new double[ROUNDS];
                    for (int round = 0; round < WARM_ROUNDS + ROUNDS; round++) {
                        long[][] t = timeRound(mode, round, block, threads, pool);
                        if (round >= WARM_ROUNDS) {
                            int r = round - WARM_ROUNDS;
                            for (int k = 0; k < KINDS.length; k++) {
                                System.arraycopy(t[k], 0, all[k], r * perRound, perRound);
                            }
                            ratios[r] = median(t[0]) / median(t[1]);
                        }
                    }
                    double[] mean = new double[KINDS.length];
                    double[] median = new double[KINDS.length];
                    for (int k = 0; k < KINDS.length; k++) {
                        mean[k] = Arrays.stream(all[k]).average().orElse(0) / 1e3;
                        median[k] = median(all[k]) / 1e3;
                    }
                    double ratioMedian = median(ratios); // sorts them, for the quartiles too
                    out.append(String.format(
                            Locale.ROOT,
                            "  %d thread(s) %-10s sdk mean %7.1f us, median %7.1f us; bare mean %7.1f us, median"
                                    + " %7.1f us; ratio of means %.3f, of medians %.3f; per-round ratio median %.3f"
                                    + " [%.3f, %.3f]%n",
                            threads,
                            mode + ":",
                            mean[0],
                            median[0],
                            mean[1],
                            median[1],
                            mean[0] / mean[1],
                            median[0] / median[1],
                            ratioMedian,
                            ratios[ROUNDS / 4],
                            ratios[3 * ROUNDS / 4]));
                }
            } finally {
                pool.shutdown();
            }
        }
        out.append(String.format(Locale.ROOT, "  (paired check took %.1f s)%n", (System.nanoTime() - t0) / 1e9));
        return out.toString();
    }

    /** The median of {@code v}, as {@link #median(double[])}. */
    private static double median(long[] v) {
        return median(Arrays.stream(v).asDoubleStream().toArray());
    }

    /** The median of {@code v}, which it sorts: the mean of the middle two when there are an even number. */
    private static double median(double[] v) {
        Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
    }

    /**
     * The latency in nanoseconds of every call of each side ({@link #KINDS} order): on each of {@code
     * threads} threads, a block of {@code block} calls of each side in turn, the order alternating with the
     * round and the thread.
     */
    private long[][] timeRound(String mode, int round, int block, int threads, ExecutorService pool) throws Exception {
        List<Future<long[][]>> parts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int offset = t;
            parts.add(pool.submit(() -> {
                long[][] nanos = new long[KINDS.length][block];
                for (int k = 0; k < KINDS.length; k++) {
                    int v = (round + offset + k) % KINDS.length;
                    for (int i = 0; i < block; i++) {
                        long t0 = System.nanoTime();
                        call(mode + KINDS[v]);
                        nanos[v][i] = System.nanoTime() - t0;
                    }
                }
                return nanos;
            }));
        }
        long[][] all = new long[KINDS.length][block * threads];
        for (int t = 0; t < threads; t++) {
            long[][] nanos = parts.get(t).get();
            for (int k = 0; k < KINDS.length; k++) {
                System.arraycopy(nanos[k], 0, all[k], t * block, block);
            }
        }
        return all;
    }

    /**
     * Bytes allocated and CPU time used per call, for each side, in alternating blocks on one thread: by the
     * calling thread, and by every thread of the JVM but the emulator's (the calling thread, the clients' I/O
     * and housekeeping threads; threads that end during a block are missed). Allocation does not depend on
     * the machine's load; CPU time depends on it much less than latency does.
     */
    String allocation() throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        StringBuilder out = new StringBuilder(String.format(
                Locale.ROOT,
                "per call, 1 thread, %d alternating blocks of each side (blocking 400 calls a block, streaming 100):"
                        + " calling thread, and all threads but the emulator's%n",
                ALLOCATION_BLOCKS));
        ClientThreads client = new ClientThreads(mx, emulatorThreads);
        for (String mode : MODES) {
            int block = mode.equals("blocking") ? 400 : 100;
            long[] bytes = new long[KINDS.length];
            long[] cpu = new long[KINDS.length];
            long[] allBytes = new long[KINDS.length];
            long[] allCpu = new long[KINDS.length];
            for (int round = 0; round < ALLOCATION_BLOCKS; round++) {
                for (int k = 0; k < KINDS.length; k++) {
                    int v = (round + k) % KINDS.length;
                    Map<Long, long[]> before = client.snapshot();
                    long b0 = mx.getThreadAllocatedBytes(tid);
                    long c0 = mx.getCurrentThreadCpuTime();
                    for (int i = 0; i < block; i++) {
                        call(mode + KINDS[v]);
                    }
                    cpu[v] += mx.getCurrentThreadCpuTime() - c0;
                    bytes[v] += mx.getThreadAllocatedBytes(tid) - b0;
                    long[] d = ClientThreads.delta(before, client.snapshot());
                    allBytes[v] += d[0];
                    allCpu[v] += d[1];
                }
            }
            long n = (long) ALLOCATION_BLOCKS * block;
            out.append(perCallLine(mode + ":", "calling thread", bytes, cpu, n));
            out.append(perCallLine("", "client threads", allBytes, allCpu, n));
        }
        return out.toString();
    }

    private static String perCallLine(String mode, String whose, long[] bytes, long[] cpu, long n) {
        return String.format(
                Locale.ROOT,
                "  %-10s %s: allocated bare %d B, sdk %d B, ratio %.3f; cpu bare %.1f us, sdk %.1f us, ratio %.3f%n",
                mode,
                whose,
                bytes[1] / n,
                bytes[0] / n,
                (double) bytes[0] / bytes[1],
                cpu[1] / 1e3 / n,
                cpu[0] / 1e3 / n,
                (double) cpu[0] / cpu[1]);
    }

    /**
     * The provider side, blocking: {@link InferenceClient#chat}, with everything a user gets (the receipt and
     * its cost, read here).
     */
    static String sdkBlocking(InferenceClient client, ChatRequest request) {
        ChatResponse r = client.chat(request);
        return r.receipt().cost().signum() >= 0 ? r.text() : "";
    }

    /** The provider side, streaming: {@link InferenceClient#stream} read to its end, and its receipt's cost. */
    static String sdkStreaming(InferenceClient client, ChatRequest request) {
        StringBuilder text = new StringBuilder();
        try (ChatStream s = client.stream(request)) {
            while (s.hasNext()) {
                ChatChunk c = s.next();
                text.append(c.text());
            }
            return s.response().receipt().cost().signum() >= 0 ? text.toString() : "";
        }
    }

    /**
     * Notes where the two sides' request headers (by lower-cased name) differ, other than in the values of
     * {@code perCall} headers, which change with each call.
     */
    static List<String> headerDifferences(
            String mode, Map<String, String> sdk, Map<String, String> bare, Set<String> perCall) {
        List<String> notes = new ArrayList<>();
        TreeSet<String> names = new TreeSet<>(sdk.keySet());
        names.addAll(bare.keySet());
        for (String name : names) {
            String a = sdk.get(name);
            String b = bare.get(name);
            if (a != null && (a.equals(b) || b != null && perCall.contains(name))) {
                continue;
            }
            notes.add(mode + " " + name + ": sdk " + a + ", bare " + b);
        }
        return notes;
    }

    /** Sums the allocated bytes and CPU time of every live thread that is not the emulator's. */
    private static final class ClientThreads {
        private final com.sun.management.ThreadMXBean mx;
        private final String[] emulatorThreads;
        private final Map<Long, Boolean> emulatorThread = new HashMap<>();

        ClientThreads(com.sun.management.ThreadMXBean mx, String[] emulatorThreads) {
            this.mx = mx;
            this.emulatorThreads = emulatorThreads;
        }

        /** Bytes allocated and CPU nanoseconds of each live client thread, by thread id. */
        Map<Long, long[]> snapshot() {
            long[] ids = mx.getAllThreadIds();
            long[] bytes = mx.getThreadAllocatedBytes(ids);
            long[] cpu = mx.getThreadCpuTime(ids);
            Map<Long, long[]> out = new HashMap<>();
            for (int i = 0; i < ids.length; i++) {
                if (bytes[i] >= 0 && cpu[i] >= 0 && !isEmulator(ids[i])) {
                    out.put(ids[i], new long[] {bytes[i], cpu[i]});
                }
            }
            return out;
        }

        /**
         * {@code [bytes, cpu nanoseconds]} of the client threads from {@code before} to {@code after}: a thread
         * that started in between counts from zero, one that ended is missed.
         */
        static long[] delta(Map<Long, long[]> before, Map<Long, long[]> after) {
            long[] d = new long[2];
            for (Map.Entry<Long, long[]> e : after.entrySet()) {
                long[] b = before.getOrDefault(e.getKey(), new long[2]);
                d[0] += e.getValue()[0] - b[0];
                d[1] += e.getValue()[1] - b[1];
            }
            return d;
        }

        private boolean isEmulator(long id) {
            Boolean known = emulatorThread.get(id);
            if (known == null) {
                ThreadInfo info = mx.getThreadInfo(id);
                known = false;
                for (String prefix : emulatorThreads) {
                    known |= info != null && info.getThreadName().startsWith(prefix);
                }
                emulatorThread.put(id, known);
            }
            return known;
        }
    }

    /**
     * Gathers the text of an OpenAI-style event stream as a user would: fed bytes in parts ({@link #feed},
     * which splits them into lines, carrying a line cut between parts over to the next) or whole lines
     * ({@link #line}), it parses each {@code data:} line but {@code [DONE]} with Jackson, appends {@code
     * choices[0].delta.content} to the text and adds up {@code usage.completion_tokens}. Not thread-safe.
     */
    static final class SseText {
        final StringBuilder text = new StringBuilder();
        long tokens;
        boolean done;
        private byte[] carry = new byte[0];

        /** One part of the body, cut anywhere. */
        void feed(byte[] part) {
            int start = 0;
            for (int i = 0; i < part.length; i++) {
                if (part[i] != '\n') {
                    continue;
                }
                if (carry.length > 0) {
                    byte[] line = Arrays.copyOf(carry, carry.length + i - start);
                    System.arraycopy(part, start, line, carry.length, i - start);
                    carry = new byte[0];
                    line(line, 0, line.length);
                } else {
                    line(part, start, i);
                }
                start = i + 1;
            }
            if (start < part.length) {
                byte[] more = Arrays.copyOf(carry, carry.length + part.length - start);
                System.arraycopy(part, start, more, carry.length, part.length - start);
                carry = more;
            }
        }

        /** One line, {@code b[from, to)}, without its {@code \n} (a {@code \r} before it is dropped here). */
        void line(byte[] b, int from, int to) {
            if (to > from && b[to - 1] == '\r') {
                to--;
            }
            if (to - from < 5
                    || b[from] != 'd'
                    || b[from + 1] != 'a'
                    || b[from + 2] != 't'
                    || b[from + 3] != 'a'
                    || b[from + 4] != ':') {
                return;
            }
            from += 5;
            if (from < to && b[from] == ' ') {
                from++;
            }
            if (to - from == 6 && new String(b, from, 6, StandardCharsets.US_ASCII).equals("[DONE]")) {
                done = true;
                return;
            }
            JsonNode chunk;
            try {
                chunk = MAPPER.readTree(b, from, to - from);
            } catch (IOException e) {
                throw new IllegalStateException("a chunk does not parse", e);
            }
            JsonNode choices = chunk.path("choices");
            if (choices.size() > 0) {
                text.append(choices.get(0).path("delta").path("content").asText(""));
            }
            tokens += chunk.path("usage").path("completion_tokens").asLong(0);
        }

        /** The text, when the stream ended with {@code [DONE]} and told its usage; else empty. */
        String result() {
            return done && tokens > 0 ? text.toString() : "";
        }
    }
}
