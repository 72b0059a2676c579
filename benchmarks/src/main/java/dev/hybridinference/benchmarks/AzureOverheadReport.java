package dev.hybridinference.benchmarks;

import com.azure.ai.inference.ChatCompletionsAsyncClient;
import com.azure.ai.inference.ChatCompletionsClientBuilder;
import com.azure.ai.inference.models.ChatChoice;
import com.azure.ai.inference.models.ChatCompletions;
import com.azure.ai.inference.models.ChatCompletionsOptions;
import com.azure.ai.inference.models.ChatRequestUserMessage;
import com.azure.ai.inference.models.StreamingChatChoiceUpdate;
import com.azure.core.credential.AzureKeyCredential;
import com.azure.core.http.netty.NettyAsyncHttpClientBuilder;
import com.azure.core.http.policy.FixedDelayOptions;
import com.azure.core.http.policy.HttpLogDetailLevel;
import com.azure.core.http.policy.HttpLogOptions;
import com.azure.core.http.policy.RetryOptions;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.azure.AzureClient;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.http.OpenAiTransport;
import dev.hybridinference.testkit.azure.AzureEmulator;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;

/**
 * Per-call overhead of the Azure provider on each of its routes over a bare client doing the same HTTPS request,
 * both against the testkit's Azure emulator on loopback (TLS with the emulator's test certificate, trusted alike
 * by both sides), in the same JVM, with {@link PairedOverhead}.
 *
 * <p>The emulator checks the API key on every request, has no token latency, and answers {@value #TOKENS}
 * generated words ({@code max_tokens}); its streams end with a usage chunk even when the request does not ask
 * for one ({@code usageInStreams}, since the SDK never asks). A stream therefore carries Azure's prompt-filter
 * chunk, the role chunk, {@value #TOKENS} token chunks, the finish chunk, the usage chunk and {@code [DONE]}.
 *
 * <p>The provider side ({@code sdk}) of each route is {@link AzureClient#chat} and {@link AzureClient#stream}
 * read to its end, with everything a user gets: request encoding, the call context, response decoding, the
 * content-filter checks, the receipt with its cost and its recording in a {@link CostLedger}.
 *
 * <p><b>{@code v1}</b> ({@link AzureClient.Api#OPENAI_V1}, on the core's OkHttp transport). The bare side is what
 * a user would write with OkHttp and Jackson alone, its client configured as the transport configures its own: a
 * pool of 32 connections kept idle {@link OpenAiTransport#DEFAULT_IDLE_TIMEOUT}, a 10 s connection timeout, 2 min
 * read and write timeouts, a 10 min call timeout (OkHttp's own, where the provider has its deadline watch), no
 * resends on connection failure, no redirects, and the emulator's certificate as its only trust. It POSTs the body
 * bytes the provider sends (taken once from the emulator's record, so they are byte for byte the same JSON) to
 * {@code /openai/v1/chat/completions} parsed once, with {@code Accept} as the provider sends it and {@code
 * api-key}; blocking, it reads the body into an array, parses it with Jackson into a tree and reads {@code
 * choices[0].message.content} and {@code usage.completion_tokens}; streaming, it reads the body line by line,
 * parses each {@code data:} line but {@code [DONE]} with Jackson, appends {@code choices[0].delta.content} and
 * reads {@code usage.completion_tokens}. It does not encode the body on each call; the provider does.
 *
 * <p><b>{@code sdk}</b> ({@link AzureClient.Api#INFERENCE_SDK}, on azure-ai-inference's async client over
 * azure-core's Netty HTTP client). The bare side is that SDK's {@code ChatCompletionsAsyncClient}, built the way
 * the provider builds its own (the same endpoint, {@code AzureKeyCredential} with the same key, the Netty HTTP
 * client over reactor-netty trusting the emulator's certificate with the same timeouts, HTTP logging off, zero
 * retries as a user asks for them: {@code RetryOptions} with no retries), with new {@code ChatCompletionsOptions}
 * for each call (the user message, the model and {@code max_tokens}); blocking, {@code complete(..).block()} and
 * the first choice's content and the usage; streaming, {@code completeStream} with each update's first choice's
 * delta appended and the usage read on the I/O thread ({@code doOnNext}), waited for to its end ({@code
 * blockLast}). That is the cheapest way to call the SDK: its synchronous {@code ChatCompletionsClient} took about
 * five times as long per blocking call here, and its {@code completeStream} writes the body's fields in another
 * order. The two sides' bodies are checked to be the same bytes.
 *
 * <p>The SDK's stream decoder logs at ERROR, with a stack trace, each server-sent event that a network read cut in
 * two (it then parses the event again when the rest comes), on both sides alike; the report turns azure-core's
 * logging off.
 *
 * <p>Arguments (optional): {@code [v1|sdk|both] [repeats]}: which route (default both, v1 first), and how many
 * times to run the paired check and the allocation (default 1). With {@code v1|sdk loop variant [seconds]}
 * instead, one side of one mode ({@code blockingSdk}, {@code blockingBare}, {@code streamingSdk}, {@code
 * streamingBare}) of that route runs in a loop on one thread for a profiler to watch (default 20 s, after 5 s of
 * warm-up).
 */
