package dev.hybridinference.core;

import java.util.Locale;

/** Why the model stopped producing tokens. */
public enum FinishReason {
    /** A natural end or a stop sequence. */
    STOP,
    /** The max-tokens limit. */
    LENGTH,
    /** The model called tools and waits for their results. */
    TOOL_CALLS,
    /** The platform's content filter cut the answer. */
    CONTENT_FILTER,
    /** The provider did not say, or said something this SDK does not know. */
    OTHER;

    /** Maps an OpenAI-style {@code finish_reason} ({@code stop}, {@code length}, ...); null maps to OTHER. */
    public static FinishReason fromWire(String value) {
        if (value == null) {
            return OTHER;
        }
        switch (value.toLowerCase(Locale.ROOT)) {
            case "stop":
            case "eos":
            case "stop_sequence":
                return STOP;
            case "length":
            case "max_tokens":
                return LENGTH;
            case "tool_calls":
            case "function_call":
                return TOOL_CALLS;
            case "content_filter":
                return CONTENT_FILTER;
            default:
                return OTHER;
        }
    }
}
