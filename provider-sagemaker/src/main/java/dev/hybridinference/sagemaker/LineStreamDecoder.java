package dev.hybridinference.sagemaker;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.http.StreamAssembler;
import dev.hybridinference.core.http.StreamSplitter;
import dev.hybridinference.core.spi.ProviderResult;

/**
 * What the built-in stream decoders share: payload parts cut into events by a {@link StreamSplitter} (SSE or
 * JSON lines, split anywhere), each event folded by the format into a {@link StreamAssembler}, the chunks one
 * part completed joined into one, and a body that stopped before the container's end marker failed as cut
 * (the platform's client may report a connection closed part way as a normal end).
 */
abstract class LineStreamDecoder implements PayloadCodec.StreamDecoder {
    protected final PayloadCodec.Context context;
    protected final StreamAssembler assembler;
    private final StreamSplitter splitter;

    LineStreamDecoder(PayloadCodec.Context context) {
        this.context = context;
        this.splitter =
                new StreamSplitter(StreamSplitter.Format.AUTO, context.limits().maxLineBytes());
        this.assembler = new StreamAssembler(
                context.providerId(), context.endpoint(), context.model(), context.promptChars(), context.limits());
    }

    /** The chunk for the caller from one event, or null. */
    protected abstract ChatChunk event(StreamSplitter.Event event);

    /** Whether the stream's end marker was read: later events are ignored. */
    protected abstract boolean ended();

    /** Whether the body reached the container's end, so that its close is the answer's normal end. */
    protected abstract boolean complete();

    @Override
    public final ChatChunk feed(byte[] part) {
        try {
            splitter.feed(part, 0, part.length);
        } catch (StreamSplitter.LineTooLongException e) {
            throw context.malformed(e.getMessage(), e);
        }
        return drain();
    }

    @Override
    public final ChatChunk finish() {
        splitter.finish();
        ChatChunk last = drain();
        if (!complete()) {
            throw new ProviderUnavailableException(
                    "the stream ended before the container finished its answer",
                    context.providerId(),
                    context.endpoint(),
                    0,
                    null,
                    null);
        }
        assembler.end();
        return last;
    }

    @Override
    public ProviderResult result() {
        return assembler.result();
    }

    /** The events the splitter has complete, as one chunk: their texts joined, the last finish reason. */
    private ChatChunk drain() {
        ChatChunk joined = null;
        for (StreamSplitter.Event e; (e = splitter.next()) != null; ) {
            if (ended()) {
                continue;
            }
            ChatChunk c = event(e);
            if (c != null) {
                joined = joined == null
                        ? c
                        : new ChatChunk(
                                joined.text() + c.text(),
                                c.finishReason() != null ? c.finishReason() : joined.finishReason());
            }
        }
        return joined;
    }
}
