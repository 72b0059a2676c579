package dev.hybridinference.core;

import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** A test provider, type {@code echo}: answers with the last user message, one word per chunk. */
public final class EchoProviderFactory implements InferenceProviderFactory {
    @Override
    public String type() {
        return "echo";
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        var c = context.config();
        c.allowOnly(Set.of("type", "pricing", "delay"));
        return new EchoClient(
                context.id(),
                PricingConfig.read(c, "free", 1),
                context,
                c.duration("delay").orElse(Duration.ZERO));
    }

    /** The echo client; its calls can be held open until cancelled. */
    public static final class EchoClient extends AbstractProviderClient {
        private final Duration delay;

        EchoClient(String id, Pricing pricing, ProviderContext ctx, Duration delay) {
            super(id, "echo", DeploymentKind.LOCAL, pricing, ctx.ledger(), ctx.clock());
            this.delay = delay;
        }

        private void pause(CallContext ctx) {
            if (delay.isZero()) {
                return;
            }
            CountDownLatch cancelled = new CountDownLatch(1);
            ctx.onCancel(cancelled::countDown);
            try {
                if (cancelled.await(delay.toNanos(), TimeUnit.NANOSECONDS)) {
                    throw new CancelledException("cancelled", id(), null, 0, null, null);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancelledException("interrupted", id(), null, 0, null, e);
            }
        }

        private static String last(ChatRequest r) {
            return r.messages().get(r.messages().size() - 1).content();
        }

        @Override
        protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
            pause(ctx);
            String text = last(request);
            long words = text.split(" ").length;
            return ProviderResult.builder()
                    .text(text)
                    .finishReason(FinishReason.STOP)
                    .usage(new Usage(words, words, 0))
                    .model("echo-1")
                    .build();
        }

        @Override
        protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
            String text = last(request);
            List<String> words = new ArrayList<>(List.of(text.split("(?= )")));
            return new ProviderStream() {
                private int i;

                @Override
                public ChatChunk next() {
                    if (i == words.size()) {
                        return null;
                    }
                    pause(ctx);
                    return new ChatChunk(words.get(i++), i == words.size() ? FinishReason.STOP : null);
                }

                @Override
                public ProviderResult result() {
                    return ProviderResult.builder()
                            .text(text)
                            .finishReason(FinishReason.STOP)
                            .usage(new Usage(3, words.size(), 0))
                            .model("echo-1")
                            .build();
                }

                @Override
                public void close() {}
            };
        }
    }
}
