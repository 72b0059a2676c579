package dev.hybridinference.core;

/** The author of a {@link Message}. */
public enum Role {
    /** Instructions that frame the conversation. */
    SYSTEM,
    /** The end user. */
    USER,
    /** The model, including the tool calls it made. */
    ASSISTANT,
    /** The result of a tool call, answering {@link Message#toolCallId()}. */
    TOOL;

    /** The lower-case name used on the wire by OpenAI-compatible servers. */
    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
