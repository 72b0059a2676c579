package dev.hybridinference.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.sagemaker.SageMakerClient;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator;
import java.io.IOException;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
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

/**
 * Per-call overhead of the SageMaker provider over the bare AWS SDK for Java v2 doing the same request,
 * both against the testkit's SageMaker Runtime emulator on loopback, in the same JVM.
 *
 * <p>The emulator serves a vLLM-style messages container ({@code MESSAGES_SSE}) with no token latency and
 * no SigV4 shape check (the clients still sign every request), so that its own cost per call is as small
 * as it allows; it answers {@value #TOKENS} generated words. A stream therefore carries one {@code
 * PayloadPart} per server-sent event ({@code partSize 0}): the role chunk, {@value #TOKENS} token chunks,
 * the finish chunk, the usage chunk and {@code [DONE]}.
 *
 * <p>The provider side ({@code sdk}) is {@link SageMakerClient#chat} and {@link SageMakerClient#stream}
 * read to its end, with everything a user gets: request encoding, the call context, response decoding, the
 * receipt with its cost and its recording in a {@link CostLedger}.
 *
 * <p>The bare side ({@code bare}) is what a user would write with the AWS SDK alone, configured as the
 * provider configures its own clients: static credentials, region {@value #REGION}, the emulator as {@code
 * endpointOverride}, {@link AwsRetryStrategy#doNotRetry()}, a 5 minute {@code apiCallTimeout} on the
 * client; Apache HTTP with a 10 s connection timeout, a 70 s socket timeout and 64 connections for the
 * blocking call; Netty over HTTP/1.1 with the same timeouts, 64 connections and an event loop group of as
 * many threads as the provider's (the number of processors, 1 to 4) for the stream. Exactly:
 *
 * <ul>
 *   <li>blocking: builds an {@code InvokeEndpointRequest} naming the endpoint, with content type and accept
 *       {@code application/json} and the body bytes the provider sends (taken once from the emulator's
 *       record of a provider call, so they are byte for byte the same JSON), calls {@code invokeEndpoint},
 *       parses the answer with Jackson into a tree and reads {@code choices[0].message.content} and {@code
 *       usage.completion_tokens};
 *   <li>streaming: builds an {@code InvokeEndpointWithResponseStreamRequest} the same way with the
 *       provider's streaming body, calls {@code invokeEndpointWithResponseStream} with a visitor whose
 *       {@code onPayloadPart} splits the parts into lines (carrying a line cut between parts over to the
 *       next), parses each {@code data:} line but {@code [DONE]} with Jackson, appends {@code
 *       choices[0].delta.content} to the text and reads {@code usage.completion_tokens}, and waits for the
 *       call's future; a stream that ended without {@code [DONE]} fails.
 * </ul>
 *
 * <p>The bare side does not encode the body on each call; the provider does. Neither sets a per-request
 * {@code apiCallTimeout}: the clients' own applies (the provider sets one only for a request whose deadline
 * is earlier, and these requests have none).
 *
 * <p>Each stream costs both sides the same in the AWS SDK itself (its event-stream decoder allocates a
 * buffer of about 2 MB per response), so the per-call allocation of all client threads is dominated by it.
 *
 * <p>Arguments (optional): {@code [repeats]}, how many times to run the paired check and the allocation
 * (default 1). With {@code loop variant [seconds]} instead, one side of one mode ({@code blockingSdk},
 * {@code blockingBare}, {@code streamingSdk}, {@code streamingBare}) runs in a loop on one thread for a
 * profiler to watch (default 20 s, after 5 s of warm-up).
 */
public final class SageMakerOverheadReport {
    /** The words the emulator answers (its {@code max_tokens}). */
    static final int TOKENS = 50;

    /** The region of both sides. */
    static final String REGION = "us-east-1";

    static final String ENDPOINT = "bench-endpoint";
    static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(70);
    private static final Duration CALL_TIMEOUT = Duration.ofMinutes(5);
    private static final int MAX_CONNECTIONS = 64;
    private static final String EMULATOR_THREADS = "sagemaker-emulator";

    private SageMakerOverheadReport() {}

