package dev.hybridinference.core.http;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.Role;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.internal.openai.ChunkDecoder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * Encodes chat requests and decodes chat completions in the OpenAI wire format that vLLM, TGI, llama.cpp's
 * server, Azure's {@code /openai/v1} route and most gateways speak. {@link OpenAiTransport} uses it over
 * OkHttp; a provider with its own transport (an SDK's invoke call, say) uses it to build the body and read
 * the answer. Stateless and thread-safe.
 */
public final class OpenAiCodec {
    private static final JsonFactory FACTORY = ChunkDecoder.MAPPER.getFactory();

    /** Each role's wire name, by ordinal: computed once rather than lower-cased per message. */
    private static final String[] ROLES = roles();

    private static String[] roles() {
        Role[] roles = Role.values();
        String[] names = new String[roles.length];
        for (Role r : roles) {
            names[r.ordinal()] = r.wireName();
        }
        return names;
    }

    private OpenAiCodec() {}

    /** What a server-specific dialect adds to the standard body. */
    public enum Dialect {
        /** Only standard OpenAI fields. */
        OPENAI,
        /** vLLM: also sends {@code top_k} at the top level. */
        VLLM,
        /**
         * A service told to pass fields it does not define on to the model (Azure's {@code extra-parameters:
         * pass-through}): also sends {@code top_k} at the top level.
         */
        PASS_THROUGH
    }

    /**
     * Encodes a {@code POST /v1/chat/completions} body.
     *
     * @param request the request
     * @param model the model to name in the body
     * @param stream whether to ask for SSE, with the usage chunk at the end
     * @param dialect which extra fields the server accepts
     * @return the UTF-8 JSON body
     * @throws IllegalArgumentException when a tool's parameter schema or the response format's schema is
     *     not valid JSON
     */
    public static byte[] encodeRequest(ChatRequest request, String model, boolean stream, Dialect dialect) {
        // Written into pooled okio segments and copied out once at its exact size.
        okio.Buffer out = new okio.Buffer();
        try (JsonGenerator g = FACTORY.createGenerator(out.outputStream())) {
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
            if (request.topK().isPresent() && dialect != Dialect.OPENAI) {
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
        return out.readByteArray();
    }

    private static void writeMessage(JsonGenerator g, Message m) throws IOException {
        g.writeStartObject();
        g.writeStringField("role", ROLES[m.role().ordinal()]);
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
            return ChunkDecoder.MAPPER.readTree(json);
        } catch (IOException e) {
            throw new IllegalArgumentException(what + " is not valid JSON: " + e.getMessage(), e);
        }
    }

    /**
     * The first choice of a blocking completion.
     *
     * @param text the message content; empty when there is none
     * @param toolCalls the tool calls, in order
     * @param finishReason why generation stopped
     * @param usage the server's token counts; zero when it sent none
     * @param model the model that answered; empty when the server did not say
     * @param contentFilter what a content filter blocked in the answer (Azure's {@code content_filter_results},
     *     such as {@code "violence (medium)"}); empty when nothing was
     */
    public record Completion(
            String text,
            List<ToolCall> toolCalls,
            FinishReason finishReason,
            Usage usage,
            String model,
            String contentFilter) {
        /** Copies the list and requires the parts. */
        public Completion {
            Objects.requireNonNull(text, "text");
            toolCalls = List.copyOf(toolCalls);
            Objects.requireNonNull(finishReason, "finishReason");
            Objects.requireNonNull(usage, "usage");
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(contentFilter, "contentFilter");
        }

        /** A completion that no content filter touched. */
        public Completion(String text, List<ToolCall> toolCalls, FinishReason finishReason, Usage usage, String model) {
            this(text, toolCalls, finishReason, usage, model, "");
        }
    }

    /**
     * Decodes a blocking {@code chat.completion} body. Invalid UTF-8 is replaced with U+FFFD, as servers and
     * the streaming path do, rather than failing the call: the text a caller gets does not depend on whether
     * it streamed. A body that is an error object ({@code {"error":{...}}} or vLLM's flat {@code
     * {"object":"error",...}}), which some servers send with a success status, fails as that error.
     *
     * @param body the response body
     * @param providerId the provider, for messages
     * @param endpoint the endpoint without credentials, for messages
     * @param limits the bound on tool calls
     * @throws MalformedResponseException when the body is not a completion, or has more tool calls than
     *     the limit
     * @throws InferenceException the mapped error when the body is an error object
     */
    public static Completion decodeCompletion(byte[] body, String providerId, String endpoint, ResponseLimits limits) {
        return decodeCompletion(
                () -> FACTORY.createParser(body),
                () -> new String(body, StandardCharsets.UTF_8),
                providerId,
                endpoint,
                limits);
    }

    /** Opens a parser on a body, which may be read more than once. */
    @FunctionalInterface
    interface ParserSource {
        JsonParser open() throws IOException;
    }

    /**
     * Decodes a completion with a token parser, reading only the fields it returns: cheaper than a tree, and
     * a completion is decoded once per blocking call. {@code fast} reads the raw bytes; {@code text}, the
     * body decoded with replacement, is used only when they are not valid UTF-8 (or not JSON), and to read
     * an error object.
     */
    static Completion decodeCompletion(
            ParserSource fast, Supplier<String> text, String providerId, String endpoint, ResponseLimits limits) {
        CompletionFields f;
        try (JsonParser p = fast.open()) {
            f = CompletionFields.read(p);
        } catch (IOException first) {
            try (JsonParser p = FACTORY.createParser(text.get())) {
                f = CompletionFields.read(p);
            } catch (IOException e) {
                String detail =
                        e instanceof JacksonException ? ((JacksonException) e).getOriginalMessage() : e.getMessage();
                throw malformed(providerId, endpoint, "response is not valid JSON: " + detail, e);
            }
        }
        if (f == null) {
            throw malformed(providerId, endpoint, "response is not a JSON object", null);
        }
        if ((f.hasError && !f.hasChoices) || f.errorObject) {
            JsonNode root;
            try {
                root = ChunkDecoder.MAPPER.readTree(text.get());
            } catch (IOException e) {
                throw malformed(providerId, endpoint, "response is not valid JSON", e);
            }
            throw HttpErrors.forStreamError(providerId, endpoint, root.has("error") ? root.get("error") : root);
        }
        if (f.choices == 0) {
            throw malformed(providerId, endpoint, "response has no choices", null);
        }
        if (!f.hasMessage) {
            throw malformed(providerId, endpoint, "first choice has no message", null);
        }
        List<ToolCall> calls = List.of();
        if (f.toolCalls != null && f.toolCalls.isArray()) {
            if (f.toolCalls.size() > limits.maxToolCalls()) {
                throw malformed(
                        providerId,
                        endpoint,
                        "response has " + f.toolCalls.size() + " tool calls, more than the limit of "
                                + limits.maxToolCalls(),
                        null);
            }
            List<ToolCall> list = new ArrayList<>(f.toolCalls.size());
            for (JsonNode c : f.toolCalls) {
                JsonNode fn = c.path("function");
                list.add(new ToolCall(
                        c.path("id").asText(""),
                        fn.path("name").asText(""),
                        ChunkDecoder.argumentsText(fn.get("arguments"))));
            }
            calls = list;
        }
        return new Completion(
                f.text,
                calls,
                FinishReason.fromWire(f.finishReason),
                f.usage == null ? Usage.ZERO : f.usage,
                f.model,
                f.contentFilter == null ? "" : f.contentFilter);
    }

    /** The fields of a completion that the decoder reads, in whatever order the server sends them. */
    private static final class CompletionFields {
        String text = "";
        JsonNode toolCalls;
        String finishReason;
        Usage usage;
        String model = "";
        String contentFilter;
        /** Elements of {@code choices}; zero when it is absent or not an array. */
        int choices;

        boolean hasChoices;
        boolean hasMessage;
        boolean hasError;
        boolean errorObject;

        /** Reads a body; null when it is not a JSON object. */
        static CompletionFields read(JsonParser p) throws IOException {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            CompletionFields f = new CompletionFields();
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken t = p.nextToken();
                switch (field) {
                    case "choices":
                        f.hasChoices = true;
                        if (t == JsonToken.START_ARRAY) {
                            f.readChoices(p);
                        } else {
                            p.skipChildren();
                        }
                        break;
                    case "usage":
                        f.usage = t == JsonToken.START_OBJECT ? ChunkDecoder.readUsage(p) : null;
                        p.skipChildren();
                        break;
                    case "model":
                        f.model = t.isScalarValue() && t != JsonToken.VALUE_NULL ? p.getText() : "";
                        p.skipChildren();
                        break;
                    case "error":
                        f.hasError = true;
                        p.skipChildren();
                        break;
                    case "object":
                        f.errorObject =
                                t == JsonToken.VALUE_STRING && p.getText().equals("error");
                        p.skipChildren();
                        break;
                    default:
                        p.skipChildren();
                        break;
                }
            }
            if (p.currentToken() != JsonToken.END_OBJECT) {
                throw new JsonParseException(p, "unexpected token " + p.currentToken());
            }
            return f;
        }

        /** Reads {@code choices}; the parser is on START_ARRAY and ends on END_ARRAY. */
        private void readChoices(JsonParser p) throws IOException {
            JsonToken t;
            while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
                if (t == null) {
                    throw new JsonParseException(p, "unterminated choices");
                }
                choices++;
                if (choices > 1 || t != JsonToken.START_OBJECT) {
                    p.skipChildren();
                    continue;
                }
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String field = p.currentName();
                    JsonToken v = p.nextToken();
                    if (field.equals("finish_reason")) {
                        finishReason = v.isScalarValue() && v != JsonToken.VALUE_NULL ? p.getText() : null;
                        p.skipChildren();
                    } else if (field.equals("message") && v == JsonToken.START_OBJECT) {
                        hasMessage = true;
                        readMessage(p);
                    } else if (field.equals("content_filter_results")) {
                        contentFilter = ChunkDecoder.contentFilter(ChunkDecoder.MAPPER.readTree(p));
                    } else {
                        p.skipChildren();
                    }
                }
            }
        }

        /** Reads the first choice's {@code message}; the parser is on START_OBJECT and ends on END_OBJECT. */
        private void readMessage(JsonParser p) throws IOException {
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken v = p.nextToken();
                if (field.equals("content")) {
                    text = v.isScalarValue() && v != JsonToken.VALUE_NULL ? p.getText() : "";
                    p.skipChildren();
                } else if (field.equals("tool_calls")) {
                    toolCalls = v == JsonToken.START_ARRAY ? ChunkDecoder.MAPPER.readTree(p) : null;
                    p.skipChildren();
                } else {
                    p.skipChildren();
                }
            }
        }
    }

    static MalformedResponseException malformed(String providerId, String endpoint, String message, Throwable cause) {
        return new MalformedResponseException(message, providerId, endpoint, 0, null, cause);
    }
}
