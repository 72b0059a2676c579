package dev.hybridinference.core.routing;

import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.LoadAware;
import dev.hybridinference.core.LoadSnapshot;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.spi.Deadline;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Everything the composite client knows about one member, in one place: calls in flight and the
 * in-flight limit, the load signal, the circuit breaker, the cold-start estimate learned from receipts,
 * and what requests it takes (capabilities and models). Updated as calls start and end; safe under
 * concurrency. Policies read it.
 */
public final class MemberState {
    private static final Logger LOG = LoggerFactory.getLogger(MemberState.class);
    private static final double EWMA = 0.2;

    private final String name;
    private final InferenceClient client;
    private final ClientInfo info;
    private final MemberOptions options;
    private final boolean recordsOwnReceipts;
    private volatile ClientInfo modelSource;
    private final LongSupplier nanoTime;
    private final Semaphore permits;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final CircuitBreakerConfig breaker;
    private final Duration cooldown;
    /** The recent calls the rate rules read; null without one. Guarded by {@code lock}. */
    private final CallWindow window;

    private final AtomicBoolean probing = new AtomicBoolean();
    private final Object lock = new Object();
    private int consecutiveFailures;
    private Deadline halfOpensAt = Deadline.none();
    private volatile boolean open;
    private volatile boolean everCalled;
    private volatile long lastActivityNanos;
    private double warmLatencyNanos = Double.NaN;
    private double coldStartNanos;
    /** Told when the circuit opens (true, with the failures in a row) or closes (false). */
    private volatile CircuitHook circuitHook;

    /** How often a wait for a slot asks the shared state again. */
    private static final long SLOT_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(5);

    /** The state shared with other instances, or null: set once, before the first call. */
    private volatile SharedStateGuard shared;

    private String circuitKey;
    private String slotKey;
    private Duration slotLease;
    /** The leases this instance holds on shared slots; any one frees a slot, as they are alike. */
    private final ConcurrentLinkedDeque<String> leases = new ConcurrentLinkedDeque<>();
    /** When another instance's open circuit ends, on {@link #nanoTime}, as last read; meaningful while seen. */
    private volatile long sharedOpenUntil;
    /** Whether the last read found another instance's circuit open. */
    private final AtomicBoolean sharedOpenSeen = new AtomicBoolean();

    /** Told of circuit changes. */
    interface CircuitHook {
        /**
         * The circuit opened ({@code open}), or closed.
         *
         * @param consecutiveFailures the failures in a row when it opened; zero when it closed
         * @param cooldown how long it stays open; zero when it closed
         * @param reason why, in words
         */
        void changed(MemberState member, boolean open, int consecutiveFailures, Duration cooldown, String reason);
    }

    MemberState(
            String name,
            InferenceClient client,
            MemberOptions options,
            LongSupplier nanoTime,
            CircuitBreakerConfig breaker) {
        this.name = name;
        this.client = client;
        this.info = client.info();
        this.modelSource = info;
        // The options set for the member win; what they leave unset comes from the member's own info.
        this.options = options.withDefaultsFrom(info);
        this.recordsOwnReceipts = client.ledger().isPresent();
        this.nanoTime = nanoTime;
        this.permits = options.maxInFlight() > 0 ? new Semaphore(options.maxInFlight(), true) : null;
        this.breaker = breaker;
        this.cooldown = breaker.cooldown();
        this.window = CallWindow.of(breaker);
        this.coldStartNanos = Deadline.saturatedNanos(options.coldStartLatency());
    }

    /**
     * Shares this member's circuit and, when it has an in-flight limit, its slots with other instances
     * through {@code state}, under keys of {@code clientId}: a circuit this instance opens is published for
     * its cooldown and others skip the member meanwhile; a slot is taken here and leased there for {@code
     * lease}, so that the limit holds across instances.
     */
    void share(SharedStateGuard state, String clientId, Duration lease) {
        this.circuitKey = clientId + ":circuit:" + name;
        this.slotKey = clientId + ":slots:" + name;
        this.slotLease = lease;
        this.shared = state;
    }

    /** Tells {@code hook} of every change of the circuit from now on. */
    void onCircuitChange(CircuitHook hook) {
        this.circuitHook = hook;
    }

