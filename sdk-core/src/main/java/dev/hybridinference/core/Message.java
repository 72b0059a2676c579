package dev.hybridinference.core;

import java.util.List;
import java.util.Objects;

/**
 * One message of a conversation. Immutable.
 *
 * @param role who wrote it
 * @param content the text; may be empty for an assistant message that only calls tools
 * @param toolCalls the tool calls of an assistant message, otherwise empty
 * @param toolCallId for a {@link Role#TOOL} message, the id of the call it answers; otherwise null
 */
public record Message(Role role, String content, List<ToolCall> toolCalls, String toolCallId) {
    /** Checks the role's constraints and copies the list. */
    public Message {
        Objects.requireNonNull(role, "role");
        content = content == null ? "" : content;
        toolCalls = toolCalls == null ? List.of() : List.copyOf(toolCalls);
        if (role == Role.TOOL && (toolCallId == null || toolCallId.isBlank())) {
            throw new IllegalArgumentException("a tool message needs the toolCallId it answers");
        }
        if (role != Role.ASSISTANT && !toolCalls.isEmpty()) {
            throw new IllegalArgumentException("only assistant messages carry tool calls");
        }
    }

    /** A system message. */
    public static Message system(String content) {
        return new Message(Role.SYSTEM, content, List.of(), null);
    }

    /** A user message. */
    public static Message user(String content) {
        return new Message(Role.USER, content, List.of(), null);
    }

    /** An assistant message with text only. */
    public static Message assistant(String content) {
        return new Message(Role.ASSISTANT, content, List.of(), null);
    }

    /** An assistant message that called tools. */
    public static Message assistant(String content, List<ToolCall> toolCalls) {
        return new Message(Role.ASSISTANT, content, toolCalls, null);
    }

    /** The result of the tool call {@code toolCallId}. */
    public static Message tool(String toolCallId, String content) {
        return new Message(Role.TOOL, content, List.of(), toolCallId);
    }
}
