package dev.hybridinference.core.internal.openai;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.Usage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

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
        /**
         * What Azure's content filter blocked in the first choice ({@code content_filter_results}), as {@link
         * #contentFilter} describes it, or null when nothing was filtered.
         */
        public String contentFilter;

        void clear() {
            content = null;
            finishReason = null;
            toolCalls = null;
            hasChoice = false;
            model = null;
            usage = null;
            error = null;
            errorObject = false;
            contentFilter = null;
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
        try (JsonParser p = FACTORY.createParser(json)) {
            decode(p, out);
        }
    }

    /**
     * Decodes a stream chunk from its UTF-8 bytes, which spares decoding them to a string first. Bytes
     * that are not valid UTF-8 are decoded with U+FFFD in their place and parsed again, so the result is
     * the same as {@link #decode(String, Fields)} on the decoded text.
     *
     * @throws IOException when the text is not JSON
     * @throws IllegalArgumentException when it is JSON but not an object
     */
    public static void decode(byte[] json, int offset, int length, Fields out) throws IOException {
        try (JsonParser p = FACTORY.createParser(json, offset, length)) {
            decode(p, out);
        } catch (IOException e) {
            decode(new String(json, offset, length, StandardCharsets.UTF_8), out);
        }
    }

    private static void decode(JsonParser p, Fields out) throws IOException {
        out.clear();
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
                        out.usage = readUsage(p);
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
                    out.errorObject = t == JsonToken.VALUE_STRING && p.getText().equals("error");
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
                } else if (field.equals("content_filter_results")) {
                    out.contentFilter = contentFilter(MAPPER.readTree(p));
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

    /**
     * Reads a {@code usage} object with the parser on its START_OBJECT, leaving it on the matching
     * END_OBJECT; the same figures as {@link #usage(JsonNode)} without building a tree (the blocking path
     * reads one per call, a stream one at its end).
     */
    public static Usage readUsage(JsonParser p) throws IOException {
        long in = 0;
        long out = 0;
        long cached = 0;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken t = p.nextToken();
            switch (field) {
                case "prompt_tokens":
                    in = asLong(p, t);
                    break;
                case "completion_tokens":
                    out = asLong(p, t);
                    break;
                case "prompt_tokens_details":
                    if (t == JsonToken.START_OBJECT) {
                        while (p.nextToken() == JsonToken.FIELD_NAME) {
                            String d = p.currentName();
                            JsonToken dt = p.nextToken();
                            if (d.equals("cached_tokens")) {
                                cached = asLong(p, dt);
                            } else {
                                p.skipChildren();
                            }
                        }
                    } else {
                        p.skipChildren();
                    }
                    break;
                default:
                    p.skipChildren();
                    break;
            }
        }
        return usage(in, out, cached);
    }

    /** A scalar as a whole number, as {@link JsonNode#asLong(long)} reads it with a default of zero. */
    private static long asLong(JsonParser p, JsonToken t) throws IOException {
        switch (t) {
            case VALUE_NUMBER_INT:
                return p.getNumberType() == JsonParser.NumberType.BIG_INTEGER
                        ? p.getBigIntegerValue().longValue()
                        : p.getLongValue();
            case VALUE_NUMBER_FLOAT:
                return (long) p.getDoubleValue();
            case VALUE_TRUE:
                return 1;
            case VALUE_STRING:
                return MAPPER.getNodeFactory().textNode(p.getText()).asLong(0);
            default:
                p.skipChildren();
                return 0;
        }
    }

    private static Usage usage(long in, long out, long cached) {
        return new Usage(Math.max(0, in), Math.max(0, out), Math.max(0, Math.min(cached, Math.max(0, in))));
    }

    /** Reads a {@code usage} object; null when it is not an object. */
    public static Usage usage(JsonNode u) {
        if (u == null || !u.isObject()) {
            return null;
        }
        long in = u.path("prompt_tokens").asLong(0);
        long out = u.path("completion_tokens").asLong(0);
        long cached = u.path("prompt_tokens_details").path("cached_tokens").asLong(0);
        return usage(in, out, cached);
    }

    /**
     * The categories Azure's content filter blocked in a {@code content_filter_results} (or an error's {@code
     * content_filter_result}) object, such as {@code "violence (medium), hate (high)"}: each member whose
     * {@code filtered} is true, with its {@code severity} when it has one. Null when none was filtered or the
     * node is not an object.
     */
    public static String contentFilter(JsonNode results) {
        if (results == null || !results.isObject()) {
            return null;
        }
        StringBuilder sb = new StringBuilder();
        results.properties().forEach(e -> {
            JsonNode v = e.getValue();
            if (v.path("filtered").asBoolean(false)) {
                if (sb.length() > 0) {
                    sb.append(", ");
                }
                sb.append(e.getKey());
                String severity = v.path("severity").asText("");
                if (!severity.isEmpty()) {
                    sb.append(" (").append(severity).append(')');
                }
            }
        });
        return sb.length() == 0 ? null : sb.toString();
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
