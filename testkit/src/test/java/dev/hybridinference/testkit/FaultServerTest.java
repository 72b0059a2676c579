package dev.hybridinference.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The fault server speaks real HTTP/1.1 and SSE, and each knob does what it says. */
@Timeout(30)
class FaultServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CHAT =
            "{\"model\":\"fault-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi" + " there\"}]}";
    private static final String STREAM = "{\"model\":\"fault-model\",\"stream\":true,\"stream_options\":"
            + "{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

    private final FaultServer server = FaultServer.start();

    @AfterEach
    void stop() {
        server.close();
    }

    @Test
    void answersBlockingCallsOnAKeptAliveConnectionAndRecordsThem() throws Exception {
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", CHAT, "Authorization: Bearer sk-test");
            Raw.Response first = raw.read();
            raw.post("/v1/chat/completions", CHAT);
            Raw.Response second = raw.read();
            assertThat(first.status).isEqualTo(200);
            JsonNode root = JSON.readTree(first.body);
            assertThat(root.at("/choices/0/message/content").asText())
                    .isEqualTo("The fault server answers one word at a time.");
            assertThat(root.at("/usage/completion_tokens").asInt()).isEqualTo(9);
            assertThat(second.status).isEqualTo(200);
        }
        List<FaultServer.Recorded> posts = server.requests("POST", "/v1/chat/completions");
        assertThat(posts).hasSize(2);
        assertThat(posts.get(0).connection()).isEqualTo(posts.get(1).connection());
        assertThat(posts.get(0).reusedConnection()).isFalse();
        assertThat(posts.get(1).reusedConnection()).isTrue();
        assertThat(posts.get(0).header("authorization")).isEqualTo("Bearer sk-test");
        assertThat(posts.get(0).bodyText()).isEqualTo(CHAT);
    }

    @Test
    void streamsChunksThenTheUsageChunkThenDone() throws Exception {
        server.answer("one two three");
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", STREAM);
            Raw.Response r = raw.read();
            assertThat(r.status).isEqualTo(200);
            assertThat(r.headers.get("content-type")).startsWith("text/event-stream");
            assertThat(r.complete).isTrue();
            List<String> events = r.events();
            assertThat(events.get(events.size() - 1)).isEqualTo("data: [DONE]");
            assertThat(events.get(events.size() - 2)).contains("\"usage\"").contains("\"completion_tokens\":3");
            assertThat(String.join("", events)).contains("\"content\":\" two\"");
            // kept alive
            raw.post("/v1/chat/completions", CHAT);
            assertThat(raw.read().status).isEqualTo(200);
        }
    }

    @Test
    void closesAfterAStreamWhenAskedWithoutNotice() throws Exception {
        server.closeAfterStream(true);
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", STREAM);
            Raw.Response r = raw.read();
            assertThat(r.complete).isTrue();
            assertThat(r.headers).doesNotContainKey("connection");
            assertThat(raw.closedByPeer(Duration.ofSeconds(2))).isTrue();
        }
    }

    @Test
    void closesAConnectionLeftIdleTooLong() throws Exception {
        server.idleTimeout(Duration.ofMillis(150));
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", CHAT);
            assertThat(raw.read().status).isEqualTo(200);
            long start = System.nanoTime();
            assertThat(raw.closedByPeer(Duration.ofSeconds(2))).isTrue();
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThan(Duration.ofMillis(100));
        }
    }

    @Test
    void failuresCarryTheirStatusHeadersAndBody() throws Exception {
        server.failNext(1, FaultServer.Failure.serviceUnavailable("0").withHeader("retry-after-ms", "5"));
        HttpClient http = HttpClient.newHttpClient();
        HttpResponse<String> r = http.send(post(CHAT), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(503);
        assertThat(r.headers().firstValue("Retry-After")).hasValue("0");
        assertThat(r.headers().firstValue("retry-after-ms")).hasValue("5");
        assertThat(r.body()).contains("service unavailable");
        assertThat(http.send(post(CHAT), HttpResponse.BodyHandlers.ofString()).statusCode())
                .isEqualTo(200);

        server.failWhenPromptContains("boom", FaultServer.Failure.llamaCpp(400, "x", "exceed_context_size_error"));
        assertThat(http.send(post(CHAT.replace("hi", "boom")), HttpResponse.BodyHandlers.ofString())
                        .body())
                .isEqualTo("{\"error\":{\"code\":400,\"message\":\"x\",\"type\":\"exceed_context_size_error\"}}");
    }

    @Test
    void echoesTheRequestHeadersIntoTheErrorBody() throws Exception {
        server.echoHeaders(400);
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", CHAT, "Authorization: Bearer sk-echo-1234");
            Raw.Response r = raw.read();
            assertThat(r.status).isEqualTo(400);
            assertThat(r.text()).contains("Authorization: Bearer sk-echo-1234");
        }
        server.echoHeaders(401, FaultServer.EchoStyle.KEY_VALUE);
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", CHAT, "Authorization: Bearer sk-echo-1234");
            assertThat(raw.read().text()).contains("Incorrect API key provided: sk-echo-1234.");
        }
    }

    @Test
    void anEndlessLineStopsAtItsCapAndClosesTheConnection() throws Exception {
        server.endlessSseLine(1_000_000);
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", STREAM);
            Raw.Response r = raw.read();
            assertThat(r.complete).isFalse();
            assertThat(r.body.length).isBetween(1_000_000, 1_100_000);
            assertThat(r.text()).startsWith("data: {").doesNotContain("\n");
        }
    }

    @Test
    void aCutStreamEndsWithoutDoneAfterItsTokens() throws Exception {
        server.answerTokens(10).cutStreamAfter(4, true);
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", STREAM);
            Raw.Response r = raw.read();
            assertThat(r.complete).isFalse();
            List<String> events = r.events();
            assertThat(events.stream().filter(e -> e.contains("\"content\":\" token")))
                    .hasSize(3);
            assertThat(events.get(events.size() - 1)).contains("\"completion_tokens\":4");
            assertThat(r.text()).doesNotContain("[DONE]");
        }
    }

    @Test
    void streamErrorShapes() throws Exception {
        server.answerTokens(5).streamError(FaultServer.StreamError.LLAMA_CPP_ERROR_EVENT, 2, "boom");
        List<String> llama = streamEvents();
        assertThat(llama)
                .contains("error: {\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}", "data: [DONE]");
        assertThat(llama.indexOf("data: [DONE]")).isEqualTo(llama.size() - 1);

        server.streamError(FaultServer.StreamError.DATA_ERROR_THEN_DONE, 1, "bad");
        List<String> data = streamEvents();
        assertThat(data.get(data.size() - 2)).startsWith("data: {\"error\":{\"message\":\"bad\"");

        server.streamError(FaultServer.StreamError.NULL_ERROR_FIELD, 0);
        List<String> ok = streamEvents();
        assertThat(ok.get(1)).startsWith("data: {\"error\":null,");
        assertThat(String.join("", ok)).contains("\"finish_reason\":\"stop\"");
    }

    @Test
    void invalidUtf8BytesGoOutRaw() throws Exception {
        server.invalidUtf8(true);
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", CHAT);
            byte[] body = raw.read().body;
            assertThat(indexOf(body, (byte) 0xFF)).isPositive();
            assertThat(new String(body, StandardCharsets.UTF_8)).contains(FaultServer.INVALID_UTF8_DECODED);
        }
    }

    @Test
    void toolCallFragmentsWithAHugeIndexOrMany() throws Exception {
        server.toolCallIndex(100_000_000L);
        assertThat(String.join("\n", streamEvents())).contains("\"index\":100000000");
        server.toolCallIndex(-1).manyToolCalls(250);
        String all = String.join("\n", streamEvents());
        assertThat(all).contains("\"index\":249,").doesNotContain("\"index\":250,");
    }

    @Test
    void aHugeBodyIsGeneratedAsItIsSent() throws Exception {
        server.hugeBody(5_000_000);
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", CHAT);
            Raw.Response r = raw.read();
            assertThat(r.complete).isTrue();
            assertThat(r.body.length).isBetween(5_000_000, 5_200_000);
            assertThat(JSON.readTree(r.body).at("/choices/0/message/content").asText())
                    .isEqualTo("huge");
        }
    }

    @Test
    void healthMetricsAndModels() throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        assertThat(get(http, "/health").statusCode()).isEqualTo(200);
        server.health(404);
        assertThat(get(http, "/health").statusCode()).isEqualTo(404);

        server.load(2, 3, 0.25);
        assertThat(get(http, "/metrics").body()).contains("vllm:num_requests_waiting{model_name=\"fault-model\"} 3.0");
        server.metrics(FaultServer.MetricsStyle.LLAMA_CPP);
        assertThat(get(http, "/metrics").body())
                .contains("llamacpp:requests_processing 2.0", "llamacpp:requests_deferred 3.0")
                .contains("llamacpp:kv_cache_usage_ratio 0.25");
        server.metrics(FaultServer.MetricsStyle.ERROR_500);
        assertThat(get(http, "/metrics").statusCode()).isEqualTo(500);
        server.metrics(FaultServer.MetricsStyle.VLLM).hugeMetrics(2_000_000);
        String huge = get(http, "/metrics").body();
        assertThat(huge.length()).isGreaterThan(2_000_000);
        assertThat(huge).endsWith("vllm:kv_cache_usage_perc{model_name=\"fault-model\"} 0.25\n");

        server.modelsDelay(Duration.ofMillis(300)).models("a", "b");
        long start = System.nanoTime();
        HttpResponse<String> models = get(http, "/v1/models");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(290));
        assertThat(JSON.readTree(models.body()).at("/data/1/id").asText()).isEqualTo("b");
        assertThat(server.count("GET", "/v1/models")).isEqualTo(1);
    }

    @Test
    void garbageAndCutMetrics() throws Exception {
        server.metrics(FaultServer.MetricsStyle.CUT);
        try (Raw raw = new Raw(server.port())) {
            raw.get("/metrics");
            Raw.Response r = raw.read();
            assertThat(r.complete).isFalse();
        }
        server.metrics(FaultServer.MetricsStyle.GARBAGE);
        try (Raw raw = new Raw(server.port())) {
            raw.get("/metrics");
            assertThat(raw.read().text()).startsWith("{{{ not prometheus");
        }
    }

    @Test
    void redirectsChatToAnotherOrigin() throws Exception {
        server.redirectChat(307, "http://127.0.0.1:1/v1/chat/completions");
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", CHAT);
            Raw.Response r = raw.read();
            assertThat(r.status).isEqualTo(307);
            assertThat(r.headers.get("location")).isEqualTo("http://127.0.0.1:1/v1/chat/completions");
        }
    }

    @Test
    void slowBytesAreWrittenOneAtATime() throws Exception {
        server.slowBytes(Duration.ofMillis(1)).answer("x");
        long start = System.nanoTime();
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", CHAT);
            Raw.Response r = raw.read();
            assertThat(r.status).isEqualTo(200);
            long ms = Duration.ofNanos(System.nanoTime() - start).toMillis();
            assertThat(ms).isGreaterThanOrEqualTo(r.body.length);
        }
    }

    @Test
    void resetSwitchesEveryFaultOff() throws Exception {
        server.failAlways(FaultServer.Failure.status(500)).health(404).closeAfterStream(true);
        server.reset();
        HttpClient http = HttpClient.newHttpClient();
        assertThat(http.send(post(CHAT), HttpResponse.BodyHandlers.ofString()).statusCode())
                .isEqualTo(200);
        assertThat(get(http, "/health").statusCode()).isEqualTo(200);
    }

    private List<String> streamEvents() throws IOException {
        try (Raw raw = new Raw(server.port())) {
            raw.post("/v1/chat/completions", STREAM);
            return raw.read().events();
        }
    }

    private HttpRequest post(String body) {
        return HttpRequest.newBuilder(URI.create(server.baseUrl() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json")
                .build();
    }

    private HttpResponse<String> get(HttpClient http, String path) throws Exception {
        return http.send(
                HttpRequest.newBuilder(URI.create(server.baseUrl() + path))
                        .GET()
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static int indexOf(byte[] bytes, byte b) {
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] == b) {
                return i;
            }
        }
        return -1;
    }

    /** A minimal HTTP/1.1 client over one socket, to see exactly what the server sends and when it closes. */
    static final class Raw implements AutoCloseable {
        private final Socket socket;
        private final InputStream in;
        private final OutputStream out;

        Raw(int port) throws IOException {
            socket = new Socket(InetAddress.getLoopbackAddress(), port);
            socket.setSoTimeout(10_000);
            in = new BufferedInputStream(socket.getInputStream());
            out = socket.getOutputStream();
        }

        void post(String path, String body, String... headers) throws IOException {
            byte[] b = body.getBytes(StandardCharsets.UTF_8);
            StringBuilder sb = new StringBuilder("POST " + path + " HTTP/1.1\r\nHost: localhost\r\n");
            sb.append("Content-Type: application/json\r\nContent-Length: ")
                    .append(b.length)
                    .append("\r\n");
            for (String h : headers) {
                sb.append(h).append("\r\n");
            }
            sb.append("\r\n");
            out.write(sb.toString().getBytes(StandardCharsets.ISO_8859_1));
            out.write(b);
            out.flush();
        }

        void get(String path) throws IOException {
            out.write(("GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
        }

        /** Reads one response; a body cut by the server's close is returned as far as it came. */
        Response read() throws IOException {
            String status = line();
            Response r = new Response();
            r.status = Integer.parseInt(status.split(" ")[1]);
            String h;
            while (!(h = line()).isEmpty()) {
                int colon = h.indexOf(':');
                r.headers.put(
                        h.substring(0, colon).trim().toLowerCase(Locale.ROOT),
                        h.substring(colon + 1).trim());
            }
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            if ("chunked".equalsIgnoreCase(r.headers.get("transfer-encoding"))) {
                while (true) {
                    String size = line();
                    if (size == null) {
                        break;
                    }
                    int n = Integer.parseInt(size.trim(), 16);
                    if (n == 0) {
                        line();
                        r.complete = true;
                        break;
                    }
                    byte[] data = in.readNBytes(n);
                    body.write(data);
                    if (data.length < n || line() == null) {
                        break;
                    }
                }
            } else {
                int n = Integer.parseInt(r.headers.getOrDefault("content-length", "0"));
                byte[] data = in.readNBytes(n);
                body.write(data);
                r.complete = data.length == n;
            }
            r.body = body.toByteArray();
            return r;
        }

        boolean closedByPeer(Duration wait) throws IOException {
            socket.setSoTimeout((int) wait.toMillis());
            try {
                return in.read() < 0;
            } catch (SocketTimeoutException e) {
                return false;
            }
        }

        private String line() throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            int c;
            while ((c = in.read()) >= 0 && c != '\n') {
                b.write(c);
            }
            if (c < 0 && b.size() == 0) {
                return null;
            }
            String s = b.toString(StandardCharsets.ISO_8859_1);
            return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }

        static final class Response {
            int status;
            final Map<String, String> headers = new LinkedHashMap<>();
            byte[] body;
            boolean complete;

            String text() {
                return new String(body, StandardCharsets.UTF_8);
            }

            /** The SSE events: each event's lines joined, blank separators dropped. */
            List<String> events() {
                return List.of(text().split("\n\n")).stream()
                        .filter(s -> !s.isBlank())
                        .map(String::strip)
                        .toList();
            }
        }
    }
}
