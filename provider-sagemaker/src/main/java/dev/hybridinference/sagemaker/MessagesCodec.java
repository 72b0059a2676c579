package dev.hybridinference.sagemaker;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.http.OpenAiCodec;
import dev.hybridinference.core.http.StreamAssembler;
import dev.hybridinference.core.http.StreamSplitter;
import dev.hybridinference.core.spi.ProviderResult;

/**
 * The messages API of the LMI, TGI and vLLM containers: the core's OpenAI codec and stream assembler,
 * reused. A streamed answer arrives as SSE ({@code data:} lines ending with {@code [DONE]}, vLLM and TGI) or
 * as JSON lines without {@code data:} (LMI); the splitter reads either, line by line. A container that
 * reports no usage gets it estimated from the characters (marked estimated).
 */
final class MessagesCodec implements PayloadCodec {
    static final MessagesCodec INSTANCE = new MessagesCodec();

    private MessagesCodec() {}

    @Override
    public byte[] encode(ChatRequest request, String model, boolean stream) {
        try {
            return OpenAiCodec.encodeRequest(request, model, stream, OpenAiCodec.Dialect.OPENAI);
        } catch (IllegalArgumentException e) {
            throw new dev.hybridinference.core.InvalidRequestException(e.getMessage(), null, null, 0, null, e);
        }
    }

    @Override
    public ProviderResult decode(byte[] body, Context context) {
        OpenAiCodec.Completion c =
                OpenAiCodec.decodeCompletion(body, context.providerId(), context.endpoint(), context.limits());
        Usage usage = c.usage();
        if (usage.equals(Usage.ZERO)) {
            usage = Usage.estimated(
                    Math.max(1, (context.promptChars() + 3) / 4),
                    (c.text().length() + 3) / 4 + c.toolCalls().size());
        }
        return ProviderResult.builder()
                .text(c.text())
                .toolCalls(c.toolCalls())
                .finishReason(c.finishReason())
                .usage(usage)
                .model(c.model().isEmpty() ? context.model() : c.model())
                .build();
    }

    @Override
    public StreamDecoder streamDecoder(Context context) {
        return new Decoder(context);
    }

    /** Splits the parts into events and folds them into the assembler. */
    private static final class Decoder implements StreamDecoder {
        private final Context context;
        private final StreamSplitter splitter;
        private final StreamAssembler assembler;
        private boolean finished;

        Decoder(Context context) {
            this.context = context;
            this.splitter = new StreamSplitter(
                    StreamSplitter.Format.AUTO, context.limits().maxLineBytes());
            this.assembler = new StreamAssembler(
                    context.providerId(), context.endpoint(), context.model(), context.promptChars(), context.limits());
        }

        @Override
        public ChatChunk feed(byte[] part) {
            try {
                splitter.feed(part, 0, part.length);
            } catch (StreamSplitter.LineTooLongException e) {
                throw assembler.malformed(e.getMessage(), e);
            }
            return drain();
        }

        @Override
        public ChatChunk finish() {
            splitter.finish();
            ChatChunk last = drain();
            // SSE ends with [DONE]; JSON lines end with the body, after a chunk that gives the finish reason.
            // A body that stopped before either was cut: the platform's client may report a connection closed
            // part way as a normal end.
            if (!assembler.isEnded() && !finished) {
                throw new dev.hybridinference.core.ProviderUnavailableException(
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

        private ChatChunk drain() {
            ChatChunk joined = null;
            for (StreamSplitter.Event e; (e = splitter.next()) != null; ) {
                if (assembler.isEnded()) {
                    continue; // after [DONE]
                }
                ChatChunk c = assembler.accept(e);
                if (c != null && c.finishReason() != null) {
                    finished = true;
                }
                joined = Chunks.join(joined, c);
            }
            return joined;
        }

        @Override
        public ProviderResult result() {
            return assembler.result();
        }
    }
}
