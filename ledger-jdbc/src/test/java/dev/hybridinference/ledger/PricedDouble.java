package dev.hybridinference.ledger;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import java.math.BigDecimal;
import java.time.Clock;

/**
 * A provider that answers at once, priced per token with rates of many decimal places, so that every call
 * costs an exact amount no double could hold. Its input tokens are the prompt's length, its output tokens 1
 * to 17 depending on it.
 */
final class PricedDouble extends AbstractProviderClient {
    static final Pricing PRICING =
            new Pricing.PerToken(new BigDecimal("0.150000000000123"), new BigDecimal("0.600000000000007"), null);

    PricedDouble(String id, CostLedger ledger, Clock clock) {
        super(id, "double", DeploymentKind.SERVERLESS, PRICING, ledger, clock);
    }

    private static ProviderResult answer(ChatRequest request) {
        String text = request.messages().get(request.messages().size() - 1).content();
        return ProviderResult.builder()
                .text(text)
                .finishReason(FinishReason.STOP)
                .usage(new Usage(text.length(), 1 + text.length() % 17, 0))
                .model("double-1")
                .build();
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        return answer(request);
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        ProviderResult result = answer(request);
        return new ProviderStream() {
            private boolean sent;

            @Override
            public ChatChunk next() {
                if (sent) {
                    return null;
                }
                sent = true;
                return new ChatChunk(result.text(), FinishReason.STOP);
            }

            @Override
            public ProviderResult result() {
                return result;
            }

            @Override
            public void close() {}
        };
    }
}
