package dev.hybridinference.vllm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.cost.CostLedger;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Cancellation must close the connection: a raw socket server writes the start of an answer, then waits
 * for the client's side of the socket to close, which it sees as end-of-input.
 */
@Timeout(30)
class VllmCancellationTest {
    private ServerSocket listener;
    private final CountDownLatch requestRead = new CountDownLatch(1);
    private final CountDownLatch clientClosed = new CountDownLatch(1);
    private Thread serverThread;

    @BeforeEach
    void start() throws IOException {
        listener = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    }

    @AfterEach
    void stop() throws Exception {
        listener.close();
        if (serverThread != null) {
            serverThread.join(5000);
        }
    }

    /** Serves one request: headers and {@code firstBytes}, then holds the connection open. */
    private void serveOnce(String headers, String firstBytes) {
        serverThread = new Thread(() -> {
            try (Socket s = listener.accept()) {
                InputStream in = s.getInputStream();
                readRequest(in);
                requestRead.countDown();
                OutputStream out = s.getOutputStream();
                out.write((headers + firstBytes).getBytes(StandardCharsets.UTF_8));
                out.flush();
                s.setSoTimeout(20_000);
                // Nothing more is sent: the next read ends only when the client closes its side.
                if (in.read() == -1) {
                    clientClosed.countDown();
                }
            } catch (IOException e) {
                // A reset from the client also means it closed the connection.
                clientClosed.countDown();
            }
        });
        serverThread.start();
    }

    private static void readRequest(InputStream in) throws IOException {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                return;
            }
            head.append((char) c);
        }
        String h = head.toString().toLowerCase(java.util.Locale.ROOT);
        int i = h.indexOf("content-length:");
        int length = Integer.parseInt(h.substring(i + 15, h.indexOf("\r\n", i)).trim());
        in.readNBytes(length);
    }

    private VllmClient client(CostLedger ledger) {
        return VllmClient.builder()
                .baseUrl("http://127.0.0.1:" + listener.getLocalPort())
                .model("m")
                .scrapeInterval(Duration.ZERO)
                .ledger(ledger)
                .build();
    }

    private static final String SSE_HEADERS =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

    private static String chunked(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return Integer.toHexString(b.length) + "\r\n" + s + "\r\n";
    }

    @Test
    void closingAStreamMidwayClosesTheConnection() throws Exception {
        serveOnce(SSE_HEADERS, chunked("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n"));
        CostLedger ledger = new CostLedger();
        try (VllmClient client = client(ledger)) {
            ChatStream stream = client.stream(ChatRequest.of("hi"));
            assertThat(stream.next().text()).isEqualTo("first");
            stream.close();
            assertThat(clientClosed.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(stream.hasNext()).isFalse();
            assertThat(client.load().inFlight()).isZero();
        }
        assertThat(ledger.totals().calls()).isEqualTo(1);
    }

    @Test
    void closingAStreamFromAnotherThreadUnblocksTheReader() throws Exception {
        serveOnce(SSE_HEADERS, chunked("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n"));
        try (VllmClient client = client(new CostLedger())) {
            ChatStream stream = client.stream(ChatRequest.of("hi"));
            stream.next();
            CompletableFuture<Throwable> reader = CompletableFuture.supplyAsync(() -> {
                try {
                    stream.hasNext();
                    return null;
                } catch (RuntimeException e) {
                    return e;
                }
            });
            Thread.sleep(200);
            stream.close();
            Throwable t = reader.get(10, TimeUnit.SECONDS);
            assertThat(t).isInstanceOf(CancelledException.class);
            assertThat(clientClosed.await(10, TimeUnit.SECONDS)).isTrue();
        }
    }

    @Test
    void cancellingAnAsyncCallClosesTheConnection() throws Exception {
        serveOnce("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n", "{\"choices\":");
        CostLedger ledger = new CostLedger();
        try (VllmClient client = client(ledger)) {
            CompletableFuture<ChatResponse> f = client.chatAsync(ChatRequest.of("hi"));
            assertThat(requestRead.await(10, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(100);
            f.cancel(true);
            assertThat(clientClosed.await(10, TimeUnit.SECONDS)).isTrue();
            assertThatThrownBy(f::get).isInstanceOf(java.util.concurrent.CancellationException.class);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (ledger.totals().calls() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertThat(ledger.totals().calls()).isEqualTo(1);
            assertThat(client.load().inFlight()).isZero();
        }
    }
}
