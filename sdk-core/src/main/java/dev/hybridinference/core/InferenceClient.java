package dev.hybridinference.core;

import dev.hybridinference.core.cost.CostLedger;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Calls a language model, wherever it runs. Every provider and the composite client implement this
 * interface, so application code does not change when the deployment does.
 *
 * <p>Implementations are thread-safe and meant to be shared; create one per provider and close it when
 * the application stops.
 */
public interface InferenceClient extends AutoCloseable {
    /**
     * Sends the request and waits for the whole answer.
     *
     * @throws InferenceException when the call fails; its type says whether a retry can help
     */
    ChatResponse chat(ChatRequest request);

    /**
     * Sends the request without blocking. The future completes with the answer or fails with an {@link
     * InferenceException}; cancelling it cancels the call and closes its connection.
     */
    CompletableFuture<ChatResponse> chatAsync(ChatRequest request);

    /**
     * Streams the answer as a pull iterator. The call starts now and this method returns once the
     * response has started: errors before that (connection refused, an error status) are thrown here,
     * later ones from the iterator. Close the stream to cancel the call.
     */
    ChatStream stream(ChatRequest request);

    /**
     * Streams the answer to a handler, on a thread of the client's. Returns at once.
     *
     * <p>The handler gets the chunks in order and then exactly one {@link StreamHandler#onComplete} or
     * {@link StreamHandler#onError}, always: also when the stream is cancelled before it opens, while it
     * opens, mid-stream, from several threads at once, or after it has ended (then nothing more comes).
     * A cancelled stream's error is a {@link CancelledException} carrying the partial receipt, and the call
     * is recorded once in the cost ledger.
     *
     * @return a handle that cancels the call
     */
    Cancellable stream(ChatRequest request, StreamHandler handler);

    /**
     * What this client is: id, type, deployment kind, models, pricing, capabilities and cold-start
     * behaviour; for a composite client, its members' info too.
     */
    ClientInfo info();

    /**
     * The ledger this client's calls are recorded in, where its costs add up: {@code
     * client.ledger().orElseThrow().totals()}. A client loaded by {@link InferenceClients} always has one
     * (the loader's, shared by every provider and the routing policy). Empty for a client built in code
     * without a ledger, and by default.
     */
    default Optional<CostLedger> ledger() {
        return Optional.empty();
    }

    /**
     * Why this client cannot take any call at all now, if it cannot: a runtime it needs is missing on this
     * machine (the local runtime without its native library), or a similar lasting condition. Its calls would
     * fail with {@link ProviderUnavailableException} anyway; saying so up front lets the composite client
     * ({@code dev.hybridinference.core.routing.HybridClient}) skip it before anything is sent, with this
     * reason in the receipt (a {@link Attempt.Outcome#SKIPPED} attempt and a {@link RouteFacts.Skip}
     * "unavailable: ..."), instead of calling it, failing and counting the failure against its circuit.
     *
     * <p>Empty by default: a client is taken to be available, and its calls say otherwise. Not for passing
     * conditions (a full server, a cold start, an open circuit), which routing handles itself. Cheap and
     * thread-safe: the composite client asks for every call.
     *
     * @return the reason, in words, or empty when the client can take calls
     */
    default Optional<String> unavailableReason() {
        return Optional.empty();
    }

    /**
     * This client as {@code type}, if it is one; a composite client with a single member (as {@link
     * InferenceClients} builds around a provider given {@code retry} or {@code modelAliases}) also answers
     * for that member, so that {@code client.unwrap(VllmClient.class)} finds the provider either way.
     */
    default <T> Optional<T> unwrap(Class<T> type) {
        Objects.requireNonNull(type, "type");
        return type.isInstance(this) ? Optional.of(type.cast(this)) : Optional.empty();
    }

    /** Frees the client's connections, threads and native memory. Idempotent; calls after it fail. */
    @Override
    void close();
}
