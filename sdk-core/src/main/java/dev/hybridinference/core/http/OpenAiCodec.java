package dev.hybridinference.core.http;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.internal.openai.ChunkDecoder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Encodes chat requests and decodes chat completions in the OpenAI wire format that vLLM, TGI, llama.cpp's
 * server, Azure's {@code /openai/v1} route and most gateways speak. {@link OpenAiTransport} uses it over
 * OkHttp; a provider with its own transport (an SDK's invoke call, say) uses it to build the body and read
 * the answer. Stateless and thread-safe.
 */
public final class OpenAiCodec {
    private static final JsonFactory FACTORY = ChunkDecoder.MAPPER.getFactory();

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
     * @return the UTF-8 JSON body
     * @throws IllegalArgumentException when a tool's parameter schema or the response format's schema is
     *     not valid JSON
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
     */
    public record Completion(
            String text, List<ToolCall> toolCalls, FinishReason finishReason, Usage usage, String model) {
        /** Copies the list and requires the parts. */
        public Completion {
            Objects.requireNonNull(text, "text");
            toolCalls = List.copyOf(toolCalls);
            Objects.requireNonNull(finishReason, "finishReason");
            Objects.requireNonNull(usage, "usage");
            Objects.requireNonNull(model, "model");
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
        JsonNode root = parseJson(body, providerId, endpoint);
        if (root == null || !root.isObject()) {
            throw malformed(providerId, endpoint, "response is not a JSON object", null);
        }
        if ((root.has("error") && !root.has("choices"))
                || "error".equals(root.path("object").asText())) {
            throw HttpErrors.forStreamError(providerId, endpoint, root.has("error") ? root.get("error") : root);
        }
        Completion c;
        try {
            c = decodeCompletion(root);
        } catch (IllegalArgumentException e) {
            throw malformed(providerId, endpoint, e.getMessage(), e);
        }
        if (c.toolCalls().size() > limits.maxToolCalls()) {
            throw malformed(
                    providerId,
                    endpoint,
                    "response has " + c.toolCalls().size() + " tool calls, more than the limit of "
                            + limits.maxToolCalls(),
                    null);
        }
        return c;
    }

    /** Decodes a completion tree; throws IllegalArgumentException when required fields are missing. */
    static Completion decodeCompletion(JsonNode root) {
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
                        c.path("id").asText(""),
                        fn.path("name").asText(""),
                        ChunkDecoder.argumentsText(fn.get("arguments"))));
            }
        }
        Usage usage = ChunkDecoder.usage(root.get("usage"));
        return new Completion(
                text,
                calls,
                FinishReason.fromWire(ChunkDecoder.textOrNull(choice.get("finish_reason"))),
                usage == null ? Usage.ZERO : usage,
                root.path("model").asText(""));
    }

    /** Parses a JSON body, replacing invalid UTF-8 rather than failing on it. */
    static JsonNode parseJson(byte[] bytes, String providerId, String endpoint) {
        try {
            return ChunkDecoder.MAPPER.readTree(bytes);
        } catch (IOException first) {
            try {
                return ChunkDecoder.MAPPER.readTree(new String(bytes, StandardCharsets.UTF_8));
            } catch (IOException e) {
                String detail =
                        e instanceof JacksonException ? ((JacksonException) e).getOriginalMessage() : e.getMessage();
                throw malformed(providerId, endpoint, "response is not valid JSON: " + detail, e);
            }
        }
    }

    static MalformedResponseException malformed(String providerId, String endpoint, String message, Throwable cause) {
        return new MalformedResponseException(message, providerId, endpoint, 0, null, cause);
    }
}
