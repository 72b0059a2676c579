package dev.hybridinference.azure;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.http.OpenAiCodec;
import dev.hybridinference.core.http.OpenAiTransport;
import dev.hybridinference.core.http.RequestHeaders;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;
import javax.net.ssl.SSLContext;

/**
 * The OpenAI-compatible {@code /openai/v1} route, on the core's {@link OpenAiTransport}: {@code POST
 * <endpoint>/chat/completions} with the ordinary OpenAI body, the deployment as its {@code model}, and
 * either {@code api-key} or {@code Authorization: Bearer <Entra ID token>}.
 */
final class OpenAiV1Route implements AzureRoute {
    private final OpenAiTransport http;
    private final OpenAiTransport.Server server;
    private final String model;

    OpenAiV1Route(AzureClient.Builder b) {
        this.server = OpenAiTransport.Server.of(v1(b.endpoint));
        this.model = b.model;
        Map<String, String> fixed = new HashMap<>();
        if (b.extraParameters != null) {
            fixed.put("extra-parameters", b.extraParameters.headerValue());
        }
        RequestHeaders headers;
        if (b.apiKey != null) {
            fixed.put("api-key", b.apiKey);
            Map<String, String> all = Map.copyOf(fixed);
            headers = s -> all;
        } else {
            headers = bearer(new EntraTokens(b.id(), b.credential, b.scopesOrDefault(), b.clock()), fixed);
        }
        OpenAiTransport.Builder t = OpenAiTransport.builder(b.id())
                .headers(headers)
                .dialect(b.extraParameters != null ? OpenAiCodec.Dialect.PASS_THROUGH : OpenAiCodec.Dialect.OPENAI)
                .clock(b.clock())
                .connectTimeout(b.connectTimeout)
                .readTimeout(b.readTimeout)
                .callTimeout(b.callTimeout)
                .limits(b.limits);
        SSLContext ssl = b.sslContext();
        if (ssl != null) {
            t.tls(ssl.getSocketFactory(), b.trust);
        }
        this.http = t.build();
    }

    /**
     * The v1 base URL of an endpoint: a resource's bare URL ({@code https://res.openai.azure.com}) or its
     * {@code /openai} path gets {@code /openai/v1}; any other path is taken as given.
     */
    static String v1(String endpoint) {
        String path = java.net.URI.create(endpoint).getPath();
        if (path == null || path.isEmpty() || path.equals("/")) {
            return endpoint + "/openai/v1";
        }
        return path.endsWith("/openai") ? endpoint + "/v1" : endpoint;
    }

    /**
     * {@code Authorization: Bearer <token>} beside fixed headers, with the token asked of {@code tokens} for
     * each request; the same map while the token is the same, as {@link RequestHeaders} asks.
     */
    private static RequestHeaders bearer(Supplier<String> tokens, Map<String, String> fixed) {
        RequestHeaders auth = RequestHeaders.bearer(tokens);
        if (fixed.isEmpty()) {
            return auth;
        }
        Map<String, String> extra = Map.copyOf(fixed);
        return new RequestHeaders() {
            private volatile Map.Entry<Map<String, String>, Map<String, String>> last = Map.entry(Map.of(), Map.of());

            @Override
            public Map<String, String> headers(OpenAiTransport.Server server) {
                Map<String, String> a = auth.headers(server);
                Map.Entry<Map<String, String>, Map<String, String>> l = last;
                if (l.getKey() != a) {
                    Map<String, String> all = new HashMap<>(extra);
                    all.putAll(a);
                    l = Map.entry(a, Map.copyOf(all));
                    last = l;
                }
                return l.getValue();
            }
        };
    }

    private String model(ChatRequest request) {
        return request.model().orElse(model);
    }

    @Override
    public ProviderResult chat(ChatRequest request, CallContext ctx) {
        OpenAiCodec.Completion c = http.complete(server, request, model(request), ctx);
        ProviderResult.Builder r = ProviderResult.builder()
                .text(c.text())
                .toolCalls(c.toolCalls())
                .finishReason(c.finishReason())
                .usage(c.usage())
                .model(c.model().isEmpty() ? model(request) : c.model());
        if (!c.contentFilter().isEmpty()) {
            r.attribute(dev.hybridinference.core.http.StreamAssembler.CONTENT_FILTER, c.contentFilter());
        }
        return r.build();
    }

    @Override
    public ProviderStream stream(ChatRequest request, CallContext ctx) {
        return http.stream(server, request, model(request), ctx);
    }

    @Override
    public String label() {
        return server.label();
    }

    @Override
    public void close() {
        http.shutdown();
    }
}