public final class AzureOverheadReport {
    /** The words the emulator answers (the request's {@code max_tokens}). */
    static final int TOKENS = 50;

    private static final String KEY = "bench-azure-key-5c2e9a";
    private static final String MODEL = "bench-deployment";
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration READ_TIMEOUT = Duration.ofMinutes(2);
    private static final Duration CALL_TIMEOUT = Duration.ofMinutes(10);
    private static final MediaType JSON = MediaType.get("application/json");
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final String PROMPT = "Explain the difference between serverless and dedicated inference.";

    /** The emulator's threads, left out of the client threads. */
    private static final String EMULATOR_THREADS = "azure-emulator";

    /** Headers whose values change with each call (the SDK's request id). */
    private static final Set<String> PER_CALL_HEADERS = Set.of("x-ms-client-request-id", "date");

    /**
     * azure-core's loggers, held so that their level stays set: the SDK logs at INFO at start (Netty versions),
     * on the bare side's retry policy on every call, and at ERROR for every stream event a network read cut in
     * two; none of that belongs in the figures or the output.
     */
    private static final Logger AZURE_LOGS = Logger.getLogger("com.azure");

    private AzureOverheadReport() {}

    /**
     * Runs the report.
     *
     * @param args optional {@code v1}, {@code sdk} or {@code both}, then {@code repeats}, or {@code loop variant
     *     [seconds]}
     */
    public static void main(String[] args) throws Exception {
        AZURE_LOGS.setLevel(Level.OFF);
        String which = args.length > 0 && !args[0].matches("\\d+") ? args[0] : "both";
        String[] rest = args.length > 0 && !args[0].matches("\\d+") ? Arrays.copyOfRange(args, 1, args.length) : args;
        if (!Set.of("v1", "sdk", "both").contains(which)) {
            throw new IllegalArgumentException("the first argument must be v1, sdk or both, got " + which);
        }
        if (which.equals("both") && rest.length > 0 && rest[0].equals("loop")) {
            throw new IllegalArgumentException("loop needs a route: v1 loop ... or sdk loop ...");
        }
        if (!which.equals("sdk")) {
            try (V1 env = new V1()) {
                // As for Cloud Run: a shorter warm-up left the first paired blocks still compiling.
                paired(env, new int[] {20_000, 5_000}, rest, "");
            }
        }
        if (!which.equals("v1")) {
            try (Sdk env = new Sdk()) {
                paired(env, new int[] {10_000, 2_500}, rest, SDK_NOTE);
            }
        }
    }

    /**
     * One route's two sides: the emulator, the provider on the route (its set-up calls made, their recorded
     * requests kept for the bare side to match) and, in the subclass, the bare client; shared by all threads.
     */
    abstract static class Route implements AutoCloseable {
        final AzureEmulator emulator;
        final AzureClient sdk;
        final ChatRequest request;
        final AzureEmulator.RecordedRequest sdkChat;
        final AzureEmulator.RecordedRequest sdkStream;
        final List<String> headerNotes = new ArrayList<>();

        Route(AzureClient.Api api) {
            emulator = emulator();
            sdk = provider(api, emulator);
            request = AzureOverheadReport.request();
            PairedOverhead.check("sdk blocking set-up call", PairedOverhead.sdkBlocking(sdk, request), TOKENS);
            sdkChat = last(emulator);
            PairedOverhead.check("sdk streaming set-up call", PairedOverhead.sdkStreaming(sdk, request), TOKENS);
            sdkStream = last(emulator);
        }

        /** Makes the bare side's set-up calls and checks they sent what the provider sent. */
        final void checkBare() throws Exception {
            PairedOverhead.check("bare blocking set-up call", bareBlocking(), TOKENS);
            headerNotes.addAll(compare("blocking", sdkChat, last(emulator)));
            PairedOverhead.check("bare streaming set-up call", bareStreaming(), TOKENS);
            headerNotes.addAll(compare("streaming", sdkStream, last(emulator)));
        }

        abstract String bareBlocking() throws Exception;

        abstract String bareStreaming() throws Exception;

        abstract String header();

        /** Closes the bare client. */
        abstract void closeBare();

        @Override
        public final void close() {
            sdk.close();
            closeBare();
            emulator.close();
        }
    }

