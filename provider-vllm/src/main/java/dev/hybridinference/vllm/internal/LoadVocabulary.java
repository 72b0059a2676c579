package dev.hybridinference.vllm.internal;

import java.time.Instant;
import java.util.List;

/**
 * The Prometheus names under which one kind of OpenAI-compatible server publishes its load: requests
 * running, requests queued and KV-cache usage (0 to 1). A scrape is read with the first vocabulary whose
 * running or queued gauge it contains. Internal.
 *
 * <p>The names were checked against each server's own source or reference documentation:
 *
 * <ul>
 *   <li>vLLM ({@code vllm/v1/metrics/loggers.py}): {@code vllm:num_requests_running}, {@code
 *       vllm:num_requests_waiting}, {@code vllm:kv_cache_usage_perc}, and before it the deprecated {@code
 *       vllm:gpu_cache_usage_perc}.
 *   <li>SGLang ({@code python/sglang/srt/metrics/collector.py}): {@code sglang:num_running_reqs}, {@code
 *       sglang:num_queue_reqs}, and {@code sglang:token_usage}, the used share of the KV token pool.
 *   <li>llama.cpp's llama-server with {@code --metrics} ({@code tools/server}): {@code
 *       llamacpp:requests_processing}, {@code llamacpp:requests_deferred}; builds before late 2025 also
 *       publish {@code llamacpp:kv_cache_usage_ratio}, later ones do not.
 *   <li>Hugging Face TGI ({@code docs/source/reference/metrics.md}): {@code tgi_batch_current_size}
 *       (requests in the running batch), {@code tgi_queue_size}; it publishes no KV-cache gauge.
 * </ul>
 *
 * @param name the short name reported in {@code ReplicaStatus.loadSignal}
 * @param running the gauge of requests being processed
 * @param waiting the gauge of requests queued
 * @param kvCacheUsage KV-cache usage gauges, 0 to 1, the first present wins; may be empty
 */
public record LoadVocabulary(String name, String running, String waiting, List<String> kvCacheUsage) {
    /** vLLM's gauges. */
    public static final LoadVocabulary VLLM = new LoadVocabulary(
            "vllm",
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            List.of("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"));

    /** SGLang's gauges. */
    public static final LoadVocabulary SGLANG = new LoadVocabulary(
            "sglang", "sglang:num_running_reqs", "sglang:num_queue_reqs", List.of("sglang:token_usage"));

    /** llama.cpp's llama-server gauges. */
    public static final LoadVocabulary LLAMACPP = new LoadVocabulary(
            "llamacpp",
            "llamacpp:requests_processing",
            "llamacpp:requests_deferred",
            List.of("llamacpp:kv_cache_usage_ratio"));

    /** Hugging Face TGI's gauges. */
    public static final LoadVocabulary TGI =
            new LoadVocabulary("tgi", "tgi_batch_current_size", "tgi_queue_size", List.of());

    /** Every known vocabulary, in the order a scrape is matched against them. */
    public static final List<LoadVocabulary> KNOWN = List.of(VLLM, SGLANG, LLAMACPP, TGI);

    /** The value of {@link #name()} for a replica whose load is not known. */
    public static final String NONE = "none";

    /** Copies the list. */
    public LoadVocabulary {
        kvCacheUsage = List.copyOf(kvCacheUsage);
    }

    /** Whether the scrape uses this vocabulary. */
    public boolean matches(PrometheusText p) {
        return p.has(running) || p.has(waiting);
    }

    /** The load figures of a scrape in this vocabulary, dated {@code at}. */
    public Replica.Metrics read(PrometheusText p, Instant at) {
        double kv = Double.NaN;
        for (String k : kvCacheUsage) {
            if (p.has(k)) {
                kv = p.max(k);
                break;
            }
        }
        return new Replica.Metrics(p.sum(running), p.sum(waiting), kv, at, name);
    }

    /** The first vocabulary the scrape matches, or null for none. */
    public static LoadVocabulary detect(PrometheusText p) {
        for (LoadVocabulary v : KNOWN) {
            if (v.matches(p)) {
                return v;
            }
        }
        return null;
    }

    /** The known names, for messages: {@code vllm, sglang, llamacpp, tgi}. */
    public static String knownNames() {
        StringBuilder sb = new StringBuilder();
        for (LoadVocabulary v : KNOWN) {
            if (sb.length() > 0) {
                sb.append(", ");
            }
            sb.append(v.name);
        }
        return sb.toString();
    }
}
