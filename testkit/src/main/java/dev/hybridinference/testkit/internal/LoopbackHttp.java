package dev.hybridinference.testkit.internal;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * A minimal HTTP/1.1 server on loopback sockets, plain or over TLS, one thread per connection, with persistent
 * connections. It gives the handler what the JDK's server cannot: responses whose headers are never sent, bodies cut
 * short of their declared length, and a way to wait until the client closes the connection without writing
 * anything.
 *
 * <p>Shared by the testkit's emulators; not part of the testkit's API.
 */
public final class LoopbackHttp implements AutoCloseable {
    /** Handles one request on a connection; it must answer through the exchange or abort it. */
    public interface Handler {
        /**
         * Handles one request.
         *
         * @param exchange the request and the means to answer it
         * @throws IOException when the connection fails; the connection is then closed
         */
        void handle(Exchange exchange) throws IOException;
    }

    private static final int MAX_HEAD_BYTES = 64 * 1024;
    private static final int MAX_BODY_BYTES = 32 * 1024 * 1024;

    private final Handler handler;
    private final SSLSocketFactory tls;
    private final ServerSocket serverSocket;
    private final ExecutorService executor;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    /**
     * Starts a server on a free loopback port.
     *
     * @param handler answers each request
     * @param threadName the prefix of the server's thread names
     * @throws IOException when the socket cannot be opened
     */
    public LoopbackHttp(Handler handler, String threadName) throws IOException {
        this(handler, threadName, 0);
    }

    /**
     * Starts a server on a given loopback port (0 for a free one). The address may be reused at once, so a
     * fixed port can serve one server after another.
     *
     * @param handler answers each request
     * @param threadName the prefix of the server's thread names
     * @param port the port, or 0
     * @throws IOException when the port cannot be bound
     */
    public LoopbackHttp(Handler handler, String threadName, int port) throws IOException {
        this(handler, threadName, port, null);
    }

    /**
     * Starts a server that speaks HTTPS (HTTP/1.1 over TLS) on a free loopback port. Each connection's TLS
     * handshake runs on its own thread, with the key and certificate of {@code serverContext}; ALPN offers only
     * {@code http/1.1}, so a client that asks for HTTP/2 falls back to HTTP/1.1. Aborting or resetting an exchange
     * drops the TCP connection without TLS's {@code close_notify}, as a failing server or network does.
     *
     * @param handler answers each request
     * @param threadName the prefix of the server's thread names
     * @param serverContext the server side of TLS: its key managers hold the server's key and certificate
     * @throws IOException when the socket cannot be opened
     */
    public LoopbackHttp(Handler handler, String threadName, SSLContext serverContext) throws IOException {
        this(
                handler,
                threadName,
                0,
                Objects.requireNonNull(serverContext, "serverContext").getSocketFactory());
    }

