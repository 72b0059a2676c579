package dev.hybridinference.core;

import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test provider, type {@code flaky}: its first {@code failures} calls fail with a retryable {@link
 * ProviderUnavailableException}, later ones answer "ok", naming the model the request named (or {@code
 * flaky-1}). It reports the models listed under {@code served}, and remembers every request it got.
 */
public final class FlakyProviderFactory implements InferenceProviderFactory {
    @Override
    public String type() {
        return "flaky";
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        var c = context.config();
        c.allowOnly(Set.of("type", "pricing", "failures", "served"));
        return new FlakyClient(
                context,
                PricingConfig.read(c, "free", 1),
                c.integer("failures", 0).orElse(0),
                c.stringList("served"));
    }

    /** The flaky client. */
    public static final class FlakyClient extends AbstractProviderClient {
        private final AtomicInteger failuresLeft;
        private final List<String> served;
        private final List<ChatRequest> requests = new CopyOnWriteArrayList<>();

        FlakyClient(ProviderContext ctx, Pricing pricing, int failures, List<String> served) {
            super(ctx.id(), "flaky", DeploymentKind.SERVERLESS, pricing, ctx.ledger(), ctx.clock());
            this.failuresLeft = new AtomicInteger(failures);
            this.served = List.copyOf(served);
        }

        /** The requests it got, in order. */
        public List<ChatRequest> requests() {
            return requests;
        }

        @Override
        protected List<String> models() {
            return served;
        }

        @Override
        protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
            requests.add(request);
            if (failuresLeft.getAndDecrement() > 0) {
                throw new ProviderUnavailableException("flaky on purpose", id(), null, 503, null, null);
            }
            return ProviderResult.builder()
                    .text("ok")
                    .finishReason(FinishReason.STOP)
                    .usage(new Usage(10, 1, 0))
                    .model(request.model().orElse("flaky-1"))
                    .build();
        }

        @Override
        protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
            throw new InvalidRequestException("the flaky test provider does not stream", id(), null, 0, null, null);
        }
    }
}
