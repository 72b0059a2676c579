package dev.hybridinference.core.routing;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.CapacityExceededException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.RouteFacts;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.internal.DaemonThreads;
import dev.hybridinference.core.internal.LazyPool;
import dev.hybridinference.core.internal.Listeners;
import dev.hybridinference.core.internal.PulledStream;
import dev.hybridinference.core.internal.ReceiptIds;
import dev.hybridinference.core.internal.Streams;
import dev.hybridinference.core.spi.Deadline;
import dev.hybridinference.core.spi.SharedState;
import dev.hybridinference.core.spi.TimeSource;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The composite client: named member clients (any {@link InferenceClient}, another {@code HybridClient}
 * included) behind one interface, with a {@link RoutingPolicy} that orders them for each request.
 *
 * <p>For each call the policy gives the candidates; the client goes down them, skipping members whose
 * circuit is open or that have no free in-flight slot (the spillover primary may wait {@code
 * waitForSlot} for one), and falls back to the next candidate on retryable errors, or to a longer-context
 * member on {@link ContextLengthExceededException}. Invalid requests, authentication errors, content
 * filtering and cancellation never fall back. When every candidate has failed it waits a backoff (honouring
 * {@code Retry-After} up to a cap, never past the deadline) and goes round again, up to {@link
 * RetryPolicy#maxAttempts()} attempts. A stream may move to another member until its first chunk has
 * reached the caller; after that an error surfaces with the partial receipt.
 *
 * <p>A member that cannot take the request is skipped with the reason, before anything is sent: it lacks a
 * capability the request needs (tools, a JSON response format, streaming), the prompt (estimated as in
 * {@link TierRule#estimatePromptTokens}) is longer than its context, or it serves no model of the name the
 * request gives. Each member's capabilities are its {@link MemberOptions} where set, else what its {@link
 * ClientInfo} says (see {@link MemberOptions} for the precedence). A model alias that a member's options map
 * reaches that member under the served name; a name that a member neither maps nor lists goes to it
 * unchanged only when it lists no models at all. When every candidate is skipped this way, the call fails
 * with a non-retryable {@link InvalidRequestException} that gives each member's reason.
 *
 * <p>A member whose client says it cannot take any call ({@link InferenceClient#unavailableReason()}: the
 * local runtime on a machine without its native library, for instance) is skipped the same way, first, with
 * {@code unavailable: } and the client's reason; nothing is sent to it and its circuit is left alone. When
 * every candidate is skipped and one of them for being unavailable, the call fails with a {@link
 * ProviderUnavailableException} giving each member's reason, as the member may be available later.
 *
 * <p>The receipt names the member that answered and carries every attempt of every member (skipped ones
 * included), the route with its reason, and the summed cost of all attempts.
 *
 * <p>Costs: with {@link Builder#ledger}, the client and its policy's budgets count in that ledger; members
 * that have no ledger of their own ({@link InferenceClient#ledger()} empty) have their receipts recorded in
 * it by this client, so one ledger set here sees every call. {@link #ledger()} returns it.
 *
 * <p>Nothing but an {@link InferenceException} leaves a call, whichever way it is made: a member or a
 * policy that throws anything else fails the call with an {@code InferenceException} that has the other
 * exception as its cause and carries the partial receipt. (Misuse is the exception: a null argument, or a
 * call on a closed client, throws as documented.) A member that fails with something unexpected is not
 * tried again in that call; its half-open trial, if the call was one, ends all the same.
 *
 * <p>Time arithmetic saturates: a {@code Retry-After} of centuries, an {@link Instant#MAX} deadline or a
 * huge {@code maxBackoff} never overflows (see {@link Deadline}).
 *
 * <p>Logs through SLF4J: routing decisions at debug level, a circuit that opens at warn and one that
 * closes at info. Prompts and secrets are never logged. Thread-safe; closing it closes the members.
 */
public final class HybridClient implements InferenceClient {
    private static final Logger LOG = LoggerFactory.getLogger(HybridClient.class);

    /** Waits between retry rounds; replaceable so that tests never sleep. */
    @FunctionalInterface
    public interface Sleeper {
        /** Waits {@code duration}. */
        void sleep(Duration duration) throws InterruptedException;
    }

    /** The default sleeper; a call that uses it wakes early when it is cancelled. */
    private static final Sleeper THREAD_SLEEP = d -> TimeUnit.NANOSECONDS.sleep(Deadline.saturatedNanos(d));

    /** The default lease of a shared in-flight slot, in minutes. */
    public static final int DEFAULT_SLOT_LEASE_MINUTES = 5;

    private static final Duration DEFAULT_SLOT_LEASE = Duration.ofMinutes(DEFAULT_SLOT_LEASE_MINUTES);

    /** How often a call on a time source's timer looks for a free slot on the spillover primary. */
    private static final Duration SLOT_POLL = Duration.ofMillis(5);

    private final String id;
    private final Map<String, MemberState> members;
    private final RoutingPolicy policy;
    private final RetryPolicy retry;
    private final String spilloverPrimary;
    private final Duration waitForSlot;
    private final Clock clock;
    private final LongSupplier nanoTime;
    private final Sleeper sleeper;
    /** The time source whose timer runs backoffs, slot waits and keep-warm pings; null for this client's threads. */
    private final TimeSource timer;

    private final DoubleSupplier random;
    private final boolean closeMembers;
    private final CostLedger ledger;
    private final List<String> capacityRegistered = new ArrayList<>();
    private final ScheduledExecutorService keepWarm;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final LazyPool pool;
    private final Listeners events;
    private final List<AutoCloseable> resources;
    /** The state shared with other instances, or null. */
    private final SharedStateGuard shared;

    private HybridClient(Builder b) {
        this.id = b.id;
        this.events = Listeners.of(b.listeners);
        this.resources = List.copyOf(b.resources);
        this.pool = new LazyPool(b.id);
        this.clock = b.clock;
        this.nanoTime = b.nanoTime;
        Map<String, MemberState> m = new LinkedHashMap<>();
        b.members.forEach((name, spec) ->
                m.put(name, new MemberState(name, spec.client, spec.options, nanoTime, b.circuitBreaker)));
        this.members = Collections.unmodifiableMap(m);
        if (!events.isEmpty()) {
            for (MemberState s : members.values()) {
                s.onCircuitChange((member, open, failures, cooldown, why) ->
                        events.circuitChanged(new InferenceListener.CircuitChange(
                                id, member.name(), open, failures, cooldown, clock.instant(), why)));
            }
        }
        this.ledger = b.ledger != null ? b.ledger : sharedMemberLedger(members.values());
        RoutingPolicy chosen = b.policy != null
                ? b.policy
                : (request, all) -> new Route(List.copyOf(all.keySet()), "members in order", null);
        if (b.ledger != null) {
            for (MemberState s : members.values()) {
                if (s.client().ledger().filter(l -> l != b.ledger).isPresent()) {
                    throw new IllegalArgumentException("member \"" + s.name() + "\" records into another ledger"
                            + " than this client's: build it with the same ledger, or with none (this client"
                            + " then records its calls)");
                }
            }
            if (chosen instanceof StandardRoutingPolicy) {
                chosen = ((StandardRoutingPolicy) chosen).boundTo(b.ledger);
            }
        }
        this.shared = b.sharedState == null ? null : new SharedStateGuard(b.sharedState, id, nanoTime, clock);
        if (shared != null) {
            for (MemberState s : members.values()) {
                s.share(shared, id, b.slotLease);
            }
            if (chosen instanceof StandardRoutingPolicy) {
                chosen = ((StandardRoutingPolicy) chosen).sharing(shared, id);
            }
        }
        this.policy = chosen;
        if (policy instanceof StandardRoutingPolicy) {
            StandardRoutingPolicy p = (StandardRoutingPolicy) policy;
            for (String name : p.referencedMembers()) {
                if (!members.containsKey(name)) {
                    throw new IllegalArgumentException("the routing policy names member \"" + name
                            + "\", which is not a member; members: " + String.join(", ", members.keySet()));
                }
            }
            this.spilloverPrimary = p.spilloverPrimary().orElse(null);
            this.waitForSlot = p.waitForSlot();
        } else {
            this.spilloverPrimary = null;
            this.waitForSlot = Duration.ZERO;
        }
        this.retry = b.retry;
        this.sleeper = b.sleeper;
        this.timer = b.time;
        this.random = b.random;
        this.closeMembers = b.closeMembers;
        if (b.ledger != null) {
            // Always-on capacity with no ledger of its own would have registered its bill there.
            for (MemberState s : members.values()) {
                if (!s.recordsOwnReceipts() && s.info().pricing() instanceof Pricing.PerInstanceHour) {
                    b.ledger.registerCapacity(
                            s.info().id(), (Pricing.PerInstanceHour) s.info().pricing());
                    capacityRegistered.add(s.info().id());
                }
            }
        }
        boolean anyKeepWarm =
                members.values().stream().anyMatch(s -> s.options().keepWarmEvery() != null);
        this.keepWarm = anyKeepWarm && timer == null ? DaemonThreads.scheduler(id + "-keep-warm") : null;
        if (anyKeepWarm && timer != null) {
            for (MemberState s : members.values()) {
                Duration every = s.options().keepWarmEvery();
                if (every != null) {
                    scheduleKeepWarm(s, every);
                }
            }
        }
        if (keepWarm != null) {
            for (MemberState s : members.values()) {
                Duration every = s.options().keepWarmEvery();
                if (every != null) {
                    long nanos = Math.max(1, Deadline.saturatedNanos(every));
                    keepWarm.scheduleWithFixedDelay(() -> keepWarm(s), nanos, nanos, TimeUnit.NANOSECONDS);
                }
            }
        }
    }

    /** A builder. */
    public static Builder builder() {
        return new Builder();
    }

    /** The ledger every member's costs add up in, when there is one. */
    private static CostLedger sharedMemberLedger(Iterable<MemberState> members) {
        CostLedger shared = null;
        for (MemberState s : members) {
            CostLedger l = s.client().ledger().orElse(null);
            if (l == null || (shared != null && l != shared)) {
                return null;
            }
            shared = l;
        }
        return shared;
    }

    /** The members' state, by name, in the order they were added. */
    public Map<String, MemberState> members() {
        return members;
    }

    /**
     * The member client named {@code name} as {@code type}: {@code hybrid.member("vllm-main",
     * VllmClient.class).replicas()}.
     *
     * @throws IllegalArgumentException when there is no such member, or it is not a {@code type}
     */
    public <T> T member(String name, Class<T> type) {
        Objects.requireNonNull(type, "type");
        MemberState s = members.get(Objects.requireNonNull(name, "name"));
        if (s == null) {
            throw new IllegalArgumentException(
                    id + " has no member \"" + name + "\"; members: " + String.join(", ", members.keySet()));
        }
        return s.client(type);
    }

    /**
     * Whether this client shares its state with other instances now, or runs on its own because the store
     * cannot be reached (see {@link Builder#sharedState}); for a client without one, {@code configured} is
     * false.
     */
    public SharedStateStatus sharedStateStatus() {
        return shared == null ? SharedStateStatus.none() : shared.status();
    }

    /** The listeners of this client's calls, in order. */
    public List<InferenceListener> listeners() {
        return events.all();
    }

    /**
     * The ledger this client counts costs in: the one given to {@link Builder#ledger}, else the one every
     * member records into when they all share one; empty otherwise.
     */
    @Override
    public Optional<CostLedger> ledger() {
        return Optional.ofNullable(ledger);
    }

    /** This client, or with a single member, that member as {@code type}. */
    @Override
    public <T> Optional<T> unwrap(Class<T> type) {
        Objects.requireNonNull(type, "type");
        if (type.isInstance(this)) {
            return Optional.of(type.cast(this));
        }
        return members.size() == 1 ? members.values().iterator().next().client().unwrap(type) : Optional.empty();
    }

    /**
     * Describes the composite: type {@code hybrid}; {@link ClientInfo#members()} holds each member's info;
     * models, aliases and capabilities are the union over the members (capabilities as the composite
     * sees each member: its options first); it cold starts only when every member can. The deployment
     * kind is the members' when they share one, else {@link DeploymentKind#HYBRID}; the pricing is the
     * members' when they share it, else the first member's, which {@link ClientInfo#isMixed()} then flags.
     */
    @Override
    public ClientInfo info() {
        List<ClientInfo> infos = new ArrayList<>(members.size());
        Set<String> models = new LinkedHashSet<>();
        Map<String, String> aliases = new LinkedHashMap<>();
        ClientInfo.Capabilities capabilities = null;
        boolean allColdStart = true;
        for (MemberState s : members.values()) {
            ClientInfo i;
            try {
                i = Objects.requireNonNull(s.client().info(), "info");
            } catch (RuntimeException e) {
                i = s.info();
            }
            infos.add(i);
            models.addAll(i.models());
            s.options().modelAliases().forEach(aliases::putIfAbsent);
            i.modelAliases().forEach(aliases::putIfAbsent);
            capabilities = capabilities == null ? s.capabilities() : capabilities.union(s.capabilities());
            allColdStart &= i.coldStart().canColdStart();
        }
        ClientInfo first = infos.get(0);
        boolean oneKind = infos.stream().allMatch(i -> i.deploymentKind() == first.deploymentKind());
        return ClientInfo.builder(
                        id, "hybrid", oneKind ? first.deploymentKind() : DeploymentKind.HYBRID, first.pricing())
                .models(List.copyOf(models))
                .modelAliases(aliases)
                .capabilities(capabilities)
                .coldStart(
                        allColdStart
                                ? new ClientInfo.ColdStartProfile(true, null, 0)
                                : ClientInfo.ColdStartProfile.NONE)
                .members(infos)
                .build();
    }

    @Override
    public ChatResponse chat(ChatRequest request) {
        Objects.requireNonNull(request, "request");
        ensureOpen();
        return new Execution(request, false).chat();
    }

    /**
     * {@inheritDoc}
     *
     * <p>No thread waits for the answer: routing and the first member's {@code chatAsync} run on the
     * caller's thread, and the call goes on (fallback, the next round) when a member's future completes,
     * on the thread that completes it. Backoff between rounds waits on a timer, not on a thread. Only a
     * spillover primary's {@code waitForSlot} holds one of this client's threads while it waits for a slot.
     * Cancelling the future cancels the member's call in progress, or cuts a backoff short.
     */
    @Override
    public CompletableFuture<ChatResponse> chatAsync(ChatRequest request) {
        Objects.requireNonNull(request, "request");
        ensureOpen();
        Execution execution = new Execution(request, false);
        CompletableFuture<ChatResponse> future = new CompletableFuture<>();
        future.whenComplete((r, t) -> {
            if (future.isCancelled()) {
                execution.cancel();
            }
        });
        execution.new AsyncCall(future).start();
        return future;
    }

    @Override
    public ChatStream stream(ChatRequest request) {
        Objects.requireNonNull(request, "request");
        ensureOpen();
        return new Execution(request, true).stream();
    }

    /**
     * {@inheritDoc}
     *
     * <p>The stream is opened on one of this client's threads; a cancel while it opens stops the retry
     * waits at once, and a member's stream that opens after the cancel is closed unread.
     */
    @Override
    public Cancellable stream(ChatRequest request, StreamHandler handler) {
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(handler, "handler");
        ensureOpen();
        Execution execution = new Execution(request, true);
        Streams.Opener opener = new Streams.Opener() {
            @Override
            public ChatStream open() {
                return execution.stream();
            }

            @Override
            public void cancel() {
                execution.cancel();
            }
        };
        Executor executor;
        try {
            executor = executor();
        } catch (IllegalStateException e) {
            executor = Runnable::run;
            execution.cancel();
        }
        return Streams.push(opener, handler, executor, id);
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        if (keepWarm != null) {
            keepWarm.shutdownNow();
        }
        pool.shutdown();
        for (String providerId : capacityRegistered) {
            ledger.stopCapacity(providerId);
        }
        RuntimeException first = null;
        if (closeMembers) {
            for (MemberState s : members.values()) {
                try {
                    s.client().close();
                } catch (RuntimeException e) {
                    first = chain(first, e);
                }
            }
        }
        for (AutoCloseable r : resources) {
            try {
                r.close();
            } catch (Exception e) {
                if (e instanceof InterruptedException) {
                    Thread.currentThread().interrupt();
                }
                first = chain(
                        first,
                        e instanceof RuntimeException
                                ? (RuntimeException) e
                                : new IllegalStateException(
                                        "closing " + r.getClass().getName() + " failed: " + e.getMessage(), e));
            }
        }
        if (first != null) {
            throw first;
        }
    }

    private static RuntimeException chain(RuntimeException first, RuntimeException next) {
        if (first == null) {
            return next;
        }
        first.addSuppressed(next);
        return first;
    }

    private void ensureOpen() {
        if (closed.get()) {
            throw new IllegalStateException(id + ": client is closed");
        }
    }

    private Executor executor() {
        return pool.get();
    }

    /** The keep-warm request: one token, tagged so that reports can tell it from the application's calls. */
    private static final ChatRequest PING = ChatRequest.builder()
            .user("ping")
            .maxTokens(1)
            .options(RequestOptions.builder().tag("purpose", "keep-warm").build())
            .build();

    /** Sends a one-token call to an idle member so that the platform keeps it warm. */
    private void keepWarm(MemberState s) {
        if (closed.get()
                || s.inFlight() > 0
                || !s.idleFor(s.options().keepWarmEvery())
                || !keepWarmTurn(s, s.options().keepWarmEvery())) {
            return;
        }
        boolean predictedCold = s.predictedCold();
        s.started();
        try {
            pinged(s, predictedCold, s.client().chat(PING).receipt(), null);
        } catch (RuntimeException e) {
            pinged(s, predictedCold, null, e);
        }
    }

    /**
     * Keep-warm pings on the time source's timer: every {@code every}, an idle member gets a ping through
     * its {@code chatAsync}, and the next look is set {@code every} after this ping has ended (or after this
     * look, when it sent none), a fixed delay as on this client's own keep-warm thread.
     */
    private void scheduleKeepWarm(MemberState s, Duration every) {
        timer.schedule(every, () -> {
            if (closed.get()) {
                return;
            }
            if (s.inFlight() == 0 && s.idleFor(every) && keepWarmTurn(s, every)) {
                boolean predictedCold = s.predictedCold();
                s.started();
                CompletableFuture<ChatResponse> ping;
                try {
                    ping = Objects.requireNonNull(s.client().chatAsync(PING), "member's future");
                } catch (RuntimeException e) {
                    pinged(s, predictedCold, null, e);
                    scheduleKeepWarm(s, every);
                    return;
                }
                // Not before the ping ends: the member is active until then, so a look a period after the
                // ping was sent would find it idle for less than a period and skip it, and a member whose
                // pings take any time would be pinged only every other period.
                ping.whenComplete((r, t) -> {
                    try {
                        pinged(s, predictedCold, r == null ? null : r.receipt(), t);
                    } finally {
                        scheduleKeepWarm(s, every);
                    }
                });
                return;
            }
            scheduleKeepWarm(s, every);
        });
    }

    /**
     * Whether this instance sends member {@code s}'s keep-warm ping of this period: always without shared
     * state; with it, only the instance that claims the period first (periods are aligned to the epoch on
     * the wall clock), so that a fleet pings a member once a period rather than once per instance.
     */
    private boolean keepWarmTurn(MemberState s, Duration every) {
        if (shared == null) {
            return true;
        }
        long period = Math.max(1, Deadline.saturatedMillis(every));
        long window = Math.floorDiv(clock.millis(), period);
        Duration ttl = Duration.ofMillis(Math.min(period, Long.MAX_VALUE / 4)).multipliedBy(2);
        return shared.claim(id + ":keep-warm:" + s.name() + ":" + window, ttl);
    }

    /** A ping ended: its receipt is recorded and the member's state updated, as for a call. */
    private void pinged(MemberState s, boolean predictedCold, Receipt r, Throwable failure) {
        while (failure instanceof java.util.concurrent.CompletionException && failure.getCause() != null) {
            failure = failure.getCause();
        }
        if (failure == null) {
            recordFor(s, r);
            s.succeeded(r, predictedCold);
        } else if (failure instanceof InferenceException) {
            InferenceException e = (InferenceException) failure;
            e.partialReceipt().ifPresent(x -> recordFor(s, x));
            s.failed(e);
        }
        // Anything else a ping throws is dropped: it must not stop the schedule, and the next call will see
        // the member's state.
    }

    /**
     * Records a member's receipt (or partial receipt) in this client's ledger when the member keeps no
     * ledger of its own; members that do have recorded it already.
     */
    private void recordFor(MemberState m, Receipt r) {
        if (ledger != null && r != null && !m.recordsOwnReceipts()) {
            ledger.record(r);
        }
    }

    /**
     * Wraps something a member or policy threw that is not an {@link InferenceException}. Not retryable:
     * it says nothing about whether trying again could help.
     */
    private static InferenceException unexpected(Throwable t, String providerId, String where) {
        if (t instanceof InferenceException) {
            return (InferenceException) t;
        }
        return new InferenceException(
                "unexpected " + t.getClass().getSimpleName() + " from " + where
                        + (t.getMessage() == null ? "" : ": " + t.getMessage()),
                providerId,
                null,
                0,
                null,
                t);
    }

    /** "12 s", or "300 ms" below a second: how long until something happens, for messages. */
    private static String inWords(Duration d) {
        long ms = Deadline.saturatedMillis(d);
        if (ms < 1000) {
            return Math.max(0, ms) + " ms";
        }
        return (ms / 1000 + (ms % 1000 == 0 ? 0 : 1)) + " s";
    }

    /** The later of {@code sofar} (null for none yet) and the retry-after that {@code e} asks for, if any. */
    private static Duration laterRetryAfter(Duration sofar, InferenceException e) {
        Optional<Duration> asked = e.retryAfter();
        if (asked.isPresent() && (sofar == null || asked.get().compareTo(sofar) > 0)) {
            return asked.get();
        }
        return sofar;
    }

    /** Whether an error lets the call move on to another member. */
    private static boolean fallsBack(InferenceException e) {
        if (e instanceof ContextLengthExceededException) {
            return true;
        }
        if (e instanceof InferenceTimeoutException && ((InferenceTimeoutException) e).isDeadlineExceeded()) {
            return false;
        }
        return e.isRetryable();
    }

    /**
     * One call through the composite client: its route, attempts and accumulated cost. Run by one thread;
     * once a stream is handed out, its {@link RoutedStream} makes sure only one thread ends the call.
     */
    private final class Execution {
        private final ChatRequest request;
        /** The model the request names, or null. */
        private final String requested;

        private final long startNanos = nanoTime.getAsLong();
        private final Instant startedAt = clock.instant();
        private final Deadline deadline;
        private final List<Attempt> attempts = new ArrayList<>(4);
        /** The call as listeners see it; null without listeners. */
        private final InferenceListener.Call call;
        /** Attempts sent to members, for the listeners' numbering. */
        private int attemptsMade;
        /** Whether the listeners were told how the call ended (once, however many paths end it). */
        private final AtomicBoolean told = new AtomicBoolean();
        /** Whether the listeners were told of a spillover (once per call). */
        private boolean spilloverTold;

        private final CountDownLatch cancelSignal = new CountDownLatch(1);
        private BigDecimal cost = BigDecimal.ZERO;
        private boolean costEstimated;
        private int failures;
        private Duration queueTime = Duration.ZERO;
        private Route route;
        private String note = "";
        private volatile boolean cancelled;
        private volatile CompletableFuture<ChatResponse> current;
        private volatile CompletableFuture<Void> pausing;
        private boolean streamed;
        private long promptTokens = -1;
        /** Members skipped because they cannot take the request, with why, in the order met. */
        private final Map<String, String> unfit = new LinkedHashMap<>();
        /** Whether one of {@link #unfit} was skipped for being unavailable rather than for the request. */
        private boolean unavailableSkipped;

        Execution(ChatRequest request, boolean streamed) {
            this.request = request;
            this.requested = request.model().orElse(null);
            this.deadline = Deadline.of(request.options(), startedAt, startNanos, nanoTime);
            if (events.isEmpty()) {
                this.call = null;
            } else {
                this.call = new InferenceListener.Call(ReceiptIds.next(), id, request, startedAt, streamed);
                events.callStarted(call);
            }
        }

        /** Counts an attempt and tells the listeners it starts; returns its number. */
        private int attemptStarted(MemberState m, String served, boolean predictedCold) {
            int number = ++attemptsMade;
            if (call != null) {
                events.attemptStarted(
                        call, new InferenceListener.AttemptStart(m.name(), number, served, predictedCold));
            }
            return number;
        }

        /** Tells the listeners attempt {@code number} ended with {@code receipt} or {@code error}. */
        private void attemptEnded(MemberState m, int number, long since, Receipt receipt, InferenceException error) {
            if (call != null) {
                events.attemptEnded(
                        call,
                        new InferenceListener.AttemptEnd(
                                m.name(),
                                number,
                                Duration.ofNanos(nanoTime.getAsLong() - since),
                                receipt != null
                                        ? receipt
                                        : error == null
                                                ? null
                                                : error.partialReceipt().orElse(null),
                                error));
            }
        }

        void cancel() {
            cancelled = true;
            cancelSignal.countDown();
            CompletableFuture<ChatResponse> f = current;
            if (f != null) {
                f.cancel(true);
            }
            CompletableFuture<Void> p = pausing;
            if (p != null) {
                p.complete(null);
            }
        }

        ChatResponse chat() {
            try {
                Attempted<ChatResponse> done = run(this::callBlocking);
                MemberState m = done.member;
                try {
                    return withCallReceipt(m, done.value, done.predictedCold);
                } catch (RuntimeException e) {
                    // The member answered, but its answer could not be used (a null receipt, say).
                    throw fail(unexpected(e, m.name(), "member " + m.name() + "'s answer"), m);
                } finally {
                    m.release();
                    m.probeDone(done.gate);
                }
            } catch (InferenceException e) {
                throw e;
            } catch (RuntimeException e) {
                throw fail(unexpected(e, id, "the call"), null);
            } catch (Error e) {
                // The Error goes on as it is; the listeners still hear that the call ended.
                if (call != null) {
                    fail(unexpected(e, id, "the call"), null);
                }
                throw e;
            }
        }

        ChatStream stream() {
            streamed = true;
            try {
                return new RoutedStream(this, run(this::openStream));
            } catch (InferenceException e) {
                throw e;
            } catch (RuntimeException e) {
                throw fail(unexpected(e, id, "the call"), null);
            } catch (Error e) {
                // The Error goes on as it is; the listeners still hear that the call ended.
                if (call != null) {
                    fail(unexpected(e, id, "the call"), null);
                }
                throw e;
            }
        }

        private ChatResponse callBlocking(MemberState m, ChatRequest r) {
            return m.client().chat(r);
        }

        /** Opens a member's stream and waits for its first chunk, so that failover stays possible. */
        private ChatStream openStream(MemberState m, ChatRequest r) {
            ChatStream s = m.client().stream(r);
            try {
                s.hasNext();
                return s;
            } catch (RuntimeException e) {
                s.close();
                throw e;
            }
        }

        /** Asks the policy for the route; a policy that fails fails the call. */
        private void chooseRoute() {
            try {
                route = Objects.requireNonNull(policy.route(request, members), "the routing policy's route");
            } catch (InferenceException e) {
                if (call != null && e instanceof BudgetExceededException) {
                    events.budgetRefused(call, (BudgetExceededException) e);
                }
                throw fail(e, null);
            } catch (RuntimeException e) {
                throw fail(unexpected(e, id, "the routing policy"), null);
            }
            if (LOG.isDebugEnabled()) {
                LOG.debug("{}: route {}: {}", id, route.candidates(), route.reason());
            }
            if (route.spilledOver() && spilloverPrimary != null && members.containsKey(spilloverPrimary)) {
                spilledOver(members.get(spilloverPrimary));
            }
        }

        /**
         * Tells the listeners that the full spillover primary sent the call on to its overflow, once per call:
         * a call the policy spilled meets the primary again behind its overflow, and a retry round may too.
         */
        private void spilledOver(MemberState primary) {
            if (call != null && !spilloverTold) {
                spilloverTold = true;
                events.spillover(call, primary.name(), "no free slot: " + primary.capacityText());
            }
        }

        /** Goes down the route until a member succeeds; the winner's slot (and trial, if any) is still held. */
        private <T> Attempted<T> run(MemberCall<T> call) {
            chooseRoute();
            List<String> order = new ArrayList<>(route.candidates());
            List<MemberState> circuitsOpen = new ArrayList<>();
            boolean skippedOtherwise = false;
            int made = 0;
            int round = 0;
            Duration waited = Duration.ZERO;
            InferenceException last = null;
            while (true) {
                Duration retryAfter = null;
                boolean retryable = false;
                for (int i = 0; i < order.size() && made < retry.maxAttempts(); i++) {
                    checkActive(last);
                    MemberState m = members.get(order.get(i));
                    if (m == null) {
                        continue;
                    }
                    String served = requested == null ? null : m.modelFor(requested);
                    if (skipIfUnfit(m, requested, served)) {
                        // It will not fit in a later round either: drop it from the order.
                        order.remove(i--);
                        continue;
                    }
                    MemberState.Gate gate = m.gate();
                    if (skipIfCircuitOpen(m, gate, circuitsOpen)) {
                        continue;
                    }
                    boolean acquired = false;
                    try {
                        acquired = acquire(m);
                    } finally {
                        if (!acquired) {
                            m.probeDone(gate);
                        }
                    }
                    if (!acquired) {
                        skippedOtherwise = true;
                        skipNoSlot(m);
                        continue;
                    }
                    boolean predictedCold = m.predictedCold();
                    m.started();
                    made++;
                    long since = call != null ? nanoTime.getAsLong() : 0; // read only for listeners
                    int number = attemptStarted(m, served, predictedCold);
                    InferenceException e = null;
                    boolean handedOver = false;
                    try {
                        T value = call.run(m, forAttempt(served));
                        attemptEnded(
                                m,
                                number,
                                since,
                                value instanceof ChatResponse ? ((ChatResponse) value).receipt() : null,
                                null);
                        noteWinner(m, last, served);
                        handedOver = true;
                        return new Attempted<>(m, value, predictedCold, gate);
                    } catch (InferenceException x) {
                        e = x;
                        attemptEnded(m, number, since, null, e);
                    } catch (RuntimeException x) {
                        e = unexpected(x, m.name(), "member " + m.name());
                        attemptEnded(m, number, since, null, e);
                    } catch (Error x) {
                        attemptEnded(m, number, since, null, unexpected(x, m.name(), "member " + m.name()));
                        throw x;
                    } finally {
                        if (!handedOver) {
                            // Whatever happened, an Error included, the slot is freed and a trial call
                            // ends: left running, it would keep the circuit open for good.
                            m.release();
                            if (e != null) {
                                m.failed(e);
                            }
                            m.probeDone(gate);
                        }
                    }
                    absorb(e, m);
                    last = e;
                    if (cancelled || !fallsBack(e)) {
                        throw fail(e, m);
                    }
                    if (e instanceof ContextLengthExceededException) {
                        longerContext(order, i, m);
                        LOG.debug("{}: context overflow on {}, trying longer contexts", id, m.name());
                        continue;
                    }
                    LOG.debug(
                            "{}: member {} failed with {}, trying the next",
                            id,
                            m.name(),
                            e.getClass().getSimpleName());
                    retryable = true;
                    retryAfter = laterRetryAfter(retryAfter, e);
                }
                if (!retryable || made >= retry.maxAttempts()) {
                    break;
                }
                round++;
                Duration wait = retry.backoff(round, retryAfter, random.getAsDouble());
                if (deadline.expiresWithin(wait)) {
                    note += "; gave up: a wait of " + inWords(wait) + " would pass the deadline";
                    break;
                }
                // Both are at most Long.MAX_VALUE nanoseconds, so the sum fits a Duration.
                waited = waited.plus(wait);
                if (waited.compareTo(retry.maxTotalWait()) > 0) {
                    note += "; gave up: waiting again would pass maxTotalWait "
                            + Deadline.saturatedMillis(retry.maxTotalWait()) + " ms";
                    break;
                }
                LOG.debug("{}: retry round {} in {}", id, round, inWords(wait));
                pause(wait);
            }
            if (last == null) {
                last = nobodyCouldTakeIt(circuitsOpen, skippedOtherwise);
            }
            throw fail(last, null);
        }

        /**
         * Why member {@code m} cannot take the request at all, or null when it can.
         *
         * @param requested the model the request names, or null
         * @param served the name {@code m} would get, or null when it serves no such model
         */
        private String unfitReason(MemberState m, String requested, String served) {
            Optional<String> unavailable = m.client().unavailableReason();
            if (unavailable.isPresent()) {
                unavailableSkipped = true;
                return "unavailable: " + unavailable.get();
            }
            if (requested != null && served == null) {
                String known = m.modelsText();
                return "does not serve model " + requested + (known.isEmpty() ? "" : " (serves " + known + ")");
            }
            if (promptTokens < 0) {
                promptTokens = TierRule.estimatePromptTokens(request);
            }
            return m.capabilities().missingFor(request, streamed, promptTokens).orElse(null);
        }

        /** The error of a call whose every candidate was skipped. */
        private InferenceException nobodyCouldTakeIt(List<MemberState> circuitsOpen, boolean skippedOtherwise) {
            if (!unfit.isEmpty() && circuitsOpen.isEmpty() && !skippedOtherwise) {
                StringBuilder sb = new StringBuilder("no member can take this request: ");
                unfit.forEach(
                        (name, why) -> sb.append(name).append(": ").append(why).append("; "));
                sb.setLength(sb.length() - 2);
                if (unavailableSkipped) {
                    // An unavailable member may come back (a runtime installed, a client rebuilt).
                    return new ProviderUnavailableException(sb.toString(), id, null, 0, null, null);
                }
                // Nothing here can take this request, now or later: trying again cannot help.
                return new InvalidRequestException(sb.toString(), id, null, 0, null, null);
            }
            if (circuitsOpen.isEmpty() || skippedOtherwise) {
                return new CapacityExceededException(
                        "no member could take the request: " + route.candidates() + " were all skipped",
                        id,
                        null,
                        0,
                        null,
                        null);
            }
            StringBuilder sb = new StringBuilder("all members' circuits are open: ");
            Duration first = null;
            for (int i = 0; i < circuitsOpen.size(); i++) {
                MemberState m = circuitsOpen.get(i);
                Optional<Duration> in = m.halfOpensIn();
                sb.append(i == 0 ? "" : ", ").append(m.name()).append(" (");
                if (in.isEmpty()) {
                    // Closed since it was skipped, or a cooldown beyond any deadline.
                    sb.append(m.circuitOpen() ? "does not half-open" : "closed again");
                } else if (in.get().isZero()) {
                    sb.append("trial call in progress");
                } else {
                    sb.append("half-opens in ").append(inWords(in.get()));
                }
                sb.append(')');
                if (in.isPresent() && (first == null || in.get().compareTo(first) < 0)) {
                    first = in.get();
                }
            }
            return new ProviderUnavailableException(sb.toString(), id, null, 0, first, null);
        }

        /** Waits between rounds; the default sleeper wakes early on a cancel. */
        private void pause(Duration wait) {
            try {
                if (sleeper == THREAD_SLEEP) {
                    cancelSignal.await(Deadline.saturatedNanos(wait), TimeUnit.NANOSECONDS);
                } else {
                    sleeper.sleep(wait);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw fail(new CancelledException("interrupted while backing off", id, null, 0, null, e), null);
            }
        }

        private void checkActive(InferenceException last) {
            if (cancelled) {
                throw fail(new CancelledException("call cancelled", id, null, 0, null, null), null);
            }
            if (deadline.isExpired()) {
                throw fail(new InferenceTimeoutException("the request's deadline passed", id, null, true, last), null);
            }
        }

        private boolean acquire(MemberState m) {
            Duration wait = m.name().equals(spilloverPrimary) ? deadline.limit(waitForSlot) : Duration.ZERO;
            long before = nanoTime.getAsLong();
            try {
                boolean got = m.tryAcquire(wait);
                if (!wait.isZero()) {
                    queueTime = queueTime.plusNanos(nanoTime.getAsLong() - before);
                }
                return got;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw fail(new CancelledException("interrupted while waiting for a slot", id, null, 0, null, e), null);
            }
        }

        /**
         * The request for one attempt: naming {@code served} (the member's name for the model asked for,
         * or null to leave the model as it is), with the time left before the deadline as its timeout.
         */
        private ChatRequest forAttempt(String served) {
            boolean rename = served != null && !served.equals(request.model().orElse(null));
            if (deadline.isNone() && !rename) {
                return request;
            }
            ChatRequest.Builder b = request.toBuilder();
            if (rename) {
                b.model(served);
            }
            if (!deadline.isNone()) {
                long left = Math.max(1, deadline.remainingNanos());
                b.options(request.options().toBuilder()
                        .deadline(null)
                        .timeout(Duration.ofNanos(left))
                        .build());
            }
            return b.build();
        }

        /** Moves members with a longer context right after position {@code i}, dropping shorter ones. */
        private void longerContext(List<String> order, int i, MemberState failed) {
            int have = failed.options().contextLength();
            List<MemberState> longer = new ArrayList<>();
            for (MemberState s : members.values()) {
                int c = s.options().contextLength();
                if (s != failed && c > 0 && (have == 0 || c > have)) {
                    longer.add(s);
                }
            }
            longer.sort((a, b) ->
                    Integer.compare(a.options().contextLength(), b.options().contextLength()));
            List<String> rest = new ArrayList<>(order.subList(i + 1, order.size()));
            order.subList(i + 1, order.size()).clear();
            for (MemberState s : longer) {
                order.add(s.name());
            }
            for (String name : rest) {
                MemberState s = members.get(name);
                int c = s == null ? 0 : s.options().contextLength();
                if (!order.contains(name) && (have == 0 || c == 0 || c > have)) {
                    order.add(name);
                }
            }
            note += "; context overflow on " + failed.name() + (longer.isEmpty() ? "" : ", trying longer contexts");
        }

        private void skipped(MemberState m, String why) {
            attempts.add(new Attempt(m.name(), "", "routing", Attempt.Outcome.SKIPPED, Duration.ZERO, why));
        }

        /**
         * Whether member {@code m} cannot take the request at all; the first time it is met, the skip is
         * recorded with why.
         */
        private boolean skipIfUnfit(MemberState m, String requested, String served) {
            String why = unfitReason(m, requested, served);
            if (why == null) {
                return false;
            }
            if (unfit.putIfAbsent(m.name(), why) == null) {
                skipped(m, why);
                note += "; skipped " + m.name() + ": " + why;
            }
            return true;
        }

        /** Whether member {@code m}'s circuit is open; if so, the skip is recorded and {@code m} noted as open. */
        private boolean skipIfCircuitOpen(MemberState m, MemberState.Gate gate, List<MemberState> circuitsOpen) {
            if (gate != MemberState.Gate.OPEN) {
                return false;
            }
            skipped(m, "circuit open after repeated failures");
            if (!circuitsOpen.contains(m)) {
                circuitsOpen.add(m);
            }
            return true;
        }

        /**
         * Notes on the route how member {@code m} came to answer: after a failure ({@code last}, or null),
         * or under another name ({@code served}) for the model asked for.
         */
        private void noteWinner(MemberState m, InferenceException last, String served) {
            if (last != null) {
                note += "; fell back to " + m.name() + " after "
                        + last.getClass().getSimpleName();
            }
            if (served != null && !served.equals(requested)) {
                note += "; model " + requested + " served by " + m.name() + " as " + served;
            }
        }

        /** Member {@code m}'s answer {@code r}, recorded and carrying the whole call's receipt. */
        private ChatResponse withCallReceipt(MemberState m, ChatResponse r, boolean predictedCold) {
            recordFor(m, r.receipt());
            Receipt receipt = compose(r.receipt(), m, predictedCold, Optional.empty());
            return new ChatResponse(r.text(), r.toolCalls(), r.finishReason(), r.usage(), receipt);
        }

        /** Records the skip of a member without a free slot. */
        private void skipNoSlot(MemberState m) {
            skipped(m, "no free slot: " + m.capacityText());
            if (m.name().equals(spilloverPrimary)) {
                note = "; spilled over: " + m.name() + " at " + m.capacityText();
                spilledOver(m);
            }
        }

        private void absorb(InferenceException e, MemberState m) {
            failures++;
            Optional<Receipt> partial = e.partialReceipt();
            partial.ifPresent(r -> recordFor(m, r));
            if (partial.isPresent()) {
                attempts.addAll(partial.get().attempts());
                cost = cost.add(partial.get().cost());
                costEstimated |= partial.get().costEstimated();
            } else {
                attempts.add(new Attempt(
                        m.name(),
                        "",
                        "routing",
                        Attempt.Outcome.FAILED,
                        Duration.ZERO,
                        e.getClass().getSimpleName()));
            }
        }

        /** The receipt of the whole call, built around the answering member's receipt. */
        Receipt compose(Receipt member, MemberState m, boolean predictedCold, Optional<Duration> ttft) {
            List<Attempt> all =
                    new ArrayList<>(attempts.size() + member.attempts().size());
            all.addAll(attempts);
            all.addAll(member.attempts());
            String routeText =
                    route.reason() + note + (member.route().isEmpty() ? "" : "; " + m.name() + ": " + member.route());
            // The member's facts carry over (usage, compute and instance time, bytes, attributes); the
            // whole call's timing, route, attempts and summed cost replace the member's own.
            Receipt r = member.toBuilder()
                    .route(routeText)
                    .routeFacts(routeFacts(failures > 0))
                    .attempts(all)
                    .startedAt(startedAt)
                    .totalTime(Duration.ofNanos(nanoTime.getAsLong() - startNanos))
                    .timeToFirstToken(ttft.isPresent() ? ttft : member.timeToFirstToken())
                    .queueTime(queueTime.plus(member.queueTime()))
                    .coldStart(member.coldStart().withPredicted(predictedCold))
                    .cost(cost.add(member.cost()))
                    .costEstimated(costEstimated || member.costEstimated())
                    .id(call != null ? call.id() : null)
                    .build();
            m.succeeded(member, predictedCold);
            recorded(r);
            if (call != null && told.compareAndSet(false, true)) {
                events.completed(call, r);
            }
            return r;
        }

        /** Attaches the receipt of everything tried to a failure. */
        InferenceException fail(InferenceException e, MemberState m) {
            String routeText = route == null ? "" : route.reason() + note;
            Receipt r = Receipt.builder()
                    .providerId(m != null ? m.name() : id)
                    .deploymentKind(
                            m != null
                                    ? m.info().deploymentKind()
                                    : members.values().iterator().next().info().deploymentKind())
                    .model(request.model().orElse(""))
                    .route(routeText)
                    .routeFacts(routeFacts(failures > 1))
                    .attempts(attempts)
                    .startedAt(startedAt)
                    .totalTime(Duration.ofNanos(nanoTime.getAsLong() - startNanos))
                    .queueTime(queueTime)
                    .cost(cost)
                    .costEstimated(costEstimated)
                    .sessionId(request.options().sessionId().orElse(null))
                    .tags(request.options().tags())
                    .id(call != null ? call.id() : null)
                    .build();
            recorded(r);
            e.withPartialReceipt(r);
            if (call != null && told.compareAndSet(false, true)) {
                events.failed(call, e);
            }
            return e;
        }

        /**
         * The routing decision as facts: the route's tier; spilled over when the policy put the spillover
         * primary behind its overflow because it was full ({@link Route#spilledOver()}), or the primary was skipped
         * here for want of a free slot; the members skipped, from the attempts routing passed over.
         *
         * @param fellBack whether a member's failure moved the call on to another attempt
         */
        private RouteFacts routeFacts(boolean fellBack) {
            RouteFacts.Builder b = RouteFacts.builder()
                    .tier(route == null ? null : route.tier())
                    .fellBack(fellBack)
                    .spilledOver(route != null && route.spilledOver());
            for (Attempt a : attempts) {
                if (a.outcome() == Attempt.Outcome.SKIPPED) {
                    b.skipped(a.providerId(), a.error());
                    if (a.providerId().equals(spilloverPrimary)
                            && a.error() != null
                            && a.error().startsWith("no free slot")) {
                        b.spilledOver(true);
                    }
                }
            }
            return b.build();
        }

        /** Tells the policy of the receipt; a policy that throws is logged and never fails the call. */
        private void recorded(Receipt r) {
            try {
                policy.recorded(request, route, r);
            } catch (RuntimeException e) {
                LOG.warn(
                        "{}: the routing policy threw {} on a finished call's receipt; ignored",
                        id,
                        e.getClass().getSimpleName(),
                        e);
            }
        }

        /**
         * The asynchronous form of {@link #run}: the same walk down the route, made of steps that each end
         * by handing over to a member's future, a backoff timer or (for a slot wait) a pool thread, so that
         * no thread waits on a member. Steps run one after another, never two at once, each on the thread
         * that ended the one before; the future completes once, at the end.
         */
        final class AsyncCall {
            private final CompletableFuture<ChatResponse> future;
            private List<String> order;
            private final List<MemberState> circuitsOpen = new ArrayList<>();
            private boolean skippedOtherwise;
            private int made;
            private int round;
            private Duration waited = Duration.ZERO;
            private InferenceException last;
            private int next;
            private Duration retryAfter;
            private boolean retryable;

            AsyncCall(CompletableFuture<ChatResponse> future) {
                this.future = future;
            }

            /** Routes the call and makes its first attempt, on the caller's thread. */
            void start() {
                try {
                    chooseRoute();
                    order = new ArrayList<>(route.candidates());
                    advance();
                } catch (Throwable t) {
                    end(t);
                }
            }

            /**
             * Goes down the candidates from {@code next} until an attempt is on its way (its completion goes
             * on), a backoff is scheduled, or the call has ended.
             */
            private void advance() {
                try {
                    while (next < order.size() && made < retry.maxAttempts()) {
                        checkActive(last);
                        MemberState m = members.get(order.get(next));
                        if (m == null) {
                            next++;
                            continue;
                        }
                        String served = requested == null ? null : m.modelFor(requested);
                        if (skipIfUnfit(m, requested, served)) {
                            // It will not fit in a later round either: drop it from the order.
                            order.remove(next);
                            continue;
                        }
                        MemberState.Gate gate = m.gate();
                        if (skipIfCircuitOpen(m, gate, circuitsOpen)) {
                            next++;
                            continue;
                        }
                        boolean acquired = false;
                        boolean handedOver = false;
                        try {
                            acquired = m.tryAcquire(Duration.ZERO);
                            if (!acquired
                                    && m.name().equals(spilloverPrimary)
                                    && !deadline.limit(waitForSlot).isZero()) {
                                // The one wait that needs a thread: a slot on the spillover primary.
                                waitForSlot(m, gate, served);
                                handedOver = true;
                                return;
                            }
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            throw fail(
                                    new CancelledException(
                                            "interrupted while waiting for a slot", id, null, 0, null, e),
                                    null);
                        } finally {
                            if (!acquired && !handedOver) {
                                m.probeDone(gate);
                            }
                        }
                        if (!acquired) {
                            skippedOtherwise = true;
                            skipNoSlot(m);
                            next++;
                            continue;
                        }
                        attempt(m, gate, served);
                        return;
                    }
                    endOfRound();
                } catch (Throwable t) {
                    end(t);
                }
            }

            /**
             * Waits for a slot on a pool thread, then goes on from there; with a time source of the caller's,
             * looks for a slot on its timer instead.
             */
            private void waitForSlot(MemberState m, MemberState.Gate gate, String served) {
                if (timer != null) {
                    long now = nanoTime.getAsLong();
                    pollForSlot(m, gate, served, now, now + Deadline.saturatedNanos(deadline.limit(waitForSlot)));
                    return;
                }
                Runnable wait = () -> {
                    boolean acquired = false;
                    try {
                        acquired = acquire(m);
                    } catch (Throwable t) {
                        m.probeDone(gate);
                        end(t);
                        return;
                    }
                    slotWaitEnded(m, gate, served, acquired);
                };
                try {
                    executor().execute(wait);
                } catch (RejectedExecutionException | IllegalStateException e) {
                    m.probeDone(gate);
                    end(fail(new CancelledException("client is closed", id, null, 0, null, e), null));
                }
            }

            /**
             * Looks for a free slot every {@link #SLOT_POLL} on the time source's timer until {@code
             * untilNanos}, then calls the member, or skips it as full.
             */
            private void pollForSlot(MemberState m, MemberState.Gate gate, String served, long since, long untilNanos) {
                long left = untilNanos - nanoTime.getAsLong();
                timer.schedule(Duration.ofNanos(Math.max(0, Math.min(SLOT_POLL.toNanos(), left))), () -> {
                    boolean got;
                    long now;
                    try {
                        checkActive(last);
                        got = m.tryAcquire(Duration.ZERO);
                        now = nanoTime.getAsLong();
                    } catch (Throwable t) {
                        m.probeDone(gate);
                        end(t);
                        return;
                    }
                    if (!got && untilNanos - now > 0) {
                        pollForSlot(m, gate, served, since, untilNanos);
                        return;
                    }
                    queueTime = queueTime.plusNanos(now - since);
                    slotWaitEnded(m, gate, served, got);
                });
            }

            /** A wait for a slot ended: the call goes to the member, or on past it as full. */
            private void slotWaitEnded(MemberState m, MemberState.Gate gate, String served, boolean acquired) {
                if (!acquired) {
                    m.probeDone(gate);
                    skippedOtherwise = true;
                    skipNoSlot(m);
                    next++;
                    advance();
                    return;
                }
                try {
                    attempt(m, gate, served);
                } catch (Throwable t) {
                    end(t);
                }
            }

            /**
             * Calls a member whose slot is held, under the model name it serves; its future's completion
             * takes the call on.
             */
            private void attempt(MemberState m, MemberState.Gate gate, String served) {
                boolean predictedCold = m.predictedCold();
                m.started();
                made++;
                long since = call != null ? nanoTime.getAsLong() : 0; // read only for listeners
                int number = attemptStarted(m, served, predictedCold);
                CompletableFuture<ChatResponse> f;
                try {
                    f = Objects.requireNonNull(m.client().chatAsync(forAttempt(served)), "member's future");
                } catch (InferenceException e) {
                    attemptEnded(m, number, since, null, e);
                    failed(m, gate, e);
                    return;
                } catch (RuntimeException e) {
                    InferenceException ie = unexpected(e, m.name(), "member " + m.name());
                    attemptEnded(m, number, since, null, ie);
                    failed(m, gate, ie);
                    return;
                } catch (Throwable t) {
                    // An Error from the member itself: the slot and a trial are freed, the call fails.
                    attemptEnded(m, number, since, null, unexpected(t, m.name(), "member " + m.name()));
                    m.release();
                    m.probeDone(gate);
                    throw t;
                }
                current = f;
                if (cancelled) {
                    f.cancel(true);
                }
                f.whenComplete((r, t) -> {
                    if (t == null) {
                        attemptEnded(m, number, since, r == null ? null : r.receipt(), null);
                        answered(m, gate, predictedCold, r, served);
                    } else {
                        InferenceException e = fromFuture(m, t);
                        attemptEnded(m, number, since, null, e);
                        failed(m, gate, e);
                    }
                });
            }

            private InferenceException fromFuture(MemberState m, Throwable t) {
                while (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) {
                    t = t.getCause();
                }
                if (t instanceof CancellationException) {
                    return new CancelledException("call cancelled", m.name(), null, 0, null, t);
                }
                return unexpected(t, m.name(), "member " + m.name());
            }

            /** A member answered: the call ends with its answer and the whole call's receipt. */
            private void answered(
                    MemberState m, MemberState.Gate gate, boolean predictedCold, ChatResponse r, String served) {
                try {
                    noteWinner(m, last, served);
                    Objects.requireNonNull(r, "member's answer");
                    end(withCallReceipt(m, r, predictedCold));
                } catch (RuntimeException e) {
                    // The member answered, but its answer could not be used (a null receipt, say).
                    end(fail(unexpected(e, m.name(), "member " + m.name() + "'s answer"), m));
                } catch (Throwable t) {
                    end(t);
                } finally {
                    m.release();
                    m.probeDone(gate);
                }
            }

            /** A member failed: the call falls back, or ends, as {@link #run} decides. */
            private void failed(MemberState m, MemberState.Gate gate, InferenceException e) {
                try {
                    m.release();
                    m.failed(e);
                    m.probeDone(gate);
                    absorb(e, m);
                    last = e;
                    if (cancelled || !fallsBack(e)) {
                        end(fail(e, m));
                        return;
                    }
                    if (e instanceof ContextLengthExceededException) {
                        longerContext(order, next, m);
                        LOG.debug("{}: context overflow on {}, trying longer contexts", id, m.name());
                    } else {
                        LOG.debug(
                                "{}: member {} failed with {}, trying the next",
                                id,
                                m.name(),
                                e.getClass().getSimpleName());
                        retryable = true;
                        retryAfter = laterRetryAfter(retryAfter, e);
                    }
                } catch (Throwable t) {
                    end(t);
                    return;
                }
                next++;
                advance();
            }

            /** Every candidate of this round was tried: waits a backoff and goes round again, or ends. */
            private void endOfRound() {
                if (retryable && made < retry.maxAttempts()) {
                    round++;
                    Duration wait = retry.backoff(round, retryAfter, random.getAsDouble());
                    if (deadline.expiresWithin(wait)) {
                        note += "; gave up: a wait of " + inWords(wait) + " would pass the deadline";
                    } else {
                        // Both are at most Long.MAX_VALUE nanoseconds, so the sum fits a Duration.
                        Duration total = waited.plus(wait);
                        if (total.compareTo(retry.maxTotalWait()) > 0) {
                            note += "; gave up: waiting again would pass maxTotalWait "
                                    + Deadline.saturatedMillis(retry.maxTotalWait()) + " ms";
                        } else {
                            waited = total;
                            LOG.debug("{}: retry round {} in {}", id, round, inWords(wait));
                            pause(wait);
                            return;
                        }
                    }
                }
                if (last == null) {
                    last = nobodyCouldTakeIt(circuitsOpen, skippedOtherwise);
                }
                end(fail(last, null));
            }

            /**
             * Waits between rounds on a timer (the default sleeper; a cancel cuts it short) or, with a sleeper
             * of the caller's, on a pool thread; then starts the next round on a pool thread.
             */
            private void pause(Duration wait) {
                Runnable nextRound = () -> {
                    next = 0;
                    retryAfter = null;
                    retryable = false;
                    advance();
                };
                if (timer != null) {
                    // The time source's timer waits; a cancel ends the wait at once.
                    CompletableFuture<Void> p = new CompletableFuture<>();
                    pausing = p;
                    TimeSource.Scheduled t = timer.schedule(wait, () -> p.complete(null));
                    if (cancelled) {
                        t.cancel();
                        p.complete(null);
                    }
                    p.whenComplete((v, x) -> nextRound.run());
                    return;
                }
                if (sleeper != THREAD_SLEEP) {
                    onPool(() -> {
                        try {
                            sleeper.sleep(wait);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            end(fail(
                                    new CancelledException("interrupted while backing off", id, null, 0, null, e),
                                    null));
                            return;
                        }
                        nextRound.run();
                    });
                    return;
                }
                CompletableFuture<Void> p = new CompletableFuture<>();
                pausing = p;
                if (cancelled) {
                    p.complete(null);
                }
                p.completeOnTimeout(null, Deadline.saturatedNanos(wait), TimeUnit.NANOSECONDS)
                        .whenComplete((v, t) -> onPool(nextRound));
            }

            /** Runs a step on one of the client's threads; a closed client ends the call instead. */
            private void onPool(Runnable step) {
                try {
                    executor().execute(step);
                } catch (RejectedExecutionException | IllegalStateException e) {
                    end(fail(new CancelledException("client is closed", id, null, 0, null, e), null));
                }
            }

            /** Ends the call with an answer. */
            private void end(ChatResponse answer) {
                future.complete(answer);
            }

            /**
             * Ends the call with what the walk threw: an {@link InferenceException} comes from the walk's own
             * checks, which attach the receipt ({@link #fail}) before throwing; anything else is unexpected
             * and gets its receipt here.
             */
            private void end(Throwable t) {
                future.completeExceptionally(
                        t instanceof InferenceException ? t : fail(unexpected(t, id, "the call"), null));
            }
        }
    }

    @FunctionalInterface
    private interface MemberCall<T> {
        T run(MemberState member, ChatRequest request);
    }

    /** A member's answer (or open stream), with what its call needs to end the member's part later. */
    private static final class Attempted<T> {
        final MemberState member;
        final T value;
        final boolean predictedCold;
        final MemberState.Gate gate;

        Attempted(MemberState member, T value, boolean predictedCold, MemberState.Gate gate) {
            this.member = member;
            this.value = value;
            this.predictedCold = predictedCold;
            this.gate = gate;
        }
    }

    /**
     * A member's stream passed through; holds the member's slot until it ends. Its reader and a close on
     * another thread may race to end it: whichever comes first settles the call (success, failure or
     * cancellation) under {@code lock}, so the policy hears of the call once, the slot and a trial call are
     * freed once, and a reader whose read fails because of the close gets the close's {@link
     * CancelledException}, partial receipt included.
     */
    private final class RoutedStream extends PulledStream {
        private final Execution execution;
        private final MemberState member;
        private final ChatStream inner;
        private final boolean predictedCold;
        private final MemberState.Gate gate;
        private final long openedNanos;
        private final Object lock = new Object();
        private volatile boolean closeRequested;
        private boolean settled;
        private InferenceException failure;
        private boolean released;
        private long firstChunkNanos;

        RoutedStream(Execution execution, Attempted<ChatStream> opened) {
            this.execution = execution;
            this.member = opened.member;
            this.inner = opened.value;
            this.predictedCold = opened.predictedCold;
            this.gate = opened.gate;
            this.openedNanos = nanoTime.getAsLong();
        }

        @Override
        protected ChatChunk pull() {
            ChatChunk c;
            try {
                if (!inner.hasNext()) {
                    return null;
                }
                c = inner.next();
            } catch (InferenceException e) {
                throw failed(e);
            } catch (RuntimeException e) {
                throw failed(unexpected(e, member.name(), "member " + member.name() + "'s stream"));
            }
            if (firstChunkNanos == 0) {
                firstChunkNanos = nanoTime.getAsLong();
                if (execution.call != null) {
                    events.firstToken(execution.call, Duration.ofNanos(firstChunkNanos - execution.startNanos));
                }
            }
            return c;
        }

        /** The member's stream failed under the reader: the call fails, unless a close settled it first. */
        private InferenceException failed(InferenceException e) {
            end();
            try {
                synchronized (lock) {
                    if (!settled) {
                        settled = true;
                        if (closeRequested) {
                            // The close broke the read; the member is not to blame.
                            failure = cancelled(e);
                        } else {
                            member.failed(e);
                            member.probeDone(gate);
                            execution.absorb(e, member);
                            failure = recordFailure(execution.fail(e, member));
                        }
                    }
                    return failure;
                }
            } finally {
                release();
            }
        }

        @Override
        protected ChatResponse finish() {
            try {
                synchronized (lock) {
                    if (settled) {
                        // A close settled the call while the last chunk was being read.
                        throw failure;
                    }
                    settled = true;
                    try {
                        ChatResponse r = inner.response();
                        Optional<Duration> ttft = firstChunkNanos == 0
                                ? Optional.empty()
                                : Optional.of(Duration.ofNanos(firstChunkNanos - execution.startNanos));
                        recordFor(member, r.receipt());
                        Receipt receipt = execution.compose(r.receipt(), member, predictedCold, ttft);
                        return new ChatResponse(r.text(), r.toolCalls(), r.finishReason(), r.usage(), receipt);
                    } catch (RuntimeException e) {
                        member.probeDone(gate);
                        failure = recordFailure(execution.fail(
                                unexpected(e, member.name(), "member " + member.name() + "'s answer"), member));
                        throw failure;
                    }
                }
            } finally {
                release();
            }
        }

        /**
         * Cancels the call unless it has ended. Closes the member's stream first (which wakes a blocked
         * reader), then settles the call as cancelled if the reader did not settle it meanwhile, and only
         * then marks the stream ended.
         */
        @Override
        public void close() {
            synchronized (lock) {
                if (settled) {
                    return;
                }
                closeRequested = true;
            }
            try {
                inner.close();
            } catch (RuntimeException e) {
                LOG.debug(
                        "{}: closing member {}'s stream threw {}",
                        id,
                        member.name(),
                        e.getClass().getSimpleName());
            }
            synchronized (lock) {
                if (!settled) {
                    settled = true;
                    failure = cancelled(null);
                }
            }
            // Ended only once settled: a reader on another thread that sees the end finds the outcome (the
            // answer, or the cancellation with its receipt) in response().
            end();
            release();
        }

        /**
         * The call's cancellation, with the member's part of the receipt when the member's stream has one
         * (its own {@link CancelledException}, or the failure of the read the close broke). Under {@code
         * lock}.
         */
        private InferenceException cancelled(InferenceException memberSaid) {
            member.probeDone(gate);
            InferenceException fromMember = memberSaid;
            if ((fromMember == null || fromMember.partialReceipt().isEmpty()) && inner instanceof PulledStream) {
                fromMember = ((PulledStream) inner).failure().orElse(fromMember);
            }
            if (fromMember != null && fromMember.partialReceipt().isPresent()) {
                execution.absorb(fromMember, member);
            } else {
                execution.attempts.add(new Attempt(
                        member.name(),
                        "",
                        "routing",
                        Attempt.Outcome.CANCELLED,
                        Duration.ofNanos(nanoTime.getAsLong() - openedNanos),
                        "stream closed before its end"));
            }
            return recordFailure(execution.fail(
                    new CancelledException("stream closed before its end", id, null, 0, null, fromMember), member));
        }

        private void release() {
            synchronized (lock) {
                if (released) {
                    return;
                }
                released = true;
            }
            member.release();
        }
    }

    /** One member as added to the builder. */
    private static final class Spec {
        final InferenceClient client;
        final MemberOptions options;

        Spec(InferenceClient client, MemberOptions options) {
            this.client = client;
            this.options = options;
        }
    }

    /** Builds a {@link HybridClient}. Not thread-safe. */
    public static final class Builder {
        private String id = "hybrid";
        private final Map<String, Spec> members = new LinkedHashMap<>();
        private RoutingPolicy policy;
        private RetryPolicy retry = RetryPolicy.DEFAULTS;
        private CircuitBreakerConfig circuitBreaker = CircuitBreakerConfig.DEFAULTS;
        private Clock clock = Clock.systemUTC();
        private LongSupplier nanoTime = System::nanoTime;
        private Sleeper sleeper = THREAD_SLEEP;
        private TimeSource time;
        private final List<InferenceListener> listeners = new ArrayList<>();
        private final List<AutoCloseable> resources = new ArrayList<>();
        private DoubleSupplier random = () -> ThreadLocalRandom.current().nextDouble();
        private boolean closeMembers = true;
        private CostLedger ledger;
        private SharedState sharedState;
        private Duration slotLease = DEFAULT_SLOT_LEASE;

        private Builder() {}

        /** The id shown in errors and the client's info. */
        public Builder id(String id) {
            this.id = Objects.requireNonNull(id, "id");
            return this;
        }

        /** Adds a member with default options. */
        public Builder member(String name, InferenceClient client) {
            return member(name, client, MemberOptions.DEFAULTS);
        }

        /** Adds a member. */
        public Builder member(String name, InferenceClient client, MemberOptions options) {
            Objects.requireNonNull(name, "name");
            if (members.containsKey(name)) {
                throw new IllegalArgumentException("member \"" + name + "\" is added twice");
            }
            members.put(
                    name,
                    new Spec(Objects.requireNonNull(client, "client"), Objects.requireNonNull(options, "options")));
            return this;
        }

        /** The routing policy; without one, members are tried in the order added. */
        public Builder policy(RoutingPolicy policy) {
            this.policy = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /** Retries and backoff. */
        public Builder retry(RetryPolicy retry) {
            this.retry = Objects.requireNonNull(retry, "retry");
            return this;
        }

        /**
         * The circuit breaker: after {@code failureThreshold} retryable failures in a row a member is
         * skipped for {@code cooldown}; then one probe call decides whether it closes again. Keeps the rate
         * rules of an earlier {@link #circuitBreaker(CircuitBreakerConfig)}.
         */
        public Builder circuitBreaker(int failureThreshold, Duration cooldown) {
            this.circuitBreaker = circuitBreaker.toBuilder()
                    .failureThreshold(failureThreshold)
                    .cooldown(Objects.requireNonNull(cooldown, "cooldown"))
                    .build();
            return this;
        }

        /**
         * The circuit breaker in full: failures in a row, and the failure-rate and slow-call rules over a
         * window of recent calls (see {@link CircuitBreakerConfig}). {@link CircuitBreakerConfig#DEFAULTS}
         * unless set.
         */
        public Builder circuitBreaker(CircuitBreakerConfig config) {
            this.circuitBreaker = Objects.requireNonNull(config, "config");
            return this;
        }

        /** The wall clock of receipts. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /** The monotonic time source of idle times, cooldowns and deadlines (for tests). */
        public Builder nanoTime(LongSupplier nanoTime) {
            this.nanoTime = Objects.requireNonNull(nanoTime, "nanoTime");
            return this;
        }

        /**
         * Reads time and sets timers on {@code time}: its clock dates receipts, its nanosecond counter times
         * calls, idle periods, cooldowns and deadlines, and {@link #chatAsync} waits out backoffs and slot
         * waits, and keep-warm pings are scheduled, on its timer, without holding a thread (a simulation's
         * virtual time, as the planner uses). Replaces {@link #clock} and {@link #nanoTime}. Without it,
         * the system's clocks and this client's own threads.
         */
        public Builder timeSource(TimeSource time) {
            this.time = Objects.requireNonNull(time, "time");
            this.clock = time.clock();
            this.nanoTime = time::nanoTime;
            return this;
        }

        /**
         * Adds a listener of this client's calls (see {@link InferenceListener}); listeners are called in the
         * order added.
         */
        public Builder listener(InferenceListener listener) {
            listeners.add(Objects.requireNonNull(listener, "listener"));
            return this;
        }

        /**
         * Adds something this client owns: it is closed when the client closes, after the members (a listener
         * built from configuration, so that it sees their last calls), in the order added.
         */
        public Builder onClose(AutoCloseable resource) {
            resources.add(Objects.requireNonNull(resource, "resource"));
            return this;
        }

        /** How retry rounds wait (for tests). */
        public Builder sleeper(Sleeper sleeper) {
            this.sleeper = Objects.requireNonNull(sleeper, "sleeper");
            return this;
        }

        /** The source of jitter, values in [0, 1) (for tests). */
        public Builder random(DoubleSupplier random) {
            this.random = Objects.requireNonNull(random, "random");
            return this;
        }

        /**
         * The ledger this client's costs add up in. The routing policy's budgets count in it (a {@link
         * StandardRoutingPolicy} built without a ledger is bound to it; one built with another ledger is
         * refused), and members without a ledger of their own have their receipts recorded in it, with the
         * capacity of always-on members registered there too. A member that records into another ledger is
         * refused. Without it, {@link HybridClient#ledger()} is the ledger all members share, if any.
         */
        public Builder ledger(CostLedger ledger) {
            this.ledger = Objects.requireNonNull(ledger, "ledger");
            return this;
        }

        /**
         * Shares this client's routing state with every instance given the same store: the budgets of a
         * {@link StandardRoutingPolicy} count in it (each call holding back its expected cost until its
         * receipt comes, see {@link StandardRoutingPolicy#route}), a circuit one instance opens is skipped by
         * the others for its cooldown, a member's {@code maxInFlight} holds across instances (each slot is
         * leased there for {@link #sharedSlotLease}), and a member's keep-warm ping goes out from one
         * instance per period. Keys are this client's {@link #id} and the members' and budgets' names, so
         * instances share when they use the same names.
         *
         * <p>When the store cannot answer, no call fails: the client goes on with its own state (its own
         * budgets counted from the last totals it read, its own circuits and limits, its own pings), logs
         * one warning, shows it in {@link HybridClient#sharedStateStatus()}, and asks the store again every
         * second until it answers, when the spend counted meanwhile is added there. The store stays yours:
         * closing the client does not close it (one built from configuration is closed with the client).
         */
        public Builder sharedState(SharedState state) {
            this.sharedState = Objects.requireNonNull(state, "state");
            return this;
        }

        /**
         * How long a shared in-flight slot is leased: a call that takes longer may find its slot given to
         * another, and the slots of an instance that stops without giving them back come free after this.
         * {@value #DEFAULT_SLOT_LEASE_MINUTES} minutes unless set.
         */
        public Builder sharedSlotLease(Duration lease) {
            Objects.requireNonNull(lease, "lease");
            if (lease.isNegative() || lease.isZero()) {
                throw new IllegalArgumentException("the slot lease must be positive, got " + lease);
            }
            this.slotLease = lease;
            return this;
        }

        /** Whether closing this client closes its members; true unless set. */
        public Builder closeMembers(boolean closeMembers) {
            this.closeMembers = closeMembers;
            return this;
        }

        /** The client; fails when it has no member or the policy names an unknown one. */
        public HybridClient build() {
            if (members.isEmpty()) {
                throw new IllegalArgumentException("a hybrid client needs at least one member");
            }
            return new HybridClient(this);
        }
    }
}