    private LoopbackHttp(Handler handler, String threadName, int port, SSLSocketFactory tls) throws IOException {
        this.handler = handler;
        this.tls = tls;
        this.serverSocket = new ServerSocket();
        try {
            serverSocket.setReuseAddress(true);
            serverSocket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 128);
        } catch (IOException e) {
            closeQuietly(serverSocket);
            throw e;
        }
        AtomicInteger n = new AtomicInteger();
        this.executor = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, threadName + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        Thread acceptor = new Thread(this::acceptLoop, threadName + "-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /**
     * A server-side TLS context that presents {@code chain} (the server's certificate first) and proves it with
     * {@code key}, for {@link #LoopbackHttp(Handler, String, SSLContext)}. The key stays in memory as it is, with
     * no key store, so making a context costs next to nothing.
     *
     * @param key the private key of the first certificate
     * @param chain the certificate chain, the server's own first
     * @return the context
     */
    public static SSLContext serverSslContext(PrivateKey key, X509Certificate... chain) {
        Objects.requireNonNull(key, "key");
        if (chain.length == 0) {
            throw new IllegalArgumentException("the certificate chain must not be empty");
        }
        X509Certificate[] certificates = chain.clone();
        String alias = "server";
        X509ExtendedKeyManager keyManager = new X509ExtendedKeyManager() {
            @Override
            public String[] getClientAliases(String keyType, Principal[] issuers) {
                return null;
            }

            @Override
            public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
                return null;
            }

            @Override
            public String[] getServerAliases(String keyType, Principal[] issuers) {
                return key.getAlgorithm().equals(keyType) ? new String[] {alias} : null;
            }

            @Override
            public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
                return key.getAlgorithm().equals(keyType) ? alias : null;
            }

            @Override
            public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
                return key.getAlgorithm().equals(keyType) ? alias : null;
            }

            @Override
            public X509Certificate[] getCertificateChain(String a) {
                return alias.equals(a) ? certificates.clone() : null;
            }

            @Override
            public PrivateKey getPrivateKey(String a) {
                return alias.equals(a) ? key : null;
            }
        };
        try {
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(new KeyManager[] {keyManager}, null, null);
            return context;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot make a TLS context: " + e.getMessage(), e);
        }
    }

    /** The port the server listens on. */
    public int port() {
        return serverSocket.getLocalPort();
    }

    /** Whether the server speaks HTTPS. */
    public boolean tls() {
        return tls != null;
    }

    /** The loopback address the server listens on. */
    public InetAddress address() {
        return serverSocket.getInetAddress();
    }

    /** Whether {@link #close()} has begun; a connection that fails after that was closed by the server. */
    public boolean closed() {
        return closed;
    }

    private void acceptLoop() {
        while (!closed) {
            Socket socket;
            try {
                socket = serverSocket.accept();
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                continue;
            }
            open.add(socket);
            if (closed) {
                closeQuietly(socket);
                return;
            }
            try {
                executor.execute(() -> serve(socket));
            } catch (RejectedExecutionException e) {
                open.remove(socket);
                closeQuietly(socket);
            }
        }
    }

    private void serve(Socket socket) {
        SSLSocket secure = null;
        try (socket) {
            socket.setTcpNoDelay(true);
            Socket streams = socket;
            if (tls != null) {
                secure = handshake(socket);
                streams = secure;
            }
            InputStream in = new BufferedInputStream(streams.getInputStream());
            OutputStream out = new BufferedOutputStream(streams.getOutputStream(), 16 * 1024);
            while (!closed) {
                // The exchange holds the TCP socket, so that aborting it drops the connection without close_notify.
                Exchange exchange = Exchange.read(socket, in, out);
                if (exchange == null) {
                    return;
                }
                handler.handle(exchange);
                if (!exchange.reusable()) {
                    return;
                }
            }
        } catch (IOException e) {
            // The connection ends: the client went away, sent something malformed, or the server closed.
        } finally {
            if (secure != null && !socket.isClosed()) {
                closeQuietly(secure); // an orderly end: close_notify, then the TCP close
            }
            open.remove(socket);
        }
    }

    /** Runs the server side of a TLS handshake over an accepted connection, offering only HTTP/1.1 by ALPN. */
    private SSLSocket handshake(Socket socket) throws IOException {
        SSLSocket secure = (SSLSocket) tls.createSocket(socket, null, true);
        SSLParameters parameters = secure.getSSLParameters();
        parameters.setApplicationProtocols(new String[] {"http/1.1"});
        secure.setSSLParameters(parameters);
        secure.startHandshake();
        return secure;
    }

