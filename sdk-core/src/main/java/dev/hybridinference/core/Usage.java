package dev.hybridinference.core;

/**
 * Token counts of one call.
 *
 * @param inputTokens prompt tokens, including {@code cachedInputTokens}
 * @param outputTokens generated tokens
 * @param cachedInputTokens prompt tokens served from a prefix cache, where the platform reports them
 * @param estimated whether the counts are the SDK's estimate rather than the platform's figures (a stream
 *     cut before the server sent its usage: output tokens counted from the chunks received, input tokens
 *     estimated from the prompt's length)
 */
public record Usage(long inputTokens, long outputTokens, long cachedInputTokens, boolean estimated) {
    /** No tokens. */
    public static final Usage ZERO = new Usage(0, 0, 0);

    /** Counts reported by the platform (not estimated). */
    public Usage(long inputTokens, long outputTokens, long cachedInputTokens) {
        this(inputTokens, outputTokens, cachedInputTokens, false);
    }

    /** Counts estimated by the SDK. */
    public static Usage estimated(long inputTokens, long outputTokens) {
        return new Usage(inputTokens, outputTokens, 0, true);
    }

    /** Checks that no count is negative and that cached tokens are part of the input. */
    public Usage {
        if (inputTokens < 0 || outputTokens < 0 || cachedInputTokens < 0) {
            throw new IllegalArgumentException("token counts must not be negative");
        }
        if (cachedInputTokens > inputTokens) {
            throw new IllegalArgumentException("cached input tokens cannot exceed input tokens");
        }
    }

    /** Input plus output tokens. */
    public long totalTokens() {
        return inputTokens + outputTokens;
    }
}
