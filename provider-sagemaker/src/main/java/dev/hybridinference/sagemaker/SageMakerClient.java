package dev.hybridinference.sagemaker;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.ColdStartTimeoutException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.http.StreamAssembler;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ColdStartWatch;
import dev.hybridinference.core.spi.ProviderBuilder;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.Secrets;
import dev.hybridinference.core.spi.StreamBridge;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.AwsSessionCredentials;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.http.Protocol;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.SdkEventLoopGroup;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.sagemakerruntime.SageMakerRuntimeAsyncClient;
import software.amazon.awssdk.services.sagemakerruntime.SageMakerRuntimeClient;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointRequest;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointResponse;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointWithResponseStreamRequest;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointWithResponseStreamResponseHandler;
import software.amazon.awssdk.services.sagemakerruntime.model.PayloadPart;
import software.amazon.awssdk.services.sagemakerruntime.model.ResponseStream;
import software.amazon.awssdk.services.sagemakerruntime.model.ValidationErrorException;

/**
 * A SageMaker endpoint behind {@link dev.hybridinference.core.InferenceClient}: a real-time endpoint on
 * instances, a serverless endpoint that scales to zero, or an inference component, called through the AWS
 * SDK for Java v2.
 *
 * <ul>
 *   <li>Blocking calls use {@code InvokeEndpoint} on the synchronous client (Apache HTTP); asynchronous
 *       calls the same operation on the asynchronous client (Netty), holding no thread; streams use {@code
 *       InvokeEndpointWithResponseStream}, whose payload parts are decoded as they arrive and handed to the
 *       reader through the core's bounded {@link StreamBridge}, with demand: a slow reader stops the reading
 *       of the socket. {@code stream()} returns once the response has started; closing the stream cancels
 *       the subscription and the call.
 *   <li>The SDK's own retries are off on both clients ({@link AwsRetryStrategy#doNotRetry()}): its streaming
 *       retry re-delivers parts already handed over. The core's retry layer retries, within the caller's
 *       deadline, which also bounds each call ({@code apiCallTimeout}).
 *   <li>The body is the container's: {@link PayloadCodec} encodes and decodes it.
 *   <li>Cold starts: {@code ModelNotReadyException} fails the attempt as a retryable {@link
 *       ColdStartTimeoutException}; the success that follows records the cold start observed, lasting from
 *       the first not-ready answer. A request the platform held while starting capacity is recognised by
 *       its latency ({@link ColdStartWatch}).
 *   <li>Stateful sessions (opt-in): a caller's {@link dev.hybridinference.core.RequestOptions#sessionId()}
 *       opens a session on its first blocking call ({@code NEW_SESSION}) and pins later calls to it.
 * </ul>
 *
 * <p>Receipts carry the attributes {@code endpoint}, {@code region}, {@code variant} (the production
 * variant that answered), {@code deployment} and, for a component, {@code inferenceComponent}.
 */
public final class SageMakerClient extends AbstractProviderClient {
    /** The provider type in configuration. */
    public static final String TYPE = "sagemaker";

    /** The most variants whose attribute maps are kept. */
    private static final int MAX_CACHED_VARIANTS = 32;

    /** How the endpoint is deployed, which decides how it bills and whether it cold starts. */
    public enum Deployment {
        /** Instances that stay up (billed per instance hour). */
        REAL_TIME("real-time"),
        /** Serverless Inference: CPU only, scales to zero, billed per GB-second of memory. */
        SERVERLESS("serverless"),
        /** An inference component: reserved accelerators, copies that may scale to zero. */
        INFERENCE_COMPONENT("inference-component");

        private final String configName;

        Deployment(String configName) {
            this.configName = configName;
        }

        /** The name in configuration. */
        public String configName() {
            return configName;
        }

        /** The deployment named {@code name} in configuration. */
        public static Deployment of(String name) {
            for (Deployment d : values()) {
                if (d.configName.equals(name)) {
                    return d;
                }
            }
            throw new IllegalArgumentException(
                    "unknown deployment '" + name + "'; expected real-time, serverless or inference-component");
        }

        DeploymentKind kind() {
            return this == REAL_TIME ? DeploymentKind.SERVER : DeploymentKind.SERVERLESS;
        }
    }