    /** Stops accepting, closes every connection and interrupts the handlers still running. */
    @Override
    public void close() {
        closed = true;
        closeQuietly(serverSocket);
        for (Socket s : open) {
            closeQuietly(s);
        }
        executor.shutdownNow();
        try {
            executor.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Decodes {@code application/x-www-form-urlencoded} text (a form body or a query string): fields by name, in
     * order, the first value of a repeated field kept; {@code +} is a space, percent escapes are UTF-8.
     */
    public static Map<String, String> formFields(String encoded) {
        Map<String, String> fields = new LinkedHashMap<>();
        if (encoded == null || encoded.isEmpty()) {
            return fields;
        }
        for (String pair : encoded.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int eq = pair.indexOf('=');
            String name = URLDecoder.decode(eq >= 0 ? pair.substring(0, eq) : pair, StandardCharsets.UTF_8);
            String value = eq >= 0 ? URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8) : "";
            fields.putIfAbsent(name, value);
        }
        return fields;
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            // already closed or broken: nothing to do
        }
    }

    /** One request and the means to answer it. */
    public static final class Exchange {
        private final Socket socket;
        private final InputStream in;
        private final OutputStream out;
        private final String method;
        private final String path;
        private final String query;
        private final Map<String, String> headers;
        private final byte[] body;
        private boolean reusable;
        private boolean started;

        private Exchange(
                Socket socket,
                InputStream in,
                OutputStream out,
                String method,
                String path,
                String query,
                Map<String, String> headers,
                byte[] body,
                boolean reusable) {
            this.socket = socket;
            this.in = in;
            this.out = out;
            this.method = method;
            this.path = path;
            this.query = query;
            this.headers = headers;
            this.body = body;
            this.reusable = reusable;
        }

        /** Reads the next request, or returns null when the client closed the connection between requests. */
        static Exchange read(Socket socket, InputStream in, OutputStream out) throws IOException {
            String head = readHead(in);
            if (head == null) {
                return null;
            }
            String[] lines = head.split("\r\n");
            String[] requestLine = lines[0].split(" ");
            if (requestLine.length != 3 || !requestLine[2].startsWith("HTTP/1.")) {
                throw new IOException("malformed request line: " + lines[0]);
            }
            Map<String, String> headers = new LinkedHashMap<>();
            for (int i = 1; i < lines.length; i++) {
                int colon = lines[i].indexOf(':');
                if (colon <= 0) {
                    throw new IOException("malformed header line: " + lines[i]);
                }
                String name = lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT);
                String value = lines[i].substring(colon + 1).trim();
                headers.merge(name, value, (a, b) -> a + "," + b);
            }
            String connection = headers.getOrDefault("connection", "").toLowerCase(Locale.ROOT);
            boolean reusable = requestLine[2].equals("HTTP/1.1")
                    ? !connection.contains("close")
                    : connection.contains("keep-alive");
            if ("100-continue".equalsIgnoreCase(headers.get("expect"))) {
                out.write("HTTP/1.1 100 Continue\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
            }
            byte[] body;
            if (headers.getOrDefault("transfer-encoding", "")
                    .toLowerCase(Locale.ROOT)
                    .contains("chunked")) {
                body = readChunkedBody(in);
            } else if (headers.containsKey("content-length")) {
                long length;
                try {
                    length = Long.parseLong(headers.get("content-length"));
                } catch (NumberFormatException e) {
                    throw new IOException("malformed Content-Length", e);
                }
                if (length < 0 || length > MAX_BODY_BYTES) {
                    throw new IOException("unsupported Content-Length " + length);
                }
                body = in.readNBytes((int) length);
                if (body.length != length) {
                    throw new EOFException("request body ended early");
                }
            } else {
                body = new byte[0];
            }
            return new Exchange(
                    socket,
                    in,
                    out,
                    requestLine[0],
                    pathOf(requestLine[1]),
                    queryOf(requestLine[1]),
                    Collections.unmodifiableMap(headers),
                    body,
                    reusable);
        }

        /** The request method. */
        public String method() {
            return method;
        }

        /** The decoded path, without the query string. */
        public String path() {
            return path;
        }

        /** The raw (still percent-encoded) query string without its {@code ?}, or an empty string. */
        public String query() {
            return query;
        }

