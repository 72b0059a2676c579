package dev.hybridinference.vllm;

import java.time.Instant;

/**
 * The state of one vLLM replica as the client last saw it.
 *
 * @param baseUrl the replica's base URL (without credentials)
 * @param up whether it takes traffic (not marked down by a failure or a failing {@code /health})
 * @param inFlight calls this client has in flight to it
 * @param running {@code vllm:num_requests_running}, NaN before the first scrape
 * @param waiting {@code vllm:num_requests_waiting}, NaN before the first scrape
 * @param kvCacheUsage {@code vllm:kv_cache_usage_perc} (or the deprecated {@code
 *     vllm:gpu_cache_usage_perc}), 0 to 1, NaN before the first scrape
 * @param scrapedAt when {@code /metrics} was last read successfully, or null
 */
public record ReplicaStatus(
        String baseUrl,
        boolean up,
        int inFlight,
        double running,
        double waiting,
        double kvCacheUsage,
        Instant scrapedAt) {}
