package dev.hybridinference.core.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.internal.openai.ChunkDecoder;
import dev.hybridinference.core.spi.ProviderResult;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Assembles a streamed chat completion from its events: the text, the tool calls from their fragments,
 * the usage, the finish reason and the model. Feed it the events of a {@link StreamSplitter} (OpenAI
 * {@code chat.completion.chunk} objects, {@code [DONE]}, error events) with {@link #accept}; each call
 * returns the chunk to hand to the caller, if the event carried one. {@link #result()} is the whole
 * answer at the end, and what was assembled so far when the stream was cut or closed, with the usage
 * estimated when the server had not sent it yet, so a failed call is still charged for the tokens it
 * streamed.
 *
 * <p>What the server sends is bounded by {@link ResponseLimits}: the tool-call index (a hostile index
 * cannot size a list), the number of tool calls and the characters assembled. A violation, a chunk that
 * is not JSON and an error event fail with an {@link InferenceException} that names the provider and
 * endpoint.
 *
 * <p>Not thread-safe: one reader feeds it; {@link #result()} may be read by another thread only after the
 * reader has stopped.
 */
public final class StreamAssembler {
    private static final String DONE = "[DONE]";

    private final String providerId;
    private final String endpoint;
    private final long promptChars;
    private final ResponseLimits limits;
    /**
     * The result attribute that says what a content filter blocked in the answer (Azure's {@code
     * content_filter_results}, such as {@code "violence (medium)"}); absent when nothing was.
     */
    public static final String CONTENT_FILTER = "contentFilter";

    private final ChunkDecoder.Fields fields = new ChunkDecoder.Fields();
    private String contentFilter;
    private final StringBuilder text = new StringBuilder();
    private final List<ToolCallBuilder> toolCalls = new ArrayList<>(0);
    private FinishReason finish;
    private Usage usage;
    private String model;
    /** Chunks that carried content or a tool-call fragment: about one token each. */
    private long contentChunks;

    private long assembledChars;
    private boolean ended;

    /**
     * An assembler for one stream.
     *
     * @param providerId the provider, for messages
     * @param endpoint the endpoint without credentials, for messages
     * @param model the model requested: the result's model until the server names one
     * @param promptChars the characters of the prompt, for the usage estimate of a cut stream (about four
     *     characters a token)
     * @param limits the bounds on what the server may send
     */
    public StreamAssembler(String providerId, String endpoint, String model, long promptChars, ResponseLimits limits) {
        this.providerId = providerId;
        this.endpoint = endpoint;
        this.model = model == null ? "" : model;
        this.promptChars = Math.max(0, promptChars);
        this.limits = Objects.requireNonNull(limits, "limits");
    }

    /**
     * The characters of a request's messages: the measure of the prompt that usage estimates use (about
     * four characters a token) when a server reports no token counts.
     */
    public static long promptChars(ChatRequest request) {
        long n = 0;
        for (Message m : request.messages()) {
            n += m.content() == null ? 0 : m.content().length();
        }
        return n;
    }

    /**
     * Folds in one event.
     *
     * @return the chunk for the caller: new text, a finish reason, or an empty chunk for a tool-call
     *     fragment; null when the event carried nothing for the caller (a role-only delta, the usage
     *     chunk) or was {@code [DONE]} (then {@link #isEnded()} is true)
     * @throws InferenceException for an error event or a chunk that is an error object (mapped by {@link
     *     HttpErrors#forStreamError}), a chunk that is not a JSON object or breaks a limit ({@link
     *     MalformedResponseException})
     */
    public ChatChunk accept(StreamSplitter.Event event) {
        if (event.error()) {
            throw HttpErrors.forStreamError(providerId, endpoint, event.data());
        }
        return accept(event.data());
    }

    /**
     * Folds in the data of one ordinary (non-error) event: a {@code chat.completion.chunk} object, or
     * {@code [DONE]}; see {@link #accept(StreamSplitter.Event)}.
     */
    public ChatChunk accept(String data) {
        if (data.equals(DONE)) {
            ended = true;
            return null;
        }
        ChunkDecoder.Fields f = fields;
        try {
            ChunkDecoder.decode(data, f);
        } catch (IOException e) {
            throw malformed("stream event is not valid JSON: " + abbreviate(data), e);
        } catch (IllegalArgumentException e) {
            throw malformed("stream event is not a JSON object: " + abbreviate(data), e);
        }
        if (f.errorObject && f.error == null) {
            throw HttpErrors.forStreamError(providerId, endpoint, data);
        }
        return fold(f);
    }

    /**
     * Folds in an event straight from the splitter's bytes, sparing their decoding to a string (the
     * transport's path: one event per token). Same rules as {@link #accept(StreamSplitter.Event)}.
     */
    ChatChunk accept(byte[] data, int length, boolean error) {
        if (error) {
            throw HttpErrors.forStreamError(providerId, endpoint, utf8(data, length));
        }
        if (length == 6 && isDone(data)) {
            ended = true;
            return null;
        }
        ChunkDecoder.Fields f = fields;
        try {
            ChunkDecoder.decode(data, 0, length, f);
        } catch (IOException e) {
            throw malformed("stream event is not valid JSON: " + abbreviate(utf8(data, length)), e);
        } catch (IllegalArgumentException e) {
            throw malformed("stream event is not a JSON object: " + abbreviate(utf8(data, length)), e);
        }
        if (f.errorObject && f.error == null) {
            throw HttpErrors.forStreamError(providerId, endpoint, utf8(data, length));
        }
        return fold(f);
    }

    private static boolean isDone(byte[] data) {
        for (int i = 0; i < 6; i++) {
            if (data[i] != DONE.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    private static String utf8(byte[] data, int length) {
        return new String(data, 0, length, StandardCharsets.UTF_8);
    }

    /** Folds in one decoded chunk. */
    private ChatChunk fold(ChunkDecoder.Fields f) {
        if (f.error != null) {
            throw HttpErrors.forStreamError(providerId, endpoint, f.error);
        }
        if (f.usage != null) {
            usage = f.usage;
        }
        if (f.model != null && !f.model.isEmpty()) {
            model = f.model;
        }
        if (f.contentFilter != null) {
            contentFilter = f.contentFilter;
        }
        if (!f.hasChoice) {
            return null;
        }
        JsonNode tc = f.toolCalls;
        boolean toolFragment = tc != null && tc.isArray() && tc.size() > 0;
        if (toolFragment) {
            for (JsonNode c : tc) {
                appendToolFragment(c);
            }
        }
        FinishReason fr = f.finishReason == null ? null : FinishReason.fromWire(f.finishReason);
        if (fr != null) {
            finish = fr;
        }
        String piece = f.content;
        boolean content = piece != null && !piece.isEmpty();
        if (content || toolFragment) {
            contentChunks++;
        }
        if (content) {
            grow(piece.length());
            text.append(piece);
            return new ChatChunk(piece, fr);
        }
        return fr != null || toolFragment ? new ChatChunk("", fr) : null;
    }

    /**
     * Folds in a whole completion, for a server that ignored {@code stream: true} and answered with one
     * JSON body; the stream has then ended.
     *
     * @return the one chunk holding the whole text and the finish reason
     */
    public ChatChunk acceptCompletion(OpenAiCodec.Completion c) {
        ended = true;
        grow(c.text().length());
        text.append(c.text());
        for (ToolCall t : c.toolCalls()) {
            ToolCallBuilder b = new ToolCallBuilder();
            b.id = t.id();
            b.name.append(t.name());
            b.arguments.append(t.argumentsJson());
            toolCalls.add(b);
        }
        finish = c.finishReason();
        usage = c.usage();
        if (!c.contentFilter().isEmpty()) {
            contentFilter = c.contentFilter();
        }
        if (!c.model().isEmpty()) {
            model = c.model();
        }
        return new ChatChunk(c.text(), finish);
    }

    /**
     * Adds a piece of text decoded by the provider itself (a payload that is not OpenAI's, such as TGI's
     * {@code {"token":{"text":...}}}); counts as one streamed token for the usage estimate.
     *
     * @return the chunk for the caller, null for an empty piece
     */
    public ChatChunk appendText(String piece, FinishReason finishReason) {
        if (finishReason != null) {
            finish = finishReason;
        }
        if (piece == null || piece.isEmpty()) {
            return finishReason == null ? null : new ChatChunk("", finishReason);
        }
        contentChunks++;
        grow(piece.length());
        text.append(piece);
        return new ChatChunk(piece, finishReason);
    }

    /** Sets the usage the server reported, replacing any estimate. */
    public void usage(Usage serverUsage) {
        this.usage = Objects.requireNonNull(serverUsage, "serverUsage");
    }

    /**
     * Marks the normal end of a stream that has no {@code [DONE]} (newline-delimited JSON ends with the
     * body); after it, {@link #result()} is final.
     */
    public void end() {
        ended = true;
    }

    /** Whether the stream reached its normal end ({@code [DONE]}, a whole completion, or {@link #end()}). */
    public boolean isEnded() {
        return ended;
    }

    /** Adds one tool-call fragment; its index is bounded, so a hostile index cannot size a list. */
    private void appendToolFragment(JsonNode c) {
        JsonNode idx = c.get("index");
        long index = idx != null && idx.canConvertToLong() ? idx.asLong() : toolCalls.size();
        if (index < 0 || index >= limits.maxToolCalls()) {
            throw malformed(
                    "tool-call index " + abbreviate(idx == null ? "" : idx.toString()) + " is outside 0.."
                            + (limits.maxToolCalls() - 1) + " (the limit on tool calls per answer)",
                    null);
        }
        while (toolCalls.size() <= index) {
            toolCalls.add(new ToolCallBuilder());
        }
        ToolCallBuilder b = toolCalls.get((int) index);
        if (c.hasNonNull("id")) {
            b.id = c.get("id").asText();
        }
        JsonNode fn = c.path("function");
        if (fn.hasNonNull("name")) {
            String name = fn.get("name").asText();
            grow(name.length());
            b.name.append(name);
        }
        String args = ChunkDecoder.argumentsText(fn.get("arguments"));
        grow(args.length());
        b.arguments.append(args);
    }

    private void grow(int chars) {
        assembledChars += chars;
        if (assembledChars > limits.maxStreamChars()) {
            throw malformed("the answer exceeds the limit of " + limits.maxStreamChars() + " characters", null);
        }
    }

    /**
     * The answer so far; at the end, the whole answer. Before the end (a stream that failed or was
     * closed), the usage is the server's if it sent one, otherwise estimated: one output token per chunk
     * that carried content, and the prompt at about four characters a token. The finish reason is {@link
     * FinishReason#OTHER} when the server gave none.
     */
    public ProviderResult result() {
        List<ToolCall> calls = new ArrayList<>(toolCalls.size());
        for (ToolCallBuilder b : toolCalls) {
            calls.add(new ToolCall(b.id == null ? "" : b.id, b.name.toString(), b.arguments.toString()));
        }
        Usage u = usage;
        if (u == null) {
            u = ended && contentChunks == 0
                    ? Usage.ZERO
                    : Usage.estimated(Math.max(1, (promptChars + 3) / 4), contentChunks);
        }
        ProviderResult.Builder b = ProviderResult.builder()
                .text(text.toString())
                .toolCalls(calls)
                .finishReason(finish == null ? FinishReason.OTHER : finish)
                .usage(u)
                .model(model);
        return contentFilter == null
                ? b.build()
                : b.attribute(CONTENT_FILTER, contentFilter).build();
    }

    /** A {@link MalformedResponseException} naming this stream's provider and endpoint. */
    public MalformedResponseException malformed(String message, Throwable cause) {
        return new MalformedResponseException(message, providerId, endpoint, 0, null, cause);
    }

    private static final class ToolCallBuilder {
        String id;
        final StringBuilder name = new StringBuilder();
        final StringBuilder arguments = new StringBuilder();
    }

    private static String abbreviate(String s) {
        return s.length() <= 120 ? s : s.substring(0, 120) + "...";
    }
}
