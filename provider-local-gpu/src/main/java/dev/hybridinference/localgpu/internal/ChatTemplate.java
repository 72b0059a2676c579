package dev.hybridinference.localgpu.internal;

import dev.hybridinference.core.Message;
import dev.hybridinference.core.Role;
import java.util.List;

/**
 * Turns a conversation into the prompt text a model family was trained on. The family is recognised
 * from the markers in {@code tokenizer.chat_template} (the Jinja template is not executed); unknown
 * templates get a plain "Role: text" layout. The prompt ends where the assistant's answer starts.
 */
public enum ChatTemplate {
    /** ChatML ({@code <|im_start|>role ... <|im_end|>}): Qwen, SmolLM and others. */
    CHATML {
        @Override
        String render(List<Message> messages) {
            StringBuilder sb = new StringBuilder();
            for (Message m : messages) {
                sb.append("<|im_start|>")
                        .append(role(m))
                        .append('\n')
                        .append(m.content())
                        .append("<|im_end|>\n");
            }
            return sb.append("<|im_start|>assistant\n").toString();
        }
    },
    /** Llama 3 ({@code <|start_header_id|>role<|end_header_id|>}). */
    LLAMA3 {
        @Override
        String render(List<Message> messages) {
            StringBuilder sb = new StringBuilder("<|begin_of_text|>");
            for (Message m : messages) {
                sb.append("<|start_header_id|>")
                        .append(role(m))
                        .append("<|end_header_id|>\n\n")
                        .append(m.content().strip())
                        .append("<|eot_id|>");
            }
            return sb.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
                    .toString();
        }
    },
    /** Llama 2 and Mistral ({@code [INST] ... [/INST]}, the system prompt folded into the first turn). */
    LLAMA2 {
        @Override
        String render(List<Message> messages) {
            StringBuilder sb = new StringBuilder();
            String system = null;
            boolean first = true;
            for (Message m : messages) {
                switch (m.role()) {
                    case SYSTEM:
                        system = m.content();
                        break;
                    case ASSISTANT:
                        sb.append(' ').append(m.content().strip()).append(" </s>");
                        break;
                    default:
                        String user = m.content().strip();
                        if (first && system != null) {
                            user = "<<SYS>>\n" + system.strip() + "\n<</SYS>>\n\n" + user;
                        }
                        sb.append("<s>[INST] ").append(user).append(" [/INST]");
                        first = false;
                        break;
                }
            }
            return sb.toString();
        }
    },
    /** Zephyr ({@code <|user|>\n...</s>}). */
    ZEPHYR {
        @Override
        String render(List<Message> messages) {
            return turns(messages, "</s>");
        }
    },
    /** Phi-3 ({@code <|user|>\n...<|end|>}). */
    PHI3 {
        @Override
        String render(List<Message> messages) {
            return turns(messages, "<|end|>");
        }
    },
    /** Anything else: "System:", "User:", "Assistant:" lines. */
    PLAIN {
        @Override
        String render(List<Message> messages) {
            StringBuilder sb = new StringBuilder();
            for (Message m : messages) {
                String r = role(m);
                sb.append(Character.toUpperCase(r.charAt(0)))
                        .append(r.substring(1))
                        .append(": ")
                        .append(m.content())
                        .append('\n');
            }
            return sb.append("Assistant:").toString();
        }
    };

    /** The prompt text for {@code messages}. */
    abstract String render(List<Message> messages);

    /** Renders the conversation. */
    public String apply(List<Message> messages) {
        return render(messages);
    }

    private static String turns(List<Message> messages, String end) {
        StringBuilder sb = new StringBuilder();
        for (Message m : messages) {
            sb.append("<|")
                    .append(role(m))
                    .append("|>\n")
                    .append(m.content())
                    .append(end)
                    .append('\n');
        }
        return sb.append("<|assistant|>\n").toString();
    }

    private static String role(Message m) {
        return m.role() == Role.TOOL ? "tool" : m.role().wireName();
    }

    /** The template a Jinja chat template string is written for; {@link #PLAIN} when none is known. */
    public static ChatTemplate detect(String jinja) {
        if (jinja == null || jinja.isBlank()) {
            return PLAIN;
        }
        if (jinja.contains("<|im_start|>")) {
            return CHATML;
        }
        if (jinja.contains("<|start_header_id|>")) {
            return LLAMA3;
        }
        if (jinja.contains("[INST]")) {
            return LLAMA2;
        }
        if (jinja.contains("<|user|>")) {
            return jinja.contains("<|end|>") ? PHI3 : ZEPHYR;
        }
        return PLAIN;
    }
}
