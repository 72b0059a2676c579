package dev.hybridinference.vllm.internal;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.spi.CallContext;
import java.lang.reflect.Constructor;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds the model to request when none is configured, once for all callers.
 *
 * <p>The first caller starts the lookup on a background thread; callers arriving while it runs wait on
 * the same lookup (single flight), each for no longer than its own request's deadline: a caller whose
 * deadline passes gets an {@link InferenceTimeoutException} while the lookup goes on for the others. A
 * result is kept for good. A failure is kept only for a backoff, during which callers fail at once with
 * a copy of it instead of asking the server again; it starts at {@code minBackoff} and doubles after each
 * failure in a row up to {@code maxBackoff}. Thread-safe. Internal.
 */
public final class ModelDiscovery {
    private static final Logger log = LoggerFactory.getLogger(ModelDiscovery.class);

    private final String providerId;
    private final Supplier<String> lookup;
    private final Executor executor;
    private final Duration minBackoff;
    private final Duration maxBackoff;
    private final LongSupplier nanoTime;
    private volatile String model;
    private CompletableFuture<String> inFlight;
    private InferenceException lastFailure;
    private Duration backoff;
    private long retryAtNanos;

    /**
     * A discovery.
     *
     * @param providerId the provider, for messages
     * @param lookup asks the servers; returns the model id or throws an {@link InferenceException}
     * @param executor runs the lookup, so that no caller is held past its deadline by the lookup's I/O
     * @param minBackoff how long the first failure is kept before the next call asks again
     * @param maxBackoff the longest a failure is kept
     * @param nanoTime the monotonic clock
     */
    public ModelDiscovery(
            String providerId,
            Supplier<String> lookup,
            Executor executor,
            Duration minBackoff,
            Duration maxBackoff,
            LongSupplier nanoTime) {
        this.providerId = providerId;
        this.lookup = lookup;
        this.executor = executor;
        this.minBackoff = minBackoff;
        this.maxBackoff = maxBackoff;
        this.nanoTime = nanoTime;
    }

    /** The model found, or null before a lookup succeeded. */
    public String model() {
        return model;
    }

    /**
     * The model, looking it up (or joining the lookup in flight) if it is not known yet.
     *
     * @throws InferenceTimeoutException with {@code isDeadlineExceeded()} when the call's deadline passes
     *     first
     * @throws InferenceException a copy of the lookup's failure, for this caller alone
     */
    public String resolve(CallContext ctx) {
        String m = model;
        if (m != null) {
            return m;
        }
        ctx.checkActive(null);
        CompletableFuture<String> shared;
        synchronized (this) {
            if (model != null) {
                return model;
            }
            if (inFlight == null) {
                long wait = retryAtNanos - nanoTime.getAsLong();
                if (lastFailure != null && wait > 0) {
                    throw copyOf(
                            lastFailure,
                            " (model discovery failed; next try in "
                                    + Duration.ofNanos(wait).toMillis() + " ms)");
                }
                inFlight = CompletableFuture.supplyAsync(this::lookupOnce, executor);
            }
            shared = inFlight;
        }
        return await(shared, ctx);
    }

    private String lookupOnce() {
        try {
            String found = lookup.get();
            synchronized (this) {
                model = found;
                lastFailure = null;
                backoff = null;
                inFlight = null;
            }
            log.info("{}: discovered model {} from GET /v1/models", providerId, found);
            return found;
        } catch (RuntimeException e) {
            InferenceException failure = e instanceof InferenceException
                    ? (InferenceException) e
                    : new ProviderUnavailableException(
                            "model discovery failed: unexpected " + e.getClass().getSimpleName(),
                            providerId,
                            null,
                            0,
                            null,
                            e);
            Duration next;
            synchronized (this) {
                next = backoff == null ? minBackoff : min(backoff.multipliedBy(2), maxBackoff);
                backoff = next;
                lastFailure = failure;
                retryAtNanos = nanoTime.getAsLong() + next.toNanos();
                inFlight = null;
            }
            log.warn(
                    "{}: model discovery failed, next try in {} ms: {}",
                    providerId,
                    next.toMillis(),
                    failure.getMessage());
            throw failure;
        }
    }

