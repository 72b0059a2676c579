package dev.hybridinference.core;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Watches the calls of a composite client ({@link dev.hybridinference.core.routing.HybridClient}): each call's
 * start, every attempt on a member and its end, the first token of a stream, the end of the call with its
 * receipt or its failure, spillovers, budget refusals, and the members' circuits opening and closing. Metrics,
 * traces, spend logs and application policies attach here (the {@code observability-otel} and {@code
 * ledger-jdbc} modules are listeners).
 *
 * <p>Register one with {@link dev.hybridinference.core.routing.HybridClient.Builder#listener}, with {@link
 * InferenceClients.Loader#listener}, or in the configuration's {@code listeners} section through an {@link
 * dev.hybridinference.core.spi.InferenceListenerFactory}. Every method has an empty default: implement the
 * ones you need.
 *
 * <p>Listeners are called synchronously, on the thread that makes the event happen (a caller's, a member's
 * future's, a stream reader's), so they must be quick and must not block; hand slow work to a queue of your
 * own. They are isolated: whatever one throws is logged (once per listener and event) and never reaches the
 * call or the other listeners. Calls from several threads may overlap, so implementations must be
 * thread-safe; the events of one call come in order. A client without listeners does no work for them.
 */
public interface InferenceListener {
    /** A call started, before its route is chosen. */
    default void onCallStarted(Call call) {}

    /** The call is about to send an attempt to a member (after its route and slot were settled). */
    default void onAttemptStarted(Call call, AttemptStart attempt) {}

    /** An attempt ended: answered, failed, or (for a stream) opened with its first chunk. */
    default void onAttemptEnded(Call call, AttemptEnd attempt) {}

    /** A streamed call received its first chunk, {@code timeToFirstToken} after the call started. */
    default void onFirstToken(Call call, Duration timeToFirstToken) {}

    /** The call ended with an answer; {@code receipt} is the whole call's. */
    default void onCompleted(Call call, Receipt receipt) {}

    /** The call failed; the error carries the receipt of what was tried ({@link InferenceException#partialReceipt()}). */
    default void onFailed(Call call, InferenceException error) {}

    /**
     * The spillover primary had no room, so the call goes on to the overflow members; told at most once per
     * call, with {@code reason} saying how full the primary was ({@code no free slot: 4/4 in flight}).
     */
    default void onSpillover(Call call, String primary, String reason) {}

    /** A spent budget refused the call, which then fails with {@code refusal}. */
    default void onBudgetRefused(Call call, BudgetExceededException refusal) {}

    /** A member's circuit breaker opened or closed. Not tied to one call. */
    default void onCircuitChanged(CircuitChange change) {}

    /**
     * One call through a composite client, the same object in each of its events.
     *
     * <p>{@link #attributes()} is for listeners: a thread-safe map in which they keep what they need across a
     * call's events (a span, a start time), under keys of their own.
     */
    final class Call {
        private final String id;
        private final String clientId;
        private final ChatRequest request;
        private final Instant startedAt;
        private final boolean streamed;
        private final Map<Object, Object> attributes = new ConcurrentHashMap<>(4);

        /**
         * A call.
         *
         * @param id the call's id, which the whole call's receipt carries as {@link Receipt#id()}
         * @param clientId the composite client's id
         * @param request the request as the caller made it
         * @param startedAt when the call started
         * @param streamed whether the caller asked for a stream
         */
        public Call(String id, String clientId, ChatRequest request, Instant startedAt, boolean streamed) {
            this.id = Objects.requireNonNull(id, "id");
            this.clientId = Objects.requireNonNull(clientId, "clientId");
            this.request = Objects.requireNonNull(request, "request");
            this.startedAt = Objects.requireNonNull(startedAt, "startedAt");
            this.streamed = streamed;
        }

        /** The call's id; the call's receipt has the same. */
        public String id() {
            return id;
        }

        /** The composite client's id. */
        public String clientId() {
            return clientId;
        }

        /**
         * The request. Prompts are the application's data: a listener that exports attributes should take
         * the model, options and tags from it, never its messages.
         */
        public ChatRequest request() {
            return request;
        }

        /** When the call started. */
        public Instant startedAt() {
            return startedAt;
        }

        /** Whether the caller asked for a stream. */
        public boolean streamed() {
            return streamed;
        }

        /** State listeners keep across the call's events. */
        public Map<Object, Object> attributes() {
            return attributes;
        }

        @Override
        public String toString() {
            return "call " + id + " on " + clientId;
        }
    }

    /**
     * An attempt about to be sent.
     *
     * @param member the member's name
     * @param number the attempt's number in the call, from 1
     * @param model the model name the member is asked for (empty when the request names none)
     * @param predictedCold whether routing expects the member to be cold
     */
    record AttemptStart(String member, int number, String model, boolean predictedCold) {
        /** Checks the member and turns a null model into empty. */
        public AttemptStart {
            Objects.requireNonNull(member, "member");
            model = model == null ? "" : model;
        }
    }

    /**
     * An attempt that ended.
     *
     * @param member the member's name
     * @param number the attempt's number in the call, from 1
     * @param duration from the attempt's start to its end
     * @param receipt the member's receipt (for a failure, its partial receipt), or null when it gave none
     * @param error why it failed, or null when it answered
     */
    record AttemptEnd(String member, int number, Duration duration, Receipt receipt, InferenceException error) {
        /** Checks the member and the duration. */
        public AttemptEnd {
            Objects.requireNonNull(member, "member");
            Objects.requireNonNull(duration, "duration");
        }

        /** Whether the member answered. */
        public boolean succeeded() {
            return error == null;
        }
    }

    /**
     * A circuit breaker that changed.
     *
     * @param clientId the composite client's id
     * @param member the member's name
     * @param open whether the circuit is now open (calls skip the member) rather than closed
     * @param consecutiveFailures the failures in a row when it opened (zero when a slow call opened it), or
     *     zero when it closed
     * @param cooldown how long calls skip the member before a trial call; zero when it closed
     * @param at when it changed
     * @param reason why, in words: {@code "5 failure(s) in a row"}, {@code "failure rate 50% (10 of the last
     *     20 calls) reached 50%"}, {@code "its trial call succeeded"}...; empty when not known
     */
    record CircuitChange(
            String clientId,
            String member,
            boolean open,
            int consecutiveFailures,
            Duration cooldown,
            Instant at,
            String reason) {
        /** Checks that nothing is missing. */
        public CircuitChange {
            Objects.requireNonNull(clientId, "clientId");
            Objects.requireNonNull(member, "member");
            Objects.requireNonNull(cooldown, "cooldown");
            Objects.requireNonNull(at, "at");
            reason = reason == null ? "" : reason;
        }

        /** A change whose reason is not known. */
        public CircuitChange(
                String clientId, String member, boolean open, int consecutiveFailures, Duration cooldown, Instant at) {
            this(clientId, member, open, consecutiveFailures, cooldown, at, "");
        }
    }
}
