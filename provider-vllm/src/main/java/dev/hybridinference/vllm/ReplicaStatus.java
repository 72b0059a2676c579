package dev.hybridinference.vllm;

import java.time.Instant;

/**
 * The state of one replica as the client last saw it.
 *
 * @param baseUrl the replica's base URL (without credentials)
 * @param up whether it takes traffic (not in a cooldown after a failed call, not failing {@code /health})
 * @param inFlight calls this client has in flight to it
 * @param running requests the server reports running; NaN while there is no load signal
 * @param waiting requests the server reports queued; NaN while there is no load signal
 * @param kvCacheUsage KV-cache usage, 0 to 1; NaN while there is no load signal or the server publishes
 *     none (TGI, recent llama.cpp builds)
 * @param scrapedAt when {@code /metrics} last gave load figures, or null if it never did
 * @param health what the last {@code /health} check said
 * @param loadSignal whose gauges the load figures come from: {@code vllm}, {@code sglang}, {@code
 *     llamacpp}, {@code tgi}, or {@code none} when the last scrape gave none
 * @param loadSignalReason why there is no load signal (such as {@code GET /metrics answered HTTP 404});
 *     null when there is one
 */
public record ReplicaStatus(
        String baseUrl,
        boolean up,
        int inFlight,
        double running,
        double waiting,
        double kvCacheUsage,
        Instant scrapedAt,
        Health health,
        String loadSignal,
        String loadSignalReason) {

    /** What a replica's {@code /health} route says. */
    public enum Health {
        /** Not checked yet (or monitoring is off). */
        UNCHECKED,
        /** The last check answered 2xx. */
        PASSING,
        /**
         * The server answered 5xx, or could not be reached twice in a row (each time also on a fresh
         * connection): the replica takes no traffic until a check passes.
         */
        FAILING,
        /**
         * The route gave no verdict (404 or 405 where a server has no {@code /health}, as Ollama; or another
         * 4xx): readiness then comes from the calls themselves, which mark the replica down for the cooldown
         * when they fail.
         */
        NO_SIGNAL
    }
}
