package dev.hybridinference.azure;

import com.azure.ai.inference.ChatCompletionsAsyncClient;
import com.azure.ai.inference.ChatCompletionsClientBuilder;
import com.azure.ai.inference.ModelServiceVersion;
import com.azure.ai.inference.models.ChatChoice;
import com.azure.ai.inference.models.ChatCompletions;
import com.azure.ai.inference.models.ChatCompletionsOptions;
import com.azure.ai.inference.models.ChatCompletionsResponseFormatJsonObject;
import com.azure.ai.inference.models.ChatCompletionsResponseFormatJsonSchema;
import com.azure.ai.inference.models.ChatCompletionsResponseFormatJsonSchemaDefinition;
import com.azure.ai.inference.models.ChatCompletionsToolCall;
import com.azure.ai.inference.models.ChatCompletionsToolDefinition;
import com.azure.ai.inference.models.ChatRequestAssistantMessage;
import com.azure.ai.inference.models.ChatRequestMessage;
import com.azure.ai.inference.models.ChatRequestSystemMessage;
import com.azure.ai.inference.models.ChatRequestToolMessage;
import com.azure.ai.inference.models.ChatRequestUserMessage;
import com.azure.ai.inference.models.CompletionsFinishReason;
import com.azure.ai.inference.models.CompletionsUsage;
import com.azure.ai.inference.models.FunctionCall;
import com.azure.ai.inference.models.FunctionDefinition;
import com.azure.ai.inference.models.StreamingChatChoiceUpdate;
import com.azure.ai.inference.models.StreamingChatCompletionsUpdate;
import com.azure.ai.inference.models.StreamingChatResponseMessageUpdate;
import com.azure.ai.inference.models.StreamingChatResponseToolCallUpdate;
import com.azure.core.credential.AzureKeyCredential;
import com.azure.core.exception.HttpResponseException;
import com.azure.core.http.HttpHeaderName;
import com.azure.core.http.HttpHeaders;
import com.azure.core.http.HttpPipelineCallContext;
import com.azure.core.http.HttpPipelineNextPolicy;
import com.azure.core.http.HttpPipelineNextSyncPolicy;
import com.azure.core.http.HttpResponse;
import com.azure.core.http.netty.NettyAsyncHttpClientBuilder;
import com.azure.core.http.policy.HttpLogDetailLevel;
import com.azure.core.http.policy.HttpLogOptions;
import com.azure.core.http.policy.HttpPipelinePolicy;
import com.azure.core.http.policy.RetryPolicy;
import com.azure.core.util.BinaryData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.http.HttpErrors;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.http.StreamAssembler;
import dev.hybridinference.core.internal.openai.ChunkDecoder;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.StreamBridge;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SSLException;
import org.reactivestreams.Subscription;
import reactor.core.publisher.BaseSubscriber;
import reactor.core.publisher.Mono;

/**
 * The azure-ai-inference SDK's route: {@code ChatCompletionsAsyncClient} on the Netty HTTP client, blocking
 * calls and streams alike, so that both can be cancelled. The pipeline retries nothing (the core's retry
 * layer decides), and logs nothing of the body.
 *
 * <p>The request is built into the SDK's typed options, every field the SDK models with the value the core's
 * OpenAI codec gives it on the other routes. Fields it does not model ({@code top_k}) are added to the
 * body by this route's pipeline policy, with the {@code extra-parameters} header, when configured: the SDK
 * silently drops its own "additional properties". The same policy notes each response's status and headers
 * and keeps an error's body, which the SDK's exceptions do not reliably carry.
 */
final class InferenceSdkRoute implements AzureRoute {
    /** The key under which a call's {@link Probe} travels from the Reactor context to the pipeline policy. */
    private static final String PROBE = "hybrid-inference.azure.probe";

    private static final int MAX_ERROR_BODY = 16 * 1024;

    private final String providerId;
    private final String label;
    private final String model;
    private final ChatCompletionsAsyncClient client;
    private final com.azure.ai.inference.models.ExtraParameters extras;
    private final Duration callTimeout;
    private final ResponseLimits limits;
    private final Clock clock;

