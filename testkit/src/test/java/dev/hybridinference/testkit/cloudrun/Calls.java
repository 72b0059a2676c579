package dev.hybridinference.testkit.cloudrun;

import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;

/** What the tests send to the emulators: chat bodies, plain HTTP/1.1 calls and raw sockets. */
final class Calls {
    static final ObjectMapper MAPPER = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();

    private Calls() {}

    /** A chat body with one user message. */
    static ObjectNode chat(String prompt) {
        ObjectNode body = MAPPER.createObjectNode();
        body.putArray("messages").addObject().put("role", "user").put("content", prompt);
        return body;
    }

    static HttpRequest.Builder post(String url, String path, JsonNode body) {
        return HttpRequest.newBuilder(URI.create(url + path))
                .timeout(Duration.ofSeconds(20))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
    }

    static HttpResponse<String> send(HttpRequest.Builder request) {
        try {
            return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static HttpResponse<String> chatCall(String url, JsonNode body) {
        return send(post(url, "/v1/chat/completions", body));
    }

    static HttpResponse<String> chatCall(String url, JsonNode body, String bearer) {
        return send(post(url, "/v1/chat/completions", body).header("Authorization", "Bearer " + bearer));
    }

    /** Sends a chat request without waiting for its answer (each on its own connection when several overlap). */
    static CompletableFuture<HttpResponse<String>> chatAsync(String url, JsonNode body) {
        return HTTP.sendAsync(post(url, "/v1/chat/completions", body).build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(String url, String path) {
        return send(HttpRequest.newBuilder(URI.create(url + path))
                .timeout(Duration.ofSeconds(20))
                .GET());
    }

    static JsonNode json(HttpResponse<String> response) {
        try {
            return MAPPER.readTree(response.body());
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + response.body(), e);
        }
    }

    static JsonNode readJson(String text) {
        try {
            return MAPPER.readTree(text);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + text, e);
        }
    }

    /** The {@code data:} payloads of a server-sent event stream, in order. */
    static List<String> events(String sse) {
        List<String> out = new ArrayList<>();
        for (String event : sse.split("\n\n")) {
            if (event.startsWith("data: ")) {
                out.add(event.substring("data: ".length()));
            } else if (!event.isBlank()) {
                throw new AssertionError("not an SSE data event: " + event);
            }
        }
        return out;
    }

    /**
     * Opens a connection and sends a chat request on it without reading anything back; the caller closes the
     * socket to leave.
     */
    static Socket rawChat(String url, JsonNode body) throws IOException {
        URI uri = URI.create(url);
        Socket socket = new Socket(InetAddress.getByName(uri.getHost()), uri.getPort());
        byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
        OutputStream out = socket.getOutputStream();
        out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: " + uri.getAuthority()
                        + "\r\nContent-Type: application/json\r\nContent-Length: " + bytes.length + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        out.write(bytes);
        out.flush();
        return socket;
    }

    /** Waits until the condition holds; fails after {@code max}. Only turns a hang into a failure. */
    static void await(String what, Duration max, BooleanSupplier condition) {
        long deadline = System.nanoTime() + max.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("timed out waiting for: " + what);
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                fail("interrupted waiting for: " + what);
            }
        }
    }

    static void sleep(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
