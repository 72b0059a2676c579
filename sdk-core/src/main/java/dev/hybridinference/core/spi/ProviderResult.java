package dev.hybridinference.core.spi;

import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.Usage;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * What a provider's call produced, before the core adds timing, cost and the receipt.
 *
 * @param text the generated text
 * @param toolCalls the tool calls, in order
 * @param finishReason why generation stopped
 * @param usage token counts as the provider reported them
 * @param model the model that answered
 * @param coldStart whether the provider saw a cold start
 * @param instanceTime the share of instance time attributed to the call (see {@link OccupancyMeter}), or
 *     null to let the core use the call's duration
 */
public record ProviderResult(
        String text,
        List<ToolCall> toolCalls,
        FinishReason finishReason,
        Usage usage,
        String model,
        ColdStart coldStart,
        Duration instanceTime) {
    /** Checks the required parts and copies the list. */
    public ProviderResult {
        text = text == null ? "" : text;
        toolCalls = List.copyOf(toolCalls);
        Objects.requireNonNull(finishReason, "finishReason");
        Objects.requireNonNull(usage, "usage");
        model = model == null ? "" : model;
        coldStart = coldStart == null ? ColdStart.NONE : coldStart;
    }

    /** This result with the instance time set. */
    public ProviderResult withInstanceTime(Duration instanceTime) {
        return new ProviderResult(text, toolCalls, finishReason, usage, model, coldStart, instanceTime);
    }
}
