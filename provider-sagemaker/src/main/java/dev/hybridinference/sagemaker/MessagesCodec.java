package dev.hybridinference.sagemaker;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.http.OpenAiCodec;
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
        // The fields compared directly: a record's equals goes through method handles, which showed in
        // profiles of the blocking call.
        if (!usage.estimated()
                && usage.inputTokens() == 0
                && usage.outputTokens() == 0
                && usage.cachedInputTokens() == 0) {
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

    /** OpenAI chunks folded by the core's assembler; SSE ends with [DONE], JSON lines after a finish reason. */
    private static final class Decoder extends LineStreamDecoder {
        private boolean finished;

        Decoder(Context context) {
            super(context);
        }

        @Override
        protected ChatChunk event(StreamSplitter.Event e) {
            ChatChunk c = assembler.accept(e);
            if (c != null && c.finishReason() != null) {
                finished = true;
            }
            return c;
        }

        @Override
        protected boolean ended() {
            return assembler.isEnded();
        }

        @Override
        protected boolean complete() {
            return assembler.isEnded() || finished;
        }
    }
}