    /**
     * Runs the report.
     *
     * @param args optional {@code repeats}
     */
    public static void main(String[] args) throws Exception {
        try (Env env = new Env()) {
            new PairedOverhead(
                            TOKENS,
                            new PairedOverhead.Call[] {() -> sdkBlocking(env), () -> sdkStreaming(env)},
                            new PairedOverhead.Call[] {() -> bareBlocking(env), () -> bareStreaming(env)},
                            // As for Cloud Run: a shorter warm-up left the first paired blocks still compiling.
                            new int[] {20_000, 5_000},
                            EMULATOR_THREADS)
                    .main(args, env::header, STREAMING_NOTE, null);
        }
    }

    /** What the allocation figures of a stream include, printed after them. */
    private static final String STREAMING_NOTE = String.format(
            "  (streaming: the Netty I/O threads decode the event stream and run the part handlers for both"
                    + " sides, so the calling thread shows only the provider's hand-over; the client-thread"
                    + " figures include that work)%n");

    /** The emulator and both sides' clients, shared by all threads. */
    static final class Env implements AutoCloseable {
        final SageMakerEmulator emulator;
        final SageMakerClient sdk;
        final SdkEventLoopGroup bareLoops;
        final SageMakerRuntimeClient bareSync;
        final SageMakerRuntimeAsyncClient bareAsync;
        final ChatRequest request;
        final byte[] blockingBody;
        final byte[] streamBody;
        private final List<String> headerNotes = new ArrayList<>();

