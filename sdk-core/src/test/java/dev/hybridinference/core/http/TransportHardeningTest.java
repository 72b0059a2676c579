package dev.hybridinference.core.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.Secrets;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import okhttp3.Call;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import okio.Buffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** What real and hostile servers did to the OpenAI-compatible transport, each as a regression test. */
class TransportHardeningTest {
    private static final String KEY = "sk-transport-test-5f3a9c1e77";
    private static final String COMPLETION =
            "{\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
                    + "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}";

    private final MockWebServer server = new MockWebServer();
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        server.start();
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : closeables) {
            c.close();
        }
        server.close();
    }

    private OpenAiTestClient client(String url, Pricing pricing, CostLedger ledger, ResponseLimits limits) {
        OpenAiTestClient c = new OpenAiTestClient(url, KEY, pricing, ledger, limits);
        closeables.add(c);
        return c;
    }

    private OpenAiTestClient client() {
        return client(server.url("/").toString(), Pricing.FREE, null, ResponseLimits.DEFAULTS);
    }

    private static ChatRequest request() {
        return ChatRequest.builder().user("say hi to the test").build();
    }

    private static MockResponse json(int code, String body) {
        return new MockResponse.Builder()
                .code(code)
                .addHeader("Content-Type", "application/json")
                .body(body)
                .build();
    }

    private static MockResponse sse(String body) {
        return new MockResponse.Builder()
                .addHeader("Content-Type", "text/event-stream")
                .body(body)
                .build();
    }

    private static String chunk(String content) {
        return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + content
                + "\"},\"finish_reason\":null}]}\n\n";
    }

    private static String streamText(OpenAiTestClient c) {
        StringBuilder sb = new StringBuilder();
        try (ChatStream s = c.stream(request())) {
            s.forEachRemaining(ch -> sb.append(ch.text()));
        }
        return sb.toString();
    }

    // --- 1. dead pooled connections

    /**
     * A keep-alive server that answers the first request on each connection and silently closes the
     * connection when a second request arrives on it: what a server does when it closed an idle connection
     * just as the client reused it.
     */
    private static final class ClosingServer implements AutoCloseable {
        final ServerSocket socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        final AtomicInteger answered = new AtomicInteger();
        final AtomicInteger dropped = new AtomicInteger();
        final AtomicInteger connections = new AtomicInteger();

        ClosingServer() throws IOException {
            Thread t = new Thread(this::acceptLoop, "closing-server");
            t.setDaemon(true);
            t.start();
        }

        String url() {
            return "http://127.0.0.1:" + socket.getLocalPort();
        }

        private void acceptLoop() {
            while (!socket.isClosed()) {
                try {
                    Socket s = socket.accept();
                    connections.incrementAndGet();
                    Thread t = new Thread(() -> serve(s), "closing-server-conn");
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    return;
                }
            }
        }

        private void serve(Socket s) {
            try (s) {
                InputStream in = s.getInputStream();
                OutputStream out = s.getOutputStream();
                int onThisConnection = 0;
                while (readRequest(in)) {
                    onThisConnection++;
                    if (onThisConnection > 1) {
                        dropped.incrementAndGet();
                        return; // closed without a byte of response
                    }
                    answered.incrementAndGet(); // before the answer, which the client may act on at once
                    byte[] body = COMPLETION.getBytes(StandardCharsets.UTF_8);
                    out.write(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + body.length
                                    + "\r\n\r\n")
                            .getBytes(StandardCharsets.US_ASCII));
                    out.write(body);
                    out.flush();
                }
            } catch (IOException ignored) {
                // the client went away
            }
        }

        /** Reads one request (headers and a Content-Length body); false at the end of the connection. */
        private static boolean readRequest(InputStream in) throws IOException {
            ByteArrayOutputStream head = new ByteArrayOutputStream();
            int matched = 0;
            while (matched < 4) {
                int b = in.read();
                if (b < 0) {
                    return false;
                }
                head.write(b);
                matched = (b == '\r' || b == '\n') && "\r\n\r\n".charAt(matched) == b ? matched + 1 : 0;
            }
            int length = 0;
            for (String line : head.toString(StandardCharsets.US_ASCII).split("\r\n")) {
                if (line.toLowerCase().startsWith("content-length:")) {
                    length = Integer.parseInt(line.substring(15).trim());
                }
            }
            in.readNBytes(length);
            return true;
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    @Test
    void aRequestThatMeetsADeadPooledConnectionIsSentAgainOnANewOne() throws IOException {
        ClosingServer closing = new ClosingServer();
        closeables.add(closing);
        OpenAiTestClient c = client(closing.url(), Pricing.FREE, null, ResponseLimits.DEFAULTS);
        for (int i = 0; i < 10; i++) {
            assertThat(c.chat(request()).text()).isEqualTo("hi");
        }
        assertThat(closing.answered.get()).isEqualTo(10);
        assertThat(closing.dropped.get()).isEqualTo(9);
    }

    @Test
    void okHttpDoesNotSilentlyResendA503WithRetryAfterZero() throws InterruptedException {
        server.enqueue(new MockResponse.Builder()
                .code(503)
                .addHeader("Retry-After", "0")
                .body("{\"error\":{\"message\":\"overloaded\"}}")
                .build());
        server.enqueue(json(200, COMPLETION));
        OpenAiTestClient c = client();
        ProviderUnavailableException e =
                catchThrowableOfType(ProviderUnavailableException.class, () -> c.chat(request()));
        assertThat(e.retryAfter()).contains(Duration.ZERO);
        assertThat(server.getRequestCount()).isEqualTo(1);
        assertThat(e.partialReceipt().orElseThrow().attempts()).hasSize(1);
    }

    // --- 2. secrets

    @Test
    void anEchoedAuthorizationHeaderNeverReachesMessagesOrReceipts() {
        server.enqueue(
                json(400, "{\"error\":{\"message\":\"bad request; you sent Authorization: Bearer " + KEY + "\"}}"));
        server.enqueue(json(500, "headers were {authorization=[Bearer " + KEY + "]}"));
        OpenAiTestClient c = client();
        for (int i = 0; i < 2; i++) {
            InferenceException e = catchThrowableOfType(InferenceException.class, () -> c.chat(request()));
            StringWriter trace = new StringWriter();
            e.printStackTrace(new PrintWriter(trace));
            Receipt r = e.partialReceipt().orElseThrow();
            assertThat(trace.toString() + r + r.summary()).doesNotContain(KEY).contains("[REDACTED]");
        }
    }

    // --- per-request headers

    @Test
    void theHeaderSupplierIsAskedForEveryRequestAndEveryResend() throws IOException {
        ClosingServer closing = new ClosingServer();
        closeables.add(closing);
        AtomicInteger asked = new AtomicInteger();
        RequestHeaders counting = s -> {
            asked.incrementAndGet();
            return Map.of("api-key", "azure-style-key-" + asked.get());
        };
        OpenAiTestClient c = new OpenAiTestClient(closing.url(), counting, Pricing.FREE, null, ResponseLimits.DEFAULTS);
        closeables.add(c);
        for (int i = 0; i < 5; i++) {
            c.chat(request());
        }
        assertThat(closing.answered.get()).isEqualTo(5);
        assertThat(asked.get()).isEqualTo(closing.answered.get() + closing.dropped.get());
    }

    @Test
    void suppliedHeadersAreSentAndEveryCredentialAmongThemIsRedacted() throws InterruptedException {
        String token = "entra-" + UUID.randomUUID();
        String key = "key-" + UUID.randomUUID();
        Map<String, String> fresh = Map.of("Authorization", "Bearer " + token, "api-key", key, "x-trace", "visible-1");
        server.enqueue(json(400, "{\"error\":{\"message\":\"token " + token + " and key " + key + " rejected\"}}"));
        OpenAiTestClient c = new OpenAiTestClient(
                server.url("/").toString(), s -> fresh, Pricing.FREE, null, ResponseLimits.DEFAULTS);
        closeables.add(c);
        InferenceException e = catchThrowableOfType(InferenceException.class, () -> c.chat(request()));
        assertThat(e.getMessage()).doesNotContain(token).doesNotContain(key).contains("[REDACTED]");
        assertThat(Secrets.redact("x-trace: visible-1")).isEqualTo("x-trace: visible-1");
        var recorded = server.takeRequest();
        assertThat(recorded.getHeaders().get("Authorization")).isEqualTo("Bearer " + token);
        assertThat(recorded.getHeaders().get("api-key")).isEqualTo(key);
        assertThat(recorded.getHeaders().get("x-trace")).isEqualTo("visible-1");
    }

    @Test
    void aRefreshingBearerTokenIsFetchedPerRequest() throws InterruptedException {
        AtomicInteger generation = new AtomicInteger();
        OpenAiTestClient c = new OpenAiTestClient(
                server.url("/").toString(),
                RequestHeaders.bearer(() -> "id-token-generation-" + generation.incrementAndGet()),
                Pricing.FREE,
                null,
                ResponseLimits.DEFAULTS);
        closeables.add(c);
        server.enqueue(json(200, COMPLETION));
        server.enqueue(json(200, COMPLETION));
        c.chat(request());
        c.chat(request());
        assertThat(server.takeRequest().getHeaders().get("Authorization")).isEqualTo("Bearer id-token-generation-1");
        assertThat(server.takeRequest().getHeaders().get("Authorization")).isEqualTo("Bearer id-token-generation-2");
        assertThat(Secrets.redact("echo id-token-generation-2")).isEqualTo("echo [REDACTED]");
    }

    @Test
    void aFailingHeaderSupplierFailsTheCallBeforeAnythingIsSent() {
        OpenAiTestClient broken = new OpenAiTestClient(
                server.url("/").toString(),
                s -> {
                    throw new IllegalStateException("token endpoint unreachable");
                },
                Pricing.FREE,
                null,
                ResponseLimits.DEFAULTS);
        closeables.add(broken);
        assertThatThrownBy(() -> broken.chat(request()))
                .isInstanceOf(AuthenticationException.class)
                .hasMessageContaining("token endpoint unreachable");
        OpenAiTestClient passing = new OpenAiTestClient(
                server.url("/").toString(),
                s -> {
                    throw new ProviderUnavailableException("metadata server busy", "test", null, 0, null, null);
                },
                Pricing.FREE,
                null,
                ResponseLimits.DEFAULTS);
        closeables.add(passing);
        assertThatThrownBy(() -> streamText(passing))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("metadata server busy");
        assertThat(server.getRequestCount()).isZero();
    }

    // --- deadlines

    private static CallContext context(ChatRequest r) {
        return new CallContext("test", r, Clock.systemUTC());
    }

    @Test
    void theCallTimeoutCutsABlockingCall() {
        OpenAiTransport t = OpenAiTransport.builder("test")
                .callTimeout(Duration.ofMillis(300))
                .readTimeout(Duration.ofSeconds(20))
                .build();
        OpenAiTransport.Server s = OpenAiTransport.Server.of(server.url("/").toString());
        try {
            server.enqueue(new MockResponse.Builder()
                    .headersDelay(10, java.util.concurrent.TimeUnit.SECONDS)
                    .body(COMPLETION)
                    .build());
            long start = System.nanoTime();
            assertThatThrownBy(() -> t.complete(s, request(), "m", context(request())))
                    .isInstanceOfSatisfying(
                            InferenceTimeoutException.class,
                            e -> assertThat(e.isDeadlineExceeded()).isFalse())
                    .hasMessageContaining("timed out");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(8));
        } finally {
            t.shutdown();
        }
    }

    @Test
    void theCallTimeoutCutsAStreamThatStalls() throws Exception {
        // A server that sends the headers and one chunk, then nothing more while keeping the connection.
        ServerSocket stalling = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        closeables.add(stalling);
        Thread serve = new Thread(() -> {
            try (Socket socket = stalling.accept()) {
                ClosingServer.readRequest(socket.getInputStream());
                String one = chunk("one");
                OutputStream out = socket.getOutputStream();
                out.write(("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                                + Integer.toHexString(one.length()) + "\r\n" + one + "\r\n")
                        .getBytes(StandardCharsets.UTF_8));
                out.flush();
                Thread.sleep(10_000);
            } catch (IOException | InterruptedException ignored) {
                // the test ended
            }
        });
        serve.setDaemon(true);
        serve.start();
        OpenAiTransport t = OpenAiTransport.builder("test")
                .callTimeout(Duration.ofMillis(400))
                .readTimeout(Duration.ofSeconds(20))
                .build();
        try {
            ProviderStream stream = t.stream(
                    OpenAiTransport.Server.of("http://127.0.0.1:" + stalling.getLocalPort()),
                    request(),
                    "m",
                    context(request()));
            try {
                assertThat(stream.next().text()).isEqualTo("one");
                assertThatThrownBy(stream::next).isInstanceOf(InferenceTimeoutException.class);
                assertThat(stream.result().text()).isEqualTo("one");
            } finally {
                stream.close();
            }
        } finally {
            t.shutdown();
            serve.interrupt();
        }
    }

    @Test
    void theRequestDeadlineCutsTheCallAndSaysSo() {
        OpenAiTransport t = OpenAiTransport.builder("test").build();
        try {
            server.enqueue(new MockResponse.Builder()
                    .headersDelay(10, java.util.concurrent.TimeUnit.SECONDS)
                    .body(COMPLETION)
                    .build());
            ChatRequest r = ChatRequest.builder()
                    .user("hi")
                    .options(RequestOptions.builder()
                            .timeout(Duration.ofMillis(250))
                            .build())
                    .build();
            assertThatThrownBy(() ->
                            t.complete(OpenAiTransport.Server.of(server.url("/").toString()), r, "m", context(r)))
                    .isInstanceOfSatisfying(
                            InferenceTimeoutException.class,
                            e -> assertThat(e.isDeadlineExceeded()).isTrue());
        } finally {
            t.shutdown();
        }
    }

    @Test
    void aWatchReleasedInTimeNeverCancelsAndOneThatIsNotDoes() throws Exception {
        OkHttpClient client = new OkHttpClient();
        try {
            server.enqueue(json(200, COMPLETION));
            Call quick =
                    client.newCall(new Request.Builder().url(server.url("/q")).build());
            CallDeadlines.Watch w =
                    CallDeadlines.SHARED.watch(quick, Duration.ofMillis(100).toNanos());
            try (Response r = quick.execute()) {
                assertThat(r.code()).isEqualTo(200);
            }
            CallDeadlines.SHARED.release(w);
            Thread.sleep(300);
            assertThat(quick.isCanceled()).isFalse();
            assertThat(w.fired()).isFalse();

            Call slow =
                    client.newCall(new Request.Builder().url(server.url("/s")).build());
            server.enqueue(new MockResponse.Builder()
                    .headersDelay(10, java.util.concurrent.TimeUnit.SECONDS)
                    .build());
            CallDeadlines.Watch late =
                    CallDeadlines.SHARED.watch(slow, Duration.ofMillis(150).toNanos());
            IOException failure = catchThrowableOfType(IOException.class, slow::execute);
            assertThat(late.fired()).isTrue();
            assertThat(late.explain(failure))
                    .isInstanceOf(java.io.InterruptedIOException.class)
                    .hasMessage("timeout");
        } finally {
            client.dispatcher().executorService().shutdown();
            client.connectionPool().evictAll();
        }
    }

    // --- shared clients

    @Test
    void shutdownLeavesACallersClientAloneAndShutsDownItsOwn() throws IOException {
        OkHttpClient shared = new OkHttpClient();
        try {
            OpenAiTransport borrowing =
                    OpenAiTransport.builder("test").httpClient(shared).build();
            OpenAiTransport owning = OpenAiTransport.builder("test").build();
            server.enqueue(json(200, COMPLETION));
            assertThat(borrowing
                            .complete(
                                    OpenAiTransport.Server.of(server.url("/").toString()),
                                    request(),
                                    "m",
                                    new CallContext("test", request(), Clock.systemUTC()))
                            .text())
                    .isEqualTo("hi");
            borrowing.shutdown();
            owning.shutdown();
            assertThat(shared.dispatcher().executorService().isShutdown()).isFalse();
            assertThat(owning.httpClient().dispatcher().executorService().isShutdown())
                    .isTrue();
            server.enqueue(json(200, COMPLETION));
            try (Response r = shared.newCall(
                            new Request.Builder().url(server.url("/after")).build())
                    .execute()) {
                assertThat(r.code()).isEqualTo(200);
            }
        } finally {
            shared.dispatcher().executorService().shutdown();
            shared.connectionPool().evictAll();
        }
    }

    @Test
    void aClientPassedInStillNeverResendsOrFollowsRedirects() throws IOException {
        OkHttpClient lenient = new OkHttpClient.Builder()
                .retryOnConnectionFailure(true)
                .followRedirects(true)
                .build();
        try (MockWebServer other = new MockWebServer()) {
            other.start();
            other.enqueue(json(200, COMPLETION));
            server.enqueue(new MockResponse.Builder()
                    .code(302)
                    .addHeader("Location", other.url("/v1/chat/completions"))
                    .build());
            OpenAiTransport t =
                    OpenAiTransport.builder("test").httpClient(lenient).build();
            assertThatThrownBy(() -> t.complete(
                            OpenAiTransport.Server.of(server.url("/").toString()),
                            request(),
                            "m",
                            new CallContext("test", request(), Clock.systemUTC())))
                    .isInstanceOf(InvalidRequestException.class)
                    .hasMessageContaining("redirects are not followed");
            assertThat(other.getRequestCount()).isZero();
        } finally {
            lenient.dispatcher().executorService().shutdown();
        }
    }

    // --- framing

    @Test
    void aJsonLinesStreamIsReadToItsEnd() {
        server.enqueue(new MockResponse.Builder()
                .addHeader("Content-Type", "application/jsonlines")
                .body("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one\"}}]}\n"
                        + "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" two\"},\"finish_reason\":\"stop\"}]}\n"
                        + "{\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}")
                .build());
        OpenAiTestClient c = client();
        try (ChatStream s = c.stream(request())) {
            StringBuilder sb = new StringBuilder();
            s.forEachRemaining(ch -> sb.append(ch.text()));
            assertThat(sb).hasToString("one two");
            assertThat(s.response().usage().outputTokens()).isEqualTo(2);
            assertThat(s.response().usage().estimated()).isFalse();
        }
    }

    @Test
    void serverUrlsAreNormalizedForEveryPlatformsShape() {
        assertThat(OpenAiTransport.Server.of("http://gpu-1:8000/v1/").label()).isEqualTo("http://gpu-1:8000");
        assertThat(OpenAiTransport.Server.of("https://res.openai.azure.com/openai/v1")
                        .chatCompletionsUrl())
                .isEqualTo("https://res.openai.azure.com/openai/v1/chat/completions");
        assertThat(OpenAiTransport.Server.of("https://user:pw@svc-abc.a.run.app/?x=1")
                        .label())
                .isEqualTo("https://svc-abc.a.run.app");
        assertThatThrownBy(() -> OpenAiTransport.Server.of("gpu-1:8000"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("http://");
    }

    // --- 3. unbounded memory

    @Test
    void aHugeToolCallIndexFailsTheStreamInsteadOfSizingAList() {
        server.enqueue(sse("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":100000000,"
                + "\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n"));
        OpenAiTestClient c = client();
        assertThatThrownBy(() -> streamText(c))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("tool-call index 100000000");
    }

    @Test
    void anEndlessLineFailsAtTheLineLimit() {
        Buffer endless = new Buffer().writeUtf8("data: {\"choices\":[{\"delta\":{\"content\":\"");
        endless.writeUtf8("x".repeat(300_000));
        server.enqueue(new MockResponse.Builder()
                .addHeader("Content-Type", "text/event-stream")
                .body(endless)
                .build());
        OpenAiTestClient c = client(
                server.url("/").toString(),
                Pricing.FREE,
                null,
                new ResponseLimits(64 << 10, 1 << 20, 8, 1 << 20, 1 << 20));
        assertThatThrownBy(() -> streamText(c))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("exceeds 65536 bytes");
    }

    @Test
    void aHugeBodyFailsAtTheBodyLimit() {
        server.enqueue(json(200, COMPLETION.replace("\"hi\"", "\"" + "y".repeat(200_000) + "\"")));
        OpenAiTestClient c = client(
                server.url("/").toString(),
                Pricing.FREE,
                null,
                new ResponseLimits(64 << 10, 100_000, 8, 1 << 20, 1 << 20));
        assertThatThrownBy(() -> c.chat(request()))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("exceeds the limit of 100000 bytes");
    }

    @Test
    void aHugeGetBodyFailsAtTheGetLimit() {
        server.enqueue(new MockResponse.Builder().body("m 1\n".repeat(100_000)).build());
        OpenAiTestClient c = client(
                server.url("/").toString(),
                Pricing.FREE,
                null,
                new ResponseLimits(64 << 10, 1 << 20, 8, 1 << 20, 50_000));
        assertThatThrownBy(() -> c.transport().get(c.server(), "metrics", Duration.ofSeconds(5), false))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("exceeds the limit of 50000 bytes");
    }

    // --- 7. partial receipts of cut streams

    @Test
    void aStreamCutAfterSomeTokensIsChargedForThemAndItsAttemptFailed() {
        server.enqueue(new MockResponse.Builder()
                .addHeader("Content-Type", "text/event-stream")
                .body(chunk("one") + chunk(" two") + chunk(" three"))
                .build());
        CostLedger ledger = new CostLedger();
        OpenAiTestClient c = client(
                server.url("/").toString(),
                new Pricing.PerToken(new BigDecimal("1000000"), new BigDecimal("2000000"), BigDecimal.ZERO),
                ledger,
                ResponseLimits.DEFAULTS);
        MalformedResponseException e = catchThrowableOfType(MalformedResponseException.class, () -> streamText(c));
        Receipt r = e.partialReceipt().orElseThrow();
        assertThat(r.usage().outputTokens()).isEqualTo(3);
        assertThat(r.usage().inputTokens()).isPositive();
        assertThat(r.usage().estimated()).isTrue();
        assertThat(r.cost()).isGreaterThanOrEqualTo(new BigDecimal("6"));
        assertThat(r.attempts().get(r.attempts().size() - 1).outcome()).isEqualTo(Attempt.Outcome.FAILED);
        assertThat(ledger.totals().total()).isEqualByComparingTo(r.cost());
        assertThat(ledger.totals().calls()).isEqualTo(1);
    }

    @Test
    void aCutStreamKeepsTheServersUsageWhenItSentOne() {
        server.enqueue(new MockResponse.Builder()
                .addHeader("Content-Type", "text/event-stream")
                .body(chunk("one")
                        + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}\n\n")
                .build());
        OpenAiTestClient c = client();
        MalformedResponseException e = catchThrowableOfType(MalformedResponseException.class, () -> streamText(c));
        Receipt r = e.partialReceipt().orElseThrow();
        assertThat(r.usage().inputTokens()).isEqualTo(7);
        assertThat(r.usage().estimated()).isFalse();
    }

    // --- 8. stream errors

    @Test
    void llamaCppsBareErrorLineFailsTheStream() {
        server.enqueue(sse(chunk("partial")
                + "error: {\"code\":500,\"message\":\"slot unavailable\",\"type\":\"server_error\"}\n\n"));
        OpenAiTestClient c = client();
        assertThatThrownBy(() -> streamText(c))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("slot unavailable");
    }

    @Test
    void anErrorEventFollowedByDoneIsNotASuccess() {
        server.enqueue(sse(chunk("partial")
                + "data: {\"object\":\"error\",\"message\":\"engine died\",\"type\":\"InternalServerError\",\"code\":500}\n\n"
                + "data: [DONE]\n\n"));
        server.enqueue(sse(chunk("partial") + "event: error\ndata: {\"message\":\"engine died\"}\n\ndata: [DONE]\n\n"));
        OpenAiTestClient c = client();
        assertThatThrownBy(() -> streamText(c))
                .isInstanceOf(InferenceException.class)
                .hasMessageContaining("engine died");
        assertThatThrownBy(() -> streamText(c))
                .isInstanceOf(InferenceException.class)
                .hasMessageContaining("engine died");
    }

    @Test
    void aNullErrorFieldIsNotAnError() {
        server.enqueue(sse("data: {\"error\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"fine\"}}]}\n\n"
                + "data: [DONE]\n\n"));
        assertThat(streamText(client())).isEqualTo("fine");
    }

    @Test
    void contextOverflowFromLlamaCppAndVllmIsContextLengthExceeded() {
        String[] bodies = {
            "{\"error\":{\"code\":500,\"message\":\"the request exceeds the available context size, try increasing it\","
                    + "\"type\":\"exceed_context_size_error\"}}",
            "{\"error\":{\"code\":500,\"message\":\"Input prompt is too big compared to KV size. context shift is disabled\","
                    + "\"type\":\"server_error\"}}",
            "{\"object\":\"error\",\"message\":\"This model's maximum context length is 4096 tokens. However, you"
                    + " requested 5000 tokens.\",\"type\":\"BadRequestError\",\"code\":400}"
        };
        int[] statuses = {500, 500, 400};
        OpenAiTestClient c = client();
        for (int i = 0; i < bodies.length; i++) {
            server.enqueue(json(statuses[i], bodies[i]));
            assertThatThrownBy(() -> c.chat(request())).isInstanceOf(ContextLengthExceededException.class);
            server.enqueue(json(statuses[i], bodies[i]));
            assertThatThrownBy(() -> streamText(c)).isInstanceOf(ContextLengthExceededException.class);
            server.enqueue(sse("error: " + bodies[i].replaceFirst("^\\{\"error\":(.*)\\}$", "$1") + "\n\n"));
            assertThatThrownBy(() -> streamText(c)).isInstanceOf(ContextLengthExceededException.class);
        }
    }

    @Test
    void invalidUtf8IsReplacedTheSameWayBlockingAndStreaming() {
        byte[] bad = {(byte) 0xC3, (byte) 0x28, (byte) 0xFF};
        Buffer blocking = new Buffer()
                .writeUtf8("{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"a")
                .write(bad)
                .writeUtf8("b\"},\"finish_reason\":\"stop\"}]}");
        server.enqueue(new MockResponse.Builder()
                .addHeader("Content-Type", "application/json")
                .body(blocking)
                .build());
        Buffer streamed = new Buffer()
                .writeUtf8("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a")
                .write(bad)
                .writeUtf8("b\"}}]}\n\ndata: [DONE]\n\n");
        server.enqueue(new MockResponse.Builder()
                .addHeader("Content-Type", "text/event-stream")
                .body(streamed)
                .build());
        OpenAiTestClient c = client();
        ChatResponse r = c.chat(request());
        assertThat(r.text()).startsWith("a").endsWith("b").contains("\uFFFD");
        assertThat(streamText(c)).isEqualTo(r.text());
    }

    // --- 15. redirects

    @Test
    void aRedirectToAnotherOriginIsNeverFollowed() throws IOException {
        try (MockWebServer other = new MockWebServer()) {
            other.start();
            other.enqueue(json(200, COMPLETION));
            server.enqueue(new MockResponse.Builder()
                    .code(307)
                    .addHeader(
                            "Location",
                            other.url("/v1/chat/completions?token=abc").toString())
                    .build());
            OpenAiTestClient c = client();
            assertThatThrownBy(() -> c.chat(request()))
                    .isInstanceOf(InvalidRequestException.class)
                    .hasMessageContaining("redirected the request to "
                            + other.url("/v1/chat/completions").toString())
                    .hasMessageNotContaining("token=abc");
            assertThat(other.getRequestCount()).isZero();
        }
    }
}