    InferenceSdkRoute(AzureClient.Builder b) {
        this.providerId = b.id();
        this.label = b.endpoint;
        this.model = b.model;
        this.callTimeout = b.callTimeout;
        this.limits = b.limits;
        this.clock = b.clock();
        this.extras = b.extraParameters == null
                ? null
                : com.azure.ai.inference.models.ExtraParameters.fromString(b.extraParameters.headerValue());
        reactor.netty.http.client.HttpClient netty = reactor.netty.http.client.HttpClient.create();
        if (b.trust != null) {
            SslContext ssl;
            try {
                ssl = SslContextBuilder.forClient().trustManager(b.trust).build();
            } catch (SSLException e) {
                throw new IllegalStateException("cannot set up TLS with the given trust manager: " + e.getMessage(), e);
            }
            netty = netty.secure(spec -> spec.sslContext(ssl));
        }
        ChatCompletionsClientBuilder cb = new ChatCompletionsClientBuilder()
                .endpoint(b.endpoint)
                .httpClient(new NettyAsyncHttpClientBuilder(netty)
                        .connectTimeout(b.connectTimeout)
                        .responseTimeout(b.readTimeout)
                        .readTimeout(b.readTimeout)
                        .writeTimeout(b.readTimeout)
                        .build())
                // No retries here: the core's retry layer is the only one (it knows the caller's deadline).
                .retryPolicy(new NoRetries())
                .httpLogOptions(new HttpLogOptions().setLogLevel(HttpLogDetailLevel.NONE))
                .addPolicy(new ProbePolicy());
        if (b.apiVersion != null) {
            cb.serviceVersion(serviceVersion(b.apiVersion));
        }
        if (b.apiKey != null) {
            cb.credential(new AzureKeyCredential(b.apiKey));
        } else {
            cb.credential(b.credential).scopes(b.scopesOrDefault().toArray(new String[0]));
        }
        this.client = cb.buildAsyncClient();
    }

    /** The SDK's service version for an {@code api-version} value. */
    static ModelServiceVersion serviceVersion(String version) {
        for (ModelServiceVersion v : ModelServiceVersion.values()) {
            if (v.getVersion().equals(version)) {
                return v;
            }
        }
        List<String> known = new ArrayList<>();
        for (ModelServiceVersion v : ModelServiceVersion.values()) {
            known.add(v.getVersion());
        }
        throw new IllegalArgumentException("apiVersion must be one of " + known + ", got \"" + version + "\"");
    }

    @Override
    public String label() {
        return label;
    }

    @Override
    public void close() {
        // The Netty client's connection pool and event loops are reactor-netty's shared resources.
    }

    // ---------------------------------------------------------------- requests

    private String model(ChatRequest request) {
        return request.model().orElse(model);
    }

    private ChatCompletionsOptions options(ChatRequest request) {
        ChatCompletionsOptions options;
        try {
            options = options(request, model(request));
        } catch (RuntimeException e) {
            throw new InvalidRequestException(
                    "the request cannot be expressed in the azure-ai-inference SDK's options: " + e.getMessage(),
                    providerId,
                    label,
                    0,
                    null,
                    e);
        }
        if (extras != null) {
            options.setExtraParams(extras);
        }
        return options;
    }