    /** The member's name in the composite client. */
    public String name() {
        return name;
    }

    /** The member client. */
    public InferenceClient client() {
        return client;
    }

    /** The member's info, read once when the composite client was built. */
    public ClientInfo info() {
        return info;
    }

    /**
     * The member's options in effect: those it was added with, and for what they leave unset, what the
     * member's info says (see {@link MemberOptions#withDefaultsFrom}).
     */
    public MemberOptions options() {
        return options;
    }

    /** What the member takes, options first, then what it says of itself. */
    public ClientInfo.Capabilities capabilities() {
        return options.capabilities(info.capabilities());
    }

    /** The member client as {@code type}; fails naming the member and its class when it is not one. */
    public <T> T client(Class<T> type) {
        if (!type.isInstance(client)) {
            throw new IllegalArgumentException("member " + name + " is a "
                    + client.getClass().getSimpleName() + ", not a " + type.getSimpleName());
        }
        return type.cast(client);
    }

    /** Whether the member records its own receipts in a ledger (else the composite client may). */
    boolean recordsOwnReceipts() {
        return recordsOwnReceipts;
    }

    /**
     * The model name to send this member for a request naming {@code requested}: the served name when
     * the member's options map it as an alias; {@code requested} itself when the member accepts it (see
     * {@link ClientInfo#acceptsModel}); null when the member serves no such model.
     */
    String modelFor(String requested) {
        String served = options.modelAliases().get(requested);
        if (served != null) {
            return served;
        }
        return currentModels().acceptsModel(requested) ? requested : null;
    }

    /**
     * The member's info as far as its models go. A member that listed none when the composite client was
     * built (a server that discovers its model on the first call) and a composite member (whose own
     * members may) are asked again, until a provider's list is known.
     */
    private ClientInfo currentModels() {
        ClientInfo i = modelSource;
        if (!i.isComposite() && !i.models().isEmpty()) {
            return i;
        }
        try {
            ClientInfo now = client.info();
            if (now != null) {
                modelSource = now;
                return now;
            }
        } catch (RuntimeException e) {
            LOG.debug(
                    "member {}: info() threw {}; its model list is taken as unknown",
                    name,
                    e.getClass().getSimpleName());
        }
        return i;
    }

    /** The models a request may name here, for messages: served names and aliases. */
    String modelsText() {
        ClientInfo i = currentModels();
        java.util.Set<String> names = new java.util.TreeSet<>(i.models());
        names.addAll(i.modelAliases().keySet());
        names.addAll(options.modelAliases().keySet());
        return String.join(", ", names);
    }

    /** Calls in flight to this member from the composite client. */
    public int inFlight() {
        return inFlight.get();
    }

    /** The member's load signal, or null when it reports none. */
    public LoadSnapshot load() {
        return client instanceof LoadAware ? ((LoadAware) client).load() : null;
    }

    /** Whether the load signal says the member is full ({@link MemberOptions#maxWaiting()} reached). */
    public boolean loadFull() {
        if (Double.isNaN(options.maxWaiting())) {
            return false;
        }
        LoadSnapshot l = load();
        return l != null && !Double.isNaN(l.waiting()) && l.waiting() >= options.maxWaiting();
    }

    /**
     * Takes an in-flight slot, waiting up to {@code wait} for one; never exceeds the limit. With shared
     * state, the slot is also leased there, so that the limit holds across instances; a wait asks there
     * again every few milliseconds until it is over.
     *
     * @return false when no slot freed in time
     */
    boolean tryAcquire(Duration wait) throws InterruptedException {
        long start = System.nanoTime();
        if (permits != null) {
            boolean got = wait.isZero()
                    ? permits.tryAcquire()
                    : permits.tryAcquire(Deadline.saturatedNanos(wait), TimeUnit.NANOSECONDS);
            if (!got) {
                return false;
            }
            boolean leased = false;
            try {
                leased = lease(Deadline.saturatedNanos(wait), start);
            } finally {
                if (!leased) {
                    permits.release();
                }
            }
            if (!leased) {
                return false;
            }
        }
        inFlight.incrementAndGet();
        return true;
    }

