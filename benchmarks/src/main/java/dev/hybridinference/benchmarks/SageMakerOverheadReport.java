package dev.hybridinference.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.sagemaker.SageMakerClient;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.http.Protocol;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.SdkEventLoopGroup;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.sagemakerruntime.SageMakerRuntimeAsyncClient;
import software.amazon.awssdk.services.sagemakerruntime.SageMakerRuntimeClient;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointRequest;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointResponse;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointWithResponseStreamRequest;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointWithResponseStreamResponseHandler;

/**
 * Per-call overhead of the SageMaker provider over the bare AWS SDK for Java v2 doing the same request,
 * both against the testkit's SageMaker Runtime emulator on loopback, in the same JVM.
 *
 * <p>The emulator serves a vLLM-style messages container ({@code MESSAGES_SSE}) with no token latency and
 * no SigV4 shape check (the clients still sign every request), so that its own cost per call is as small
 * as it allows; it answers {@value #TOKENS} generated words. A stream therefore carries one {@code
 * PayloadPart} per server-sent event ({@code partSize 0}): the role chunk, {@value #TOKENS} token chunks,
 * the finish chunk, the usage chunk and {@code [DONE]}.
 *
 * <p>The provider side ({@code sdk}) is {@link SageMakerClient#chat} and {@link SageMakerClient#stream}
 * read to its end, with everything a user gets: request encoding, the call context, response decoding, the
 * receipt with its cost and its recording in a {@link CostLedger}.
 *
 * <p>The bare side ({@code bare}) is what a user would write with the AWS SDK alone, configured as the
 * provider configures its own clients: static credentials, region {@value #REGION}, the emulator as {@code
 * endpointOverride}, {@link AwsRetryStrategy#doNotRetry()}, a 5 minute {@code apiCallTimeout} on the
 * client; Apache HTTP with a 10 s connection timeout, a 70 s socket timeout and 64 connections for the
 * blocking call; Netty over HTTP/1.1 with the same timeouts, 64 connections and an event loop group of as
 * many threads as the provider's (the number of processors, 1 to 4) for the stream. Exactly:
 *
 * <ul>
 *   <li>blocking: builds an {@code InvokeEndpointRequest} naming the endpoint, with content type and accept
 *       {@code application/json} and the body bytes the provider sends (taken once from the emulator's
 *       record of a provider call, so they are byte for byte the same JSON), calls {@code invokeEndpoint},
 *       parses the answer with Jackson into a tree and reads {@code choices[0].message.content} and {@code
 *       usage.completion_tokens};
 *   <li>streaming: builds an {@code InvokeEndpointWithResponseStreamRequest} the same way with the
 *       provider's streaming body, calls {@code invokeEndpointWithResponseStream} with a visitor whose
 *       {@code onPayloadPart} splits the parts into lines (carrying a line cut between parts over to the
 *       next), parses each {@code data:} line but {@code [DONE]} with Jackson, appends {@code
 *       choices[0].delta.content} to the text and reads {@code usage.completion_tokens}, and waits for the
 *       call's future; a stream that ended without {@code [DONE]} fails.
 * </ul>
 *
 * <p>The bare side does not encode the body on each call; the provider does. Neither sets a per-request
 * {@code apiCallTimeout}: the clients' own applies (the provider sets one only for a request whose deadline
 * is earlier, and these requests have none).
 *
 * <p>Each stream costs both sides the same in the AWS SDK itself (its event-stream decoder allocates a
 * buffer of about 2 MB per response), so the per-call allocation of all client threads is dominated by it.
 *
 * <p>Arguments (optional): {@code [repeats]}, how many times to run the paired check and the allocation
 * (default 1). With {@code loop variant [seconds]} instead, one side of one mode ({@code blockingSdk},
 * {@code blockingBare}, {@code streamingSdk}, {@code streamingBare}) runs in a loop on one thread for a
 * profiler to watch (default 20 s, after 5 s of warm-up).
 */