    /** Waits for the shared lookup, but only as long as this caller's deadline, and wakes on cancellation. */
    private String await(CompletableFuture<String> shared, CallContext ctx) {
        CompletableFuture<String> mine = new CompletableFuture<>();
        shared.whenComplete((v, t) -> {
            if (t == null) {
                mine.complete(v);
            } else {
                mine.completeExceptionally(t);
            }
        });
        ctx.onCancel(() -> mine.cancel(false));
        try {
            Optional<Duration> remaining = ctx.remaining();
            if (remaining.isPresent()) {
                return mine.get(Math.max(0, remaining.get().toNanos()), TimeUnit.NANOSECONDS);
            }
            return mine.get();
        } catch (TimeoutException e) {
            throw new InferenceTimeoutException(
                    "the request's deadline passed while waiting for model discovery (GET /v1/models)",
                    providerId,
                    null,
                    true,
                    null);
        } catch (CancellationException e) {
            throw new CancelledException(
                    "call cancelled while waiting for model discovery", providerId, null, 0, null, null);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancelledException("interrupted while waiting for model discovery", providerId, null, 0, null, e);
        } catch (ExecutionException e) {
            Throwable cause =
                    e.getCause() instanceof CompletionException && e.getCause().getCause() != null
                            ? e.getCause().getCause()
                            : e.getCause();
            if (cause instanceof InferenceException) {
                // The lookup's exception is shared by every waiter; each gets its own copy, since the core
                // attaches a caller's partial receipt to the exception it throws.
                throw copyOf((InferenceException) cause, "");
            }
            throw new ProviderUnavailableException(
                    "model discovery failed: " + cause, providerId, null, 0, null, cause);
        } finally {
            ctx.onCancel(null);
        }
    }

    /**
     * A new exception of the same class, status, endpoint and message as {@code e} (plus {@code suffix}),
     * with {@code e} as its cause. Every subclass in the core has the six-argument constructor of {@link
     * InferenceException} except the timeout, which is built by hand; anything else becomes the nearest
     * general type with the same retryability.
     */
    static InferenceException copyOf(InferenceException e, String suffix) {
        String provider = e.providerId().orElse(null);
        String endpoint = e.endpoint().orElse(null);
        String message = ownMessage(e) + suffix;
        if (e instanceof InferenceTimeoutException) {
            return new InferenceTimeoutException(
                    message, provider, endpoint, ((InferenceTimeoutException) e).isDeadlineExceeded(), e);
        }
        try {
            Constructor<? extends InferenceException> c = e.getClass()
                    .getConstructor(
                            String.class, String.class, String.class, int.class, Duration.class, Throwable.class);
            return c.newInstance(
                    message, provider, endpoint, e.statusCode(), e.retryAfter().orElse(null), e);
        } catch (ReflectiveOperationException | RuntimeException x) {
            return e.isRetryable()
                    ? new ProviderUnavailableException(
                            message,
                            provider,
                            endpoint,
                            e.statusCode(),
                            e.retryAfter().orElse(null),
                            e)
                    : new InferenceException(
                            message,
                            provider,
                            endpoint,
                            e.statusCode(),
                            e.retryAfter().orElse(null),
                            e);
        }
    }

    /** The message without the "provider (endpoint): HTTP n: " prefix the constructor adds again. */
    private static String ownMessage(InferenceException e) {
        String m = e.getMessage() == null ? "" : e.getMessage();
        StringBuilder prefix = new StringBuilder();
        if (e.providerId().isPresent()) {
            prefix.append(e.providerId().get());
            e.endpoint()
                    .filter(s -> !s.isEmpty())
                    .ifPresent(s -> prefix.append(" (").append(s).append(')'));
            prefix.append(": ");
        }
        if (e.statusCode() > 0) {
            prefix.append("HTTP ").append(e.statusCode()).append(": ");
        }
        return m.startsWith(prefix.toString()) ? m.substring(prefix.length()) : m;
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }
}
