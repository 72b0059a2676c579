package dev.hybridinference.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.auth.oauth2.GoogleCredentials;
import com.google.auth.oauth2.ServiceAccountCredentials;
import dev.hybridinference.cloudrun.CloudRunClient;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.http.OpenAiTransport;
import dev.hybridinference.core.http.RequestHeaders;
import dev.hybridinference.testkit.cloudrun.CloudRunEmulator;
import dev.hybridinference.testkit.cloudrun.GoogleTokenServer;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Constructor;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;

/**
 * Per-call overhead of the Cloud Run provider over bare OkHttp + Jackson doing the same request with a fixed
 * ID token, both against the testkit's Cloud Run emulator on loopback, in the same JVM.
 *
 * <p>The emulator is a private service ({@code requireIdToken}: every request's token is decoded and its
 * issuer, audience and expiry checked, on both sides alike) kept warm ({@code minInstances 1}, {@code
 * maxInstances 1}, {@code concurrency} {@value #CONCURRENCY}, so no request ever waits for an instance), with no
 * token latency; it answers {@value #TOKENS} generated words. A stream therefore carries the role chunk,
 * {@value #TOKENS} token chunks, the finish chunk, the usage chunk and {@code [DONE]}.
 *
 * <p>The provider side ({@code sdk}) is {@link CloudRunClient#chat} and {@link CloudRunClient#stream} read to
 * its end, with everything a user gets: request encoding, the call context, the ID token, response decoding,
 * the cold-start watch, the receipt with its cost and its recording in a {@link CostLedger}. It authenticates
 * with a service-account key made by the {@link GoogleTokenServer} ({@code serviceAccountKey}), so each call
 * asks google-auth-library for the cached ID token ({@code IdTokenCredentials.refreshIfExpired} and {@code
 * getIdToken}); the token lives an hour, so one is fetched for the whole run.
 *
 * <p>The bare side ({@code bare}) is what a user would write with OkHttp and Jackson alone, its client
 * configured as the provider configures its own: a pool of 32 connections kept idle {@link
 * OpenAiTransport#DEFAULT_IDLE_TIMEOUT}, a 10 s connection timeout, 5 min read and write timeouts, a 10 min
 * call timeout (OkHttp's own, where the provider has its deadline watch), no resends on connection failure and
 * no redirects. Its token is the one the provider sent (taken once from the emulator's record of a provider
 * call), fixed in the header. Exactly:
 *
 * <ul>
 *   <li>blocking: POSTs the body bytes the provider sends (taken once from the emulator's record, so they are
 *       byte for byte the same JSON) to the chat URL parsed once, with {@code Accept} as the provider sends it
 *       and {@code Authorization: Bearer <token>}; reads the body into an array, parses it with Jackson into a
 *       tree and reads {@code choices[0].message.content} and {@code usage.completion_tokens};
 *   <li>streaming: the same with the provider's streaming body; reads the body line by line from OkHttp's
 *       source (each line into an array), parses each {@code data:} line but {@code [DONE]} with Jackson,
 *       appends {@code choices[0].delta.content} to the text and reads {@code usage.completion_tokens}; a
 *       stream that ended without {@code [DONE]} fails.
 * </ul>
 *
 * <p>The bare side does not encode the body or look up a token on each call; the provider does both. The two
 * sides' requests are checked to be identical, headers and body, before anything is measured.
 *
 * <p>Last, the cost of the cached-token lookup alone: an ID-token supplier as the provider builds it from the
 * same key (its {@code get()}), and {@link RequestHeaders#bearer(Supplier)} around it (what the transport
 * asks for each request), called in a tight loop after a warm-up, in nanoseconds and bytes per call.
 *
 * <p>Arguments (optional): {@code [repeats]}, how many times to run the paired check, the allocation and the
 * token lookup (default 1). With {@code loop variant [seconds]} instead, one side of one mode ({@code
 * blockingSdk}, {@code blockingBare}, {@code streamingSdk}, {@code streamingBare}) runs in a loop on one thread
 * for a profiler to watch (default 20 s, after 5 s of warm-up).
 */
public final class CloudRunOverheadReport {
    /** The words the emulator answers (the request's {@code max_tokens}). */
    static final int TOKENS = 50;

    /** Requests one emulated instance serves at once: more than the threads. */
    static final int CONCURRENCY = 16;

    private static final String MODEL = "bench-model";
    private static final String ACCOUNT = "bench-invoker@emulated-project.iam.gserviceaccount.com";
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration READ_TIMEOUT = Duration.ofMinutes(5);
    private static final Duration CALL_TIMEOUT = Duration.ofMinutes(10);
    private static final MediaType JSON = MediaType.get("application/json");
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** The emulator's threads and the token server's, left out of the client threads. */
    private static final String[] SERVER_THREADS = {"cloud-run-emulator", "google-token-server"};