    /**
     * The SDK's options for a request, built from its typed classes: every field the core's OpenAI codec writes
     * and the SDK models, with the same values. (Encoding the request to JSON and reading it back with {@code
     * ChatCompletionsOptions.fromJson} gives the same options, at several times the cost per call.) {@code
     * top_k}, which the SDK does not model, is left to {@link ProbePolicy}.
     *
     * @throws IllegalArgumentException when a tool's parameters or the response format's schema is not JSON
     *     (an object, for the schema)
     */
    static ChatCompletionsOptions options(ChatRequest request, String model) {
        List<Message> messages = request.messages();
        List<ChatRequestMessage> out = new ArrayList<>(messages.size());
        for (Message m : messages) {
            out.add(message(m));
        }
        ChatCompletionsOptions o = new ChatCompletionsOptions(out);
        if (model != null && !model.isEmpty()) {
            o.setModel(model);
        }
        if (request.temperature().isPresent()) {
            o.setTemperature(request.temperature().getAsDouble());
        }
        if (request.topP().isPresent()) {
            o.setTopP(request.topP().getAsDouble());
        }
        if (request.maxTokens().isPresent()) {
            o.setMaxTokens(request.maxTokens().getAsInt());
        }
        if (!request.stop().isEmpty()) {
            o.setStop(request.stop());
        }
        if (request.seed().isPresent()) {
            o.setSeed(request.seed().getAsLong());
        }
        ResponseFormat f = request.responseFormat();
        if (f.type() == ResponseFormat.Type.JSON_OBJECT) {
            o.setResponseFormat(new ChatCompletionsResponseFormatJsonObject());
        } else if (f.type() == ResponseFormat.Type.JSON_SCHEMA) {
            o.setResponseFormat(new ChatCompletionsResponseFormatJsonSchema(
                    new ChatCompletionsResponseFormatJsonSchemaDefinition(f.schemaName(), schema(f.schemaJson()))));
        }
        if (!request.tools().isEmpty()) {
            List<ChatCompletionsToolDefinition> tools =
                    new ArrayList<>(request.tools().size());
            for (ToolDefinition t : request.tools()) {
                FunctionDefinition fn = new FunctionDefinition(t.name())
                        .setParameters(
                                BinaryData.fromString(json(t.parametersJsonSchema(), "tool " + t.name() + " parameters")
                                        .toString()));
                if (!t.description().isEmpty()) {
                    fn.setDescription(t.description());
                }
                tools.add(new ChatCompletionsToolDefinition(fn));
            }
            o.setTools(tools);
        }
        return o;
    }

    /** One message as the SDK models it; an assistant message that only calls tools has no content, as in the codec. */
    private static ChatRequestMessage message(Message m) {
        switch (m.role()) {
            case SYSTEM:
                return new ChatRequestSystemMessage(m.content());
            case USER:
                return new ChatRequestUserMessage(m.content());
            case TOOL:
                return new ChatRequestToolMessage(m.toolCallId()).setContent(m.content());
            case ASSISTANT:
            default:
                ChatRequestAssistantMessage a = new ChatRequestAssistantMessage();
                if (m.toolCalls().isEmpty()) {
                    return a.setContent(m.content());
                }
                List<ChatCompletionsToolCall> calls =
                        new ArrayList<>(m.toolCalls().size());
                for (ToolCall c : m.toolCalls()) {
                    calls.add(new ChatCompletionsToolCall(c.id(), new FunctionCall(c.name(), c.argumentsJson())));
                }
                return a.setContent(m.content().isEmpty() ? null : m.content()).setToolCalls(calls);
        }
    }

    /** A JSON schema's top-level fields, each value as the SDK keeps it. */
    private static Map<String, BinaryData> schema(String schemaJson) {
        JsonNode tree = json(schemaJson, "response format schema");
        if (!tree.isObject()) {
            throw new IllegalArgumentException("response format schema is not a JSON object");
        }
        Map<String, BinaryData> fields = new LinkedHashMap<>();
        tree.fields()
                .forEachRemaining(e -> fields.put(
                        e.getKey(), BinaryData.fromString(e.getValue().toString())));
        return fields;
    }

    private static JsonNode json(String text, String what) {
        JsonNode tree;
        try {
            tree = ChunkDecoder.MAPPER.readTree(text);
        } catch (IOException e) {
            throw new IllegalArgumentException(what + " is not valid JSON: " + e.getMessage(), e);
        }
        if (tree == null || tree.isMissingNode()) {
            throw new IllegalArgumentException(what + " is empty, not JSON");
        }
        return tree;
    }

    /** A call's probe, with the fields the SDK does not model when they are to be sent. */
    private Probe probe(ChatRequest request) {
        Probe p = new Probe();
        if (extras != null && request.topK().isPresent()) {
            p.extraFields = Map.of("top_k", request.topK().getAsInt());
        }
        return p;
    }

