package dev.hybridinference.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.http.OpenAiTransport;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.X509TrustManager;
import okhttp3.ConnectionPool;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;

/**
 * The bare side of the paired reports whose provider speaks the OpenAI chat protocol over OkHttp (Cloud Run, the
 * Azure v1 route): what a user would write with OkHttp and Jackson alone, the client configured as the core's
 * transport configures its own (a pool of 32 connections kept idle {@link OpenAiTransport#DEFAULT_IDLE_TIMEOUT},
 * no resends on connection failure, no redirects, the given timeouts, OkHttp's call timeout where the provider has
 * its deadline watch).
 */
final class BareOpenAiHttp {
    private static final MediaType JSON = MediaType.get("application/json");
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private BareOpenAiHttp() {}

    /**
     * A client as described above; {@code sockets} and {@code trust} are the TLS to use, or both null for the
     * JVM's default.
     */
    static OkHttpClient client(
            Duration connect, Duration read, Duration call, SSLSocketFactory sockets, X509TrustManager trust) {
        OkHttpClient.Builder b = new OkHttpClient.Builder()
                .connectionPool(
                        new ConnectionPool(32, OpenAiTransport.DEFAULT_IDLE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS))
                .connectTimeout(connect)
                .readTimeout(read)
                .writeTimeout(read)
                .callTimeout(call)
                .retryOnConnectionFailure(false)
                .followRedirects(false)
                .followSslRedirects(false);
        if (sockets != null) {
            b.sslSocketFactory(sockets, trust);
        }
        return b.build();
    }

    /** A POST of {@code body} (JSON) to {@code url} with {@code Accept} and one authorization header. */
    static Request post(HttpUrl url, byte[] body, String accept, String authHeader, String authValue) {
        return new Request.Builder()
                .url(url)
                .post(RequestBody.create(body, JSON))
                .header("Accept", accept)
                .header(authHeader, authValue)
                .build();
    }

    /**
     * A blocking call: the body read into an array, parsed into a tree, {@code choices[0].message.content} and
     * {@code usage.completion_tokens} read; the text, or empty when no tokens were counted.
     */
    static String blocking(OkHttpClient client, Request request) throws IOException {
        try (Response r = client.newCall(request).execute()) {
            if (!r.isSuccessful()) {
                throw new IllegalStateException("bare blocking call: HTTP " + r.code());
            }
            JsonNode root = MAPPER.readTree(r.body().bytes());
            long tokens = root.path("usage").path("completion_tokens").asLong();
            String text =
                    root.path("choices").path(0).path("message").path("content").asText();
            return tokens > 0 ? text : "";
        }
    }

    /** A streamed call: the body read line by line, each {@code data:} line handled by {@link PairedOverhead.SseText}. */
    static String streaming(OkHttpClient client, Request request) throws IOException {
        try (Response r = client.newCall(request).execute()) {
            if (!r.isSuccessful()) {
                throw new IllegalStateException("bare streaming call: HTTP " + r.code());
            }
            BufferedSource source = r.body().source();
            PairedOverhead.SseText sse = new PairedOverhead.SseText();
            for (long nl = source.indexOf((byte) '\n'); nl >= 0; nl = source.indexOf((byte) '\n')) {
                byte[] line = source.readByteArray(nl + 1);
                sse.line(line, 0, (int) nl);
            }
            return sse.result();
        }
    }

    /** Stops the client's threads and closes its idle connections. */
    static void close(OkHttpClient client) {
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
    }
}
