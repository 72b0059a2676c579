package dev.hybridinference.sagemaker;

import dev.hybridinference.core.Message;
import dev.hybridinference.core.Role;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Renders a conversation into the single prompt string of a generate API ({@code inputs}), in the chat
 * format the model was trained on. The built-in formats are {@link #CHATML} (Qwen, many fine-tunes), {@link
 * #LLAMA3} (Llama 3.x instruct), {@link #MISTRAL} (Mistral and Mixtral instruct) and {@link #PLAIN} (role
 * names as prefixes, for base models). A message from a tool is rendered as a user turn that says so.
 * Immutable and thread-safe.
 */
public final class PromptTemplate {
    /** ChatML: {@code <|im_start|>role\ncontent<|im_end|>\n} per message, then the assistant's turn. */
    public static final PromptTemplate CHATML = new PromptTemplate("chatml");

    /** Llama 3: header tokens around each role, {@code <|eot_id|>} after each message. */
    public static final PromptTemplate LLAMA3 = new PromptTemplate("llama3");

    /** Mistral instruct: {@code [INST] ... [/INST]} around user turns, the system prompt in the first. */
    public static final PromptTemplate MISTRAL = new PromptTemplate("mistral");

    /** {@code System: ...}, {@code User: ...}, {@code Assistant: ...} lines, then {@code Assistant:}. */
    public static final PromptTemplate PLAIN = new PromptTemplate("plain");

    private final String name;

    private PromptTemplate(String name) {
        this.name = name;
    }

    /**
     * The built-in template of this name ({@code chatml}, {@code llama3}, {@code mistral}, {@code plain}).
     *
     * @throws IllegalArgumentException for another name, listing the known ones
     */
    public static PromptTemplate named(String name) {
        switch (Objects.requireNonNull(name, "name").toLowerCase(Locale.ROOT)) {
            case "chatml":
                return CHATML;
            case "llama3":
                return LLAMA3;
            case "mistral":
                return MISTRAL;
            case "plain":
                return PLAIN;
            default:
                throw new IllegalArgumentException(
                        "unknown prompt template '" + name + "'; expected chatml, llama3, mistral or plain");
        }
    }

    /** This template's name. */
    public String name() {
        return name;
    }

    /** The prompt for {@code messages}, ending where the assistant's answer begins. */
    public String render(List<Message> messages) {
        StringBuilder b = new StringBuilder();
        switch (name) {
            case "chatml":
                for (Message m : messages) {
                    b.append("<|im_start|>").append(roleName(m)).append('\n');
                    b.append(content(m)).append("<|im_end|>\n");
                }
                b.append("<|im_start|>assistant\n");
                break;
            case "llama3":
                b.append("<|begin_of_text|>");
                for (Message m : messages) {
                    b.append("<|start_header_id|>").append(roleName(m)).append("<|end_header_id|>\n\n");
                    b.append(content(m)).append("<|eot_id|>");
                }
                b.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case "mistral":
                renderMistral(messages, b);
                break;
            default:
                for (Message m : messages) {
                    String role = roleName(m);
                    b.append(Character.toUpperCase(role.charAt(0)))
                            .append(role.substring(1))
                            .append(": ");
                    b.append(content(m)).append('\n');
                }
                b.append("Assistant:");
        }
        return b.toString();
    }

    private static void renderMistral(List<Message> messages, StringBuilder b) {
        b.append("<s>");
        StringBuilder system = new StringBuilder();
        boolean open = false;
        for (Message m : messages) {
            if (m.role() == Role.SYSTEM) {
                system.append(m.content()).append("\n\n");
            } else if (m.role() == Role.ASSISTANT) {
                if (open) {
                    b.append(" [/INST]");
                    open = false;
                }
                b.append(' ').append(m.content()).append("</s>");
            } else {
                if (!open) {
                    b.append("[INST] ");
                    open = true;
                } else {
                    b.append("\n\n");
                }
                if (system.length() > 0) {
                    b.append(system);
                    system.setLength(0);
                }
                b.append(content(m));
            }
        }
        if (!open) {
            b.append("[INST] ").append(system);
        }
        b.append(" [/INST]");
    }

    /** The role's name in the template; a tool's message is the user's turn. */
    private static String roleName(Message m) {
        return m.role() == Role.TOOL ? "user" : m.role().wireName();
    }

    private static String content(Message m) {
        String c = m.content() == null ? "" : m.content();
        return m.role() == Role.TOOL
                ? "Tool result" + (m.toolCallId() == null ? "" : " (" + m.toolCallId() + ")") + ": " + c
                : c;
    }

    @Override
    public String toString() {
        return name;
    }
}