    @Override
    public ProviderResult chat(ChatRequest request, CallContext ctx) {
        Probe probe = probe(request);
        CompletableFuture<ChatCompletions> call = client.complete(options(request))
                .contextWrite(c -> c.put(PROBE, probe))
                .toFuture();
        ctx.onCancel(() -> {
            call.cancel(true);
            probe.close();
        });
        ChatCompletions done;
        try {
            done = await(call, probe, ctx, "the answer");
        } finally {
            ctx.onCancel(null);
        }
        return result(done);
    }

    private <T> T await(CompletableFuture<T> f, Probe probe, CallContext ctx, String what) {
        long budget = Math.min(ctx.deadline().remainingNanos(), callTimeout.toNanos());
        try {
            return f.get(Math.max(0, budget), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            probe.close();
            boolean deadline = ctx.deadline().remainingNanos() <= callTimeout.toNanos();
            throw new InferenceTimeoutException(
                    deadline
                            ? "the request's deadline passed before " + what + " came"
                            : "no answer within the call timeout of " + callTimeout,
                    providerId,
                    label,
                    deadline,
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            f.cancel(true);
            probe.close();
            throw new CancelledException("interrupted while waiting for " + what, providerId, label, 0, null, e);
        } catch (ExecutionException | CompletionException e) {
            throw failure(e.getCause(), ctx);
        } catch (java.util.concurrent.CancellationException e) {
            throw new CancelledException("call cancelled", providerId, label, 0, null, e);
        }
    }

    private ProviderResult result(ChatCompletions c) {
        List<ChatChoice> choices = c.getChoices();
        if (choices == null || choices.isEmpty()) {
            throw malformed(providerId, label, "response has no choices");
        }
        ChatChoice choice = choices.get(0);
        String text = "";
        List<ToolCall> calls = List.of();
        if (choice.getMessage() != null) {
            text = choice.getMessage().getContent() == null
                    ? ""
                    : choice.getMessage().getContent();
            List<ChatCompletionsToolCall> tc = choice.getMessage().getToolCalls();
            if (tc != null && !tc.isEmpty()) {
                if (tc.size() > limits.maxToolCalls()) {
                    throw malformed(
                            providerId,
                            label,
                            "response has " + tc.size() + " tool calls, more than the limit of "
                                    + limits.maxToolCalls());
                }
                calls = new ArrayList<>(tc.size());
                for (ChatCompletionsToolCall t : tc) {
                    calls.add(new ToolCall(
                            t.getId() == null ? "" : t.getId(),
                            t.getFunction() == null ? "" : t.getFunction().getName(),
                            t.getFunction() == null || t.getFunction().getArguments() == null
                                    ? ""
                                    : t.getFunction().getArguments()));
                }
            }
        }
        return ProviderResult.builder()
                .text(text)
                .toolCalls(calls)
                .finishReason(finish(choice.getFinishReason()))
                .usage(usage(c.getUsage()))
                .model(c.getModel() == null || c.getModel().isEmpty() ? String.valueOf(model) : c.getModel())
                .build();
    }

    private static FinishReason finish(CompletionsFinishReason r) {
        return r == null ? FinishReason.OTHER : FinishReason.fromWire(r.toString());
    }

    private static Usage usage(CompletionsUsage u) {
        return u == null
                ? Usage.ZERO
                : new Usage(Math.max(0, u.getPromptTokens()), Math.max(0, u.getCompletionTokens()), 0);
    }

    // ---------------------------------------------------------------- streams

    @Override
    public ProviderStream stream(ChatRequest request, CallContext ctx) {
        Probe probe = probe(request);
        StreamBridge bridge = new StreamBridge(ctx, label);
        Updates updates = new Updates(bridge, probe, request);
        bridge.partialResult(updates::result);
        bridge.mapErrors(t -> failure(t, ctx));
        bridge.onCancel(() -> {
            updates.dispose();
            probe.close();
        });
        client.completeStream(options(request))
                .contextWrite(c -> c.put(PROBE, probe))
                .subscribe(updates);
        try {
            await(probe.started, probe, ctx, "the stream started");
        } catch (RuntimeException e) {
            bridge.close();
            throw e;
        }
        return bridge;
    }

    /** Takes the SDK's updates on its I/O thread and hands one chunk per update to the bridge, on demand. */
    private final class Updates extends BaseSubscriber<StreamingChatCompletionsUpdate> {
        private final StreamBridge bridge;
        private final Probe probe;
        private final StreamAssembler assembler;
        /** Tool calls by their order: the SDK's updates carry no index, only an id on each call's first part. */
        private final List<ToolCallParts> toolCalls = new ArrayList<>();
        /** Updates received; only the SDK's thread touches it. */
        private long updates;

        Updates(StreamBridge bridge, Probe probe, ChatRequest request) {
            this.bridge = bridge;
            this.probe = probe;
            this.assembler = new StreamAssembler(
                    providerId, label, model(request), StreamAssembler.promptChars(request), limits);
        }

        @Override
        protected void hookOnSubscribe(Subscription s) {
            bridge.onDemand(this::request);
        }

        @Override
        protected void hookOnNext(StreamingChatCompletionsUpdate u) {
            updates++;
            ChatChunk chunk;
            try {
                synchronized (assembler) {
                    chunk = fold(u);
                }
            } catch (RuntimeException e) {
                bridge.onError(e);
                dispose();
                return;
            }
            if (chunk == null) {
                bridge.onEmpty();
            } else if (!bridge.onChunk(chunk)) {
                dispose();
            }
        }

        private ChatChunk fold(StreamingChatCompletionsUpdate u) {
            if (u.getUsage() != null) {
                assembler.usage(usage(u.getUsage()));
            }
            List<StreamingChatChoiceUpdate> choices = u.getChoices();
            if (choices == null || choices.isEmpty()) {
                return null;
            }
            StreamingChatChoiceUpdate choice = choices.get(0);
            FinishReason fr = choice.getFinishReason() == null ? null : finish(choice.getFinishReason());
            StreamingChatResponseMessageUpdate delta = choice.getDelta();
            boolean tools = false;
            if (delta != null && delta.getToolCalls() != null) {
                for (StreamingChatResponseToolCallUpdate t : delta.getToolCalls()) {
                    tools |= addToolPart(t);
                }
            }
            ChatChunk chunk = assembler.appendText(delta == null ? null : delta.getContent(), fr);
            return chunk == null && tools ? new ChatChunk("", fr) : chunk;
        }

        private boolean addToolPart(StreamingChatResponseToolCallUpdate t) {
            boolean first = t.getId() != null && !t.getId().isEmpty();
            if (first || toolCalls.isEmpty()) {
                if (toolCalls.size() >= limits.maxToolCalls()) {
                    throw assembler.malformed(
                            "the answer has more tool calls than the limit of " + limits.maxToolCalls(), null);
                }
                toolCalls.add(new ToolCallParts(first ? t.getId() : ""));
            }
            ToolCallParts p = toolCalls.get(toolCalls.size() - 1);
            if (t.getFunction() != null) {
                if (t.getFunction().getName() != null) {
                    p.name.append(t.getFunction().getName());
                }
                if (t.getFunction().getArguments() != null) {
                    p.arguments.append(t.getFunction().getArguments());
                }
                if (p.name.length() + p.arguments.length() > limits.maxStreamChars()) {
                    throw assembler.malformed(
                            "the answer exceeds the limit of " + limits.maxStreamChars() + " characters", null);
                }
            }
            return true;
        }

        /** What was assembled so far; the whole answer once the stream completed. */
        ProviderResult result() {
            synchronized (assembler) {
                ProviderResult r = assembler.result();
                if (toolCalls.isEmpty()) {
                    return r;
                }
                List<ToolCall> calls = new ArrayList<>(toolCalls.size());
                for (ToolCallParts p : toolCalls) {
                    calls.add(new ToolCall(p.id, p.name.toString(), p.arguments.toString()));
                }
                return r.toBuilder().toolCalls(calls).build();
            }
        }

        @Override
        protected void hookOnComplete() {
            probe.started.complete(null);
            ProviderResult r;
            try {
                if (updates == 0) {
                    // A service's stream always carries at least its finish; an empty one was not an event stream.
                    throw assembler.malformed(
                            "the stream ended without a single update (the response's content type was "
                                    + (probe.contentType == null ? "not given" : probe.contentType)
                                    + ", not an event stream that the SDK could read)",
                            null);
                }
                synchronized (assembler) {
                    assembler.end();
                }
                r = result();
            } catch (RuntimeException e) {
                bridge.onError(e);
                return;
            }
            bridge.onComplete(r);
        }

        @Override
        protected void hookOnError(Throwable t) {
            probe.started.completeExceptionally(t);
            bridge.onError(t);
        }
    }

    private static final class ToolCallParts {
        final String id;
        final StringBuilder name = new StringBuilder();
        final StringBuilder arguments = new StringBuilder();

        ToolCallParts(String id) {
            this.id = id;
        }
    }

    // ---------------------------------------------------------------- errors

    private static dev.hybridinference.core.MalformedResponseException malformed(
            String providerId, String endpoint, String message) {
        return new dev.hybridinference.core.MalformedResponseException(message, providerId, endpoint, 0, null, null);
    }

    /** The exception for a failed call, from the SDK's exception and what the probe saw of the response. */
    private InferenceException failure(Throwable t, CallContext ctx) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        if (t instanceof InferenceException) {
            return (InferenceException) t;
        }
        if (ctx.isCancelled()) {
            return new CancelledException("call cancelled", providerId, label, 0, null, t);
        }
        if (t instanceof HttpResponseException && ((HttpResponseException) t).getResponse() != null) {
            HttpResponse r = ((HttpResponseException) t).getResponse();
            HttpHeaders headers = r.getHeaders();
            String body = Probe.errorBody(r);
            if (body == null) {
                Object value = ((HttpResponseException) t).getValue();
                body = value == null ? t.getMessage() : value.toString();
            }
            return HttpErrors.forStatus(
                    providerId,
                    label,
                    r.getStatusCode(),
                    name -> headers.getValue(HttpHeaderName.fromString(name)),
                    body,
                    clock);
        }
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof com.fasterxml.jackson.core.JacksonException
                    || c.getClass().getName().startsWith("com.azure.json")) {
                return malformed(
                        providerId,
                        label,
                        "the response is not valid JSON: "
                                + String.valueOf(c.getMessage())
                                        .lines()
                                        .findFirst()
                                        .orElse(""));
            }
        }
        Throwable io = t;
        while (io != null && !(io instanceof IOException)) {
            io = io.getCause() == io ? null : io.getCause();
        }
        if (io != null) {
            return HttpErrors.forIo(providerId, label, (IOException) io, ctx);
        }
        if (t instanceof TimeoutException || t.getClass().getName().contains("Timeout")) {
            return new InferenceTimeoutException("timed out (" + t.getMessage() + ")", providerId, label, false, t);
        }
        return new ProviderUnavailableException(
                "the SDK failed: " + t.getClass().getSimpleName() + ": " + t.getMessage(),
                providerId,
                label,
                0,
                null,
                t);
    }

    /**
     * What one call's pipeline policy saw: when the response started, and an error's body. Travels in the
     * Reactor context, which the SDK hands to the pipeline.
     */
    private static final class Probe {
        final CompletableFuture<Void> started = new CompletableFuture<>();
        volatile Map<String, Object> extraFields;
        volatile String contentType;
        private HttpResponse response;
        private boolean closed;

        /** Keeps the response, to close it on cancel; one that comes after the cancel is closed at once. */
        void response(HttpResponse r) {
            boolean closeNow;
            synchronized (this) {
                response = r;
                closeNow = closed;
            }
            if (closeNow) {
                r.close();
            }
        }

        /**
         * Closes the response's connection. The SDK's stream caches what it reads ({@code Flux.cache()}), so
         * cancelling a subscription to it leaves the SDK reading the body to its end; closing the response
         * is what makes the connection go.
         */
        void close() {
            HttpResponse r;
            synchronized (this) {
                closed = true;
                r = response;
            }
            if (r != null) {
                r.close();
            }
        }

        /** The body kept by {@link ProbePolicy} for an error response, or null. */
        static String errorBody(HttpResponse r) {
            return r instanceof KeptBody ? ((KeptBody) r).body : null;
        }
    }

    /** Adds the fields the SDK does not model to the body, and notes the response for the call's probe. */
    private static final class ProbePolicy implements HttpPipelinePolicy {
        @Override
        public Mono<HttpResponse> process(HttpPipelineCallContext context, HttpPipelineNextPolicy next) {
            Probe probe = (Probe) context.getData(PROBE).orElse(null);
            if (probe == null) {
                return next.process();
            }
            Map<String, Object> fields = probe.extraFields;
            if (fields != null && context.getHttpRequest().getBodyAsBinaryData() != null) {
                try {
                    ObjectNode body = (ObjectNode) ChunkDecoder.MAPPER.readTree(
                            context.getHttpRequest().getBodyAsBinaryData().toBytes());
                    fields.forEach((k, v) -> body.set(k, ChunkDecoder.MAPPER.valueToTree(v)));
                    byte[] bytes = ChunkDecoder.MAPPER.writeValueAsBytes(body);
                    context.getHttpRequest()
                            .setBody(BinaryData.fromBytes(bytes))
                            .setHeader(HttpHeaderName.CONTENT_LENGTH, Integer.toString(bytes.length));
                } catch (IOException | ClassCastException e) {
                    return Mono.error(e);
                }
            }
            // A plain map: the common answer costs no inner publisher. An error's body is kept as the SDK reads it
            // (it reads it whole to build its exception), from a buffered copy, so nothing extra is read here.
            return next.process().map(response -> {
                if (response.getStatusCode() < 400) {
                    probe.contentType = response.getHeaders().getValue(HttpHeaderName.CONTENT_TYPE);
                    probe.response(response);
                    probe.started.complete(null);
                    return response;
                }
                return new KeptBody(response.buffer());
            });
        }
    }

    /**
     * The pipeline's retry step, doing nothing: the core's retry layer is the only one. (A retry strategy that
     * never retries still runs azure-core's retry policy on every call, and that policy logs "Retry attempts
     * have been exhausted" for every answer once no retries are left, at INFO, and for every I/O failure, at
     * ERROR.)
     */
    private static final class NoRetries extends RetryPolicy {
        @Override
        public Mono<HttpResponse> process(HttpPipelineCallContext context, HttpPipelineNextPolicy next) {
            return next.process();
        }

        @Override
        public HttpResponse processSync(HttpPipelineCallContext context, HttpPipelineNextSyncPolicy next) {
            return next.processSync();
        }
    }

    /**
     * An error response whose body is kept (bounded) for the exception's message when the SDK reads it; the
     * response is a buffered copy, so that the body can be read more than once.
     */
    private static final class KeptBody extends HttpResponse {
        private final HttpResponse inner;
        volatile String body;

        KeptBody(HttpResponse inner) {
            super(inner.getRequest());
            this.inner = inner;
        }

        private void keep(byte[] bytes) {
            int n = Math.min(bytes.length, MAX_ERROR_BODY);
            body = new String(bytes, 0, n, StandardCharsets.UTF_8);
        }

        @Override
        public int getStatusCode() {
            return inner.getStatusCode();
        }

        @Override
        @Deprecated
        public String getHeaderValue(String name) {
            return inner.getHeaderValue(name);
        }

        @Override
        public HttpHeaders getHeaders() {
            return inner.getHeaders();
        }

        @Override
        public reactor.core.publisher.Flux<java.nio.ByteBuffer> getBody() {
            return inner.getBody();
        }

        @Override
        public Mono<byte[]> getBodyAsByteArray() {
            return inner.getBodyAsByteArray().doOnNext(this::keep);
        }

        @Override
        public void close() {
            inner.close();
        }

        @Override
        public Mono<String> getBodyAsString() {
            return getBodyAsByteArray().map(b -> new String(b, StandardCharsets.UTF_8));
        }

        @Override
        public Mono<String> getBodyAsString(java.nio.charset.Charset charset) {
            return inner.getBodyAsString(charset);
        }
    }
}
