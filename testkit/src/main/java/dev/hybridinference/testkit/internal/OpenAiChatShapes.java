package dev.hybridinference.testkit.internal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The JSON shapes of vLLM's OpenAI-compatible chat API that the testkit's emulators answer with: a {@code
 * chat.completion}, the {@code chat.completion.chunk}s of a stream, the usage chunk ({@code "choices": []}) and
 * the error body {@code {"error": {message, type, param, code}}}.
 *
 * <p>Shared by the testkit's emulators; not part of the testkit's API.
 */
public final class OpenAiChatShapes {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private OpenAiChatShapes() {}

    /**
     * A {@code chat.completion} with one choice.
     *
     * @param id the completion id ({@code chatcmpl-...})
     * @param created seconds since the epoch
     * @param model the model named in the answer
     * @param message the choice's {@code message} ({@code role}, {@code content}, maybe {@code tool_calls})
     * @param finish the finish reason
     * @param promptTokens the usage's prompt tokens
     * @param completionTokens the usage's completion tokens
     * @return the body
     */
    public static ObjectNode completion(
            String id,
            long created,
            String model,
            ObjectNode message,
            String finish,
            int promptTokens,
            int completionTokens) {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("id", id)
                .put("object", "chat.completion")
                .put("created", created)
                .put("model", model);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        choice.set("message", message);
        choice.putNull("logprobs");
        choice.put("finish_reason", finish);
        usage(root.putObject("usage"), promptTokens, completionTokens);
        return root;
    }

    /** A {@code message} object with role {@code assistant} and the given content. */
    public static ObjectNode assistantMessage(String content) {
        return MAPPER.createObjectNode().put("role", "assistant").put("content", content);
    }

    /** The fields every chunk of a stream starts with: {@code id}, {@code object}, {@code created}, {@code model}. */
    public static ObjectNode chunkBase(String id, long created, String model) {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("id", id)
                .put("object", "chat.completion.chunk")
                .put("created", created)
                .put("model", model);
        return root;
    }

    /**
     * A chunk with one choice carrying {@code delta}, and {@code finish} as its finish reason (null while the
     * stream goes on).
     */
    public static ObjectNode chunk(String id, long created, String model, ObjectNode delta, String finish) {
        ObjectNode root = chunkBase(id, created, model);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        choice.set("delta", delta);
        choice.putNull("logprobs");
        if (finish == null) {
            choice.putNull("finish_reason");
        } else {
            choice.put("finish_reason", finish);
        }
        return root;
    }

    /** The first chunk of a stream: {@code delta: {role: assistant, content: ""}}. */
    public static ObjectNode roleChunk(String id, long created, String model) {
        return chunk(id, created, model, assistantMessage(""), null);
    }

    /** A chunk whose delta is one piece of content. */
    public static ObjectNode contentChunk(String id, long created, String model, String piece) {
        return chunk(id, created, model, MAPPER.createObjectNode().put("content", piece), null);
    }

    /** The chunk that ends the choice: an empty delta with the finish reason. */
    public static ObjectNode finishChunk(String id, long created, String model, String finish) {
        return chunk(id, created, model, MAPPER.createObjectNode(), finish);
    }

    /**
     * The usage chunk sent after the finish chunk when the request sets {@code stream_options.include_usage}:
     * {@code "choices": []} and {@code usage}.
     */
    public static ObjectNode usageChunk(String id, long created, String model, int promptTokens, int completionTokens) {
        ObjectNode root = chunkBase(id, created, model);
        root.putArray("choices");
        usage(root.putObject("usage"), promptTokens, completionTokens);
        return root;
    }

    /** Fills a {@code usage} object: prompt, completion and total tokens. */
    public static void usage(ObjectNode usage, int promptTokens, int completionTokens) {
        usage.put("prompt_tokens", promptTokens)
                .put("completion_tokens", completionTokens)
                .put("total_tokens", promptTokens + completionTokens);
    }

    /**
     * vLLM's error body: {@code {"error": {"message", "type", "param", "code"}}}, {@code code} being the HTTP
     * status.
     *
     * @param message the message
     * @param type the error type, such as {@code BadRequestError} or {@code NotFoundError}
     * @param param the request field at fault, or null
     * @param status the HTTP status
     * @return the body
     */
    public static ObjectNode error(String message, String type, String param, int status) {
        ObjectNode root = MAPPER.createObjectNode();
        ObjectNode error = root.putObject("error");
        error.put("message", message).put("type", type);
        if (param == null) {
            error.putNull("param");
        } else {
            error.put("param", param);
        }
        error.put("code", status);
        return root;
    }

    /**
     * The text of a message's {@code content}: a string, or the {@code text} parts of an array of content
     * parts joined with spaces; empty for anything else.
     */
    public static String contentText(JsonNode content) {
        if (content.isTextual()) {
            return content.asText();
        }
        if (content.isArray()) {
            StringBuilder text = new StringBuilder();
            for (JsonNode part : content) {
                if (part.path("text").isTextual()) {
                    if (text.length() > 0) {
                        text.append(' ');
                    }
                    text.append(part.path("text").asText());
                }
            }
            return text.toString();
        }
        return "";
    }
}
