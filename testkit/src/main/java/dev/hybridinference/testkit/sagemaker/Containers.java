package dev.hybridinference.testkit.sagemaker;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hybridinference.testkit.internal.GeneratedText;
import dev.hybridinference.testkit.internal.OpenAiChatShapes;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator.Container;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * What the emulated inference containers read and write: the request shapes they accept and the bodies and
 * streams they answer with, for the OpenAI messages API (vLLM, TGI, LMI) and the generate APIs of TGI and LMI.
 */
final class Containers {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** Output length when the request names none. */
    static final int DEFAULT_MAX_TOKENS = 16;

    private Containers() {}

    /** A request body the container cannot take; the message is what the container would answer. */
    static final class BadBody extends Exception {
        BadBody(String message) {
            super(message);
        }
    }

    /** What the container read from a request body. */
    record Call(
            boolean chat,
            String model,
            String prompt,
            int promptTokens,
            int maxTokens,
            Long seed,
            boolean details,
            boolean includeUsage) {}

    /** What the call answers: text pieces (each after the first with its leading space) or a tool call. */
    record Answer(List<String> pieces, boolean generated, String toolName, String toolArguments) {
        static Answer text(String text) {
            return new Answer(scriptedPieces(text), false, null, null);
        }

        static Answer toolCall(String name, String arguments) {
            return new Answer(List.of(), false, name, arguments);
        }

        boolean isToolCall() {
            return toolName != null;
        }

        String joined() {
            return String.join("", pieces);
        }

        int completionTokens() {
            return isToolCall() ? Math.max(1, words(toolArguments)) : pieces.size();
        }

        String chatFinish() {
            return isToolCall() ? "tool_calls" : generated ? "length" : "stop";
        }

        String generateFinish() {
            return generated ? "length" : "eos_token";
        }

        /** The same answer as plain text, for a generate request that meets a scripted tool call. */
        Answer asText() {
            return isToolCall() ? new Answer(List.of(toolArguments), false, null, null) : this;
        }
    }

    /** One piece of a streamed body; {@code token} pieces wait one token latency before they are sent. */
    record StreamPiece(byte[] bytes, boolean token) {}

    /** Whether this container's streams are server-sent events (else JSON lines). */
    static boolean sse(Container c) {
        return c == Container.MESSAGES_SSE || c == Container.TGI;
    }

    /** The container's stream MIME type, which SageMaker passes on in {@code X-Amzn-SageMaker-Content-Type}. */
    static String streamContentType(Container c) {
        return sse(c) ? "text/event-stream" : "application/jsonlines";
    }

    /** Reads a body as the container would: {@code messages} makes a chat call, {@code inputs} a generate call. */
    static Call parse(Container c, byte[] body, String endpointName) throws BadBody {
        JsonNode root;
        try {
            root = MAPPER.readTree(body);
        } catch (IOException e) {
            throw new BadBody("Failed to deserialize the JSON body into the target type: expected value at line 1");
        }
        if (root == null || !root.isObject()) {
            throw new BadBody("Failed to deserialize the JSON body into the target type: expected a JSON object");
        }
        String model = root.path("model").asText(endpointName);
        if (root.has("messages")) {
            JsonNode messages = root.get("messages");
            if (!messages.isArray() || messages.isEmpty()) {
                throw new BadBody("messages: expected a non-empty array");
            }
            StringBuilder prompt = new StringBuilder();
            for (JsonNode m : messages) {
                String content = OpenAiChatShapes.contentText(m.path("content"));
                if (!content.isEmpty()) {
                    if (prompt.length() > 0) {
                        prompt.append('\n');
                    }
                    prompt.append(content);
                }
            }
            JsonNode max =
                    root.has("max_completion_tokens") ? root.get("max_completion_tokens") : root.get("max_tokens");
            return new Call(
                    true,
                    model,
                    prompt.toString(),
                    words(prompt.toString()),
                    maxTokens(max, "max_tokens"),
                    seed(root.get("seed")),
                    false,
                    root.path("stream_options").path("include_usage").asBoolean(false));
        }
        if (root.has("inputs") && c != Container.MESSAGES_SSE) {
            JsonNode inputs = root.get("inputs");
            String prompt;
            if (inputs.isTextual()) {
                prompt = inputs.asText();
            } else if (inputs.isArray() && inputs.size() > 0 && inputs.get(0).isTextual()) {
                prompt = inputs.get(0).asText();
            } else {
                throw new BadBody("inputs: expected a string");
            }
            JsonNode parameters = root.path("parameters");
            if (!parameters.isMissingNode() && !parameters.isObject()) {
                throw new BadBody("parameters: expected an object");
            }
            return new Call(
                    false,
                    model,
                    prompt,
                    words(prompt),
                    maxTokens(parameters.get("max_new_tokens"), "max_new_tokens"),
                    seed(parameters.get("seed")),
                    parameters.path("details").asBoolean(false),
                    false);
        }
        throw new BadBody(
                c == Container.MESSAGES_SSE
                        ? "Failed to deserialize the JSON body into the target type: missing field `messages`"
                        : "Failed to deserialize the JSON body into the target type: data did not match any variant");
    }

