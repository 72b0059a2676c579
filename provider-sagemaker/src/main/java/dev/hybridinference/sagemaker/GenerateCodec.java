package dev.hybridinference.sagemaker;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.http.HttpErrors;
import dev.hybridinference.core.http.StreamSplitter;
import dev.hybridinference.core.spi.ProviderResult;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * The generate API of TGI and of DJL's LMI containers: {@code {"inputs": prompt, "parameters": {...},
 * "stream": bool}}, the prompt rendered from the messages by a {@link PromptTemplate}.
 *
 * <ul>
 *   <li>Answers: TGI sends {@code [{"generated_text": ..., "details": {...}}]}, LMI the object alone; both
 *       are read.
 *   <li>Streams: TGI sends SSE events {@code data:{"token":{"text":...},"generated_text":null,...}}, LMI JSON
 *       lines {@code {"token":{"text":...}}}; the last event adds {@code generated_text} and {@code details}.
 *       A token marked {@code special} adds no text. LMI reports a failure mid-stream as a last line with
 *       {@code finish_reason: "error"} and token id -1, under HTTP 200: it fails the stream as unavailable.
 *   <li>Usage: the output tokens are the container's count ({@code details.generated_tokens}, asked for with
 *       {@code details: true}) or the tokens streamed; the prompt's tokens are never reported, so they are
 *       estimated and the usage is marked estimated.
 *   <li>JSON output: TGI's {@code grammar} (a JSON schema; {@code {"type":"object"}} for any object). LMI
 *       has none, and neither has tools: such requests fail before they are sent, and the capabilities say
 *       so, so a composite client routes them elsewhere.
 * </ul>
 */
final class GenerateCodec implements PayloadCodec {
    /** Which container's dialect. */
    enum Flavor {
        TGI,
        LMI
    }

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final Flavor flavor;
    private final PromptTemplate template;

    GenerateCodec(Flavor flavor, PromptTemplate template) {
        this.flavor = Objects.requireNonNull(flavor, "flavor");
        this.template = Objects.requireNonNull(template, "template");
    }

    @Override
    public ClientInfo.Capabilities capabilities() {
        boolean json = flavor == Flavor.TGI;
        return new ClientInfo.Capabilities(false, json, json, true, 0);
    }

    @Override
    public byte[] encode(ChatRequest request, String model, boolean stream) {
        String format = flavor == Flavor.TGI ? "tgi" : "lmi";
        if (!request.tools().isEmpty()) {
            throw new InvalidRequestException(
                    "the " + format + " payload format cannot carry tools; use payload: messages",
                    null,
                    null,
                    0,
                    null,
                    null);
        }
        ObjectNode body = MAPPER.createObjectNode();
        body.put("inputs", template.render(request.messages()));
        ObjectNode p = body.putObject("parameters");
        request.maxTokens().ifPresent(n -> p.put("max_new_tokens", n));
        double temperature = request.temperature().orElse(Double.NaN);
        if (temperature > 0) {
            p.put("temperature", temperature);
            p.put("do_sample", true);
        } else if (temperature == 0) {
            p.put("do_sample", false);
        }
        // TGI requires 0 < top_p < 1: 1 means no nucleus sampling, so it is left out.
        request.topP().ifPresent(v -> {
            if (v > 0 && v < 1) {
                p.put("top_p", v);
            }
        });
        request.topK().ifPresent(k -> p.put("top_k", k));
        request.seed().ifPresent(s -> p.put("seed", s));
        if (!request.stop().isEmpty()) {
            ArrayNode stop = p.putArray(flavor == Flavor.TGI ? "stop" : "stop_sequences");
            request.stop().forEach(stop::add);
        }
        p.put("details", true);
        if (flavor == Flavor.TGI) {
            p.put("return_full_text", false);
        }
        ResponseFormat rf = request.responseFormat();
        if (rf.type() != ResponseFormat.Type.TEXT) {
            if (flavor != Flavor.TGI) {
                throw new InvalidRequestException(
                        "the lmi payload format cannot constrain the answer to JSON; use payload: messages",
                        null,
                        null,
                        0,
                        null,
                        null);
            }
            ObjectNode grammar = p.putObject("grammar");
            grammar.put("type", "json");
            grammar.set("value", schema(rf));
        }
        body.put("stream", stream);
        try {
            return MAPPER.writeValueAsBytes(body);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree did not serialize", e);
        }
    }

    private static JsonNode schema(ResponseFormat rf) {
        if (rf.type() == ResponseFormat.Type.JSON_SCHEMA) {
            try {
                return MAPPER.readTree(rf.schemaJson());
            } catch (IOException e) {
                throw new InvalidRequestException(
                        "the response format's schema is not valid JSON", null, null, 0, null, e);
            }
        }
        return MAPPER.createObjectNode().put("type", "object");
    }