    /** Leases a shared slot, asking again until {@code waitNanos} from {@code start} have passed. */
    private boolean lease(long waitNanos, long start) throws InterruptedException {
        SharedStateGuard state = shared;
        if (state == null) {
            return true;
        }
        while (true) {
            Optional<String> lease = state.acquireSlot(slotKey, options.maxInFlight(), slotLease);
            if (lease.isPresent()) {
                leases.add(lease.get());
                return true;
            }
            // The wait is the caller's real time, as the semaphore's is, whatever clock the client reads.
            long left = waitNanos - (System.nanoTime() - start);
            if (left <= 0) {
                return false;
            }
            TimeUnit.NANOSECONDS.sleep(Math.min(left, SLOT_POLL_NANOS));
        }
    }

    /** Frees the slot taken by {@link #tryAcquire}. */
    void release() {
        inFlight.decrementAndGet();
        if (permits != null) {
            SharedStateGuard state = shared;
            String lease = state == null ? null : leases.poll();
            if (lease != null) {
                state.releaseSlot(slotKey, lease);
            }
            permits.release();
        }
    }

    /** How full the member is, for reasons: "12/64 in flight" (and "64/64 across instances" when shared). */
    String capacityText() {
        String s = inFlight.get() + (permits != null ? "/" + options.maxInFlight() : "") + " in flight";
        SharedStateGuard state = shared;
        if (state != null && permits != null) {
            int held = state.slotsHeld(slotKey);
            if (held >= 0) {
                s += " here, " + held + "/" + options.maxInFlight() + " across instances";
            }
        }
        LoadSnapshot l = Double.isNaN(options.maxWaiting()) ? null : load();
        if (l != null && !Double.isNaN(l.waiting())) {
            s += ", " + (long) l.waiting() + " waiting";
        }
        return s;
    }

    /** The circuit breaker's answer for a new call. */
    enum Gate {
        /** Closed: call. */
        CLOSED,
        /**
         * Open past its cooldown: this call is the one trial (probe) call. Whatever its outcome, it must
         * end the trial: {@link #succeeded}, {@link #failed} or {@link #probeDone}.
         */
        PROBE,
        /** Open: skip. */
        OPEN
    }

    /** Asks the circuit breaker whether a call may go to this member now. */
    Gate gate() {
        if (!open) {
            return sharedOpen() ? Gate.OPEN : Gate.CLOSED;
        }
        synchronized (lock) {
            if (!open) {
                return Gate.CLOSED;
            }
            if (halfOpensAt.isExpired() && probing.compareAndSet(false, true)) {
                return Gate.PROBE;
            }
            return Gate.OPEN;
        }
    }

    /**
     * Ends a trial call that neither succeeded nor failed for the member's sake (it did not go ahead, was
     * cancelled, or threw something unexpected): the circuit stays open and the next call past the
     * cooldown is a new trial. Does nothing for a gate other than {@link Gate#PROBE}.
     */
    void probeDone(Gate gate) {
        if (gate == Gate.PROBE) {
            probing.set(false);
        }
    }

    /** When this member's circuit opens (the same for every member of a composite client). */
    public CircuitBreakerConfig circuitBreaker() {
        return breaker;
    }

    /**
     * Whether the circuit is open now: opened here, or, with shared state, by another instance (which this
     * asks the shared state for).
     */
    public boolean circuitOpen() {
        return open || sharedOpen();
    }

    /**
     * Whether another instance has this member's circuit open, as the shared state says; false without
     * one, or while it cannot be reached. Listeners hear when that changes, as for this instance's own.
     */
    private boolean sharedOpen() {
        SharedStateGuard state = shared;
        if (state == null) {
            return false;
        }
        Optional<Duration> left = state.circuitOpen(circuitKey);
        if (left.isPresent()) {
            sharedOpenUntil = nanoTime.getAsLong() + Deadline.saturatedNanos(left.get());
            if (sharedOpenSeen.compareAndSet(false, true)) {
                LOG.info(
                        "member {}: circuit opened by another instance; calls skip it for {} ms",
                        name,
                        Deadline.saturatedMillis(left.get()));
                CircuitHook hook = circuitHook;
                if (hook != null) {
                    hook.changed(this, true, 0, left.get(), "opened by another instance");
                }
            }
            return true;
        }
        if (sharedOpenSeen.compareAndSet(true, false)) {
            LOG.info("member {}: circuit no longer open on another instance", name);
            CircuitHook hook = circuitHook;
            if (hook != null) {
                hook.changed(this, false, 0, Duration.ZERO, "no longer open on another instance");
            }
        }
        return false;
    }

