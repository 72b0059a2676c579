package dev.hybridinference.core.http;

/**
 * Bounds on what a server may send, so that a broken or hostile server fails the call with a {@link
 * dev.hybridinference.core.MalformedResponseException} instead of exhausting the heap. Immutable.
 *
 * @param maxLineBytes the longest line of an event stream or a JSON-lines stream
 * @param maxResponseBytes the largest blocking completion body
 * @param maxToolCalls the most tool calls in one answer (and the highest tool-call index plus one)
 * @param maxStreamChars the most characters of text and tool-call arguments one stream may assemble
 * @param maxGetBytes the largest body of a plain GET ({@code /metrics}, {@code /health}, {@code
 *     /v1/models})
 */
public record ResponseLimits(
        long maxLineBytes, long maxResponseBytes, int maxToolCalls, long maxStreamChars, long maxGetBytes) {
    /** Generous defaults: 1 MiB lines, 32 MiB bodies, 128 tool calls, 64 Mi characters, 8 MiB GETs. */
    public static final ResponseLimits DEFAULTS = new ResponseLimits(1 << 20, 32L << 20, 128, 64L << 20, 8L << 20);

    /**
     * Checks that every bound is positive. Byte bounds above what one array holds (about 2 GiB) act as
     * that.
     *
     * @throws IllegalArgumentException when a bound is zero or negative
     */
    public ResponseLimits {
        if (maxLineBytes <= 0
                || maxResponseBytes <= 0
                || maxToolCalls <= 0
                || maxStreamChars <= 0
                || maxGetBytes <= 0) {
            throw new IllegalArgumentException("limits must be positive");
        }
    }

    /**
     * Reads a provider's {@code limits:} section ({@code maxLineBytes}, {@code maxResponseBytes}, {@code
     * maxToolCalls}, {@code maxStreamChars}, {@code maxGetBytes}); each bound defaults to {@link #DEFAULTS}.
     *
     * @throws dev.hybridinference.core.ConfigurationException naming the key that is unknown or out of range
     */
    public static ResponseLimits read(dev.hybridinference.core.spi.ConfigNode l) {
        l.allowOnly(
                java.util.Set.of("maxLineBytes", "maxResponseBytes", "maxToolCalls", "maxStreamChars", "maxGetBytes"));
        ResponseLimits d = DEFAULTS;
        int max = Integer.MAX_VALUE;
        return new ResponseLimits(
                l.integer("maxLineBytes", 1024, max).map(Integer::longValue).orElse(d.maxLineBytes()),
                l.integer("maxResponseBytes", 1024, max).map(Integer::longValue).orElse(d.maxResponseBytes()),
                l.integer("maxToolCalls", 1, 100_000).orElse(d.maxToolCalls()),
                l.integer("maxStreamChars", 1024, max).map(Integer::longValue).orElse(d.maxStreamChars()),
                l.integer("maxGetBytes", 1024, max).map(Integer::longValue).orElse(d.maxGetBytes()));
    }
}
