package dev.hybridinference.core;

import java.util.List;
import java.util.Objects;

/**
 * The model's answer and the receipt of the call that produced it.
 *
 * @param text the generated text; empty when the model only called tools
 * @param toolCalls the tool calls the model made, in order
 * @param finishReason why generation stopped
 * @param usage token counts
 * @param receipt where the call ran, how long it took and what it cost
 */
public record ChatResponse(
        String text, List<ToolCall> toolCalls, FinishReason finishReason, Usage usage, Receipt receipt) {
    /** Checks the required parts and copies the list. */
    public ChatResponse {
        text = text == null ? "" : text;
        toolCalls = List.copyOf(toolCalls);
        Objects.requireNonNull(finishReason, "finishReason");
        Objects.requireNonNull(usage, "usage");
        Objects.requireNonNull(receipt, "receipt");
    }
}
