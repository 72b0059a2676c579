package dev.hybridinference.core;

/**
 * Token counts of one call.
 *
 * @param inputTokens prompt tokens, including {@code cachedInputTokens}
 * @param outputTokens generated tokens
 * @param cachedInputTokens prompt tokens served from a prefix cache, where the platform reports them
 */
public record Usage(long inputTokens, long outputTokens, long cachedInputTokens) {
    /** No tokens. */
    public static final Usage ZERO = new Usage(0, 0, 0);

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
