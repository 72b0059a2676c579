package dev.hybridinference.vllm;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Builds {@link VllmClient}s from configuration, type {@code vllm}:
 *
 * <pre>{@code
 * providers:
 *   main:
 *     type: vllm
 *     baseUrls: [http://gpu-1:8000, http://gpu-2:8000]   # or baseUrl: one URL
 *     apiKey: ${VLLM_API_KEY:-}                          # optional
 *     model: meta-llama/Llama-3.1-8B-Instruct            # optional: discovered from /v1/models
 *     connectTimeout: 10s
 *     connectionIdleTimeout: 4s # pooled connections are dropped before the server's idle timeout
 *     readTimeout: 60s
 *     callTimeout: 5m
 *     scrapeInterval: 5s        # /health and /metrics, read independently; 0s: off
 *     scrapeTimeout: 2s
 *     replicaCooldown: 10s
 *     affinityMaxWaiting: 8
 *     limits: {maxLineBytes: 1048576, maxResponseBytes: 33554432, maxToolCalls: 128, maxGetBytes: 8388608}
 *     pricing: { type: per-instance-hour, perHour: 4.10 }  # instances default to the replica count
 * }</pre>
 */
public final class VllmProviderFactory implements InferenceProviderFactory {
    private static final Set<String> KEYS = Set.of(
            "type",
            "baseUrl",
            "baseUrls",
            "apiKey",
            "model",
            "connectTimeout",
            "readTimeout",
            "callTimeout",
            "scrapeInterval",
            "scrapeTimeout",
            "replicaCooldown",
            "affinityMaxWaiting",
            "connectionIdleTimeout",
            "limits",
            "pricing");
    private static final int MAX_REPLICAS = 256;

    /** Used by {@link java.util.ServiceLoader}. */
    public VllmProviderFactory() {}

    @Override
    public String type() {
        return VllmClient.TYPE;
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        List<String> urls = new ArrayList<>(c.stringList("baseUrls"));
        String urlKey = "baseUrls";
        if (c.has("baseUrl")) {
            if (!urls.isEmpty()) {
                throw new ConfigurationException(c.pathOf("baseUrl"), "set either baseUrl or baseUrls, not both");
            }
            urls.add(c.requireString("baseUrl"));
            urlKey = "baseUrl";
        }
        if (urls.isEmpty()) {
            throw c.missing("baseUrl", "the server's base URL, such as http://localhost:8000 (or baseUrls: a list)");
        }
        if (urls.size() > MAX_REPLICAS) {
            throw c.error("baseUrls", "at most " + MAX_REPLICAS + " URLs");
        }
        VllmClient.Builder b = VllmClient.builder().context(context);
        for (int i = 0; i < urls.size(); i++) {
            String path = urlKey.equals("baseUrl") ? c.pathOf(urlKey) : c.pathOf(urlKey) + "[" + i + "]";
            try {
                b.baseUrl(urls.get(i));
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(path, e.getMessage());
            }
        }
        c.string("apiKey").filter(k -> !k.isEmpty()).ifPresent(b::apiKey);
        c.string("model").filter(m -> !m.isBlank()).ifPresent(b::model);
        c.duration("connectTimeout", Duration.ofMillis(1), Duration.ofMinutes(10))
                .ifPresent(b::connectTimeout);
        c.duration("readTimeout", Duration.ZERO, Duration.ofHours(1)).ifPresent(b::readTimeout);
        c.duration("callTimeout").ifPresent(b::callTimeout);
        c.durationOrOff("scrapeInterval", Duration.ofMillis(100), Duration.ofHours(1))
                .ifPresent(b::scrapeInterval);
        c.duration("scrapeTimeout", Duration.ofMillis(1), Duration.ofMinutes(1)).ifPresent(b::scrapeTimeout);
        c.duration("replicaCooldown", Duration.ZERO, Duration.ofHours(1)).ifPresent(b::replicaCooldown);
        c.duration("connectionIdleTimeout", Duration.ofMillis(100), Duration.ofHours(1))
                .ifPresent(b::connectionIdleTimeout);
        c.decimal("affinityMaxWaiting", BigDecimal.ZERO, new BigDecimal("1000000"))
                .ifPresent(d -> b.affinityMaxWaiting(d.doubleValue()));
        c.object("limits").ifPresent(l -> b.limits(ResponseLimits.read(l)));
        try {
            b.pricing(PricingConfig.read(c, "per-instance-hour", urls.size()));
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.pathOf("pricing"), e.getMessage());
        }
        return b.build();
    }
}