    private final String endpointName;
    private final String region;
    private final String inferenceComponent;
    private final String targetVariant;
    private final String customAttributes;
    private final String model;
    private final PayloadCodec codec;
    private final ResponseLimits limits;
    private final Deployment deployment;
    private final Duration callTimeout;
    private final int streamBuffer;
    private final String label;
    private final ColdStartWatch watch;
    private final Sessions sessions;
    private final SageMakerRuntimeClient sync;
    private final java.util.function.Supplier<SageMakerRuntimeAsyncClient> asyncFactory;
    private final Object asyncLock = new Object();
    /** The attributes of a result whose variant is not known, redacted once. */
    private final Map<String, String> attributesWithoutVariant;
    /** The attributes of a result by the variant that answered, redacted once. */
    private final Map<String, Map<String, String>> attributesByVariant = new ConcurrentHashMap<>();

    private volatile SageMakerRuntimeAsyncClient async;
    private SdkEventLoopGroup eventLoops;

    private SageMakerClient(Builder b) {
        super(b.id(), TYPE, b.deployment.kind(), b.pricing(), b.ledger(), b.clock());
        this.endpointName = b.endpointName;
        this.region = b.region;
        this.inferenceComponent = b.inferenceComponent;
        this.targetVariant = b.targetVariant;
        this.customAttributes = b.customAttributes;
        this.model = b.model == null ? "" : b.model;
        this.codec = b.codec;
        this.limits = b.limits;
        this.deployment = b.deployment;
        this.callTimeout = b.callTimeout;
        this.streamBuffer = b.streamBuffer;
        this.label = "sagemaker:" + region + "/" + endpointName
                + (inferenceComponent == null ? "" : "/" + inferenceComponent);
        this.attributesWithoutVariant = Secrets.redactedCopy(rawAttributes(null));
        this.watch = new ColdStartWatch(b.coldStartProfile(), b.coldStartThreshold);
        this.sessions = b.statefulSessions ? new Sessions(b.maxSessions, b.clock()) : null;
        AwsCredentialsProvider credentials = b.credentials();
        Region r = Region.of(region);
        this.sync = SageMakerRuntimeClient.builder()
                .region(r)
                .credentialsProvider(credentials)
                .applyMutation(c -> {
                    if (b.endpointOverride != null) {
                        c.endpointOverride(b.endpointOverride);
                    }
                })
                .overrideConfiguration(
                        o -> o.retryStrategy(AwsRetryStrategy.doNotRetry()).apiCallTimeout(callTimeout))
                .httpClientBuilder(ApacheHttpClient.builder()
                        .connectionTimeout(b.connectTimeout)
                        .socketTimeout(b.readTimeout)
                        .maxConnections(b.maxConnections))
                .build();
        // The asynchronous client (Netty, with its event-loop threads) is made on first use: an application
        // that only makes blocking calls never starts it.
        this.asyncFactory = () -> SageMakerRuntimeAsyncClient.builder()
                .region(r)
                .credentialsProvider(credentials)
                .applyMutation(c -> {
                    if (b.endpointOverride != null) {
                        c.endpointOverride(b.endpointOverride);
                    }
                })
                .overrideConfiguration(
                        o -> o.retryStrategy(AwsRetryStrategy.doNotRetry()).apiCallTimeout(callTimeout))
                .httpClientBuilder(NettyNioAsyncHttpClient.builder()
                        .eventLoopGroup(eventLoops())
                        .protocol(Protocol.HTTP1_1)
                        .connectionTimeout(b.connectTimeout)
                        .readTimeout(b.readTimeout)
                        .maxConcurrency(b.maxConnections))
                .build();
    }

    /** A builder; {@link Builder#endpointName} and {@link Builder#region} are required. */
    public static Builder builder() {
        return new Builder();
    }

    /** The endpoint's name. */
    public String endpointName() {
        return endpointName;
    }

    /** How the endpoint is deployed. */
    public Deployment deployment() {
        return deployment;
    }

    @Override
    protected List<String> models() {
        return model.isEmpty() ? List.of() : List.of(model);
    }

    @Override
    protected ClientInfo.Capabilities capabilities() {
        return codec.capabilities();
    }