        /**
         * A parameter of the query string, decoded as a form field ({@code +} is a space), or null; the first
         * when it is repeated.
         */
        public String queryParameter(String name) {
            return formFields(query).get(name);
        }

        /** Request headers by lower-cased name; repeated headers are joined with commas. */
        public Map<String, String> headers() {
            return headers;
        }

        /** A request header by its lower-cased name, or null. */
        public String header(String lowerCaseName) {
            return headers.get(lowerCaseName);
        }

        /** The request body (empty when there is none); the array is the exchange's own. */
        public byte[] body() {
            return body;
        }

        /** Whether the connection can carry another request after this one. */
        public boolean reusable() {
            return reusable;
        }

        /** Sends a whole response with a Content-Length. */
        public void sendFixed(int status, Map<String, String> responseHeaders, byte[] responseBody) throws IOException {
            writeHead(status, responseHeaders, "Content-Length: " + responseBody.length);
            out.write(responseBody);
            out.flush();
        }

        /**
         * Declares the whole body's length, sends only the first {@code sent} bytes and drops the connection,
         * so that the client sees the body end early.
         */
        public void sendTruncated(int status, Map<String, String> responseHeaders, byte[] responseBody, int sent)
                throws IOException {
            writeHead(status, responseHeaders, "Content-Length: " + responseBody.length);
            out.write(responseBody, 0, Math.min(sent, responseBody.length));
            out.flush();
            abort();
        }

        /** Sends the status and headers of a chunked response and flushes them. */
        public void startChunked(int status, Map<String, String> responseHeaders) throws IOException {
            writeHead(status, responseHeaders, "Transfer-Encoding: chunked");
            out.flush();
        }

