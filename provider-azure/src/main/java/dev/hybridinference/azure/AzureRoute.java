package dev.hybridinference.azure;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;

/**
 * One way of talking to an Azure deployment: the OpenAI-compatible v1 route or the azure-ai-inference SDK.
 * A route sends the request and decodes the answer; {@link AzureClient} does the rest (content filters,
 * receipts). Thread-safe.
 */
interface AzureRoute {
    /** A blocking completion; a filtered answer comes back with {@code CONTENT_FILTER} as its finish reason. */
    ProviderResult chat(ChatRequest request, CallContext ctx);

    /** A stream, returned once the service has started answering. */
    ProviderStream stream(ChatRequest request, CallContext ctx);

    /** The endpoint, without credentials: for messages and receipts. */
    String label();

    /** Frees connections and threads. */
    void close();
}
