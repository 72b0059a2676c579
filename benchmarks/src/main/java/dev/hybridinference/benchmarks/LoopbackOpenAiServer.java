package dev.hybridinference.benchmarks;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * A minimal HTTP/1.1 server on loopback that answers {@code POST /v1/chat/completions} with fixed,
 * pre-encoded bytes in the OpenAI-compatible protocol: a JSON completion, or, when the request body asks
 * for {@code "stream":true}, an SSE response of {@code chunks} content chunks, the usage chunk and {@code
 * data: [DONE]}, in chunked transfer encoding, as vLLM sends it. Keep-alive. Kept this small so that the
 * benchmark measures the clients rather than the server.
 *
 * <p>One thread serves every connection from a selector, as vLLM's server runs one event loop. A thread
 * per connection made the comparison of two clients depend on chance: each client has its own
 * connections, and on a machine with few cores the operating system's placement of a client thread and
 * the server thread of its connection made every call on some connections about twice as slow as on
 * others, for as long as the threads lived; two identical clients measured 0.5 to 2 times each other in
 * the same run. With one server thread every client meets the same one.
 */
final class LoopbackOpenAiServer implements AutoCloseable {
    private static final byte[] CONTENT_LENGTH = "content-length:".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] STREAM_TRUE = "\"stream\":true".getBytes(StandardCharsets.US_ASCII);

    private final ServerSocketChannel server;
    private final Selector selector;
    private final Thread loop;
    private volatile boolean closed;
    private final byte[] blocking;
    private final byte[] streaming;

    LoopbackOpenAiServer(int chunks) throws IOException {
        this.server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 128);
        server.configureBlocking(false);
        this.selector = Selector.open();
        server.register(selector, SelectionKey.OP_ACCEPT);
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
        this.loop = new Thread(this::run, "loopback-openai");
        loop.setDaemon(true);
        loop.start();
    }

    private static String chunk(String s) {
        return Integer.toHexString(s.getBytes(StandardCharsets.UTF_8).length) + "\r\n" + s + "\r\n";
    }

    String baseUrl() {
        return "http://127.0.0.1:" + server.socket().getLocalPort();
    }

    /** The event loop: accepts, reads requests and writes answers until the server is closed. */
    private void run() {
        try {
            while (!closed) {
                selector.select();
                for (SelectionKey key : selector.selectedKeys()) {
                    try {
                        if (key.isAcceptable()) {
                            accept();
                        } else {
                            serve(key);
                        }
                    } catch (IOException e) {
                        // the client closed the connection
                        key.cancel();
                        key.channel().close();
                    }
                }
                selector.selectedKeys().clear();
            }
        } catch (IOException e) {
            // cannot select any more: end, as when closed
        } finally {
            for (SelectionKey key : selector.keys()) {
                try {
                    key.channel().close();
                } catch (IOException e) {
                    // closing anyway
                }
            }
            try {
                selector.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
    }

    private void accept() throws IOException {
        SocketChannel c = server.accept();
        if (c == null) {
            return;
        }
        c.configureBlocking(false);
        c.setOption(StandardSocketOptions.TCP_NODELAY, true);
        c.register(selector, SelectionKey.OP_READ, new Connection());
    }

    /** One connection: what it sent that is not answered yet, and what is left to write of an answer. */
    private static final class Connection {
        ByteBuffer in = ByteBuffer.allocate(64 * 1024);
        ByteBuffer out;
    }

    private void serve(SelectionKey key) throws IOException {
        SocketChannel c = (SocketChannel) key.channel();
        Connection conn = (Connection) key.attachment();
        if (conn.out != null) {
            // An answer was only partly written: finish it before reading the next request.
            c.write(conn.out);
            if (conn.out.hasRemaining()) {
                return;
            }
            conn.out = null;
            key.interestOps(SelectionKey.OP_READ);
        }
        if (key.isReadable() && c.read(conn.in) < 0) {
            throw new IOException("closed");
        }
        while (conn.out == null) {
            int length = requestLength(conn.in);
            if (length < 0) {
                if (!conn.in.hasRemaining()) {
                    throw new IOException("request too large");
                }
                return;
            }
            boolean stream = contains(conn.in.array(), 0, length, STREAM_TRUE);
            // Keep what follows this request (a client may send the next one right after it).
            conn.in.flip();
            conn.in.position(length);
            conn.in.compact();
            ByteBuffer answer = ByteBuffer.wrap(stream ? streaming : blocking);
            c.write(answer);
            if (answer.hasRemaining()) {
                conn.out = answer;
                key.interestOps(SelectionKey.OP_WRITE);
            }
        }
    }

    /**
     * The length of the first complete request (head and body) in the buffer's bytes written so far, or
     * -1 when it has not all arrived.
     */
    private static int requestLength(ByteBuffer in) {
        byte[] b = in.array();
        int end = in.position();
        for (int i = 3; i < end; i++) {
            if (b[i] == '\n' && b[i - 1] == '\r' && b[i - 2] == '\n' && b[i - 3] == '\r') {
                int total = i + 1 + contentLength(b, i + 1);
                return total <= end ? total : -1;
            }
        }
        return -1;
    }

    /** The {@code Content-Length} among the header lines in {@code b[0, headEnd)}; zero when absent. */
    private static int contentLength(byte[] b, int headEnd) {
        for (int line = 0; line < headEnd; ) {
            if (startsWithIgnoreCase(b, line, headEnd, CONTENT_LENGTH)) {
                int n = 0;
                for (int i = line + CONTENT_LENGTH.length; i < headEnd && b[i] != '\r'; i++) {
                    if (b[i] >= '0' && b[i] <= '9') {
                        n = n * 10 + (b[i] - '0');
                    }
                }
                return n;
            }
            while (line < headEnd && b[line] != '\n') {
                line++;
            }
            line++;
        }
        return 0;
    }

    private static boolean startsWithIgnoreCase(byte[] b, int from, int end, byte[] lowerPrefix) {
        if (from + lowerPrefix.length > end) {
            return false;
        }
        for (int i = 0; i < lowerPrefix.length; i++) {
            int c = b[from + i];
            if (c >= 'A' && c <= 'Z') {
                c += 'a' - 'A';
            }
            if (c != lowerPrefix[i]) {
                return false;
            }
        }
        return true;
    }

    private static boolean contains(byte[] b, int from, int end, byte[] needle) {
        outer:
        for (int i = from; i + needle.length <= end; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (b[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }

    @Override
    public void close() throws IOException {
        closed = true;
        selector.wakeup();
        server.close();
        try {
            loop.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
