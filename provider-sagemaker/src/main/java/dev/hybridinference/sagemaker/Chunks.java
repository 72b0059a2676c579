package dev.hybridinference.sagemaker;

import dev.hybridinference.core.ChatChunk;

/** Joins the chunks one payload part completed into the one chunk the stream hands on for it. */
final class Chunks {
    private Chunks() {}

    /** {@code a} then {@code b}: their texts joined, the later finish reason; either may be null. */
    static ChatChunk join(ChatChunk a, ChatChunk b) {
        if (a == null) {
            return b;
        }
        if (b == null) {
            return a;
        }
        return new ChatChunk(a.text() + b.text(), b.finishReason() != null ? b.finishReason() : a.finishReason());
    }
}
