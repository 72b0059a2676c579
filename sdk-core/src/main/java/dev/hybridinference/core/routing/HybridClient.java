package dev.hybridinference.core.routing;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.CapacityExceededException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.internal.DaemonThreads;
import dev.hybridinference.core.internal.LazyPool;
import dev.hybridinference.core.internal.PulledStream;
import dev.hybridinference.core.internal.Streams;
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
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;

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
 * <p>The receipt names the member that answered and carries every attempt of every member (skipped ones
 * included), the route with its reason, and the summed cost of all attempts. Thread-safe; closing it
 * closes the members.
 */
public final class HybridClient implements InferenceClient {
    /** Waits between retry rounds; replaceable so that tests never sleep. */
    @FunctionalInterface
    public interface Sleeper {
        /** Waits {@code duration}. */
        void sleep(Duration duration) throws InterruptedException;
    }

    private final String id;
    private final Map<String, MemberState> members;
    private final RoutingPolicy policy;
    private final RetryPolicy retry;
    private final String spilloverPrimary;
    private final Duration waitForSlot;
    private final Clock clock;
    private final LongSupplier nanoTime;
    private final Sleeper sleeper;
    private final DoubleSupplier random;
    private final boolean closeMembers;
    private final ScheduledExecutorService keepWarm;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final LazyPool pool;

    private HybridClient(Builder b) {
        this.id = b.id;
        this.pool = new LazyPool(b.id);
        this.clock = b.clock;
        this.nanoTime = b.nanoTime;
        Map<String, MemberState> m = new LinkedHashMap<>();
        b.members.forEach((name, spec) -> m.put(
                name, new MemberState(name, spec.client, spec.options, nanoTime, b.failureThreshold, b.cooldown)));
        this.members = Collections.unmodifiableMap(m);
        this.policy = b.policy != null
                ? b.policy
                : (request, all) -> new Route(List.copyOf(all.keySet()), "members in order", null);
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
        this.random = b.random;
        this.closeMembers = b.closeMembers;
        boolean anyKeepWarm =
                members.values().stream().anyMatch(s -> s.options().keepWarmEvery() != null);
        this.keepWarm = anyKeepWarm ? DaemonThreads.scheduler(id + "-keep-warm") : null;
        if (keepWarm != null) {
            for (MemberState s : members.values()) {
                Duration every = s.options().keepWarmEvery();
                if (every != null) {
                    keepWarm.scheduleWithFixedDelay(
                            () -> keepWarm(s), every.toNanos(), every.toNanos(), TimeUnit.NANOSECONDS);
                }
            }
        }
    }

    /** A builder. */
    public static Builder builder() {
        return new Builder();
    }

    /** The members' state, by name, in the order they were added. */
    public Map<String, MemberState> members() {
        return members;
    }

    @Override
    public ClientInfo info() {
        MemberState first = members.values().iterator().next();
        Set<String> models = new LinkedHashSet<>();
        for (MemberState s : members.values()) {
            models.addAll(s.info().models());
        }
        return new ClientInfo(
                id,
                "hybrid",
                first.info().deploymentKind(),
                List.copyOf(models),
                first.info().pricing());
    }

    @Override
    public ChatResponse chat(ChatRequest request) {
        ensureOpen();
        return new Execution(request, false).chat();
    }

    @Override
    public CompletableFuture<ChatResponse> chatAsync(ChatRequest request) {
        ensureOpen();
        Execution execution = new Execution(request, true);
        CompletableFuture<ChatResponse> future = new CompletableFuture<>();
        future.whenComplete((r, t) -> {
            if (future.isCancelled()) {
                execution.cancel();
            }
        });
        executor().execute(() -> {
            try {
                future.complete(execution.chat());
            } catch (RuntimeException e) {
                future.completeExceptionally(e);
            }
        });
        return future;
    }

    @Override
    public ChatStream stream(ChatRequest request) {
        ensureOpen();
        return new Execution(request, false).stream();
    }

