package dev.hybridinference.benchmarks;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A minimal HTTP/1.1 server on loopback that answers {@code POST /v1/chat/completions} with fixed,
 * pre-encoded bytes in the OpenAI-compatible protocol: a JSON completion, or, when the request body asks
 * for {@code "stream":true}, an SSE response of {@code chunks} content chunks, the usage chunk and {@code
 * data: [DONE]}, in chunked transfer encoding, as vLLM sends it. Keep-alive, one thread per connection.
 * Kept this small so that the benchmark measures the clients rather than the server.
 */
final class LoopbackOpenAiServer implements AutoCloseable {
    private final ServerSocket socket;
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "loopback-openai");
        t.setDaemon(true);
        return t;
    });
    private final byte[] blocking;
    private final byte[] streaming;

    LoopbackOpenAiServer(int chunks) throws IOException {
        this.socket = new ServerSocket(0, 128, InetAddress.getLoopbackAddress());
        StringBuilder text = new StringBuilder();
        StringBuilder events = new StringBuilder();
        String prefix = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                + "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":";
        events.append(
                chunk("data: " + prefix + "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"));
        for (int i = 0; i < chunks; i++) {
            String word = (i == 0 ? "" : " ") + "word" + i;
            text.append(word);
            String finish = i == chunks - 1 ? "\"stop\"" : "null";
            events.append(chunk(
                    "data: " + prefix + "{\"content\":\"" + word + "\"},\"finish_reason\":" + finish + "}]}\n\n"));
        }
        String usage = "\"usage\":{\"prompt_tokens\":24,\"completion_tokens\":" + chunks + ",\"total_tokens\":"
                + (24 + chunks) + "}";
        events.append(chunk("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                + "\"model\":\"bench-model\",\"choices\":[]," + usage + "}\n\n"));
        events.append(chunk("data: [DONE]\n\n"));
        events.append("0\r\n\r\n");
        String sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        this.streaming = (sseHead + events).getBytes(StandardCharsets.UTF_8);
        String json =
                "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"bench-model\","
                        + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"" + text
                        + "\"},\"finish_reason\":\"stop\"}]," + usage + "}";
        byte[] jsonBytes = json.getBytes(StandardCharsets.UTF_8);
        this.blocking = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + jsonBytes.length
                        + "\r\n\r\n" + json)
                .getBytes(StandardCharsets.UTF_8);
        pool.execute(this::acceptLoop);
    }

    private static String chunk(String s) {
        return Integer.toHexString(s.getBytes(StandardCharsets.UTF_8).length) + "\r\n" + s + "\r\n";
    }

    String baseUrl() {
        return "http://127.0.0.1:" + socket.getLocalPort();
    }

    private void acceptLoop() {
        while (!socket.isClosed()) {
            try {
                Socket s = socket.accept();
                s.setTcpNoDelay(true);
                pool.execute(() -> serve(s));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Socket s) {
        try (s) {
            InputStream in = new BufferedInputStream(s.getInputStream(), 16 * 1024);
            OutputStream out = s.getOutputStream();
            byte[] body = new byte[64 * 1024];
            while (true) {
                int length = readHead(in);
                if (length < 0) {
                    return;
                }
                int read = in.readNBytes(body, 0, Math.min(length, body.length));
                if (read < length) {
                    return;
                }
                out.write(isStream(body, read) ? streaming : blocking);
                out.flush();
            }
        } catch (IOException e) {
            // the client closed the connection
        }
    }

    /** Reads a request head; returns its Content-Length, or -1 at the end of the connection. */
    private static int readHead(InputStream in) throws IOException {
        StringBuilder line = new StringBuilder();
        int length = 0;
        boolean any = false;
        while (true) {
            int c = in.read();
            if (c < 0) {
                return -1;
            }
            any = true;
            if (c == '\n') {
                String l = line.toString().trim();
                if (l.isEmpty()) {
                    return any ? length : -1;
                }
                if (l.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
                    length = Integer.parseInt(l.substring(15).trim());
                }
                line.setLength(0);
            } else {
                line.append((char) c);
            }
        }
    }

    private static boolean isStream(byte[] body, int length) {
        String s = new String(body, 0, length, StandardCharsets.UTF_8);
        return s.contains("\"stream\":true");
    }

    @Override
    public void close() throws IOException {
        socket.close();
        pool.shutdownNow();
    }
}
