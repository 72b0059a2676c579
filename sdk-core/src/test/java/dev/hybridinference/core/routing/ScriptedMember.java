package dev.hybridinference.core.routing;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * An in-process member whose behaviour a test scripts: each call takes the next scripted step (an answer
 * or an error), or answers {@code "from <id>"} when the script is empty. Counts its calls and the most
 * calls it had in flight at once.
 */
final class ScriptedMember extends AbstractProviderClient {
    private final ConcurrentLinkedQueue<Supplier<String>> script = new ConcurrentLinkedQueue<>();
    private final AtomicInteger calls = new AtomicInteger();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger maxInFlight = new AtomicInteger();
    private final List<ChatRequest> requests = java.util.Collections.synchronizedList(new ArrayList<>());
    private volatile Duration latency = Duration.ZERO;
    private volatile ClientInfo.Capabilities capabilities = ClientInfo.Capabilities.DEFAULTS;
    private volatile List<String> models = List.of();
    private volatile String unavailable;

    ScriptedMember(String id, DeploymentKind kind, Pricing pricing, CostLedger ledger) {
        super(id, "scripted", kind, pricing, ledger, Clock.systemUTC());
    }

    /** A server member billed per token at $1 in / $1 out per million. */
    static ScriptedMember perToken(String id, CostLedger ledger) {
        return new ScriptedMember(
                id,
                DeploymentKind.SERVER,
                new Pricing.PerToken(java.math.BigDecimal.ONE, java.math.BigDecimal.ONE, null),
                ledger);
    }

    /** Queues steps: each supplies the answer or throws. */
    @SafeVarargs
    final ScriptedMember then(Supplier<String>... steps) {
        script.addAll(List.of(steps));
        return this;
    }

    /** Queues a failure. */
    ScriptedMember thenFail(InferenceException e) {
        script.add(() -> {
            throw e;
        });
        return this;
    }

    /** What it says it can take (read by a composite client when it is built). */
    ScriptedMember capabilities(ClientInfo.Capabilities capabilities) {
        this.capabilities = capabilities;
        return this;
    }

    /** Says it cannot take any call, for this reason (null: available again). */
    ScriptedMember unavailable(String reason) {
        this.unavailable = reason;
        return this;
    }

    @Override
    public java.util.Optional<String> unavailableReason() {
        return java.util.Optional.ofNullable(unavailable);
    }

    /** The models it says it serves; none unless set. */
    ScriptedMember models(String... models) {
        this.models = List.of(models);
        return this;
    }

    @Override
    protected ClientInfo.Capabilities capabilities() {
        return capabilities;
    }

    @Override
    protected List<String> models() {
        return models;
    }

    ScriptedMember latency(Duration latency) {
        this.latency = latency;
        return this;
    }

    int calls() {
        return calls.get();
    }

    int maxInFlight() {
        return maxInFlight.get();
    }

    List<ChatRequest> requests() {
        return requests;
    }

    private String step(ChatRequest request) {
        calls.incrementAndGet();
        requests.add(request);
        int now = inFlight.incrementAndGet();
        maxInFlight.accumulateAndGet(now, Math::max);
        try {
            if (!latency.isZero()) {
                Thread.sleep(latency.toMillis());
            }
            Supplier<String> s = script.poll();
            return s == null ? "from " + id() : s.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new dev.hybridinference.core.CancelledException("interrupted", id(), null, 0, null, e);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        String text = step(request);
        return ProviderResult.builder()
                .text(text)
                .finishReason(FinishReason.STOP)
                .usage(new Usage(10, 5, 0))
                .model("model-" + id())
                .build();
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        String text = step(request);
        String[] words = text.split("(?= )");
        return new ProviderStream() {
            private int i;

            @Override
            public ChatChunk next() {
                if (i == words.length) {
                    return null;
                }
                String w = words[i++];
                if (w.contains("!fail")) {
                    throw new dev.hybridinference.core.ProviderUnavailableException(
                            "stream broke", id(), null, 0, null, null);
                }
                return new ChatChunk(w, i == words.length ? FinishReason.STOP : null);
            }

            @Override
            public ProviderResult result() {
                return ProviderResult.builder()
                        .text(text)
                        .finishReason(FinishReason.STOP)
                        .usage(new Usage(10, words.length, 0))
                        .model("model-" + id())
                        .build();
            }

            @Override
            public void close() {}
        };
    }
}
