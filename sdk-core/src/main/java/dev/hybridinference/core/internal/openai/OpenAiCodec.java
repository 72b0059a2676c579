package dev.hybridinference.core.internal.openai;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.Usage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Encodes chat requests and decodes chat completions in the OpenAI wire format that vLLM, TGI,
 * llama.cpp's server and most gateways speak. Internal: not part of the public API.
 */
public final class OpenAiCodec {
    /** The shared mapper; thread-safe once configured. */
    public static final ObjectMapper MAPPER = new ObjectMapper();

    private static final JsonFactory FACTORY = MAPPER.getFactory();

    private OpenAiCodec() {}

    /** What a server-specific dialect adds to the standard body. */
    public enum Dialect {
        /** Only standard OpenAI fields. */
        OPENAI,
        /** vLLM: also sends {@code top_k} at the top level. */
        VLLM
    }

    /**
     * Encodes a {@code POST /v1/chat/completions} body.
     *
     * @param request the request
     * @param model the model to name in the body
     * @param stream whether to ask for SSE, with the usage chunk at the end
     * @param dialect which extra fields the server accepts
     */
    public static byte[] encodeRequest(ChatRequest request, String model, boolean stream, Dialect dialect) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            g.writeStartObject();
            if (model != null && !model.isEmpty()) {
                g.writeStringField("model", model);
            }
            g.writeArrayFieldStart("messages");
            for (Message m : request.messages()) {
                writeMessage(g, m);
            }
            g.writeEndArray();
            if (request.temperature().isPresent()) {
                g.writeNumberField("temperature", request.temperature().getAsDouble());
            }
            if (request.topP().isPresent()) {
                g.writeNumberField("top_p", request.topP().getAsDouble());
            }
            if (request.topK().isPresent() && dialect == Dialect.VLLM) {
                g.writeNumberField("top_k", request.topK().getAsInt());
            }
            if (request.maxTokens().isPresent()) {
                g.writeNumberField("max_tokens", request.maxTokens().getAsInt());
            }
            if (!request.stop().isEmpty()) {
                g.writeArrayFieldStart("stop");
                for (String s : request.stop()) {
                    g.writeString(s);
                }
                g.writeEndArray();
            }
            if (request.seed().isPresent()) {
                g.writeNumberField("seed", request.seed().getAsLong());
            }
            writeResponseFormat(g, request.responseFormat());
            if (!request.tools().isEmpty()) {
                g.writeArrayFieldStart("tools");
                for (ToolDefinition t : request.tools()) {
                    g.writeStartObject();
                    g.writeStringField("type", "function");
                    g.writeObjectFieldStart("function");
                    g.writeStringField("name", t.name());
                    if (!t.description().isEmpty()) {
                        g.writeStringField("description", t.description());
                    }
                    g.writeFieldName("parameters");
                    g.writeTree(parseJson(t.parametersJsonSchema(), "tool " + t.name() + " parameters"));
                    g.writeEndObject();
                    g.writeEndObject();
                }
                g.writeEndArray();
            }
            if (stream) {
                g.writeBooleanField("stream", true);
                g.writeObjectFieldStart("stream_options");
                g.writeBooleanField("include_usage", true);
                g.writeEndObject();
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static void writeMessage(JsonGenerator g, Message m) throws IOException {
        g.writeStartObject();
        g.writeStringField("role", m.role().wireName());
        if (m.toolCalls().isEmpty() || !m.content().isEmpty()) {
            g.writeStringField("content", m.content());
        } else {
            g.writeNullField("content");
        }
        if (!m.toolCalls().isEmpty()) {
            g.writeArrayFieldStart("tool_calls");
            for (ToolCall c : m.toolCalls()) {
                g.writeStartObject();
                g.writeStringField("id", c.id());
                g.writeStringField("type", "function");
                g.writeObjectFieldStart("function");
                g.writeStringField("name", c.name());
                g.writeStringField("arguments", c.argumentsJson());
                g.writeEndObject();
                g.writeEndObject();
            }
            g.writeEndArray();
        }
        if (m.toolCallId() != null) {
            g.writeStringField("tool_call_id", m.toolCallId());
        }
        g.writeEndObject();
    }

    private static void writeResponseFormat(JsonGenerator g, ResponseFormat f) throws IOException {
        switch (f.type()) {
            case JSON_OBJECT:
                g.writeObjectFieldStart("response_format");
                g.writeStringField("type", "json_object");
                g.writeEndObject();
                break;
            case JSON_SCHEMA:
                g.writeObjectFieldStart("response_format");
                g.writeStringField("type", "json_schema");
                g.writeObjectFieldStart("json_schema");
                g.writeStringField("name", f.schemaName());
                g.writeFieldName("schema");
                g.writeTree(parseJson(f.schemaJson(), "response format schema"));
                g.writeEndObject();
                g.writeEndObject();
                break;
            default:
                break;
        }
    }

    private static JsonNode parseJson(String json, String what) {
        try {
            return MAPPER.readTree(json);
        } catch (IOException e) {
            throw new IllegalArgumentException(what + " is not valid JSON: " + e.getMessage(), e);
        }
    }

    /** Reads {@code usage}; zero when absent. */
    public static Usage usage(JsonNode root) {
        JsonNode u = root.get("usage");
        if (u == null || !u.isObject()) {
            return null;
        }
        long in = u.path("prompt_tokens").asLong(0);
        long out = u.path("completion_tokens").asLong(0);
        long cached = u.path("prompt_tokens_details").path("cached_tokens").asLong(0);
        return new Usage(Math.max(0, in), Math.max(0, out), Math.max(0, Math.min(cached, in)));
    }

    /** The decoded first choice of a completion. */
    public record Completion(
            String text, List<ToolCall> toolCalls, FinishReason finishReason, Usage usage, String model) {}

    /**
     * Decodes a non-streaming completion.
     *
     * @throws IllegalArgumentException when required fields are missing
     */
    public static Completion decodeCompletion(JsonNode root) {
        JsonNode choices = root.get("choices");
        if (choices == null || !choices.isArray() || choices.size() == 0) {
            throw new IllegalArgumentException("response has no choices");
        }
        JsonNode choice = choices.get(0);
        JsonNode message = choice.get("message");
        if (message == null || !message.isObject()) {
            throw new IllegalArgumentException("first choice has no message");
        }
        JsonNode content = message.get("content");
        String text = content == null || content.isNull() ? "" : content.asText();
        List<ToolCall> calls = new ArrayList<>();
        JsonNode tc = message.get("tool_calls");
        if (tc != null && tc.isArray()) {
            for (JsonNode c : tc) {
                JsonNode fn = c.path("function");
                calls.add(new ToolCall(
                        c.path("id").asText(""), fn.path("name").asText(""), argumentsText(fn.get("arguments"))));
            }
        }
        Usage usage = usage(root);
        return new Completion(
                text,
                calls,
                FinishReason.fromWire(textOrNull(choice.get("finish_reason"))),
                usage == null ? Usage.ZERO : usage,
                root.path("model").asText(""));
    }

    /** The fields of one streamed {@code chat.completion.chunk} that the client uses. */
    public static final class ChunkFields {
        /** The first choice's {@code delta.content}, or null. */
        public String content;
        /** The first choice's {@code finish_reason}, or null. */
        public String finishReason;
        /** The first choice's {@code delta.tool_calls} array, or null. */
        public JsonNode toolCalls;
        /** Whether the chunk had a first choice at all (the usage chunk has none). */
        public boolean hasChoice;
        /** {@code model}, or null. */
        public String model;
        /** {@code usage}, or null. */
        public Usage usage;
        /** An {@code error} object sent inside the stream, or null. */
        public JsonNode error;
        /** Whether the chunk is itself a flat error object ({@code "object": "error"}, as vLLM sends). */
        public boolean errorObject;
    }

    /**
     * Decodes a stream chunk with a token parser, reading only the fields in {@link ChunkFields}.
     *
     * @throws IOException when the text is not JSON
     * @throws IllegalArgumentException when it is JSON but not an object
     */
    public static ChunkFields decodeChunk(String json) throws IOException {
        ChunkFields out = new ChunkFields();
        try (JsonParser p = FACTORY.createParser(json)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new IllegalArgumentException("not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken t = p.nextToken();
                switch (field) {
                    case "model":
                        out.model = t == JsonToken.VALUE_STRING ? p.getText() : null;
                        break;
                    case "usage":
                        if (t == JsonToken.START_OBJECT) {
                            JsonNode u = MAPPER.readTree(p);
                            out.usage = usage(MAPPER.createObjectNode().set("usage", u));
                        } else {
                            p.skipChildren();
                        }
                        break;
                    case "error":
                        // "error": null is a well-formed chunk that reports no error (some gateways send it).
                        if (t == JsonToken.VALUE_NULL) {
                            break;
                        }
                        out.error = MAPPER.readTree(p);
                        break;
                    case "object":
                        out.errorObject =
                                t == JsonToken.VALUE_STRING && p.getText().equals("error");
                        break;
                    case "choices":
                        if (t == JsonToken.START_ARRAY) {
                            readChoices(p, out);
                        } else {
                            p.skipChildren();
                        }
                        break;
                    default:
                        p.skipChildren();
                        break;
                }
            }
            if (p.currentToken() != JsonToken.END_OBJECT) {
                throw new com.fasterxml.jackson.core.JsonParseException(p, "unexpected token " + p.currentToken());
            }
            if (p.nextToken() != null) {
                throw new com.fasterxml.jackson.core.JsonParseException(p, "trailing content after the object");
            }
        }
        return out;
    }

    /** Reads the first element of {@code choices}; the parser is on START_ARRAY and ends on END_ARRAY. */
    private static void readChoices(JsonParser p, ChunkFields out) throws IOException {
        boolean first = true;
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            if (t == null) {
                throw new com.fasterxml.jackson.core.JsonParseException(p, "unterminated choices");
            }
            if (!first || t != JsonToken.START_OBJECT) {
                p.skipChildren();
                continue;
            }
            first = false;
            out.hasChoice = true;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken v = p.nextToken();
                if (field.equals("finish_reason")) {
                    out.finishReason = v == JsonToken.VALUE_NULL ? null : p.getText();
                } else if (field.equals("delta") && v == JsonToken.START_OBJECT) {
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String d = p.currentName();
                        JsonToken dv = p.nextToken();
                        if (d.equals("content")) {
                            out.content = dv == JsonToken.VALUE_NULL ? null : p.getText();
                        } else if (d.equals("tool_calls")) {
                            out.toolCalls = MAPPER.readTree(p);
                        } else {
                            p.skipChildren();
                        }
                    }
                } else {
                    p.skipChildren();
                }
            }
        }
    }

    /** Tool-call arguments as text: servers send a JSON string, a few send the object itself. */
    static String argumentsText(JsonNode args) {
        if (args == null || args.isNull()) {
            return "";
        }
        return args.isTextual() ? args.asText() : args.toString();
    }

    static String textOrNull(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }
}