    /**
     * How long until the open circuit lets a trial call through: zero once the cooldown is over (a trial
     * may be running); empty when the circuit is closed, or when its cooldown is beyond {@link
     * Deadline#HORIZON}.
     */
    public Optional<Duration> halfOpensIn() {
        if (!open && sharedOpenSeen.get()) {
            long left = sharedOpenUntil - nanoTime.getAsLong();
            if (left > 0) {
                return Optional.of(Duration.ofNanos(left));
            }
        }
        synchronized (lock) {
            if (!open) {
                return Optional.empty();
            }
            return halfOpensAt.remaining().map(d -> d.isNegative() ? Duration.ZERO : d);
        }
    }

    /** A call started (for idle-time tracking). */
    void started() {
        lastActivityNanos = nanoTime.getAsLong();
        everCalled = true;
    }

    /** A call succeeded; learns warm or cold latency from its receipt. */
    void succeeded(Receipt receipt, boolean predictedCold) {
        long total = Deadline.saturatedNanos(receipt.totalTime());
        long took = Deadline.saturatedNanos(receipt.timeToFirstToken().orElse(receipt.totalTime()));
        boolean slow = isSlow(took);
        long now = nanoTime.getAsLong();
        boolean closed = false;
        String opened = null;
        synchronized (lock) {
            if (open && slow) {
                // The trial answered, but as slowly as the calls that opened the circuit.
                opened = "its trial call was slow (" + took / 1_000_000 + " ms, the limit "
                        + Deadline.saturatedMillis(breaker.slowCallDuration()) + " ms)";
                openLocked();
            } else if (open) {
                LOG.info("member {}: circuit closed, its trial call succeeded", name);
                closed = true;
                open = false;
                clearWindow();
            } else if (window != null) {
                window.record(false, slow, now);
                opened = rateTrip(now);
                if (opened != null) {
                    openLocked();
                }
            }
            consecutiveFailures = 0;
            probing.set(false);
            // A call predicted cold counts as a cold sample when it was slow against the warm baseline, or
            // when there is no baseline yet (the first call to a scale-to-zero member).
            boolean cold = receipt.coldStart().observed()
                    || (predictedCold && (Double.isNaN(warmLatencyNanos) || total > 2 * warmLatencyNanos));
            if (cold && options.idleTimeout() != null) {
                double extra = Double.isNaN(warmLatencyNanos) ? total : Math.max(0, total - warmLatencyNanos);
                coldStartNanos = coldStartNanos + EWMA * (extra - coldStartNanos);
            } else {
                warmLatencyNanos =
                        Double.isNaN(warmLatencyNanos) ? total : warmLatencyNanos + EWMA * (total - warmLatencyNanos);
            }
        }
        lastActivityNanos = nanoTime.getAsLong();
        publish(opened != null, closed);
        CircuitHook hook = circuitHook;
        if (opened != null) {
            LOG.warn(
                    "member {}: circuit opened: {}; calls skip it for {} ms",
                    name,
                    opened,
                    Deadline.saturatedMillis(cooldown));
            if (hook != null) {
                hook.changed(this, true, 0, cooldown, opened);
            }
        } else if (closed && hook != null) {
            hook.changed(this, false, 0, Duration.ZERO, "its trial call succeeded");
        }
    }

