package dev.hybridinference.core.spi;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.Receipt;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The state of one call as it passes through a provider: when it started, its deadline, its attempts
 * and route, and its cancellation. Created by the core for each call; providers record attempts here and
 * register how to cancel the work in progress. Thread-safe.
 */
public final class CallContext {
    private final String providerId;
    private final ChatRequest request;
    private final long startNanos;
    private final Instant startedAt;
    private final Deadline deadline;
    /** Replaced, never changed, so that {@link #attempts()} hands it out without a copy. */
    private List<Attempt> attempts = List.of();

    private String route = "";
    private Runnable cancelHook;
    private boolean cancelled;
    private boolean receiptClaimed;
    private Receipt failureReceipt;
    private Duration instanceTime;

    /**
     * Starts a call now.
     *
     * @param providerId the provider running it
     * @param request the request
     * @param clock the wall clock that dates the call
     */
    public CallContext(String providerId, ChatRequest request, Clock clock) {
        this(providerId, request, TimeSource.system(clock));
    }

    /**
     * Starts a call now on {@code time}.
     *
     * @param providerId the provider running it
     * @param request the request
     * @param time the clocks that date and time the call
     */
    public CallContext(String providerId, ChatRequest request, TimeSource time) {
        this.providerId = providerId;
        this.request = request;
        this.startNanos = time.nanoTime();
        this.startedAt = time.clock().instant();
        this.deadline = Deadline.of(request.options(), startedAt, startNanos, time::nanoTime);
    }

    /** The provider running the call. */
    public String providerId() {
        return providerId;
    }

    /** The request. */
    public ChatRequest request() {
        return request;
    }

    /** The {@link TimeSource#nanoTime()} when the call started. */
    public long startNanos() {
        return startNanos;
    }

    /** Wall-clock start of the call. */
    public Instant startedAt() {
        return startedAt;
    }

    /**
     * The call's deadline on the call's {@link TimeSource#nanoTime()}: the earlier of the request's timeout and absolute
     * deadline, or {@link Deadline#none()}. A deadline beyond {@link Deadline#HORIZON} counts as none.
     */
    public Deadline deadline() {
        return deadline;
    }

    /** Time left before the request's deadline; empty when it has none. Zero or negative once passed. */
    public Optional<Duration> remaining() {
        return deadline.remaining();
    }

    /**
     * Throws if the call was cancelled or its deadline has passed; providers call it before each attempt.
     *
     * @param endpoint the endpoint about to be tried, for the message
     */
    public void checkActive(String endpoint) {
        if (isCancelled()) {
            throw new CancelledException("call cancelled", providerId, endpoint, 0, null, null);
        }
        if (deadline.isExpired()) {
            throw new InferenceTimeoutException("the request's deadline passed", providerId, endpoint, true, null);
        }
    }

    /** Records an attempt, in order. */
    public synchronized void addAttempt(Attempt attempt) {
        if (attempts.isEmpty()) {
            attempts = List.of(attempt); // the common case, a call's one attempt, without the copies
            return;
        }
        List<Attempt> next = new ArrayList<>(attempts.size() + 1);
        next.addAll(attempts);
        next.add(attempt);
        attempts = List.copyOf(next);
    }

    /** The attempts so far. */
    public synchronized List<Attempt> attempts() {
        return attempts;
    }

    /**
     * Adds instance time attributed to this call by the provider's occupancy meter. Providers on
     * instance-hour capacity report every attempt's share here, failed attempts included, so that a failed
     * call is charged its share rather than its whole duration and the capacity's idle cost never goes
     * negative.
     */
    public synchronized void addInstanceTime(Duration share) {
        if (share != null && !share.isNegative()) {
            instanceTime = instanceTime == null ? share : saturatedSum(instanceTime, share);
        }
    }

    private static Duration saturatedSum(Duration a, Duration b) {
        if (a.isZero()) {
            return b; // the provider's first report after its opening zero: no new Duration
        }
        try {
            return a.plus(b);
        } catch (ArithmeticException e) {
            return Duration.ofSeconds(Long.MAX_VALUE, 999_999_999);
        }
    }

    /** The instance time reported with {@link #addInstanceTime}; empty when the provider reported none. */
    public synchronized Optional<Duration> instanceTime() {
        return Optional.ofNullable(instanceTime);
    }

    /** {@link #instanceTime()} without the Optional, for the receipt built on every call; null for none. */
    synchronized Duration reportedInstanceTime() {
        return instanceTime;
    }

    private ProviderResult producedBeforeFailure;

    /**
     * Says what a blocking call produced before the provider failed it, so that the failure's receipt
     * charges it: a completion the platform billed and then refused to hand over (a content filter that
     * blocked the answer, say). Set just before throwing.
     */
    public synchronized void producedBeforeFailure(ProviderResult result) {
        this.producedBeforeFailure = java.util.Objects.requireNonNull(result, "result");
    }

    /** What {@link #producedBeforeFailure} said; null when nothing was. */
    synchronized ProviderResult producedBeforeFailure() {
        return producedBeforeFailure;
    }

    /** The call's meter while the provider's step runs; kept here, with the call, by the base class. */
    private AbstractProviderClient.CallMeter meter;

    synchronized void meter(AbstractProviderClient.CallMeter m) {
        meter = m;
    }

    /** The call's meter, once: a second caller (a reader and a closer racing) gets null. */
    synchronized AbstractProviderClient.CallMeter takeMeter() {
        AbstractProviderClient.CallMeter m = meter;
        meter = null;
        return m;
    }

    /** Sets the route description shown in the receipt. */
    public synchronized void route(String route) {
        this.route = route == null ? "" : route;
    }

    /** The route description. */
    public synchronized String route() {
        return route;
    }

    /**
     * Registers how to cancel the work now in progress (closing a connection, say), replacing the previous
     * hook. If the call is already cancelled the hook runs at once.
     */
    public void onCancel(Runnable hook) {
        boolean runNow;
        synchronized (this) {
            cancelHook = hook;
            runNow = cancelled;
        }
        if (runNow && hook != null) {
            hook.run();
        }
    }

    /** Cancels the call: marks it and runs the registered hook. Idempotent. */
    public void cancel() {
        Runnable hook;
        synchronized (this) {
            if (cancelled) {
                return;
            }
            cancelled = true;
            hook = cancelHook;
        }
        if (hook != null) {
            hook.run();
        }
    }

    /**
     * Claims the right to record this call's receipt: true the first time only, so that a call that
     * fails on two threads at once (a reader and a closer) is recorded once.
     */
    public synchronized boolean claimReceipt() {
        if (receiptClaimed) {
            return false;
        }
        receiptClaimed = true;
        return true;
    }

    /**
     * The one receipt of this call's failure, shared by every thread that reports it. The first caller
     * claims the receipt (as {@link #claimReceipt()} does), builds it with {@code build} and passes it to
     * {@code record} (the ledger, say); a later caller, such as a reader whose read fails because another
     * thread closed the stream, gets the same receipt to attach to its own exception and records nothing.
     * Empty when the call's receipt was claimed by its success, or claimed through {@link #claimReceipt()}
     * without a receipt being shared.
     */
    public Optional<Receipt> failureReceipt(Supplier<Receipt> build, Consumer<Receipt> record) {
        Receipt built;
        synchronized (this) {
            if (receiptClaimed) {
                return Optional.ofNullable(failureReceipt);
            }
            built = build.get();
            receiptClaimed = true;
            failureReceipt = built;
        }
        record.accept(built);
        return Optional.of(built);
    }

    /** Whether the call was cancelled. */
    public synchronized boolean isCancelled() {
        return cancelled;
    }
}
