package dev.hybridinference.vllm;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
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
 *     readTimeout: 60s
 *     callTimeout: 5m
 *     scrapeInterval: 5s        # /health and /metrics, read independently; 0s: off
 *     scrapeTimeout: 2s
 *     replicaCooldown: 10s
 *     affinityMaxWaiting: 8
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
            "pricing");

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
        c.duration("connectTimeout").ifPresent(b::connectTimeout);
        c.duration("readTimeout").ifPresent(b::readTimeout);
        c.duration("callTimeout").ifPresent(b::callTimeout);
        c.duration("scrapeInterval").ifPresent(b::scrapeInterval);
        c.duration("scrapeTimeout").ifPresent(b::scrapeTimeout);
        c.duration("replicaCooldown").ifPresent(b::replicaCooldown);
        c.nonNegativeDecimal("affinityMaxWaiting").ifPresent(d -> b.affinityMaxWaiting(d.doubleValue()));
        try {
            b.pricing(PricingConfig.read(c, "per-instance-hour", urls.size()));
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.pathOf("pricing"), e.getMessage());
        }
        return b.build();
    }
}