    private static int maxTokens(JsonNode node, String field) throws BadBody {
        if (node == null || node.isNull()) {
            return DEFAULT_MAX_TOKENS;
        }
        if (!node.canConvertToInt() || !node.isIntegralNumber() || node.asInt() < 0) {
            throw new BadBody(field + ": expected a non-negative integer");
        }
        return node.asInt();
    }

    private static Long seed(JsonNode node) throws BadBody {
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isIntegralNumber()) {
            throw new BadBody("seed: expected an integer");
        }
        return node.asLong();
    }

    /** Counts whitespace-separated words. */
    static int words(String text) {
        return GeneratedText.words(text);
    }

    /** The words of a scripted text, re-joined with single spaces: the first bare, the others after a space. */
    static List<String> scriptedPieces(String text) {
        String t = text.strip();
        List<String> pieces = new ArrayList<>();
        if (t.isEmpty()) {
            return pieces;
        }
        for (String w : t.split("\\s+")) {
            pieces.add(pieces.isEmpty() ? w : " " + w);
        }
        return pieces;
    }

    /**
     * Deterministic generated text: {@code count} words (see {@link GeneratedText}), chosen by the prompt, the
     * request's seed (when it has one) and the emulator's seed.
     */
    static Answer generate(String prompt, Long requestSeed, long emulatorSeed, int count) {
        return new Answer(GeneratedText.pieces(prompt, requestSeed, emulatorSeed, count), true, null, null);
    }

    private static int tokenId(String piece) {
        int i = GeneratedText.WORDS.indexOf(piece.strip());
        return i >= 0 ? 1000 + i : 2000 + (piece.strip().hashCode() & 0x7FFF);
    }

    private static double logprob(int index) {
        return -0.125 * (1 + index % 4);
    }

    // ---- blocking bodies ----

    /** The body of a blocking answer. */
    static byte[] blockingBody(Container c, Call call, Answer answer, String id, long created) {
        try {
            if (call.chat()) {
                return MAPPER.writeValueAsBytes(chatCompletion(call, answer, id, created));
            }
            Answer text = answer.asText();
            ObjectNode result = MAPPER.createObjectNode();
            result.put("generated_text", text.joined());
            if (call.details()) {
                ObjectNode details = result.putObject("details");
                details.put("finish_reason", text.generateFinish());
                details.put("generated_tokens", text.pieces().size());
                if (sse(c)) {
                    putSeed(details, call);
                } else {
                    details.put("inputs", call.prompt());
                }
            }
            if (c == Container.TGI) {
                ArrayNode array = MAPPER.createArrayNode();
                array.add(result);
                return MAPPER.writeValueAsBytes(array);
            }
            return MAPPER.writeValueAsBytes(result);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void putSeed(ObjectNode details, Call call) {
        if (call.seed() == null) {
            details.putNull("seed");
        } else {
            details.put("seed", call.seed());
        }
    }

    private static ObjectNode chatCompletion(Call call, Answer answer, String id, long created) {
        ObjectNode message;
        if (answer.isToolCall()) {
            message = MAPPER.createObjectNode().put("role", "assistant");
            message.putNull("content");
            ObjectNode tool = message.putArray("tool_calls").addObject();
            tool.put("id", toolCallId(id)).put("type", "function");
            tool.putObject("function").put("name", answer.toolName()).put("arguments", answer.toolArguments());
        } else {
            message = OpenAiChatShapes.assistantMessage(answer.joined());
        }
        return OpenAiChatShapes.completion(
                id,
                created,
                call.model(),
                message,
                answer.chatFinish(),
                call.promptTokens(),
                answer.completionTokens());
    }

    private static String toolCallId(String id) {
        return "call_" + id.substring(id.indexOf('-') + 1);
    }

    // ---- streams ----

    /** The pieces of a streamed body, in order, as the container writes them. */
    static List<StreamPiece> stream(Container c, Call call, Answer answer, String id, long created) {
        List<StreamPiece> out = new ArrayList<>();
        if (call.chat()) {
            chatStream(c, call, answer, id, created, out);
        } else if (sse(c)) {
            tgiStream(call, answer.asText(), out);
        } else {
            lmiStream(call, answer.asText(), out);
        }
        return out;
    }

    private static void chatStream(
            Container c, Call call, Answer answer, String id, long created, List<StreamPiece> out) {
        boolean sse = sse(c);
        out.add(event(sse, false, OpenAiChatShapes.roleChunk(id, created, call.model())));
        if (answer.isToolCall()) {
            String args = answer.toolArguments();
            int half = args.length() / 2;
            ObjectNode first = MAPPER.createObjectNode();
            ObjectNode call0 = first.putArray("tool_calls").addObject();
            call0.put("index", 0).put("id", toolCallId(id)).put("type", "function");
            call0.putObject("function").put("name", answer.toolName()).put("arguments", args.substring(0, half));
            out.add(event(sse, true, chunk(call, id, created, first, null)));
            ObjectNode second = MAPPER.createObjectNode();
            ObjectNode call1 = second.putArray("tool_calls").addObject();
            call1.put("index", 0);
            call1.putObject("function").put("arguments", args.substring(half));
            out.add(event(sse, true, chunk(call, id, created, second, null)));
        } else {
            for (String piece : answer.pieces()) {
                out.add(event(sse, true, OpenAiChatShapes.contentChunk(id, created, call.model(), piece)));
            }
        }
        out.add(event(sse, false, OpenAiChatShapes.finishChunk(id, created, call.model(), answer.chatFinish())));
        if (sse && call.includeUsage()) {
            out.add(event(
                    true,
                    false,
                    OpenAiChatShapes.usageChunk(
                            id, created, call.model(), call.promptTokens(), answer.completionTokens())));
        }
        if (sse) {
            out.add(new StreamPiece("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8), false));
        }
    }

    private static ObjectNode chunk(Call call, String id, long created, ObjectNode delta, String finish) {
        return OpenAiChatShapes.chunk(id, created, call.model(), delta, finish);
    }

    private static StreamPiece event(boolean sse, boolean token, JsonNode json) {
        String line = sse ? "data: " + json + "\n\n" : json + "\n";
        return new StreamPiece(line.getBytes(StandardCharsets.UTF_8), token);
    }

    private static void tgiStream(Call call, Answer answer, List<StreamPiece> out) {
        List<String> pieces = answer.pieces().isEmpty() ? List.of("") : answer.pieces();
        for (int i = 0; i < pieces.size(); i++) {
            ObjectNode ev = MAPPER.createObjectNode();
            ev.put("index", i);
            ObjectNode token = ev.putObject("token");
            token.put("id", tokenId(pieces.get(i)))
                    .put("text", pieces.get(i))
                    .put("logprob", logprob(i))
                    .put("special", false);
            if (i == pieces.size() - 1) {
                ev.put("generated_text", answer.joined());
                ObjectNode details = ev.putObject("details");
                details.put("finish_reason", answer.generateFinish());
                details.put("generated_tokens", answer.pieces().size());
                putSeed(details, call);
                details.put("input_length", call.promptTokens());
            } else {
                ev.putNull("generated_text");
                ev.putNull("details");
            }
            out.add(new StreamPiece(("data:" + ev + "\n\n").getBytes(StandardCharsets.UTF_8), true));
        }
    }

    private static void lmiStream(Call call, Answer answer, List<StreamPiece> out) {
        List<String> pieces = answer.pieces().isEmpty() ? List.of("") : answer.pieces();
        for (int i = 0; i < pieces.size(); i++) {
            ObjectNode line = MAPPER.createObjectNode();
            line.putObject("token")
                    .put("id", tokenId(pieces.get(i)))
                    .put("text", pieces.get(i))
                    .put("log_prob", logprob(i));
            if (i == pieces.size() - 1) {
                line.put("generated_text", answer.joined());
                ObjectNode details = line.putObject("details");
                details.put("finish_reason", answer.generateFinish());
                details.put("generated_tokens", answer.pieces().size());
                details.put("inputs", call.prompt());
            }
            out.add(new StreamPiece((line + "\n").getBytes(StandardCharsets.UTF_8), true));
        }
    }

    /** A TGI-style error body, {@code {"error":...,"error_type":...}}. */
    static String tgiError(String message, String type) {
        ObjectNode e = MAPPER.createObjectNode();
        e.put("error", message).put("error_type", type);
        return e.toString();
    }
}