    @Override
    public Cancellable stream(ChatRequest request, StreamHandler handler) {
        Objects.requireNonNull(handler, "handler");
        ensureOpen();
        return Streams.push(() -> stream(request), handler, executor(), id);
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
        if (closeMembers) {
            RuntimeException first = null;
            for (MemberState s : members.values()) {
                try {
                    s.client().close();
                } catch (RuntimeException e) {
                    if (first == null) {
                        first = e;
                    } else {
                        first.addSuppressed(e);
                    }
                }
            }
            if (first != null) {
                throw first;
            }
        }
    }

    private void ensureOpen() {
        if (closed.get()) {
            throw new IllegalStateException(id + ": client is closed");
        }
    }

    private ExecutorService executor() {
        return pool.get();
    }

    /** Sends a one-token call to an idle member so that the platform keeps it warm. */
    private void keepWarm(MemberState s) {
        if (closed.get() || s.inFlight() > 0 || !s.idleFor(s.options().keepWarmEvery())) {
            return;
        }
        ChatRequest ping = ChatRequest.builder()
                .user("ping")
                .maxTokens(1)
                .options(RequestOptions.builder().tag("purpose", "keep-warm").build())
                .build();
        boolean predictedCold = s.predictedCold();
        s.started();
        try {
            s.succeeded(s.client().chat(ping).receipt(), predictedCold);
        } catch (InferenceException e) {
            s.failed(e);
        } catch (RuntimeException e) {
            // A failing ping must not stop the schedule; the next call will see the member's state.
        }
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

    /** One call through the composite client: its route, attempts and accumulated cost. */
    private final class Execution {
        private final ChatRequest request;
        private final boolean async;
        private final long startNanos = nanoTime.getAsLong();
        private final Instant startedAt = clock.instant();
        private final long deadlineNanos;
        private final List<Attempt> attempts = new ArrayList<>(4);
        private BigDecimal cost = BigDecimal.ZERO;
        private Duration queueTime = Duration.ZERO;
        private Route route;
        private String note = "";
        private volatile boolean cancelled;
        private volatile CompletableFuture<ChatResponse> current;

        Execution(ChatRequest request, boolean async) {
            this.request = request;
            this.async = async;
            long deadline = Long.MAX_VALUE;
            Optional<Duration> timeout = request.options().timeout();
            if (timeout.isPresent()) {
                deadline = startNanos + timeout.get().toNanos();
            }
            Optional<Instant> absolute = request.options().deadline();
            if (absolute.isPresent()) {
                deadline = Math.min(
                        deadline,
                        startNanos + Duration.between(startedAt, absolute.get()).toNanos());
            }
            this.deadlineNanos = deadline;
        }

        void cancel() {
            cancelled = true;
            CompletableFuture<ChatResponse> f = current;
            if (f != null) {
                f.cancel(true);
            }
        }

        ChatResponse chat() {
            Attempted<ChatResponse> done = run(this::callBlocking);
            MemberState m = done.member;
            try {
                Receipt receipt = compose(done.value.receipt(), m, done.predictedCold, Optional.empty());
                ChatResponse r = done.value;
                return new ChatResponse(r.text(), r.toolCalls(), r.finishReason(), r.usage(), receipt);
            } finally {
                m.release();
            }
        }

        ChatStream stream() {
            Attempted<ChatStream> opened = run(this::openStream);
            return new RoutedStream(this, opened);
        }

        private ChatResponse callBlocking(MemberState m, ChatRequest r) {
            if (!async) {
                return m.client().chat(r);
            }
            CompletableFuture<ChatResponse> f = m.client().chatAsync(r);
            current = f;
            if (cancelled) {
                f.cancel(true);
            }
            try {
                return f.get();
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof InferenceException) {
                    throw (InferenceException) cause;
                }
                throw new CompletionException(cause);
            } catch (CancellationException e) {
                throw new CancelledException("call cancelled", m.name(), null, 0, null, e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                f.cancel(true);
                throw new CancelledException("interrupted", m.name(), null, 0, null, e);
            }
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

        /** Goes down the route until a member succeeds; the winner's slot is still held. */
        private <T> Attempted<T> run(MemberCall<T> call) {
            try {
                route = policy.route(request, members);
            } catch (InferenceException e) {
                throw fail(e, null);
            }
            List<String> order = new ArrayList<>(route.candidates());
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
                    MemberState.Gate gate = m.gate();
                    if (gate == MemberState.Gate.OPEN) {
                        skipped(m, "circuit open after repeated failures");
                        continue;
                    }
                    if (!acquire(m)) {
                        m.probeDone(gate);
                        skipped(m, "no free slot: " + m.capacityText());
                        if (m.name().equals(spilloverPrimary)) {
                            note = "; spilled over: " + m.name() + " at " + m.capacityText();
                        }
                        continue;
                    }
                    boolean predictedCold = m.predictedCold();
                    m.started();
                    made++;
                    try {
                        T value = call.run(m, forAttempt());
                        if (last != null) {
                            note += "; fell back to " + m.name() + " after "
                                    + last.getClass().getSimpleName();
                        }
                        return new Attempted<>(m, value, predictedCold);
                    } catch (InferenceException e) {
                        m.release();
                        m.failed(e);
                        absorb(e, m);
                        last = e;
                        if (cancelled || !fallsBack(e)) {
                            throw fail(e, m);
                        }
                        if (e instanceof ContextLengthExceededException) {
                            longerContext(order, i, m);
                            continue;
                        }
                        retryable = true;
                        if (e.retryAfter().isPresent()
                                && (retryAfter == null || e.retryAfter().get().compareTo(retryAfter) > 0)) {
                            retryAfter = e.retryAfter().get();
                        }
                    } catch (RuntimeException e) {
                        m.release();
                        throw e;
                    }
                }
                if (!retryable || made >= retry.maxAttempts()) {
                    break;
                }
                round++;
                Duration wait = retry.backoff(round, retryAfter, random.getAsDouble());
                if (deadlineNanos != Long.MAX_VALUE && nanoTime.getAsLong() + wait.toNanos() >= deadlineNanos) {
                    break;
                }
                waited = waited.plus(wait);
                if (waited.compareTo(retry.maxTotalWait()) > 0) {
                    note += "; gave up: waiting again would pass maxTotalWait "
                            + retry.maxTotalWait().toMillis() + " ms";
                    break;
                }
                try {
                    sleeper.sleep(wait);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw fail(new CancelledException("interrupted while backing off", id, null, 0, null, e), null);
                }
            }
            if (last == null) {
                last = new CapacityExceededException(
                        "no member could take the request: " + route.candidates() + " were all skipped",
                        id,
                        null,
                        0,
                        null,
                        null);
            }
            throw fail(last, null);
        }

        private void checkActive(InferenceException last) {
            if (cancelled) {
                throw fail(new CancelledException("call cancelled", id, null, 0, null, null), null);
            }
            if (deadlineNanos != Long.MAX_VALUE && nanoTime.getAsLong() >= deadlineNanos) {
                throw fail(new InferenceTimeoutException("the request's deadline passed", id, null, true, last), null);
            }
        }

        private boolean acquire(MemberState m) {
            Duration wait = m.name().equals(spilloverPrimary) ? waitForSlot : Duration.ZERO;
            if (!wait.isZero() && deadlineNanos != Long.MAX_VALUE) {
                long left = deadlineNanos - nanoTime.getAsLong();
                wait = Duration.ofNanos(Math.max(0, Math.min(wait.toNanos(), left)));
            }
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

        /** The request with the time left before the deadline as its timeout. */
        private ChatRequest forAttempt() {
            if (deadlineNanos == Long.MAX_VALUE) {
                return request;
            }
            long left = Math.max(1, deadlineNanos - nanoTime.getAsLong());
            RequestOptions o = request.options().toBuilder()
                    .deadline(null)
                    .timeout(Duration.ofNanos(left))
                    .build();
            return request.toBuilder().options(o).build();
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

        private void absorb(InferenceException e, MemberState m) {
            Optional<Receipt> partial = e.partialReceipt();
            if (partial.isPresent()) {
                attempts.addAll(partial.get().attempts());
                cost = cost.add(partial.get().cost());
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
            Receipt r = new Receipt(
                    member.providerId(),
                    member.deploymentKind(),
                    member.model(),
                    routeText,
                    all,
                    startedAt,
                    Duration.ofNanos(nanoTime.getAsLong() - startNanos),
                    ttft.isPresent() ? ttft : member.timeToFirstToken(),
                    queueTime.plus(member.queueTime()),
                    new ColdStart(predictedCold, member.coldStart().observed()),
                    member.usage(),
                    member.instanceTime(),
                    cost.add(member.cost()),
                    member.sessionId(),
                    member.tags());
            m.succeeded(member, predictedCold);
            policy.recorded(request, r);
            return r;
        }

        /** Attaches the receipt of everything tried to a failure. */
        InferenceException fail(InferenceException e, MemberState m) {
            String routeText = route == null ? "" : route.reason() + note;
            Receipt r = new Receipt(
                    m != null ? m.name() : id,
                    m != null
                            ? m.info().deploymentKind()
                            : members.values().iterator().next().info().deploymentKind(),
                    request.model().orElse(""),
                    routeText,
                    attempts,
                    startedAt,
                    Duration.ofNanos(nanoTime.getAsLong() - startNanos),
                    Optional.empty(),
                    queueTime,
                    null,
                    Usage.ZERO,
                    Duration.ZERO,
                    cost,
                    request.options().sessionId().orElse(null),
                    request.options().tags());
            policy.recorded(request, r);
            e.withPartialReceipt(r);
            return e;
        }
    }

    @FunctionalInterface
    private interface MemberCall<T> {
        T run(MemberState member, ChatRequest request);
    }

    private static final class Attempted<T> {
        final MemberState member;
        final T value;
        final boolean predictedCold;

        Attempted(MemberState member, T value, boolean predictedCold) {
            this.member = member;
            this.value = value;
            this.predictedCold = predictedCold;
        }
    }

    /** A member's stream passed through; holds the member's slot until it ends. */
    private final class RoutedStream extends PulledStream {
        private final Execution execution;
        private final MemberState member;
        private final ChatStream inner;
        private final boolean predictedCold;
        private boolean released;
        private long firstChunkNanos;

        RoutedStream(Execution execution, Attempted<ChatStream> opened) {
            this.execution = execution;
            this.member = opened.member;
            this.inner = opened.value;
            this.predictedCold = opened.predictedCold;
        }

        @Override
        protected ChatChunk pull() {
            try {
                if (!inner.hasNext()) {
                    return null;
                }
            } catch (InferenceException e) {
                end();
                release();
                member.failed(e);
                execution.absorb(e, member);
                throw execution.fail(e, member);
            }
            if (firstChunkNanos == 0) {
                firstChunkNanos = nanoTime.getAsLong();
            }
            return inner.next();
        }

        @Override
        protected ChatResponse finish() {
            ChatResponse r = inner.response();
            Optional<Duration> ttft = Optional.of(Duration.ofNanos(firstChunkNanos - execution.startNanos));
            Receipt receipt = execution.compose(
                    r.receipt(), member, predictedCold, firstChunkNanos == 0 ? Optional.empty() : ttft);
            release();
            return new ChatResponse(r.text(), r.toolCalls(), r.finishReason(), r.usage(), receipt);
        }

        @Override
        public void close() {
            end();
            inner.close();
            release();
        }

        private synchronized void release() {
            if (!released) {
                released = true;
                member.release();
            }
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
        private int failureThreshold = 5;
        private Duration cooldown = Duration.ofSeconds(30);
        private Clock clock = Clock.systemUTC();
        private LongSupplier nanoTime = System::nanoTime;
        private Sleeper sleeper = d -> TimeUnit.NANOSECONDS.sleep(d.toNanos());
        private DoubleSupplier random = () -> ThreadLocalRandom.current().nextDouble();
        private boolean closeMembers = true;

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
         * skipped for {@code cooldown}; then one probe call decides whether it closes again.
         */
        public Builder circuitBreaker(int failureThreshold, Duration cooldown) {
            if (failureThreshold < 1) {
                throw new IllegalArgumentException("failureThreshold must be at least 1, got " + failureThreshold);
            }
            this.failureThreshold = failureThreshold;
            this.cooldown = Objects.requireNonNull(cooldown, "cooldown");
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
