package dev.hybridinference.vllm;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.LoadAware;
import dev.hybridinference.core.LoadSnapshot;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.http.OpenAiCodec;
import dev.hybridinference.core.http.OpenAiTransport;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.internal.DaemonThreads;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderBuilder;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.Secrets;
import dev.hybridinference.vllm.internal.LoadVocabulary;
import dev.hybridinference.vllm.internal.ModelDiscovery;
import dev.hybridinference.vllm.internal.PrometheusText;
import dev.hybridinference.vllm.internal.Replica;
import dev.hybridinference.vllm.internal.ReplicaSelector;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client of one or more vLLM replicas (or any OpenAI-compatible server: SGLang, TGI, llama.cpp's
 * llama-server, Ollama's OpenAI routes) serving the same model.
 *
 * <p>Each call goes to the least-loaded replica, or, with a session id, to the replica the id hashes to,
 * where the conversation's prefix cache lives. Load comes from each replica's Prometheus {@code /metrics},
 * read in the vocabulary of vLLM, SGLang, llama.cpp or TGI (see {@link ReplicaStatus#loadSignal()}),
 * plus the client's own in-flight count. A replica whose {@code /metrics} gives none of those is ranked
 * by the in-flight count alone, and says so in its status and once in the log.
 *
 * <p>A background monitor checks {@code /health} and reads {@code /metrics} of every replica on an
 * interval; the two are independent, so a missing health route never hides the load. A 2xx health answer
 * keeps a replica in (and ends a cooldown early); 5xx takes it out until a check passes; a route the
 * server lacks (404, 405; Ollama has none) or another 4xx gives no verdict, and the calls themselves
 * decide. A health check that cannot reach the server is retried at once on a fresh connection, and only
 * the second such check in a row takes the replica out, so a pooled connection the server closed while
 * idle never does. The monitor survives anything its work throws and logs each change of state once.
 *
 * <p>A replica that fails a call (connection refused, HTTP 5xx, a broken response) is marked down for a
 * cooldown and the call moves to the next replica; errors in the request itself (HTTP 4xx) are never
 * retried. A stream moves to another replica only before its response starts. Without a configured
 * model, the first calls discover it from {@code GET /v1/models} together, once (see {@link
 * ModelDiscovery}).
 *
 * <p>The call's cost is its attributed share of its replicas' instance time under per-instance-hour
 * pricing (the default), every attempt's share counted, failed ones included; the ledger also receives
 * the capacity's bill (the base class registers the capacity when the client is built). Each result names
 * the replica that answered in its {@code replica} attribute. Thread-safe.
 */
public final class VllmClient extends AbstractProviderClient implements LoadAware {
    /** The provider type name used in configuration. */
    public static final String TYPE = "vllm";

    private static final Logger log = LoggerFactory.getLogger(VllmClient.class);
    private static final Duration DISCOVERY_MIN_BACKOFF = Duration.ofSeconds(1);
    private static final Duration DISCOVERY_MAX_BACKOFF = Duration.ofSeconds(30);
    private static final int MAX_LOGGED_MESSAGE = 300;

    private final List<Replica> replicas;
    private final ReplicaSelector selector;
    private final OpenAiTransport transport;
    private final OpenAiTransport monitorTransport;
    private final String configuredModel;
    private final ExecutorService discoveryExecutor;
    private final ModelDiscovery discovery;
    private final long cooldownNanos;
    private final Duration scrapeTimeout;
    private final ScheduledExecutorService monitor;
    private volatile String monitorFailure;

    private VllmClient(Builder b) {
        super(b.id(), TYPE, DeploymentKind.SERVER, b.pricing(), b.ledger(), b.clock());
        List<Replica> list = new ArrayList<>();
        for (String url : b.baseUrls) {
            list.add(new Replica(list.size(), OpenAiTransport.Server.of(url)));
        }
        this.replicas = List.copyOf(list);
        this.selector = new ReplicaSelector(replicas, b.affinityMaxWaiting);
        this.transport = transport(b)
                .connectTimeout(b.connectTimeout)
                .readTimeout(b.readTimeout)
                .callTimeout(b.callTimeout)
                .build();
        // Health checks and scrapes get their own connection pool: they never queue behind calls, and a
        // health check that failed can be retried on a fresh connection by emptying this pool alone.
        this.monitorTransport = transport(b)
                .connectTimeout(b.scrapeTimeout)
                .readTimeout(b.scrapeTimeout)
                .callTimeout(b.scrapeTimeout)
                .build();
        this.configuredModel = b.model;
        this.cooldownNanos = b.replicaCooldown.toNanos();
        this.scrapeTimeout = b.scrapeTimeout;
        if (b.model == null) {
            this.discoveryExecutor = DaemonThreads.cachedPool(b.id() + "-discovery");
            this.discovery = new ModelDiscovery(
                    b.id(),
                    this::lookUpModel,
                    discoveryExecutor,
                    DISCOVERY_MIN_BACKOFF,
                    DISCOVERY_MAX_BACKOFF,
                    System::nanoTime);
        } else {
            this.discoveryExecutor = null;
            this.discovery = null;
        }
        if (b.scrapeInterval.isZero()) {
            this.monitor = null;
        } else {
            this.monitor = DaemonThreads.scheduler(b.id() + "-monitor");
            long every = b.scrapeInterval.toNanos();
            monitor.scheduleWithFixedDelay(this::monitorRound, 0, every, TimeUnit.NANOSECONDS);
        }
    }

    private static OpenAiTransport.Builder transport(Builder b) {
        return OpenAiTransport.builder(b.id())
                .apiKey(b.apiKey)
                .dialect(OpenAiCodec.Dialect.VLLM)
                .clock(b.clock())
                .idleTimeout(b.connectionIdleTimeout)
                .limits(b.limits);
    }

    /** A builder; at least one base URL is required. */
    public static Builder builder() {
        return new Builder();
    }

    /** The state of every replica, in configuration order. */
    public List<ReplicaStatus> replicas() {
        List<ReplicaStatus> out = new ArrayList<>(replicas.size());
        for (Replica r : replicas) {
            out.add(r.status());
        }
        return out;
    }

    @Override
    public LoadSnapshot load() {
        int inFlight = 0;
        int healthy = 0;
        double running = Double.NaN;
        double waiting = Double.NaN;
        double kv = Double.NaN;
        Instant observed = null;
        for (Replica r : replicas) {
            inFlight += r.inFlight();
            if (r.isUp()) {
                healthy++;
            }
            Replica.Metrics m = r.metrics();
            if (!m.known()) {
                continue;
            }
            running = addKnown(running, m.running());
            waiting = addKnown(waiting, m.waiting());
            kv = Double.isNaN(m.kvCacheUsage())
                    ? kv
                    : Double.isNaN(kv) ? m.kvCacheUsage() : Math.max(kv, m.kvCacheUsage());
            if (m.at() != null && (observed == null || m.at().isBefore(observed))) {
                observed = m.at();
            }
        }
        return new LoadSnapshot(inFlight, running, waiting, kv, healthy, observed);
    }

    private static double addKnown(double total, double v) {
        if (Double.isNaN(v)) {
            return total;
        }
        return Double.isNaN(total) ? v : total + v;
    }

    /** Checks {@code /health} and reads {@code /metrics} of every replica now, on the caller's thread. */
    public void refreshLoad() {
        scrapeAll();
    }

    /**
     * One scheduled pass. A periodic task that throws is cancelled for good by its executor, silently, so
     * nothing may leave this method: {@link #monitor(Replica)} already catches what one replica's checks
     * throw, and this catches whatever is left (an error while logging, say).
     */
    private void monitorRound() {
        try {
            scrapeAll();
            if (monitorFailure != null) {
                monitorFailure = null;
                log.info("{}: replica monitor runs cleanly again", id());
            }
        } catch (Throwable t) {
            try {
                String failure = describe(t);
                if (!failure.equals(monitorFailure)) {
                    monitorFailure = failure;
                    log.warn("{}: replica monitor pass failed, next pass as scheduled: {}", id(), failure);
                }
            } catch (Throwable ignored) {
                // Nothing more can be done here; the next pass runs as scheduled.
            }
        }
    }

    private void scrapeAll() {
        for (Replica r : replicas) {
            if (isClosed()) {
                return;
            }
            monitor(r);
        }
    }

    /**
     * Checks one replica's health and load. The two are independent: a health route that is missing or
     * failing never stops the load from being read. Anything thrown is caught, recorded as the replica's
     * load signal being absent, and logged once per change.
     */
    private void monitor(Replica r) {
        String failure = null;
        try {
            checkHealth(r);
        } catch (Throwable t) {
            failure = "health check: " + describe(t);
        }
        try {
            scrapeMetrics(r);
        } catch (Throwable t) {
            failure = (failure == null ? "" : failure + "; ") + "metrics: " + describe(t);
            reportNoLoadSignal(r, "reading /metrics failed: " + describe(t));
        }
        if (r.monitorOutcome(failure)) {
            if (failure != null) {
                log.warn("{}: monitoring replica {} failed, will keep trying: {}", id(), r.label(), failure);
            } else {
                log.info("{}: monitoring replica {} works again", id(), r.label());
            }
        }
    }

    private void checkHealth(Replica r) {
        int status;
        try {
            status = monitorTransport
                    .get(r.server(), "health", scrapeTimeout, false)
                    .status();
        } catch (InferenceException first) {
            // The pooled connection may have been closed by the server while idle: ask once more on a
            // fresh one before this check counts as failed.
            monitorTransport.evictIdleConnections();
            try {
                status = monitorTransport
                        .get(r.server(), "health", scrapeTimeout, false)
                        .status();
            } catch (InferenceException second) {
                if (r.healthFailed(true)) {
                    log.warn(
                            "{}: replica {} marked down: GET /health failed twice in a row: {}",
                            id(),
                            r.label(),
                            second.getMessage());
                }
                return;
            }
        }
        if (status / 100 == 2) {
            if (r.healthPassed()) {
                log.info("{}: replica {} is healthy (GET /health answered HTTP {})", id(), r.label(), status);
            }
        } else if (status >= 500) {
            if (r.healthFailed(false)) {
                log.warn("{}: replica {} marked down: GET /health answered HTTP {}", id(), r.label(), status);
            }
        } else if (r.healthUnavailable()) {
            log.info(
                    "{}: replica {} gives no health signal (GET /health answered HTTP {}); its calls decide whether"
                            + " it takes traffic",
                    id(),
                    r.label(),
                    status);
        }
    }

    private void scrapeMetrics(Replica r) {
        String reason;
        try {
            OpenAiTransport.HttpText t = monitorTransport.get(r.server(), "metrics", scrapeTimeout, false);
            if (t.status() == 200) {
                PrometheusText p = PrometheusText.parse(t.body());
                LoadVocabulary v = LoadVocabulary.detect(p);
                if (v != null) {
                    if (r.metrics(v.read(p, clock().instant()))) {
                        log.info("{}: replica {} has a load signal again ({} gauges)", id(), r.label(), v.name());
                    }
                    return;
                }
                reason = "GET /metrics lists none of the known load gauges (" + LoadVocabulary.knownNames() + ")";
            } else {
                reason = "GET /metrics answered HTTP " + t.status();
            }
        } catch (InferenceException e) {
            reason = "GET /metrics failed: " + e.getMessage();
        }
        reportNoLoadSignal(r, reason);
    }

    private void reportNoLoadSignal(Replica r, String reason) {
        if (r.noLoadSignal(reason)) {
            log.warn(
                    "{}: replica {} has no load signal ({}); it is ranked by this client's calls in flight alone",
                    id(),
                    r.label(),
                    reason);
        }
    }

    /** A throwable for a log line: its class and its message, redacted and shortened; never a body. */
    private static String describe(Throwable t) {
        String m = t.getMessage() == null ? "" : Secrets.redact(t.getMessage());
        if (m.length() > MAX_LOGGED_MESSAGE) {
            m = m.substring(0, MAX_LOGGED_MESSAGE) + "...";
        }
        return t instanceof InferenceException ? m : t.getClass().getSimpleName() + (m.isEmpty() ? "" : ": " + m);
    }

    @Override
    protected List<String> models() {
        String m = configuredModel != null ? configuredModel : discovery.model();
        return m == null ? List.of() : List.of(m);
    }

    /** The model to name in a request: the request's, the configured one, or the one the servers list. */
    private String model(ChatRequest request, CallContext ctx) {
        if (request.model().isPresent()) {
            return request.model().get();
        }
        if (configuredModel != null) {
            return configuredModel;
        }
        return discovery.resolve(ctx);
    }

    /**
     * Asks the replicas, in the selector's order, for the models they serve; runs on the discovery
     * thread, once for all the callers waiting. A replica that cannot answer is marked down, as after a
     * failed call, and the next one is asked.
     */
    private String lookUpModel() {
        InferenceException last = null;
        for (Replica r : selector.choose(null).order()) {
            try {
                List<String> ids = transport.listModels(r.server(), scrapeTimeout.multipliedBy(2));
                if (ids.isEmpty()) {
                    throw new InvalidRequestException(
                            "no model configured and GET /v1/models lists none; set 'model' in the configuration",
                            id(),
                            r.label(),
                            0,
                            null,
                            null);
                }
                return ids.get(0);
            } catch (InferenceException e) {
                if (!e.isRetryable()) {
                    throw e;
                }
                if (e instanceof ProviderUnavailableException || e instanceof MalformedResponseException) {
                    markDown(r, e);
                }
                last = e;
            }
        }
        throw last;
    }

    private void markDown(Replica r, InferenceException cause) {
        if (r.markDown(cooldownNanos)) {
            log.warn(
                    "{}: replica {} marked down for {} ms: {}",
                    id(),
                    r.label(),
                    TimeUnit.NANOSECONDS.toMillis(cooldownNanos),
                    cause.getMessage());
        }
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        // Every attempt reports its share of instance time to ctx as its slot is released, and the result
        // carries none, so the receipt bills the sum of the shares. Zero first: a call that fails before
        // it reaches a replica (a passed deadline, a failed model discovery) occupied none.
        ctx.addInstanceTime(Duration.ZERO);
        String model = model(request, ctx);
        return onReplicas(request, ctx, (replica, slot) -> {
            OpenAiCodec.Completion c = transport.complete(replica.server(), request, model, ctx);
            slot.release();
            return ProviderResult.builder()
                    .text(c.text())
                    .toolCalls(c.toolCalls())
                    .finishReason(c.finishReason())
                    .usage(c.usage())
                    .model(canonical(c.model(), model))
                    .attributes(replica.attributes())
                    .build();
        });
    }

    /**
     * The model the server named, as the instance of the requested name when the two are equal: the ledger
     * keys its totals by model, and a name decoded afresh on each call must be hashed afresh on each call.
     */
    private static String canonical(String answered, String requested) {
        return answered.equals(requested) ? requested : answered;
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        ctx.addInstanceTime(Duration.ZERO);
        String model = model(request, ctx);
        return onReplicas(request, ctx, (replica, slot) -> {
            ProviderStream inner = transport.stream(replica.server(), request, model, ctx);
            return new ReplicaStream(inner, slot, replica.label());
        });
    }

    /** Runs one step on the replicas in the selector's order until one succeeds or a failure is final. */
    private <T> T onReplicas(ChatRequest request, CallContext ctx, ReplicaStep<T> step) {
        ReplicaSelector.Choice choice =
                selector.choose(request.options().sessionId().orElse(null));
        ctx.route(choice.reason());
        if (log.isDebugEnabled()) {
            log.debug("{}: {}; order {}", id(), choice.reason(), labels(choice.order()));
        }
        InferenceException last = null;
        String reason = choice.reason();
        for (Replica replica : choice.order()) {
            ctx.checkActive(replica.label());
            long start = System.nanoTime();
            Replica.Slot slot = replica.enter(ctx);
            try {
                T result = step.run(replica, slot);
                ctx.addAttempt(
                        new Attempt(id(), replica.label(), reason, Attempt.Outcome.SUCCEEDED, since(start), null));
                if (last != null) {
                    ctx.route(choice.reason() + "; failed over to " + replica.label());
                }
                if (replica.callSucceeded()) {
                    log.info("{}: replica {} takes traffic again", id(), replica.label());
                }
                return result;
            } catch (Error e) {
                slot.release();
                throw e;
            } catch (RuntimeException e) {
                slot.release();
                if (!(e instanceof InferenceException)) {
                    throw e;
                }
                InferenceException ie = (InferenceException) e;
                ctx.addAttempt(new Attempt(
                        id(),
                        replica.label(),
                        reason,
                        outcome(ctx),
                        since(start),
                        ie.getClass().getSimpleName() + ": " + ie.getMessage()));
                if (!failsOver(ie, ctx)) {
                    throw ie;
                }
                if (ie instanceof ProviderUnavailableException || ie instanceof MalformedResponseException) {
                    markDown(replica, ie);
                }
                if (log.isDebugEnabled()) {
                    log.debug(
                            "{}: attempt on {} failed, trying the next replica: {}",
                            id(),
                            replica.label(),
                            ie.getMessage());
                }
                last = ie;
                reason = "failover after " + replica.label() + " failed";
            }
        }
        throw last != null
                ? last
                : new ProviderUnavailableException("no replica configured", id(), null, 0, null, null);
    }

    private static List<String> labels(List<Replica> order) {
        List<String> out = new ArrayList<>(order.size());
        for (Replica r : order) {
            out.add(r.label());
        }
        return out;
    }

    private static Attempt.Outcome outcome(CallContext ctx) {
        return ctx.isCancelled() ? Attempt.Outcome.CANCELLED : Attempt.Outcome.FAILED;
    }

    private static boolean failsOver(InferenceException e, CallContext ctx) {
        if (ctx.isCancelled() || !e.isRetryable()) {
            return false;
        }
        return !(e instanceof InferenceTimeoutException && ((InferenceTimeoutException) e).isDeadlineExceeded());
    }

    private static Duration since(long startNanos) {
        return Duration.ofNanos(System.nanoTime() - startNanos);
    }

    @Override
    protected void doClose() {
        if (monitor != null) {
            monitor.shutdownNow();
        }
        if (discoveryExecutor != null) {
            discoveryExecutor.shutdownNow();
        }
        transport.shutdown();
        monitorTransport.shutdown();
    }

    @FunctionalInterface
    private interface ReplicaStep<T> {
        T run(Replica replica, Replica.Slot slot);
    }

    /**
     * A stream that frees its replica slot when it ends, however it ends; releasing the slot reports its
     * instance time to the call's context, which the receipt bills.
     */
    private static final class ReplicaStream implements ProviderStream {
        private final ProviderStream inner;
        private final Replica.Slot slot;
        private final String replica;

        ReplicaStream(ProviderStream inner, Replica.Slot slot, String replica) {
            this.inner = inner;
            this.slot = slot;
            this.replica = replica;
        }

        @Override
        public ChatChunk next() {
            return inner.next();
        }

        @Override
        public ProviderResult result() {
            slot.release();
            ProviderResult r = inner.result();
            return r == null
                    ? null
                    : r.toBuilder().attribute("replica", replica).build();
        }

        @Override
        public void close() {
            try {
                inner.close();
            } finally {
                slot.release();
            }
        }
    }

    /** Builds a {@link VllmClient}. Not thread-safe. */
    public static final class Builder extends ProviderBuilder<Builder> {
        private final List<String> baseUrls = new ArrayList<>();
        private String apiKey;
        private String model;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration connectionIdleTimeout = OpenAiTransport.DEFAULT_IDLE_TIMEOUT;
        private ResponseLimits limits = ResponseLimits.DEFAULTS;
        private Duration readTimeout = Duration.ofSeconds(60);
        private Duration callTimeout = Duration.ofMinutes(5);
        private Duration scrapeInterval = Duration.ofSeconds(5);
        private Duration scrapeTimeout = Duration.ofSeconds(2);
        private Duration replicaCooldown = Duration.ofSeconds(10);
        private double affinityMaxWaiting = 8;
        private Pricing pricing;

        private Builder() {
            super(TYPE);
        }

        /** Adds a replica's base URL ({@code http://host:8000}; a trailing {@code /v1} is accepted). */
        public Builder baseUrl(String url) {
            OpenAiTransport.Server.of(url);
            baseUrls.add(url);
            return this;
        }

        /** Adds several replicas. */
        public Builder baseUrls(List<String> urls) {
            urls.forEach(this::baseUrl);
            return this;
        }

        /** The API key vLLM was started with ({@code --api-key}); sent as a bearer token. */
        public Builder apiKey(String apiKey) {
            this.apiKey = apiKey;
            return this;
        }

        /** The model to request; discovered from {@code /v1/models} when not set. */
        public Builder model(String model) {
            this.model = model;
            return this;
        }

        /**
         * How long an idle pooled connection is kept (default 4 s): shorter than the server's own idle
         * timeout (5 s for uvicorn, which vLLM runs on, and for llama.cpp's server), so the pool lets go of
         * a connection before the server closes it.
         */
        public Builder connectionIdleTimeout(Duration d) {
            if (d == null || d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("connectionIdleTimeout must be positive, got " + d);
            }
            this.connectionIdleTimeout = d;
            return this;
        }

        /**
         * Bounds on what the server may send (line length, body sizes, tool calls, assembled answer size);
         * a server that exceeds one fails the call with a {@code MalformedResponseException}.
         */
        public Builder limits(ResponseLimits limits) {
            this.limits = Objects.requireNonNull(limits, "limits");
            return this;
        }

        /** Limit on opening a connection. */
        public Builder connectTimeout(Duration d) {
            this.connectTimeout = nonNegative(d, "connectTimeout");
            return this;
        }

        /** Limit on the gap between two reads (between stream chunks). */
        public Builder readTimeout(Duration d) {
            this.readTimeout = nonNegative(d, "readTimeout");
            return this;
        }

        /** Limit on a whole call, streaming included; zero for none. */
        public Builder callTimeout(Duration d) {
            this.callTimeout = nonNegative(d, "callTimeout");
            return this;
        }

        /** How often {@code /health} is checked and {@code /metrics} read; zero turns the monitor off. */
        public Builder scrapeInterval(Duration d) {
            this.scrapeInterval = nonNegative(d, "scrapeInterval");
            return this;
        }

        /** Limit on one scrape or health check. */
        public Builder scrapeTimeout(Duration d) {
            this.scrapeTimeout = nonNegative(d, "scrapeTimeout");
            return this;
        }

        /** How long a failed replica is skipped, unless a health check passes first. */
        public Builder replicaCooldown(Duration d) {
            this.replicaCooldown = nonNegative(d, "replicaCooldown");
            return this;
        }

        /** A session leaves its replica for the least-loaded one when that many requests wait there. */
        public Builder affinityMaxWaiting(double waiting) {
            if (!(waiting >= 0)) {
                throw new IllegalArgumentException("affinityMaxWaiting must not be negative, got " + waiting);
            }
            this.affinityMaxWaiting = waiting;
            return this;
        }

        /** How the replicas bill; per instance hour at $0 per replica unless set. */
        public Builder pricing(Pricing pricing) {
            this.pricing = Objects.requireNonNull(pricing, "pricing");
            return this;
        }

        private Pricing pricing() {
            return pricing != null
                    ? pricing
                    : new Pricing.PerInstanceHour(BigDecimal.ZERO, Math.max(1, baseUrls.size()));
        }

        private static Duration nonNegative(Duration d, String name) {
            if (d == null || d.isNegative()) {
                throw new IllegalArgumentException(name + " must not be negative, got " + d);
            }
            return d;
        }

        /** Builds the client and starts monitoring its replicas. */
        public VllmClient build() {
            if (baseUrls.isEmpty()) {
                throw new IllegalArgumentException("at least one base URL is required");
            }
            return new VllmClient(this);
        }
    }
}