    private static void paired(Route env, int[] warmUps, String[] args, String allocationNote) throws Exception {
        new PairedOverhead(
                        TOKENS,
                        new PairedOverhead.Call[] {
                            () -> PairedOverhead.sdkBlocking(env.sdk, env.request),
                            () -> PairedOverhead.sdkStreaming(env.sdk, env.request)
                        },
                        new PairedOverhead.Call[] {env::bareBlocking, env::bareStreaming},
                        warmUps,
                        EMULATOR_THREADS)
                .main(args, env::header, allocationNote, null);
    }

    /** What the allocation figures of the SDK route include, printed after them. */
    private static final String SDK_NOTE = String.format(
            "  (the Netty I/O threads read and decode the responses for both sides, so the calling thread shows"
                    + " only part of each side's work; the client-thread figures include the rest)%n");

    /** The emulator as both routes' reports start it. */
    private static AzureEmulator emulator() {
        return AzureEmulator.builder()
                .apiKey(KEY)
                .deployment(MODEL)
                .tokenLatency(Duration.ZERO)
                .usageInStreams(true)
                .start();
    }

    /** The provider on {@code api}, configured as a user would for this emulator. */
    private static AzureClient provider(AzureClient.Api api, AzureEmulator emulator) {
        return AzureClient.builder()
                .id("bench-" + api.configName())
                .api(api)
                .endpoint(api == AzureClient.Api.OPENAI_V1 ? emulator.openAiV1Url() : emulator.inferenceUrl())
                .apiKey(KEY)
                .model(MODEL)
                .trust(emulator.clientTrustManager())
                .connectTimeout(CONNECT_TIMEOUT)
                .readTimeout(READ_TIMEOUT)
                .callTimeout(CALL_TIMEOUT)
                // Llama 3.1 8B on a serverless deployment, about; only so that receipts carry a cost.
                .pricing(new Pricing.PerToken(new BigDecimal("0.30"), new BigDecimal("0.61"), null))
                .ledger(new CostLedger())
                .build();
    }

    private static ChatRequest request() {
        return ChatRequest.builder().user(PROMPT).maxTokens(TOKENS).build();
    }

    private static AzureEmulator.RecordedRequest last(AzureEmulator emulator) {
        List<AzureEmulator.RecordedRequest> all = emulator.recorded();
        return all.get(all.size() - 1);
    }

    /** Fails unless both sides sent the same request line and body; the headers that differ, as notes. */
    private static List<String> compare(
            String mode, AzureEmulator.RecordedRequest sdk, AzureEmulator.RecordedRequest bare) {
        if (!sdk.method().equals(bare.method())
                || !sdk.path().equals(bare.path())
                || !String.valueOf(sdk.query()).equals(String.valueOf(bare.query()))
                || !sdk.body().equals(bare.body())) {
            throw new IllegalStateException(mode + ": the two sides sent different requests: " + sdk + " / " + bare);
        }
        return PairedOverhead.headerDifferences(mode, sdk.headers(), bare.headers(), PER_CALL_HEADERS);
    }

    private static String header(
            String title, String what, int blockingBody, int streamBody, List<String> headerNotes) {
        StringBuilder out = new StringBuilder(String.format(
                Locale.ROOT,
                "%n=== %s ===%n"
                        + "emulator in this JVM on loopback over TLS (API key checked, tokenLatency 0, usage in"
                        + " streams), %d-word answers; %s; blocking body %d B, streaming body %d B (the same bytes on"
                        + " both sides); %d processors, Java %s%n",
                title,
                TOKENS,
                what,
                blockingBody,
                streamBody,
                Runtime.getRuntime().availableProcessors(),
                System.getProperty("java.version")));
        if (headerNotes.isEmpty()) {
            out.append(String.format("request headers: the same on both sides%n"));
        } else {
            out.append(
                    String.format("request headers that differ (besides the SDK's per-call request id and date):%n"));
            for (String n : headerNotes) {
                out.append("  ").append(n).append(String.format("%n"));
            }
        }
        return out.toString();
    }

    // ---------------------------------------------------------------- the v1 route

    /** The emulator, the provider on the v1 route and a bare OkHttp client; shared by all threads. */
    static final class V1 extends Route {
        final OkHttpClient bare;
        final HttpUrl chatUrl;
        final String accept;
        final byte[] blockingBody;
        final byte[] streamBody;

