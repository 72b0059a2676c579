package dev.hybridinference.sagemaker;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.spi.ProviderResult;
import java.util.Objects;

/**
 * How requests and answers travel in the body of a SageMaker invocation, which SageMaker passes to the
 * container verbatim: the container decides the format. Three are built in — {@link #messages()} (the
 * OpenAI-style messages API of the LMI, TGI and vLLM containers), {@link #tgi(PromptTemplate)} and {@link
 * #lmi(PromptTemplate)} (the {@code inputs}/{@code parameters} generate API of TGI and of LMI) — and a custom
 * container gets its own by implementing this interface (name the class in the {@code payload} key of the
 * configuration; it needs a public no-argument constructor).
 *
 * <p>Implementations are stateless and thread-safe; the per-call state of a stream lives in the {@link
 * StreamDecoder} each call gets. A decoding failure is an {@link InferenceException} (typically a {@link
 * dev.hybridinference.core.MalformedResponseException}, through {@link Context#malformed}).
 */
public interface PayloadCodec {
    /** The messages API: OpenAI chat completions in, chat completions (or their chunks) out. */
    static PayloadCodec messages() {
        return MessagesCodec.INSTANCE;
    }

    /** Hugging Face TGI's generate API, with the prompt rendered by {@code template}. */
    static PayloadCodec tgi(PromptTemplate template) {
        return new GenerateCodec(GenerateCodec.Flavor.TGI, template);
    }

    /** The generate API of DJL's LMI containers (rolling batch), with the prompt rendered by {@code template}. */
    static PayloadCodec lmi(PromptTemplate template) {
        return new GenerateCodec(GenerateCodec.Flavor.LMI, template);
    }

    /** The request's MIME type ({@code Content-Type}). */
    default String contentType() {
        return "application/json";
    }

    /** The answer's MIME type the container is asked for ({@code Accept}). */
    default String accept() {
        return "application/json";
    }

    /** What requests this format can carry (tools, JSON output); the composite client skips what it lacks. */
    default ClientInfo.Capabilities capabilities() {
        return ClientInfo.Capabilities.DEFAULTS;
    }

    /**
     * The request body.
     *
     * @param request the request
     * @param model the model to name in the body, or empty when none is configured
     * @param stream whether the answer is streamed
     * @throws dev.hybridinference.core.InvalidRequestException when the request asks for what the format
     *     cannot carry
     */
    byte[] encode(ChatRequest request, String model, boolean stream);

    /**
     * Decodes a whole answer. The usage is the container's when it sent one, otherwise counted or
     * estimated and marked {@linkplain dev.hybridinference.core.Usage#estimated() estimated}.
     */
    ProviderResult decode(byte[] body, Context context);

    /** A decoder for one streamed answer. */
    StreamDecoder streamDecoder(Context context);

    /**
     * The decoder of one stream, fed the payload parts as the platform delivers them: arbitrary slices of
     * the container's body, which may cut a line (or a UTF-8 character) anywhere. Used by one thread at a
     * time.
     */
    interface StreamDecoder {
        /**
         * Feeds one payload part.
         *
         * @return the chunk for the caller from what the part completed (the texts of several events
         *     joined, the last finish reason), or null when it completed nothing for the caller
         */
        ChatChunk feed(byte[] part);

        /**
         * The body ended: decodes what it completed (a last line without a newline).
         *
         * @return the last chunk, or null
         */
        ChatChunk finish();

        /** The answer so far; after {@link #finish()}, the whole answer. */
        ProviderResult result();
    }

    /**
     * What a codec needs to know of the call.
     *
     * @param providerId the provider, for messages
     * @param endpoint the endpoint's name, for messages
     * @param model the model requested, the result's model until the container names one (may be empty)
     * @param promptChars the characters of the prompt, for usage estimates (about four a token)
     * @param limits the bounds on what the container may send
     */
    record Context(String providerId, String endpoint, String model, long promptChars, ResponseLimits limits) {
        /** Requires the parts. */
        public Context {
            Objects.requireNonNull(providerId, "providerId");
            Objects.requireNonNull(endpoint, "endpoint");
            model = model == null ? "" : model;
            Objects.requireNonNull(limits, "limits");
        }

        /** A {@link dev.hybridinference.core.MalformedResponseException} naming the provider and endpoint. */
        public InferenceException malformed(String message, Throwable cause) {
            return new dev.hybridinference.core.MalformedResponseException(
                    message, providerId, endpoint, 0, null, cause);
        }
    }
}