    @Override
    protected ClientInfo.ColdStartProfile coldStartProfile() {
        return watch.profile();
    }

    // ---------------------------------------------------------------- blocking and async

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        ctx.checkActive(label);
        byte[] body = encode(request, false);
        String callerSession = callerSession(request);
        String platformSession = sessionToSend(callerSession, true);
        InvokeEndpointRequest req = invokeRequest(body, platformSession, timeout(ctx));
        long start = System.nanoTime();
        InvokeEndpointResponse r;
        try {
            r = sync.invokeEndpoint(req);
        } catch (RuntimeException e) {
            throw failure(e, ctx, callerSession, platformSession);
        }
        return answered(r, body.length, request, callerSession, start);
    }

    @Override
    protected CompletableFuture<ProviderResult> doChatAsync(ChatRequest request, CallContext ctx) {
        ctx.checkActive(label);
        byte[] body = encode(request, false);
        String callerSession = callerSession(request);
        String platformSession = sessionToSend(callerSession, true);
        InvokeEndpointRequest req = invokeRequest(body, platformSession, timeout(ctx));
        long start = System.nanoTime();
        CompletableFuture<InvokeEndpointResponse> call = async().invokeEndpoint(req);
        CompletableFuture<ProviderResult> out = new CompletableFuture<>();
        call.whenComplete((r, t) -> {
            try {
                if (t != null) {
                    out.completeExceptionally(failure(t, ctx, callerSession, platformSession));
                } else {
                    out.complete(answered(r, body.length, request, callerSession, start));
                }
            } catch (RuntimeException e) {
                out.completeExceptionally(e);
            }
        });
        ctx.onCancel(() -> {
            // Cancelling the SDK's future aborts its request; the call ends as cancelled here.
            call.cancel(true);
            out.completeExceptionally(new CancelledException("call cancelled", id(), label, 0, null, null));
        });
        return out;
    }

    private InvokeEndpointRequest invokeRequest(byte[] body, String platformSession, Duration timeout) {
        InvokeEndpointRequest.Builder b = InvokeEndpointRequest.builder()
                .endpointName(endpointName)
                .contentType(codec.contentType())
                .accept(codec.accept())
                .body(SdkBytes.fromByteArrayUnsafe(body));
        if (timeout.compareTo(callTimeout) < 0) {
            // The clients' own apiCallTimeout is the call timeout: only an earlier deadline needs a request's.
            b.overrideConfiguration(o -> o.apiCallTimeout(timeout));
        }
        if (inferenceComponent != null) {
            b.inferenceComponentName(inferenceComponent);
        }
        if (targetVariant != null) {
            b.targetVariant(targetVariant);
        }
        if (customAttributes != null) {
            b.customAttributes(customAttributes);
        }
        if (platformSession != null) {
            b.sessionId(platformSession);
        }
        return b.build();
    }

    /** The result of a blocking or async call that answered. */
    private ProviderResult answered(
            InvokeEndpointResponse r, int requestBytes, ChatRequest request, String callerSession, long start) {
        long end = System.nanoTime();
        if (sessions != null) {
            if (r.closedSessionId() != null) {
                sessions.closed(r.closedSessionId());
            }
            if (callerSession != null && r.newSessionId() != null) {
                sessions.opened(callerSession, r.newSessionId());
            }
        }
        byte[] bytes = r.body() == null ? new byte[0] : r.body().asByteArrayUnsafe();
        if (bytes.length > limits.maxResponseBytes()) {
            throw new dev.hybridinference.core.MalformedResponseException(
                    "the answer exceeds the limit of " + limits.maxResponseBytes() + " bytes",
                    id(),
                    label,
                    0,
                    null,
                    null);
        }
        ProviderResult decoded = codec.decode(bytes, codecContext(request));
        ColdStart cold = watch.succeeded(start, end - start, end);
        return describe(decoded, r.invokedProductionVariant())
                .coldStart(cold)
                .requestBytes(requestBytes)
                .responseBytes(bytes.length)
                .build();
    }

    // ---------------------------------------------------------------- streaming

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        ctx.checkActive(label);
        byte[] body = encode(request, true);
        String callerSession = callerSession(request);
        // SageMaker refuses NEW_SESSION on a stream: a stream joins a session a blocking call opened.
        String platformSession = sessionToSend(callerSession, false);
        InvokeEndpointWithResponseStreamRequest.Builder rb = InvokeEndpointWithResponseStreamRequest.builder()
                .endpointName(endpointName)
                .contentType(codec.contentType())
                .accept(codec.accept())
                .body(SdkBytes.fromByteArrayUnsafe(body));
        Duration timeout = timeout(ctx);
        if (timeout.compareTo(callTimeout) < 0) {
            rb.overrideConfiguration(o -> o.apiCallTimeout(timeout));
        }
        if (inferenceComponent != null) {
            rb.inferenceComponentName(inferenceComponent);
        }
        if (targetVariant != null) {
            rb.targetVariant(targetVariant);
        }
        if (customAttributes != null) {
            rb.customAttributes(customAttributes);
        }
        if (platformSession != null) {
            rb.sessionId(platformSession);
        }
        StreamBridge bridge = new StreamBridge(ctx, label, streamBuffer);
        PartSubscriber parts = new PartSubscriber(bridge, codec.streamDecoder(codecContext(request)), body.length);
        bridge.partialResult(parts::partial);
        bridge.mapErrors(t -> failure(t, ctx, callerSession, platformSession));
        CompletableFuture<Void> started = new CompletableFuture<>();
        InvokeEndpointWithResponseStreamResponseHandler handler =
                InvokeEndpointWithResponseStreamResponseHandler.builder()
                        .onResponse(r -> {
                            parts.responded(r.invokedProductionVariant());
                            started.complete(null);
                        })
                        .onEventStream(publisher -> publisher.subscribe(parts))
                        .onError(t -> {
                            started.completeExceptionally(t);
                            bridge.onError(t);
                        })
                        .build();
        CompletableFuture<Void> call = async().invokeEndpointWithResponseStream(rb.build(), handler);
        call.whenComplete((v, t) -> {
            if (t != null) {
                started.completeExceptionally(t);
                bridge.onError(t);
            }
        });
        bridge.onCancel(() -> {
            parts.cancel();
            call.cancel(true);
        });
        ctx.onCancel(() ->
                started.completeExceptionally(new CancelledException("call cancelled", id(), label, 0, null, null)));
        try {
            long left = ctx.deadline().remainingNanos();
            if (left == Long.MAX_VALUE) {
                started.get();
            } else {
                started.get(Math.max(0, left), TimeUnit.NANOSECONDS);
            }
        } catch (TimeoutException e) {
            bridge.close();
            throw new InferenceTimeoutException(
                    "the request's deadline passed before the stream started", id(), label, true, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            bridge.close();
            throw new CancelledException("interrupted while the stream opened", id(), label, 0, null, e);
        } catch (ExecutionException e) {
            bridge.close();
            throw failure(e.getCause(), ctx, callerSession, platformSession);
        }
        return bridge;
    }

    /**
     * Takes the payload parts from the SDK's publisher on its I/O thread, decodes them and hands one chunk
     * per part to the bridge, asking for parts only as the reader makes room.
     */
    private final class PartSubscriber implements Subscriber<ResponseStream> {
        private final StreamBridge bridge;
        private final PayloadCodec.StreamDecoder decoder;
        private final int requestBytes;
        private final long start = System.nanoTime();
        private final AtomicReference<Subscription> subscription = new AtomicReference<>();
        private final AtomicLong responseBytes = new AtomicLong();
        private volatile String variant;
        private volatile long respondedNanos;
        private volatile boolean cancelled;

        PartSubscriber(StreamBridge bridge, PayloadCodec.StreamDecoder decoder, int requestBytes) {
            this.bridge = bridge;
            this.decoder = decoder;
            this.requestBytes = requestBytes;
        }

        void responded(String variant) {
            this.variant = variant;
            this.respondedNanos = System.nanoTime();
        }

        void cancel() {
            cancelled = true;
            Subscription s = subscription.get();
            if (s != null) {
                s.cancel();
            }
        }

        /** What was decoded so far, for the receipt of a stream that failed or was closed. */
        ProviderResult partial() {
            synchronized (decoder) {
                return describe(decoder.result(), variant)
                        .requestBytes(requestBytes)
                        .responseBytes(responseBytes.get())
                        .build();
            }
        }

        @Override
        public void onSubscribe(Subscription s) {
            if (!subscription.compareAndSet(null, s) || cancelled) {
                s.cancel();
                return;
            }
            bridge.onDemand(s::request);
        }

        @Override
        public void onNext(ResponseStream event) {
            if (!(event instanceof PayloadPart)) {
                bridge.onEmpty();
                return;
            }
            byte[] bytes = ((PayloadPart) event).bytes().asByteArrayUnsafe();
            long total = responseBytes.addAndGet(bytes.length);
            ChatChunk chunk;
            try {
                if (total > limits.maxResponseBytes()) {
                    throw new dev.hybridinference.core.MalformedResponseException(
                            "the stream exceeds the limit of " + limits.maxResponseBytes() + " bytes",
                            id(),
                            label,
                            0,
                            null,
                            null);
                }
                synchronized (decoder) {
                    chunk = decoder.feed(bytes);
                }
            } catch (RuntimeException e) {
                bridge.onError(e);
                cancel();
                return;
            }
            if (chunk == null) {
                bridge.onEmpty();
            } else if (!bridge.onChunk(chunk)) {
                cancel();
            }
        }

        @Override
        public void onError(Throwable t) {
            bridge.onError(t);
        }

        @Override
        public void onComplete() {
            ChatChunk last;
            ProviderResult result;
            try {
                synchronized (decoder) {
                    last = decoder.finish();
                }
                long end = System.nanoTime();
                long firstByte = (respondedNanos == 0 ? end : respondedNanos) - start;
                ColdStart cold = watch.succeeded(start, firstByte, end);
                result = partial().toBuilder().coldStart(cold).build();
            } catch (RuntimeException e) {
                bridge.onError(e);
                return;
            }
            bridge.onComplete(last, result);
        }
    }

    // ---------------------------------------------------------------- shared

    private byte[] encode(ChatRequest request, boolean stream) {
        try {
            return codec.encode(request, model, stream);
        } catch (InferenceException e) {
            if (e.providerId().isPresent()) {
                throw e;
            }
            // A codec does not know the provider: the message names it here.
            throw new InvalidRequestException(e.getMessage(), id(), label, 0, null, e);
        }
    }

    private PayloadCodec.Context codecContext(ChatRequest request) {
        return new PayloadCodec.Context(
                id(), label, request.model().orElse(model), StreamAssembler.promptChars(request), limits);
    }

    /**
     * {@code r} as a builder, with this client's attributes added. A result that carries none of its own (as
     * the built-in codecs' do not) gets a map made and redacted once for its variant, rather than a map
     * copied for each attribute and redacted on every call.
     */
    private ProviderResult.Builder describe(ProviderResult r, String variant) {
        ProviderResult.Builder b = r.toBuilder();
        if (r.attributes().isEmpty()) {
            return b.attributes(attributes(variant));
        }
        rawAttributes(variant).forEach(b::attribute);
        return b;
    }

    /** This client's attributes for a result from {@code variant} (or none), redacted; cached by variant. */
    private Map<String, String> attributes(String variant) {
        if (variant == null) {
            return attributesWithoutVariant;
        }
        Map<String, String> m = attributesByVariant.get(variant);
        if (m == null) {
            m = Secrets.redactedCopy(rawAttributes(variant));
            // An endpoint has a few variants; should the platform name many, the rest are made per call.
            if (attributesByVariant.size() < MAX_CACHED_VARIANTS) {
                attributesByVariant.putIfAbsent(variant, m);
            }
        }
        return m;
    }

    private Map<String, String> rawAttributes(String variant) {
        Map<String, String> m = new TreeMap<>();
        m.put("endpoint", endpointName);
        m.put("region", region);
        m.put("deployment", deployment.configName());
        if (variant != null) {
            m.put("variant", variant);
        }
        if (inferenceComponent != null) {
            m.put("inferenceComponent", inferenceComponent);
        }
        return m;
    }

    /** The SDK's time limit for this call: the configured call timeout, cut to the call's deadline. */
    private Duration timeout(CallContext ctx) {
        Optional<Duration> left = ctx.remaining();
        if (left.isPresent() && left.get().compareTo(callTimeout) < 0) {
            return left.get().isZero() || left.get().isNegative() ? Duration.ofMillis(1) : left.get();
        }
        return callTimeout;
    }

    private String callerSession(ChatRequest request) {
        return sessions == null ? null : request.options().sessionId().orElse(null);
    }

    /** The session id to send: the platform's for a known session, NEW_SESSION to open one (blocking only). */
    private String sessionToSend(String callerSession, boolean mayOpen) {
        if (callerSession == null) {
            return null;
        }
        String platform = sessions.lookup(callerSession);
        if (platform != null) {
            return platform;
        }
        return mayOpen ? Sessions.NEW_SESSION : null;
    }

    /** The exception for a failed call, with what it tells about cold starts and sessions. */
    private InferenceException failure(Throwable t, CallContext ctx, String callerSession, String platformSession) {
        Throwable cause = SageMakerErrors.unwrap(t);
        InferenceException e = SageMakerErrors.map(cause, id(), label, ctx, clock());
        long now = System.nanoTime();
        if (e instanceof ColdStartTimeoutException) {
            watch.notReady(now);
        } else if (cause instanceof AwsServiceException) {
            watch.failed(now);
        }
        if (cause instanceof ValidationErrorException
                && callerSession != null
                && platformSession != null
                && !Sessions.NEW_SESSION.equals(platformSession)
                && String.valueOf(cause.getMessage())
                        .toLowerCase(java.util.Locale.ROOT)
                        .contains("session")) {
            // The platform no longer knows the session (expired or closed): the next call opens a new one.
            sessions.forget(callerSession);
        }
        return e;
    }

    /**
     * The event loops of the asynchronous client, owned here: the SDK's own group waits out a quiet period of
     * seconds when closed, which would hold {@link #close()} that long.
     */
    private SdkEventLoopGroup eventLoops() {
        SdkEventLoopGroup g = SdkEventLoopGroup.builder()
                .numberOfThreads(Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors())))
                .build();
        eventLoops = g;
        return g;
    }

    /** The asynchronous client, made on first use; refused once the client is closed. */
    private SageMakerRuntimeAsyncClient async() {
        SageMakerRuntimeAsyncClient a = async;
        if (a == null) {
            synchronized (asyncLock) {
                if (isClosed()) {
                    throw new CancelledException("client is closed", id(), label, 0, null, null);
                }
                a = async;
                if (a == null) {
                    a = asyncFactory.get();
                    async = a;
                }
            }
        }
        return a;
    }

    @Override
    protected void doClose() {
        try {
            sync.close();
        } finally {
            synchronized (asyncLock) {
                if (async != null) {
                    async.close();
                }
                if (eventLoops != null) {
                    // No quiet period: nothing more is submitted once the client is closed.
                    eventLoops.eventLoopGroup().shutdownGracefully(0, 2, TimeUnit.SECONDS);
                }
            }
        }
    }

    /** Builds a {@link SageMakerClient}. Not thread-safe. */
    public static final class Builder extends ProviderBuilder<Builder> {
        private String endpointName;
        private String region;
        private URI endpointOverride;
        private AwsCredentialsProvider credentials;
        private String inferenceComponent;
        private String targetVariant;
        private String customAttributes;
        private String model;
        private PayloadCodec codec = PayloadCodec.messages();
        private ResponseLimits limits = ResponseLimits.DEFAULTS;
        private Deployment deployment = Deployment.REAL_TIME;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration readTimeout = Duration.ofSeconds(70);
        private Duration callTimeout = Duration.ofMinutes(5);
        private int maxConnections = 64;
        private int streamBuffer = StreamBridge.DEFAULT_CAPACITY;
        private Duration idleTimeout;
        private Integer minInstances;
        private Duration coldStartThreshold = ColdStartWatch.DEFAULT_THRESHOLD;
        private boolean statefulSessions;
        private int maxSessions = 10_000;
        private Pricing pricing;

        private Builder() {
            super(TYPE);
        }

        /** The endpoint's name (required). */
        public Builder endpointName(String endpointName) {
            this.endpointName = requireText(endpointName, "endpointName");
            return this;
        }

        /** The AWS region, such as {@code us-east-1} (required). */
        public Builder region(String region) {
            this.region = requireText(region, "region");
            return this;
        }

        /**
         * Another URL for the runtime API: a VPC interface endpoint, or a local emulator in tests. Without it
         * the SDK uses {@code https://runtime.sagemaker.<region>.amazonaws.com}.
         */
        public Builder endpointOverride(URI endpointOverride) {
            URI u = Objects.requireNonNull(endpointOverride, "endpointOverride");
            if (u.getScheme() == null
                    || u.getHost() == null
                    || !(u.getScheme().equals("https") || u.getScheme().equals("http"))) {
                throw new IllegalArgumentException("endpointOverride must be an http(s) URL with a host");
            }
            if (u.getUserInfo() != null) {
                throw new IllegalArgumentException("endpointOverride must not hold credentials");
            }
            this.endpointOverride = u;
            return this;
        }

        /** Where credentials come from; the SDK's default chain unless set. */
        public Builder credentials(AwsCredentialsProvider credentials) {
            this.credentials = Objects.requireNonNull(credentials, "credentials");
            return this;
        }

        /** Credentials from a named profile of the shared AWS configuration files. */
        public Builder profile(String profile) {
            return credentials(ProfileCredentialsProvider.create(requireText(profile, "profile")));
        }

        /**
         * Static keys (from the environment, say). The secret and the session token are registered with the
         * SDK's redaction, so they never appear in a message or log.
         *
         * @param sessionToken the session token of temporary credentials, or null
         */
        public Builder staticCredentials(String accessKeyId, String secretAccessKey, String sessionToken) {
            requireText(accessKeyId, "accessKeyId");
            requireText(secretAccessKey, "secretAccessKey");
            Secrets.register(secretAccessKey);
            if (sessionToken != null && !sessionToken.isEmpty()) {
                Secrets.register(sessionToken);
                return credentials(StaticCredentialsProvider.create(
                        AwsSessionCredentials.create(accessKeyId, secretAccessKey, sessionToken)));
            }
            return credentials(
                    StaticCredentialsProvider.create(AwsBasicCredentials.create(accessKeyId, secretAccessKey)));
        }

        /** The inference component to invoke ({@code X-Amzn-SageMaker-Inference-Component}). */
        public Builder inferenceComponent(String name) {
            this.inferenceComponent = requireText(name, "inferenceComponent");
            return this;
        }

        /** The production variant to invoke ({@code X-Amzn-SageMaker-Target-Variant}). */
        public Builder targetVariant(String variant) {
            this.targetVariant = requireText(variant, "targetVariant");
            return this;
        }

        /**
         * Custom attributes forwarded to the container ({@code X-Amzn-SageMaker-Custom-Attributes}): at most
         * 1024 visible US-ASCII characters.
         */
        public Builder customAttributes(String attributes) {
            Objects.requireNonNull(attributes, "customAttributes");
            if (attributes.length() > 1024 || !attributes.chars().allMatch(c -> c >= 0x20 && c < 0x7f)) {
                throw new IllegalArgumentException("customAttributes must be at most 1024 visible US-ASCII characters");
            }
            this.customAttributes = attributes;
            return this;
        }

        /** The model named in the body (the messages API) and on receipts; none unless set. */
        public Builder model(String model) {
            this.model = requireText(model, "model");
            return this;
        }

        /** How the body is written and read; {@link PayloadCodec#messages()} unless set. */
        public Builder payloadCodec(PayloadCodec codec) {
            this.codec = Objects.requireNonNull(codec, "codec");
            return this;
        }

        /** Bounds on what the container may send. */
        public Builder limits(ResponseLimits limits) {
            this.limits = Objects.requireNonNull(limits, "limits");
            return this;
        }

        /** How the endpoint is deployed; {@link Deployment#REAL_TIME} unless set. */
        public Builder deployment(Deployment deployment) {
            this.deployment = Objects.requireNonNull(deployment, "deployment");
            return this;
        }

        /** How long to wait for a connection; 10 s unless set. */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = positive(timeout, "connectTimeout");
            return this;
        }

        /** How long a read may wait for bytes; 70 s unless set (AWS advises more than the container's 60 s). */
        public Builder readTimeout(Duration timeout) {
            this.readTimeout = positive(timeout, "readTimeout");
            return this;
        }

        /** The longest a call may take when the request sets no earlier deadline; 5 min unless set. */
        public Builder callTimeout(Duration timeout) {
            this.callTimeout = positive(timeout, "callTimeout");
            return this;
        }

        /** The most connections to the runtime API; 64 unless set. */
        public Builder maxConnections(int n) {
            if (n < 1 || n > 10_000) {
                throw new IllegalArgumentException("maxConnections must be within [1, 10000], got " + n);
            }
            this.maxConnections = n;
            return this;
        }

        /** The most decoded chunks a stream holds for a slow reader; {@link StreamBridge#DEFAULT_CAPACITY} unless set. */
        public Builder streamBuffer(int chunks) {
            if (chunks < 1 || chunks > StreamBridge.MAX_CAPACITY) {
                throw new IllegalArgumentException(
                        "streamBuffer must be within [1, " + StreamBridge.MAX_CAPACITY + "], got " + chunks);
            }
            this.streamBuffer = chunks;
            return this;
        }

        /**
         * After how long without calls a serverless endpoint or a component scales to zero, for predicting cold
         * starts. AWS does not publish this for Serverless Inference; unset, only the first call is predicted
         * cold (or, under per-instance-second pricing, the pricing's scale-in delay is used).
         */
        public Builder idleTimeout(Duration idleTimeout) {
            this.idleTimeout = positive(idleTimeout, "idleTimeout");
            return this;
        }

        /**
         * Capacity kept warm whatever the traffic (provisioned concurrency, minimum copies): with one or more,
         * no cold start is predicted.
         */
        public Builder minInstances(int n) {
            if (n < 0 || n > 100_000) {
                throw new IllegalArgumentException("minInstances must be within [0, 100000], got " + n);
            }
            this.minInstances = n;
            return this;
        }

        /** How far above the warm latency a held call counts as a cold start; 1 s unless set. */
        public Builder coldStartThreshold(Duration threshold) {
            this.coldStartThreshold = positive(threshold, "coldStartThreshold");
            return this;
        }

        /**
         * Opens SageMaker stateful sessions for callers' session ids (off unless set): the container must
         * support them.
         *
         * @param maxSessions the most sessions remembered (least recently used forgotten first)
         */
        public Builder statefulSessions(boolean enabled, int maxSessions) {
            if (maxSessions < 1 || maxSessions > 10_000_000) {
                throw new IllegalArgumentException("maxSessions must be within [1, 10000000], got " + maxSessions);
            }
            this.statefulSessions = enabled;
            this.maxSessions = maxSessions;
            return this;
        }

        /**
         * How the endpoint bills. Unless set: a real-time endpoint per instance hour at zero, anything else
         * free, so costs show as zero until prices are configured.
         */
        public Builder pricing(Pricing pricing) {
            this.pricing = Objects.requireNonNull(pricing, "pricing");
            return this;
        }

        Pricing pricing() {
            if (pricing != null) {
                return pricing;
            }
            return deployment == Deployment.REAL_TIME
                    ? new Pricing.PerInstanceHour(java.math.BigDecimal.ZERO, 1)
                    : Pricing.FREE;
        }

        ClientInfo.ColdStartProfile coldStartProfile() {
            if (deployment == Deployment.REAL_TIME) {
                return ClientInfo.ColdStartProfile.NONE;
            }
            Pricing p = pricing();
            Duration idle = idleTimeout;
            int min = minInstances == null ? 0 : minInstances;
            if (p instanceof Pricing.PerInstanceSecond) {
                Pricing.PerInstanceSecond s = (Pricing.PerInstanceSecond) p;
                if (idle == null && !s.scaleInDelay().isZero()) {
                    idle = s.scaleInDelay();
                }
                if (minInstances == null) {
                    min = s.minInstances();
                }
            }
            return ClientInfo.ColdStartProfile.scalesToZero(idle, min);
        }

        AwsCredentialsProvider credentials() {
            return credentials != null
                    ? credentials
                    : DefaultCredentialsProvider.builder().build();
        }

        /** The client. */
        public SageMakerClient build() {
            if (endpointName == null) {
                throw new IllegalStateException("endpointName is required");
            }
            if (region == null) {
                throw new IllegalStateException("region is required");
            }
            return new SageMakerClient(this);
        }
    }
}
