package dev.hybridinference.core;

/**
 * A piece of a streamed answer.
 *
 * @param text the text added by this piece; may be empty (a chunk that only ends the answer or carries
 *     a tool-call fragment)
 * @param finishReason set on the piece that ends the answer, otherwise null
 */
public record ChatChunk(String text, FinishReason finishReason) {
    /** Treats a null text as empty. */
    public ChatChunk {
        text = text == null ? "" : text;
    }
}
