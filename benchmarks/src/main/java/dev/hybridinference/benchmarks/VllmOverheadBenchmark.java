package dev.hybridinference.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.vllm.VllmClient;
import java.io.IOException;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import okhttp3.ConnectionPool;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Per-call overhead of the vLLM provider against bare OkHttp + Jackson, both calling the same loopback
 * server that returns the same bytes. The SDK side does everything a user gets: replica choice, request
 * encoding, response decoding, the receipt with its cost, and recording in the ledger.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class VllmOverheadBenchmark {
    static final int CHUNKS = 50;
    static final MediaType JSON = MediaType.get("application/json");
    static final ObjectMapper MAPPER = new ObjectMapper();

    /** The server and both clients, shared by all benchmark threads. */
    @State(Scope.Benchmark)
    public static class Env {
        LoopbackOpenAiServer server;
        VllmClient sdk;
        OkHttpClient bare;
        String url;
        /** The same URL parsed once, as the SDK keeps it: the strict baseline. */
        HttpUrl parsedUrl;

        ChatRequest request;
        ChatRequest streamRequest;
        Map<String, Object> bareBody;

        /** Starts the server and the clients. */
        @Setup(Level.Trial)
        public void setUp() throws IOException {
            server = new LoopbackOpenAiServer(CHUNKS);
            sdk = VllmClient.builder()
                    .id("bench")
                    .baseUrl(server.baseUrl())
                    .model("bench-model")
                    .scrapeInterval(Duration.ZERO)
                    .pricing(new Pricing.PerInstanceHour(new BigDecimal("4.10"), 1))
                    .ledger(new CostLedger())
                    .build();
            bare = new OkHttpClient.Builder()
                    .connectionPool(new ConnectionPool(32, 5, TimeUnit.MINUTES))
                    .build();
            url = server.baseUrl() + "/v1/chat/completions";
            parsedUrl = HttpUrl.get(url);
            request = ChatRequest.builder()
                    .user("Explain the difference between serverless and dedicated inference.")
                    .maxTokens(64)
                    .build();
            streamRequest = request;
            bareBody = Map.of(
                    "model",
                    "bench-model",
                    "messages",
                    List.of(Map.of(
                            "role",
                            "user",
                            "content",
                            "Explain the difference between serverless and dedicated inference.")),
                    "max_tokens",
                    64);
        }

        /** Stops everything. */
        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            sdk.close();
            bare.dispatcher().executorService().shutdown();
            bare.connectionPool().evictAll();
            server.close();
        }
    }

    /** The bare baseline, blocking: encode, POST, parse, read text and usage. */
    static String bareBlocking(Env env) throws IOException {
        return bareBlocking(env, new Request.Builder().url(env.url));
    }

    /** The strict bare baseline, blocking: as {@link #bareBlocking(Env)} with the URL parsed once. */
    static String bareBlockingUrl(Env env) throws IOException {
        return bareBlocking(env, new Request.Builder().url(env.parsedUrl));
    }

    private static String bareBlocking(Env env, Request.Builder to) throws IOException {
        byte[] body = MAPPER.writeValueAsBytes(env.bareBody);
        Request req = to.post(RequestBody.create(body, JSON)).build();
        try (Response r = env.bare.newCall(req).execute()) {
            JsonNode root = MAPPER.readTree(r.body().byteStream());
            long tokens = root.path("usage").path("completion_tokens").asLong();
            String text =
                    root.path("choices").path(0).path("message").path("content").asText();
            return tokens > 0 ? text : "";
        }
    }

    /** The bare baseline, streaming: read SSE lines, parse each chunk, gather the text and usage. */
    static String bareStreaming(Env env) throws IOException {
        return bareStreaming(env, new Request.Builder().url(env.url));
    }

    /** The strict bare baseline, streaming: as {@link #bareStreaming(Env)} with the URL parsed once. */
    static String bareStreamingUrl(Env env) throws IOException {
        return bareStreaming(env, new Request.Builder().url(env.parsedUrl));
    }

    private static String bareStreaming(Env env, Request.Builder to) throws IOException {
        Map<String, Object> withStream = new java.util.HashMap<>(env.bareBody);
        withStream.put("stream", true);
        withStream.put("stream_options", Map.of("include_usage", true));
        byte[] body = MAPPER.writeValueAsBytes(withStream);
        Request req = to.post(RequestBody.create(body, JSON)).build();
        StringBuilder text = new StringBuilder();
        long tokens = 0;
        try (Response r = env.bare.newCall(req).execute()) {
            BufferedSource source = r.body().source();
            String line;
            while ((line = source.readUtf8Line()) != null) {
                if (!line.startsWith("data: ")) {
                    continue;
                }
                String data = line.substring(6);
                if (data.equals("[DONE]")) {
                    break;
                }
                JsonNode chunk = MAPPER.readTree(data);
                JsonNode choices = chunk.path("choices");
                if (choices.size() > 0) {
                    text.append(choices.get(0).path("delta").path("content").asText(""));
                }
                tokens += chunk.path("usage").path("completion_tokens").asLong(0);
            }
        }
        return tokens > 0 ? text.toString() : "";
    }

    static String sdkBlocking(Env env) {
        ChatResponse r = env.sdk.chat(env.request);
        return r.receipt().cost().signum() >= 0 ? r.text() : "";
    }

    static String sdkStreaming(Env env) {
        StringBuilder text = new StringBuilder();
        try (ChatStream s = env.sdk.stream(env.streamRequest)) {
            while (s.hasNext()) {
                ChatChunk c = s.next();
                text.append(c.text());
            }
            return s.response().receipt().cost().signum() >= 0 ? text.toString() : "";
        }
    }

    /** Bare OkHttp + Jackson, blocking. */
    @Benchmark
    public String blockingBare(Env env) throws IOException {
        return bareBlocking(env);
    }

    /** The vLLM provider, blocking. */
    @Benchmark
    public String blockingSdk(Env env) {
        return sdkBlocking(env);
    }

    /** Bare OkHttp + Jackson, 50-chunk stream. */
    @Benchmark
    public String streamingBare(Env env) throws IOException {
        return bareStreaming(env);
    }

    /** The vLLM provider, 50-chunk stream. */
    @Benchmark
    public String streamingSdk(Env env) {
        return sdkStreaming(env);
    }
}