        Env() throws IOException {
            emulator = SageMakerEmulator.builder()
                    .endpointName(ENDPOINT)
                    .container(SageMakerEmulator.Container.MESSAGES_SSE)
                    .partSize(0)
                    .tokenLatency(Duration.ZERO)
                    .requireSigV4(false)
                    .start();
            sdk = SageMakerClient.builder()
                    .id("bench")
                    .endpointName(ENDPOINT)
                    .region(REGION)
                    .endpointOverride(emulator.endpoint())
                    .staticCredentials("AKIDEXAMPLE", "bench-secret-access-key", null)
                    .model("bench-model")
                    .connectTimeout(CONNECT_TIMEOUT)
                    .readTimeout(READ_TIMEOUT)
                    .callTimeout(CALL_TIMEOUT)
                    .maxConnections(MAX_CONNECTIONS)
                    .pricing(new Pricing.PerInstanceHour(new BigDecimal("1.21"), 1))
                    .ledger(new CostLedger())
                    .build();
            StaticCredentialsProvider credentials = StaticCredentialsProvider.create(
                    AwsBasicCredentials.create("AKIDEXAMPLE", "bench-secret-access-key"));
            bareSync = SageMakerRuntimeClient.builder()
                    .region(Region.of(REGION))
                    .credentialsProvider(credentials)
                    .endpointOverride(emulator.endpoint())
                    .overrideConfiguration(
                            o -> o.retryStrategy(AwsRetryStrategy.doNotRetry()).apiCallTimeout(CALL_TIMEOUT))
                    .httpClientBuilder(ApacheHttpClient.builder()
                            .connectionTimeout(CONNECT_TIMEOUT)
                            .socketTimeout(READ_TIMEOUT)
                            .maxConnections(MAX_CONNECTIONS))
                    .build();
            bareLoops = SdkEventLoopGroup.builder()
                    .numberOfThreads(
                            Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors())))
                    .build();
            bareAsync = SageMakerRuntimeAsyncClient.builder()
                    .region(Region.of(REGION))
                    .credentialsProvider(credentials)
                    .endpointOverride(emulator.endpoint())
                    .overrideConfiguration(
                            o -> o.retryStrategy(AwsRetryStrategy.doNotRetry()).apiCallTimeout(CALL_TIMEOUT))
                    .httpClientBuilder(NettyNioAsyncHttpClient.builder()
                            .eventLoopGroup(bareLoops)
                            .protocol(Protocol.HTTP1_1)
                            .connectionTimeout(CONNECT_TIMEOUT)
                            .readTimeout(READ_TIMEOUT)
                            .maxConcurrency(MAX_CONNECTIONS))
                    .build();
            request = ChatRequest.builder()
                    .user("Explain the difference between serverless and dedicated inference.")
                    .maxTokens(TOKENS)
                    .build();
            // The bare side sends exactly the provider's bytes: take them from the emulator's record.
            sdkBlocking(this);
            SageMakerEmulator.RecordedRequest sdkChat = last();
            blockingBody = sdkChat.body();
            sdkStreaming(this);
            SageMakerEmulator.RecordedRequest sdkStream = last();
            streamBody = sdkStream.body();
            bareBlocking(this);
            compareHeaders("blocking", sdkChat, last());
            bareStreaming(this);
            compareHeaders("streaming", sdkStream, last());
        }

        private SageMakerEmulator.RecordedRequest last() {
            List<SageMakerEmulator.RecordedRequest> all = emulator.requests();
            return all.get(all.size() - 1);
        }

        /** Notes where the two sides' requests differ, other than in the values that change per call. */
        private void compareHeaders(
                String mode, SageMakerEmulator.RecordedRequest sdk, SageMakerEmulator.RecordedRequest bare) {
            if (!sdk.path().equals(bare.path()) || !Arrays.equals(sdk.body(), bare.body())) {
                throw new IllegalStateException(
                        mode + ": the two sides sent different requests: " + sdk + " / " + bare);
            }
            headerNotes.addAll(PairedOverhead.headerDifferences(mode, sdk.headers(), bare.headers(), PER_CALL_HEADERS));
        }

        private static final Set<String> PER_CALL_HEADERS =
                Set.of("authorization", "x-amz-date", "amz-sdk-invocation-id", "amz-sdk-request");

        String header() {
            StringBuilder out = new StringBuilder(String.format(
                    Locale.ROOT,
                    "=== SageMaker provider overhead against the bare AWS SDK v2 + Jackson ===%n"
                            + "emulator in this JVM on loopback (MESSAGES_SSE, tokenLatency 0, partSize 0, SigV4 shape"
                            + " check off), %d-word answers; blocking body %d B, streaming body %d B (the same bytes"
                            + " on both sides); %d processors, Java %s%n",
                    TOKENS,
                    blockingBody.length,
                    streamBody.length,
                    Runtime.getRuntime().availableProcessors(),
                    System.getProperty("java.version")));
            if (headerNotes.isEmpty()) {
                out.append(String.format(
                        "request headers: the same on both sides but for signature, date and" + " invocation id%n"));
            } else {
                out.append(String.format("request headers that differ (besides signature, date, invocation id):%n"));
                for (String n : headerNotes) {
                    out.append("  ").append(n).append(String.format("%n"));
                }
            }
            return out.toString();
        }

        @Override
        public void close() {
            sdk.close();
            bareSync.close();
            bareAsync.close();
            bareLoops.eventLoopGroup().shutdownGracefully(0, 2, TimeUnit.SECONDS);
            emulator.close();
        }
    }

    // ---------------------------------------------------------------- the four calls

    static String sdkBlocking(Env env) {
        return PairedOverhead.sdkBlocking(env.sdk, env.request);
    }

    static String sdkStreaming(Env env) {
        return PairedOverhead.sdkStreaming(env.sdk, env.request);
    }

    static String bareBlocking(Env env) throws IOException {
        InvokeEndpointResponse r = env.bareSync.invokeEndpoint(InvokeEndpointRequest.builder()
                .endpointName(ENDPOINT)
                .contentType("application/json")
                .accept("application/json")
                .body(SdkBytes.fromByteArrayUnsafe(env.blockingBody))
                .build());
        JsonNode root = MAPPER.readTree(r.body().asByteArrayUnsafe());
        long tokens = root.path("usage").path("completion_tokens").asLong();
        String text =
                root.path("choices").path(0).path("message").path("content").asText();
        return tokens > 0 ? text : "";
    }

    static String bareStreaming(Env env) {
        PairedOverhead.SseText sse = new PairedOverhead.SseText();
        InvokeEndpointWithResponseStreamResponseHandler handler =
                InvokeEndpointWithResponseStreamResponseHandler.builder()
                        .subscriber(InvokeEndpointWithResponseStreamResponseHandler.Visitor.builder()
                                .onPayloadPart(p -> sse.feed(p.bytes().asByteArrayUnsafe()))
                                .build())
                        .build();
        env.bareAsync
                .invokeEndpointWithResponseStream(
                        InvokeEndpointWithResponseStreamRequest.builder()
                                .endpointName(ENDPOINT)
                                .contentType("application/json")
                                .accept("application/json")
                                .body(SdkBytes.fromByteArrayUnsafe(env.streamBody))
                                .build(),
                        handler)
                .join();
        return sse.result();
    }
}