    /** Token lookups per measured block, and blocks (the first ones warm up). */
    private static final int LOOKUPS = 1_000_000;

    private static final int LOOKUP_BLOCKS = 12;
    private static final int LOOKUP_WARM_BLOCKS = 4;

    private CloudRunOverheadReport() {}

    /**
     * Runs the report.
     *
     * @param args optional {@code repeats}, or {@code loop variant [seconds]}
     */
    public static void main(String[] args) throws Exception {
        try (Env env = new Env()) {
            new PairedOverhead(
                            TOKENS,
                            new PairedOverhead.Call[] {
                                () -> PairedOverhead.sdkBlocking(env.sdk, env.request),
                                () -> PairedOverhead.sdkStreaming(env.sdk, env.request)
                            },
                            new PairedOverhead.Call[] {() -> bareBlocking(env), () -> bareStreaming(env)},
                            // Calls here are cheap, and a shorter warm-up left the first paired blocks still compiling.
                            new int[] {20_000, 5_000},
                            SERVER_THREADS)
                    .main(args, env::header, "", () -> tokenLookup(env));
        }
    }

    /** The token server, the emulator, both sides' clients, and a token supplier of its own; shared by all threads. */
    static final class Env implements AutoCloseable {
        final GoogleTokenServer tokenServer;
        final CloudRunEmulator emulator;
        final CloudRunClient sdk;
        final OkHttpClient bare;
        final HttpUrl chatUrl;
        final ChatRequest request;
        final String accept;
        final String authorization;
        final byte[] blockingBody;
        final byte[] streamBody;
        final Supplier<String> tokens;
        final RequestHeaders headers;
        final OpenAiTransport.Server server;
        private final long tokensAfterSetUp;
        private final List<String> headerNotes = new ArrayList<>();

        Env() throws Exception {
            tokenServer = GoogleTokenServer.start(0);
            emulator = CloudRunEmulator.builder()
                    .model(MODEL)
                    .requireIdToken(tokenServer)
                    .minInstances(1)
                    .maxInstances(1)
                    .concurrency(CONCURRENCY)
                    .tokenLatency(Duration.ZERO)
                    .start();
            Path key = Files.createTempFile("bench-service-account", ".json");
            GoogleCredentials credentials;
            try {
                Files.writeString(key, tokenServer.serviceAccountKeyJson(ACCOUNT));
                sdk = CloudRunClient.builder()
                        .id("bench")
                        .serviceUrl(emulator.url())
                        .serviceAccountKey(key)
                        .model(MODEL)
                        .minInstances(1)
                        .connectTimeout(CONNECT_TIMEOUT)
                        .readTimeout(READ_TIMEOUT)
                        .callTimeout(CALL_TIMEOUT)
                        // An L4 instance's GPU, CPU and memory, about; only so that receipts carry a cost.
                        .pricing(Pricing.PerInstanceSecond.perSecond(
                                new BigDecimal("0.000233"), 1, Duration.ofMinutes(15), 1))
                        .ledger(new CostLedger())
                        .build();
                try (InputStream in = Files.newInputStream(key)) {
                    credentials = ServiceAccountCredentials.fromStream(in);
                }
            } finally {
                Files.deleteIfExists(key);
            }
            bare = BareOpenAiHttp.client(CONNECT_TIMEOUT, READ_TIMEOUT, CALL_TIMEOUT, null, null);
            chatUrl = HttpUrl.get(emulator.url() + "/v1/chat/completions");
            request = ChatRequest.builder()
                    .user("Explain the difference between serverless and dedicated inference.")
                    .maxTokens(TOKENS)
                    .build();
            // The bare side sends exactly the provider's request: body, accept and token from the emulator's record.
            PairedOverhead.check("sdk blocking set-up call", PairedOverhead.sdkBlocking(sdk, request), TOKENS);
            CloudRunEmulator.RecordedRequest sdkChat = last();
            PairedOverhead.check("sdk streaming set-up call", PairedOverhead.sdkStreaming(sdk, request), TOKENS);
            CloudRunEmulator.RecordedRequest sdkStream = last();
            blockingBody = sdkChat.body().getBytes(StandardCharsets.UTF_8);
            streamBody = sdkStream.body().getBytes(StandardCharsets.UTF_8);
            accept = sdkChat.header("accept");
            authorization = sdkChat.header("authorization");
            if (accept == null || authorization == null || !authorization.startsWith("Bearer ")) {
                throw new IllegalStateException("the provider sent no Accept or no bearer token: " + sdkChat);
            }
            PairedOverhead.check("bare blocking set-up call", bareBlocking(this), TOKENS);
            compare("blocking", sdkChat, last());
            PairedOverhead.check("bare streaming set-up call", bareStreaming(this), TOKENS);
            compare("streaming", sdkStream, last());
            // A supplier as the provider builds one, for timing the cached lookup alone; the audience is the
            // provider's for this URL, its origin, which is the emulator's URL.
            tokens = idTokenSource(credentials, emulator.url());
            server = OpenAiTransport.Server.of(emulator.url());
            headers = RequestHeaders.bearer(tokens);
            if (tokens.get().split("\\.", -1).length != 3) {
                throw new IllegalStateException("the token supplier gave no JWT");
            }
            tokensAfterSetUp = tokenServer.idTokensIssued();
        }

