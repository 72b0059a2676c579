package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.RetryPolicy;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * Item 6: the composite client's circuit breaker. A member that throws something other than an {@code
 * InferenceException} (a bug in a custom member) during its recovery probe must not leave the circuit
 * stuck open for good: once the member is healed, later calls reach it again, and the caller sees a
 * typed error, not the member's {@link IllegalStateException}. When every member's circuit is open, the
 * error says when to come back ({@code retryAfter}). This item is reached through {@link
 * HybridClient#builder()} with scripted members, since no server response makes a member throw an
 * untyped exception.
 */
@FaultItem(value = 6, title = "Circuit breaker")
class Item06CircuitBreakerTest extends FaultTestBase {
    private static final RetryPolicy ONE_ROUND = new RetryPolicy(
            2, Duration.ofMillis(1), Duration.ofMillis(1), 1, 0, Duration.ofMillis(1), Duration.ofMillis(100));

    @Test
    void aProbeThatThrowsAnUntypedExceptionDoesNotKeepTheCircuitOpenForGood() {
        ScriptedMember member = new ScriptedMember("flaky")
                .then(() -> new ProviderUnavailableException("down for a moment", "flaky", null, 503, null, null))
                .then(() -> new IllegalStateException("bug in a custom member"));
        HybridClient client = using(HybridClient.builder()
                .id("front")
                .member("flaky", member)
                .circuitBreaker(1, Duration.ofMillis(150))
                .retry(new RetryPolicy(
                        1,
                        Duration.ofMillis(1),
                        Duration.ofMillis(1),
                        1,
                        0,
                        Duration.ofMillis(1),
                        Duration.ofMillis(1)))
                .build());

        Probe.Outcome<ChatResponse> opens = probe.chat(client, ask("one"), LIMIT);
        assertThat(opens.failure()).as("first call: " + opens.describe()).isNotNull();
        Probe.sleep(250); // past the cooldown: the next call is the recovery probe
        Probe.Outcome<ChatResponse> probeCall = probe.chat(client, ask("two"), LIMIT);
        assertThat(probeCall.error())
                .as("the recovery probe whose member threw IllegalStateException: " + probeCall.describe())
                .isInstanceOf(InferenceException.class);

        List<String> failures = new ArrayList<>();
        int before = member.calls.get();
        for (int i = 0; i < 5; i++) {
            Probe.sleep(200); // a cooldown at most, whatever the probe's failure did to the circuit
            Probe.Outcome<ChatResponse> o = probe.chat(client, ask("healed " + i), LIMIT);
            if (!o.ok()) {
                failures.add("call " + i + ": " + o.describe());
            }
        }
        assertThat(member.calls.get() - before)
                .as("calls that reached the healed member (failures: %s)", failures)
                .isGreaterThanOrEqualTo(4);
        assertThat(failures).as("calls once the member healed").hasSizeLessThanOrEqualTo(1);
    }

    @Test
    void whenEveryCircuitIsOpenTheErrorSaysWhenToComeBack() {
        ScriptedMember a = new ScriptedMember("a")
                .always(() -> new ProviderUnavailableException("a is down", "a", null, 503, null, null));
        ScriptedMember b = new ScriptedMember("b")
                .always(() -> new ProviderUnavailableException("b is down", "b", null, 503, null, null));
        HybridClient client = using(HybridClient.builder()
                .id("front")
                .member("a", a)
                .member("b", b)
                .circuitBreaker(1, Duration.ofSeconds(5))
                .retry(ONE_ROUND)
                .build());

        Probe.Outcome<ChatResponse> first = probe.chat(client, ask("open both"), LIMIT);
        assertThat(first.failure()).as(first.describe()).isNotNull();
        assertThat(client.members().values())
                .allSatisfy(m -> assertThat(m.circuitOpen()).isTrue());

        Probe.Outcome<ChatResponse> skipped = probe.chat(client, ask("all open"), LIMIT);
        assertThat(skipped.failure()).as(skipped.describe()).isNotNull();
        Optional<Duration> retryAfter = skipped.failure().retryAfter();
        assertThat(retryAfter)
                .as("retryAfter of %s when every circuit is open", skipped.describe())
                .isPresent();
        assertThat(retryAfter.get()).isPositive().isLessThanOrEqualTo(Duration.ofSeconds(5));
        assertThat(a.calls.get() + b.calls.get())
                .as("calls that reached members")
                .isEqualTo(2);
    }

    /** A member whose calls fail as scripted, then succeed; counts the calls that reached it. */
    static final class ScriptedMember implements InferenceClient {
        final String id;
        final AtomicInteger calls = new AtomicInteger();
        private final ConcurrentLinkedDeque<Supplier<RuntimeException>> script = new ConcurrentLinkedDeque<>();
        private volatile Supplier<RuntimeException> always;

        ScriptedMember(String id) {
            this.id = id;
        }

        ScriptedMember then(Supplier<RuntimeException> failure) {
            script.add(failure);
            return this;
        }

        ScriptedMember always(Supplier<RuntimeException> failure) {
            this.always = failure;
            return this;
        }

        @Override
        public ChatResponse chat(ChatRequest request) {
            calls.incrementAndGet();
            Supplier<RuntimeException> next = script.poll();
            if (next == null) {
                next = always;
            }
            if (next != null) {
                throw next.get();
            }
            Receipt receipt = Receipt.builder()
                    .providerId(id)
                    .deploymentKind(DeploymentKind.SERVER)
                    .model("m")
                    .attempt(new Attempt(id, "", "scripted", Attempt.Outcome.SUCCEEDED, Duration.ZERO, null))
                    .startedAt(Instant.now())
                    .totalTime(Duration.ofMillis(1))
                    .usage(new Usage(1, 1, 0))
                    .cost(BigDecimal.ZERO)
                    .build();
            return new ChatResponse("ok", List.of(), FinishReason.STOP, new Usage(1, 1, 0), receipt);
        }

        @Override
        public CompletableFuture<ChatResponse> chatAsync(ChatRequest request) {
            return CompletableFuture.supplyAsync(() -> chat(request));
        }

        @Override
        public ChatStream stream(ChatRequest request) {
            throw new UnsupportedOperationException("scripted members only answer blocking calls");
        }

        @Override
        public Cancellable stream(ChatRequest request, StreamHandler handler) {
            throw new UnsupportedOperationException("scripted members only answer blocking calls");
        }

        @Override
        public ClientInfo info() {
            return new ClientInfo(id, "scripted", DeploymentKind.SERVER, List.of("m"), Pricing.FREE);
        }

        @Override
        public void close() {}
    }
}