    @Override
    public ProviderResult decode(byte[] body, Context context) {
        JsonNode root = parse(new String(body, StandardCharsets.UTF_8), context);
        JsonNode answer = root.isArray() ? root.path(0) : root;
        if (answer.hasNonNull("error")) {
            throw HttpErrors.forStreamError(context.providerId(), context.endpoint(), answer.toString());
        }
        JsonNode text = answer.get("generated_text");
        if (text == null || !text.isTextual()) {
            throw context.malformed("the answer has no generated_text: " + abbreviate(root.toString()), null);
        }
        String generated = text.asText();
        if (generated.length() > context.limits().maxStreamChars()) {
            throw context.malformed(
                    "the answer exceeds the limit of " + context.limits().maxStreamChars() + " characters", null);
        }
        JsonNode details = answer.path("details");
        long tokens = details.path("generated_tokens").canConvertToLong()
                ? details.get("generated_tokens").asLong()
                : (generated.length() + 3) / 4;
        return ProviderResult.builder()
                .text(generated)
                .finishReason(finishReason(details.path("finish_reason").asText("")))
                .usage(Usage.estimated(promptTokens(context), tokens))
                .model(context.model())
                .build();
    }

    @Override
    public StreamDecoder streamDecoder(Context context) {
        return new Decoder(context);
    }

    private static long promptTokens(Context context) {
        return Math.max(1, (context.promptChars() + 3) / 4);
    }

    /** TGI's and LMI's finish reasons. */
    static FinishReason finishReason(String reason) {
        switch (reason) {
            case "length":
                return FinishReason.LENGTH;
            case "eos_token":
            case "stop_sequence":
            case "stop":
                return FinishReason.STOP;
            default:
                return FinishReason.OTHER;
        }
    }

    private static JsonNode parse(String data, Context context) {
        try {
            JsonNode n = MAPPER.readTree(data);
            if (n == null || !(n.isObject() || n.isArray())) {
                throw context.malformed("the container's answer is not a JSON object: " + abbreviate(data), null);
            }
            return n;
        } catch (JsonProcessingException e) {
            throw context.malformed("the container's answer is not valid JSON: " + abbreviate(data), e);
        }
    }

    private static String abbreviate(String s) {
        return s.length() <= 120 ? s : s.substring(0, 120) + "...";
    }

    /** One stream: token events folded into the text, the count of tokens kept. */
    private static final class Decoder extends LineStreamDecoder {
        private long tokens;
        private long reportedTokens = -1;
        private boolean done;
        private boolean complete;

        Decoder(Context context) {
            super(context);
        }

        @Override
        protected ChatChunk event(StreamSplitter.Event e) {
            if (e.error()) {
                throw HttpErrors.forStreamError(context.providerId(), context.endpoint(), e.data());
            }
            if (e.data().equals("[DONE]")) {
                done = true;
                complete = true;
                return null;
            }
            return event(parse(e.data(), context));
        }

        @Override
        protected boolean ended() {
            return done;
        }

        @Override
        protected boolean complete() {
            return complete;
        }

        private ChatChunk event(JsonNode n) {
            if (n.hasNonNull("error")) {
                throw HttpErrors.forStreamError(context.providerId(), context.endpoint(), n.toString());
            }
            JsonNode token = n.path("token");
            JsonNode details = n.path("details");
            String reason =
                    details.path("finish_reason").asText(n.path("finish_reason").asText(""));
            if ("error".equals(reason)) {
                throw new ProviderUnavailableException(
                        "the container failed mid-stream: " + abbreviate(n.toString()),
                        context.providerId(),
                        context.endpoint(),
                        0,
                        null,
                        null);
            }
            if (n.hasNonNull("generated_text") || details.isObject()) {
                complete = true;
            }
            if (details.path("generated_tokens").canConvertToLong()) {
                reportedTokens = details.get("generated_tokens").asLong();
            }
            String piece = "";
            if (token.isObject()) {
                tokens++;
                if (!token.path("special").asBoolean(false)) {
                    piece = token.path("text").asText("");
                }
            }
            FinishReason finish = reason.isEmpty() ? null : finishReason(reason);
            return assembler.appendText(piece, finish);
        }

        @Override
        public ProviderResult result() {
            ProviderResult r = assembler.result();
            long out = reportedTokens >= 0 ? reportedTokens : tokens;
            return r.toBuilder()
                    .usage(Usage.estimated(promptTokens(context), out))
                    .build();
        }
    }
}