        private CloudRunEmulator.RecordedRequest last() {
            List<CloudRunEmulator.RecordedRequest> all = emulator.recorded();
            return all.get(all.size() - 1);
        }

        /** Fails unless both sides sent the same request line and body; notes headers that differ. */
        private void compare(String mode, CloudRunEmulator.RecordedRequest sdk, CloudRunEmulator.RecordedRequest bare) {
            if (!sdk.method().equals(bare.method())
                    || !sdk.path().equals(bare.path())
                    || !sdk.body().equals(bare.body())) {
                throw new IllegalStateException(
                        mode + ": the two sides sent different requests: " + sdk + " / " + bare);
            }
            headerNotes.addAll(PairedOverhead.headerDifferences(mode, sdk.headers(), bare.headers(), Set.of()));
        }

        String header() {
            StringBuilder out = new StringBuilder(String.format(
                    Locale.ROOT,
                    "=== Cloud Run provider overhead against bare OkHttp + Jackson with a fixed ID token ===%n"
                            + "emulator in this JVM on loopback (ID token required, minInstances 1, concurrency %d,"
                            + " tokenLatency 0), %d-word answers; blocking body %d B, streaming body %d B (the same"
                            + " bytes on both sides); ID token %d chars, %d issued in set-up; %d processors, Java"
                            + " %s%n",
                    CONCURRENCY,
                    TOKENS,
                    blockingBody.length,
                    streamBody.length,
                    authorization.length() - "Bearer ".length(),
                    tokensAfterSetUp,
                    Runtime.getRuntime().availableProcessors(),
                    System.getProperty("java.version")));
            if (headerNotes.isEmpty()) {
                out.append(String.format("request headers: the same on both sides, token included%n"));
            } else {
                out.append(String.format("request headers that differ:%n"));
                for (String n : headerNotes) {
                    out.append("  ").append(n).append(String.format("%n"));
                }
            }
            return out.toString();
        }

        @Override
        public void close() {
            sdk.close();
            BareOpenAiHttp.close(bare);
            emulator.close();
            tokenServer.close();
        }
    }

    /**
     * The provider's own ID-token supplier (package-private in the provider, so built reflectively) for {@code
     * credentials} and {@code audience}.
     */
    @SuppressWarnings("unchecked")
    private static Supplier<String> idTokenSource(GoogleCredentials credentials, String audience)
            throws ReflectiveOperationException {
        Constructor<?> c = Class.forName("dev.hybridinference.cloudrun.IdTokenSource")
                .getDeclaredConstructor(String.class, GoogleCredentials.class, String.class);
        c.setAccessible(true);
        return (Supplier<String>) c.newInstance("bench", credentials, audience);
    }

    // ---------------------------------------------------------------- the bare calls

    private static Request post(Env env, byte[] body) {
        return BareOpenAiHttp.post(env.chatUrl, body, env.accept, "Authorization", env.authorization);
    }

    static String bareBlocking(Env env) throws IOException {
        return BareOpenAiHttp.blocking(env.bare, post(env, env.blockingBody));
    }

    static String bareStreaming(Env env) throws IOException {
        return BareOpenAiHttp.streaming(env.bare, post(env, env.streamBody));
    }

    // ---------------------------------------------------------------- the cached token alone

