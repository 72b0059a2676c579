package dev.hybridinference.core.http;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import java.time.Clock;
import java.time.Duration;

/** The smallest provider on the OpenAI-compatible transport: one server, attempts recorded as vLLM does. */
final class OpenAiTestClient extends AbstractProviderClient {
    private final OpenAiTransport transport;
    private final OpenAiTransport.Server server;

    OpenAiTestClient(String url, String apiKey, Pricing pricing, CostLedger ledger, ResponseLimits limits) {
        this(url, RequestHeaders.bearer(apiKey), pricing, ledger, limits);
    }

    OpenAiTestClient(String url, RequestHeaders headers, Pricing pricing, CostLedger ledger, ResponseLimits limits) {
        super("test", "openai-test", DeploymentKind.SERVER, pricing, ledger, Clock.systemUTC());
        this.server = OpenAiTransport.Server.of(url);
        this.transport = OpenAiTransport.builder("test")
                .headers(headers)
                .connectTimeout(Duration.ofSeconds(5))
                .readTimeout(Duration.ofSeconds(5))
                .callTimeout(Duration.ofSeconds(20))
                .limits(limits)
                .build();
    }

    OpenAiTransport.Server server() {
        return server;
    }

    OpenAiTransport transport() {
        return transport;
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        OpenAiCodec.Completion c = transport.complete(server, request, "m", ctx);
        return ProviderResult.builder()
                .text(c.text())
                .toolCalls(c.toolCalls())
                .finishReason(c.finishReason())
                .usage(c.usage())
                .model(c.model())
                .build();
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        long start = System.nanoTime();
        ProviderStream s = transport.stream(server, request, "m", ctx);
        ctx.addAttempt(new Attempt(
                "test",
                server.label(),
                "only server",
                Attempt.Outcome.SUCCEEDED,
                Duration.ofNanos(System.nanoTime() - start),
                null));
        return s;
    }

    @Override
    protected void doClose() {
        transport.shutdown();
    }
}
