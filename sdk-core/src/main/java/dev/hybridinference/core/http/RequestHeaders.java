package dev.hybridinference.core.http;

import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * The headers an {@link OpenAiTransport} adds to each request: credentials, mostly. Called for every
 * request, and again for every resend of it on a new connection, so a credential that expires (an Entra
 * bearer token, a Google ID token good for an hour) is fetched fresh each time from whatever caches and
 * refreshes it.
 *
 * <p>Every value returned for a credential header ({@code Authorization}, {@code api-key} and any name
 * containing {@code key}, {@code token}, {@code secret}, {@code auth}, {@code signature} or {@code
 * credential}) is registered with {@link dev.hybridinference.core.spi.Secrets}, the token of a {@code
 * Bearer} or {@code Basic} value as well, so that it is redacted from messages, receipts and logs even
 * when a server echoes it back.
 *
 * <p>Implementations must be thread-safe: calls run concurrently. Return the same map instance while the
 * headers do not change (the static factories do): the transport then skips re-registering the values.
 * A {@link RuntimeException} thrown here fails the call before anything is sent: an {@link
 * dev.hybridinference.core.InferenceException} as it is (throw a retryable one for a passing failure of a
 * token endpoint), anything else as an {@link dev.hybridinference.core.AuthenticationException}.
 */
@FunctionalInterface
public interface RequestHeaders {
    /** No headers. */
    RequestHeaders NONE = server -> Map.of();

    /**
     * The headers for one request to {@code server}.
     *
     * @param server the server the request goes to (a Google ID token's audience is the service URL, see
     *     {@link OpenAiTransport.Server#label()})
     * @return header names and values; never null
     */
    Map<String, String> headers(OpenAiTransport.Server server);

    /**
     * {@code Authorization: Bearer <token>} with a fixed token; {@link #NONE} for a null or empty one (a
     * vLLM server started without {@code --api-key}).
     */
    static RequestHeaders bearer(String token) {
        if (token == null || token.isEmpty()) {
            return NONE;
        }
        Map<String, String> headers = Map.of("Authorization", "Bearer " + token);
        return server -> headers;
    }

    /**
     * {@code Authorization: Bearer <token>} with a token asked of {@code tokens} for each request: one that
     * caches and refreshes it (Entra, Google ID tokens). The same map is returned while the token is the
     * same.
     */
    static RequestHeaders bearer(Supplier<String> tokens) {
        Objects.requireNonNull(tokens, "tokens");
        return new RequestHeaders() {
            /** The last token and its headers, replaced together. */
            private volatile Map.Entry<String, Map<String, String>> last = Map.entry("", Map.of());

            @Override
            public Map<String, String> headers(OpenAiTransport.Server server) {
                String token = tokens.get();
                if (token == null || token.isEmpty()) {
                    throw new IllegalStateException("the token supplier returned no token");
                }
                Map.Entry<String, Map<String, String>> l = last;
                if (!token.equals(l.getKey())) {
                    l = Map.entry(token, Map.of("Authorization", "Bearer " + token));
                    last = l;
                }
                return l.getValue();
            }
        };
    }

    /** One fixed header, such as Azure's {@code api-key: <key>}. */
    static RequestHeaders of(String name, String value) {
        Map<String, String> headers = Map.of(name, value);
        return server -> headers;
    }
}