    /**
     * The supplier's {@code get()} and {@link RequestHeaders#headers} around it, each in blocks of {@value
     * #LOOKUPS} calls on one thread, alternating, after {@value #LOOKUP_WARM_BLOCKS} blocks of warm-up: the
     * median and lowest block in nanoseconds per call, and bytes allocated per call; then the same on 4 threads
     * at once, in CPU nanoseconds per call (the wall time of 4 threads on fewer cores says little).
     */
    static String tokenLookup(Env env) throws Exception {
        long issuedBefore = env.tokenServer.idTokensIssued();
        String[] names = {"supplier get()", "RequestHeaders.headers()"};
        StringBuilder out = new StringBuilder(String.format(
                Locale.ROOT,
                "cached ID-token lookup alone, %d blocks of %d calls after %d blocks of warm-up, alternating:%n",
                LOOKUP_BLOCKS - LOOKUP_WARM_BLOCKS,
                LOOKUPS,
                LOOKUP_WARM_BLOCKS));
        int measured = LOOKUP_BLOCKS - LOOKUP_WARM_BLOCKS;
        long[][] one = lookupBlocks(env, 1);
        long[][] four = lookupBlocks(env, 4);
        for (int k = 0; k < names.length; k++) {
            long[] wall = Arrays.copyOf(one[k], one[k].length);
            Arrays.sort(wall);
            out.append(String.format(
                    Locale.ROOT,
                    "  %-25s 1 thread: %6.1f ns per call (median block), %6.1f ns (best), %4.1f B per call;"
                            + " 4 threads: %6.1f cpu ns per call, %4.1f B per call%n",
                    names[k] + ":",
                    wall[wall.length / 2] / (double) LOOKUPS,
                    wall[0] / (double) LOOKUPS,
                    one[k + 2][0] / (double) ((long) LOOKUPS * measured),
                    four[k][0] / (double) (4L * LOOKUPS * measured),
                    four[k + 2][0] / (double) (4L * LOOKUPS * measured)));
        }
        long issued = env.tokenServer.idTokensIssued() - issuedBefore;
        out.append(String.format(
                Locale.ROOT,
                "  ID tokens issued meanwhile: %d; in all so far (the provider's and this supplier's): %d%n",
                issued,
                env.tokenServer.idTokensIssued()));
        return out.toString();
    }

    /**
     * Runs the lookups on {@code threads} threads. With 1 thread: {@code [get wall ns per block, headers wall ns
     * per block, {get bytes}, {headers bytes}]}; with more, each thread's CPU time and bytes summed: {@code [{get
     * cpu ns}, {headers cpu ns}, {get bytes}, {headers bytes}]}.
     */
    private static long[][] lookupBlocks(Env env, int threads) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<long[][]>> parts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                parts.add(pool.submit(() -> lookupThread(env)));
            }
            long[][] sum = null;
            for (Future<long[][]> part : parts) {
                long[][] r = part.get();
                if (threads == 1) {
                    return r;
                }
                if (sum == null) {
                    sum = new long[][] {new long[1], new long[1], new long[1], new long[1]};
                }
                for (int k = 0; k < 2; k++) {
                    sum[k][0] += r[k + 4][0];
                    sum[k + 2][0] += r[k + 2][0];
                }
            }
            return sum;
        } finally {
            pool.shutdown();
        }
    }

    /**
     * One thread's lookups: {@code [get wall ns per block, headers wall ns per block, {get bytes}, {headers
     * bytes}, {get cpu ns}, {headers cpu ns}]} over the measured blocks.
     */
    private static long[][] lookupThread(Env env) {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        int measured = LOOKUP_BLOCKS - LOOKUP_WARM_BLOCKS;
        long[][] r = {new long[measured], new long[measured], new long[1], new long[1], new long[1], new long[1]};
        long sink = 0;
        for (int block = 0; block < LOOKUP_BLOCKS; block++) {
            for (int j = 0; j < 2; j++) {
                int k = (block + j) % 2;
                long b0 = mx.getThreadAllocatedBytes(tid);
                long c0 = mx.getCurrentThreadCpuTime();
                long t0 = System.nanoTime();
                if (k == 0) {
                    for (int i = 0; i < LOOKUPS; i++) {
                        sink += env.tokens.get().length();
                    }
                } else {
                    for (int i = 0; i < LOOKUPS; i++) {
                        sink += env.headers.headers(env.server).size();
                    }
                }
                long wall = System.nanoTime() - t0;
                long cpu = mx.getCurrentThreadCpuTime() - c0;
                long bytes = mx.getThreadAllocatedBytes(tid) - b0;
                if (block >= LOOKUP_WARM_BLOCKS) {
                    r[k][block - LOOKUP_WARM_BLOCKS] = wall;
                    r[k + 2][0] += bytes;
                    r[k + 4][0] += cpu;
                }
            }
        }
        if (sink == 42) {
            System.out.print("");
        }
        return r;
    }
}