        V1() throws Exception {
            super(AzureClient.Api.OPENAI_V1);
            bare = BareOpenAiHttp.client(
                    CONNECT_TIMEOUT,
                    READ_TIMEOUT,
                    CALL_TIMEOUT,
                    emulator.clientSslContext().getSocketFactory(),
                    emulator.clientTrustManager());
            chatUrl = HttpUrl.get(emulator.openAiV1Url() + "/chat/completions");
            // The bare side sends exactly the provider's request: body and accept from the emulator's record.
            blockingBody = sdkChat.body().getBytes(StandardCharsets.UTF_8);
            streamBody = sdkStream.body().getBytes(StandardCharsets.UTF_8);
            accept = sdkChat.header("accept");
            if (accept == null || !KEY.equals(sdkChat.header("api-key"))) {
                throw new IllegalStateException("the provider sent no Accept or not the api-key: " + sdkChat);
            }
            checkBare();
        }

        @Override
        String bareBlocking() throws IOException {
            return BareOpenAiHttp.blocking(bare, BareOpenAiHttp.post(chatUrl, blockingBody, accept, "api-key", KEY));
        }

        @Override
        String bareStreaming() throws IOException {
            return BareOpenAiHttp.streaming(bare, BareOpenAiHttp.post(chatUrl, streamBody, accept, "api-key", KEY));
        }

        @Override
        String header() {
            return AzureOverheadReport.header(
                    "Azure provider, openai-v1 route, against bare OkHttp + Jackson with the api-key header",
                    "POST /openai/v1/chat/completions",
                    blockingBody.length,
                    streamBody.length,
                    headerNotes);
        }

        @Override
        void closeBare() {
            BareOpenAiHttp.close(bare);
        }
    }

    // ---------------------------------------------------------------- the SDK route

    /** The emulator, the provider on the SDK route and a bare azure-ai-inference client; shared by all threads. */
    static final class Sdk extends Route {
        final ChatCompletionsAsyncClient bare;
        final int blockingBody;
        final int streamBody;

        Sdk() throws Exception {
            super(AzureClient.Api.INFERENCE_SDK);
            SslContext ssl = SslContextBuilder.forClient()
                    .trustManager(emulator.clientTrustManager())
                    .build();
            reactor.netty.http.client.HttpClient netty =
                    reactor.netty.http.client.HttpClient.create().secure(spec -> spec.sslContext(ssl));
            ChatCompletionsClientBuilder builder = new ChatCompletionsClientBuilder()
                    .endpoint(emulator.inferenceUrl())
                    .credential(new AzureKeyCredential(KEY))
                    .httpClient(new NettyAsyncHttpClientBuilder(netty)
                            .connectTimeout(CONNECT_TIMEOUT)
                            .responseTimeout(READ_TIMEOUT)
                            .readTimeout(READ_TIMEOUT)
                            .writeTimeout(READ_TIMEOUT)
                            .build())
                    .retryOptions(new RetryOptions(new FixedDelayOptions(0, Duration.ofMillis(1))))
                    .httpLogOptions(new HttpLogOptions().setLogLevel(HttpLogDetailLevel.NONE));
            bare = builder.buildAsyncClient();
            checkBare();
            blockingBody = sdkChat.body().getBytes(StandardCharsets.UTF_8).length;
            streamBody = sdkStream.body().getBytes(StandardCharsets.UTF_8).length;
        }

        /** The options a user builds for each call. */
        private static ChatCompletionsOptions options() {
            return new ChatCompletionsOptions(List.of(new ChatRequestUserMessage(PROMPT)))
                    .setModel(MODEL)
                    .setMaxTokens(TOKENS);
        }

        @Override
        String bareBlocking() {
            ChatCompletions c = bare.complete(options()).block();
            ChatChoice choice = c.getChoices().get(0);
            long tokens = c.getUsage() == null ? 0 : c.getUsage().getCompletionTokens();
            return tokens > 0 ? choice.getMessage().getContent() : "";
        }

        @Override
        String bareStreaming() {
            StringBuilder text = new StringBuilder();
            long[] tokens = new long[1];
            bare.completeStream(options())
                    .doOnNext(u -> {
                        List<StreamingChatChoiceUpdate> choices = u.getChoices();
                        if (choices != null
                                && !choices.isEmpty()
                                && choices.get(0).getDelta() != null) {
                            String content = choices.get(0).getDelta().getContent();
                            if (content != null) {
                                text.append(content);
                            }
                        }
                        if (u.getUsage() != null) {
                            tokens[0] += u.getUsage().getCompletionTokens();
                        }
                    })
                    .blockLast();
            return tokens[0] > 0 ? text.toString() : "";
        }

        @Override
        String header() {
            return AzureOverheadReport.header(
                    "Azure provider, inference-sdk route, against the bare azure-ai-inference client (Netty)",
                    "POST /models/chat/completions?api-version=2024-05-01-preview; bare:"
                            + " ChatCompletionsAsyncClient complete and completeStream, zero retries",
                    blockingBody,
                    streamBody,
                    headerNotes);
        }

        @Override
        void closeBare() {}
    }
}
