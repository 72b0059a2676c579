package dev.hybridinference.core;

import java.time.Instant;

/**
 * How busy a provider is, as last observed. Routing reads it to spill traffic before a server queues.
 *
 * @param inFlight calls this client has in flight to the provider now
 * @param running requests the server reports running, summed over its replicas; NaN when unknown
 * @param waiting requests the server reports queued, summed over its replicas; NaN when unknown
 * @param kvCacheUsage the highest KV-cache usage among its replicas, 0 to 1; NaN when unknown
 * @param healthyReplicas replicas currently taking traffic
 * @param observedAt when the server-side figures were scraped; null when never
 */
public record LoadSnapshot(
        int inFlight, double running, double waiting, double kvCacheUsage, int healthyReplicas, Instant observedAt) {}
