package dev.hybridinference.cloudrun;

import com.google.auth.oauth2.GoogleCredentials;
import com.google.auth.oauth2.ServiceAccountCredentials;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.ColdStartTimeoutException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.http.OpenAiCodec;
import dev.hybridinference.core.http.OpenAiTransport;
import dev.hybridinference.core.http.RequestHeaders;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.internal.DaemonThreads;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ColdStartWatch;
import dev.hybridinference.core.spi.ProviderBuilder;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.Secrets;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An OpenAI-compatible LLM container (vLLM, TGI, Ollama) on Google Cloud Run behind {@link
 * dev.hybridinference.core.InferenceClient}, on the core's HTTP SPI ({@link OpenAiTransport}).
 *
 * <ul>
 *   <li><b>Auth.</b> A private service gets {@code Authorization: Bearer <ID token>}, a Google-signed ID token
 *       whose audience is the service URL, minted from application default credentials (the metadata server
 *       on Google Cloud) or a service account's key file, cached and refreshed before it expires; a public
 *       service gets none.
 *   <li><b>Cold starts.</b> A GPU service scales to zero, and a request that finds no instance waits while
 *       one starts; past the platform's wait it gets 429, and 503, or 500 "no available instance", occur
 *       while instances start. Each fails the attempt as a retryable {@link ColdStartTimeoutException}, so
 *       the core's retry layer backs off within the caller's deadline; this client never loops. The success
 *       that follows records the cold start on its receipt with its duration (from the first such answer);
 *       a request the platform held is recognised by its latency ({@link ColdStartWatch}). {@code
 *       minInstances} and {@code idleTimeout} reach the router through {@link ClientInfo}: with one or more
 *       minimum instances no cold start is predicted.
 *   <li><b>Keep warm</b> (optional): a ping every interval keeps one instance alive. It costs what the
 *       instance costs: {@link #keepWarmCostPerDay()} says how much, the log says it at start, and the
 *       ledger's capacity report counts the pinged instance's life.
 *   <li><b>Costs.</b> Instance-based billing (GPU services) as {@link Pricing.PerInstanceSecond}: each call
 *       is charged its share of the instances' life as the core estimates it, idle time to scale-in
 *       included, every figure an estimate since the platform's instance count is not visible; request-based
 *       billing ({@link Pricing.PerComputeTime} with a per-request fee) for CPU services.
 * </ul>
 */
public final class CloudRunClient extends AbstractProviderClient {
    /** The provider type in configuration. */
    public static final String TYPE = "cloudrun";

    private static final Logger LOG = LoggerFactory.getLogger(CloudRunClient.class);

    private final OpenAiTransport http;
    private final OpenAiTransport.Server server;
    private final String model;

    /**
     * The attributes of every result ({@code service}: the service URL), redacted once here rather than on
     * each call: a result built with a map {@link Secrets#redactedCopy} made keeps it as it is, while one built
     * with {@code attribute(..)} copies and redacts it again, credential patterns included, on every call. The
     * URL is configuration without user info, so there is nothing in it to mask later.
     */
    private final Map<String, String> attributes;

    private final ColdStartWatch watch;
    private final Duration keepWarm;
    private final ScheduledExecutorService pinger;
    private final AtomicLong pings = new AtomicLong();

    private CloudRunClient(Builder b) {
        super(b.id(), TYPE, DeploymentKind.SERVERLESS, b.pricing(), b.ledger(), b.clock());
        this.server = b.server;
        this.model = b.model;
        this.attributes = Secrets.redactedCopy(Map.of("service", server.label()));
        this.keepWarm = b.keepWarm;
        this.watch = new ColdStartWatch(b.coldStartProfile(), b.coldStartThreshold);
        RequestHeaders headers = b.tokens == null ? RequestHeaders.NONE : RequestHeaders.bearer(b.tokens);
        this.http = OpenAiTransport.builder(b.id())
                .headers(headers)
                .clock(b.clock())
                .connectTimeout(b.connectTimeout)
                .readTimeout(b.readTimeout)
                .callTimeout(b.callTimeout)
                .limits(b.limits)
                .build();
        if (keepWarm != null) {
            this.pinger = DaemonThreads.scheduler(b.id() + "-keep-warm");
            long every = keepWarm.toMillis();
            pinger.scheduleWithFixedDelay(this::ping, 0, every, TimeUnit.MILLISECONDS);
            keepWarmCostPerDay()
                    .ifPresent(cost -> LOG.info(
                            "{}: keep-warm pings every {} hold one instance alive: about ${} per day at the configured"
                                    + " pricing",
                            b.id(),
                            keepWarm,
                            cost.stripTrailingZeros().toPlainString()));
        } else {
            this.pinger = null;
        }
    }

    /** A builder; {@link Builder#serviceUrl} is required. */
    public static Builder builder() {
        return new Builder();
    }

    /** The service URL. */
    public String serviceUrl() {
        return server.label();
    }

    /** Keep-warm pings sent so far. */
    public long keepWarmPings() {
        return pings.get();
    }

    /**
     * What keeping one instance warm costs per day under the configured pricing (per-instance pricing only;
     * nothing without keep-warm pings or when minimum instances are already billed around the clock).
     */
    public Optional<BigDecimal> keepWarmCostPerDay() {
        Pricing p = pricing();
        if (keepWarm == null || !(p instanceof Pricing.PerInstanceSecond)) {
            return Optional.empty();
        }
        Pricing.PerInstanceSecond s = (Pricing.PerInstanceSecond) p;
        if (s.minInstances() > 0) {
            return Optional.empty();
        }
        return Optional.of(s.instanceCost(Duration.ofDays(1)));
    }

    @Override
    protected List<String> models() {
        return model == null ? List.of() : List.of(model);
    }

    @Override
    protected ClientInfo.ColdStartProfile coldStartProfile() {
        return watch.profile();
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        ctx.checkActive(server.label());
        long start = System.nanoTime();
        OpenAiCodec.Completion c;
        try {
            c = http.complete(server, request, model, ctx);
        } catch (InferenceException e) {
            throw failure(e);
        }
        long end = System.nanoTime();
        return ProviderResult.builder()
                .text(c.text())
                .toolCalls(c.toolCalls())
                .finishReason(c.finishReason())
                .usage(c.usage())
                .model(c.model().isEmpty() ? Objects.toString(model, "") : c.model())
                .coldStart(watch.succeeded(start, end - start, end))
                .attributes(attributes)
                .build();
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        ctx.checkActive(server.label());
        long start = System.nanoTime();
        ProviderStream stream;
        try {
            stream = http.stream(server, request, model, ctx);
        } catch (InferenceException e) {
            throw failure(e);
        }
        long opened = System.nanoTime();
        // A held request shows in the time to the response's start, whatever the answer's length.
        ColdStart cold = watch.succeeded(start, opened - start, opened);
        return new ProviderStream() {
            @Override
            public ChatChunk next() {
                return stream.next();
            }

            @Override
            public ProviderResult result() {
                ProviderResult r = stream.result();
                ProviderResult.Builder b = r.toBuilder().coldStart(cold);
                // The transport's results carry no attributes; should one ever, the service is added to them.
                return (r.attributes().isEmpty() ? b.attributes(attributes) : b.attribute("service", server.label()))
                        .build();
            }

            @Override
            public void close() {
                stream.close();
            }
        };
    }

    /**
     * The exception for a failed attempt: the platform's answers while instances start (429 after its wait,
     * 503, 500 "no available instance") become retryable cold-start timeouts, and start the cold start's
     * clock.
     */
    private InferenceException failure(InferenceException e) {
        long now = System.nanoTime();
        int status = e.statusCode();
        boolean noInstance = status == 429
                || status == 503
                || status == 500
                        && String.valueOf(e.getMessage())
                                .toLowerCase(Locale.ROOT)
                                .contains("no available instance");
        if (noInstance) {
            watch.notReady(now);
            return new ColdStartTimeoutException(
                    "no instance was available in time (HTTP " + status + " while the service scales out)",
                    id(),
                    server.label(),
                    status,
                    e.retryAfter().orElse(null),
                    e);
        }
        if (status > 0) {
            watch.failed(now);
        }
        return e;
    }

    /** One keep-warm ping: a request the service answers, which keeps an instance alive. */
    private void ping() {
        if (isClosed()) {
            return;
        }
        Instant begun = clock().instant();
        try {
            http.get(server, "v1/models", Duration.ofSeconds(30), true);
            pings.incrementAndGet();
            recordActivity(begun, clock().instant());
        } catch (RuntimeException e) {
            LOG.debug("{}: keep-warm ping failed: {}", id(), e.getMessage());
        }
    }

    @Override
    protected void doClose() {
        if (pinger != null) {
            pinger.shutdownNow();
        }
        http.shutdown();
    }

    /** Builds a {@link CloudRunClient}. Not thread-safe. */
    public static final class Builder extends ProviderBuilder<Builder> {
        private OpenAiTransport.Server server;
        private String audience;
        private Supplier<String> tokens;
        private GoogleCredentials credentials;
        private boolean noAuth;
        private String model;
        private int minInstances;
        private Duration idleTimeout = Duration.ofMinutes(15);
        private Duration keepWarm;
        private Duration coldStartThreshold = ColdStartWatch.DEFAULT_THRESHOLD;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration readTimeout = Duration.ofMinutes(5);
        private Duration callTimeout = Duration.ofMinutes(10);
        private ResponseLimits limits = ResponseLimits.DEFAULTS;
        private Pricing pricing;

        private Builder() {
            super(TYPE);
        }

        /** The service's URL, such as {@code https://llm-abc123-uc.a.run.app} (required). */
        public Builder serviceUrl(String url) {
            this.server = OpenAiTransport.Server.of(Objects.requireNonNull(url, "serviceUrl"));
            return this;
        }

        /** The ID token's audience; the service URL's origin unless set (a custom audience configured on the service). */
        public Builder audience(String audience) {
            Objects.requireNonNull(audience, "audience");
            if (audience.isBlank()) {
                throw new IllegalArgumentException("audience must not be blank");
            }
            this.audience = audience;
            return this;
        }

        /** Mints ID tokens from these credentials (they must be able to: a service account, the metadata server's). */
        public Builder credentials(GoogleCredentials credentials) {
            this.credentials = Objects.requireNonNull(credentials, "credentials");
            return this;
        }

        /** Mints ID tokens from a service account's key file. */
        public Builder serviceAccountKey(Path keyFile) {
            Objects.requireNonNull(keyFile, "keyFile");
            try (InputStream in = Files.newInputStream(keyFile)) {
                return credentials(ServiceAccountCredentials.fromStream(in));
            } catch (IOException e) {
                throw new IllegalArgumentException(
                        "cannot read the service account key " + keyFile.getFileName() + ": " + e.getMessage(), e);
            }
        }

        /**
         * Takes the ID token from a supplier of one's own (which caches and refreshes it); the token's
         * audience is the supplier's business.
         */
        public Builder idTokens(Supplier<String> tokens) {
            this.tokens = Objects.requireNonNull(tokens, "tokens");
            return this;
        }

        /** A public service: no {@code Authorization} header. */
        public Builder noAuth() {
            this.noAuth = true;
            return this;
        }

        /** The model named in the body; the server's single model when not set. */
        public Builder model(String model) {
            Objects.requireNonNull(model, "model");
            this.model = model.isBlank() ? null : model;
            return this;
        }

        /** Instances the service keeps running ({@code --min-instances}); with one or more no cold start is predicted. */
        public Builder minInstances(int n) {
            if (n < 0 || n > 1000) {
                throw new IllegalArgumentException("minInstances must be within [0, 1000], got " + n);
            }
            this.minInstances = n;
            return this;
        }

        /** How long an idle instance lives before the platform scales it in; 15 min unless set (unconfirmed default). */
        public Builder idleTimeout(Duration d) {
            this.idleTimeout = positive(d, "idleTimeout");
            return this;
        }

        /**
         * Pings the service every {@code interval} so that one instance stays warm, which costs that instance
         * around the clock; off unless set. The interval must be shorter than {@link #idleTimeout}.
         */
        public Builder keepWarm(Duration interval) {
            this.keepWarm = positive(interval, "keepWarm");
            return this;
        }

        /** How far above the warm latency a held request counts as a cold start; 1 s unless set. */
        public Builder coldStartThreshold(Duration d) {
            this.coldStartThreshold = positive(d, "coldStartThreshold");
            return this;
        }

        /** How long to wait for a connection; 10 s unless set. */
        public Builder connectTimeout(Duration d) {
            this.connectTimeout = positive(d, "connectTimeout");
            return this;
        }

        /**
         * How long a read may wait for bytes; 5 min unless set, since the first request after scale-to-zero
         * waits for the model to load.
         */
        public Builder readTimeout(Duration d) {
            this.readTimeout = positive(d, "readTimeout");
            return this;
        }

        /** The longest a call may take when the request sets no earlier deadline; 10 min unless set. */
        public Builder callTimeout(Duration d) {
            this.callTimeout = positive(d, "callTimeout");
            return this;
        }

        /** Bounds on what the service may send. */
        public Builder limits(ResponseLimits limits) {
            this.limits = Objects.requireNonNull(limits, "limits");
            return this;
        }

        /**
         * How the service bills. Unless set: instance-based at zero per instance-second with this builder's
         * {@code minInstances} and {@code idleTimeout} as the scale-in delay, so instance lifetimes are metered
         * and costs show as zero until a price is configured.
         */
        public Builder pricing(Pricing pricing) {
            this.pricing = Objects.requireNonNull(pricing, "pricing");
            return this;
        }

        Pricing pricing() {
            return pricing != null
                    ? pricing
                    : Pricing.PerInstanceSecond.perSecond(
                            BigDecimal.ZERO, minInstances, idleTimeout, Math.max(1, Math.max(minInstances, 100)));
        }

        ClientInfo.ColdStartProfile coldStartProfile() {
            // A keep-warm ping more often than the scale-in delay holds an instance, as a minimum instance would.
            boolean warm = keepWarm != null && keepWarm.compareTo(idleTimeout) < 0;
            return ClientInfo.ColdStartProfile.scalesToZero(
                    idleTimeout, warm ? Math.max(1, minInstances) : minInstances);
        }

        /** The client. */
        public CloudRunClient build() {
            if (server == null) {
                throw new IllegalStateException("serviceUrl is required");
            }
            if (keepWarm != null && keepWarm.compareTo(idleTimeout) >= 0) {
                throw new IllegalStateException("keepWarm (" + keepWarm + ") must be shorter than idleTimeout ("
                        + idleTimeout + "), or the instance scales in between pings");
            }
            if (!noAuth && tokens == null) {
                String aud = audience != null ? audience : origin(server.label());
                GoogleCredentials base = credentials;
                if (base == null) {
                    try {
                        base = GoogleCredentials.getApplicationDefault();
                    } catch (IOException e) {
                        throw new IllegalStateException(
                                "no Google application default credentials (" + e.getMessage()
                                        + "); set a service account key, or noAuth() for a public service",
                                e);
                    }
                }
                tokens = new IdTokenSource(id(), base, aud);
            }
            return new CloudRunClient(this);
        }

        /** The origin of a URL: scheme, host and port, as Cloud Run expects the audience. */
        static String origin(String url) {
            URI u = URI.create(url);
            return u.getScheme() + "://" + u.getHost() + (u.getPort() == -1 ? "" : ":" + u.getPort());
        }
    }
}