        /** Sends one chunk of a chunked body and flushes it. */
        public void writeChunk(byte[] data) throws IOException {
            if (data.length == 0) {
                return;
            }
            out.write((Integer.toHexString(data.length) + "\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(data);
            out.write(CRLF);
            out.flush();
        }

        /** Ends a chunked body. */
        public void endChunked() throws IOException {
            out.write("0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
        }

        /** Closes the connection at once, whatever state the response is in. */
        public void abort() {
            reusable = false;
            closeQuietly(socket);
        }

        /** Closes the connection with a TCP reset instead of an orderly close. */
        public void reset() {
            reusable = false;
            try {
                socket.setSoLinger(true, 0);
            } catch (IOException e) {
                // closed already
            }
            closeQuietly(socket);
        }

        /**
         * Blocks until the client closes the connection (or the server closes the socket), reading and
         * dropping anything the client sends meanwhile; the connection cannot be reused afterwards.
         */
        public void awaitClientGone() {
            reusable = false;
            byte[] sink = new byte[1024];
            try {
                while (in.read(sink) >= 0) {
                    // a client that sends more while waiting is ignored
                }
            } catch (IOException e) {
                // reset by the client, or closed by the server
            }
        }

        private void writeHead(int status, Map<String, String> responseHeaders, String framing) throws IOException {
            if (started) {
                throw new IllegalStateException("the response has already started");
            }
            started = true;
            StringBuilder head = new StringBuilder(256);
            head.append("HTTP/1.1 ")
                    .append(status)
                    .append(' ')
                    .append(reason(status))
                    .append("\r\n");
            responseHeaders.forEach(
                    (k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
            head.append(framing).append("\r\n");
            if (!reusable) {
                head.append("Connection: close\r\n");
            }
            head.append("\r\n");
            out.write(head.toString().getBytes(StandardCharsets.UTF_8));
        }

        private static final byte[] CRLF = {'\r', '\n'};

        /** The head up to (not including) the blank line, or null on a clean end of stream before it. */
        private static String readHead(InputStream in) throws IOException {
            ByteArrayOutputStream head = new ByteArrayOutputStream(512);
            int matched = 0;
            while (true) {
                int b = in.read();
                if (b < 0) {
                    if (head.size() == 0) {
                        return null;
                    }
                    throw new EOFException("connection closed inside a request head");
                }
                if (head.size() == 0 && (b == '\r' || b == '\n')) {
                    continue; // tolerate stray line ends between requests
                }
                head.write(b);
                matched = (b == "\r\n\r\n".charAt(matched)) ? matched + 1 : (b == '\r' ? 1 : 0);
                if (matched == 4) {
                    byte[] bytes = head.toByteArray();
                    return new String(bytes, 0, bytes.length - 4, StandardCharsets.ISO_8859_1);
                }
                if (head.size() > MAX_HEAD_BYTES) {
                    throw new IOException("request head too large");
                }
            }
        }

        private static byte[] readChunkedBody(InputStream in) throws IOException {
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            while (true) {
                String sizeLine = readLine(in);
                int semicolon = sizeLine.indexOf(';');
                String hex = (semicolon >= 0 ? sizeLine.substring(0, semicolon) : sizeLine).trim();
                int size;
                try {
                    size = Integer.parseInt(hex, 16);
                } catch (NumberFormatException e) {
                    throw new IOException("malformed chunk size: " + sizeLine, e);
                }
                if (size == 0) {
                    while (!readLine(in).isEmpty()) {
                        // trailers are ignored
                    }
                    return body.toByteArray();
                }
                if (body.size() + (long) size > MAX_BODY_BYTES) {
                    throw new IOException("request body too large");
                }
                byte[] chunk = in.readNBytes(size);
                if (chunk.length != size) {
                    throw new EOFException("chunk ended early");
                }
                body.writeBytes(chunk);
                readLine(in);
            }
        }

        private static String readLine(InputStream in) throws IOException {
            StringBuilder line = new StringBuilder();
            while (true) {
                int b = in.read();
                if (b < 0) {
                    throw new EOFException("connection closed inside a chunked body");
                }
                if (b == '\n') {
                    int len = line.length();
                    return len > 0 && line.charAt(len - 1) == '\r' ? line.substring(0, len - 1) : line.toString();
                }
                line.append((char) b);
                if (line.length() > 4096) {
                    throw new IOException("line too long in a chunked body");
                }
            }
        }

        private static String queryOf(String target) {
            int query = target.indexOf('?');
            return query >= 0 ? target.substring(query + 1) : "";
        }

        private static String pathOf(String target) {
            String t = target;
            int scheme = t.startsWith("/") ? -1 : t.indexOf("://");
            if (scheme >= 0) {
                int slash = t.indexOf('/', scheme + 3);
                t = slash >= 0 ? t.substring(slash) : "/";
            }
            int query = t.indexOf('?');
            if (query >= 0) {
                t = t.substring(0, query);
            }
            return percentDecode(t);
        }

        private static String percentDecode(String s) {
            if (s.indexOf('%') < 0) {
                return s;
            }
            ByteArrayOutputStream bytes = new ByteArrayOutputStream(s.length());
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c == '%' && i + 2 < s.length()) {
                    int hi = Character.digit(s.charAt(i + 1), 16);
                    int lo = Character.digit(s.charAt(i + 2), 16);
                    if (hi >= 0 && lo >= 0) {
                        bytes.write(hi * 16 + lo);
                        i += 2;
                        continue;
                    }
                }
                bytes.writeBytes(String.valueOf(c).getBytes(StandardCharsets.UTF_8));
            }
            return bytes.toString(StandardCharsets.UTF_8);
        }

        private static String reason(int status) {
            return switch (status) {
                case 200 -> "OK";
                case 400 -> "Bad Request";
                case 401 -> "Unauthorized";
                case 403 -> "Forbidden";
                case 404 -> "Not Found";
                case 405 -> "Method Not Allowed";
                case 424 -> "Failed Dependency";
                case 429 -> "Too Many Requests";
                case 500 -> "Internal Server Error";
                case 503 -> "Service Unavailable";
                default -> "Status " + status;
            };
        }
    }
}