public final class SageMakerOverheadReport {
    /** The words the emulator answers (its {@code max_tokens}). */
    static final int TOKENS = 50;

    /** The region of both sides. */
    static final String REGION = "us-east-1";

    static final String ENDPOINT = "bench-endpoint";
    static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(70);
    private static final Duration CALL_TIMEOUT = Duration.ofMinutes(5);
    private static final int MAX_CONNECTIONS = 64;
    private static final String EMULATOR_THREADS = "sagemaker-emulator";

    /** The sides of each mode, in {@link #call} names: the provider, then bare AWS SDK + Jackson. */
    private static final String[] KINDS = {"Sdk", "Bare"};

    private static final String[] MODES = {"blocking", "streaming"};
    private static final int[] THREADS = {1, 4};

    /** Rounds of the paired check that are measured, after {@link #WARM_ROUNDS} that are not. */
    private static final int ROUNDS = 80;

    private static final int WARM_ROUNDS = 4;

    private SageMakerOverheadReport() {}

    /**
     * Runs the report.
     *
     * @param args optional {@code repeats}
     */
    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("loop")) {
            String variant = args.length > 1 ? args[1] : "blockingSdk";
            long seconds = args.length > 2 ? Long.parseLong(args[2]) : 20;
            try (Env env = new Env()) {
                loop(variant, env, 5);
                long calls = loop(variant, env, seconds);
                System.out.printf(Locale.ROOT, "%s: %d calls, %.1f us/call%n", variant, calls, seconds * 1e6 / calls);
            }
            return;
        }
        int repeats = args.length > 0 ? Integer.parseInt(args[0]) : 1;
        try (Env env = new Env()) {
            System.out.print(env.header());
            warmUp(env);
            for (int i = 1; i <= repeats; i++) {
                System.out.printf(Locale.ROOT, "%n=== run %d of %d ===%n", i, repeats);
                System.out.print(paired(env));
                System.out.flush();
                System.out.print(allocation(env));
                System.out.flush();
            }
        }
    }

    /** Calls {@code variant} for {@code seconds}; the number of calls. */
    private static long loop(String variant, Env env, long seconds) throws Exception {
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        long calls = 0;
        while (System.nanoTime() < end) {
            for (int i = 0; i < 100; i++) {
                call(variant, env);
            }
            calls += 100;
        }
        return calls;
    }

    /** The emulator and both sides' clients, shared by all threads. */
    static final class Env implements AutoCloseable {
        final SageMakerEmulator emulator;
        final SageMakerClient sdk;
        final SdkEventLoopGroup bareLoops;
        final SageMakerRuntimeClient bareSync;
        final SageMakerRuntimeAsyncClient bareAsync;
        final ChatRequest request;
        final byte[] blockingBody;
        final byte[] streamBody;
        private final List<String> headerNotes = new ArrayList<>();

        Env() throws IOException {
            emulator = SageMakerEmulator.builder()
                    .endpointName(ENDPOINT)
                    .container(SageMakerEmulator.Container.MESSAGES_SSE)
                    .partSize(0)
                    .tokenLatency(Duration.ZERO)
                    .requireSigV4(false)
                    .start();
            sdk = SageMakerClient.builder()
                    .id("bench")
                    .endpointName(ENDPOINT)
                    .region(REGION)
                    .endpointOverride(emulator.endpoint())
                    .staticCredentials("AKIDEXAMPLE", "bench-secret-access-key", null)
                    .model("bench-model")
                    .connectTimeout(CONNECT_TIMEOUT)
                    .readTimeout(READ_TIMEOUT)
                    .callTimeout(CALL_TIMEOUT)
                    .maxConnections(MAX_CONNECTIONS)
                    .pricing(new Pricing.PerInstanceHour(new BigDecimal("1.21"), 1))
                    .ledger(new CostLedger())
                    .build();
            StaticCredentialsProvider credentials = StaticCredentialsProvider.create(
                    AwsBasicCredentials.create("AKIDEXAMPLE", "bench-secret-access-key"));
            bareSync = SageMakerRuntimeClient.builder()
                    .region(Region.of(REGION))
                    .credentialsProvider(credentials)
                    .endpointOverride(emulator.endpoint())
                    .overrideConfiguration(
                            o -> o.retryStrategy(AwsRetryStrategy.doNotRetry()).apiCallTimeout(CALL_TIMEOUT))
                    .httpClientBuilder(ApacheHttpClient.builder()
                            .connectionTimeout(CONNECT_TIMEOUT)
                            .socketTimeout(READ_TIMEOUT)
                            .maxConnections(MAX_CONNECTIONS))
                    .build();
            bareLoops = SdkEventLoopGroup.builder()
                    .numberOfThreads(
                            Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors())))
                    .build();
            bareAsync = SageMakerRuntimeAsyncClient.builder()
                    .region(Region.of(REGION))
                    .credentialsProvider(credentials)
                    .endpointOverride(emulator.endpoint())
                    .overrideConfiguration(
                            o -> o.retryStrategy(AwsRetryStrategy.doNotRetry()).apiCallTimeout(CALL_TIMEOUT))
                    .httpClientBuilder(NettyNioAsyncHttpClient.builder()
                            .eventLoopGroup(bareLoops)
                            .protocol(Protocol.HTTP1_1)
                            .connectionTimeout(CONNECT_TIMEOUT)
                            .readTimeout(READ_TIMEOUT)
                            .maxConcurrency(MAX_CONNECTIONS))
                    .build();
            request = ChatRequest.builder()
                    .user("Explain the difference between serverless and dedicated inference.")
                    .maxTokens(TOKENS)
                    .build();
            // The bare side sends exactly the provider's bytes: take them from the emulator's record.
            sdkBlocking(this);
            SageMakerEmulator.RecordedRequest sdkChat = last();
            blockingBody = sdkChat.body();
            sdkStreaming(this);
            SageMakerEmulator.RecordedRequest sdkStream = last();
            streamBody = sdkStream.body();
            bareBlocking(this);
            compareHeaders("blocking", sdkChat, last());
            bareStreaming(this);
            compareHeaders("streaming", sdkStream, last());
        }

        private SageMakerEmulator.RecordedRequest last() {
            List<SageMakerEmulator.RecordedRequest> all = emulator.requests();
            return all.get(all.size() - 1);
        }

        /** Notes where the two sides' requests differ, other than in the values that change per call. */
        private void compareHeaders(
                String mode, SageMakerEmulator.RecordedRequest sdk, SageMakerEmulator.RecordedRequest bare) {
            if (!sdk.path().equals(bare.path()) || !Arrays.equals(sdk.body(), bare.body())) {
                throw new IllegalStateException(
                        mode + ": the two sides sent different requests: " + sdk + " / " + bare);
            }
            TreeSet<String> names = new TreeSet<>(sdk.headers().keySet());
            names.addAll(bare.headers().keySet());
            for (String name : names) {
                String a = sdk.header(name);
                String b = bare.header(name);
                if (a != null && a.equals(b)) {
                    continue;
                }
                if (a != null && b != null && PER_CALL_HEADERS.contains(name)) {
                    continue;
                }
                headerNotes.add(mode + " " + name + ": sdk " + a + ", bare " + b);
            }
        }

        private static final java.util.Set<String> PER_CALL_HEADERS =
                java.util.Set.of("authorization", "x-amz-date", "amz-sdk-invocation-id", "amz-sdk-request");

        String header() {
            StringBuilder out = new StringBuilder(String.format(
                    Locale.ROOT,
                    "=== SageMaker provider overhead against the bare AWS SDK v2 + Jackson ===%n"
                            + "emulator in this JVM on loopback (MESSAGES_SSE, tokenLatency 0, partSize 0, SigV4 shape"
                            + " check off), %d-word answers; blocking body %d B, streaming body %d B (the same bytes"
                            + " on both sides); %d processors, Java %s%n",
                    TOKENS,
                    blockingBody.length,
                    streamBody.length,
                    Runtime.getRuntime().availableProcessors(),
                    System.getProperty("java.version")));
            if (headerNotes.isEmpty()) {
                out.append(String.format(
                        "request headers: the same on both sides but for signature, date and" + " invocation id%n"));
            } else {
                out.append(String.format("request headers that differ (besides signature, date, invocation id):%n"));
                for (String n : headerNotes) {
                    out.append("  ").append(n).append(String.format("%n"));
                }
            }
            return out.toString();
        }

        @Override
        public void close() {
            sdk.close();
            bareSync.close();
            bareAsync.close();
            bareLoops.eventLoopGroup().shutdownGracefully(0, 2, TimeUnit.SECONDS);
            emulator.close();
        }
    }

    // ---------------------------------------------------------------- the four calls

    static String sdkBlocking(Env env) {
        ChatResponse r = env.sdk.chat(env.request);
        return r.receipt().cost().signum() >= 0 ? r.text() : "";
    }

    static String sdkStreaming(Env env) {
        StringBuilder text = new StringBuilder();
        try (ChatStream s = env.sdk.stream(env.request)) {
            while (s.hasNext()) {
                ChatChunk c = s.next();
                text.append(c.text());
            }
            return s.response().receipt().cost().signum() >= 0 ? text.toString() : "";
        }
    }

    static String bareBlocking(Env env) throws IOException {
        InvokeEndpointResponse r = env.bareSync.invokeEndpoint(InvokeEndpointRequest.builder()
                .endpointName(ENDPOINT)
                .contentType("application/json")
                .accept("application/json")
                .body(SdkBytes.fromByteArrayUnsafe(env.blockingBody))
                .build());
        JsonNode root = MAPPER.readTree(r.body().asByteArrayUnsafe());
        long tokens = root.path("usage").path("completion_tokens").asLong();
        String text =
                root.path("choices").path(0).path("message").path("content").asText();
        return tokens > 0 ? text : "";
    }

    static String bareStreaming(Env env) {
        SseText sse = new SseText();
        InvokeEndpointWithResponseStreamResponseHandler handler =
                InvokeEndpointWithResponseStreamResponseHandler.builder()
                        .subscriber(InvokeEndpointWithResponseStreamResponseHandler.Visitor.builder()
                                .onPayloadPart(p -> sse.feed(p.bytes().asByteArrayUnsafe()))
                                .build())
                        .build();
        env.bareAsync
                .invokeEndpointWithResponseStream(
                        InvokeEndpointWithResponseStreamRequest.builder()
                                .endpointName(ENDPOINT)
                                .contentType("application/json")
                                .accept("application/json")
                                .body(SdkBytes.fromByteArrayUnsafe(env.streamBody))
                                .build(),
                        handler)
                .join();
        return sse.done && sse.tokens > 0 ? sse.text.toString() : "";
    }

    /** Splits SSE payload parts into lines and gathers the text of the chunks, as a user would. */
    private static final class SseText {
        final StringBuilder text = new StringBuilder();
        long tokens;
        boolean done;
        private byte[] carry = new byte[0];

        /** Called on the SDK's thread, one part at a time. */
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

        private void line(byte[] b, int from, int to) {
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
    }

    static void call(String variant, Env env) throws Exception {
        String text;
        switch (variant) {
            case "blockingSdk":
                text = sdkBlocking(env);
                break;
            case "blockingBare":
                text = bareBlocking(env);
                break;
            case "streamingSdk":
                text = sdkStreaming(env);
                break;
            case "streamingBare":
                text = bareStreaming(env);
                break;
            default:
                throw new IllegalArgumentException(variant);
        }
        if (text.isEmpty() || text.split(" ", -1).length != TOKENS) {
            throw new IllegalStateException(variant + " returned an unexpected answer: " + text);
        }
    }

    // ---------------------------------------------------------------- measurements

    private static final int WARM_BLOCKING = 6_000;
    private static final int WARM_STREAMING = 2_000;

    /** Compiles every side's path before anything is measured, interleaved so that both warm alike. */
    static void warmUp(Env env) throws Exception {
        long t0 = System.nanoTime();
        for (String mode : MODES) {
            int n = mode.equals("blocking") ? WARM_BLOCKING : WARM_STREAMING;
            for (int i = 0; i < n; i++) {
                for (String kind : KINDS) {
                    call(mode + kind, env);
                }
            }
        }
        System.out.printf(
                Locale.ROOT,
                "warm-up: %d blocking and %d streaming calls of each side, %.1f s%n",
                WARM_BLOCKING,
                WARM_STREAMING,
                (System.nanoTime() - t0) / 1e9);
    }

    /**
     * The paired check, as {@code OverheadReport.paired()} does it: each round runs a block of calls of
     * each side in turn on every thread, the order alternating with the round and the thread, and times each
     * call. Prints the sdk/bare ratio of the means and of the medians over all measured calls, and the
     * median and quartiles of the per-round ratios of medians (the spread is the machine's noise).
     */
    static String paired(Env env) throws Exception {
        long t0 = System.nanoTime();
        StringBuilder out = new StringBuilder(String.format(
                Locale.ROOT,
                "paired: %d rounds of alternating blocks after %d warm-up rounds, same JVM; sdk/bare ratios of"
                        + " means and of medians, per-round ratio of medians median [quartiles]%n",
                ROUNDS,
                WARM_ROUNDS));
        for (int threads : THREADS) {
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                for (String mode : MODES) {
                    int calls = mode.equals("blocking") ? 100 : 16;
                    int perRound = calls * threads;
                    long[][] all = new long[KINDS.length][ROUNDS * perRound];
                    double[] ratios = new double[ROUNDS];
                    for (int round = 0; round < WARM_ROUNDS + ROUNDS; round++) {
                        long[][] t = timeRound(mode, env, round, calls, threads, pool);
                        if (round >= WARM_ROUNDS) {
                            int r = round - WARM_ROUNDS;
                            for (int k = 0; k < KINDS.length; k++) {
                                System.arraycopy(t[k], 0, all[k], r * perRound, perRound);
                                Arrays.sort(t[k]);
                            }
                            ratios[r] = (double) t[0][perRound / 2] / t[1][perRound / 2];
                        }
                    }
                    double[] mean = new double[KINDS.length];
                    double[] median = new double[KINDS.length];
                    for (int k = 0; k < KINDS.length; k++) {
                        mean[k] = Arrays.stream(all[k]).average().orElse(0) / 1e3;
                        Arrays.sort(all[k]);
                        median[k] = all[k][all[k].length / 2] / 1e3;
                    }
                    Arrays.sort(ratios);
                    out.append(String.format(
                            Locale.ROOT,
                            "  %d thread(s) %-10s sdk mean %7.1f us, median %7.1f us; bare mean %7.1f us, median"
                                    + " %7.1f us; ratio of means %.3f, of medians %.3f, per round %.3f [%.3f,"
                                    + " %.3f]%n",
                            threads,
                            mode + ":",
                            mean[0],
                            median[0],
                            mean[1],
                            median[1],
                            mean[0] / mean[1],
                            median[0] / median[1],
                            ratios[ROUNDS / 2],
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

    /**
     * The latency in nanoseconds of every call of each side ({@link #KINDS} order): on each of {@code
     * threads} threads, a block of {@code calls} calls of each side in turn, the order alternating with the
     * round and the thread.
     */
    private static long[][] timeRound(String mode, Env env, int round, int calls, int threads, ExecutorService pool)
            throws Exception {
        List<Future<long[][]>> parts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int offset = t;
            parts.add(pool.submit(() -> {
                long[][] nanos = new long[KINDS.length][calls];
                for (int k = 0; k < KINDS.length; k++) {
                    int v = (round + offset + k) % KINDS.length;
                    for (int i = 0; i < calls; i++) {
                        long t0 = System.nanoTime();
                        call(mode + KINDS[v], env);
                        nanos[v][i] = System.nanoTime() - t0;
                    }
                }
                return nanos;
            }));
        }
        long[][] all = new long[KINDS.length][calls * threads];
        for (int t = 0; t < threads; t++) {
            long[][] nanos = parts.get(t).get();
            for (int k = 0; k < KINDS.length; k++) {
                System.arraycopy(nanos[k], 0, all[k], t * calls, calls);
            }
        }
        return all;
    }

    /**
     * Bytes allocated and CPU time used per call, for each side, in alternating blocks on one thread: by the
     * calling thread, and by every thread of the JVM but the emulator's (the calling thread, the Netty event
     * loops, the SDK's response threads; threads that end during a block are missed). Allocation does not
     * depend on the machine's load; CPU time depends on it much less than latency does.
     */
    static String allocation(Env env) throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        int blocks = 40;
        StringBuilder out = new StringBuilder(String.format(
                Locale.ROOT,
                "per call, 1 thread, %d alternating blocks of each side (blocking 400 calls a block, streaming 100):"
                        + " calling thread, and all threads but the emulator's%n",
                blocks));
        ClientThreads client = new ClientThreads(mx);
        for (String mode : MODES) {
            int block = mode.equals("blocking") ? 400 : 100;
            long[] bytes = new long[KINDS.length];
            long[] cpu = new long[KINDS.length];
            long[] allBytes = new long[KINDS.length];
            long[] allCpu = new long[KINDS.length];
            for (int round = 0; round < blocks; round++) {
                for (int k = 0; k < KINDS.length; k++) {
                    int v = (round + k) % KINDS.length;
                    Map<Long, long[]> before = client.snapshot();
                    long b0 = mx.getThreadAllocatedBytes(tid);
                    long c0 = mx.getCurrentThreadCpuTime();
                    for (int i = 0; i < block; i++) {
                        call(mode + KINDS[v], env);
                    }
                    cpu[v] += mx.getCurrentThreadCpuTime() - c0;
                    bytes[v] += mx.getThreadAllocatedBytes(tid) - b0;
                    long[] d = ClientThreads.delta(before, client.snapshot());
                    allBytes[v] += d[0];
                    allCpu[v] += d[1];
                }
            }
            long calls = (long) blocks * block;
            out.append(String.format(
                    Locale.ROOT,
                    "  %-10s calling thread: allocated bare %d B, sdk %d B, ratio %.3f; cpu bare %.1f us, sdk %.1f"
                            + " us, ratio %.3f%n",
                    mode + ":",
                    bytes[1] / calls,
                    bytes[0] / calls,
                    (double) bytes[0] / bytes[1],
                    cpu[1] / 1e3 / calls,
                    cpu[0] / 1e3 / calls,
                    (double) cpu[0] / cpu[1]));
            out.append(String.format(
                    Locale.ROOT,
                    "  %-10s client threads: allocated bare %d B, sdk %d B, ratio %.3f; cpu bare %.1f us, sdk %.1f"
                            + " us, ratio %.3f%n",
                    "",
                    allBytes[1] / calls,
                    allBytes[0] / calls,
                    (double) allBytes[0] / allBytes[1],
                    allCpu[1] / 1e3 / calls,
                    allCpu[0] / 1e3 / calls,
                    (double) allCpu[0] / allCpu[1]));
        }
        out.append(String.format(
                "  (streaming: the Netty I/O threads decode the event stream and run the part handlers for both"
                        + " sides, so the calling thread shows only the provider's hand-over; the client-thread"
                        + " figures include that work)%n"));
        return out.toString();
    }

    /** Sums the allocated bytes and CPU time of every live thread that is not the emulator's. */
    private static final class ClientThreads {
        private final com.sun.management.ThreadMXBean mx;
        private final Map<Long, Boolean> emulatorThread = new HashMap<>();

        ClientThreads(com.sun.management.ThreadMXBean mx) {
            this.mx = mx;
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
                known = info != null && info.getThreadName().startsWith(EMULATOR_THREADS);
                emulatorThread.put(id, known);
            }
            return known;
        }
    }
}
