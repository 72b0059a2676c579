package dev.hybridinference.core.internal.openai;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.Usage;
import java.io.IOException;

/**
 * The Jackson side of the OpenAI wire format: the shared mapper, and a token-level decoder of streamed
 * {@code chat.completion.chunk} objects. Internal: not part of the public API; the public entry points are
 * in {@code dev.hybridinference.core.http}.
 */
public final class ChunkDecoder {
    /** The shared mapper; thread-safe once configured. */
    public static final ObjectMapper MAPPER = new ObjectMapper();

    private static final JsonFactory FACTORY = MAPPER.getFactory();

    private ChunkDecoder() {}

    /** The fields of one streamed chunk that the client uses; one instance is reused chunk after chunk. */
    public static final class Fields {
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

        void clear() {
            content = null;
            finishReason = null;
            toolCalls = null;
            hasChoice = false;
            model = null;
            usage = null;
            error = null;
            errorObject = false;
        }
    }

    /**
     * Decodes a stream chunk with a token parser into {@code out}, reading only the fields in {@link
     * Fields}: a stream has one chunk per token, so this is the hot path, and a tree would cost several
     * times as much.
     *
     * @throws IOException when the text is not JSON
     * @throws IllegalArgumentException when it is JSON but not an object
     */
    public static void decode(String json, Fields out) throws IOException {
        out.clear();
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
                            out.usage = usage(MAPPER.readTree(p));
                        } else {
                            p.skipChildren();
                        }
                        break;
                    case "error":
                        // "error": null is a well-formed chunk that reports no error (some gateways send it).
                        if (t != JsonToken.VALUE_NULL) {
                            out.error = MAPPER.readTree(p);
                        }
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
                throw new JsonParseException(p, "unexpected token " + p.currentToken());
            }
            if (p.nextToken() != null) {
                throw new JsonParseException(p, "trailing content after the object");
            }
        }
    }

    /** Reads the first element of {@code choices}; the parser is on START_ARRAY and ends on END_ARRAY. */
    private static void readChoices(JsonParser p, Fields out) throws IOException {
        boolean first = true;
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            if (t == null) {
                throw new JsonParseException(p, "unterminated choices");
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

    /** Reads a {@code usage} object; null when it is not an object. */
    public static Usage usage(JsonNode u) {
        if (u == null || !u.isObject()) {
            return null;
        }
        long in = u.path("prompt_tokens").asLong(0);
        long out = u.path("completion_tokens").asLong(0);
        long cached = u.path("prompt_tokens_details").path("cached_tokens").asLong(0);
        return new Usage(Math.max(0, in), Math.max(0, out), Math.max(0, Math.min(cached, Math.max(0, in))));
    }

    /** Tool-call arguments as text: servers send a JSON string, a few send the object itself. */
    public static String argumentsText(JsonNode args) {
        if (args == null || args.isNull()) {
            return "";
        }
        return args.isTextual() ? args.asText() : args.toString();
    }

    /** A node's text, or null when it is absent or JSON null. */
    public static String textOrNull(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }
}