    /** A call failed; provider-side failures count towards opening the circuit. */
    void failed(InferenceException e) {
        long now = nanoTime.getAsLong();
        lastActivityNanos = now;
        if (!e.isRetryable()) {
            synchronized (lock) {
                probing.set(false);
            }
            return;
        }
        boolean slow = e.partialReceipt()
                .map(r -> isSlow(Deadline.saturatedNanos(r.totalTime())))
                .orElse(false);
        int failures;
        String why = null;
        synchronized (lock) {
            consecutiveFailures++;
            failures = consecutiveFailures;
            if (open) {
                why = "its trial call failed";
            } else if (consecutiveFailures >= breaker.failureThreshold()) {
                why = consecutiveFailures + " failure(s) in a row";
            } else if (window != null) {
                window.record(true, slow, now);
                why = rateTrip(now);
            }
            if (why != null) {
                LOG.warn(
                        "member {}: circuit {}: {}, the last {}: {}; calls skip it for {} ms",
                        name,
                        open ? "open again" : "opened",
                        why,
                        e.getClass().getSimpleName(),
                        e.getMessage(),
                        Deadline.saturatedMillis(cooldown));
                openLocked();
            }
            probing.set(false);
        }
        publish(why != null, false);
        CircuitHook hook = circuitHook;
        if (why != null && hook != null) {
            hook.changed(this, true, failures, cooldown, why);
        }
    }

    /** Tells other instances that this one opened (for its cooldown) or closed the circuit. */
    private void publish(boolean opened, boolean closed) {
        SharedStateGuard state = shared;
        if (state == null) {
            return;
        }
        if (opened) {
            state.openCircuit(circuitKey, cooldown);
        } else if (closed) {
            state.closeCircuit(circuitKey);
        }
    }

    /** Whether a call that took {@code nanos} counts as slow; never without a slow-call rule. */
    private boolean isSlow(long nanos) {
        return breaker.slowCallRateThreshold() > 0 && nanos >= Deadline.saturatedNanos(breaker.slowCallDuration());
    }

    /** Opens (or opens again) the circuit for a cooldown from now, with an empty window. Under {@code lock}. */
    private void openLocked() {
        open = true;
        halfOpensAt = Deadline.after(cooldown, nanoTime);
        clearWindow();
    }

    private void clearWindow() {
        if (window != null) {
            window.clear();
        }
    }

    /**
     * Why the window's rates open the circuit now, or null when they do not (or it holds fewer than {@link
     * CircuitBreakerConfig#minimumCalls()} calls). Under {@code lock}.
     */
    private String rateTrip(long now) {
        int calls = window.calls(now);
        if (calls < breaker.minimumCalls()) {
            return null;
        }
        int failureRate = breaker.failureRateThreshold();
        int failures = window.failures();
        if (failureRate > 0 && failures * 100L >= (long) failureRate * calls) {
            return "failure rate " + failures * 100L / calls + "% (" + failures + " of the last " + calls
                    + " calls) reached " + failureRate + "%";
        }
        int slowRate = breaker.slowCallRateThreshold();
        int slow = window.slow();
        if (slowRate > 0 && slow * 100L >= (long) slowRate * calls) {
            return "slow calls " + slow * 100L / calls + "% (" + slow + " of the last " + calls + " calls took "
                    + Deadline.saturatedMillis(breaker.slowCallDuration()) + " ms or more) reached " + slowRate + "%";
        }
        return null;
    }

    /** Whether the member has had no call for at least {@code d} (or never had one). */
    boolean idleFor(Duration d) {
        return !everCalled || nanoTime.getAsLong() - lastActivityNanos >= Deadline.saturatedNanos(d);
    }

    /** Whether the next call is predicted to hit a cold start. */
    public boolean predictedCold() {
        Duration idle = options.idleTimeout();
        if (idle == null) {
            return false;
        }
        return !everCalled || nanoTime.getAsLong() - lastActivityNanos > Deadline.saturatedNanos(idle);
    }

    /** The learned cold-start latency (the configured guess until one is observed). */
    public Duration coldStartLatency() {
        synchronized (lock) {
            return Duration.ofNanos((long) coldStartNanos);
        }
    }

    /** The learned latency of a warm call, or empty before the first one. */
    public Optional<Duration> warmLatency() {
        synchronized (lock) {
            return Double.isNaN(warmLatencyNanos)
                    ? Optional.empty()
                    : Optional.of(Duration.ofNanos((long) warmLatencyNanos));
        }
    }

    /** The latency expected for the next call: warm latency, plus the cold start when one is predicted. */
    Duration expectedLatency() {
        Duration warm = warmLatency().orElse(Duration.ZERO);
        return predictedCold() ? warm.plus(coldStartLatency()) : warm;
    }
}
