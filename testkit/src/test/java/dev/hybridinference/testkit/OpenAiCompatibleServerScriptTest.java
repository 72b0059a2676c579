package dev.hybridinference.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The scripted behaviours of the OpenAI-compatible server, seen from a raw socket. */
@Timeout(30)
class OpenAiCompatibleServerScriptTest {
    private final OpenAiCompatibleServer server =
            OpenAiCompatibleServer.builder().start();

    @AfterEach
    void stop() {
        server.close();
    }

    private Socket post(boolean stream) throws IOException {
        URI uri = URI.create(server.baseUrl());
        Socket s = new Socket(InetAddress.getLoopbackAddress(), uri.getPort());
        s.setSoTimeout(10_000);
        String body =
                "{\"model\":\"m\",\"stream\":" + stream + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        String request =
                "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body;
        s.getOutputStream().write(request.getBytes(StandardCharsets.UTF_8));
        s.getOutputStream().flush();
        return s;
    }

    /** Everything the server sends until it closes the connection (or the read times out). */
    private static String readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[4096];
        try {
            int n;
            while ((n = in.read(buf)) >= 0) {
                out.write(buf, 0, n);
            }
        } catch (java.net.SocketTimeoutException e) {
            out.write("<timed out>".getBytes(StandardCharsets.UTF_8));
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    private static String readHead(InputStream in) throws IOException {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                break;
            }
            head.append((char) c);
        }
        return head.toString();
    }

    @Test
    void aScriptedFailureSendsItsStatusHeadersAndBodyOnce() throws IOException {
        server.failNext(429, "{\"error\":{\"message\":\"slow down\"}}", Map.of("Retry-After", "7"));
        try (Socket s = post(false)) {
            String head = readHead(s.getInputStream());
            assertThat(head).startsWith("HTTP/1.1 429").containsIgnoringCase("Retry-After: 7");
        }
        try (Socket s = post(false)) {
            assertThat(readHead(s.getInputStream())).startsWith("HTTP/1.1 200");
        }
    }

    @Test
    void aScriptedAnswerReplacesTheResponder() throws IOException {
        server.answerNext("exactly this");
        try (Socket s = post(false)) {
            String head = readHead(s.getInputStream());
            int length = Integer.parseInt(head.replaceAll("(?is).*content-length: *(\\d+).*", "$1"));
            String body = new String(s.getInputStream().readNBytes(length), StandardCharsets.UTF_8);
            assertThat(body).contains("\"content\":\"exactly this\"");
        }
    }

    @Test
    void aStallHoldsTheResponseOpenUntilTheClientLeavesAndCountsTheDisconnect() throws Exception {
        server.stallNext();
        Socket s = post(true);
        InputStream in = s.getInputStream();
        assertThat(readHead(in)).startsWith("HTTP/1.1 200").contains("text/event-stream");
        // Keep-alive comments only, never an answer.
        byte[] some = in.readNBytes(40);
        assertThat(new String(some, StandardCharsets.UTF_8))
                .contains(": keep-alive")
                .doesNotContain("data:");
        assertThat(server.stalledNow()).isEqualTo(1);
        assertThat(server.disconnects()).isZero();
        s.close();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (server.disconnects() == 0 && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        assertThat(server.disconnects()).isEqualTo(1);
        assertThat(server.stalledNow()).isZero();
        assertThat(server.stallsStarted()).isEqualTo(1);
    }

    @Test
    void aCutStreamDropsTheConnectionAfterItsChunksWithoutDone() throws IOException {
        server.answerNext("one two three four five");
        server.cutNextAfter(2);
        // The first script answers the first call; the cut applies to the second.
        try (Socket s = post(true)) {
            assertThat(readAll(s.getInputStream())).contains("[DONE]");
        }
        try (Socket s = post(true)) {
            String all = readAll(s.getInputStream());
            assertThat(all).doesNotContain("<timed out>").doesNotContain("[DONE]");
            assertThat(all.split("\"content\":\"", -1))
                    .as("role chunk plus two content chunks")
                    .hasSize(4);
        }
    }
}
